//! Server-to-server tracking over HTTP: `POST /api/tracking/s2s` (an API key and an HMAC
//! signature over the raw body) and `POST /api/v1/settings/tracking-secret` (issue or rotate
//! the `rks_…` signing secret). The inbound adapter of `rekomi_domain::tracking`.

pub mod dto;
pub mod handlers;

use actix_web::web;

use crate::resource;

/// Requests per minute each API key may make to `/api/tracking/*` (3,000 a second): far above
/// the 600 a minute of the rest of the API, since a brand's server reports every sale.
pub const S2S_REQUESTS_PER_MINUTE: u32 = 180_000;

/// The request header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-rekomi-signature";

/// Registers the tracking routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/tracking/s2s").post(handlers::s2s))
        .service(resource("/api/tracking/lead").post(handlers::lead))
        .service(resource("/api/v1/settings/tracking-secret").post(handlers::rotate_secret));
}
