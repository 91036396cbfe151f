//! Outbound webhooks over HTTP: `/api/v1/webhook-endpoints` (a brand's endpoints, their
//! delivery log, secret rotation and redelivery). The inbound adapter of
//! `rekomi_domain::outbound`; the deliveries themselves are sent by `rekomi-webhooks`.

pub mod dto;
pub mod handlers;

use actix_web::web;

use crate::resource;

/// Registers the webhook-endpoint routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use handlers as h;
    cfg.service(resource("/api/v1/webhook-endpoints").get(h::list).post(h::create))
        .service(resource("/api/v1/webhook-endpoints/{id}").get(h::get).patch(h::update).delete(h::delete))
        .service(resource("/api/v1/webhook-endpoints/{id}/rotate-secret").post(h::rotate_secret))
        .service(resource("/api/v1/webhook-endpoints/{id}/deliveries").get(h::deliveries))
        .service(resource("/api/v1/webhook-endpoints/{id}/deliveries/{deliveryId}/redeliver").post(h::redeliver));
}
