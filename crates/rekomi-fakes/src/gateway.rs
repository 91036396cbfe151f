//! [`FakeGateway`]: the payment gateway port as an in-memory Stripe, for use-case and HTTP
//! tests.
//!
//! It behaves like Stripe where Rekomi depends on it: ids are assigned in sequence
//! (`coupon_fake_1`, `promo_fake_1`, …); a repeated idempotency key replays the first answer
//! (and a key reused with other parameters is refused); a promotion code whose text is already
//! active on the account is refused with `resource_already_exists` on `code`; deactivating is
//! idempotent; deleting an unknown coupon is `NotFound`. Every call is recorded, and tests can
//! script failures.
//!
//! Longer than 600 lines: one fake Stripe account whose replay, code-uniqueness and failure
//! rules share one state, read together; the last 140 lines are its tests.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use rekomi_domain::kernel::stripe_ids::{
    StripeAccountId, StripeChargeId, StripeCouponId, StripeCustomerId, StripeInvoiceId, StripePaymentIntentId, StripePaymentRef,
    StripePromotionCodeId, StripeSubscriptionId,
};
use rekomi_domain::ports::gateway::{CreateCoupon, CreatePromotionCode, GatewayContext, GatewayError, PaymentGateway, Settlement};
use rekomi_domain::stripe_inbox::facts::PromotionCodeRef;

/// One call the gateway received, with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayCall {
    /// [`PaymentGateway::create_coupon`].
    CreateCoupon {
        /// The account acted on.
        ctx: GatewayContext,
        /// The request.
        request: CreateCoupon,
    },
    /// [`PaymentGateway::create_promotion_code`].
    CreatePromotionCode {
        /// The account acted on.
        ctx: GatewayContext,
        /// The request.
        request: CreatePromotionCode,
    },
    /// [`PaymentGateway::deactivate_promotion_code`].
    DeactivatePromotionCode {
        /// The account acted on.
        ctx: GatewayContext,
        /// The promotion code id.
        promotion_code_id: StripePromotionCodeId,
        /// The idempotency key.
        idempotency_key: String,
    },
    /// [`PaymentGateway::invoice_promotion_codes`].
    InvoicePromotionCodes {
        /// The account acted on.
        ctx: GatewayContext,
        /// The invoice.
        invoice_id: StripeInvoiceId,
    },
    /// [`PaymentGateway::subscription_promotion_codes`].
    SubscriptionPromotionCodes {
        /// The account acted on.
        ctx: GatewayContext,
        /// The subscription.
        subscription_id: StripeSubscriptionId,
    },
    /// [`PaymentGateway::invoice_of_payment`].
    InvoiceOfPayment {
        /// The account acted on.
        ctx: GatewayContext,
        /// The charge.
        charge_id: StripeChargeId,
        /// The payment intent.
        payment_intent_id: Option<StripePaymentIntentId>,
    },
    /// [`PaymentGateway::customer_referral`].
    CustomerReferral {
        /// The account acted on.
        ctx: GatewayContext,
        /// The customer.
        customer_id: StripeCustomerId,
    },
    /// [`PaymentGateway::invoice_settlement`].
    InvoiceSettlement {
        /// The account acted on.
        ctx: GatewayContext,
        /// The invoice.
        invoice_id: StripeInvoiceId,
    },
    /// [`PaymentGateway::delete_coupon`].
    DeleteCoupon {
        /// The account acted on.
        ctx: GatewayContext,
        /// The coupon id.
        coupon_id: StripeCouponId,
        /// The idempotency key.
        idempotency_key: String,
    },
}

impl GatewayCall {
    /// The port method's name, e.g. `create_promotion_code`.
    pub fn method(&self) -> &'static str {
        match self {
            Self::CreateCoupon { .. } => "create_coupon",
            Self::CreatePromotionCode { .. } => "create_promotion_code",
            Self::DeactivatePromotionCode { .. } => "deactivate_promotion_code",
            Self::DeleteCoupon { .. } => "delete_coupon",
            Self::InvoicePromotionCodes { .. } => "invoice_promotion_codes",
            Self::SubscriptionPromotionCodes { .. } => "subscription_promotion_codes",
            Self::InvoiceOfPayment { .. } => "invoice_of_payment",
            Self::CustomerReferral { .. } => "customer_referral",
            Self::InvoiceSettlement { .. } => "invoice_settlement",
        }
    }

    /// The call's idempotency key.
    pub fn idempotency_key(&self) -> &str {
        match self {
            Self::CreateCoupon { request, .. } => &request.idempotency_key,
            Self::CreatePromotionCode { request, .. } => &request.idempotency_key,
            Self::DeactivatePromotionCode { idempotency_key, .. } | Self::DeleteCoupon { idempotency_key, .. } => idempotency_key,
            // Reads carry no idempotency key.
            Self::InvoicePromotionCodes { .. }
            | Self::SubscriptionPromotionCodes { .. }
            | Self::InvoiceOfPayment { .. }
            | Self::CustomerReferral { .. }
            | Self::InvoiceSettlement { .. } => "",
        }
    }

    fn ctx(&self) -> &GatewayContext {
        match self {
            Self::CreateCoupon { ctx, .. }
            | Self::CreatePromotionCode { ctx, .. }
            | Self::DeactivatePromotionCode { ctx, .. }
            | Self::DeleteCoupon { ctx, .. }
            | Self::InvoicePromotionCodes { ctx, .. }
            | Self::SubscriptionPromotionCodes { ctx, .. }
            | Self::InvoiceOfPayment { ctx, .. }
            | Self::CustomerReferral { ctx, .. }
            | Self::InvoiceSettlement { ctx, .. } => ctx,
        }
    }
}

/// A coupon the fake Stripe holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeCoupon {
    /// Its id.
    pub id: StripeCouponId,
    /// The connected account it lives on (`None` = platform).
    pub stripe_account: Option<StripeAccountId>,
    /// The request that created it (`None` when seeded).
    pub request: Option<CreateCoupon>,
    /// Whether it was deleted.
    pub deleted: bool,
}

/// A promotion code the fake Stripe holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakePromotionCode {
    /// Its id.
    pub id: StripePromotionCodeId,
    /// The connected account it lives on (`None` = platform).
    pub stripe_account: Option<StripeAccountId>,
    /// The coupon it applies.
    pub coupon_id: StripeCouponId,
    /// The customer-facing text.
    pub code: String,
    /// The request that created it (`None` when seeded).
    pub request: Option<CreatePromotionCode>,
    /// Whether it can still be redeemed.
    pub active: bool,
}

/// A scripted failure: consulted on every call (after the queue of [`FakeGateway::fail_next`]);
/// returning an error fails that call.
pub type FailureRule = Box<dyn FnMut(&GatewayCall) -> Option<GatewayError> + Send>;

/// A recording, scriptable [`PaymentGateway`]. Clones share the same state, so a test keeps one
/// handle and gives another to the code under test.
#[derive(Clone, Default)]
pub struct FakeGateway {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for FakeGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGateway").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    calls: Vec<GatewayCall>,
    coupons: Vec<FakeCoupon>,
    promotion_codes: Vec<FakePromotionCode>,
    /// Successful answers by (account, idempotency key), replayed for a repeated key.
    replays: HashMap<(Option<StripeAccountId>, String), Replay>,
    queued_failures: VecDeque<GatewayError>,
    rule: Option<FailureRule>,
    issued_coupons: u64,
    issued_promotion_codes: u64,
    /// Scripted answers of the reads, by object id.
    invoice_codes: HashMap<StripeInvoiceId, Vec<PromotionCodeRef>>,
    subscription_codes: HashMap<StripeSubscriptionId, Vec<PromotionCodeRef>>,
    payment_invoices: HashMap<StripePaymentRef, StripeInvoiceId>,
    customer_referrals: HashMap<StripeCustomerId, String>,
    settlements: HashMap<StripeInvoiceId, Settlement>,
}

/// A stored answer: the call it answered (without the key's context) and the id it returned
/// (as Stripe writes it: a coupon's or a promotion code's).
struct Replay {
    call: GatewayCall,
    id: Option<String>,
}

/// The id a replayed creation returns, read back as its kind.
fn replayed<T: std::str::FromStr>(answer: Result<Option<String>, GatewayError>) -> Result<T, GatewayError> {
    let id = answer?.ok_or_else(|| GatewayError::Unknown(anyhow::anyhow!("replay without an id")))?;
    id.parse().map_err(|_| GatewayError::Unknown(anyhow::anyhow!("replay of another kind of id")))
}

/// An id the fake makes (always within its kind's rules).
fn issued<T: std::str::FromStr>(id: &str) -> Result<T, GatewayError> {
    id.parse().map_err(|_| GatewayError::Unknown(anyhow::anyhow!("the fake made a malformed id")))
}

fn rejected(code: Option<&str>, param: Option<&str>, message: String) -> GatewayError {
    GatewayError::Rejected { code: code.map(str::to_owned), param: param.map(str::to_owned), message }
}

impl Inner {
    fn replay(&self, call: &GatewayCall) -> Option<Result<Option<String>, GatewayError>> {
        let key = (call.ctx().stripe_account.clone(), call.idempotency_key().to_owned());
        let stored = self.replays.get(&key)?;
        if stored.call == *call {
            Some(Ok(stored.id.clone()))
        } else {
            Some(Err(rejected(
                None,
                None,
                format!(
                    "Keys for idempotent requests can only be used with the same parameters they were first used with. \
                     Try using a key other than '{}' if you meant to execute a different request.",
                    call.idempotency_key()
                ),
            )))
        }
    }

    fn remember(&mut self, call: GatewayCall, id: Option<String>) {
        let key = (call.ctx().stripe_account.clone(), call.idempotency_key().to_owned());
        self.replays.insert(key, Replay { call, id });
    }

    /// Records a read and answers a scripted failure if there is one (reads are not replayed).
    fn begin_read(&mut self, call: GatewayCall) -> Result<(), GatewayError> {
        self.calls.push(call.clone());
        if let Some(error) = self.queued_failures.pop_front() {
            return Err(error);
        }
        if let Some(rule) = self.rule.as_mut() {
            if let Some(error) = rule(&call) {
                return Err(error);
            }
        }
        Ok(())
    }

    /// Records the call, then answers a scripted failure or a replay if there is one.
    fn begin(&mut self, call: &GatewayCall) -> Option<Result<Option<String>, GatewayError>> {
        self.calls.push(call.clone());
        if let Some(error) = self.queued_failures.pop_front() {
            return Some(Err(error));
        }
        if let Some(rule) = self.rule.as_mut() {
            if let Some(error) = rule(call) {
                return Some(Err(error));
            }
        }
        self.replay(call)
    }

    fn create_coupon(&mut self, ctx: &GatewayContext, request: &CreateCoupon) -> Result<StripeCouponId, GatewayError> {
        let call = GatewayCall::CreateCoupon { ctx: ctx.clone(), request: request.clone() };
        if let Some(answer) = self.begin(&call) {
            return replayed(answer);
        }
        self.issued_coupons += 1;
        let id: StripeCouponId = issued(&format!("coupon_fake_{}", self.issued_coupons))?;
        self.coupons.push(FakeCoupon {
            id: id.clone(),
            stripe_account: ctx.stripe_account.clone(),
            request: Some(request.clone()),
            deleted: false,
        });
        self.remember(call, Some(id.to_string()));
        Ok(id)
    }

    fn create_promotion_code(
        &mut self,
        ctx: &GatewayContext,
        request: &CreatePromotionCode,
    ) -> Result<StripePromotionCodeId, GatewayError> {
        let call = GatewayCall::CreatePromotionCode { ctx: ctx.clone(), request: request.clone() };
        if let Some(answer) = self.begin(&call) {
            return replayed(answer);
        }
        let account = &ctx.stripe_account;
        let coupon_deleted = self.coupons.iter().any(|c| c.id == request.coupon_id && c.stripe_account == *account && c.deleted);
        if coupon_deleted {
            return Err(rejected(Some("resource_missing"), Some("promotion[coupon]"), format!("No such coupon: '{}'", request.coupon_id)));
        }
        let taken =
            self.promotion_codes.iter().any(|p| p.active && p.stripe_account == *account && p.code.eq_ignore_ascii_case(&request.code));
        if taken {
            return Err(rejected(
                Some("resource_already_exists"),
                Some("code"),
                format!("An active promotion code with `code: {}` already exists.", request.code),
            ));
        }
        self.issued_promotion_codes += 1;
        let id: StripePromotionCodeId = issued(&format!("promo_fake_{}", self.issued_promotion_codes))?;
        self.promotion_codes.push(FakePromotionCode {
            id: id.clone(),
            stripe_account: account.clone(),
            coupon_id: request.coupon_id.clone(),
            code: request.code.clone(),
            request: Some(request.clone()),
            active: true,
        });
        self.remember(call, Some(id.to_string()));
        Ok(id)
    }

    fn deactivate(
        &mut self,
        ctx: &GatewayContext,
        promotion_code_id: &StripePromotionCodeId,
        idempotency_key: &str,
    ) -> Result<(), GatewayError> {
        let call = GatewayCall::DeactivatePromotionCode {
            ctx: ctx.clone(),
            promotion_code_id: promotion_code_id.clone(),
            idempotency_key: idempotency_key.to_owned(),
        };
        if let Some(answer) = self.begin(&call) {
            return answer.map(|_| ());
        }
        let code = self
            .promotion_codes
            .iter_mut()
            .find(|p| p.id == *promotion_code_id && p.stripe_account == ctx.stripe_account)
            .ok_or(GatewayError::NotFound)?;
        code.active = false;
        self.remember(call, None);
        Ok(())
    }

    fn delete_coupon(&mut self, ctx: &GatewayContext, coupon_id: &StripeCouponId, idempotency_key: &str) -> Result<(), GatewayError> {
        let call =
            GatewayCall::DeleteCoupon { ctx: ctx.clone(), coupon_id: coupon_id.clone(), idempotency_key: idempotency_key.to_owned() };
        if let Some(answer) = self.begin(&call) {
            return answer.map(|_| ());
        }
        let coupon = self
            .coupons
            .iter_mut()
            .find(|c| c.id == *coupon_id && c.stripe_account == ctx.stripe_account && !c.deleted)
            .ok_or(GatewayError::NotFound)?;
        coupon.deleted = true;
        self.remember(call, None);
        Ok(())
    }
}

impl FakeGateway {
    /// A gateway holding nothing.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the next call fail with `error` (recorded, but with no effect). Calls queue up:
    /// each queued error fails one call, in order.
    pub fn fail_next(&self, error: GatewayError) {
        self.lock().queued_failures.push_back(error);
    }

    /// Consults `rule` on every call after the queue of [`FakeGateway::fail_next`] is empty;
    /// when it returns an error the call fails with it. Replaces any earlier rule.
    pub fn fail_when(&self, rule: impl FnMut(&GatewayCall) -> Option<GatewayError> + Send + 'static) {
        self.lock().rule = Some(Box::new(rule));
    }

    /// Drops the queued failures and the rule.
    pub fn clear_failures(&self) {
        let mut inner = self.lock();
        inner.queued_failures.clear();
        inner.rule = None;
    }

    /// Puts a coupon that already exists at Stripe (created outside the code under test).
    pub fn seed_coupon(&self, ctx: &GatewayContext, id: &StripeCouponId) {
        self.lock().coupons.push(FakeCoupon { id: id.clone(), stripe_account: ctx.stripe_account.clone(), request: None, deleted: false });
    }

    /// Puts an active promotion code that already exists at Stripe.
    pub fn seed_promotion_code(&self, ctx: &GatewayContext, id: &StripePromotionCodeId, coupon_id: &StripeCouponId, code: &str) {
        self.lock().promotion_codes.push(FakePromotionCode {
            id: id.clone(),
            stripe_account: ctx.stripe_account.clone(),
            coupon_id: coupon_id.clone(),
            code: code.to_owned(),
            request: None,
            active: true,
        });
    }

    /// Scripts the promotion codes an invoice's expanded discounts show.
    pub fn set_invoice_promotion_codes(&self, invoice_id: &StripeInvoiceId, codes: Vec<PromotionCodeRef>) {
        self.lock().invoice_codes.insert(invoice_id.clone(), codes);
    }

    /// Scripts the promotion codes a subscription's expanded discounts show.
    pub fn set_subscription_promotion_codes(&self, subscription_id: &StripeSubscriptionId, codes: Vec<PromotionCodeRef>) {
        self.lock().subscription_codes.insert(subscription_id.clone(), codes);
    }

    /// Scripts the invoice a payment (a charge or a payment intent) belongs to.
    pub fn set_invoice_of_payment(&self, payment: impl Into<StripePaymentRef>, invoice_id: &StripeInvoiceId) {
        self.lock().payment_invoices.insert(payment.into(), invoice_id.clone());
    }

    /// Scripts the `metadata.rekomi_ref` of a customer (unscripted customers have none).
    pub fn set_customer_referral(&self, customer_id: &StripeCustomerId, slug: &str) {
        self.lock().customer_referrals.insert(customer_id.clone(), slug.to_owned());
    }

    /// Scripts how an invoice's payment settled (unscripted invoices were not converted).
    pub fn set_invoice_settlement(&self, invoice_id: &StripeInvoiceId, settlement: Settlement) {
        self.lock().settlements.insert(invoice_id.clone(), settlement);
    }

    /// Every call received, in order (failed and replayed ones included).
    pub fn calls(&self) -> Vec<GatewayCall> {
        self.lock().calls.clone()
    }

    /// The names of the methods called, in order.
    pub fn methods(&self) -> Vec<&'static str> {
        self.lock().calls.iter().map(GatewayCall::method).collect()
    }

    /// Every coupon held (seeded and created, deleted ones included), in creation order.
    pub fn coupons(&self) -> Vec<FakeCoupon> {
        self.lock().coupons.clone()
    }

    /// Every promotion code held (seeded and created, inactive ones included), in order.
    pub fn promotion_codes(&self) -> Vec<FakePromotionCode> {
        self.lock().promotion_codes.clone()
    }

    /// The promotion code with this id.
    pub fn promotion_code(&self, id: &StripePromotionCodeId) -> Option<FakePromotionCode> {
        self.lock().promotion_codes.iter().find(|p| p.id == *id).cloned()
    }

    /// The requests that created a coupon (replays excluded), in order.
    pub fn created_coupons(&self) -> Vec<CreateCoupon> {
        self.lock().coupons.iter().filter_map(|c| c.request.clone()).collect()
    }

    /// The requests that created a promotion code (replays and refusals excluded), in order.
    pub fn created_promotion_codes(&self) -> Vec<CreatePromotionCode> {
        self.lock().promotion_codes.iter().filter_map(|p| p.request.clone()).collect()
    }

    /// The ids of the inactive promotion codes, in creation order.
    pub fn deactivated(&self) -> Vec<StripePromotionCodeId> {
        self.lock().promotion_codes.iter().filter(|p| !p.active).map(|p| p.id.clone()).collect()
    }

    /// The ids of the deleted coupons, in creation order.
    pub fn deleted_coupons(&self) -> Vec<StripeCouponId> {
        self.lock().coupons.iter().filter(|c| c.deleted).map(|c| c.id.clone()).collect()
    }

    /// The texts of the active promotion codes, in creation order.
    pub fn active_codes(&self) -> Vec<String> {
        self.lock().promotion_codes.iter().filter(|p| p.active).map(|p| p.code.clone()).collect()
    }
}

#[async_trait]
impl PaymentGateway for FakeGateway {
    async fn create_coupon(&self, ctx: &GatewayContext, request: &CreateCoupon) -> Result<StripeCouponId, GatewayError> {
        self.lock().create_coupon(ctx, request)
    }

    async fn create_promotion_code(
        &self,
        ctx: &GatewayContext,
        request: &CreatePromotionCode,
    ) -> Result<StripePromotionCodeId, GatewayError> {
        self.lock().create_promotion_code(ctx, request)
    }

    async fn deactivate_promotion_code(
        &self,
        ctx: &GatewayContext,
        promotion_code_id: &StripePromotionCodeId,
        idempotency_key: &str,
    ) -> Result<(), GatewayError> {
        self.lock().deactivate(ctx, promotion_code_id, idempotency_key)
    }

    async fn delete_coupon(&self, ctx: &GatewayContext, coupon_id: &StripeCouponId, idempotency_key: &str) -> Result<(), GatewayError> {
        self.lock().delete_coupon(ctx, coupon_id, idempotency_key)
    }

    async fn invoice_promotion_codes(
        &self,
        ctx: &GatewayContext,
        invoice_id: &StripeInvoiceId,
    ) -> Result<Vec<PromotionCodeRef>, GatewayError> {
        let mut inner = self.lock();
        inner.begin_read(GatewayCall::InvoicePromotionCodes { ctx: ctx.clone(), invoice_id: invoice_id.clone() })?;
        Ok(inner.invoice_codes.get(invoice_id).cloned().unwrap_or_default())
    }

    async fn subscription_promotion_codes(
        &self,
        ctx: &GatewayContext,
        subscription_id: &StripeSubscriptionId,
    ) -> Result<Vec<PromotionCodeRef>, GatewayError> {
        let mut inner = self.lock();
        inner.begin_read(GatewayCall::SubscriptionPromotionCodes { ctx: ctx.clone(), subscription_id: subscription_id.clone() })?;
        Ok(inner.subscription_codes.get(subscription_id).cloned().unwrap_or_default())
    }

    async fn invoice_of_payment(
        &self,
        ctx: &GatewayContext,
        charge_id: &StripeChargeId,
        payment_intent_id: Option<StripePaymentIntentId>,
    ) -> Result<Option<StripeInvoiceId>, GatewayError> {
        let mut inner = self.lock();
        inner.begin_read(GatewayCall::InvoiceOfPayment {
            ctx: ctx.clone(),
            charge_id: charge_id.clone(),
            payment_intent_id: payment_intent_id.clone(),
        })?;
        let by_intent = payment_intent_id.and_then(|pi| inner.payment_invoices.get(&StripePaymentRef::PaymentIntent(pi)).cloned());
        Ok(by_intent.or_else(|| inner.payment_invoices.get(&StripePaymentRef::Charge(charge_id.clone())).cloned()))
    }

    async fn customer_referral(&self, ctx: &GatewayContext, customer_id: &StripeCustomerId) -> Result<Option<String>, GatewayError> {
        let mut inner = self.lock();
        inner.begin_read(GatewayCall::CustomerReferral { ctx: ctx.clone(), customer_id: customer_id.clone() })?;
        Ok(inner.customer_referrals.get(customer_id).cloned())
    }

    async fn invoice_settlement(&self, ctx: &GatewayContext, invoice_id: &StripeInvoiceId) -> Result<Option<Settlement>, GatewayError> {
        let mut inner = self.lock();
        inner.begin_read(GatewayCall::InvoiceSettlement { ctx: ctx.clone(), invoice_id: invoice_id.clone() })?;
        Ok(inner.settlements.get(invoice_id).cloned())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]

    use super::*;
    use crate::block_on;
    use rekomi_domain::coupons::{CouponDuration, DiscountSpec};

    fn coupon_id(id: &str) -> StripeCouponId {
        StripeCouponId::parse(id).unwrap()
    }

    fn promo_id(id: &str) -> StripePromotionCodeId {
        StripePromotionCodeId::parse(id).unwrap()
    }

    fn customer(id: &str) -> StripeCustomerId {
        StripeCustomerId::parse(id).unwrap()
    }

    fn coupon(key: &str) -> CreateCoupon {
        CreateCoupon {
            idempotency_key: key.to_owned(),
            name: "Spring".to_owned(),
            discount: DiscountSpec::PercentOff(20),
            duration: CouponDuration::Once,
            redeem_by: None,
            metadata: vec![("rekomi_id".to_owned(), key.to_owned())],
        }
    }

    fn promo(key: &str, code: &str) -> CreatePromotionCode {
        CreatePromotionCode {
            idempotency_key: key.to_owned(),
            coupon_id: coupon_id("coupon_fake_1"),
            code: code.to_owned(),
            max_redemptions: None,
            expires_at: None,
            first_time_transaction: false,
            minimum_amount: None,
            customer: None,
            metadata: Vec::new(),
        }
    }

    fn platform() -> GatewayContext {
        GatewayContext::default()
    }

    #[test]
    fn ids_are_sequential_and_a_repeated_key_gets_the_same_id() {
        let gw = FakeGateway::new();
        assert_eq!(block_on(gw.create_coupon(&platform(), &coupon("k1"))).unwrap(), coupon_id("coupon_fake_1"));
        assert_eq!(block_on(gw.create_coupon(&platform(), &coupon("k1"))).unwrap(), coupon_id("coupon_fake_1"));
        assert_eq!(block_on(gw.create_coupon(&platform(), &coupon("k2"))).unwrap(), coupon_id("coupon_fake_2"));
        assert_eq!(block_on(gw.create_promotion_code(&platform(), &promo("p1", "SARAH20"))).unwrap(), promo_id("promo_fake_1"));
        assert_eq!(block_on(gw.create_promotion_code(&platform(), &promo("p1", "SARAH20"))).unwrap(), promo_id("promo_fake_1"));
        assert_eq!(gw.calls().len(), 5);
        assert_eq!(gw.created_coupons().len(), 2);
        assert_eq!(gw.created_promotion_codes(), vec![promo("p1", "SARAH20")]);
    }

    #[test]
    fn a_key_reused_with_other_parameters_is_refused() {
        let gw = FakeGateway::new();
        block_on(gw.create_promotion_code(&platform(), &promo("p1", "SARAH20"))).unwrap();
        let err = block_on(gw.create_promotion_code(&platform(), &promo("p1", "OTHER20"))).unwrap_err();
        assert!(matches!(err, GatewayError::Rejected { .. }), "{err:?}");
        assert!(!err.is_code_taken());
    }

    #[test]
    fn an_active_code_text_is_taken_regardless_of_case_until_deactivated() {
        let gw = FakeGateway::new();
        let id = block_on(gw.create_promotion_code(&platform(), &promo("p1", "SARAH20"))).unwrap();
        let err = block_on(gw.create_promotion_code(&platform(), &promo("p2", "sarah20"))).unwrap_err();
        assert!(err.is_code_taken(), "{err:?}");
        match err {
            GatewayError::Rejected { code, param, .. } => {
                assert_eq!(code.as_deref(), Some("resource_already_exists"));
                assert_eq!(param.as_deref(), Some("code"));
            }
            other => panic!("{other:?}"),
        }
        let other_account = GatewayContext { stripe_account: Some(StripeAccountId::parse("acct_2").unwrap()) };
        assert!(block_on(gw.create_promotion_code(&other_account, &promo("p3", "SARAH20"))).is_ok());

        block_on(gw.deactivate_promotion_code(&platform(), &id, "d1")).unwrap();
        block_on(gw.deactivate_promotion_code(&platform(), &id, "d2")).unwrap();
        assert_eq!(gw.deactivated(), vec![id]);
        assert!(block_on(gw.create_promotion_code(&platform(), &promo("p4", "SARAH20"))).is_ok());
    }

    #[test]
    fn unknown_objects_are_not_found_and_a_deleted_coupon_takes_no_codes() {
        let gw = FakeGateway::new();
        let err = block_on(gw.deactivate_promotion_code(&platform(), &promo_id("promo_nope"), "d1")).unwrap_err();
        assert!(matches!(err, GatewayError::NotFound));
        assert!(matches!(block_on(gw.delete_coupon(&platform(), &coupon_id("coupon_nope"), "x1")), Err(GatewayError::NotFound)));

        let id = block_on(gw.create_coupon(&platform(), &coupon("k1"))).unwrap();
        block_on(gw.delete_coupon(&platform(), &id, "del")).unwrap();
        block_on(gw.delete_coupon(&platform(), &id, "del")).unwrap();
        assert!(matches!(block_on(gw.delete_coupon(&platform(), &id, "del-2")), Err(GatewayError::NotFound)));
        assert_eq!(gw.deleted_coupons(), vec![id]);
        let err = block_on(gw.create_promotion_code(&platform(), &promo("p1", "SARAH20"))).unwrap_err();
        assert!(matches!(err, GatewayError::Rejected { .. }) && !err.is_code_taken(), "{err:?}");
    }

    #[test]
    fn scripted_failures_fail_calls_without_effect_and_are_recorded() {
        let gw = FakeGateway::new();
        gw.fail_next(GatewayError::Unavailable("503".to_owned()));
        assert!(matches!(block_on(gw.create_coupon(&platform(), &coupon("k1"))), Err(GatewayError::Unavailable(_))));
        assert!(gw.coupons().is_empty());
        assert_eq!(block_on(gw.create_coupon(&platform(), &coupon("k1"))).unwrap(), coupon_id("coupon_fake_1"));

        gw.fail_when(|call| (call.method() == "create_promotion_code").then_some(GatewayError::NotFound));
        assert!(block_on(gw.create_promotion_code(&platform(), &promo("p1", "SARAH20"))).is_err());
        assert!(block_on(gw.create_coupon(&platform(), &coupon("k2"))).is_ok());
        gw.clear_failures();
        assert!(block_on(gw.create_promotion_code(&platform(), &promo("p1", "SARAH20"))).is_ok());
        assert_eq!(gw.methods(), vec!["create_coupon", "create_coupon", "create_promotion_code", "create_coupon", "create_promotion_code"]);
    }

    #[test]
    fn customer_referrals_are_scripted_recorded_and_fail_like_the_other_reads() {
        let gw = FakeGateway::new();
        gw.set_customer_referral(&customer("cus_1"), "bob-links");
        assert_eq!(block_on(gw.customer_referral(&platform(), &customer("cus_1"))).unwrap().as_deref(), Some("bob-links"));
        assert_eq!(block_on(gw.customer_referral(&platform(), &customer("cus_2"))).unwrap(), None);
        gw.fail_when(|call| {
            matches!(call, GatewayCall::CustomerReferral { customer_id, .. } if customer_id.as_str() == "cus_gone")
                .then_some(GatewayError::NotFound)
        });
        assert!(matches!(block_on(gw.customer_referral(&platform(), &customer("cus_gone"))), Err(GatewayError::NotFound)));
        assert_eq!(gw.calls().last(), Some(&GatewayCall::CustomerReferral { ctx: platform(), customer_id: customer("cus_gone") }));
        assert_eq!(gw.methods(), vec!["customer_referral"; 3]);
        assert_eq!(gw.calls()[0].idempotency_key(), "", "a read carries no idempotency key");
    }

    #[test]
    fn seeded_objects_behave_like_created_ones() {
        let gw = FakeGateway::new();
        gw.seed_promotion_code(&platform(), &promo_id("promo_seed"), &coupon_id("coupon_seed"), "SEEDED");
        assert!(block_on(gw.create_promotion_code(&platform(), &promo("p1", "seeded"))).unwrap_err().is_code_taken());
        block_on(gw.deactivate_promotion_code(&platform(), &promo_id("promo_seed"), "d1")).unwrap();
        assert_eq!(gw.promotion_code(&promo_id("promo_seed")).map(|p| p.active), Some(false));
        assert!(gw.created_promotion_codes().is_empty());
    }
}
