//! Payouts over HTTP: `/api/v1/payouts` (preview, run with `Idempotency-Key`, retry, mark paid,
//! list, one payout, the PayPal export) and payout accounts (the affiliate's Stripe Express
//! onboarding, the brand's recorded accounts). The inbound adapter of
//! `rekomi_domain::payouts` and `rekomi_domain::idempotency`.

pub mod accounts;
pub mod dto;
pub mod export;
pub mod handlers;

use actix_web::web;

use crate::resource;

/// Registers the payout routes. The fixed paths come before `{id}`, which would take them.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/v1/payouts").get(handlers::list))
        .service(resource("/api/v1/payouts/preview").post(handlers::preview))
        .service(resource("/api/v1/payouts/run").post(handlers::run))
        .service(resource("/api/v1/payouts/export.csv").get(export::export))
        .service(resource("/api/v1/payouts/{id}").get(handlers::get))
        .service(resource("/api/v1/payouts/{id}/retry").post(handlers::retry))
        .service(resource("/api/v1/payouts/{id}/mark-paid").post(handlers::mark_paid))
        .service(resource("/api/v1/affiliates/{id}/payout-account").put(accounts::record))
        .service(resource("/api/me/payout-account").get(accounts::mine))
        .service(resource("/api/me/payout-account/stripe").post(accounts::connect_stripe));
}
