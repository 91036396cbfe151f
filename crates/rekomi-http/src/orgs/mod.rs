//! Organizations over HTTP: the calling organization's profile and billing state. The inbound
//! adapter of `rekomi_domain::orgs`; API keys and tokens are read in `crate::auth`.

pub mod dto;
pub mod handlers;

use actix_web::web;

use crate::resource;

/// Registers the organization routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/organizations/me").get(handlers::me).patch(handlers::update))
        .service(resource("/api/billing/state").get(handlers::billing))
        .service(resource("/api/v1/settings/home-currency").get(handlers::get_home_currency).put(handlers::put_home_currency));
}
