//! `POST /api/tracking/s2s` and `POST /api/v1/settings/tracking-secret`.

use actix_web::{web, HttpRequest, HttpResponse};
use rekomi_domain::conversions::leads::{LeadOutcome, LeadSignup};
use rekomi_domain::tracking::S2sOutcome;

use super::dto::{
    LeadRecordedResponse, LeadRequest, LeadResponse, S2sConversionRequest, S2sDedupedResponse, S2sRecordedResponse, S2sResponse,
    TrackingSecretResponse,
};
use super::SIGNATURE_HEADER;
use crate::auth::{ApiKeyCaller, Brand};
use crate::error::ApiResult;
use crate::extract::RawJson;
use crate::AppState;

/// Record a conversion from your server.
///
/// Authenticated by an `rk_live_…` API key with `read_write` scope, in `X-Rekomi-Api-Key` or
/// `Authorization: Bearer`, and signed: `X-Rekomi-Signature: t=<unix>,sig=<hex>`, where `sig` is
/// the hex HMAC-SHA256 of `"<t>.<raw body bytes>"` keyed with the organization's `rks_…`
/// secret, and `t` within 300 seconds of the server's clock. The commission follows the
/// affiliate's program rules; `conversion.created` fires as for Stripe sales. A repeated
/// `externalEventId` answers `deduped` and writes nothing. See docs/s2s.md.
#[utoipa::path(post, path = "/api/tracking/s2s", tag = "Tracking",
    request_body = S2sConversionRequest,
    params(
        ("X-Rekomi-Api-Key" = Option<String>, Header, description = "The `rk_live_…` API key (instead of `Authorization: Bearer`)"),
        ("X-Rekomi-Signature" = String, Header, description = "`t=<unix seconds>,sig=<hex HMAC-SHA256 of \"<t>.<raw body>\">`"),
    ),
    responses(
        (status = 200, description = "Recorded (`conversionId`), or already recorded for this `externalEventId` (`deduped`)",
            body = S2sResponse),
        (status = 400, description = "`unsupported_currency`: a currency outside the supported list; `validation_failed` also for \
            `amountCents` outside 1–999999999999 and an `externalEventId` or `customerId` outside 1–255 bytes"),
        (status = 401, description = "`signature_missing`: no `X-Rekomi-Signature`; `signature_malformed`: not `t=<unix>,sig=<64 hex>`; \
            `signature_mismatch`: no current signing secret signs this body and timestamp; `signature_expired`: `t` is more than 300 s \
            from the server's clock; `tracking_secret_not_set`: the organization has no signing secret"),
        (status = 402, description = "`plan_tier_required`: Starter or higher (trialing organizations pass), or no live subscription"),
        (status = 404, description = "`affiliate_not_found`: no affiliate of the organization has this link slug"),
    ),
    security(("bearer" = [])))]
pub async fn s2s(state: web::Data<AppState>, req: HttpRequest, ApiKeyCaller(ctx): ApiKeyCaller, body: RawJson) -> ApiResult<HttpResponse> {
    let body = body.0?;
    // A header that is not text cannot be a signature: it is reported as malformed.
    let signature = req.headers().get(SIGNATURE_HEADER).map(|v| v.to_str().unwrap_or_default());
    state.services.verify_s2s_signature(&state.s2s_secrets, &ctx, signature, &body).await?;
    let sale = RawJson::decode::<S2sConversionRequest>(&body)?.into_domain()?;
    Ok(match state.services.record_s2s_conversion(&ctx, sale).await? {
        S2sOutcome::Recorded(id) => {
            HttpResponse::Ok().json(S2sResponse::Recorded(S2sRecordedResponse { ok: true, conversion_id: id.as_uuid() }))
        }
        S2sOutcome::Deduplicated => HttpResponse::Ok().json(S2sResponse::Deduped(S2sDedupedResponse { ok: true, deduped: true })),
    })
}

/// Record a lead (an identified signup) from your server.
///
/// Authenticated and signed exactly as `POST /api/tracking/s2s`. A lead earns nothing unless
/// the program pays per lead (`Cpl`: the program's fixed value, once per email); a later
/// Stripe sale with the same customer email inside the program's cookie window is credited to
/// the affiliate (`attributionMethod` `email_match`). See docs/traffic.md.
#[utoipa::path(post, path = "/api/tracking/lead", tag = "Tracking",
    request_body = LeadRequest,
    params(
        ("X-Rekomi-Api-Key" = Option<String>, Header, description = "The `rk_live_…` API key (instead of `Authorization: Bearer`)"),
        ("X-Rekomi-Signature" = String, Header, description = "`t=<unix seconds>,sig=<hex HMAC-SHA256 of \"<t>.<raw body>\">`"),
    ),
    responses(
        (status = 200, description = "Recorded (`leadId`), or already recorded (`deduped`)", body = LeadResponse),
        (status = 400, description = "`validation_failed`: `affiliateSlug`, `email`, `name` or `externalEventId`"),
        (status = 401, description = "The signature codes of `POST /api/tracking/s2s`"),
        (status = 402, description = "`plan_tier_required`: Starter or higher (trialing organizations pass), or no live subscription"),
        (status = 404, description = "`affiliate_not_found`: no affiliate of the organization has this link slug"),
    ),
    security(("bearer" = [])))]
pub async fn lead(state: web::Data<AppState>, req: HttpRequest, ApiKeyCaller(ctx): ApiKeyCaller, body: RawJson) -> ApiResult<HttpResponse> {
    let body = body.0?;
    let signature = req.headers().get(SIGNATURE_HEADER).map(|v| v.to_str().unwrap_or_default());
    state.services.verify_s2s_signature(&state.s2s_secrets, &ctx, signature, &body).await?;
    let b = RawJson::decode::<LeadRequest>(&body)?;
    let lead = LeadSignup::parse("affiliateSlug", &b.affiliate_slug, &b.email, b.name.as_deref(), b.external_event_id.as_deref())?;
    Ok(match state.services.record_server_lead(&ctx, lead).await? {
        LeadOutcome::Recorded(id) => {
            HttpResponse::Ok().json(LeadResponse::Recorded(LeadRecordedResponse { ok: true, lead_id: id.as_uuid() }))
        }
        LeadOutcome::Deduplicated => HttpResponse::Ok().json(LeadResponse::Deduped(S2sDedupedResponse { ok: true, deduped: true })),
    })
}

/// Issue or rotate the signing secret.
///
/// Answers the new `rks_…` secret in full, once; only its prefix is shown afterwards (audit
/// log). The secret it replaces keeps verifying for 24 hours, then stops. Role: Owner (API keys
/// pass, with `read_write` scope).
#[utoipa::path(post, path = "/api/v1/settings/tracking-secret", tag = "Tracking",
    responses(
        (status = 201, description = "Issued", body = TrackingSecretResponse),
        (status = 402, description = "`plan_tier_required`: Starter or higher (trialing organizations pass), or no live subscription"),
        (status = 409, description = "`secret_rotation_conflict`: another rotation committed at the same moment; retry"),
    ),
    security(("bearer" = [])))]
pub async fn rotate_secret(state: web::Data<AppState>, Brand(ctx): Brand) -> ApiResult<HttpResponse> {
    let issued = state.services.rotate_tracking_secret(&ctx).await?;
    Ok(HttpResponse::Created().json(TrackingSecretResponse::from(issued)))
}
