//! `GET /r/{slug}`.

use std::time::Instant;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::{ApiError, ApiResult};
use crate::ratelimit::Decision;
use crate::traffic::visit;
use crate::AppState;

/// Charges the client address one anonymous tracking request.
///
/// # Errors
/// `429 rate_limited` over the anonymous tracking limit.
pub(crate) fn limit(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let Some(limiter) = &state.tracking.limiter else { return Ok(()) };
    match limiter.check(&format!("track:{}", state.client_ip.key(req)), Instant::now()) {
        Decision::Allowed { .. } => Ok(()),
        Decision::Limited { retry_after_secs } => Err(ApiError::rate_limited_because(
            retry_after_secs,
            "too many tracking requests from this address; retry after Retry-After seconds",
        )),
    }
}

/// Follow a Short link.
///
/// Records a click and redirects to the program's landing URL with `via=<slug>` and
/// `rk_click=<click id>` appended; the visitor's other query parameters (`sub1`, UTM) are kept.
#[utoipa::path(get, path = "/r/{slug}", tag = "Traffic",
    params(("slug" = String, Path, pattern = "^[A-Za-z0-9-]{1,64}$", description = "The affiliate's link slug, in any case")),
    responses(
        (status = 302, description = "To the landing page, with `Location` and `Cache-Control: no-store`"),
        (status = 404, description = "`link_not_found`: no such slug, or its affiliate is not approved or its program is paused or archived (nothing is recorded); `landing_url_not_set`: the program has no `landingUrl`"),
        (status = 429, description = "`rate_limited`: too many tracking requests from this address"),
        (status = 503, description = "`service_unavailable`: the database is unavailable")))]
pub async fn follow(state: web::Data<AppState>, req: HttpRequest, slug: web::Path<String>) -> ApiResult<HttpResponse> {
    limit(&state, &req)?;
    let tracker = state
        .clicks
        .as_ref()
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", "click tracking is not configured"))?;
    let visit = visit::read(&state, &req).ok_or_else(|| ApiError::not_found("link_not_found"))?;
    let redirect = tracker.follow_short_link(&slug, visit).await?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, redirect.location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer-when-downgrade"))
        .finish())
}
