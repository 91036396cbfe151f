//! The payment gateway port: the few Stripe API calls Rekomi makes. Implemented by
//! `rekomi-stripe` (real Stripe or a local HTTP double), by its offline gateway for local mode,
//! and by `rekomi-fakes` for tests.
//!
//! Every mutating call carries an idempotency key derived from a Rekomi-side stable id, so a
//! retry after a crash or a timeout returns the object Stripe already created instead of a
//! duplicate. Implementations retry 429 and 5xx answers themselves; what reaches the caller is
//! final.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::coupons::{CouponDuration, DiscountSpec};
use crate::kernel::money::Money;
use crate::kernel::stripe_ids::{
    StripeAccountId, StripeChargeId, StripeCouponId, StripeCustomerId, StripeInvoiceId, StripePaymentIntentId, StripePromotionCodeId,
    StripeSubscriptionId,
};

/// Per-call context: which Stripe account the call acts on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayContext {
    /// The connected account (`acct_…`) of an organization linked through Stripe Connect;
    /// sent as the `Stripe-Account` header. `None` acts on the platform account.
    pub stripe_account: Option<StripeAccountId>,
}

/// `POST /v1/coupons`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateCoupon {
    /// Sent as the `Idempotency-Key` header.
    pub idempotency_key: String,
    /// `name` (Stripe allows at most 40 characters; the caller truncates).
    pub name: String,
    /// `percent_off` or `amount_off` + `currency`.
    pub discount: DiscountSpec,
    /// `duration` and `duration_in_months`.
    pub duration: CouponDuration,
    /// `redeem_by` (unix seconds) when set.
    pub redeem_by: Option<OffsetDateTime>,
    /// `metadata[k]=v`, carrying the Rekomi ids.
    pub metadata: Vec<(String, String)>,
}

/// `POST /v1/promotion_codes` in the current API shape
/// (`promotion[type]=coupon`, `promotion[coupon]=…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatePromotionCode {
    /// Sent as the `Idempotency-Key` header.
    pub idempotency_key: String,
    /// The Stripe coupon id (`promotion[coupon]`).
    pub coupon_id: StripeCouponId,
    /// `code`, the customer-facing text.
    pub code: String,
    /// `max_redemptions` when set.
    pub max_redemptions: Option<u32>,
    /// `expires_at` (unix seconds) when set.
    pub expires_at: Option<OffsetDateTime>,
    /// `restrictions[first_time_transaction]=true` when set.
    pub first_time_transaction: bool,
    /// `restrictions[minimum_amount]` and `restrictions[minimum_amount_currency]` when set.
    pub minimum_amount: Option<Money>,
    /// `customer` (a `cus_…` id) when the code is limited to one customer.
    pub customer: Option<StripeCustomerId>,
    /// `metadata[k]=v`, carrying the Rekomi ids.
    pub metadata: Vec<(String, String)>,
}

/// Where a charge settled, when Stripe converted it: the currency the Stripe balance received
/// and the rate applied (`balance_transaction.exchange_rate`: settlement units per unit of the
/// charge's currency).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    /// The balance transaction's currency, lower-case as Stripe reports it.
    pub currency: String,
    /// Stripe's exchange rate.
    pub exchange_rate: crate::fx::FxRate,
}

/// Why a gateway call failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Stripe refused the request (a 4xx other than 429). Permanent: retrying the same request
    /// gives the same answer. `code` and `param` are Stripe's error `code` and `param`.
    #[error("the payment provider rejected the request: {message}")]
    Rejected {
        /// Stripe's error code, e.g. `resource_already_exists`.
        code: Option<String>,
        /// The request parameter at fault, e.g. `code`.
        param: Option<String>,
        /// Stripe's human-readable message.
        message: String,
    },
    /// The object does not exist at Stripe (404).
    #[error("the payment provider has no such object")]
    NotFound,
    /// Stripe could not be reached or kept answering 429/5xx after the retries. Transient:
    /// the same call with the same idempotency key may succeed later.
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    /// Anything else (unparseable answer, misconfiguration).
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

impl GatewayError {
    /// Whether Stripe refused a promotion code because its text is already used by an active
    /// code on the account.
    pub fn is_code_taken(&self) -> bool {
        match self {
            Self::Rejected { code, param, message } => {
                code.as_deref() == Some("resource_already_exists")
                    || (param.as_deref() == Some("code") && message.to_ascii_lowercase().contains("already"))
            }
            _ => false,
        }
    }
}

/// The Stripe API calls Rekomi makes.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Creates a coupon and returns its Stripe id (as Stripe assigns it).
    ///
    /// # Errors
    /// [`GatewayError::Rejected`] for a 4xx answer, [`GatewayError::Unavailable`] when retries
    /// are exhausted, [`GatewayError::Unknown`] otherwise (an answer whose id is no coupon id
    /// included).
    async fn create_coupon(&self, ctx: &GatewayContext, request: &CreateCoupon) -> Result<StripeCouponId, GatewayError>;

    /// Creates a promotion code and returns its Stripe id (`promo_…`).
    ///
    /// # Errors
    /// As [`PaymentGateway::create_coupon`]; a code already active on the account is a
    /// [`GatewayError::Rejected`] for which [`GatewayError::is_code_taken`] holds.
    async fn create_promotion_code(
        &self,
        ctx: &GatewayContext,
        request: &CreatePromotionCode,
    ) -> Result<StripePromotionCodeId, GatewayError>;

    /// Sets `active=false` on a promotion code (`POST /v1/promotion_codes/{id}`).
    /// Deactivating an already inactive code succeeds.
    ///
    /// # Errors
    /// [`GatewayError::NotFound`] when Stripe does not know the id; otherwise as above.
    async fn deactivate_promotion_code(
        &self,
        ctx: &GatewayContext,
        promotion_code_id: &StripePromotionCodeId,
        idempotency_key: &str,
    ) -> Result<(), GatewayError>;

    /// The promotion codes applied to an invoice: `GET /v1/invoices/{id}` with
    /// `expand[]=discounts.promotion_code` (discounts whose source is a promotion code give its
    /// id and code text). Read-only, so no idempotency key.
    ///
    /// # Errors
    /// [`GatewayError::NotFound`] for an unknown invoice; otherwise as above.
    async fn invoice_promotion_codes(
        &self,
        ctx: &GatewayContext,
        invoice_id: &StripeInvoiceId,
    ) -> Result<Vec<crate::stripe_inbox::facts::PromotionCodeRef>, GatewayError>;

    /// The promotion codes applied to a subscription: `GET /v1/subscriptions/{id}` with
    /// `expand[]=discounts.promotion_code`.
    ///
    /// # Errors
    /// As [`PaymentGateway::invoice_promotion_codes`].
    async fn subscription_promotion_codes(
        &self,
        ctx: &GatewayContext,
        subscription_id: &StripeSubscriptionId,
    ) -> Result<Vec<crate::stripe_inbox::facts::PromotionCodeRef>, GatewayError>;

    /// The invoice a payment belongs to, through the invoice-payments API (charges no longer
    /// name their invoice since 2025-03-31): `GET /v1/invoice_payments?payment[type]=payment_intent&payment[payment_intent]=pi_…`.
    /// `None` when the payment is not an invoice's; a charge without a payment intent is never an
    /// invoice's (Stripe is then not asked).
    ///
    /// # Errors
    /// As [`PaymentGateway::invoice_promotion_codes`].
    async fn invoice_of_payment(
        &self,
        ctx: &GatewayContext,
        charge_id: &StripeChargeId,
        payment_intent_id: Option<StripePaymentIntentId>,
    ) -> Result<Option<StripeInvoiceId>, GatewayError>;

    /// The referral a customer carries: `metadata.rekomi_ref` of `GET /v1/customers/{id}`,
    /// trimmed; `None` when the metadata has no such key, when its value is empty or holds
    /// control characters, and for a deleted customer (`{"deleted": true}`). Webhook payloads
    /// never carry the customer's metadata, hence the lookup. Read-only, so no idempotency key.
    ///
    /// # Errors
    /// As [`PaymentGateway::invoice_promotion_codes`]: [`GatewayError::NotFound`] for an
    /// unknown customer.
    async fn customer_referral(&self, ctx: &GatewayContext, customer_id: &StripeCustomerId) -> Result<Option<String>, GatewayError>;

    /// How an invoice's payment settled when Stripe converted its currency: the invoice's
    /// payment intent (`GET /v1/invoice_payments?invoice=…`), then its latest charge's balance
    /// transaction (`GET /v1/payment_intents/{id}?expand[]=latest_charge.balance_transaction`).
    /// `None` when the payment was not converted (no `exchange_rate`) or the invoice was paid
    /// without a payment intent. Read-only, so no idempotency key.
    ///
    /// # Errors
    /// As [`PaymentGateway::invoice_promotion_codes`].
    async fn invoice_settlement(&self, ctx: &GatewayContext, invoice_id: &StripeInvoiceId) -> Result<Option<Settlement>, GatewayError>;

    /// Deletes a coupon (`DELETE /v1/coupons/{id}`).
    ///
    /// # Errors
    /// [`GatewayError::NotFound`] when Stripe does not know the id; otherwise as above.
    async fn delete_coupon(&self, ctx: &GatewayContext, coupon_id: &StripeCouponId, idempotency_key: &str) -> Result<(), GatewayError>;
}
