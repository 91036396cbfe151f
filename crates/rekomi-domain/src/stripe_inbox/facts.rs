//! Stripe events as facts: what a webhook payload says, decoded tolerantly across Stripe API
//! versions by the Stripe adapter (`rekomi-stripe`), so the domain never reads Stripe JSON.
//!
//! Amounts stay as Stripe sends them (integer minor units) and currencies as raw codes; the
//! domain validates them. Stripe's ids are typed ([`crate::kernel::stripe_ids`]): the decoder
//! parses each one, and an id that breaks its kind's rules fails the decoding. Every list of
//! promotion codes holds Stripe promotion code ids (`promo_…`) and, when the payload carried the
//! expanded object, its code text.

use crate::kernel::stripe_ids::{
    StripeAccountId, StripeChargeId, StripeCheckoutSessionId, StripeCouponId, StripeCustomerId, StripeEventId, StripeInvoiceId,
    StripePaymentIntentId, StripePaymentRef, StripePromotionCodeId, StripeSubscriptionId,
};

/// The envelope of an event, read at ingestion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventEnvelope {
    /// `evt_…`.
    pub id: StripeEventId,
    /// e.g. `invoice.paid`.
    pub event_type: String,
    /// `account` (`acct_…`) for events of a connected account.
    pub account: Option<StripeAccountId>,
    /// `created`, unix seconds.
    pub created: i64,
    /// `livemode`.
    pub livemode: bool,
}

/// A redeemed promotion code as a payload (or an expanded lookup) names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromotionCodeRef {
    /// `promo_…`.
    pub id: StripePromotionCodeId,
    /// The code text, when the payload carried the expanded object.
    pub code: Option<String>,
}

/// How discounts appear on an object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discounts {
    /// Promotion codes named directly (expanded discount objects, checkout discounts, the
    /// singular `discount` of older API versions).
    pub promotion_codes: Vec<PromotionCodeRef>,
    /// Whether the object lists discount ids (`di_…`) whose promotion codes the payload does
    /// not say: the invoice or subscription must be fetched with the discounts expanded.
    pub unresolved: bool,
    /// Whether a discount takes 100 % off (when the payload says so).
    pub full_discount: bool,
}

/// `invoice.paid` / `invoice.payment_succeeded`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceFact {
    /// `in_…`.
    pub invoice_id: StripeInvoiceId,
    /// `cus_…`.
    pub customer_id: Option<StripeCustomerId>,
    /// `customer_email`.
    pub customer_email: Option<String>,
    /// From `parent.subscription_details.subscription` or (older versions) `subscription`.
    pub subscription_id: Option<StripeSubscriptionId>,
    /// `amount_paid`, minor units.
    pub amount_paid: i64,
    /// `currency`, as sent (lower-case).
    pub currency: String,
    /// Whether it is a later invoice of its subscription (Stripe's `billing_reason` is
    /// `subscription_cycle`, `subscription_update` or `subscription_threshold`) rather than the
    /// first one or a one-time invoice.
    pub renewal: bool,
    /// The discounts.
    pub discounts: Discounts,
    /// `metadata.rekomi_ref` of the invoice or of `parent.subscription_details.metadata`; for a
    /// first or one-time invoice without either, the worker fills in the customer's (fetched).
    pub referral: Option<String>,
    /// `charge` (older versions only).
    pub charge_id: Option<StripeChargeId>,
    /// `payment_intent` (older versions only).
    pub payment_intent_id: Option<StripePaymentIntentId>,
    /// When it was paid (`status_transitions.paid_at`, else `created`), unix seconds.
    pub paid_at: i64,
    /// How its payment settled, when Stripe converted it (never in the payload: looked up
    /// once the organization is known, for invoices in another currency than its home one).
    pub settlement: Option<crate::ports::gateway::Settlement>,
}

/// `customer.subscription.created`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionFact {
    /// `sub_…`.
    pub subscription_id: StripeSubscriptionId,
    /// `cus_…`.
    pub customer_id: Option<StripeCustomerId>,
    /// `status`.
    pub status: String,
    /// `latest_invoice` id.
    pub latest_invoice: Option<StripeInvoiceId>,
    /// The discounts.
    pub discounts: Discounts,
    /// `metadata.rekomi_ref`.
    pub referral: Option<String>,
    /// `currency`.
    pub currency: Option<String>,
    /// `created`, unix seconds.
    pub created: i64,
}

/// A checkout session's `mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckoutMode {
    /// A one-time payment.
    Payment,
    /// A subscription.
    Subscription,
    /// Saving a payment method: no money moves.
    Setup,
}

/// `checkout.session.completed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutFact {
    /// `cs_…`.
    pub session_id: StripeCheckoutSessionId,
    /// `customer`.
    pub customer_id: Option<StripeCustomerId>,
    /// `customer_details.email`, else `customer_email`.
    pub customer_email: Option<String>,
    /// What the session was for.
    pub mode: CheckoutMode,
    /// Whether it is paid, or needs no payment (Stripe's `payment_status` is `paid` or
    /// `no_payment_required`, not `unpaid`).
    pub paid: bool,
    /// `amount_total`, minor units.
    pub amount_total: i64,
    /// `currency`.
    pub currency: Option<String>,
    /// `subscription`.
    pub subscription_id: Option<StripeSubscriptionId>,
    /// `invoice`.
    pub invoice_id: Option<StripeInvoiceId>,
    /// `payment_intent`.
    pub payment_intent_id: Option<StripePaymentIntentId>,
    /// The discounts.
    pub discounts: Discounts,
    /// `metadata.rekomi_ref`; without it and without `client_reference_id`, the worker fills in
    /// the customer's (fetched).
    pub referral: Option<String>,
    /// `client_reference_id`.
    pub client_reference_id: Option<String>,
    /// `created`, unix seconds.
    pub created: i64,
}

/// `charge.refunded` (fired for partial refunds too; `amount_refunded` is cumulative).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundFact {
    /// `ch_…` (or `py_…`).
    pub charge_id: StripeChargeId,
    /// `payment_intent`.
    pub payment_intent_id: Option<StripePaymentIntentId>,
    /// `invoice` (older versions only; since 2025-03-31 charges do not name their invoice).
    pub invoice_id: Option<StripeInvoiceId>,
    /// `customer`.
    pub customer_id: Option<StripeCustomerId>,
    /// `amount`, minor units.
    pub amount: i64,
    /// `amount_refunded`, cumulative, minor units.
    pub amount_refunded: i64,
    /// `currency`.
    pub currency: String,
    /// `created` of the event, unix seconds.
    pub refunded_at: i64,
}

/// What an event means to Rekomi.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StripeFact {
    /// `invoice.paid` or `invoice.payment_succeeded` (the same fact).
    InvoicePaid(InvoiceFact),
    /// `customer.subscription.created`.
    SubscriptionCreated(SubscriptionFact),
    /// `checkout.session.completed`.
    CheckoutCompleted(CheckoutFact),
    /// `charge.refunded`.
    ChargeRefunded(RefundFact),
    /// `promotion_code.updated` (and `.created`): a code's active flag.
    PromotionCodeUpdated {
        /// `promo_…`.
        id: StripePromotionCodeId,
        /// `active`.
        active: bool,
    },
    /// `coupon.deleted`.
    CouponDeleted {
        /// The coupon id.
        id: StripeCouponId,
    },
    /// `account.updated` of a connected account: whether it can receive payouts now.
    AccountUpdated(crate::payouts::rail::ConnectedAccount),
    /// `transfer.reversed`: a payout's transfer was taken back.
    TransferReversed {
        /// `tr_…`.
        transfer: crate::kernel::stripe_ids::StripeTransferId,
        /// `metadata.rekomi_payout_id`, which every payout transfer carries.
        payout_id: Option<crate::kernel::ids::PayoutId>,
        /// `metadata.rekomi_org_id`.
        org_id: Option<crate::kernel::ids::OrgId>,
        /// Whether the whole amount was reversed (`transfer.reversed` fires for partial
        /// reversals too).
        fully_reversed: bool,
    },
    /// Any other event type: stored, then marked skipped.
    Ignored,
}

/// A payload could not be decoded (permanent: retrying gives the same answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable Stripe event: {0}")]
pub struct DecodeError(pub String);

/// Decodes Stripe webhook payloads. Implemented by `rekomi-stripe`.
pub trait EventDecoder: Send + Sync + 'static {
    /// Reads the envelope (id, type, account, created, livemode).
    ///
    /// # Errors
    /// [`DecodeError`] when the bytes are not a Stripe event.
    fn envelope(&self, payload: &[u8]) -> Result<EventEnvelope, DecodeError>;

    /// Decodes the event into a fact, tolerating every API version in the Stripe reference's
    /// table (discounts as ids or objects, `discount.source.coupon` or `discount.coupon`,
    /// `invoice.parent.subscription_details` or `invoice.subscription`, …).
    ///
    /// # Errors
    /// [`DecodeError`] when a handled event type lacks a field Rekomi needs.
    fn decode(&self, payload: &[u8]) -> Result<StripeFact, DecodeError>;
}

impl RefundFact {
    /// The payment refunded, as the ledger keys its sale: the invoice when known, else the
    /// payment intent, else the charge (see [`StripePaymentRef`]).
    pub fn payment(&self) -> StripePaymentRef {
        match (&self.invoice_id, &self.payment_intent_id) {
            (Some(invoice), _) => StripePaymentRef::Invoice(invoice.clone()),
            (None, Some(intent)) => StripePaymentRef::PaymentIntent(intent.clone()),
            (None, None) => StripePaymentRef::Charge(self.charge_id.clone()),
        }
    }
}

impl StripeFact {
    /// The payments a sale fact is the sale of (a refund waiting for any of them can now be
    /// applied); empty for facts that are no sale.
    pub fn sale_payments(&self) -> Vec<StripePaymentRef> {
        let ids = match self {
            Self::InvoicePaid(i) => vec![
                Some(StripePaymentRef::Invoice(i.invoice_id.clone())),
                i.payment_intent_id.clone().map(StripePaymentRef::PaymentIntent),
                i.charge_id.clone().map(StripePaymentRef::Charge),
            ],
            Self::CheckoutCompleted(c) => {
                vec![c.invoice_id.clone().map(StripePaymentRef::Invoice), c.payment_intent_id.clone().map(StripePaymentRef::PaymentIntent)]
            }
            _ => Vec::new(),
        };
        ids.into_iter().flatten().collect()
    }
}
