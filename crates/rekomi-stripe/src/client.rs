//! [`StripeApi`]: what [`StripeGateway`](crate::StripeGateway) and
//! [`StripePayoutRail`](crate::StripePayoutRail) share: the async-stripe client, the retry loop,
//! and the mapping of Stripe's answers onto [`GatewayError`].
//!
//! The retry loop is ours: async-stripe's retrying strategies (`Retry`, `ExponentialBackoff`)
//! generate their own idempotency key and back off in whole seconds, while the ports require the
//! caller's key on every attempt. So each attempt runs with
//! `RequestStrategy::Idempotent(<caller's key>)` (or [`RequestStrategy::Once`] for a call that
//! takes no key), which async-stripe sends exactly once, and [`StripeApi::send`] decides from
//! the error whether to try again.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use rand::Rng;
use rekomi_domain::kernel::stripe_ids::InvalidStripeId;
use rekomi_domain::ports::gateway::GatewayError;
use stripe::{AccountId, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError};
use stripe_client_core::{CustomizableStripeRequest, RequestBuilder, StripeMethod};

use crate::config::{InvalidStripeConfig, StripeConfig};

/// async-stripe's message when a non-2xx answer's body is not Stripe's error JSON (a proxy's
/// HTML 502, say). The status is lost in that case, so this text is all there is to tell it
/// apart from an unparseable success body.
const NON_STRIPE_ERROR_BODY: &str = "error deserializing Stripe error";

/// Retries double the wait up to this many times; beyond it the wait stays flat, so a large
/// `max_retries` cannot overflow or sleep for hours.
const MAX_BACKOFF_DOUBLINGS: u32 = 10;

/// One configured connection to Stripe. The secret key lives only inside async-stripe's
/// client, as a header value marked sensitive; it is never logged.
pub(crate) struct StripeApi {
    client: stripe::Client,
    api_base: String,
    max_retries: u32,
    base_backoff: Duration,
}

impl fmt::Debug for StripeApi {
    // The client is left out: its config holds the key (redacted by async-stripe, but there is
    // no need to rely on that).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeApi")
            .field("api_base", &self.api_base)
            .field("max_retries", &self.max_retries)
            .field("base_backoff", &self.base_backoff)
            .finish_non_exhaustive()
    }
}

impl StripeApi {
    /// Builds the client. No request is made.
    ///
    /// # Errors
    /// [`InvalidStripeConfig`] when the key is empty or not a valid header value, or the API
    /// base is not a valid URL.
    pub(crate) fn new(config: StripeConfig) -> Result<Self, InvalidStripeConfig> {
        let StripeConfig { secret_key, mut api_base, max_retries, base_backoff, request_timeout } = config;
        if secret_key.trim().is_empty() {
            return Err(InvalidStripeConfig("the secret key is empty (run without one to use local mode)".to_owned()));
        }
        // async-stripe joins `{api_base}v1{path}` without inserting a slash.
        if !api_base.ends_with('/') {
            api_base.push('/');
        }
        let client = ClientBuilder::new(secret_key)
            .url(api_base.clone())
            .timeout(request_timeout)
            .app_info("Rekomi", Some(env!("CARGO_PKG_VERSION").to_owned()), None)
            .build()
            // async-stripe's configuration errors name the offending setting, never its value.
            .map_err(|err| InvalidStripeConfig(err.to_string()))?;
        Ok(Self { client, api_base, max_retries, base_backoff })
    }

    /// Sends the request `make` builds until it succeeds, fails permanently, or the retries
    /// are used up. `make` must build the same request, with the same idempotency key, each
    /// time. `operation` names the call in metrics and logs.
    pub(crate) async fn send<T, F>(&self, operation: &'static str, mut make: F) -> Result<T, GatewayError>
    where
        T: miniserde::Deserialize,
        F: FnMut() -> CustomizableStripeRequest<T>,
    {
        self.with_retries(operation, || make().send(&self.client)).await
    }

    async fn with_retries<T, F, Fut>(&self, operation: &'static str, mut attempt: F) -> Result<T, GatewayError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StripeError>>,
    {
        let mut retries = 0;
        loop {
            let started = std::time::Instant::now();
            let result = attempt().await;
            metrics::histogram!("rekomi_stripe_request_duration_seconds", "operation" => operation).record(started.elapsed().as_secs_f64());
            let err = match result {
                Ok(value) => {
                    metrics::counter!("rekomi_stripe_requests_total", "operation" => operation, "outcome" => "ok").increment(1);
                    return Ok(value);
                }
                Err(err) => err,
            };
            let reason = match classify(err) {
                Failure::Permanent(err) => {
                    let outcome = if matches!(err, GatewayError::NotFound) { "not_found" } else { "refused" };
                    metrics::counter!("rekomi_stripe_requests_total", "operation" => operation, "outcome" => outcome).increment(1);
                    return Err(err);
                }
                Failure::Transient(reason) => reason,
            };
            metrics::counter!("rekomi_stripe_requests_total", "operation" => operation, "outcome" => "transient_error").increment(1);
            if retries >= self.max_retries {
                tracing::warn!(operation, attempts = retries + 1, %reason, "Stripe stayed unavailable");
                return Err(GatewayError::Unavailable(format!("{operation}: {reason} (after {} attempts)", retries + 1)));
            }
            let delay = backoff(self.base_backoff, retries);
            tracing::info!(operation, attempt = retries + 1, %reason, ?delay, "retrying Stripe call with the same idempotency key");
            tokio::time::sleep(delay).await;
            retries += 1;
        }
    }
}

/// What to do with a failed attempt.
enum Failure {
    /// Worth another attempt with the same idempotency key; the text says why.
    Transient(String),
    /// Final: hand it to the caller.
    Permanent(GatewayError),
}

fn classify(err: StripeError) -> Failure {
    match err {
        StripeError::Stripe(api, status) => {
            let message = api.message.clone().unwrap_or_else(|| api.type_.as_str().to_owned());
            match status {
                // 409 is Stripe's "another request with this idempotency key is in flight":
                // transient by nature, and Stripe's own libraries retry it.
                409 | 429 | 500..=599 => Failure::Transient(format!("HTTP {status}: {message}")),
                404 => Failure::Permanent(GatewayError::NotFound),
                _ => Failure::Permanent(GatewayError::Rejected {
                    code: api.code.as_ref().map(|code| code.as_str().to_owned()),
                    param: api.param.clone(),
                    message,
                }),
            }
        }
        StripeError::ClientError(reason) => Failure::Transient(format!("connection failed: {reason}")),
        StripeError::Timeout => Failure::Transient("the request timed out".to_owned()),
        // Stripe itself always answers errors in JSON; a non-JSON error body comes from
        // something in front of it (load balancer, proxy), most likely a 502/503.
        StripeError::JSONDeserialize(reason) if reason == NON_STRIPE_ERROR_BODY => {
            Failure::Transient("an error answer without a Stripe error body".to_owned())
        }
        StripeError::JSONDeserialize(reason) => {
            Failure::Permanent(GatewayError::Unknown(anyhow::anyhow!("unparseable answer from Stripe: {reason}")))
        }
        StripeError::ConfigError(reason) => {
            Failure::Permanent(GatewayError::Unknown(anyhow::anyhow!("Stripe client misconfigured: {reason}")))
        }
    }
}

/// `base · 2^retry`, plus up to half of that again at random so that callers failing together
/// do not retry together.
fn backoff(base: Duration, retry: u32) -> Duration {
    let exponential = base.saturating_mul(1 << retry.min(MAX_BACKOFF_DOUBLINGS));
    let spread = u64::try_from(exponential.as_micros() / 2).unwrap_or(u64::MAX);
    let jitter = rand::rng().random_range(0..=spread);
    exponential.saturating_add(Duration::from_micros(jitter))
}

pub(crate) fn idempotency_key(key: &str) -> Result<IdempotencyKey, GatewayError> {
    IdempotencyKey::new(key).map_err(|err| GatewayError::Unknown(anyhow::anyhow!("invalid idempotency key: {err}")))
}

/// Ids end up in the URL path (and some queries) unescaped (async-stripe formats them in as
/// they are), so an id outside Stripe's alphabet could address another endpoint or fail as an
/// invalid URI, which async-stripe reports like a connection error. Every id Rekomi holds came
/// from Stripe.
pub(crate) fn path_id(id: &str) -> Result<&str, GatewayError> {
    let valid = !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(id)
    } else {
        Err(GatewayError::Unknown(anyhow::anyhow!("malformed Stripe object id {id:?}")))
    }
}

/// An id in Stripe's answer, as the domain's type of it; an id that breaks its kind's rules
/// makes the answer unparseable.
pub(crate) fn answered<T: FromStr<Err = InvalidStripeId>>(id: &str) -> Result<T, GatewayError> {
    id.parse().map_err(|err: InvalidStripeId| GatewayError::Unknown(anyhow::anyhow!("unparseable answer from Stripe: {err}")))
}

/// `call` with the caller's idempotency key, sent by async-stripe exactly once per attempt.
pub(crate) fn idempotent<T>(call: CustomizableStripeRequest<T>, key: &IdempotencyKey) -> CustomizableStripeRequest<T> {
    call.request_strategy(RequestStrategy::Idempotent(key.clone()))
}

/// `call` on a connected account (`Stripe-Account`), or on the platform for `None`.
pub(crate) fn on_account<T>(call: CustomizableStripeRequest<T>, account: Option<&AccountId>) -> CustomizableStripeRequest<T> {
    match account {
        Some(account) => call.account_id(account.clone()),
        None => call,
    }
}

/// One attempt of a read: `GET /v1{path}?{query}` (no `?` for an empty query), without an
/// idempotency key, on `account`. `T` is what the answer is parsed into. `query` goes out as
/// it is, so it must be encoded already.
pub(crate) fn get<T>(path: &str, query: &str, account: Option<&AccountId>) -> CustomizableStripeRequest<T> {
    let mut request = RequestBuilder::new(StripeMethod::Get, path);
    request.query = (!query.is_empty()).then(|| query.to_owned());
    on_account(request.customize::<T>().request_strategy(RequestStrategy::Once), account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_retry_and_adds_at_most_half_again_as_jitter() {
        let base = Duration::from_millis(100);
        for retry in 0..4 {
            let floor = base * (1 << retry);
            for _ in 0..50 {
                let delay = backoff(base, retry);
                assert!(delay >= floor && delay <= floor + floor / 2, "{delay:?} for retry {retry}");
            }
        }
    }

    #[test]
    fn backoff_stops_growing_for_very_late_retries() {
        let base = Duration::from_millis(1);
        assert!(backoff(base, u32::MAX) <= base * (1 << MAX_BACKOFF_DOUBLINGS) * 3 / 2);
    }
}
