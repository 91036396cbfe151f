//! Programs over HTTP: `/api/v1/programs` (list, create, get, update, archive). The inbound
//! adapter of `rekomi_domain::programs`.

pub mod dto;
pub mod handlers;

use actix_web::web;

use crate::resource;

/// Registers the program routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use handlers as h;
    cfg.service(resource("/api/v1/programs").get(h::list).post(h::create))
        .service(resource("/api/v1/programs/{id}").get(h::get).patch(h::update).delete(h::delete));
}
