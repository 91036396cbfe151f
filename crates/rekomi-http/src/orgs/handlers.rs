//! `GET /api/organizations/me` and `GET /api/billing/state`: the calling organization's
//! profile, plan, subscription and usage.

use actix_web::{web, HttpResponse};

use super::dto::{BillingStateResponse, Limit, Limits, OrganizationResponse};
use crate::auth::Brand;
use crate::dto::ts_opt;
use crate::error::ApiResult;
use crate::AppState;

/// The calling organization's profile.
#[utoipa::path(get, path = "/api/organizations/me", tag = "Organization",
    responses((status = 200, body = OrganizationResponse)), security(("bearer" = [])))]
pub async fn me(state: web::Data<AppState>, Brand(ctx): Brand) -> ApiResult<HttpResponse> {
    let org = state.services.organization_profile(&ctx);
    Ok(HttpResponse::Ok().json(OrganizationResponse {
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
        },
    }))
}
