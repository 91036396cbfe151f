//! Reading a visit off a request.

use actix_web::http::header;
use actix_web::HttpRequest;
use rekomi_domain::traffic::Visit;

use crate::traffic::device;
use crate::AppState;

/// Query parameters kept of a visit, at most (the rest are ignored, not an error).
const MAX_PARAMS: usize = 50;
/// Longest User-Agent kept.
const MAX_USER_AGENT: usize = 512;
/// Longest `Referer` read.
const MAX_REFERRER: usize = 2048;

/// The visit `req` describes, or `None` when it has no client address (never over a socket).
pub fn read(state: &AppState, req: &HttpRequest) -> Option<Visit> {
    let ip = state.client_ip.client_ip(req)?;
    let text = |name: header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let user_agent: String = text(header::USER_AGENT).unwrap_or_default().chars().take(MAX_USER_AGENT).collect();
    let referrer = text(header::REFERER).filter(|r| !r.is_empty() && r.len() <= MAX_REFERRER).map(str::to_owned);
    let country = state
        .tracking
        .country_header
        .as_deref()
        .and_then(|name| req.headers().get(name))
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()))
        .map(str::to_ascii_uppercase);
    let params = form_urlencoded::parse(req.query_string().as_bytes())
        .take(MAX_PARAMS)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .filter(|(k, _)| !k.is_empty())
        .collect();
    Some(Visit { ip, device: device::classify(&user_agent), user_agent, referrer, country, params, page_url: None })
}
