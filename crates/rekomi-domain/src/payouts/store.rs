//! The storage port's slice for payouts: payable entries, payouts and their line items, and
//! payout accounts.

use time::OffsetDateTime;

use crate::affiliates::AffiliateStatus;
use crate::kernel::ids::{AffiliateId, ConversionId, OrgId, PayoutId};
use crate::kernel::money::Currency;
use crate::kernel::page::PageRequest;
use crate::kernel::stripe_ids::{StripeAccountId, StripeTransferId};
use crate::payouts::ledger::EntryClaim;
use crate::payouts::model::{PayableEntry, Payout, PayoutAccount, PayoutFilter, PayoutLineItem};
use crate::ports::store::StoreError;

/// Which open entries to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayableQuery {
    /// Entries in this currency.
    pub currency: Currency,
    /// Payable at or before this time.
    pub cutoff: OffsetDateTime,
    /// Only these affiliates (`None`: all).
    pub affiliates: Option<Vec<AffiliateId>>,
}

/// Payouts, their line items, and payout accounts.
pub trait PayoutRepo {
    /// Serializes payout runs of an organization until the transaction ends (a row lock), so
    /// two runs cannot select the same entries.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn lock_payout_runs(&mut self, org: OrgId) -> Result<(), StoreError>;
    /// The organization's entries with a non-zero commission in the query's currency, payable
    /// by its cutoff, that no live (not released) line item holds, of the first
    /// `affiliates_per_page` affiliates (by id) after `after` that have any: every such entry
    /// of each of them, by affiliate, then ledger order (id). Runs page through affiliates so a
    /// run over a million entries never holds them all.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn open_entries(
        &mut self,
        org: OrgId,
        query: &PayableQuery,
        after: Option<AffiliateId>,
        affiliates_per_page: usize,
    ) -> Result<Vec<PayableEntry>, StoreError>;
    /// The status of each of these affiliates of the organization (unknown ids are left out).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate_statuses(&mut self, org: OrgId, ids: &[AffiliateId]) -> Result<Vec<(AffiliateId, AffiliateStatus)>, StoreError>;
    /// Inserts payouts.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_payouts(&mut self, payouts: &[Payout]) -> Result<(), StoreError>;
    /// Inserts line items (live).
    ///
    /// # Errors
    /// `Conflict` on [`constraints::PAYOUT_ENTRY_LIVE`](crate::ports::store::constraints::PAYOUT_ENTRY_LIVE)
    /// when an entry is already held by a live line item.
    fn insert_line_items(&mut self, items: &[PayoutLineItem]) -> Result<(), StoreError>;
    /// Replaces a payout's fields.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn update_payout(&mut self, payout: &Payout) -> Result<(), StoreError>;
    /// A payout of the organization, locked until the transaction ends.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn payout_for_update(&mut self, org: OrgId, id: PayoutId) -> Result<Option<Payout>, StoreError>;
    /// A payout of the organization.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn payout(&mut self, org: OrgId, id: PayoutId) -> Result<Option<Payout>, StoreError>;
    /// These payouts of the organization (unknown ids left out), in id order.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn payouts_by_ids(&mut self, org: OrgId, ids: &[PayoutId]) -> Result<Vec<Payout>, StoreError>;
    /// The payout (of any organization) that a Stripe transfer paid, locked.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn payout_of_transfer(&mut self, transfer: &StripeTransferId) -> Result<Option<Payout>, StoreError>;
    /// Payouts matching the filter, newest first, at most `page.fetch_limit()` rows.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn list_payouts(&mut self, org: OrgId, filter: &PayoutFilter, page: &PageRequest) -> Result<Vec<Payout>, StoreError>;
    /// The line items (live and released) of these payouts, by payout, in ledger order.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn line_items_of(&mut self, org: OrgId, payouts: &[PayoutId]) -> Result<Vec<PayoutLineItem>, StoreError>;
    /// Releases a payout's line items: its entries return to the balance.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn release_line_items(&mut self, org: OrgId, payout: PayoutId) -> Result<(), StoreError>;
    /// Makes a failed payout's released line items live again (a retry).
    ///
    /// # Errors
    /// `Conflict` on [`constraints::PAYOUT_ENTRY_LIVE`](crate::ports::store::constraints::PAYOUT_ENTRY_LIVE)
    /// when another payout holds one of its entries now.
    fn reclaim_line_items(&mut self, org: OrgId, payout: PayoutId) -> Result<(), StoreError>;
    /// Sets `Paid` on the conversions of these payouts' live line items every positive entry of
    /// which a live line item of a Paid payout holds (the payouts themselves must already be
    /// stored as Paid); Pending and Approved conversions only. Returns how many changed.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn mark_conversions_paid(&mut self, org: OrgId, payouts: &[PayoutId], now: OffsetDateTime) -> Result<usize, StoreError>;
    /// Sets `Approved` again on the `Paid` conversions of a payout's line items (its transfer was
    /// reversed). Returns the ids changed.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn unmark_conversions_paid(&mut self, org: OrgId, payout: PayoutId, now: OffsetDateTime) -> Result<Vec<ConversionId>, StoreError>;
    /// Payouts of every organization left `Processing` since before `before`, oldest first.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn processing_payouts(&mut self, before: OffsetDateTime, limit: i64) -> Result<Vec<Payout>, StoreError>;
    /// Every entry (non-zero commission) of an affiliate in a currency with its claim: the
    /// balance's input.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn entry_claims(&mut self, org: OrgId, affiliate: AffiliateId, currency: Currency) -> Result<Vec<(i64, EntryClaim)>, StoreError>;
    /// The sum of the organization's Paid payouts in a currency paid at or after `since`.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn paid_out_since(&mut self, org: OrgId, currency: Currency, since: OffsetDateTime) -> Result<i64, StoreError>;
    /// An affiliate's payout account.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn payout_account(&mut self, org: OrgId, affiliate: AffiliateId) -> Result<Option<PayoutAccount>, StoreError>;
    /// The payout accounts of these affiliates.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn payout_accounts_of(&mut self, org: OrgId, affiliates: &[AffiliateId]) -> Result<Vec<PayoutAccount>, StoreError>;
    /// Inserts or replaces an affiliate's payout account.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn save_payout_account(&mut self, account: &PayoutAccount) -> Result<(), StoreError>;
    /// The payout accounts (of any organization) that name a Stripe account.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn payout_accounts_by_stripe_account(&mut self, account: &StripeAccountId) -> Result<Vec<PayoutAccount>, StoreError>;
}
