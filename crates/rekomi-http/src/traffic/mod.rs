//! Traffic over HTTP: Short links (`GET /r/{slug}`), answered without authentication and
//! limited per client address. The inbound adapter of `rekomi_domain::traffic`: it reads the
//! visit (address, User-Agent and its device class, `Referer`, the trusted country header, the
//! query) and answers the tracker's redirect.

pub mod device;
pub mod handlers;
pub mod visit;

use actix_web::web;

use crate::ratelimit::RateLimiter;
use crate::resource;

/// Requests per minute each client address may make to the anonymous tracking endpoints.
pub const TRACKING_REQUESTS_PER_MINUTE: u32 = 1_200;

/// The anonymous tracking policy.
#[derive(Debug)]
pub struct TrackingPolicy {
    /// Per client address; `None` turns the limit off (benchmarks from one address).
    pub limiter: Option<RateLimiter>,
    /// A header a CDN sets to the visitor's ISO country (e.g. `CF-IPCountry`); `None`: no
    /// country is recorded.
    pub country_header: Option<String>,
}

impl Default for TrackingPolicy {
    fn default() -> Self {
        Self { limiter: Some(RateLimiter::per_minute(TRACKING_REQUESTS_PER_MINUTE)), country_header: None }
    }
}

/// Registers the traffic routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/r/{slug}").get(handlers::follow));
}
