//! The payout handlers: preview, run (with `Idempotency-Key`), retry, mark paid, list, one
//! payout. The PayPal export is in `export`, payout accounts in `accounts`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use futures_util::stream;
use futures_util::StreamExt as _;
use rekomi_domain::idempotency::{IdempotentStart, StoredResponse};
use rekomi_domain::kernel::ids::PayoutId;
use rekomi_domain::services::BrandContext;

use super::dto::{MarkPaidRequest, PayoutQuery, PayoutResponse, PreviewRequest, PreviewResponse, RunRequest};
use crate::auth::Brand;
use crate::dto::{page_request, EmptyRequest, ListResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Json, OptionalJson, Query, RawJson};
use crate::AppState;

/// The request header of client idempotency keys.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Set on an answer replayed from an earlier request with the same key.
const REPLAYED: &str = "Idempotency-Replayed";
/// The longest key accepted (Stripe's own limit).
const MAX_KEY_LEN: usize = 255;

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else { return Ok(None) };
    let key = value.to_str().map(str::trim).unwrap_or_default();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(IDEMPOTENCY_KEY, format!("{IDEMPOTENCY_KEY} must be 1-{MAX_KEY_LEN} visible ASCII characters")));
    }
    Ok(Some(key.to_owned()))
}

fn stored(response: &StoredResponse, replayed: bool) -> HttpResponse {
    let mut builder = HttpResponse::build(StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK));
    builder.content_type("application/json");
    if replayed {
        builder.insert_header((REPLAYED, "true"));
    }
    builder.body(response.body.clone())
}

/// What a run can pay now, without committing.
#[utoipa::path(post, path = "/api/v1/payouts/preview", tag = "Payouts", request_body = PreviewRequest,
    responses((status = 200, body = PreviewResponse),
        (status = 400, description = "`validation_failed`; `unsupported_currency`"),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 403, description = "`insufficient_role`: Owner")),
    security(("bearer" = [])))]
pub async fn preview(state: web::Data<AppState>, Brand(ctx): Brand, Json(body): Json<PreviewRequest>) -> ApiResult<HttpResponse> {
    let selection = body?.into_domain()?;
    let preview = state.services.preview_payouts(&ctx, selection).await?;
    Ok(HttpResponse::Ok().json(PreviewResponse::from(&preview)))
}

/// Payouts per chunk of the run's answer: the line items of a large run (a million for ten
/// thousand affiliates) are read and written a chunk at a time, never held together.
const ANSWER_CHUNK: usize = 200;

/// One chunk of the run's JSON array: the payouts (with their line items), comma-separated,
/// led by a comma unless it is the first.
async fn answer_chunk(state: &AppState, ctx: &BrandContext, ids: &[PayoutId], first: bool) -> Result<String, ApiError> {
    let views = state.services.payouts_with_line_items(ctx, ids.to_vec()).await?;
    let mut out = String::new();
    for (i, view) in views.iter().enumerate() {
        if !(first && i == 0) {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(&PayoutResponse::from(view)).unwrap_or_default());
    }
    Ok(out)
}

/// The whole answer of a run, for storing under its idempotency key.
async fn buffered_answer(state: &AppState, ctx: &BrandContext, ids: &[PayoutId]) -> Result<String, ApiError> {
    let mut body = String::from("[");
    for (n, chunk) in ids.chunks(ANSWER_CHUNK).enumerate() {
        body.push_str(&answer_chunk(state, ctx, chunk, n == 0).await?);
    }
    body.push(']');
    Ok(body)
}

/// The answer of a run without a key, streamed chunk by chunk.
fn streamed_answer(state: web::Data<AppState>, ctx: BrandContext, ids: Vec<PayoutId>) -> HttpResponse {
    let chunks: Vec<Vec<PayoutId>> = ids.chunks(ANSWER_CHUNK).map(<[PayoutId]>::to_vec).collect();
    let body = stream::once(async { Ok::<_, actix_web::Error>(web::Bytes::from_static(b"[")) })
        .chain(stream::iter(chunks.into_iter().enumerate()).then(move |(n, chunk)| {
            let (state, ctx) = (state.clone(), ctx.clone());
            async move {
                answer_chunk(&state, &ctx, &chunk, n == 0).await.map(web::Bytes::from).map_err(|e| {
                    tracing::warn!(error.cause = %e, "the payout run's answer stopped early (the payouts are recorded)");
                    actix_web::error::ErrorServiceUnavailable("answer interrupted")
                })
            }
        }))
        .chain(stream::once(async { Ok::<_, actix_web::Error>(web::Bytes::from_static(b"]")) }));
    HttpResponse::Ok().content_type("application/json").streaming(body)
}

/// Pays every eligible candidate: one payout per affiliate. With `Idempotency-Key`, the same key
/// and body within 60 minutes answer the original response with `Idempotency-Replayed: true`.
#[utoipa::path(post, path = "/api/v1/payouts/run", tag = "Payouts", request_body = RunRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the original answer for the same body within 60 minutes")),
    responses((status = 200, description = "One payout per recipient", body = Vec<PayoutResponse>),
        (status = 400, description = "`validation_failed`; `unsupported_currency`"),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 403, description = "`insufficient_role`: Owner"),
        (status = 409, description = "`confirm_total_mismatch`: preview again; `payout_run_conflict`; `idempotency_key_in_use`: the same key is still running; `idempotency_key_reused`: the key was used with another body")),
    security(("bearer" = [])))]
pub async fn run(state: web::Data<AppState>, Brand(ctx): Brand, req: HttpRequest, RawJson(body): RawJson) -> ApiResult<HttpResponse> {
    let key = idempotency_key(&req)?;
    let body = body?;
    let run = RawJson::decode::<RunRequest>(&body)?.into_domain()?;
    let Some(key) = key else {
        let ids = state.services.run_payouts(&ctx, run).await?.iter().map(|p| p.id).collect();
        return Ok(streamed_answer(state, ctx, ids));
    };
    let org = ctx.org_id();
    match state.services.start_idempotent(org, &key, &body).await? {
        IdempotentStart::Replay(response) => return Ok(stored(&response, true)),
        IdempotentStart::InFlight => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still running",
            ))
        }
        IdempotentStart::Mismatch => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request body in the last 60 minutes",
            ))
        }
        IdempotentStart::Run => {}
    }
    let answer = match state.services.run_payouts(&ctx, run).await {
        Ok(payouts) => buffered_answer(&state, &ctx, &payouts.iter().map(|p| p.id).collect::<Vec<_>>()).await,
        Err(e) => Err(ApiError::from(e)),
    };
    let response = match answer {
        Ok(body) => StoredResponse { status: 200, body },
        Err(e) => StoredResponse { status: e.status_code().as_u16(), body: e.body_json() },
    };
    state.services.finish_idempotent(org, &key, response.clone()).await?;
    Ok(stored(&response, false))
}

/// Retries a Failed payout as a new attempt.
#[utoipa::path(post, path = "/api/v1/payouts/{id}/retry", tag = "Payouts", request_body(content = Option<EmptyRequest>),
    params(("id" = Uuid, Path, description = "The payout id")),
    responses((status = 200, body = PayoutResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 403, description = "`insufficient_role`: Owner"),
        (status = 404, description = "`payout_not_found`"),
        (status = 409, description = "`payout_not_failed`; `payout_entries_taken`; `no_stripe_connect`; `payouts_not_enabled`")),
    security(("bearer" = [])))]
pub async fn retry(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<String>,
    OptionalJson(body): OptionalJson<EmptyRequest>,
) -> ApiResult<HttpResponse> {
    let id: PayoutId = parse_id(&path, "id")?;
    body?;
    let view = state.services.retry_payout(&ctx, id).await?;
    Ok(HttpResponse::Ok().json(PayoutResponse::from(&view)))
}

/// Records that a PayPal, Wise or Manual payout was paid outside Rekomi.
#[utoipa::path(post, path = "/api/v1/payouts/{id}/mark-paid", tag = "Payouts", request_body = MarkPaidRequest,
    params(("id" = Uuid, Path, description = "The payout id")),
    responses((status = 200, body = PayoutResponse),
        (status = 400, description = "`validation_failed`"),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 403, description = "`insufficient_role`: Owner"),
        (status = 404, description = "`payout_not_found`"),
        (status = 409, description = "`payout_not_payable`: Failed, or a Stripe Connect payout")),
    security(("bearer" = [])))]
pub async fn mark_paid(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<String>,
    Json(body): Json<MarkPaidRequest>,
) -> ApiResult<HttpResponse> {
    let id: PayoutId = parse_id(&path, "id")?;
    let (reference, notes) = body?.into_parts()?;
    let view = state.services.mark_payout_paid(&ctx, id, reference, notes).await?;
    Ok(HttpResponse::Ok().json(PayoutResponse::from(&view)))
}

/// List payouts.
#[utoipa::path(get, path = "/api/v1/payouts", tag = "Payouts", params(PayoutQuery),
    responses((status = 200, body = ListResponse<PayoutResponse>),
        (status = 400, description = "`validation_failed`"),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+")),
    security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, Brand(ctx): Brand, Query(q): Query<PayoutQuery>) -> ApiResult<HttpResponse> {
    let q = q?;
    let filter = q.filter()?;
    let page = page_request(q.take, q.cursor.as_deref())?;
    let payouts = state.services.list_payouts(&ctx, filter, page).await?;
    Ok(HttpResponse::Ok().json(ListResponse::from_page(payouts, |p| PayoutResponse::from(&p))))
}

/// One payout with its line items.
#[utoipa::path(get, path = "/api/v1/payouts/{id}", tag = "Payouts", params(("id" = Uuid, Path, description = "The payout id")),
    responses((status = 200, body = PayoutResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`payout_not_found`")),
    security(("bearer" = [])))]
pub async fn get(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id: PayoutId = parse_id(&path, "id")?;
    let view = state.services.get_payout(&ctx, id).await?;
    Ok(HttpResponse::Ok().json(PayoutResponse::from(&view)))
}
