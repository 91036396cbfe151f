//! [`StripeGateway`]: the [`PaymentGateway`] port over the Stripe API, through async-stripe 1.0.
//!
//! async-stripe builds the requests (its generated request types know Stripe's parameter
//! shapes, including the current `promotion[type]`/`promotion[coupon]` form of promotion codes)
//! and performs each HTTP attempt; the retry loop, which sends the caller's idempotency key on
//! every attempt, and the error mapping are shared with the payout rail (see [`crate::client`]).
//!
//! The four reads (`invoice_promotion_codes`, `subscription_promotion_codes`,
//! `invoice_of_payment`, `customer_referral`) go through the same client, retry loop and
//! `Stripe-Account` handling, with [`stripe::RequestStrategy::Once`] (a GET needs no idempotency
//! key). They are built with async-stripe's own low-level `RequestBuilder`
//! (async-stripe-client-core) and parsed into its typed models (`stripe_shared::Invoice`,
//! `Subscription`, `InvoicePayment`), which parse Stripe's published objects with the discounts
//! and promotion codes expanded. The generated
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
use std::str::FromStr;

use async_trait::async_trait;
use rekomi_domain::coupons::{CouponDuration, DiscountSpec};
use rekomi_domain::fx::FxRate;
use rekomi_domain::kernel::money::Money;
use rekomi_domain::kernel::stripe_ids::{
    StripeChargeId, StripeCouponId, StripeCustomerId, StripeInvoiceId, StripePaymentIntentId, StripePromotionCodeId, StripeSubscriptionId,
};
use rekomi_domain::ports::gateway::{CreateCoupon, CreatePromotionCode, GatewayContext, GatewayError, PaymentGateway, Settlement};
use rekomi_domain::stripe_inbox::facts::PromotionCodeRef;
use stripe::{AccountId, IdempotencyKey, StripeRequest};
use stripe_client_core::CustomizableStripeRequest;
use stripe_product::coupon as coupon_api;
use stripe_product::promotion_code as promotion_code_api;

use crate::client::{answered, get, idempotency_key, idempotent, on_account, path_id, StripeApi};
use crate::config::{InvalidStripeConfig, StripeConfig};

/// The [`PaymentGateway`] that calls Stripe.
///
/// Built once at startup from a [`StripeConfig`]; the secret key is never logged.
#[derive(Debug)]
pub struct StripeGateway {
    api: StripeApi,
}

impl StripeGateway {
    /// Builds the client. No request is made.
    ///
    /// # Errors
    /// [`InvalidStripeConfig`] when the key is empty or not a valid header value, or the API
    /// base is not a valid URL.
    pub fn new(config: StripeConfig) -> Result<Self, InvalidStripeConfig> {
        Ok(Self { api: StripeApi::new(config)? })
    }
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

/// The query of the settlement read: the charge and its balance transaction, expanded.
const EXPAND_SETTLEMENT: &str = "expand%5B%5D=latest_charge.balance_transaction";

/// `GET /v1/invoice_payments?invoice=…`: the payments' payment intents.
#[derive(miniserde::Deserialize)]
struct InvoicePaymentList {
    data: Vec<InvoicePaymentFields>,
}

#[derive(miniserde::Deserialize)]
struct InvoicePaymentFields {
    payment: Option<PaymentFields>,
}

#[derive(miniserde::Deserialize)]
struct PaymentFields {
    /// Absent for payments of other types (`payment_record`, out-of-band).
    payment_intent: Option<String>,
}

/// `GET /v1/payment_intents/{id}?expand[]=latest_charge.balance_transaction`.
#[derive(miniserde::Deserialize)]
struct PaymentIntentSettlement {
    latest_charge: Option<ChargeSettlement>,
}

#[derive(miniserde::Deserialize)]
struct ChargeSettlement {
    balance_transaction: Option<BalanceTransactionFields>,
}

#[derive(miniserde::Deserialize)]
struct BalanceTransactionFields {
    currency: String,
    /// Null when nothing was converted.
    exchange_rate: Option<f64>,
}

impl BalanceTransactionFields {
    /// Stripe's rate as an exact decimal. JSON carries it as a number; its shortest round-trip
    /// form is the decimal Stripe wrote (Stripe's rates have far fewer than 15 digits). A rate
    /// with more than twelve decimals is left out (the ECB rate applies) rather than rounded.
    fn settlement(self) -> Option<Settlement> {
        let rate = self.exchange_rate.filter(|r| r.is_finite() && *r > 0.0)?;
        let exchange_rate = FxRate::parse(&format!("{rate}")).ok()?;
        Some(Settlement { currency: self.currency.to_ascii_lowercase(), exchange_rate })
    }
}

/// The query of the two reads that need promotion codes: `expand[]=discounts.promotion_code`.
const EXPAND_DISCOUNT_PROMOTION_CODES: &str = "expand%5B%5D=discounts.promotion_code";

fn account(ctx: &GatewayContext) -> Option<AccountId> {
    ctx.stripe_account.as_ref().map(|account| AccountId::from(account.as_str()))
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

/// One attempt of a write: the caller's idempotency key, on the context's account.
fn write<T>(call: CustomizableStripeRequest<T>, key: &IdempotencyKey, account: Option<&AccountId>) -> CustomizableStripeRequest<T> {
    on_account(idempotent(call, key), account)
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    async fn create_coupon(&self, ctx: &GatewayContext, request: &CreateCoupon) -> Result<StripeCouponId, GatewayError> {
        let key = idempotency_key(&request.idempotency_key)?;
        let account = account(ctx);
        let params = coupon_params(request);
        let coupon = self.api.send("create coupon", || write(params.customize(), &key, account.as_ref())).await?;
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
        let promotion_code = self.api.send("create promotion code", || write(params.customize(), &key, account.as_ref())).await?;
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
        self.api.send("deactivate promotion code", || write(params.customize(), &key, account.as_ref())).await?;
        Ok(())
    }

    async fn invoice_promotion_codes(
        &self,
        ctx: &GatewayContext,
        invoice_id: &StripeInvoiceId,
    ) -> Result<Vec<PromotionCodeRef>, GatewayError> {
        let path = format!("/invoices/{}", path_id(invoice_id.as_str())?);
        let account = account(ctx);
        let invoice: stripe_shared::Invoice =
            self.api.send("retrieve invoice", || get(&path, EXPAND_DISCOUNT_PROMOTION_CODES, account.as_ref())).await?;
        promotion_codes(&invoice.discounts)
    }

    async fn subscription_promotion_codes(
        &self,
        ctx: &GatewayContext,
        subscription_id: &StripeSubscriptionId,
    ) -> Result<Vec<PromotionCodeRef>, GatewayError> {
        let path = format!("/subscriptions/{}", path_id(subscription_id.as_str())?);
        let account = account(ctx);
        let subscription: stripe_shared::Subscription =
            self.api.send("retrieve subscription", || get(&path, EXPAND_DISCOUNT_PROMOTION_CODES, account.as_ref())).await?;
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
            self.api.send("list invoice payments", || get("/invoice_payments", &query, account.as_ref())).await?;
        payments.data.first().and_then(|payment| payment.invoice.id().as_ref()).map(|invoice| answered(invoice.as_str())).transpose()
    }

    async fn customer_referral(&self, ctx: &GatewayContext, customer_id: &StripeCustomerId) -> Result<Option<String>, GatewayError> {
        let path = format!("/customers/{}", path_id(customer_id.as_str())?);
        let account = account(ctx);
        let customer: CustomerReferralFields = self.api.send("retrieve customer", || get(&path, "", account.as_ref())).await?;
        Ok(customer.referral())
    }

    async fn invoice_settlement(&self, ctx: &GatewayContext, invoice_id: &StripeInvoiceId) -> Result<Option<Settlement>, GatewayError> {
        let query = format!("invoice={}", path_id(invoice_id.as_str())?);
        let account = account(ctx);
        let payments: InvoicePaymentList =
            self.api.send("list invoice payments", || get("/invoice_payments", &query, account.as_ref())).await?;
        let Some(intent) = payments.data.into_iter().find_map(|p| p.payment.and_then(|p| p.payment_intent)) else {
            return Ok(None);
        };
        let path = format!("/payment_intents/{}", path_id(&intent)?);
        let intent: PaymentIntentSettlement =
            self.api.send("retrieve payment intent", || get(&path, EXPAND_SETTLEMENT, account.as_ref())).await?;
        Ok(intent.latest_charge.and_then(|c| c.balance_transaction).and_then(BalanceTransactionFields::settlement))
    }

    async fn delete_coupon(&self, ctx: &GatewayContext, coupon_id: &StripeCouponId, idempotency_key: &str) -> Result<(), GatewayError> {
        // Stripe ignores idempotency keys on DELETE (it is idempotent by definition); the port
        // still sends one so that every mutating call looks the same in Stripe's request log.
        let key = self::idempotency_key(idempotency_key)?;
        let account = account(ctx);
        let params = coupon_api::DeleteCoupon::new(path_id(coupon_id.as_str())?);
        self.api.send("delete coupon", || write(params.customize(), &key, account.as_ref())).await?;
        Ok(())
    }
}
