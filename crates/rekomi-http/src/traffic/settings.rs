//! Web-tracking settings over HTTP: the attribution parameters (`/api/v1/settings/
//! attribution-params`, and its public `defaults`), the pixel key, and the install snippet.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use rekomi_domain::kernel::ids::ProgramId;
use rekomi_domain::traffic::params::{
    effective_order, DEFAULT_PARAMS, MAX_CUSTOM_ENTRIES, MAX_PARAM_LENGTH, MAX_TOTAL_CHARS, MIN_PARAM_LENGTH,
};
use rekomi_domain::traffic::settings::SnippetParts;
use rekomi_domain::traffic::{CustomParams, ParamsError};

use super::dto::{
    AttributionDefaultsResponse, AttributionParamsResponse, PatchAttributionParamsRequest, PixelKeyResponse, SnippetQuery, SnippetResponse,
};
use super::handlers::limit;
use crate::auth::Brand;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use crate::AppState;

fn params_response(custom: Option<CustomParams>) -> AttributionParamsResponse {
    AttributionParamsResponse {
        effective_order: effective_order(custom.as_ref()),
        custom: custom.as_ref().map(CustomParams::to_csv),
        defaults: DEFAULT_PARAMS.to_vec(),
        max_custom_entries: MAX_CUSTOM_ENTRIES,
        max_total_chars: MAX_TOTAL_CHARS,
    }
}

fn params_error(e: ParamsError) -> ApiError {
    let error = ApiError::new(StatusCode::BAD_REQUEST, e.code(), e.to_string()).with_field("custom");
    match e {
        ParamsError::Invalid(entries) => error.with_invalid(entries),
        ParamsError::TooLong | ParamsError::TooMany => error,
    }
}

/// The default attribution parameters and the limits of custom ones.
#[utoipa::path(get, path = "/api/v1/settings/attribution-params/defaults", tag = "Traffic",
    responses((status = 200, body = AttributionDefaultsResponse),
        (status = 429, description = "`rate_limited`: the anonymous tracking limit")))]
pub async fn defaults(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    limit(&state, &req)?;
    Ok(HttpResponse::Ok().json(AttributionDefaultsResponse {
        defaults: DEFAULT_PARAMS.to_vec(),
        max_custom_entries: MAX_CUSTOM_ENTRIES,
        max_total_chars: MAX_TOTAL_CHARS,
        min_param_length: MIN_PARAM_LENGTH,
        max_param_length: MAX_PARAM_LENGTH,
    }))
}

/// The organization's attribution parameters and their effective order.
#[utoipa::path(get, path = "/api/v1/settings/attribution-params", tag = "Traffic",
    responses((status = 200, body = AttributionParamsResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+")),
    security(("bearer" = [])))]
pub async fn get_params(state: web::Data<AppState>, Brand(ctx): Brand) -> ApiResult<HttpResponse> {
    let custom = state.services.attribution_params(&ctx).await?;
    Ok(HttpResponse::Ok().json(params_response(custom)))
}

/// Set or clear the custom attribution parameters (Owner).
#[utoipa::path(patch, path = "/api/v1/settings/attribution-params", tag = "Traffic", request_body = PatchAttributionParamsRequest,
    responses((status = 200, body = AttributionParamsResponse),
        (status = 400, description = "`attribution_params_too_long`; `too_many_attribution_params`; `invalid_attribution_param` (with `invalid`); `validation_failed`"),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 403, description = "`insufficient_role`: Owner only")),
    security(("bearer" = [])))]
pub async fn patch_params(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    Json(body): Json<PatchAttributionParamsRequest>,
) -> ApiResult<HttpResponse> {
    let body = body?;
    let raw = body.custom.ok_or_else(|| ApiError::invalid("custom", "missing field `custom` (null or \"\" clears it)"))?;
    let custom = CustomParams::parse(raw.as_deref().unwrap_or_default()).map_err(params_error)?;
    let custom = state.services.set_attribution_params(&ctx, custom).await?;
    Ok(HttpResponse::Ok().json(params_response(custom)))
}

/// The browser pixel's public key (null until provisioned).
#[utoipa::path(get, path = "/api/v1/settings/pixel-key", tag = "Traffic",
    responses((status = 200, body = PixelKeyResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+")),
    security(("bearer" = [])))]
pub async fn get_pixel_key(state: web::Data<AppState>, Brand(ctx): Brand) -> ApiResult<HttpResponse> {
    let key = state.services.pixel_public_key(&ctx).await?;
    Ok(HttpResponse::Ok().json(PixelKeyResponse { pixel_public_key: key }))
}

/// Provision the browser pixel's public key (Owner); idempotent.
#[utoipa::path(post, path = "/api/v1/settings/pixel-key", tag = "Traffic",
    responses((status = 201, body = PixelKeyResponse, description = "Provisioned now"),
        (status = 200, body = PixelKeyResponse, description = "Already provisioned: the same key"),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 403, description = "`insufficient_role`: Owner only")),
    security(("bearer" = [])))]
pub async fn provision_pixel_key(state: web::Data<AppState>, Brand(ctx): Brand) -> ApiResult<HttpResponse> {
    let (key, created) = state.services.provision_pixel_key(&ctx).await?;
    let body = PixelKeyResponse { pixel_public_key: Some(key) };
    Ok(if created { HttpResponse::Created().json(body) } else { HttpResponse::Ok().json(body) })
}

/// The install snippet of a program, server-rendered.
#[utoipa::path(get, path = "/api/v1/r/install-snippet", tag = "Traffic", params(SnippetQuery),
    responses((status = 200, body = SnippetResponse),
        (status = 400, description = "`validation_failed`: a malformed `programId` or `withPixel`"),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`no_program_found`"),
        (status = 409, description = "`pixel_not_provisioned`")),
    security(("bearer" = [])))]
pub async fn install_snippet(state: web::Data<AppState>, Brand(ctx): Brand, Query(q): Query<SnippetQuery>) -> ApiResult<HttpResponse> {
    let q = q?;
    let with_pixel = q.with_pixel.unwrap_or(false);
    let parts = state.services.install_snippet(&ctx, q.program_id.map(ProgramId::from_uuid), with_pixel).await?;
    Ok(HttpResponse::Ok().json(SnippetResponse {
        snippet: render_snippet(&state.public_url, &parts),
        program_id: parts.program.id.as_uuid(),
        program_slug: parts.program.slug.as_str().to_owned(),
        with_pixel,
        has_custom_attribution_params: parts.custom_params.is_some(),
        custom_attribution_params: parts.custom_params.as_ref().map(CustomParams::to_csv),
    }))
}

/// The snippet's HTML. Every value in it is server-derived and of a closed alphabet (a UUID,
/// `[a-z0-9_-]` parameters, an `rkp_` hex key, the configured URL), so nothing needs escaping
/// beyond what the configuration guarantees.
fn render_snippet(public_url: &str, parts: &SnippetParts) -> String {
    let base = public_url.trim_end_matches('/');
    let mut attrs = format!(" data-program-id=\"{}\"", parts.program.id);
    if let Some(custom) = &parts.custom_params {
        attrs.push_str(&format!(" data-rkmi-params=\"{}\"", custom.to_csv()));
    }
    if let Some(key) = &parts.pixel_public_key {
        attrs.push_str(&format!(" data-rekomi-org=\"{key}\""));
    }
    format!(
        "<!-- Rekomi tracking -->\n<script async src=\"{base}/api/v1/r/loader.js\"{attrs}></script>\n<noscript>\n <img src=\"{base}/api/v1/r/c.gif\" width=\"1\" height=\"1\" alt=\"\" />\n</noscript>"
    )
}
