//! The OpenAPI 3 document, generated from the handlers' annotations and the DTO types, served
//! at `GET /api/v1/openapi.json`.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::dto;
use crate::routes::webhook_endpoints;
use crate::routes::{affiliates, conversions, coupons, org, programs, stripe_webhooks};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder().scheme(HttpAuthScheme::Bearer).description(Some("rk_live_… API key or dashboard JWT")).build(),
            ),
        );
        components.add_security_scheme(
            "affiliate_jwt",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("affiliate-side JWT (aud = affiliate)"))
                    .build(),
            ),
        );
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Rekomi API", description = "Open-source affiliate-program backend: programs, affiliates and Stripe-backed coupon codes."),
    paths(
        programs::list, programs::create, programs::get, programs::update, programs::delete,
        affiliates::list, affiliates::applications, affiliates::create, affiliates::get, affiliates::update,
        affiliates::approve, affiliates::reject, affiliates::bulk,
        coupons::create_campaign, coupons::list_campaign, coupons::get_campaign, coupons::update_campaign,
        coupons::archive_campaign, coupons::delete_campaign, coupons::create_affiliate, coupons::list_affiliate,
        coupons::revoke_affiliate, coupons::lookup, coupons::self_mint,
        org::me, org::billing, org::healthz, org::readyz,
        webhook_endpoints::list, webhook_endpoints::create, webhook_endpoints::get, webhook_endpoints::update,
        webhook_endpoints::delete, webhook_endpoints::rotate_secret, webhook_endpoints::deliveries, webhook_endpoints::redeliver,
        conversions::list, conversions::get, conversions::attribution, conversions::export,
        conversions::get_sub_config, conversions::put_sub_config, conversions::sub_affiliates,
        conversions::list_events, conversions::replay_event, stripe_webhooks::receive,
    ),
    components(schemas(dto::ErrorBody)),
    modifiers(&Security),
)]
pub struct ApiDoc;

/// The document as JSON.
pub fn document() -> String {
    ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".to_owned())
}
