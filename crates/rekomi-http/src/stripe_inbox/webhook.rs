//! `POST /api/webhooks/stripe`: Stripe's webhook endpoint. The raw bytes are verified and
//! stored; processing happens in the background worker.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use super::dto::StripeReceiptResponse;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// The largest Stripe event body accepted (Stripe's own events stay far below).
pub const MAX_STRIPE_EVENT: usize = 512 * 1024;

/// Receive a Stripe event.
#[utoipa::path(post, path = "/api/webhooks/stripe", tag = "Stripe events",
    request_body(content = Object, content_type = "application/json", description = "The Stripe event, exactly as Stripe sent it (the signature covers the raw bytes)"),
    params(("Stripe-Signature" = String, Header, description = "Stripe's signature header (`t=…,v1=…`)")),
    responses((status = 200, description = "Stored (or already stored)", body = StripeReceiptResponse),
        (status = 400, description = "`invalid_signature`: a missing, forged or stale `Stripe-Signature`, or no signing secret configured; \
            `invalid_payload`: a body that is not a Stripe event; `invalid_body`: the body could not be read"),
        (status = 413, description = "`payload_too_large`: the body exceeds 524288 bytes"),
        (status = 500, description = "`internal_error`: an unexpected failure (the body says nothing more)"),
        (status = 503, description = "`service_unavailable`: the database is unavailable; Stripe retries")))]
pub async fn receive(state: web::Data<AppState>, req: HttpRequest, mut payload: web::Payload) -> ApiResult<HttpResponse> {
    let declared =
        req.headers().get(actix_web::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_STRIPE_EVENT) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", "the request body could not be read"))?;
        if body.len() + chunk.len() > MAX_STRIPE_EVENT {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let signature = req.headers().get("stripe-signature").and_then(|v| v.to_str().ok());
    let outcome = state.services.ingest_stripe_event(&state.stripe_webhook_secrets, state.stripe_livemode, signature, &body).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "received": true, "id": outcome.event_id.as_str(), "duplicate": outcome.duplicate })))
}

fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("the body exceeds {MAX_STRIPE_EVENT} bytes"))
}
