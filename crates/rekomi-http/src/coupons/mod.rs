//! Coupons over HTTP: campaign coupons (`/api/v1/campaigns/{programId}/coupons`), affiliate
//! coupons (`/api/v1/affiliates/{affiliateId}/coupons`), the promotional-code lookup
//! (`/api/v1/promotional-codes`) and affiliate self-mint (`/api/me/coupons/mint`). The inbound
//! adapter of `rekomi_domain::coupons`.

pub mod dto;
pub mod handlers;

use actix_web::web;

use crate::resource;

/// Registers the coupon routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use handlers as h;
    cfg.service(resource("/api/v1/affiliates/{affiliateId}/coupons").get(h::list_affiliate).post(h::create_affiliate))
        .service(resource("/api/v1/affiliates/{affiliateId}/coupons/{id}").delete(h::revoke_affiliate))
        .service(resource("/api/v1/campaigns/{programId}/coupons").get(h::list_campaign).post(h::create_campaign))
        .service(
            resource("/api/v1/campaigns/{programId}/coupons/{id}")
                .get(h::get_campaign)
                .patch(h::update_campaign)
                .delete(h::delete_campaign),
        )
        .service(resource("/api/v1/campaigns/{programId}/coupons/{id}/archive").post(h::archive_campaign))
        .service(resource("/api/v1/promotional-codes").get(h::lookup))
        .service(resource("/api/me/coupons/mint").post(h::self_mint));
}
