//! [`InMemoryStore`]: the storage port over plain ordered maps, for use-case and HTTP tests.
//!
//! A transaction runs on a copy of the whole state while holding the store's lock (so
//! transactions are serializable), and the copy replaces the committed state only when the
//! work commits: a rolled-back transaction leaves nothing behind, as in PostgreSQL. The unique
//! constraints of the migrations ([`constraints`](rekomi_domain::ports::store::constraints))
//! and their foreign keys (including the composite `(org_id, …)` ones that keep every
//! reference inside one organization) are enforced here too and reported under the same
//! constraint names, so seed data must be as complete as it would have to be in PostgreSQL.
//! The storage contract suite in `tests/` holds this store and `PgStore` to the same behaviour.
//!
//! This module holds what every capability shares: the tables (`State`), the unit of work,
//! failure injection, savepoints and the helpers that report constraint violations. Each
//! capability's repository slice is implemented over those tables in a file of its own
//! (`orgs.rs`, `programs.rs`, …, as in the domain), beside its constraint names and any row
//! type its tables need. Foreign-key names are not among the domain's constraints (use cases
//! never branch on them), but a store reports them as PostgreSQL does.

mod affiliates;
mod audit;
mod conversions;
mod coupons;
mod fx;
mod idempotency;
mod orgs;
mod outbound;
mod payouts;
mod programs;
mod stripe_inbox;
mod tracking;
mod traffic;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use rekomi_domain::affiliates::AffiliateLink;
use rekomi_domain::audit::AuditEntry;
use rekomi_domain::conversions::{Conversion, LedgerEvent, SubAffiliateConfig};
use rekomi_domain::coupons::{AffiliateCoupon, CampaignCoupon};
use rekomi_domain::kernel::ids::{
    AffiliateCouponId, AffiliateId, ApiKeyId, AuditId, CampaignCouponId, ConversionId, DeliveryId, LedgerEventId, LinkId, OrgId,
    OutboxEventId, ProgramId, TrackingSecretId, WebhookEndpointId,
};
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::kernel::stripe_ids::StripeEventId;
use rekomi_domain::orgs::{ApiKey, Organization};
use rekomi_domain::outbound::{Delivery, OutboxEvent, WebhookEndpoint};
use rekomi_domain::ports::store::{Savepoints, StoreError, Tx, TxOutcome, TxWork, UnitOfWork};
use rekomi_domain::programs::Program;
use rekomi_domain::stripe_inbox::InboxEvent;
use rekomi_domain::traffic::{Click, ClickId};
use time::OffsetDateTime;
use uuid::Uuid;

use self::affiliates::{AffiliateRow, Recruitment};

/// An in-memory [`UnitOfWork`]. Clones share the same data, so a test keeps one handle and
/// gives another to the code under test.
#[derive(Clone, Default)]
pub struct InMemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for InMemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryStore").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    committed: State,
    /// Errors the next calls of `run` return instead of running their work.
    scripted_failures: VecDeque<StoreError>,
    /// While set, `run` and `ping` answer `Unavailable`.
    unavailable: bool,
    commits: u64,
    rollbacks: u64,
}

/// Every table. Cloned at the start of each transaction.
#[derive(Clone, Default)]
struct State {
    orgs: BTreeMap<OrgId, Organization>,
    api_keys: BTreeMap<ApiKeyId, ApiKey>,
    programs: BTreeMap<ProgramId, Program>,
    affiliates: BTreeMap<AffiliateId, AffiliateRow>,
    links: BTreeMap<LinkId, AffiliateLink>,
    campaign_coupons: BTreeMap<CampaignCouponId, CampaignCoupon>,
    affiliate_coupons: BTreeMap<AffiliateCouponId, AffiliateCoupon>,
    audit: BTreeMap<AuditId, AuditEntry>,
    /// Claimed sources and when they were claimed.
    processed_sources: BTreeMap<(OrgId, String), OffsetDateTime>,
    /// Per program: its organization and setting.
    sub_affiliate_configs: BTreeMap<ProgramId, (OrgId, SubAffiliateConfig)>,
    /// Per recruited affiliate.
    recruitments: BTreeMap<AffiliateId, Recruitment>,
    conversions: BTreeMap<ConversionId, Conversion>,
    ledger: BTreeMap<LedgerEventId, LedgerEvent>,
    inbox: BTreeMap<StripeEventId, InboxEvent>,
    endpoints: BTreeMap<WebhookEndpointId, WebhookEndpoint>,
    outbox: BTreeMap<OutboxEventId, OutboxEvent>,
    deliveries: BTreeMap<DeliveryId, Delivery>,
    clicks: BTreeMap<ClickId, Click>,
    visitor_salts: BTreeMap<time::Date, String>,
    web_tracking_settings: BTreeMap<OrgId, rekomi_domain::traffic::WebTrackingSettings>,
    tracking_secrets: BTreeMap<TrackingSecretId, rekomi_domain::tracking::TrackingSecret>,
    payouts: BTreeMap<rekomi_domain::kernel::ids::PayoutId, rekomi_domain::payouts::Payout>,
    line_items: BTreeMap<rekomi_domain::kernel::ids::PayoutLineItemId, payouts::LineItemRow>,
    payout_accounts: BTreeMap<(OrgId, AffiliateId), rekomi_domain::payouts::PayoutAccount>,
    idempotency: BTreeMap<(OrgId, String), rekomi_domain::idempotency::IdempotencyRecord>,
    fx_rates: BTreeMap<(&'static str, time::Date), rekomi_domain::fx::ReferenceRate>,
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The committed state is only ever replaced whole, so a panic in some work (which
        // poisons the lock) cannot have left it half-written.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the next call of [`UnitOfWork::run`] fail with [`StoreError::Unavailable`]
    /// without running its work (for 503 tests). Calls queue up.
    pub fn fail_next_with_unavailable(&self) {
        self.fail_next_with(StoreError::Unavailable("injected by InMemoryStore".to_owned()));
    }

    /// Makes the next call of [`UnitOfWork::run`] fail with `error` without running its work.
    /// Calls queue up: each queued error fails one run, in order.
    pub fn fail_next_with(&self, error: StoreError) {
        self.lock().scripted_failures.push_back(error);
    }

    /// While `unavailable` is set, every `run` and `ping` answers [`StoreError::Unavailable`]
    /// (a database that went away).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.lock().unavailable = unavailable;
    }

    /// Runs `f` against a copy of the committed state and discards whatever it wrote: a
    /// synchronous read for assertions.
    pub fn read<R>(&self, f: impl FnOnce(&mut dyn Tx) -> R) -> R {
        let mut copy = self.lock().committed.clone();
        f(&mut copy)
    }

    /// Runs `f` in a transaction synchronously, committing when it returns `Ok`: seeds data
    /// for a test. Injected failures do not apply and the commit counters do not move.
    ///
    /// # Errors
    /// Whatever `f` returns; the transaction is then rolled back.
    pub fn write<R>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let mut inner = self.lock();
        let mut copy = inner.committed.clone();
        let out = f(&mut copy)?;
        inner.committed = copy;
        Ok(out)
    }

    /// How many transactions run through [`UnitOfWork::run`] committed.
    pub fn commits(&self) -> u64 {
        self.lock().commits
    }

    /// How many transactions run through [`UnitOfWork::run`] rolled back (failures injected
    /// before the work ran are not counted).
    pub fn rollbacks(&self) -> u64 {
        self.lock().rollbacks
    }

    fn run_now(&self, work: TxWork) -> Result<TxOutcome, StoreError> {
        // The lock is held while the work runs: transactions are serial, hence serializable.
        let mut inner = self.lock();
        if inner.unavailable {
            return Err(StoreError::Unavailable("the in-memory store is set unavailable".to_owned()));
        }
        if let Some(error) = inner.scripted_failures.pop_front() {
            return Err(error);
        }
        let mut copy = inner.committed.clone();
        let outcome = work(&mut copy);
        match outcome {
            TxOutcome::Commit(_) => {
                inner.committed = copy;
                inner.commits += 1;
            }
            TxOutcome::Rollback(_) => inner.rollbacks += 1,
        }
        Ok(outcome)
    }
}

#[async_trait]
impl UnitOfWork for InMemoryStore {
    async fn run(&self, work: TxWork) -> Result<TxOutcome, StoreError> {
        self.run_now(work)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if self.lock().unavailable {
            return Err(StoreError::Unavailable("the in-memory store is set unavailable".to_owned()));
        }
        Ok(())
    }
}

fn conflict(constraint: &str) -> StoreError {
    StoreError::Conflict { constraint: constraint.to_owned() }
}

/// A CHECK constraint refused the write: PostgreSQL reports it as an unexpected error (only
/// unique and foreign-key violations are `Conflict`s).
fn check_violation(constraint: &str) -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!("check constraint {constraint} refused the write"))
}

/// Whether a row held until `locked_until` may be taken at `now`.
fn unlocked(locked_until: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    locked_until.is_none_or(|until| until <= now)
}

fn limit_of(limit: i64) -> usize {
    usize::try_from(limit).unwrap_or(0)
}

/// Newest first by id, strictly below the cursor, at most `page.fetch_limit()` rows.
fn page_of<K, V, T>(rows: &BTreeMap<K, V>, page: &PageRequest, uuid_of: impl Fn(&K) -> Uuid, keep: impl Fn(&V) -> Option<T>) -> Vec<T> {
    rows.iter()
        .rev()
        .filter(|(id, _)| page.after().is_none_or(|after| uuid_of(id) < after))
        .filter_map(|(_, row)| keep(row))
        .take(limit_of(page.fetch_limit()))
        .collect()
}

/// Checks foreign keys in declaration order (PostgreSQL fires them in that order, so the first
/// one violated is the one reported).
fn references(checks: &[(bool, &str)]) -> Result<(), StoreError> {
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, name)) => Err(conflict(name)),
        None => Ok(()),
    }
}

impl Savepoints for State {
    fn savepoint(&mut self, work: &mut dyn FnMut(&mut dyn Tx) -> bool) -> Result<bool, StoreError> {
        let before = self.clone();
        let keep = work(self);
        if !keep {
            *self = before;
        }
        Ok(keep)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]

    use super::*;
    use crate::block_on;
    use rekomi_domain::kernel::money::Currency;
    use rekomi_domain::kernel::plan::{PlanTier, SubscriptionStatus};
    use rekomi_domain::orgs::Handle;
    use rekomi_domain::ports::store::{constraints, transact};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn org(n: u128, handle: &str) -> Organization {
        Organization {
            id: OrgId::from_uuid(Uuid::from_u128(n)),
            name: handle.to_owned(),
            handle: Handle::parse(handle).unwrap(),
            billing_email: None,
            timezone: "UTC".to_owned(),
            plan_tier: PlanTier::Starter,
            subscription_status: SubscriptionStatus::Active,
            trial_ends_at: None,
            home_currency: Currency::parse("USD").unwrap(),
            payout_grace_days: 30,
            minimum_payout_minor: 0,
            home_currency_changed_at: None,
            stripe_account_id: None,
            created_at: NOW,
        }
    }

    #[test]
    fn a_rolled_back_transaction_really_discards_its_writes() {
        let store = InMemoryStore::new();
        let result: Result<(), StoreError> = block_on(transact(&store, |tx| {
            tx.insert_org(&org(1, "acme"))?;
            assert!(tx.org(OrgId::from_uuid(Uuid::from_u128(1)))?.is_some(), "visible inside its transaction");
            Err(StoreError::Unavailable("abandon".to_owned()))
        }));
        assert!(result.is_err());
        assert!(store.read(|tx| tx.org(OrgId::from_uuid(Uuid::from_u128(1)))).unwrap().is_none());
        assert_eq!((store.commits(), store.rollbacks()), (0, 1));

        block_on(transact(&store, |tx| tx.insert_org(&org(1, "acme")))).unwrap();
        assert!(store.read(|tx| tx.org(OrgId::from_uuid(Uuid::from_u128(1)))).unwrap().is_some());
        assert_eq!((store.commits(), store.rollbacks()), (1, 1));
    }

    #[test]
    fn a_panicking_transaction_leaves_the_store_usable_and_unchanged() {
        let store = InMemoryStore::new();
        let clone = store.clone();
        let panicked = std::thread::spawn(move || {
            block_on(transact::<(), StoreError, _>(&clone, |tx| {
                tx.insert_org(&org(1, "acme"))?;
                panic!("boom");
            }))
        })
        .join();
        assert!(panicked.is_err());
        assert!(store.read(|tx| tx.org(OrgId::from_uuid(Uuid::from_u128(1)))).unwrap().is_none());
        block_on(transact(&store, |tx| tx.insert_org(&org(1, "acme")))).unwrap();
    }

    #[test]
    fn an_injected_failure_fails_exactly_the_next_run_without_running_it() {
        let store = InMemoryStore::new();
        store.fail_next_with_unavailable();
        let first: Result<(), StoreError> = block_on(transact(&store, |tx| tx.insert_org(&org(1, "acme"))));
        assert!(matches!(first, Err(StoreError::Unavailable(_))), "{first:?}");
        assert!(store.read(|tx| tx.org(OrgId::from_uuid(Uuid::from_u128(1)))).unwrap().is_none());
        block_on(transact(&store, |tx| tx.insert_org(&org(1, "acme")))).unwrap();
        assert_eq!(store.commits(), 1);
    }

    #[test]
    fn an_unavailable_store_fails_runs_and_pings_until_it_comes_back() {
        let store = InMemoryStore::new();
        store.set_unavailable(true);
        assert!(matches!(block_on(store.ping()), Err(StoreError::Unavailable(_))));
        let r: Result<(), StoreError> = block_on(transact(&store, |_| Ok(())));
        assert!(matches!(r, Err(StoreError::Unavailable(_))));
        store.set_unavailable(false);
        assert!(block_on(store.ping()).is_ok());
    }

    #[test]
    fn write_seeds_data_and_rolls_back_on_error() {
        let store = InMemoryStore::new();
        store.write(|tx| tx.insert_org(&org(1, "acme"))).unwrap();
        let err = store
            .write(|tx| {
                tx.insert_org(&org(2, "other"))?;
                tx.insert_org(&org(3, "acme"))
            })
            .unwrap_err();
        assert!(err.is_conflict_on(constraints::ORG_HANDLE), "{err:?}");
        assert!(store.read(|tx| tx.org(OrgId::from_uuid(Uuid::from_u128(2)))).unwrap().is_none());
        assert_eq!(store.commits(), 0, "seeding is not counted");
    }
}
