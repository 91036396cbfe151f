//! Conversions (credited sales and leads) and their commission ledger.

use serde_json::Value;
use time::OffsetDateTime;

use crate::kernel::ids::{AffiliateCouponId, AffiliateId, ConversionId, LedgerEventId, OrgId, ProgramId};
use crate::kernel::money::Currency;
use crate::kernel::stripe_ids::{StripeCustomerId, StripePaymentRef, StripeSubscriptionId};
use crate::kernel::text::api_enum;
use crate::traffic::ClickId;

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
    pub stripe_customer_id: Option<StripeCustomerId>,
    /// The brand's Stripe subscription.
    pub stripe_subscription_id: Option<StripeSubscriptionId>,
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
    /// The click the sale came from, when a click id (`rkc_…`) attributed it.
    pub click_id: Option<ClickId>,
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
    /// The affiliate the entry is owed to (its conversion's).
    pub affiliate_id: AffiliateId,
    /// The entry's currency (its conversion's).
    pub currency: Currency,
    /// Kind.
    pub kind: LedgerKind,
    /// The paid amount (sales) or the newly refunded amount (refunds, negative), minor units.
    pub amount_minor: i64,
    /// The commission earned (negative for clawbacks), minor units.
    pub commission_minor: i64,
    /// The payment the entry is about (see [`StripePaymentRef`]): the sale's invoice, else its
    /// payment intent, else its checkout session.
    pub stripe_invoice_id: Option<StripePaymentRef>,
    /// For refunds: the invoice's cumulative refunded amount this entry brought the ledger to.
    pub refunded_total: Option<i64>,
    /// When it happened at Stripe.
    pub occurred_at: OffsetDateTime,
    /// When a payout may pay it: a credit's sale time plus the organization's grace days when
    /// it was recorded; a clawback no earlier than the credit it claws back.
    pub payable_after: OffsetDateTime,
    /// The organization's home currency when it was recorded.
    pub home_currency: crate::kernel::money::Currency,
    /// Its rate to `home_currency` then, and the rate's source; `None` when no rate was known.
    pub fx: Option<(crate::fx::FxRate, crate::fx::FxSource)>,
    /// When it was recorded.
    pub created_at: OffsetDateTime,
}

/// A program's sub-affiliate (one-tier override) setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubAffiliateConfig {
    /// Whether recruiters earn overrides.
    pub enabled: bool,
    /// The override as a percentage of the recruit's commission, in hundredths (0–100 %).
    pub percent: crate::programs::Hundredths,
}

/// A commission total that would leave the range of `i64`: refused, never wrapped or saturated.
/// Amounts are range-checked where they enter (Stripe events), so this needs a forged history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the commission total of the conversion would overflow")]
pub struct CommissionOverflow;

impl From<CommissionOverflow> for crate::kernel::error::DomainError {
    fn from(e: CommissionOverflow) -> Self {
        Self::Unprocessable { code: "amount_out_of_range", message: e.to_string(), field: None }
    }
}

/// What a change did to a conversion's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusChange {
    /// The status stayed.
    Unchanged,
    /// A refunded conversion earns again (its subscription paid again): `Pending`, with a
    /// fresh grace period.
    Reopened,
    /// Everything it earned was clawed back: `Refunded`.
    Refunded,
    /// Its grace period passed: `Approved`.
    Approved,
}

impl Conversion {
    /// Adds a ledger movement (positive credit, negative clawback) to the net commission.
    ///
    /// # Errors
    /// [`CommissionOverflow`] when the total would not fit; nothing changes then.
    fn add_commission(&mut self, delta: i64) -> Result<(), CommissionOverflow> {
        self.commission_minor = self.commission_minor.checked_add(delta).ok_or(CommissionOverflow)?;
        Ok(())
    }

    /// Credits a further paid invoice (a renewal, or an override's share of one): `commission`
    /// (zero when it earns nothing) is added; `paid` counts the invoice towards the recurring
    /// window (a $0 invoice does not). A refunded conversion that earns again is reopened,
    /// Pending until `approve_after`; a Paid one is Approved again (its new entry is unpaid).
    ///
    /// # Errors
    /// [`CommissionOverflow`]; nothing changes then.
    pub fn credit(
        &mut self,
        commission: i64,
        paid: bool,
        now: OffsetDateTime,
        approve_after: OffsetDateTime,
    ) -> Result<StatusChange, CommissionOverflow> {
        self.add_commission(commission)?;
        if paid {
            self.paid_invoices = self.paid_invoices.saturating_add(1);
        }
        self.updated_at = now;
        if self.status == ConversionStatus::Refunded && commission > 0 {
            self.status = ConversionStatus::Pending;
            self.refunded_at = None;
            self.approve_after = approve_after;
            return Ok(StatusChange::Reopened);
        }
        // A paid conversion that earns again has an unpaid entry: no longer Paid.
        if self.status == ConversionStatus::Paid && commission > 0 {
            self.status = ConversionStatus::Approved;
        }
        Ok(StatusChange::Unchanged)
    }

    /// Claws back `delta` (zero or negative). When `everything_refunded` (every paid invoice
    /// that earned was fully refunded) it becomes `Refunded`; a `Denied` conversion stays
    /// `Denied`.
    ///
    /// # Errors
    /// [`CommissionOverflow`]; nothing changes then.
    pub fn claw_back(&mut self, delta: i64, everything_refunded: bool, now: OffsetDateTime) -> Result<StatusChange, CommissionOverflow> {
        self.add_commission(delta.min(0))?;
        self.updated_at = now;
        if everything_refunded && !matches!(self.status, ConversionStatus::Refunded | ConversionStatus::Denied) {
            self.status = ConversionStatus::Refunded;
            self.refunded_at = Some(now);
            return Ok(StatusChange::Refunded);
        }
        Ok(StatusChange::Unchanged)
    }

    /// Approves a `Pending` conversion whose grace period has passed at `now`.
    pub fn approve_if_due(&mut self, now: OffsetDateTime) -> StatusChange {
        if self.status != ConversionStatus::Pending || self.approve_after > now {
            return StatusChange::Unchanged;
        }
        self.status = ConversionStatus::Approved;
        self.approved_at = Some(now);
        self.updated_at = now;
        StatusChange::Approved
    }
}

/// Filters of the conversion list and export.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConversionFilter {
    /// Only this affiliate.
    pub affiliate_id: Option<AffiliateId>,
    /// Only this program.
    pub program_id: Option<ProgramId>,
    /// Only this status.
    pub status: Option<ConversionStatus>,
    /// Created at or after.
    pub since: Option<OffsetDateTime>,
    /// Created before.
    pub until: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn conversion(status: ConversionStatus, commission: i64) -> Conversion {
        let t = datetime!(2026-06-01 12:00 UTC);
        let id = uuid::Uuid::nil();
        Conversion {
            id: ConversionId::from_uuid(id),
            org_id: OrgId::from_uuid(id),
            program_id: ProgramId::from_uuid(id),
            affiliate_id: AffiliateId::from_uuid(id),
            kind: ConversionType::Recurring,
            status,
            amount_minor: 1000,
            currency: Currency::USD,
            commission_minor: commission,
            attribution_method: None,
            coupon_code: None,
            affiliate_coupon_id: None,
            stripe_customer_id: None,
            stripe_subscription_id: None,
            external_event_id: None,
            customer_email: None,
            denial_reason: None,
            parent_conversion_id: None,
            click_id: None,
            attribution_trace: Value::Null,
            paid_invoices: 1,
            approve_after: t,
            approved_at: None,
            refunded_at: None,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn a_refunded_conversion_that_earns_again_is_reopened_with_a_new_grace_period() {
        let now = datetime!(2026-07-01 12:00 UTC);
        let later = datetime!(2026-07-31 12:00 UTC);
        let mut c = conversion(ConversionStatus::Refunded, 0);
        c.refunded_at = Some(now);
        assert_eq!(c.credit(200, true, now, later), Ok(StatusChange::Reopened));
        assert_eq!(
            (c.status, c.commission_minor, c.paid_invoices, c.refunded_at, c.approve_after),
            (ConversionStatus::Pending, 200, 2, None, later)
        );
        // Earning nothing does not reopen.
        let mut quiet = conversion(ConversionStatus::Refunded, 0);
        assert_eq!(quiet.credit(0, false, now, later), Ok(StatusChange::Unchanged));
        assert_eq!((quiet.status, quiet.paid_invoices), (ConversionStatus::Refunded, 1));
    }

    #[test]
    fn a_clawback_refunds_once_everything_is_refunded_and_a_denied_conversion_stays_denied() {
        let now = datetime!(2026-07-01 12:00 UTC);
        let mut c = conversion(ConversionStatus::Approved, 200);
        assert_eq!(c.claw_back(-100, false, now), Ok(StatusChange::Unchanged));
        assert_eq!((c.status, c.commission_minor), (ConversionStatus::Approved, 100));
        assert_eq!(c.claw_back(-100, true, now), Ok(StatusChange::Refunded));
        assert_eq!((c.status, c.commission_minor, c.refunded_at), (ConversionStatus::Refunded, 0, Some(now)));
        let mut denied = conversion(ConversionStatus::Denied, 0);
        assert_eq!(denied.claw_back(0, true, now), Ok(StatusChange::Unchanged));
        assert_eq!(denied.status, ConversionStatus::Denied);
        // A positive "clawback" is no clawback.
        assert_eq!(c.claw_back(500, false, now).map(|_| c.commission_minor), Ok(0));
    }

    #[test]
    fn overflowing_totals_are_refused_and_change_nothing() {
        let now = datetime!(2026-07-01 12:00 UTC);
        let mut c = conversion(ConversionStatus::Pending, i64::MAX - 1);
        assert_eq!(c.credit(2, true, now, now), Err(CommissionOverflow));
        assert_eq!((c.commission_minor, c.paid_invoices), (i64::MAX - 1, 1));
        let mut low = conversion(ConversionStatus::Pending, i64::MIN + 1);
        assert_eq!(low.claw_back(-2, true, now), Err(CommissionOverflow));
        assert_eq!(low.status, ConversionStatus::Pending);
    }

    #[test]
    fn only_a_pending_conversion_past_its_grace_period_is_approved() {
        let now = datetime!(2026-06-01 12:00 UTC);
        let mut due = conversion(ConversionStatus::Pending, 200);
        assert_eq!(due.approve_if_due(now), StatusChange::Approved);
        assert_eq!((due.status, due.approved_at), (ConversionStatus::Approved, Some(now)));
        let mut early = conversion(ConversionStatus::Pending, 200);
        early.approve_after = datetime!(2026-06-02 12:00 UTC);
        assert_eq!(early.approve_if_due(now), StatusChange::Unchanged);
        let mut refunded = conversion(ConversionStatus::Refunded, 0);
        assert_eq!(refunded.approve_if_due(now), StatusChange::Unchanged);
    }
}
