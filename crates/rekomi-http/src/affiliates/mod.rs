//! Affiliates over HTTP: `/api/v1/affiliates` (list, pending applications, create, get,
//! update, approve, reject, bulk actions). The inbound adapter of `rekomi_domain::affiliates`;
//! an affiliate's coupons are in `crate::coupons`, its recruits in `crate::conversions`.

pub mod dto;
pub mod handlers;

use actix_web::web;

use crate::resource;

/// Registers the affiliate routes. The literal paths (`applications`, `bulk-action`) come
/// before `{id}`, which would otherwise take them.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use handlers as h;
    cfg.service(resource("/api/v1/affiliates").get(h::list).post(h::create))
        .service(resource("/api/v1/affiliates/applications").get(h::applications))
        .service(resource("/api/v1/affiliates/bulk-action").post(h::bulk))
        .service(resource("/api/v1/affiliates/{id}").get(h::get).patch(h::update))
        .service(resource("/api/v1/affiliates/{id}/approve").post(h::approve))
        .service(resource("/api/v1/affiliates/{id}/reject").post(h::reject));
}
