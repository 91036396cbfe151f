//! The operational endpoints of the inbound HTTP adapter: `GET /healthz` (liveness: the process
//! answers), `GET /readyz` (readiness: the database answers) and `GET /metrics` (the Prometheus
//! text format; open unless `REKOMI_METRICS_TOKEN` is set). They belong to no capability.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::{resource, AppState};

/// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok` (liveness) or `ready` (readiness).
    pub status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "Operations", responses((status = 200, description = "The process answers", body = HealthResponse)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "Operations",
    responses((status = 200, description = "The database answers", body = HealthResponse),
        (status = 503, description = "`service_unavailable`: the database does not answer")))]
pub async fn readyz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    state.services.readiness().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
}

/// The process's metrics: HTTP requests by route and status with latency histograms, queue
/// depth and the age of the oldest due job per queue, Stripe call latency and outcomes, webhook
/// attempts, job outcomes, database statements and pool use.
#[utoipa::path(get, path = "/metrics", tag = "Operations",
    responses((status = 200, description = "The metrics, in the Prometheus text exposition format", content_type = "text/plain", body = String),
        (status = 401, description = "`unauthorized`: `REKOMI_METRICS_TOKEN` is set and the request does not carry it", body = crate::dto::ErrorBody),
        (status = 404, description = "`not_found`: this server renders no metrics", body = crate::dto::ErrorBody)))]
pub async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    if let Some(token) = &state.metrics_token {
        let sent =
            req.headers().get(actix_web::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if !sent.is_some_and(|sent| constant_time_eq(sent.trim().as_bytes(), token.as_bytes())) {
            return Err(ApiError::unauthorized("unauthorized", "send Authorization: Bearer <REKOMI_METRICS_TOKEN>"));
        }
    }
    let render =
        state.metrics.as_ref().ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "this server renders no metrics"))?;
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(render()))
}

/// Compares without stopping at the first difference, so the token cannot be guessed by timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Registers the operational endpoints.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").get(healthz)).service(resource("/readyz").get(readyz)).service(resource("/metrics").get(metrics));
}
