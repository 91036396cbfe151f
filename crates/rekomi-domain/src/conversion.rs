//! Conversions (credited sales and leads) and their commission ledger.

use serde_json::Value;
use time::OffsetDateTime;

use crate::ids::{AffiliateCouponId, AffiliateId, ConversionId, LedgerEventId, OrgId, ProgramId};
use crate::money::Currency;
use crate::program::api_enum;

api_enum!(/// What was credited.
    ConversionType { OneTime, Recurring, Bonus, ClickReward, LeadReward });
api_enum!(/// Where a conversion stands. `Pending` becomes `Approved` once the organization's payout
    /// grace days have passed; `Refunded` once everything it earned was clawed back; `Denied`
    /// when it earns nothing (self-referral, ineligible affiliate).
    ConversionStatus { Pending, Approved, Paid, Denied, Refunded });

/// A ledger entry's kind (`eventType` in the API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LedgerKind {
    /// The first paid invoice or the one-time sale.
    Initial,
    /// A later paid invoice of the same subscription.
    Renewal,
    /// A clawback (negative).
    Refund,
    /// A manual correction.
    Adjustment,
}

impl LedgerKind {
    /// The API name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::Renewal => "renewal",
            Self::Refund => "refund",
            Self::Adjustment => "adjustment",
        }
    }

    /// Parses the stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "initial" => Some(Self::Initial),
            "renewal" => Some(Self::Renewal),
            "refund" => Some(Self::Refund),
            "adjustment" => Some(Self::Adjustment),
            _ => None,
        }
    }
}

/// One credited sale or lead.
#[derive(Clone, Debug, PartialEq)]
pub struct Conversion {
    /// Id.
    pub id: ConversionId,
    /// Organization.
    pub org_id: OrgId,
    /// Program.
    pub program_id: ProgramId,
    /// The credited affiliate.
    pub affiliate_id: AffiliateId,
    /// Type.
    pub kind: ConversionType,
    /// Status.
    pub status: ConversionStatus,
    /// The first paid amount in minor units (0 for leads and overrides).
    pub amount_minor: i64,
    /// The native currency.
    pub currency: Currency,
    /// The net commission: the sum of the ledger.
    pub commission_minor: i64,
    /// `coupon`, `coupon_with_metadata`, `metadata_or_customer`, `sub_affiliate_override`.
    pub attribution_method: Option<String>,
    /// The redeemed code, when a coupon decided.
    pub coupon_code: Option<String>,
    /// The redeemed affiliate coupon, when a coupon decided.
    pub affiliate_coupon_id: Option<AffiliateCouponId>,
    /// The brand's Stripe customer.
    pub stripe_customer_id: Option<String>,
    /// The brand's Stripe subscription.
    pub stripe_subscription_id: Option<String>,
    /// The first invoice or checkout session.
    pub external_event_id: Option<String>,
    /// The customer's email (self-referral check, email-match).
    pub customer_email: Option<String>,
    /// Why it earns nothing, for `Denied`.
    pub denial_reason: Option<String>,
    /// The recruit's conversion this override was earned on.
    pub parent_conversion_id: Option<ConversionId>,
    /// The signals seen and the rule that decided.
    pub attribution_trace: Value,
    /// Paid invoices seen (the recurring rules count them).
    pub paid_invoices: u32,
    /// When a Pending conversion becomes Approved.
    pub approve_after: OffsetDateTime,
    /// When it became Approved.
    pub approved_at: Option<OffsetDateTime>,
    /// When it became Refunded.
    pub refunded_at: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// One entry of a conversion's commission ledger. Append-only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEvent {
    /// Id.
    pub id: LedgerEventId,
    /// Organization.
    pub org_id: OrgId,
    /// Conversion.
    pub conversion_id: ConversionId,
    /// Kind.
    pub kind: LedgerKind,
    /// The paid amount (sales) or the newly refunded amount (refunds, negative), minor units.
    pub amount_minor: i64,
    /// The commission earned (negative for clawbacks), minor units.
    pub commission_minor: i64,
    /// The invoice (or checkout session) the entry is about.
    pub stripe_invoice_id: Option<String>,
    /// For refunds: the invoice's cumulative refunded amount this entry brought the ledger to.
    pub refunded_total: Option<i64>,
    /// When it happened at Stripe.
    pub occurred_at: OffsetDateTime,
    /// When it was recorded.
    pub created_at: OffsetDateTime,
}

/// A program's sub-affiliate (one-tier override) setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubAffiliateConfig {
    /// Whether recruiters earn overrides.
    pub enabled: bool,
    /// The override as a percentage of the recruit's commission, in hundredths (0–100 %).
    pub percent: crate::program::Hundredths,
}

/// A commission total that would leave the range of `i64`: refused, never wrapped or saturated.
/// Amounts are range-checked where they enter (Stripe events), so this needs a forged history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the commission total of the conversion would overflow")]
pub struct CommissionOverflow;

impl From<CommissionOverflow> for crate::error::DomainError {
    fn from(e: CommissionOverflow) -> Self {
        Self::Unprocessable { code: "amount_out_of_range", message: e.to_string(), field: None }
    }
}

impl Conversion {
    /// Adds a ledger movement (positive credit, negative clawback) to the net commission.
    ///
    /// # Errors
    /// [`CommissionOverflow`] when the total would not fit; nothing changes then.
    pub fn add_commission(&mut self, delta: i64) -> Result<(), CommissionOverflow> {
        self.commission_minor = self.commission_minor.checked_add(delta).ok_or(CommissionOverflow)?;
        Ok(())
    }
}
