//! Traffic over HTTP: Short links (`GET /r/{slug}`), the browser loader, its click endpoint
//! and the pixel (anonymous, limited per client address), and the web-tracking settings and
//! install snippet (authenticated). The inbound adapter of `rekomi_domain::traffic`: it reads the
//! visit (address, User-Agent and its device class, `Referer`, the trusted country header, the
//! query) and answers the tracker's redirect.

pub mod browser;
pub mod device;
pub mod dto;
pub mod handlers;
pub mod settings;
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
    cfg.service(resource("/r/{slug}").get(handlers::follow))
        .service(resource("/api/v1/r/loader.js").get(browser::loader))
        .service(resource("/api/v1/r/click").post(browser::click).options(browser::click_preflight))
        .service(resource("/api/v1/r/c.gif").get(browser::pixel))
        .service(resource("/api/v1/r/lead/signup").post(browser::lead_signup).options(browser::lead_preflight))
        .service(resource("/api/v1/r/install-snippet").get(settings::install_snippet))
        .service(resource("/api/v1/settings/attribution-params/defaults").get(settings::defaults))
        .service(resource("/api/v1/settings/attribution-params").get(settings::get_params).patch(settings::patch_params))
        .service(resource("/api/v1/settings/pixel-key").get(settings::get_pixel_key).post(settings::provision_pixel_key));
}
