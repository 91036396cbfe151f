//! The fake store's slice for payouts: the domain's `PayoutRepo` over the `payouts`,
//! `payout_line_items` and `payout_accounts` tables of `State`, with the migration's rule that
//! an entry is held by one live line item at most.

use rekomi_domain::affiliates::AffiliateStatus;
use rekomi_domain::conversions::ConversionStatus;
use rekomi_domain::kernel::ids::{AffiliateId, ConversionId, OrgId, PayoutId};
use rekomi_domain::kernel::money::Currency;
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::kernel::stripe_ids::{StripeAccountId, StripeTransferId};
use rekomi_domain::payouts::{
    EntryClaim, PayableEntry, PayableQuery, Payout, PayoutAccount, PayoutFilter, PayoutLineItem, PayoutRepo, PayoutStatus,
};
use rekomi_domain::ports::store::{constraints, StoreError};
use time::OffsetDateTime;

use super::{conflict, limit_of, page_of, references, State};

mod foreign_keys {
    pub const PAYOUT_AFFILIATE: &str = "payouts_affiliate_fkey";
    pub const ACCOUNT_AFFILIATE: &str = "payout_accounts_affiliate_fkey";
}

/// A line item and whether it was released.
#[derive(Clone, Debug)]
pub(super) struct LineItemRow {
    pub(super) item: PayoutLineItem,
    pub(super) released: bool,
}

impl State {
    fn live_item_of(&self, entry: rekomi_domain::kernel::ids::LedgerEventId) -> Option<&LineItemRow> {
        self.line_items.values().find(|r| !r.released && r.item.ledger_event_id == entry)
    }

    fn claim_of(&self, entry: rekomi_domain::kernel::ids::LedgerEventId) -> EntryClaim {
        match self.live_item_of(entry).and_then(|r| self.payouts.get(&r.item.payout_id)) {
            None => EntryClaim::Open,
            Some(p) if p.status == PayoutStatus::Paid => EntryClaim::Paid,
            Some(_) => EntryClaim::InFlight,
        }
    }

    fn set_conversion_status(
        &mut self,
        ids: &[ConversionId],
        from: &[ConversionStatus],
        to: ConversionStatus,
        now: OffsetDateTime,
    ) -> Vec<ConversionId> {
        let mut changed = Vec::new();
        for id in ids {
            if let Some(c) = self.conversions.get_mut(id) {
                if from.contains(&c.status) {
                    c.status = to;
                    c.updated_at = now;
                    changed.push(*id);
                }
            }
        }
        changed
    }

    fn conversions_of_payout(&self, payout: PayoutId, live_only: bool) -> Vec<ConversionId> {
        let mut ids: Vec<ConversionId> = self
            .line_items
            .values()
            .filter(|r| r.item.payout_id == payout && (!live_only || !r.released))
            .map(|r| r.item.conversion_id)
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

impl PayoutRepo for State {
    fn lock_payout_runs(&mut self, _org: OrgId) -> Result<(), StoreError> {
        // Transactions of this store are serial already.
        Ok(())
    }

    fn open_entries(
        &mut self,
        org: OrgId,
        query: &PayableQuery,
        after: Option<AffiliateId>,
        affiliates_per_page: usize,
    ) -> Result<Vec<PayableEntry>, StoreError> {
        let mut found: Vec<PayableEntry> = self
            .ledger
            .values()
            .filter(|e| e.org_id == org && e.currency == query.currency && e.commission_minor != 0 && e.payable_after <= query.cutoff)
            .filter(|e| after.is_none_or(|a| e.affiliate_id > a))
            .filter(|e| query.affiliates.as_ref().is_none_or(|a| a.contains(&e.affiliate_id)))
            .filter(|e| self.live_item_of(e.id).is_none())
            .map(|e| PayableEntry {
                id: e.id,
                conversion_id: e.conversion_id,
                affiliate_id: e.affiliate_id,
                commission_minor: e.commission_minor,
                payable_after: e.payable_after,
            })
            .collect();
        found.sort_by_key(|e| (e.affiliate_id, e.id));
        let mut page: Vec<AffiliateId> = found.iter().map(|e| e.affiliate_id).collect();
        page.dedup();
        page.truncate(affiliates_per_page);
        found.retain(|e| page.binary_search(&e.affiliate_id).is_ok());
        Ok(found)
    }

    fn affiliate_statuses(&mut self, org: OrgId, ids: &[AffiliateId]) -> Result<Vec<(AffiliateId, AffiliateStatus)>, StoreError> {
        Ok(ids
            .iter()
            .filter_map(|id| self.affiliates.get(id).and_then(|a| a.live()).filter(|a| a.org_id == org).map(|a| (*id, a.status)))
            .collect())
    }

    fn insert_payouts(&mut self, payouts: &[Payout]) -> Result<(), StoreError> {
        for payout in payouts {
            references(&[(self.has_affiliate(payout.org_id, payout.affiliate_id), foreign_keys::PAYOUT_AFFILIATE)])?;
            if self.payouts.contains_key(&payout.id) {
                return Err(conflict("payouts_pkey"));
            }
            self.payouts.insert(payout.id, payout.clone());
        }
        Ok(())
    }

    fn insert_line_items(&mut self, items: &[PayoutLineItem]) -> Result<(), StoreError> {
        for item in items {
            if self.live_item_of(item.ledger_event_id).is_some() {
                return Err(conflict(constraints::PAYOUT_ENTRY_LIVE));
            }
            self.line_items.insert(item.id, LineItemRow { item: item.clone(), released: false });
        }
        Ok(())
    }

    fn update_payout(&mut self, payout: &Payout) -> Result<(), StoreError> {
        if self.payouts.get(&payout.id).is_some_and(|p| p.org_id == payout.org_id) {
            self.payouts.insert(payout.id, payout.clone());
        }
        Ok(())
    }

    fn payout_for_update(&mut self, org: OrgId, id: PayoutId) -> Result<Option<Payout>, StoreError> {
        self.payout(org, id)
    }

    fn payout(&mut self, org: OrgId, id: PayoutId) -> Result<Option<Payout>, StoreError> {
        Ok(self.payouts.get(&id).filter(|p| p.org_id == org).cloned())
    }

    fn payouts_by_ids(&mut self, org: OrgId, ids: &[PayoutId]) -> Result<Vec<Payout>, StoreError> {
        let mut found: Vec<Payout> = ids.iter().filter_map(|id| self.payouts.get(id).filter(|p| p.org_id == org).cloned()).collect();
        found.sort_by_key(|p| p.id);
        found.dedup_by_key(|p| p.id);
        Ok(found)
    }

    fn payout_of_transfer(&mut self, transfer: &StripeTransferId) -> Result<Option<Payout>, StoreError> {
        Ok(self.payouts.values().find(|p| p.stripe_transfer_id.as_ref() == Some(transfer)).cloned())
    }

    fn list_payouts(&mut self, org: OrgId, filter: &PayoutFilter, page: &PageRequest) -> Result<Vec<Payout>, StoreError> {
        Ok(page_of(&self.payouts, page, PayoutId::as_uuid, |p| {
            let keep = p.org_id == org
                && filter.affiliate_id.is_none_or(|a| p.affiliate_id == a)
                && filter.status.is_none_or(|s| p.status == s)
                && filter.method.is_none_or(|m| p.method == m);
            keep.then(|| p.clone())
        }))
    }

    fn line_items_of(&mut self, org: OrgId, payouts: &[PayoutId]) -> Result<Vec<PayoutLineItem>, StoreError> {
        let mut items: Vec<PayoutLineItem> = self
            .line_items
            .values()
            .filter(|r| r.item.org_id == org && payouts.contains(&r.item.payout_id))
            .map(|r| r.item.clone())
            .collect();
        items.sort_by_key(|i| (i.payout_id, i.ledger_event_id));
        Ok(items)
    }

    fn release_line_items(&mut self, org: OrgId, payout: PayoutId) -> Result<(), StoreError> {
        for row in self.line_items.values_mut().filter(|r| r.item.org_id == org && r.item.payout_id == payout) {
            row.released = true;
        }
        Ok(())
    }

    fn reclaim_line_items(&mut self, org: OrgId, payout: PayoutId) -> Result<(), StoreError> {
        let ids: Vec<_> = self
            .line_items
            .iter()
            .filter(|(_, r)| r.item.org_id == org && r.item.payout_id == payout && r.released)
            .map(|(id, r)| (*id, r.item.ledger_event_id))
            .collect();
        for (id, entry) in ids {
            if self.live_item_of(entry).is_some() {
                return Err(conflict(constraints::PAYOUT_ENTRY_LIVE));
            }
            if let Some(row) = self.line_items.get_mut(&id) {
                row.released = false;
            }
        }
        Ok(())
    }

    fn mark_conversions_paid(&mut self, org: OrgId, payouts: &[PayoutId], now: OffsetDateTime) -> Result<usize, StoreError> {
        let mut touched: Vec<ConversionId> = payouts.iter().flat_map(|p| self.conversions_of_payout(*p, true)).collect();
        touched.sort();
        touched.dedup();
        let fully_paid: Vec<ConversionId> = touched
            .into_iter()
            .filter(|c| {
                self.ledger
                    .values()
                    .filter(|e| e.org_id == org && e.conversion_id == *c && e.commission_minor > 0)
                    .all(|e| self.claim_of(e.id) == EntryClaim::Paid)
            })
            .collect();
        Ok(self
            .set_conversion_status(&fully_paid, &[ConversionStatus::Pending, ConversionStatus::Approved], ConversionStatus::Paid, now)
            .len())
    }

    fn unmark_conversions_paid(&mut self, _org: OrgId, payout: PayoutId, now: OffsetDateTime) -> Result<Vec<ConversionId>, StoreError> {
        let ids = self.conversions_of_payout(payout, false);
        Ok(self.set_conversion_status(&ids, &[ConversionStatus::Paid], ConversionStatus::Approved, now))
    }

    fn processing_payouts(&mut self, before: OffsetDateTime, limit: i64) -> Result<Vec<Payout>, StoreError> {
        let mut found: Vec<Payout> =
            self.payouts.values().filter(|p| p.status == PayoutStatus::Processing && p.updated_at < before).cloned().collect();
        found.sort_by_key(|p| (p.updated_at, p.id));
        found.truncate(limit_of(limit));
        Ok(found)
    }

    fn entry_claims(&mut self, org: OrgId, affiliate: AffiliateId, currency: Currency) -> Result<Vec<(i64, EntryClaim)>, StoreError> {
        Ok(self
            .ledger
            .values()
            .filter(|e| e.org_id == org && e.affiliate_id == affiliate && e.currency == currency && e.commission_minor != 0)
            .map(|e| (e.commission_minor, self.claim_of(e.id)))
            .collect())
    }

    fn paid_out_since(&mut self, org: OrgId, currency: Currency, since: OffsetDateTime) -> Result<i64, StoreError> {
        Ok(self
            .payouts
            .values()
            .filter(|p| {
                p.org_id == org && p.currency == currency && p.status == PayoutStatus::Paid && p.paid_at.is_some_and(|t| t >= since)
            })
            .map(|p| p.amount_minor)
            .sum())
    }

    fn payout_account(&mut self, org: OrgId, affiliate: AffiliateId) -> Result<Option<PayoutAccount>, StoreError> {
        Ok(self.payout_accounts.get(&(org, affiliate)).cloned())
    }

    fn payout_accounts_of(&mut self, org: OrgId, affiliates: &[AffiliateId]) -> Result<Vec<PayoutAccount>, StoreError> {
        Ok(affiliates.iter().filter_map(|a| self.payout_accounts.get(&(org, *a)).cloned()).collect())
    }

    fn save_payout_account(&mut self, account: &PayoutAccount) -> Result<(), StoreError> {
        references(&[(self.has_affiliate(account.org_id, account.affiliate_id), foreign_keys::ACCOUNT_AFFILIATE)])?;
        self.payout_accounts.insert((account.org_id, account.affiliate_id), account.clone());
        Ok(())
    }

    fn payout_accounts_by_stripe_account(&mut self, account: &StripeAccountId) -> Result<Vec<PayoutAccount>, StoreError> {
        Ok(self.payout_accounts.values().filter(|a| a.stripe_account_id.as_ref() == Some(account)).cloned().collect())
    }
}
