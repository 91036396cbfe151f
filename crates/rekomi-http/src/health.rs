//! The probes of the inbound HTTP adapter: `GET /healthz` (liveness: the process answers) and
//! `GET /readyz` (readiness: the database answers). They belong to no capability and answer
//! without credentials.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiResult;
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

/// Registers the probes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").get(healthz)).service(resource("/readyz").get(readyz));
}
