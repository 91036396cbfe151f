//! Payout accounts over HTTP: an affiliate connects a Stripe Express account and reads its
//! state (`/api/me/payout-account…`, affiliate JWT, per membership); a brand records an
//! existing account or a PayPal/Wise email (`PUT /api/v1/affiliates/{id}/payout-account`).

use actix_web::{web, HttpResponse};
use rekomi_domain::kernel::ids::AffiliateId;

use super::dto::{ConnectStripeRequest, MyAccountQuery, OnboardingResponse, PayoutAccountResponse, RecordAccountRequest};
use crate::auth::{AffiliateAuth, Brand};
use crate::dto::ts;
use crate::error::ApiResult;
use crate::extract::{parse_id, Json, Query};
use crate::AppState;

/// Connect (once) a Stripe Express account for one of the caller's memberships and get a fresh
/// onboarding link.
#[utoipa::path(post, path = "/api/me/payout-account/stripe", tag = "Affiliate self-service", request_body = ConnectStripeRequest,
    responses((status = 200, body = OnboardingResponse),
        (status = 400, description = "`validation_failed`"),
        (status = 403, description = "`invalid_affiliate_token`"),
        (status = 404, description = "`affiliate_not_found`: not one of the caller's memberships"),
        (status = 502, description = "`stripe_request_failed`"),
        (status = 503, description = "`stripe_unavailable`: retrying finds the same account")),
    security(("affiliate_jwt" = [])))]
pub async fn connect_stripe(
    state: web::Data<AppState>,
    AffiliateAuth(caller): AffiliateAuth,
    Json(body): Json<ConnectStripeRequest>,
) -> ApiResult<HttpResponse> {
    let body = body?;
    let link = state.services.connect_stripe_payout_account(&caller, AffiliateId::from_uuid(body.affiliate_id), &state.public_url).await?;
    Ok(HttpResponse::Ok().json(OnboardingResponse {
        account: PayoutAccountResponse::from(&link.account),
        onboarding_url: link.url,
        expires_at: ts(link.expires_at),
    }))
}

/// The caller's payout account for one membership.
#[utoipa::path(get, path = "/api/me/payout-account", tag = "Affiliate self-service", params(MyAccountQuery),
    responses((status = 200, body = PayoutAccountResponse),
        (status = 400, description = "`validation_failed`"),
        (status = 403, description = "`invalid_affiliate_token`"),
        (status = 404, description = "`affiliate_not_found`; `payout_account_not_found`")),
    security(("affiliate_jwt" = [])))]
pub async fn mine(
    state: web::Data<AppState>,
    AffiliateAuth(caller): AffiliateAuth,
    Query(q): Query<MyAccountQuery>,
) -> ApiResult<HttpResponse> {
    let q = q?;
    let account = state.services.my_payout_account(&caller, AffiliateId::from_uuid(q.affiliate_id)).await?;
    Ok(HttpResponse::Ok().json(PayoutAccountResponse::from(&account)))
}

/// Record where the brand pays an affiliate (Owner). Every field replaces the stored one.
#[utoipa::path(put, path = "/api/v1/affiliates/{id}/payout-account", tag = "Payouts", request_body = RecordAccountRequest,
    params(("id" = Uuid, Path, description = "The affiliate id")),
    responses((status = 200, body = PayoutAccountResponse),
        (status = 400, description = "`validation_failed`"),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 403, description = "`insufficient_role`: Owner"),
        (status = 404, description = "`affiliate_not_found`"),
        (status = 422, description = "`stripe_account_not_found`: Stripe knows no such connected account"),
        (status = 503, description = "`stripe_unavailable`")),
    security(("bearer" = [])))]
pub async fn record(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<String>,
    Json(body): Json<RecordAccountRequest>,
) -> ApiResult<HttpResponse> {
    let id: AffiliateId = parse_id(&path, "id")?;
    let record = body?.into_domain()?;
    let account = state.services.record_payout_account(&ctx, id, record).await?;
    Ok(HttpResponse::Ok().json(PayoutAccountResponse::from(&account)))
}
