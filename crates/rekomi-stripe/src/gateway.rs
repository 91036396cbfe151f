//! [`StripeGateway`]: the [`PaymentGateway`] port over the Stripe API, through async-stripe 1.0.
//!
//! async-stripe builds the requests (its generated request types know Stripe's parameter
//! shapes, including the current `promotion[type]`/`promotion[coupon]` form of promotion codes)
//! and performs each HTTP attempt. The retry loop is ours: async-stripe's retrying strategies
//! (`Retry`, `ExponentialBackoff`) generate their own idempotency key and back off in whole
//! seconds, while the port requires the caller's key on every attempt. So each attempt runs
//! with `RequestStrategy::Idempotent(<caller's key>)`, which async-stripe sends exactly once,
//! and the loop below decides from the error whether to try again.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use rekomi_domain::money::Money;
use rekomi_domain::ports::{CouponDuration, CreateCoupon, CreatePromotionCode, DiscountSpec, GatewayContext, GatewayError, PaymentGateway};
use stripe::{AccountId, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_product::coupon as coupon_api;
use stripe_product::promotion_code as promotion_code_api;

use crate::config::{InvalidStripeConfig, StripeConfig};

/// async-stripe's message when a non-2xx answer's body is not Stripe's error JSON (a proxy's
/// HTML 502, say). The status is lost in that case, so this text is all there is to tell it
/// apart from an unparseable success body.
const NON_STRIPE_ERROR_BODY: &str = "error deserializing Stripe error";

/// Retries double the wait up to this many times; beyond it the wait stays flat, so a large
/// `max_retries` cannot overflow or sleep for hours.
const MAX_BACKOFF_DOUBLINGS: u32 = 10;

/// The [`PaymentGateway`] that calls Stripe.
///
/// Built once at startup from a [`StripeConfig`]. The secret key lives only inside
/// async-stripe's client, as a header value marked sensitive; it is never logged.
pub struct StripeGateway {
    client: stripe::Client,
    api_base: String,
    max_retries: u32,
    base_backoff: Duration,
}

impl fmt::Debug for StripeGateway {
    // The client is left out: its config holds the key (redacted by async-stripe, but there is
    // no need to rely on that).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeGateway")
            .field("api_base", &self.api_base)
            .field("max_retries", &self.max_retries)
            .field("base_backoff", &self.base_backoff)
            .finish_non_exhaustive()
    }
}

impl StripeGateway {
    /// Builds the client. No request is made.
    ///
    /// # Errors
    /// [`InvalidStripeConfig`] when the key is empty or not a valid header value, or the API
    /// base is not a valid URL.
    pub fn new(config: StripeConfig) -> Result<Self, InvalidStripeConfig> {
        let StripeConfig { secret_key, mut api_base, max_retries, base_backoff, request_timeout } = config;
        if secret_key.trim().is_empty() {
            return Err(InvalidStripeConfig("the secret key is empty (run without one to use the offline gateway)".to_owned()));
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

    /// Runs `attempt` until it succeeds, fails permanently, or the retries are used up.
    /// `attempt` must send the same request with the same idempotency key each time.
    async fn with_retries<T, F, Fut>(&self, operation: &'static str, mut attempt: F) -> Result<T, GatewayError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StripeError>>,
    {
        let mut retries = 0;
        loop {
            let err = match attempt().await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            let reason = match classify(err) {
                Failure::Permanent(err) => return Err(err),
                Failure::Transient(reason) => reason,
            };
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

fn idempotency_key(key: &str) -> Result<IdempotencyKey, GatewayError> {
    IdempotencyKey::new(key).map_err(|err| GatewayError::Unknown(anyhow::anyhow!("invalid idempotency key: {err}")))
}

/// Ids end up in the URL path unescaped (async-stripe formats them in as they are), so an id
/// outside Stripe's alphabet could address another endpoint or fail as an invalid URI, which
/// async-stripe reports like a connection error. Every id Rekomi holds came from Stripe.
fn path_id(id: &str) -> Result<&str, GatewayError> {
    let valid = !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(id)
    } else {
        Err(GatewayError::Unknown(anyhow::anyhow!("malformed Stripe object id {id:?}")))
    }
}

fn account(ctx: &GatewayContext) -> Option<AccountId> {
    ctx.stripe_account.as_deref().map(AccountId::from)
}

fn currency(money: &Money) -> stripe_types::Currency {
    // Infallible: unknown codes become `Currency::Unknown`, which serializes verbatim.
    match stripe_types::Currency::from_str(&money.currency().stripe_code()) {
        Ok(currency) => currency,
        Err(never) => match never {},
    }
}

fn metadata(pairs: &[(String, String)]) -> Option<HashMap<String, String>> {
    (!pairs.is_empty()).then(|| pairs.iter().cloned().collect())
}

fn coupon_params(request: &CreateCoupon) -> coupon_api::CreateCoupon {
    let mut params = coupon_api::CreateCoupon::new().name(request.name.as_str());
    params = match &request.discount {
        DiscountSpec::PercentOff(percent) => params.percent_off(f64::from(*percent)),
        DiscountSpec::AmountOff(amount) => params.amount_off(amount.minor()).currency(currency(amount)),
    };
    params = match request.duration {
        CouponDuration::Once => params.duration(stripe_product::CouponDuration::Once),
        CouponDuration::Forever => params.duration(stripe_product::CouponDuration::Forever),
        CouponDuration::Repeating(months) => {
            params.duration(stripe_product::CouponDuration::Repeating).duration_in_months(i64::from(months))
        }
    };
    if let Some(redeem_by) = request.redeem_by {
        params = params.redeem_by(redeem_by.unix_timestamp());
    }
    if let Some(metadata) = metadata(&request.metadata) {
        params = params.metadata(metadata);
    }
    params
}

fn promotion_code_params(request: &CreatePromotionCode) -> promotion_code_api::CreatePromotionCode {
    let promotion = promotion_code_api::CreatePromotionCodePromotion {
        coupon: Some(request.coupon_id.clone()),
        type_: promotion_code_api::CreatePromotionCodePromotionType::Coupon,
    };
    let mut params = promotion_code_api::CreatePromotionCode::new(promotion).code(request.code.as_str());
    if let Some(max) = request.max_redemptions {
        params = params.max_redemptions(i64::from(max));
    }
    if let Some(expires_at) = request.expires_at {
        params = params.expires_at(expires_at.unix_timestamp());
    }
    if request.first_time_transaction || request.minimum_amount.is_some() {
        let mut restrictions = promotion_code_api::CreatePromotionCodeRestrictions::new();
        // Only `true` is sent: `false` is Stripe's default and the port has no "unset".
        restrictions.first_time_transaction = request.first_time_transaction.then_some(true);
        if let Some(minimum) = &request.minimum_amount {
            restrictions.minimum_amount = Some(minimum.minor());
            restrictions.minimum_amount_currency = Some(currency(minimum));
        }
        params = params.restrictions(restrictions);
    }
    if let Some(customer) = &request.customer {
        params = params.customer(customer.as_str());
    }
    if let Some(metadata) = metadata(&request.metadata) {
        params = params.metadata(metadata);
    }
    params
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    async fn create_coupon(&self, ctx: &GatewayContext, request: &CreateCoupon) -> Result<String, GatewayError> {
        let key = idempotency_key(&request.idempotency_key)?;
        let account = account(ctx);
        let params = coupon_params(request);
        let coupon = self
            .with_retries("create coupon", || {
                let mut call = params.customize().request_strategy(RequestStrategy::Idempotent(key.clone()));
                if let Some(account) = &account {
                    call = call.account_id(account.clone());
                }
                call.send(&self.client)
            })
            .await?;
        Ok(coupon.id.as_str().to_owned())
    }

    async fn create_promotion_code(&self, ctx: &GatewayContext, request: &CreatePromotionCode) -> Result<String, GatewayError> {
        let key = idempotency_key(&request.idempotency_key)?;
        let account = account(ctx);
        let params = promotion_code_params(request);
        let promotion_code = self
            .with_retries("create promotion code", || {
                let mut call = params.customize().request_strategy(RequestStrategy::Idempotent(key.clone()));
                if let Some(account) = &account {
                    call = call.account_id(account.clone());
                }
                call.send(&self.client)
            })
            .await?;
        Ok(promotion_code.id.as_str().to_owned())
    }

    async fn deactivate_promotion_code(
        &self,
        ctx: &GatewayContext,
        promotion_code_id: &str,
        idempotency_key: &str,
    ) -> Result<(), GatewayError> {
        let key = self::idempotency_key(idempotency_key)?;
        let account = account(ctx);
        let params = promotion_code_api::UpdatePromotionCode::new(path_id(promotion_code_id)?).active(false);
        self.with_retries("deactivate promotion code", || {
            let mut call = params.customize().request_strategy(RequestStrategy::Idempotent(key.clone()));
            if let Some(account) = &account {
                call = call.account_id(account.clone());
            }
            call.send(&self.client)
        })
        .await?;
        Ok(())
    }

    async fn delete_coupon(&self, ctx: &GatewayContext, coupon_id: &str, idempotency_key: &str) -> Result<(), GatewayError> {
        // Stripe ignores idempotency keys on DELETE (it is idempotent by definition); the port
        // still sends one so that every mutating call looks the same in Stripe's request log.
        let key = self::idempotency_key(idempotency_key)?;
        let account = account(ctx);
        let params = coupon_api::DeleteCoupon::new(path_id(coupon_id)?);
        self.with_retries("delete coupon", || {
            let mut call = params.customize().request_strategy(RequestStrategy::Idempotent(key.clone()));
            if let Some(account) = &account {
                call = call.account_id(account.clone());
            }
            call.send(&self.client)
        })
        .await?;
        Ok(())
    }
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
