//! Rekomi's inbound HTTP adapter: actix-web routes over the domain's use cases, the spec's
//! error envelope, strict request decoding, API-key and JWT authentication, per-key rate
//! limits and the OpenAPI document. Handlers translate; they hold no business rules and open
//! no transactions.

pub mod auth;
pub mod dto;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod ratelimit;
pub mod routes;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Server, Service};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpMessage, HttpResponse, HttpServer};
use rekomi_domain::usecases::Services;

use crate::auth::RateRemaining;
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
        }
    }
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint"))
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this endpoint does not accept that method"))
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(openapi::document())
}

fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use routes::webhook_endpoints as endpoints;
    use routes::{affiliates, conversions, coupons, org, programs, stripe_webhooks};
    cfg.service(resource("/healthz").route(web::get().to(org::healthz)))
        .service(resource("/readyz").route(web::get().to(org::readyz)))
        .service(resource("/api/v1/openapi.json").route(web::get().to(openapi_json)))
        .service(resource("/api/organizations/me").route(web::get().to(org::me)))
        .service(resource("/api/billing/state").route(web::get().to(org::billing)))
        .service(resource("/api/v1/programs").route(web::get().to(programs::list)).route(web::post().to(programs::create)))
        .service(
            resource("/api/v1/programs/{id}")
                .route(web::get().to(programs::get))
                .route(web::patch().to(programs::update))
                .route(web::delete().to(programs::delete)),
        )
        .service(resource("/api/v1/affiliates").route(web::get().to(affiliates::list)).route(web::post().to(affiliates::create)))
        .service(resource("/api/v1/affiliates/applications").route(web::get().to(affiliates::applications)))
        .service(resource("/api/v1/affiliates/bulk-action").route(web::post().to(affiliates::bulk)))
        .service(resource("/api/v1/affiliates/{id}").route(web::get().to(affiliates::get)).route(web::patch().to(affiliates::update)))
        .service(resource("/api/v1/affiliates/{id}/approve").route(web::post().to(affiliates::approve)))
        .service(resource("/api/v1/affiliates/{id}/reject").route(web::post().to(affiliates::reject)))
        .service(
            resource("/api/v1/affiliates/{affiliateId}/coupons")
                .route(web::get().to(coupons::list_affiliate))
                .route(web::post().to(coupons::create_affiliate)),
        )
        .service(resource("/api/v1/affiliates/{affiliateId}/coupons/{id}").route(web::delete().to(coupons::revoke_affiliate)))
        .service(
            resource("/api/v1/campaigns/{programId}/coupons")
                .route(web::get().to(coupons::list_campaign))
                .route(web::post().to(coupons::create_campaign)),
        )
        .service(
            resource("/api/v1/campaigns/{programId}/coupons/{id}")
                .route(web::get().to(coupons::get_campaign))
                .route(web::patch().to(coupons::update_campaign))
                .route(web::delete().to(coupons::delete_campaign)),
        )
        .service(resource("/api/v1/campaigns/{programId}/coupons/{id}/archive").route(web::post().to(coupons::archive_campaign)))
        .service(resource("/api/v1/promotional-codes").route(web::get().to(coupons::lookup)))
        .service(resource("/api/me/coupons/mint").route(web::post().to(coupons::self_mint)))
        .service(resource("/api/v1/webhook-endpoints").route(web::get().to(endpoints::list)).route(web::post().to(endpoints::create)))
        .service(
            resource("/api/v1/webhook-endpoints/{id}")
                .route(web::get().to(endpoints::get))
                .route(web::patch().to(endpoints::update))
                .route(web::delete().to(endpoints::delete)),
        )
        .service(resource("/api/v1/webhook-endpoints/{id}/rotate-secret").route(web::post().to(endpoints::rotate_secret)))
        .service(resource("/api/v1/webhook-endpoints/{id}/deliveries").route(web::get().to(endpoints::deliveries)))
        .service(resource("/api/v1/webhook-endpoints/{id}/deliveries/{deliveryId}/redeliver").route(web::post().to(endpoints::redeliver)))
        .service(resource("/api/webhooks/stripe").route(web::post().to(stripe_webhooks::receive)))
        .service(resource("/api/v1/webhooks/stripe/events").route(web::get().to(conversions::list_events)))
        .service(resource("/api/v1/webhooks/stripe/events/{id}/replay").route(web::post().to(conversions::replay_event)))
        .service(resource("/api/v1/conversions").route(web::get().to(conversions::list)))
        .service(resource("/api/v1/conversions/export.csv").route(web::get().to(conversions::export)))
        .service(resource("/api/v1/conversions/{id}").route(web::get().to(conversions::get)))
        .service(resource("/api/v1/conversions/{id}/attribution").route(web::get().to(conversions::attribution)))
        .service(
            resource("/api/v1/programs/{id}/sub-affiliate-config")
                .route(web::get().to(conversions::get_sub_config))
                .route(web::put().to(conversions::put_sub_config)),
        )
        .service(resource("/api/v1/affiliates/{id}/sub-affiliates").route(web::get().to(conversions::sub_affiliates)));
}

/// Builds the HTTP server on an already bound listener (tests bind port 0).
///
/// # Errors
/// When the listener cannot be used.
pub fn build_server(listener: TcpListener, state: AppState, workers: usize) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap_fn(|req, srv| {
                let started = Instant::now();
                let method = req.method().to_string();
                let path = req.path().to_owned();
                let fut = srv.call(req);
                async move {
                    let mut res = fut.await?;
                    let remaining = res.request().extensions().get::<RateRemaining>().copied();
                    if let Some(RateRemaining(n)) = remaining {
                        res.headers_mut().insert(HeaderName::from_static("x-ratelimit-remaining"), HeaderValue::from(n));
                    }
                    tracing::info!(
                        http.method = %method,
                        http.path = %path,
                        http.status = res.status().as_u16(),
                        latency_ms = started.elapsed().as_millis() as u64,
                        "request"
                    );
                    Ok(res)
                }
            })
            .configure(configure)
            .default_service(web::to(not_found))
    })
    .workers(workers.max(1))
    .listen(listener)?
    .run();
    Ok(server)
}
