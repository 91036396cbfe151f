//! The browser side of tracking, all anonymous: the loader script (`GET /api/v1/r/loader.js`),
//! the click it records (`POST /api/v1/r/click`, public CORS), and the no-script pixel
//! (`GET /api/v1/r/c.gif`), which answers its GIF whatever happens.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use rekomi_domain::kernel::ids::ProgramId;
use rekomi_domain::traffic::{ClickId, ClickTracker, PageClick, Visit};

use rekomi_domain::conversions::leads::LeadSignup;

use super::dto::{LeadSignupRequest, OpaqueOk, PageClickRequest, PageClickResponse};
use super::handlers::limit;
use super::visit;
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, BeaconJson};
use crate::AppState;

/// The loader, served as it is in the repository.
const LOADER_JS: &str = include_str!("loader.js");

/// The smallest transparent 1×1 GIF.
const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// Longest page URL or referrer taken from a browser.
const MAX_URL: usize = 2048;
/// Query parameters read of a page URL, at most.
const MAX_PARAMS: usize = 50;

fn tracker(state: &AppState) -> Result<&ClickTracker, ApiError> {
    state
        .clicks
        .as_deref()
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", "click tracking is not configured"))
}

/// Any page may call the browser endpoints; no credentials are involved.
fn with_cors(answer: ApiResult<HttpResponse>) -> HttpResponse {
    let mut response = answer.unwrap_or_else(|e| actix_web::ResponseError::error_response(&e));
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, header::HeaderValue::from_static("*"));
    response
}

/// The query pairs of a page URL, then those of its fragment (`Hash` links:
/// `brand.com/#via=jane`).
fn page_params(url: &url::Url) -> Vec<(String, String)> {
    let fragment = url.fragment().map(|f| form_urlencoded::parse(f.as_bytes())).into_iter().flatten();
    url.query_pairs()
        .chain(fragment)
        .take(MAX_PARAMS)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// An absolute http(s) URL of at most [`MAX_URL`] bytes.
fn page_url(field: &str, raw: &str) -> Result<url::Url, ApiError> {
    let url = (raw.len() <= MAX_URL).then(|| url::Url::parse(raw).ok()).flatten();
    url.filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| ApiError::invalid(field, format!("must be an absolute http(s) URL of at most {MAX_URL} bytes")))
}

/// The tracking loader.
#[utoipa::path(get, path = "/api/v1/r/loader.js", tag = "Traffic",
    responses((status = 200, description = "The loader script (`text/javascript`, `Cache-Control: public, max-age=3600`)", content_type = "text/javascript")))]
pub async fn loader() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(LOADER_JS)
}

/// Record a click from a page visit (the loader calls this).
///
/// The page URL's query is searched for the program's effective attribution parameters; the
/// first one naming an approved affiliate's link of the program's organization records a
/// click. `204` when there is nothing to record (no parameter, an unknown link, an unknown
/// program). Public CORS; `application/json` or `text/plain` bodies.
#[utoipa::path(post, path = "/api/v1/r/click", tag = "Traffic", request_body = PageClickRequest,
    responses((status = 200, body = PageClickResponse, description = "A click was recorded"),
        (status = 204, description = "Nothing to record"),
        (status = 400, description = "`invalid_json`; `validation_failed`: `programId` or `url`"),
        (status = 413, description = "`payload_too_large`"),
        (status = 415, description = "`unsupported_media_type`"),
        (status = 429, description = "`rate_limited`: the anonymous tracking limit"),
        (status = 503, description = "`service_unavailable`")))]
pub async fn click(state: web::Data<AppState>, req: HttpRequest, BeaconJson(body): BeaconJson<PageClickRequest>) -> HttpResponse {
    with_cors(record_click(&state, &req, body).await)
}

async fn record_click(state: &AppState, req: &HttpRequest, body: Result<PageClickRequest, ApiError>) -> ApiResult<HttpResponse> {
    limit(state, req)?;
    let body = body?;
    let program: ProgramId = parse_id(&body.program_id, "programId")?;
    let url = page_url("url", &body.url)?;
    let referrer = body.referrer.filter(|r| !r.is_empty()).map(|r| page_url("referrer", &r)).transpose()?;
    let tracker = tracker(state)?;
    let Some(visit) = visit::read(state, req) else { return Ok(HttpResponse::NoContent().finish()) };
    let visit = Visit { referrer: referrer.map(String::from), params: page_params(&url), page_url: Some(url.into()), ..visit };
    Ok(match tracker.record_page_visit(Some(program), visit).await? {
        Some(click) => HttpResponse::Ok().json(click_response(click)),
        None => HttpResponse::NoContent().finish(),
    })
}

fn click_response(c: PageClick) -> PageClickResponse {
    PageClickResponse {
        click_id: c.click.to_string(),
        slug: c.slug,
        program_id: c.program_id.as_uuid(),
        cookie_window_days: c.cookie_window_days,
        attribution_model: c.attribution_model.as_str(),
    }
}

/// Record a lead for the visitor's referral (`Rekomi.convert()` / `Rekomi.identify()`).
///
/// Always `200 {"ok": true}` for a well-formed body, whether or not a lead was recorded (an
/// unknown slug, another program's link, no live click of the slug's affiliate as `clickId`,
/// a repeat of the same email for the same affiliate), so the endpoint cannot tell who signed
/// up. Public CORS; `application/json` or `text/plain`.
#[utoipa::path(post, path = "/api/v1/r/lead/signup", tag = "Traffic", request_body = LeadSignupRequest,
    responses((status = 200, body = OpaqueOk),
        (status = 400, description = "`invalid_json`; `validation_failed`: `slug`, `email`, `name`, `programId` or `clickId`"),
        (status = 413, description = "`payload_too_large`"),
        (status = 415, description = "`unsupported_media_type`"),
        (status = 429, description = "`rate_limited`: the anonymous tracking limit"),
        (status = 503, description = "`service_unavailable`")))]
pub async fn lead_signup(state: web::Data<AppState>, req: HttpRequest, BeaconJson(body): BeaconJson<LeadSignupRequest>) -> HttpResponse {
    with_cors(record_lead(&state, &req, body).await)
}

async fn record_lead(state: &AppState, req: &HttpRequest, body: Result<LeadSignupRequest, ApiError>) -> ApiResult<HttpResponse> {
    limit(state, req)?;
    let body = body?;
    let program: Option<ProgramId> = body.program_id.as_deref().map(|p| parse_id(p, "programId")).transpose()?;
    let click = match body.click_id.as_deref() {
        Some(raw) => Some(ClickId::parse(raw).ok_or_else(|| ApiError::invalid("clickId", "must be a click id (rkc_ and 32 hex digits)"))?),
        None => None,
    };
    let lead = LeadSignup::parse("slug", &body.slug, &body.email, body.name.as_deref(), None)?;
    state.services.record_browser_lead(program, click, lead).await?;
    Ok(HttpResponse::Ok().json(OpaqueOk { ok: true }))
}

#[utoipa::path(options, path = "/api/v1/r/click", tag = "Traffic",
    responses((status = 204, description = "`Access-Control-Allow-Origin: *`, methods `POST, OPTIONS`, header `Content-Type`")))]
pub async fn click_preflight() -> HttpResponse {
    preflight()
}

/// The CORS preflight of `POST /api/v1/r/lead/signup`.
#[utoipa::path(options, path = "/api/v1/r/lead/signup", tag = "Traffic",
    responses((status = 204, description = "`Access-Control-Allow-Origin: *`, methods `POST, OPTIONS`, header `Content-Type`")))]
pub async fn lead_preflight() -> HttpResponse {
    preflight()
}

fn preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST, OPTIONS"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "Content-Type"))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish()
}

/// The no-script pixel.
///
/// Records a click from its own query (`via` or another default attribution parameter,
/// `pid` to name the program) or, without one, from the `Referer` page's query. Always a 1×1
/// GIF with `Cache-Control: no-store`, whatever the input, the limit or the database say.
#[utoipa::path(get, path = "/api/v1/r/c.gif", tag = "Traffic",
    params(("pid" = Option<Uuid>, Query, description = "The program; without it the link is looked up in every organization")),
    responses((status = 200, description = "A 1×1 transparent GIF", content_type = "image/gif")))]
pub async fn pixel(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if let Err(e) = record_pixel(&state, &req).await {
        // The image is answered anyway: a page must never show a broken pixel.
        if e.status().is_server_error() {
            tracing::warn!(error = %e, "pixel click not recorded");
        }
    }
    HttpResponse::Ok().content_type("image/gif").insert_header((header::CACHE_CONTROL, "no-store")).body(PIXEL_GIF)
}

async fn record_pixel(state: &AppState, req: &HttpRequest) -> ApiResult<()> {
    limit(state, req)?;
    let tracker = tracker(state)?;
    let Some(visit) = visit::read(state, req) else { return Ok(()) };
    let program = visit.params.iter().find(|(k, _)| k == "pid").map(|(_, v)| parse_id::<ProgramId>(v, "pid")).transpose()?;
    let own: Vec<(String, String)> = visit.params.iter().filter(|(k, _)| k != "pid").cloned().collect();
    let page = visit.referrer.as_deref().and_then(|r| page_url("referrer", r).ok());
    // The Referer of an image is the page it is on; that page's own referrer is unknown.
    let (params, page_url) = match (own.is_empty(), page) {
        (false, page) => (own, page.map(String::from)),
        (true, Some(page)) => (page_params(&page), Some(page.into())),
        (true, None) => return Ok(()),
    };
    let visit = Visit { referrer: None, params, page_url, ..visit };
    tracker.record_page_visit(program, visit).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use rekomi_domain::traffic::params::DEFAULT_PARAMS;

    use super::*;

    #[test]
    fn the_loader_looks_for_the_servers_default_params_in_the_same_order() {
        let line = LOADER_JS.lines().find(|l| l.trim_start().starts_with("var DEFAULTS = [")).expect("the DEFAULTS line");
        let list = line.split('[').nth(1).and_then(|rest| rest.split(']').next()).expect("a list");
        let names: Vec<&str> = list.split(',').map(|n| n.trim().trim_matches('"')).collect();
        assert_eq!(names, DEFAULT_PARAMS);
    }

    #[test]
    fn the_pixel_is_a_one_by_one_gif() {
        assert_eq!(&PIXEL_GIF[..6], b"GIF89a");
        assert_eq!((PIXEL_GIF[6], PIXEL_GIF[8]), (1, 1));
        assert_eq!(PIXEL_GIF.last(), Some(&0x3b));
    }
}
