//! The fake store's slice for the Stripe inbox: the domain's `InboxRepo` over the `inbox`
//! table of `State`, leases included (transactions here run one at a time, so a lease is all
//! that keeps two workers apart).

use rekomi_domain::kernel::ids::OrgId;
use rekomi_domain::kernel::stripe_ids::{StripeAccountId, StripeEventId, StripePaymentRef};
use rekomi_domain::ports::store::StoreError;
use rekomi_domain::stripe_inbox::{InboxEvent, InboxRepo, InboxStatus};
use time::OffsetDateTime;

use super::{limit_of, references, unlocked, State};

/// Foreign-key names of this table in the migrations.
mod foreign_keys {
    pub const INBOX_ORG: &str = "inbox_events_org_id_fkey";
}

impl InboxRepo for State {
    fn insert_inbox_event(&mut self, event: &InboxEvent) -> Result<bool, StoreError> {
        if self.inbox.contains_key(&event.id) {
            return Ok(false);
        }
        references(&[(event.org_id.is_none_or(|org| self.has_org(org)), foreign_keys::INBOX_ORG)])?;
        self.inbox.insert(event.id.clone(), event.clone());
        Ok(true)
    }

    fn claim_inbox_events(&mut self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: i64) -> Result<Vec<InboxEvent>, StoreError> {
        // Transactions run one at a time here, so "not held by another worker" is the lease.
        let mut due: Vec<(OffsetDateTime, StripeEventId)> = self
            .inbox
            .values()
            .filter(|e| e.status == InboxStatus::Pending && e.next_attempt_at <= now && unlocked(e.locked_until, now))
            .map(|e| (e.received_at, e.id.clone()))
            .collect();
        due.sort();
        due.truncate(limit_of(limit));
        Ok(due
            .into_iter()
            .filter_map(|(_, id)| {
                let event = self.inbox.get_mut(&id)?;
                event.locked_until = Some(lease_until);
                event.attempts = event.attempts.saturating_add(1);
                Some(event.clone())
            })
            .collect())
    }

    fn renew_inbox_leases(&mut self, ids: &[StripeEventId], lease_until: OffsetDateTime) -> Result<usize, StoreError> {
        let mut renewed = 0;
        for id in ids {
            if let Some(e) = self.inbox.get_mut(id).filter(|e| e.status == InboxStatus::Pending && e.locked_until.is_some()) {
                e.locked_until = Some(lease_until);
                renewed += 1;
            }
        }
        Ok(renewed)
    }

    fn release_inbox_events(&mut self, ids: &[StripeEventId]) -> Result<usize, StoreError> {
        let mut released = 0;
        for id in ids {
            if let Some(e) = self.inbox.get_mut(id).filter(|e| e.status == InboxStatus::Pending && e.locked_until.is_some()) {
                e.locked_until = None;
                released += 1;
            }
        }
        Ok(released)
    }

    fn wake_waiting_inbox_events(
        &mut self,
        account: Option<&StripeAccountId>,
        payments: &[StripePaymentRef],
        org: OrgId,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        references(&[(self.has_org(org), foreign_keys::INBOX_ORG)])?;
        let mut woken = 0;
        for e in self.inbox.values_mut() {
            let waits_here = e.status == InboxStatus::Waiting
                && e.account.as_ref() == account
                && e.waiting_for.as_ref().is_some_and(|p| payments.contains(p));
            if waits_here {
                e.status = InboxStatus::Pending;
                e.waiting_for = None;
                e.next_attempt_at = now;
                e.org_id = e.org_id.or(Some(org));
                woken += 1;
            }
        }
        Ok(woken)
    }

    fn inbox_depth(&mut self, now: OffsetDateTime) -> Result<(u64, Option<OffsetDateTime>), StoreError> {
        let pending: Vec<&InboxEvent> = self.inbox.values().filter(|e| e.status == InboxStatus::Pending).collect();
        let oldest = pending.iter().map(|e| e.next_attempt_at).filter(|at| *at <= now).min();
        Ok((pending.len() as u64, oldest))
    }

    fn wake_due_inbox_events(&mut self, now: OffsetDateTime, limit: i64) -> Result<usize, StoreError> {
        let mut due: Vec<(OffsetDateTime, StripeEventId)> = self
            .inbox
            .values()
            .filter(|e| e.status == InboxStatus::Waiting && e.next_attempt_at <= now)
            .map(|e| (e.next_attempt_at, e.id.clone()))
            .collect();
        due.sort();
        due.truncate(limit_of(limit));
        for (_, id) in &due {
            if let Some(e) = self.inbox.get_mut(id) {
                e.status = InboxStatus::Pending;
                e.waiting_for = None;
            }
        }
        Ok(due.len())
    }

    fn update_inbox_event(&mut self, event: &InboxEvent) -> Result<(), StoreError> {
        if !self.inbox.contains_key(&event.id) {
            return Ok(());
        }
        references(&[(event.org_id.is_none_or(|org| self.has_org(org)), foreign_keys::INBOX_ORG)])?;
        if let Some(stored) = self.inbox.get_mut(&event.id) {
            // The processing state only: what arrived never changes.
            stored.org_id = event.org_id;
            stored.status = event.status;
            stored.attempts = event.attempts;
            stored.next_attempt_at = event.next_attempt_at;
            stored.locked_until = event.locked_until;
            stored.last_error = event.last_error.clone();
            stored.processed_at = event.processed_at;
            stored.waiting_for = event.waiting_for.clone();
            stored.replays = event.replays;
        }
        Ok(())
    }

    fn inbox_event(&mut self, id: &StripeEventId) -> Result<Option<InboxEvent>, StoreError> {
        Ok(self.inbox.get(id).cloned())
    }

    fn list_inbox_events(
        &mut self,
        org: Option<OrgId>,
        status: Option<InboxStatus>,
        before: Option<OffsetDateTime>,
        limit: i64,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let mut events: Vec<&InboxEvent> = self
            .inbox
            .values()
            .filter(|e| {
                org.is_none_or(|o| e.org_id == Some(o)) && status.is_none_or(|s| e.status == s) && before.is_none_or(|b| e.received_at < b)
            })
            .collect();
        // Newest arrival first; ties by id, descending, as PgStore.
        events.sort_by(|a, b| (b.received_at, &b.id).cmp(&(a.received_at, &a.id)));
        Ok(events.into_iter().take(limit_of(limit)).cloned().collect())
    }
}
