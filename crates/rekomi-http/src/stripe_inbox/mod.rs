//! The Stripe inbox over HTTP: Stripe's webhook receiver (`POST /api/webhooks/stripe`, which
//! verifies and stores the raw event) and the Owner's list and replay of the stored events. The
//! inbound adapter of `rekomi_domain::stripe_inbox`; the events are applied by its worker.

pub mod dto;
pub mod inbox;
pub mod webhook;

use actix_web::web;

use crate::resource;

/// Registers the Stripe receiver and the inbox routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/webhooks/stripe").post(webhook::receive))
        .service(resource("/api/v1/webhooks/stripe/events").get(inbox::list_events))
        .service(resource("/api/v1/webhooks/stripe/events/{id}/replay").post(inbox::replay_event));
}
