//! Authentication extractors.
//!
//! - [`Brand`]: `Authorization: Bearer rk_live_…` API keys (scope by method: GET/HEAD/OPTIONS
//!   need `read`, everything else `read_write`) or dashboard JWTs (HS256, claims `sub`,
//!   `org_id`, `role`). Both are rate limited per key/user.
//! - [`ApiKeyCaller`]: API keys only, in `X-Rekomi-Api-Key` or `Authorization: Bearer`, for
//!   server-to-server tracking (`read_write` scope; a per-key budget of its own, and the
//!   authentication reused for [`S2S_KEY_CACHE_TTL`], see [`S2sKeyCache`]).
//! - [`AffiliateAuth`]: affiliate JWTs (same secret, `aud` = `affiliate` required, `sub`,
//!   `email`; a token that carries a dashboard's `org_id` or `role` is refused).
//!
//! Every JWT must be unexpired, past its `nbf`, not issued in the future (beyond a 30 s
//! leeway), and live at most [`AuthPolicy::max_token_ttl`] (from `iat` when it has one, else
//! from now). Failed authentications are limited per client address
//! ([`AUTH_FAILURES_PER_MINUTE`]): past the budget, requests from that address answer `429`
//! before their credentials are looked up, so unknown keys cannot be tried at full speed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::Payload;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rekomi_domain::kernel::actor::{AffiliateActor, BrandActor, Role};
use rekomi_domain::kernel::ids::OrgId;
use rekomi_domain::kernel::ttl_cache::TtlCache;
use rekomi_domain::orgs::{hash_api_key, ApiKeyScope, API_KEY_PREFIX};
use rekomi_domain::services::BrandContext;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ratelimit::{Decision, RateLimiter};
use crate::AppState;

/// The audience claim of affiliate-side tokens.
pub const AFFILIATE_AUDIENCE: &str = "affiliate";

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
const LEEWAY_SECS: i64 = 30;

/// Failed authentications (unknown keys, invalid tokens) one client address may make per
/// minute before its requests are refused with `429` for a while.
pub const AUTH_FAILURES_PER_MINUTE: u32 = 30;

/// The longest JWT lifetime accepted unless configured (`REKOMI_JWT_MAX_TTL`): 24 hours.
pub const DEFAULT_MAX_TOKEN_TTL_SECS: i64 = 24 * 3600;

/// How credentials are judged beyond their signature.
#[derive(Debug)]
pub struct AuthPolicy {
    /// The longest lifetime (`exp` − `iat`, or `exp` − now without `iat`) of a JWT, seconds.
    pub max_token_ttl: i64,
    /// Failed authentications per client address.
    pub failures: RateLimiter,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        Self { max_token_ttl: DEFAULT_MAX_TOKEN_TTL_SECS, failures: RateLimiter::per_minute(AUTH_FAILURES_PER_MINUTE) }
    }
}

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
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct AffiliateClaims {
    sub: String,
    email: String,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    /// A dashboard claim: its presence makes the token no affiliate token.
    #[serde(default)]
    org_id: Option<serde_json::Value>,
    /// Likewise.
    #[serde(default)]
    role: Option<serde_json::Value>,
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
    v.leeway = LEEWAY_SECS.unsigned_abs();
    v.validate_nbf = true;
    match audience {
        Some(aud) => {
            v.set_audience(&[aud]);
            // Without this a token with no `aud` at all would pass the audience check.
            v.set_required_spec_claims(&["exp", "aud"]);
        }
        None => v.validate_aud = false,
    }
    v
}

/// Refuses a token issued in the future or living longer than the policy allows.
fn check_lifetime(policy: &AuthPolicy, iat: Option<i64>, exp: i64) -> Result<(), ApiError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if iat.is_some_and(|iat| iat > now + LEEWAY_SECS) {
        return Err(ApiError::unauthorized("invalid_token", "the bearer token is issued in the future"));
    }
    let lifetime = exp.saturating_sub(iat.unwrap_or(now));
    if lifetime > policy.max_token_ttl {
        return Err(ApiError::unauthorized("invalid_token", "the bearer token lives longer than this server accepts"));
    }
    Ok(())
}

/// Runs `authenticate` unless the client's address has used up its failed-authentication
/// budget, and charges the budget when it answers `401`.
async fn limit_failures<T>(
    state: &AppState,
    req: &HttpRequest,
    authenticate: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let address = format!("auth:{}", state.client_ip.key(req));
    if let Some(retry_after) = state.auth.failures.exhausted(&address, Instant::now()) {
        return Err(too_many_failures(retry_after));
    }
    let result = authenticate.await;
    if result.as_ref().is_err_and(|e| e.status() == StatusCode::UNAUTHORIZED) {
        if let Decision::Limited { retry_after_secs } = state.auth.failures.check(&address, Instant::now()) {
            return Err(too_many_failures(retry_after_secs));
        }
    }
    result
}

fn too_many_failures(retry_after: u64) -> ApiError {
    ApiError::rate_limited_because(
        retry_after,
        &format!("too many failed authentications from this address ({AUTH_FAILURES_PER_MINUTE} per minute); retry later"),
    )
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
    check_lifetime(&state.auth, claims.iat, claims.exp)?;
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
            limit_failures(&state, &req, authenticate_brand(state.clone(), req.clone())).await
        })
    }
}

/// The alternative to `Authorization: Bearer` on server-to-server tracking.
pub const API_KEY_HEADER: &str = "x-rekomi-api-key";

/// A brand's server, authenticated by an `rk_live_…` API key (never a JWT) sent in
/// `X-Rekomi-Api-Key` or `Authorization: Bearer`; the key needs `read_write` scope. Rate limited
/// and failure-limited like [`Brand`].
pub struct ApiKeyCaller(pub BrandContext);

/// How long a server-to-server caller's authentication is reused.
pub const S2S_KEY_CACHE_TTL: time::Duration = time::Duration::seconds(10);
/// Keys remembered, at most.
const S2S_KEY_CACHE_CAPACITY: usize = 10_000;

/// Recently authenticated API keys of server-to-server callers, by the key's hash: a brand's
/// server reporting sale after sale would otherwise pay a transaction per request to look its
/// key and organization up again. Only successful authentications are kept, for
/// [`S2S_KEY_CACHE_TTL`]: a revoked key, or an organization's new plan or subscription status,
/// takes effect on `/api/tracking/*` within that long (everywhere else, at once). The context
/// keeps the time it was authenticated at, so a trial that ends meanwhile stops passing the
/// plan gate within the TTL too.
#[derive(Debug)]
pub struct S2sKeyCache(TtlCache<String, (BrandContext, ApiKeyScope)>);

impl Default for S2sKeyCache {
    fn default() -> Self {
        Self(TtlCache::new(S2S_KEY_CACHE_TTL, S2S_KEY_CACHE_CAPACITY))
    }
}

impl S2sKeyCache {
    fn get(&self, key: &str) -> Option<(BrandContext, ApiKeyScope)> {
        self.0.get(&hash_api_key(key), time::OffsetDateTime::now_utc())
    }

    fn put(&self, key: &str, found: &(BrandContext, ApiKeyScope)) {
        self.0.put(hash_api_key(key), found.clone(), time::OffsetDateTime::now_utc());
    }
}

fn api_key_of(req: &HttpRequest) -> Result<String, ApiError> {
    let Some(value) = req.headers().get(API_KEY_HEADER) else {
        let token = bearer(req).map_err(|_| {
            ApiError::unauthorized("unauthorized", "send the API key as X-Rekomi-Api-Key: rk_live_… or Authorization: Bearer rk_live_…")
        })?;
        return Ok(token);
    };
    let key = value.to_str().map_err(|_| ApiError::unauthorized("unauthorized", "the X-Rekomi-Api-Key header is not valid text"))?.trim();
    if key.is_empty() {
        return Err(ApiError::unauthorized("unauthorized", "the X-Rekomi-Api-Key header is empty"));
    }
    Ok(key.to_owned())
}

async fn authenticate_api_key_caller(state: &AppState, req: &HttpRequest) -> Result<ApiKeyCaller, ApiError> {
    let key = api_key_of(req)?;
    if !key.starts_with(API_KEY_PREFIX) {
        return Err(ApiError::unauthorized("invalid_api_key", "this endpoint takes an rk_live_ API key, not a token"));
    }
    let (ctx, scope) = match state.s2s_keys.get(&key) {
        Some(found) => found,
        None => {
            let found = state
                .services
                .authenticate_api_key(&key)
                .await?
                .ok_or_else(|| ApiError::unauthorized("invalid_api_key", "the API key is unknown or revoked"))?;
            state.s2s_keys.put(&key, &found);
            found
        }
    };
    // Server-to-server traffic has its own, larger budget: a brand's server reports every sale.
    if let Some(limiter) = &state.s2s_limiter {
        match limiter.check(&format!("s2s:{}", ctx.actor_key()), Instant::now()) {
            Decision::Allowed { remaining } => {
                req.extensions_mut().insert(RateRemaining(remaining));
            }
            Decision::Limited { retry_after_secs } => {
                return Err(ApiError::rate_limited_because(retry_after_secs, "over the server-to-server limit for this API key"));
            }
        }
    }
    if !scope.satisfies(ApiKeyScope::ReadWrite) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "insufficient_scope", "this request needs an API key with read_write scope"));
    }
    Ok(ApiKeyCaller(ctx))
}

impl FromRequest for ApiKeyCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state_of(&req)?;
            limit_failures(&state, &req, authenticate_api_key_caller(&state, &req)).await
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
            limit_failures(&state, &req, authenticate_affiliate(&state, &req)).await
        })
    }
}

async fn authenticate_affiliate(state: &AppState, req: &HttpRequest) -> Result<AffiliateAuth, ApiError> {
    let token = bearer(req)?;
    if token.starts_with(API_KEY_PREFIX) {
        return Err(ApiError::unauthorized("invalid_token", "this endpoint takes an affiliate token, not an API key"));
    }
    let secret: &Arc<str> = state.jwt_secret.as_ref().ok_or_else(invalid_token)?;
    let data = decode::<AffiliateClaims>(&token, &DecodingKey::from_secret(secret.as_bytes()), &validation(Some(AFFILIATE_AUDIENCE)))
        .map_err(|_| invalid_token())?;
    let claims = data.claims;
    // A dashboard token that also names an audience and an email must not act as the
    // affiliate with that email.
    if claims.org_id.is_some() || claims.role.is_some() {
        return Err(ApiError::unauthorized("invalid_token", "dashboard tokens cannot call affiliate endpoints"));
    }
    check_lifetime(&state.auth, claims.iat, claims.exp)?;
    let email = rekomi_domain::affiliates::Email::parse("email", &claims.email).map_err(|_| invalid_token())?;
    if claims.sub.trim().is_empty() {
        return Err(invalid_token());
    }
    rate_limit(state, req, &format!("affiliate:{}", claims.sub))?;
    Ok(AffiliateAuth(AffiliateActor { user_id: claims.sub, email: email.as_str().to_owned() }))
}
