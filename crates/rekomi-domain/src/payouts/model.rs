//! Payouts, their line items, and where an affiliate is paid.

use time::{Date, OffsetDateTime};

use crate::affiliates::Email;
use crate::kernel::ids::{AffiliateId, ConversionId, LedgerEventId, OrgId, PayoutId, PayoutLineItemId};
use crate::kernel::money::Currency;
use crate::kernel::stripe_ids::{StripeAccountId, StripeTransferId};
use crate::kernel::text::api_enum;

api_enum!(/// How a payout is paid. `StripeConnect` transfers to the affiliate's Express account;
    /// the others are paid outside Rekomi and recorded here.
    PayoutMethod { Manual, StripeConnect, PayPal, Wise });
api_enum!(/// Where a payout stands. `Pending`: created, waiting to be paid out of band (PayPal,
    /// Wise); `Processing`: a transfer was asked for and its outcome is not known yet; `Paid`;
    /// `Failed`: nothing was paid (or the transfer was reversed) and its entries are back in the
    /// balance.
    PayoutStatus { Pending, Processing, Paid, Failed });

/// One payment to one affiliate in one currency, paying ledger entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payout {
    /// Id (its transfer's idempotency keys and transfer group derive from it).
    pub id: PayoutId,
    /// Organization.
    pub org_id: OrgId,
    /// The affiliate paid.
    pub affiliate_id: AffiliateId,
    /// The sum of its line items, minor units; always positive.
    pub amount_minor: i64,
    /// Currency.
    pub currency: Currency,
    /// Method.
    pub method: PayoutMethod,
    /// Status.
    pub status: PayoutStatus,
    /// Where it is paid: the `acct_…` of a Stripe payout, the PayPal or Wise email.
    pub destination: Option<String>,
    /// The Stripe transfer, once known.
    pub stripe_transfer_id: Option<StripeTransferId>,
    /// The brand's reference of an out-of-band payment.
    pub external_transaction_id: Option<String>,
    /// The run's notes.
    pub notes: Option<String>,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// Transfer attempts (1 for the run, +1 per retry): part of the idempotency key.
    pub attempt: u32,
    /// The period of the run (entries payable from this day), when one was given.
    pub period_start: Option<Date>,
    /// The last day of the period (entries payable up to the end of this day).
    pub period_end: Date,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// When it was paid.
    pub paid_at: Option<OffsetDateTime>,
    /// When it failed.
    pub failed_at: Option<OffsetDateTime>,
}

impl Payout {
    /// The `Idempotency-Key` of its current transfer attempt.
    pub fn transfer_key(&self) -> String {
        format!("rekomi-payout-{}-attempt-{}", self.id, self.attempt)
    }

    /// Its transfer group, the same for every attempt.
    pub fn transfer_group(&self) -> String {
        format!("rekomi_payout_{}", self.id)
    }

    /// Marks it paid.
    pub fn paid(&mut self, transfer: Option<StripeTransferId>, now: OffsetDateTime) {
        self.status = PayoutStatus::Paid;
        if transfer.is_some() {
            self.stripe_transfer_id = transfer;
        }
        self.failure_reason = None;
        self.paid_at = Some(now);
        self.failed_at = None;
        self.updated_at = now;
    }

    /// Marks it failed with `reason`.
    pub fn failed(&mut self, reason: impl Into<String>, now: OffsetDateTime) {
        self.status = PayoutStatus::Failed;
        self.failure_reason = Some(reason.into());
        self.failed_at = Some(now);
        self.paid_at = None;
        self.updated_at = now;
    }
}

/// One line of a payout: the ledger entry it pays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutLineItem {
    /// Id.
    pub id: PayoutLineItemId,
    /// Organization.
    pub org_id: OrgId,
    /// Payout.
    pub payout_id: PayoutId,
    /// The entry paid.
    pub ledger_event_id: LedgerEventId,
    /// The entry's conversion.
    pub conversion_id: ConversionId,
    /// The entry's commission (negative for a clawback netted here).
    pub amount_minor: i64,
}

/// Where an affiliate (one program membership) is paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutAccount {
    /// Organization.
    pub org_id: OrgId,
    /// The affiliate.
    pub affiliate_id: AffiliateId,
    /// The Stripe Express (or recorded existing) account.
    pub stripe_account_id: Option<StripeAccountId>,
    /// Whether Stripe lets the account receive payouts (kept in step by `account.updated`).
    pub payouts_enabled: bool,
    /// Whether the affiliate finished Stripe's onboarding.
    pub details_submitted: bool,
    /// PayPal email, for PayPal payouts.
    pub paypal_email: Option<Email>,
    /// Wise email, for Wise payouts.
    pub wise_email: Option<Email>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl PayoutAccount {
    /// An empty account record for `affiliate`.
    pub fn empty(org_id: OrgId, affiliate_id: AffiliateId, now: OffsetDateTime) -> Self {
        Self {
            org_id,
            affiliate_id,
            stripe_account_id: None,
            payouts_enabled: false,
            details_submitted: false,
            paypal_email: None,
            wise_email: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A ledger entry a payout may pay: the fields the payout rules need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayableEntry {
    /// The entry.
    pub id: LedgerEventId,
    /// Its conversion.
    pub conversion_id: ConversionId,
    /// Its affiliate.
    pub affiliate_id: AffiliateId,
    /// Its commission (negative for a clawback).
    pub commission_minor: i64,
    /// When it becomes payable.
    pub payable_after: OffsetDateTime,
}

/// Filters of the payout list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PayoutFilter {
    /// Only this affiliate.
    pub affiliate_id: Option<AffiliateId>,
    /// Only this status.
    pub status: Option<PayoutStatus>,
    /// Only this method.
    pub method: Option<PayoutMethod>,
}

/// A payout with its line items, as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutView {
    /// The payout.
    pub payout: Payout,
    /// Its line items, in ledger order.
    pub line_items: Vec<PayoutLineItem>,
}
