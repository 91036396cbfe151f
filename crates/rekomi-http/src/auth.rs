//! Authentication extractors.
//!
//! - [`Brand`]: `Authorization: Bearer rk_live_…` API keys (scope by method: GET/HEAD/OPTIONS
//!   need `read`, everything else `read_write`) or dashboard JWTs (HS256, claims `sub`,
//!   `org_id`, `role`). Both are rate limited per key/user.
//! - [`AffiliateAuth`]: affiliate JWTs (same secret, `aud` = `affiliate`, `sub`, `email`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::Payload;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rekomi_domain::actor::{AffiliateActor, BrandActor, Role};
use rekomi_domain::ids::OrgId;
use rekomi_domain::org::{ApiKeyScope, API_KEY_PREFIX};
use rekomi_domain::usecases::BrandContext;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ratelimit::Decision;
use crate::AppState;

/// The audience claim of affiliate-side tokens.
pub const AFFILIATE_AUDIENCE: &str = "affiliate";

/// The remaining quota, stored on the request so a middleware can add the header.
#[derive(Clone, Copy, Debug)]
pub struct RateRemaining(pub u32);

/// An authenticated brand-side caller.
pub struct Brand(pub BrandContext);

#[derive(Debug, Deserialize)]
struct DashboardClaims {
    sub: String,
    org_id: String,
    role: String,
    #[serde(default)]
    aud: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct AffiliateClaims {
    sub: String,
    email: String,
}

#[derive(Serialize)]
struct IssuedDashboardClaims<'a> {
    sub: &'a str,
    org_id: String,
    role: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Serialize)]
struct IssuedAffiliateClaims<'a> {
    sub: &'a str,
    email: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

/// Signs a dashboard JWT (for operators and local development; production dashboards get
/// theirs from the identity provider sharing `REKOMI_JWT_SECRET`).
///
/// # Errors
/// When signing fails.
pub fn issue_dashboard_token(
    secret: &str,
    org: OrgId,
    sub: &str,
    role: Role,
    now_unix: i64,
    ttl_secs: i64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let role = match role {
        Role::Owner => "Owner",
        Role::Manager => "Manager",
        Role::Viewer => "Viewer",
    };
    let claims = IssuedDashboardClaims { sub, org_id: org.to_string(), role, iat: now_unix, exp: now_unix + ttl_secs };
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
}

/// Signs an affiliate-side JWT (`aud` = `affiliate`).
///
/// # Errors
/// When signing fails.
pub fn issue_affiliate_token(
    secret: &str,
    sub: &str,
    email: &str,
    now_unix: i64,
    ttl_secs: i64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let claims = IssuedAffiliateClaims { sub, email, aud: AFFILIATE_AUDIENCE, iat: now_unix, exp: now_unix + ttl_secs };
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
}

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("unauthorized", "send Authorization: Bearer <rk_live_ key or token>"))?;
    let value = value.to_str().map_err(|_| ApiError::unauthorized("unauthorized", "the Authorization header is not valid text"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("unauthorized", "the Authorization header must be Bearer <token>"))?;
    Ok(token.to_owned())
}

fn required_scope(method: &Method) -> ApiKeyScope {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        ApiKeyScope::Read
    } else {
        ApiKeyScope::ReadWrite
    }
}

fn validation(audience: Option<&str>) -> Validation {
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = 30;
    match audience {
        Some(aud) => v.set_audience(&[aud]),
        None => v.validate_aud = false,
    }
    v
}

fn invalid_token() -> ApiError {
    ApiError::unauthorized("invalid_token", "the bearer token is invalid or expired")
}

fn state_of(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>().cloned().ok_or_else(|| ApiError::internal(&"application state missing"))
}

fn rate_limit(state: &AppState, req: &HttpRequest, key: &str) -> Result<(), ApiError> {
    match state.limiter.check(key, Instant::now()) {
        Decision::Allowed { remaining } => {
            req.extensions_mut().insert(RateRemaining(remaining));
            Ok(())
        }
        Decision::Limited { retry_after_secs } => Err(ApiError::rate_limited(retry_after_secs)),
    }
}

async fn authenticate_brand(state: web::Data<AppState>, req: HttpRequest) -> Result<Brand, ApiError> {
    let token = bearer(&req)?;
    if token.starts_with(API_KEY_PREFIX) {
        let (ctx, scope) = state
            .services
            .authenticate_api_key(&token)
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid_api_key", "the API key is unknown or revoked"))?;
        rate_limit(&state, &req, &format!("key:{}", ctx.actor_key()))?;
        let needed = required_scope(req.method());
        if !scope.satisfies(needed) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("this request needs an API key with {} scope", needed.as_str()),
            ));
        }
        return Ok(Brand(ctx));
    }
    let secret = state.jwt_secret.as_ref().ok_or_else(invalid_token)?;
    let data =
        decode::<DashboardClaims>(&token, &DecodingKey::from_secret(secret.as_bytes()), &validation(None)).map_err(|_| invalid_token())?;
    let claims = data.claims;
    let affiliate_audience = match &claims.aud {
        Some(serde_json::Value::String(a)) => a == AFFILIATE_AUDIENCE,
        Some(serde_json::Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(AFFILIATE_AUDIENCE)),
        _ => false,
    };
    if affiliate_audience || claims.sub.trim().is_empty() {
        return Err(ApiError::unauthorized("invalid_token", "affiliate tokens cannot call brand endpoints"));
    }
    let org: OrgId = claims.org_id.parse().map_err(|_| invalid_token())?;
    let role: Role = claims.role.parse().map_err(|_| invalid_token())?;
    rate_limit(&state, &req, &format!("user:{}:{}", org, claims.sub))?;
    let actor = BrandActor::User { org, user_id: claims.sub, role };
    let ctx = state.services.brand_context_for_user(actor).await?.ok_or_else(invalid_token)?;
    Ok(Brand(ctx))
}

trait ActorKey {
    fn actor_key(&self) -> String;
}

impl ActorKey for BrandContext {
    fn actor_key(&self) -> String {
        match &self.actor {
            BrandActor::ApiKey { key, .. } => key.to_string(),
            BrandActor::User { user_id, .. } => user_id.clone(),
        }
    }
}

impl FromRequest for Brand {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state_of(&req)?;
            authenticate_brand(state, req).await
        })
    }
}

/// An authenticated affiliate-side caller.
pub struct AffiliateAuth(pub AffiliateActor);

impl FromRequest for AffiliateAuth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state_of(&req)?;
            let token = bearer(&req)?;
            if token.starts_with(API_KEY_PREFIX) {
                return Err(ApiError::unauthorized("invalid_token", "this endpoint takes an affiliate token, not an API key"));
            }
            let secret: &Arc<str> = state.jwt_secret.as_ref().ok_or_else(invalid_token)?;
            let data =
                decode::<AffiliateClaims>(&token, &DecodingKey::from_secret(secret.as_bytes()), &validation(Some(AFFILIATE_AUDIENCE)))
                    .map_err(|_| invalid_token())?;
            let email = rekomi_domain::affiliate::Email::parse("email", &data.claims.email).map_err(|_| invalid_token())?;
            if data.claims.sub.trim().is_empty() {
                return Err(invalid_token());
            }
            rate_limit(&state, &req, &format!("affiliate:{}", data.claims.sub))?;
            Ok(AffiliateAuth(AffiliateActor { user_id: data.claims.sub, email: email.as_str().to_owned() }))
        })
    }
}
