//! [`StripeGateway`]: the [`PaymentGateway`] port over the Stripe API, through async-stripe 1.0.
//!
//! async-stripe builds the requests (its generated request types know Stripe's parameter
//! shapes, including the current `promotion[type]`/`promotion[coupon]` form of promotion codes)
//! and performs each HTTP attempt. The retry loop is ours: async-stripe's retrying strategies
//! (`Retry`, `ExponentialBackoff`) generate their own idempotency key and back off in whole
//! seconds, while the port requires the caller's key on every attempt. So each attempt runs
//! with `RequestStrategy::Idempotent(<caller's key>)`, which async-stripe sends exactly once,
//! and the loop below decides from the error whether to try again.
//!
//! The four reads (`invoice_promotion_codes`, `subscription_promotion_codes`,
//! `invoice_of_payment`, `customer_referral`) go through the same client, retry loop and
//! `Stripe-Account` handling,
//! with [`RequestStrategy::Once`] (a GET needs no idempotency key). They are built with
//! async-stripe's own low-level `RequestBuilder` (async-stripe-client-core) and parsed into its
//! typed models (`stripe_shared::Invoice`, `Subscription`, `InvoicePayment`), which parse
//! Stripe's published objects with the discounts and promotion codes expanded. The generated
//! request types (`RetrieveInvoice`, `RetrieveSubscription`, `ListInvoicePayment`) are not used:
//! they live in async-stripe-billing, a further large crate, for two one-line GETs; and
//! `ListInvoicePayment` cannot express the `payment[type]=charge` filter the port asks for (its
//! API version only lists `payment_intent` and `payment_record`). The query strings are written
//! here so that `expand[]=…` is sent exactly as Stripe documents it; every value in them is a
//! validated id or a constant, so none needs escaping. The responses come back in the API
//! version async-stripe pins (its `Stripe-Version` header), whatever the account's default, so
//! the typed models are safe here, unlike for webhook payloads (see [`crate::events`]).
//!
//! The customer read is the exception to the typed models: `GET /v1/customers/{id}` answers
//! either a customer or a deleted customer (`{"id", "object", "deleted": true}`), and
//! async-stripe's enum of the two (`RetrieveCustomerReturned`) lives in async-stripe-core, not a
//! dependency; `stripe_shared::Customer` alone refuses the deleted shape as unparseable. So the
//! answer is parsed into [`CustomerReferralFields`], the only two fields the read needs, with
//! miniserde as async-stripe parses everything else.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use rekomi_domain::coupons::{CouponDuration, DiscountSpec};
use rekomi_domain::kernel::money::Money;
use rekomi_domain::kernel::stripe_ids::{
    InvalidStripeId, StripeChargeId, StripeCouponId, StripeCustomerId, StripeInvoiceId, StripePaymentIntentId, StripePromotionCodeId,
    StripeSubscriptionId,
};
use rekomi_domain::ports::gateway::{CreateCoupon, CreatePromotionCode, GatewayContext, GatewayError, PaymentGateway};
use rekomi_domain::stripe_inbox::facts::PromotionCodeRef;
use stripe::{AccountId, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_client_core::{CustomizableStripeRequest, RequestBuilder, StripeMethod};
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

fn idempotency_key(key: &str) -> Result<IdempotencyKey, GatewayError> {
    IdempotencyKey::new(key).map_err(|err| GatewayError::Unknown(anyhow::anyhow!("invalid idempotency key: {err}")))
}

/// The metadata key carrying a Rekomi referral (as on invoices, subscriptions and checkouts).
const REFERRAL_KEY: &str = "rekomi_ref";

/// The fields of `GET /v1/customers/{id}` that [`PaymentGateway::customer_referral`] reads;
/// every other field is ignored, so a customer and a deleted customer both parse.
#[derive(miniserde::Deserialize)]
struct CustomerReferralFields {
    /// `true` only on a deleted customer; absent on a live one.
    deleted: Option<bool>,
    /// Absent on a deleted customer.
    metadata: Option<HashMap<String, String>>,
}

impl CustomerReferralFields {
    /// `metadata.rekomi_ref`, trimmed, unless empty or holding control characters (a NUL cannot
    /// even be stored by PostgreSQL); nothing for a deleted customer.
    fn referral(self) -> Option<String> {
        if self.deleted == Some(true) {
            return None;
        }
        let value = self.metadata?.remove(REFERRAL_KEY)?;
        let value = value.trim();
        (!value.is_empty() && !value.chars().any(char::is_control)).then(|| value.to_owned())
    }
}

/// The query of the two reads that need promotion codes: `expand[]=discounts.promotion_code`.
const EXPAND_DISCOUNT_PROMOTION_CODES: &str = "expand%5B%5D=discounts.promotion_code";

/// Ids end up in the URL path (and the query of `invoice_of_payment`) unescaped (async-stripe
/// formats them in as they are), so an id outside Stripe's alphabet could address another
/// endpoint or fail as an invalid URI, which async-stripe reports like a connection error.
/// Every id Rekomi holds came from Stripe.
fn path_id(id: &str) -> Result<&str, GatewayError> {
    let valid = !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(id)
    } else {
        Err(GatewayError::Unknown(anyhow::anyhow!("malformed Stripe object id {id:?}")))
    }
}

fn account(ctx: &GatewayContext) -> Option<AccountId> {
    ctx.stripe_account.as_ref().map(|account| AccountId::from(account.as_str()))
}

/// An id in Stripe's answer, as the domain's type of it; an id that breaks its kind's rules
/// makes the answer unparseable.
fn answered<T: FromStr<Err = InvalidStripeId>>(id: &str) -> Result<T, GatewayError> {
    id.parse().map_err(|err: InvalidStripeId| GatewayError::Unknown(anyhow::anyhow!("unparseable answer from Stripe: {err}")))
}

/// One attempt of a read: `GET /v1{path}?{query}` (no `?` for an empty query), without an
/// idempotency key, on the context's account. `T` is the typed model the answer is parsed into.
fn get<T>(path: &str, query: &str, account: Option<&AccountId>) -> CustomizableStripeRequest<T> {
    let mut request = RequestBuilder::new(StripeMethod::Get, path);
    request.query = (!query.is_empty()).then(|| query.to_owned());
    let call = request.customize::<T>().request_strategy(RequestStrategy::Once);
    match account {
        Some(account) => call.account_id(account.clone()),
        None => call,
    }
}

/// The promotion codes of a list of discounts as Stripe returns them with
/// `expand[]=discounts.promotion_code`: an expanded code gives its id and text, a code left as
/// an id gives its id, a discount left as an id gives nothing. Each code once.
///
/// # Errors
/// [`GatewayError::Unknown`] for a promotion code id that is not one.
fn promotion_codes(discounts: &[stripe_types::Expandable<stripe_shared::Discount>]) -> Result<Vec<PromotionCodeRef>, GatewayError> {
    let mut codes: Vec<PromotionCodeRef> = Vec::new();
    for discount in discounts.iter().filter_map(stripe_types::Expandable::as_object) {
        let found = match &discount.promotion_code {
            Some(stripe_types::Expandable::Object(code)) => {
                PromotionCodeRef { id: answered(code.id.as_str())?, code: Some(code.code.clone()) }
            }
            Some(stripe_types::Expandable::Id(id)) => PromotionCodeRef { id: answered(id.as_str())?, code: None },
            None => continue,
        };
        match codes.iter_mut().find(|known| known.id == found.id) {
            Some(known) if known.code.is_none() => known.code = found.code,
            Some(_) => {}
            None => codes.push(found),
        }
    }
    Ok(codes)
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
        coupon: Some(request.coupon_id.as_str().to_owned()),
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
    async fn create_coupon(&self, ctx: &GatewayContext, request: &CreateCoupon) -> Result<StripeCouponId, GatewayError> {
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
        answered(coupon.id.as_str())
    }

    async fn create_promotion_code(
        &self,
        ctx: &GatewayContext,
        request: &CreatePromotionCode,
    ) -> Result<StripePromotionCodeId, GatewayError> {
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
        answered(promotion_code.id.as_str())
    }

    async fn deactivate_promotion_code(
        &self,
        ctx: &GatewayContext,
        promotion_code_id: &StripePromotionCodeId,
        idempotency_key: &str,
    ) -> Result<(), GatewayError> {
        let key = self::idempotency_key(idempotency_key)?;
        let account = account(ctx);
        let params = promotion_code_api::UpdatePromotionCode::new(path_id(promotion_code_id.as_str())?).active(false);
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

    async fn invoice_promotion_codes(
        &self,
        ctx: &GatewayContext,
        invoice_id: &StripeInvoiceId,
    ) -> Result<Vec<PromotionCodeRef>, GatewayError> {
        let path = format!("/invoices/{}", path_id(invoice_id.as_str())?);
        let account = account(ctx);
        let invoice: stripe_shared::Invoice = self
            .with_retries("retrieve invoice", || get(&path, EXPAND_DISCOUNT_PROMOTION_CODES, account.as_ref()).send(&self.client))
            .await?;
        promotion_codes(&invoice.discounts)
    }

    async fn subscription_promotion_codes(
        &self,
        ctx: &GatewayContext,
        subscription_id: &StripeSubscriptionId,
    ) -> Result<Vec<PromotionCodeRef>, GatewayError> {
        let path = format!("/subscriptions/{}", path_id(subscription_id.as_str())?);
        let account = account(ctx);
        let subscription: stripe_shared::Subscription = self
            .with_retries("retrieve subscription", || get(&path, EXPAND_DISCOUNT_PROMOTION_CODES, account.as_ref()).send(&self.client))
            .await?;
        promotion_codes(&subscription.discounts)
    }

    async fn invoice_of_payment(
        &self,
        ctx: &GatewayContext,
        charge_id: &StripeChargeId,
        payment_intent_id: Option<StripePaymentIntentId>,
    ) -> Result<Option<StripeInvoiceId>, GatewayError> {
        // Stripe's invoice-payments list filters by `payment[type]=payment_intent` (or
        // `payment_record`), not by charge; since 2025-03-31 every invoice payment goes through
        // a payment intent, so a charge without one is a one-time payment, not an invoice's.
        let Some(payment_intent) = payment_intent_id.as_ref().map(StripePaymentIntentId::as_str) else {
            let _ = charge_id;
            return Ok(None);
        };
        let query = format!("payment%5Btype%5D=payment_intent&payment%5Bpayment_intent%5D={}", path_id(payment_intent)?);
        let account = account(ctx);
        let payments: stripe_types::List<stripe_shared::InvoicePayment> =
            self.with_retries("list invoice payments", || get("/invoice_payments", &query, account.as_ref()).send(&self.client)).await?;
        payments.data.first().and_then(|payment| payment.invoice.id().as_ref()).map(|invoice| answered(invoice.as_str())).transpose()
    }

    async fn customer_referral(&self, ctx: &GatewayContext, customer_id: &StripeCustomerId) -> Result<Option<String>, GatewayError> {
        let path = format!("/customers/{}", path_id(customer_id.as_str())?);
        let account = account(ctx);
        let customer: CustomerReferralFields =
            self.with_retries("retrieve customer", || get(&path, "", account.as_ref()).send(&self.client)).await?;
        Ok(customer.referral())
    }

    async fn delete_coupon(&self, ctx: &GatewayContext, coupon_id: &StripeCouponId, idempotency_key: &str) -> Result<(), GatewayError> {
        // Stripe ignores idempotency keys on DELETE (it is idempotent by definition); the port
        // still sends one so that every mutating call looks the same in Stripe's request log.
        let key = self::idempotency_key(idempotency_key)?;
        let account = account(ctx);
        let params = coupon_api::DeleteCoupon::new(path_id(coupon_id.as_str())?);
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
