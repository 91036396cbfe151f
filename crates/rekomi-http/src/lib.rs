//! Rekomi's inbound HTTP adapter: actix-web routes over the domain's use cases, the spec's
//! error envelope, strict request decoding, API-key and JWT authentication, per-key rate
//! limits and the OpenAPI document. Handlers translate; they hold no business rules and open
//! no transactions.
//!
//! One folder per capability (docs/adr/0005-capability-layout.md), each with its handlers,
//! their OpenAPI annotations, its bodies (`dto`) and its routes (`configure`); the files at the
//! top hold what they share: authentication, the error envelope, strict extractors, the shared
//! bodies (`dto`), rate limits and the OpenAPI document.

pub mod auth;
pub mod catalogue;
pub mod client_ip;
pub mod csv;
pub mod dto;
pub mod error;
pub mod extract;
pub mod health;
pub mod observe;
pub mod openapi;
pub mod ratelimit;

pub mod affiliates;
pub mod conversions;
pub mod coupons;
pub mod orgs;
pub mod outbound;
pub mod payouts;
pub mod programs;
pub mod stripe_inbox;
pub mod tracking;
pub mod traffic;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{AppService, HttpServiceFactory, Server};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, App, FromRequest, Handler, HttpResponse, HttpServer, Responder, ResponseError};
use rekomi_domain::services::Services;
use rekomi_domain::traffic::ClickTracker;

use crate::error::ApiError;
use crate::ratelimit::{RateLimiter, REQUESTS_PER_MINUTE};

/// What every handler can reach.
pub struct AppState {
    /// The use cases.
    pub services: Services,
    /// The HS256 secret of dashboard and affiliate JWTs; `None` disables JWT auth.
    pub jwt_secret: Option<Arc<str>>,
    /// The per-key limiter.
    pub limiter: RateLimiter,
    /// Stripe webhook signing secrets (`whsec_…`; several during rotation).
    pub stripe_webhook_secrets: Vec<String>,
    /// Whether Stripe events must be live (`Some(true)`), test (`Some(false)`), or either
    /// (`None`, local mode).
    pub stripe_livemode: Option<bool>,
    /// Token lifetimes and the failed-authentication limit.
    pub auth: auth::AuthPolicy,
    /// Renders the process's metrics in the Prometheus text format for `GET /metrics`; `None`
    /// answers 404.
    pub metrics: Option<Arc<dyn Fn() -> String + Send + Sync>>,
    /// When set, `GET /metrics` needs `Authorization: Bearer <this token>`.
    pub metrics_token: Option<Arc<str>>,
    /// How a request's client address is found (limits, click hashing).
    pub client_ip: client_ip::ClientIpPolicy,
    /// Click tracking (`/r/{slug}`); `None` answers `503 service_unavailable`.
    pub clicks: Option<Arc<ClickTracker>>,
    /// The anonymous tracking endpoints' per-address limit and the trusted country header.
    pub tracking: traffic::TrackingPolicy,
    /// Where browsers reach this server (`REKOMI_PUBLIC_URL`), for the install snippet.
    pub public_url: Arc<str>,
    /// The per-key limit of the signed server-to-server endpoints (`/api/tracking/*`);
    /// `None` turns it off.
    pub s2s_limiter: Option<RateLimiter>,
    /// The signing secrets of organizations that sent S2S requests recently.
    pub s2s_secrets: rekomi_domain::tracking::SecretCache,
    /// The API keys of recent S2S callers.
    pub s2s_keys: auth::S2sKeyCache,
}

impl AppState {
    /// State with the standard 600 requests/minute limiter.
    pub fn new(services: Services, jwt_secret: Option<String>, stripe_webhook_secrets: Vec<String>) -> Self {
        Self {
            services,
            jwt_secret: jwt_secret.map(Arc::from),
            limiter: RateLimiter::per_minute(REQUESTS_PER_MINUTE),
            stripe_webhook_secrets,
            stripe_livemode: None,
            auth: auth::AuthPolicy::default(),
            metrics: None,
            metrics_token: None,
            client_ip: client_ip::ClientIpPolicy::default(),
            clicks: None,
            tracking: traffic::TrackingPolicy::default(),
            public_url: Arc::from("http://127.0.0.1:8080"),
            s2s_limiter: Some(RateLimiter::per_minute(tracking::S2S_REQUESTS_PER_MINUTE)),
            s2s_secrets: rekomi_domain::tracking::SecretCache::new(),
            s2s_keys: auth::S2sKeyCache::default(),
        }
    }
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint"))
}

/// `405 method_not_allowed` with an `Allow` header naming the methods the resource accepts.
fn method_not_allowed(allow: &str) -> HttpResponse {
    let mut res = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this endpoint does not accept that method; it accepts {allow}"),
    )
    .error_response();
    if let Ok(value) = HeaderValue::from_str(allow) {
        res.headers_mut().insert(header::ALLOW, value);
    }
    res
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "Operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(openapi::document())
}

/// A resource whose routes are added one method at a time, so the methods its `405` answers
/// list in `Allow` are exactly the routes registered, never a second hand-written list.
pub(crate) struct Endpoint {
    resource: actix_web::Resource,
    methods: Vec<Method>,
}

/// Starts the resource at `path`.
pub(crate) fn resource(path: &str) -> Endpoint {
    Endpoint { resource: web::resource(path), methods: Vec::new() }
}

impl Endpoint {
    fn route<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.methods.push(method.clone());
        self.resource = self.resource.route(web::method(method).to(handler));
        self
    }

    pub(crate) fn get<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::GET, handler)
    }

    pub(crate) fn post<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::POST, handler)
    }

    pub(crate) fn put<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::PUT, handler)
    }

    pub(crate) fn patch<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::PATCH, handler)
    }

    pub(crate) fn options<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::OPTIONS, handler)
    }

    pub(crate) fn delete<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::DELETE, handler)
    }
}

impl HttpServiceFactory for Endpoint {
    fn register(self, config: &mut AppService) {
        let allow: Arc<str> = Arc::from(self.methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", "));
        let resource = self.resource.default_service(web::to(move || {
            let allow = Arc::clone(&allow);
            async move { method_not_allowed(&allow) }
        }));
        resource.register(config);
    }
}

/// Registers every route: each capability registers its own.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure)
        .service(resource("/api/v1/openapi.json").get(openapi_json))
        .configure(orgs::configure)
        .configure(programs::configure)
        .configure(affiliates::configure)
        .configure(coupons::configure)
        .configure(outbound::configure)
        .configure(stripe_inbox::configure)
        .configure(conversions::configure)
        .configure(payouts::configure)
        .configure(traffic::configure)
        .configure(tracking::configure);
}

/// Builds the HTTP server on an already bound listener (tests bind port 0).
///
/// # Errors
/// When the listener cannot be used.
pub fn build_server(listener: TcpListener, state: AppState, workers: usize) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new().app_data(state.clone()).wrap(observe::Observe).configure(configure).default_service(web::to(not_found))
    })
    .workers(workers.max(1))
    .listen(listener)?
    .run();
    Ok(server)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeSet;

    use actix_web::test as actix_test;
    use actix_web::{web, App};
    use serde_json::Value;

    use super::*;

    #[test]
    fn the_router_takes_exactly_the_documented_methods_and_405s_name_them_in_allow() {
        actix_web::rt::System::new().block_on(async {
            // No application state: handlers fail, but routing (and the 405s) happen first.
            let app = actix_test::init_service(App::new().configure(configure).default_service(web::to(not_found))).await;
            let doc: Value = serde_json::from_str(&openapi::document()).unwrap();
            for (path, item) in doc["paths"].as_object().unwrap() {
                let documented: BTreeSet<String> = item.as_object().unwrap().keys().map(|m| m.to_ascii_uppercase()).collect();
                let uri = path
                    .split('/')
                    .map(|seg| if seg.starts_with('{') { "0190a2b3-c4d5-7e6f-8091-a2b3c4d5e6f7" } else { seg })
                    .collect::<Vec<_>>()
                    .join("/");
                for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] {
                    let req =
                        actix_test::TestRequest::default().method(Method::from_bytes(method.as_bytes()).unwrap()).uri(&uri).to_request();
                    let res = actix_test::call_service(&app, req).await;
                    if documented.contains(method) {
                        assert_ne!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is documented but not routed");
                        assert_ne!(res.status(), StatusCode::NOT_FOUND, "{method} {path} is documented but not routed");
                    } else {
                        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                        let allow: BTreeSet<String> = res
                            .headers()
                            .get(header::ALLOW)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .split(", ")
                            .map(str::to_owned)
                            .collect();
                        assert_eq!(allow, documented, "{method} {path}: Allow");
                    }
                }
            }
        });
    }
}
