//! What every request leaves behind for operators: an `X-Request-Id` (the client's, when it
//! sent a usable one, else a new one), echoed on the answer and carried by every log line the
//! request causes (the span covers the handler and the blocking database work it starts); the
//! `X-Rekomi-Source` label the spec lets clients send for support logs; one `request` log line;
//! and the request metrics (`rekomi_http_requests_total{method, route, status}`,
//! `rekomi_http_request_duration_seconds{method, route}`), labelled by the matched route
//! pattern, never the raw path, so ids do not multiply the series.

use std::future::{ready, Ready};
use std::rc::Rc;
use std::time::Instant;

use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::HttpMessage;
use futures_util::future::LocalBoxFuture;
use tracing::Instrument;

use crate::auth::RateRemaining;

/// The request id header, read and echoed.
pub const REQUEST_ID: &str = "x-request-id";
/// The optional support label of the spec.
pub const SOURCE: &str = "x-rekomi-source";

/// The longest client request id kept (longer ones are replaced).
const MAX_REQUEST_ID: usize = 128;
/// The longest `X-Rekomi-Source` logged.
const MAX_SOURCE: usize = 100;

/// A client's request id, if it is one we may log and echo: 1–128 characters of letters, digits
/// and `-_.:`.
pub fn usable_request_id(raw: &str) -> Option<&str> {
    let ok = !raw.is_empty() && raw.len() <= MAX_REQUEST_ID && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then_some(raw)
}

/// `X-Rekomi-Source` as logged: printable, at most 100 characters.
fn source_label(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(MAX_SOURCE).collect()
}

/// The middleware.
pub struct Observe;

impl<S, B> Transform<S, ServiceRequest> for Observe
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = ObserveService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ObserveService { service: Rc::new(service) }))
    }
}

/// The middleware around one service.
pub struct ObserveService<S> {
    service: Rc<S>,
}

impl<S, B> Service<ServiceRequest> for ObserveService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let request_id =
            header(REQUEST_ID).filter(|id| usable_request_id(id).is_some()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let source = header(SOURCE).map(|s| source_label(&s)).unwrap_or_default();
        let method = req.method().to_string();
        let path = req.path().to_owned();
        let span = tracing::info_span!("request", request_id = %request_id, http.method = %method, source = %source);
        let service = Rc::clone(&self.service);
        Box::pin(
            async move {
                let mut res = service.call(req).await?;
                let remaining = res.request().extensions().get::<RateRemaining>().copied();
                if let Some(RateRemaining(n)) = remaining {
                    res.headers_mut().insert(HeaderName::from_static("x-ratelimit-remaining"), HeaderValue::from(n));
                }
                if let Ok(value) = HeaderValue::from_str(&request_id) {
                    res.headers_mut().insert(HeaderName::from_static(REQUEST_ID), value);
                }
                let status = res.status().as_u16();
                let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
                let took = started.elapsed();
                metrics::counter!("rekomi_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status.to_string())
                    .increment(1);
                metrics::histogram!("rekomi_http_request_duration_seconds", "method" => method, "route" => route).record(took.as_secs_f64());
                tracing::info!(http.path = %path, http.status = status, latency_ms = took.as_millis() as u64, "request");
                Ok(res)
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_short_request_ids_are_kept() {
        for ok in ["abc", "01HZX3V9Q7K2", "req-1_2.3:4", &"a".repeat(128)] {
            assert_eq!(usable_request_id(ok), Some(ok));
        }
        for bad in ["", "with space", "new\\nline", "ü", &"a".repeat(129), "<script>"] {
            assert_eq!(usable_request_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn source_labels_lose_control_characters_and_are_capped() {
        assert_eq!(source_label("zapier\r\nfake: line"), "zapierfake: line");
        assert_eq!(source_label(&"x".repeat(300)).len(), 100);
    }
}
