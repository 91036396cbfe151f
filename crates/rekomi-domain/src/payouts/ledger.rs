//! The payout rules over the commission ledger, pure: which entries a run pays, who is
//! eligible, and an affiliate's balance.
//!
//! An entry is payable once its `payable_after` has passed. A run's period selects credits by
//! that time (`periodStart` to the end of `periodEnd`, UTC, never later than now); clawbacks
//! payable by the end of the period are always netted, whatever their start, so a known
//! clawback is never left behind while credits are paid. Per affiliate the selected entries
//! are summed; a sum that is not positive is carried (never paid below zero), and the entries
//! stay in the balance for the next run.

use std::collections::BTreeMap;

use time::{Date, OffsetDateTime, Time};

use crate::affiliates::AffiliateStatus;
use crate::kernel::ids::AffiliateId;
use crate::payouts::model::{PayableEntry, PayoutAccount, PayoutMethod};

/// Why a candidate cannot be paid now (`ineligibilityReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IneligibilityCode {
    /// A Stripe payout for an affiliate without a Stripe account.
    NoStripeConnect,
    /// The affiliate's Stripe account cannot receive payouts yet.
    PayoutsNotEnabled,
    /// A PayPal or Wise payout for an affiliate without that email.
    NoPayoutEmail,
    /// Zero, or under the organization's minimum payout.
    BelowMinimum,
    /// Clawbacks exceed credits: carried to a later run.
    NegativeBalance,
    /// The membership is not Approved.
    AffiliateNotApproved,
}

impl IneligibilityCode {
    /// Every value, in the order the eligibility rule checks them.
    pub const ALL: &'static [IneligibilityCode] = &[
        Self::AffiliateNotApproved,
        Self::NegativeBalance,
        Self::BelowMinimum,
        Self::NoStripeConnect,
        Self::PayoutsNotEnabled,
        Self::NoPayoutEmail,
    ];

    /// The API name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NoStripeConnect => "no_stripe_connect",
            Self::PayoutsNotEnabled => "payouts_not_enabled",
            Self::NoPayoutEmail => "no_payout_email",
            Self::BelowMinimum => "below_minimum",
            Self::NegativeBalance => "negative_balance",
            Self::AffiliateNotApproved => "affiliate_not_approved",
        }
    }
}

/// The entries a run may pay: credits payable in `[start, cutoff]`, clawbacks payable by `cutoff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayableWindow {
    /// Credits payable from this time (the start of `periodStart`), when given.
    pub start: Option<OffsetDateTime>,
    /// Entries payable at or before this time: the end of `periodEnd`, or now if earlier.
    pub cutoff: OffsetDateTime,
}

impl PayableWindow {
    /// The window of a period of days (UTC) at `now`. The cutoff is inclusive everywhere (here
    /// and in the stores' queries), so a period ends at the last microsecond (PostgreSQL's
    /// precision) of `periodEnd`: an entry payable at the midnight after it belongs to the next
    /// day's run.
    pub fn of_period(start: Option<Date>, end: Option<Date>, now: OffsetDateTime) -> Self {
        let end_of = |d: Date| OffsetDateTime::new_utc(d, Time::MIDNIGHT) + time::Duration::days(1) - time::Duration::microseconds(1);
        let cutoff = end.map_or(now, |e| end_of(e).min(now));
        Self { start: start.map(|s| OffsetDateTime::new_utc(s, Time::MIDNIGHT)), cutoff }
    }

    /// Whether the window selects `entry`: non-zero, payable by the cutoff, and (credits only)
    /// payable from the start.
    pub fn selects(&self, entry: &PayableEntry) -> bool {
        if entry.commission_minor == 0 || entry.payable_after > self.cutoff {
            return false;
        }
        entry.commission_minor < 0 || self.start.is_none_or(|s| entry.payable_after >= s)
    }
}

/// One affiliate's selected entries in one currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The affiliate.
    pub affiliate_id: AffiliateId,
    /// The sum of the entries (minor units); may be zero or negative.
    pub amount_minor: i64,
    /// The entries, in ledger order.
    pub entries: Vec<PayableEntry>,
    /// Why it cannot be paid now; `None` when it can.
    pub ineligible: Option<IneligibilityCode>,
}

/// What a candidate's affiliate looks like to the eligibility rule.
#[derive(Clone, Copy, Debug)]
pub struct Recipient<'a> {
    /// The membership's status.
    pub status: AffiliateStatus,
    /// Where it is paid, if recorded.
    pub account: Option<&'a PayoutAccount>,
}

/// Groups the entries the window selects by affiliate (sums overflow-checked: a sum beyond
/// `i64` is carried as ineligible rather than wrapped).
pub fn candidates(entries: &[PayableEntry], window: &PayableWindow) -> Vec<Candidate> {
    let mut by_affiliate: BTreeMap<AffiliateId, Vec<PayableEntry>> = BTreeMap::new();
    for entry in entries.iter().filter(|e| window.selects(e)) {
        by_affiliate.entry(entry.affiliate_id).or_default().push(*entry);
    }
    by_affiliate
        .into_iter()
        .map(|(affiliate_id, entries)| {
            let sum = entries.iter().try_fold(0i64, |acc, e| acc.checked_add(e.commission_minor));
            Candidate { affiliate_id, amount_minor: sum.unwrap_or(i64::MIN), entries, ineligible: None }
        })
        .collect()
}

/// Why `candidate` cannot be paid by `method`, checked in this order: the membership must be
/// Approved; the sum must be positive (`negative_balance` when below zero, `below_minimum` when
/// zero or under the organization's minimum); then the method's destination must exist (a
/// Stripe account with payouts enabled, or a PayPal/Wise email). Manual needs no destination.
pub fn ineligibility(amount_minor: i64, minimum_minor: i64, method: PayoutMethod, recipient: Recipient<'_>) -> Option<IneligibilityCode> {
    if recipient.status != AffiliateStatus::Approved {
        return Some(IneligibilityCode::AffiliateNotApproved);
    }
    if amount_minor < 0 {
        return Some(IneligibilityCode::NegativeBalance);
    }
    if amount_minor == 0 || amount_minor < minimum_minor {
        return Some(IneligibilityCode::BelowMinimum);
    }
    let account = recipient.account;
    match method {
        PayoutMethod::Manual => None,
        PayoutMethod::StripeConnect => match account.and_then(|a| a.stripe_account_id.as_ref().map(|_| a)) {
            None => Some(IneligibilityCode::NoStripeConnect),
            Some(a) if !a.payouts_enabled => Some(IneligibilityCode::PayoutsNotEnabled),
            Some(_) => None,
        },
        PayoutMethod::PayPal => account.and_then(|a| a.paypal_email.as_ref()).is_none().then_some(IneligibilityCode::NoPayoutEmail),
        PayoutMethod::Wise => account.and_then(|a| a.wise_email.as_ref()).is_none().then_some(IneligibilityCode::NoPayoutEmail),
    }
}

/// Where an entry stands towards payouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryClaim {
    /// In no live payout.
    Open,
    /// In a Pending or Processing payout.
    InFlight,
    /// In a Paid payout.
    Paid,
}

/// An affiliate's money in one currency: `earned − clawed_back − paid = balance`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balance {
    /// The sum of credits.
    pub earned: i64,
    /// The sum of clawbacks, as a positive number.
    pub clawed_back: i64,
    /// The net of the entries in Paid payouts.
    pub paid: i64,
    /// The net of the entries in Pending or Processing payouts (part of `balance`).
    pub in_flight: i64,
    /// What is still owed (negative: a clawback carried to the next payout).
    pub balance: i64,
}

impl Balance {
    /// The balance of a set of entries (commission, claim).
    pub fn of(entries: impl IntoIterator<Item = (i64, EntryClaim)>) -> Self {
        let mut b = Self::default();
        for (commission, claim) in entries {
            if commission >= 0 {
                b.earned = b.earned.saturating_add(commission);
            } else {
                b.clawed_back = b.clawed_back.saturating_add(commission.saturating_neg());
            }
            match claim {
                EntryClaim::Paid => b.paid = b.paid.saturating_add(commission),
                EntryClaim::InFlight => b.in_flight = b.in_flight.saturating_add(commission),
                EntryClaim::Open => {}
            }
        }
        b.balance = b.earned.saturating_sub(b.clawed_back).saturating_sub(b.paid);
        b
    }
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;
    use crate::kernel::ids::{ConversionId, LedgerEventId, OrgId};
    use crate::kernel::stripe_ids::StripeAccountId;

    fn entry(n: u128, affiliate: u128, commission: i64, payable_after: OffsetDateTime) -> PayableEntry {
        PayableEntry {
            id: LedgerEventId::from_uuid(uuid::Uuid::from_u128(n)),
            conversion_id: ConversionId::from_uuid(uuid::Uuid::from_u128(n)),
            affiliate_id: AffiliateId::from_uuid(uuid::Uuid::from_u128(affiliate)),
            commission_minor: commission,
            payable_after,
        }
    }

    #[test]
    fn a_period_selects_credits_by_payable_day_and_every_clawback_due_by_its_end() {
        let now = datetime!(2026-05-10 12:00 UTC);
        let window = PayableWindow::of_period(Some(date!(2026 - 04 - 01)), Some(date!(2026 - 04 - 30)), now);
        assert_eq!(window.cutoff, datetime!(2026-04-30 23:59:59.999999 UTC));
        let cases = [
            (entry(1, 1, 100, datetime!(2026-04-01 00:00 UTC)), true),
            (entry(2, 1, 100, datetime!(2026-03-31 23:59:59 UTC)), false),
            (entry(3, 1, 100, datetime!(2026-04-30 23:59:59 UTC)), true),
            (entry(4, 1, 100, datetime!(2026-05-01 00:00 UTC)), false),
            (entry(5, 1, -40, datetime!(2026-02-01 00:00 UTC)), true),
            (entry(6, 1, -40, datetime!(2026-05-02 00:00 UTC)), false),
            (entry(7, 1, 0, datetime!(2026-04-10 00:00 UTC)), false),
        ];
        for (e, selected) in cases {
            assert_eq!(window.selects(&e), selected, "{e:?}");
        }
        // Never later than now.
        let early = PayableWindow::of_period(None, Some(date!(2026 - 12 - 31)), now);
        assert_eq!((early.start, early.cutoff), (None, now));
    }

    #[test]
    fn candidates_sum_per_affiliate_and_keep_ledger_order() {
        let t = datetime!(2026-04-02 00:00 UTC);
        let entries = [entry(1, 2, 500, t), entry(2, 1, 300, t), entry(3, 2, -200, t), entry(4, 1, 0, t)];
        let window = PayableWindow { start: None, cutoff: t };
        let found = candidates(&entries, &window);
        assert_eq!(found.iter().map(|c| (c.amount_minor, c.entries.len())).collect::<Vec<_>>(), vec![(300, 1), (300, 2)]);
        assert_eq!(found[1].entries[0].id, entries[0].id);
    }

    #[test]
    fn eligibility_checks_status_then_amount_then_destination() {
        let t = datetime!(2026-04-02 00:00 UTC);
        let org = OrgId::from_uuid(uuid::Uuid::nil());
        let affiliate = AffiliateId::from_uuid(uuid::Uuid::nil());
        let mut account = PayoutAccount::empty(org, affiliate, t);
        fn approved(a: Option<&PayoutAccount>) -> Recipient<'_> {
            Recipient { status: AffiliateStatus::Approved, account: a }
        }
        use IneligibilityCode as I;
        assert_eq!(ineligibility(100, 0, PayoutMethod::StripeConnect, approved(None)), Some(I::NoStripeConnect));
        assert_eq!(
            ineligibility(100, 0, PayoutMethod::Manual, Recipient { status: AffiliateStatus::Paused, account: None }),
            Some(I::AffiliateNotApproved)
        );
        assert_eq!(ineligibility(-1, 0, PayoutMethod::Manual, approved(None)), Some(I::NegativeBalance));
        assert_eq!(ineligibility(0, 0, PayoutMethod::Manual, approved(None)), Some(I::BelowMinimum));
        assert_eq!(ineligibility(99, 100, PayoutMethod::Manual, approved(None)), Some(I::BelowMinimum));
        assert_eq!(ineligibility(100, 100, PayoutMethod::Manual, approved(None)), None);
        account.stripe_account_id = Some("acct_1".parse::<StripeAccountId>().unwrap());
        assert_eq!(ineligibility(100, 0, PayoutMethod::StripeConnect, approved(Some(&account))), Some(I::PayoutsNotEnabled));
        account.payouts_enabled = true;
        assert_eq!(ineligibility(100, 0, PayoutMethod::StripeConnect, approved(Some(&account))), None);
        assert_eq!(ineligibility(100, 0, PayoutMethod::PayPal, approved(Some(&account))), Some(I::NoPayoutEmail));
    }

    #[test]
    fn the_balance_is_earned_minus_clawed_back_minus_paid() {
        let b = Balance::of([(1000, EntryClaim::Paid), (-300, EntryClaim::Open), (500, EntryClaim::InFlight), (-100, EntryClaim::Paid)]);
        assert_eq!(b, Balance { earned: 1500, clawed_back: 400, paid: 900, in_flight: 500, balance: 200 });
    }
}
