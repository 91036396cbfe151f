//! Conversions over HTTP: `/api/v1/conversions` (list, detail with the ledger, attribution
//! trace, CSV export) and the sub-affiliate endpoints (a program's override setting, an
//! affiliate's recruits). The inbound adapter of `rekomi_domain::conversions`.

pub mod dto;
pub mod export;
pub mod handlers;
pub mod sub_affiliates;

use actix_web::web;

use crate::resource;

/// Registers the conversion and sub-affiliate routes. `export.csv` comes before `{id}`, which
/// would otherwise take it.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/v1/conversions").get(handlers::list))
        .service(resource("/api/v1/conversions/export.csv").get(export::export))
        .service(resource("/api/v1/conversions/{id}").get(handlers::get))
        .service(resource("/api/v1/conversions/{id}/attribution").get(handlers::attribution))
        .service(
            resource("/api/v1/programs/{id}/sub-affiliate-config").get(sub_affiliates::get_sub_config).put(sub_affiliates::put_sub_config),
        )
        .service(resource("/api/v1/affiliates/{id}/sub-affiliates").get(sub_affiliates::sub_affiliates));
}
