//! `GET`/`PATCH /api/organizations/me`, `GET /api/billing/state` and the home-currency setting:
//! the calling organization's profile, plan, subscription, usage and money settings.

use actix_web::{web, HttpResponse};

use rekomi_domain::kernel::error::FieldError;
use rekomi_domain::kernel::money::{Currency, SUPPORTED_CURRENCIES};
use rekomi_domain::orgs::{OrgSettingsPatch, Organization};

use super::dto::{
    BillingStateResponse, HomeCurrencyChangeResponse, HomeCurrencyRequest, HomeCurrencyResponse, Limit, Limits, OrganizationPatch,
    OrganizationResponse,
};
use crate::auth::Brand;
use crate::dto::ts_opt;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::AppState;

fn profile(org: Organization) -> OrganizationResponse {
    OrganizationResponse {
        id: org.id.as_uuid(),
        name: org.name,
        slug: org.handle.as_str().to_owned(),
        billing_email: org.billing_email,
        timezone: org.timezone,
        primary_brand_color: None,
        logo_url: None,
        description: None,
        white_label_enabled: false,
        plan_tier: org.plan_tier.as_str(),
        subscription_status: org.subscription_status.as_str(),
        trial_ends_at: ts_opt(org.trial_ends_at),
        payout_grace_days: org.payout_grace_days,
        payout_grace_days_max: org.plan_tier.payout_grace_days_max(),
        minimum_payout_cents: org.minimum_payout_minor,
    }
}

/// The calling organization's profile.
#[utoipa::path(get, path = "/api/organizations/me", tag = "Organization",
    responses((status = 200, body = OrganizationResponse)), security(("bearer" = [])))]
pub async fn me(state: web::Data<AppState>, Brand(ctx): Brand) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(profile(state.services.organization_profile(&ctx))))
}

/// Change the profile's payout settings (dashboard Owners; API keys cannot change the profile).
#[utoipa::path(patch, path = "/api/organizations/me", tag = "Organization", request_body = OrganizationPatch,
    responses((status = 200, body = OrganizationResponse),
        (status = 400, description = "`validation_failed`: `payoutGraceDays` above `payoutGraceDaysMax`, a negative `minimumPayoutCents`"),
        (status = 403, description = "`jwt_required`: API keys cannot change the profile; `insufficient_role`: Owner")),
    security(("bearer" = [])))]
pub async fn update(state: web::Data<AppState>, Brand(ctx): Brand, Json(body): Json<OrganizationPatch>) -> ApiResult<HttpResponse> {
    let body = body?;
    let patch = OrgSettingsPatch { payout_grace_days: body.payout_grace_days, minimum_payout_minor: body.minimum_payout_cents };
    let org = state.services.update_org_settings(&ctx, patch).await?;
    Ok(HttpResponse::Ok().json(profile(org)))
}

/// The home currency, when it changed, the supported list, and whether the plan lets it change.
#[utoipa::path(get, path = "/api/v1/settings/home-currency", tag = "Organization",
    responses((status = 200, body = HomeCurrencyResponse)), security(("bearer" = [])))]
pub async fn get_home_currency(state: web::Data<AppState>, Brand(ctx): Brand) -> ApiResult<HttpResponse> {
    let view = state.services.home_currency(&ctx);
    Ok(HttpResponse::Ok().json(HomeCurrencyResponse {
        home_currency: view.home_currency.code(),
        changed_at: ts_opt(view.changed_at),
        supported_currencies: SUPPORTED_CURRENCIES.to_vec(),
        can_change: view.can_change,
    }))
}

/// Change the home currency (Pro). The same currency again answers `changed: false`.
#[utoipa::path(put, path = "/api/v1/settings/home-currency", tag = "Organization", request_body = HomeCurrencyRequest,
    responses((status = 200, body = HomeCurrencyChangeResponse),
        (status = 400, description = "`unsupported_currency`: not on the allowlist"),
        (status = 402, description = "`plan_tier_required`: Starter or Growth"),
        (status = 403, description = "`insufficient_role`: Owner")),
    security(("bearer" = [])))]
pub async fn put_home_currency(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    Json(body): Json<HomeCurrencyRequest>,
) -> ApiResult<HttpResponse> {
    let body = body?;
    let currency = Currency::parse(&body.home_currency)
        .map_err(|e| ApiError::from(FieldError::coded("homeCurrency", "unsupported_currency", e.to_string())))?;
    let change = state.services.set_home_currency(&ctx, currency).await?;
    Ok(HttpResponse::Ok().json(HomeCurrencyChangeResponse {
        home_currency: change.home_currency.code(),
        changed: change.changed,
        changed_at: ts_opt(change.changed_at),
    }))
}

/// Plan, subscription and usage.
#[utoipa::path(get, path = "/api/billing/state", tag = "Organization",
    responses((status = 200, body = BillingStateResponse)), security(("bearer" = [])))]
pub async fn billing(state: web::Data<AppState>, Brand(ctx): Brand) -> ApiResult<HttpResponse> {
    let b = state.services.billing_state(&ctx).await?;
    Ok(HttpResponse::Ok().json(BillingStateResponse {
        plan_tier: b.org.plan_tier.as_str(),
        subscription_status: b.org.subscription_status.as_str(),
        trial_ends_at: ts_opt(b.org.trial_ends_at),
        interval: None,
        stripe_subscription_id: None,
        stripe_customer_linked: false,
        stripe_connect_linked: b.org.stripe_account_id.is_some(),
        // Rekomi does not cap affiliates or programs per plan yet, so `max` is null (unlimited).
        limits: Limits {
            affiliates: Limit { current: b.usage.affiliates, max: None },
            campaigns: Limit { current: b.usage.campaigns, max: None },
            partner_payouts_this_month_cents: Limit { current: b.paid_out_this_month, max: None },
        },
    }))
}
