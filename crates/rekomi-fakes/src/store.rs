//! [`InMemoryStore`]: the storage port over plain ordered maps, for use-case and HTTP tests.
//!
//! A transaction runs on a copy of the whole state while holding the store's lock (so
//! transactions are serializable), and the copy replaces the committed state only when the
//! work commits: a rolled-back transaction leaves nothing behind, as in PostgreSQL. The unique
//! constraints of the migrations ([`constraints`]) and their foreign keys (including the
//! composite `(org_id, …)` ones that keep every reference inside one organization) are enforced
//! here too and reported under the same constraint names, so seed data must be as complete as
//! it would have to be in PostgreSQL. The storage contract suite in `tests/` holds this store
//! and `PgStore` to the same behaviour.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use rekomi_domain::affiliate::{Affiliate, AffiliateLink, Email};
use rekomi_domain::audit::AuditEntry;
use rekomi_domain::coupon::{AffiliateCoupon, CampaignCoupon, CouponCode};
use rekomi_domain::ids::{AffiliateCouponId, AffiliateId, ApiKeyId, AuditId, CampaignCouponId, LinkId, OrgId, ProgramId};
use rekomi_domain::org::{ApiKey, OrgUsage, Organization};
use rekomi_domain::page::PageRequest;
use rekomi_domain::ports::store::{
    constraints, AffiliateFilter, AffiliateRepo, AuditRepo, CouponRepo, CouponSelector, OrgRepo, ProgramRepo,
};
use rekomi_domain::ports::{StoreError, Tx, TxOutcome, TxWork, UnitOfWork};
use rekomi_domain::program::Program;
use time::OffsetDateTime;
use uuid::Uuid;

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
}

/// An affiliate and its soft-deletion time (the domain entity does not carry it).
#[derive(Clone)]
struct AffiliateRow {
    affiliate: Affiliate,
    deleted_at: Option<OffsetDateTime>,
}

impl AffiliateRow {
    fn live(&self) -> Option<&Affiliate> {
        self.deleted_at.is_none().then_some(&self.affiliate)
    }
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

/// Foreign-key constraint names of the migrations (not in [`constraints`]: use cases never
/// branch on them, but a store reports them like PostgreSQL does).
mod foreign_keys {
    pub const API_KEY_ORG: &str = "api_keys_org_id_fkey";
    pub const PROGRAM_ORG: &str = "programs_org_id_fkey";
    pub const AFFILIATE_ORG: &str = "affiliates_org_id_fkey";
    pub const AFFILIATE_PROGRAM: &str = "affiliates_program_fkey";
    pub const LINK_ORG: &str = "affiliate_links_org_id_fkey";
    pub const LINK_AFFILIATE: &str = "affiliate_links_affiliate_fkey";
    pub const CAMPAIGN_COUPON_ORG: &str = "campaign_coupons_org_id_fkey";
    pub const CAMPAIGN_COUPON_PROGRAM: &str = "campaign_coupons_program_fkey";
    pub const AFFILIATE_COUPON_ORG: &str = "affiliate_coupons_org_id_fkey";
    pub const AFFILIATE_COUPON_PROGRAM: &str = "affiliate_coupons_program_fkey";
    pub const AFFILIATE_COUPON_AFFILIATE: &str = "affiliate_coupons_affiliate_fkey";
    pub const AFFILIATE_COUPON_CAMPAIGN_COUPON: &str = "affiliate_coupons_campaign_coupon_fkey";
    pub const AUDIT_ORG: &str = "audit_log_org_id_fkey";
}

/// Checks foreign keys in declaration order (PostgreSQL fires them in that order, so the first
/// one violated is the one reported).
fn references(checks: &[(bool, &str)]) -> Result<(), StoreError> {
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, name)) => Err(conflict(name)),
        None => Ok(()),
    }
}

impl State {
    fn has_org(&self, org: OrgId) -> bool {
        self.orgs.contains_key(&org)
    }

    fn has_program(&self, org: OrgId, id: ProgramId) -> bool {
        self.programs.get(&id).is_some_and(|p| p.org_id == org)
    }

    /// Soft-deleted affiliates still exist for foreign keys.
    fn has_affiliate(&self, org: OrgId, id: AffiliateId) -> bool {
        self.affiliates.get(&id).is_some_and(|a| a.affiliate.org_id == org)
    }

    fn has_campaign_coupon(&self, org: OrgId, id: CampaignCouponId) -> bool {
        self.campaign_coupons.get(&id).is_some_and(|c| c.org_id == org)
    }

    fn check_program_refs(&self, p: &Program) -> Result<(), StoreError> {
        references(&[(self.has_org(p.org_id), foreign_keys::PROGRAM_ORG)])
    }

    fn check_affiliate_refs(&self, a: &Affiliate) -> Result<(), StoreError> {
        references(&[
            (self.has_org(a.org_id), foreign_keys::AFFILIATE_ORG),
            (self.has_program(a.org_id, a.program_id), foreign_keys::AFFILIATE_PROGRAM),
        ])
    }

    fn check_campaign_coupon_refs(&self, c: &CampaignCoupon) -> Result<(), StoreError> {
        references(&[
            (self.has_org(c.org_id), foreign_keys::CAMPAIGN_COUPON_ORG),
            (self.has_program(c.org_id, c.program_id), foreign_keys::CAMPAIGN_COUPON_PROGRAM),
        ])
    }

    fn check_affiliate_coupon_refs(&self, c: &AffiliateCoupon) -> Result<(), StoreError> {
        references(&[
            (self.has_org(c.org_id), foreign_keys::AFFILIATE_COUPON_ORG),
            (self.has_program(c.org_id, c.program_id), foreign_keys::AFFILIATE_COUPON_PROGRAM),
            (self.has_affiliate(c.org_id, c.affiliate_id), foreign_keys::AFFILIATE_COUPON_AFFILIATE),
            (self.has_campaign_coupon(c.org_id, c.campaign_coupon_id), foreign_keys::AFFILIATE_COUPON_CAMPAIGN_COUPON),
        ])
    }

    fn program_slug_taken(&self, program: &Program) -> bool {
        self.programs.values().any(|p| p.id != program.id && p.org_id == program.org_id && p.slug.as_str() == program.slug.as_str())
    }

    fn affiliate_email_taken(&self, affiliate: &Affiliate) -> bool {
        self.affiliates
            .values()
            .filter_map(AffiliateRow::live)
            .any(|a| a.id != affiliate.id && a.program_id == affiliate.program_id && a.email == affiliate.email)
    }

    fn coupon_code_taken(&self, coupon: &AffiliateCoupon) -> bool {
        self.affiliate_coupons
            .values()
            .any(|c| c.id != coupon.id && c.org_id == coupon.org_id && c.code.as_str().eq_ignore_ascii_case(coupon.code.as_str()))
    }
}

impl OrgRepo for State {
    fn insert_org(&mut self, org: &Organization) -> Result<(), StoreError> {
        if self.orgs.contains_key(&org.id) {
            return Err(conflict("organizations_pkey"));
        }
        if self.orgs.values().any(|o| o.handle == org.handle) {
            return Err(conflict(constraints::ORG_HANDLE));
        }
        self.orgs.insert(org.id, org.clone());
        Ok(())
    }

    fn org(&mut self, id: OrgId) -> Result<Option<Organization>, StoreError> {
        Ok(self.orgs.get(&id).cloned())
    }

    fn set_stripe_account(&mut self, id: OrgId, account: Option<&str>) -> Result<bool, StoreError> {
        Ok(match self.orgs.get_mut(&id) {
            Some(org) => {
                org.stripe_account_id = account.map(str::to_owned);
                true
            }
            None => false,
        })
    }

    fn insert_api_key(&mut self, key: &ApiKey) -> Result<(), StoreError> {
        if self.api_keys.contains_key(&key.id) {
            return Err(conflict("api_keys_pkey"));
        }
        if self.api_keys.values().any(|k| k.hash == key.hash) {
            return Err(conflict("api_keys_hash_key"));
        }
        references(&[(self.has_org(key.org_id), foreign_keys::API_KEY_ORG)])?;
        self.api_keys.insert(key.id, key.clone());
        Ok(())
    }

    fn api_key_by_hash(&mut self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.api_keys.values().find(|k| k.revoked_at.is_none() && k.hash == hash).cloned())
    }

    fn org_usage(&mut self, org: OrgId) -> Result<OrgUsage, StoreError> {
        let affiliates = self.affiliates.values().filter_map(AffiliateRow::live).filter(|a| a.org_id == org).count();
        let campaigns = self.programs.values().filter(|p| p.org_id == org && p.archived_at.is_none()).count();
        Ok(OrgUsage { affiliates: i64::try_from(affiliates).unwrap_or(i64::MAX), campaigns: i64::try_from(campaigns).unwrap_or(i64::MAX) })
    }
}

impl ProgramRepo for State {
    fn insert_program(&mut self, program: &Program) -> Result<(), StoreError> {
        if self.programs.contains_key(&program.id) {
            return Err(conflict("programs_pkey"));
        }
        if self.program_slug_taken(program) {
            return Err(conflict(constraints::PROGRAM_SLUG));
        }
        self.check_program_refs(program)?;
        self.programs.insert(program.id, program.clone());
        Ok(())
    }

    fn update_program(&mut self, program: &Program) -> Result<(), StoreError> {
        if self.programs.get(&program.id).is_none_or(|p| p.org_id != program.org_id) {
            return Ok(());
        }
        if self.program_slug_taken(program) {
            return Err(conflict(constraints::PROGRAM_SLUG));
        }
        self.programs.insert(program.id, program.clone());
        Ok(())
    }

    fn program(&mut self, org: OrgId, id: ProgramId) -> Result<Option<Program>, StoreError> {
        Ok(self.programs.get(&id).filter(|p| p.org_id == org).cloned())
    }

    fn list_programs(&mut self, org: OrgId, page: &PageRequest) -> Result<Vec<Program>, StoreError> {
        Ok(page_of(&self.programs, page, ProgramId::as_uuid, |p| (p.org_id == org && p.archived_at.is_none()).then(|| p.clone())))
    }
}

impl AffiliateRepo for State {
    fn insert_affiliate(&mut self, affiliate: &Affiliate) -> Result<(), StoreError> {
        if self.affiliates.contains_key(&affiliate.id) {
            return Err(conflict("affiliates_pkey"));
        }
        if self.affiliate_email_taken(affiliate) {
            return Err(conflict(constraints::AFFILIATE_EMAIL));
        }
        self.check_affiliate_refs(affiliate)?;
        self.affiliates.insert(affiliate.id, AffiliateRow { affiliate: affiliate.clone(), deleted_at: None });
        Ok(())
    }

    fn update_affiliate(&mut self, affiliate: &Affiliate) -> Result<(), StoreError> {
        let updatable = self.affiliates.get(&affiliate.id).and_then(AffiliateRow::live).is_some_and(|a| a.org_id == affiliate.org_id);
        if !updatable {
            return Ok(());
        }
        if self.affiliate_email_taken(affiliate) {
            return Err(conflict(constraints::AFFILIATE_EMAIL));
        }
        self.check_affiliate_refs(affiliate)?;
        if let Some(row) = self.affiliates.get_mut(&affiliate.id) {
            row.affiliate = affiliate.clone();
        }
        Ok(())
    }

    fn delete_affiliate(&mut self, org: OrgId, id: AffiliateId, now: OffsetDateTime) -> Result<bool, StoreError> {
        match self.affiliates.get_mut(&id) {
            Some(row) if row.affiliate.org_id == org && row.deleted_at.is_none() => {
                row.deleted_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn affiliate(&mut self, org: OrgId, id: AffiliateId) -> Result<Option<Affiliate>, StoreError> {
        Ok(self.affiliates.get(&id).and_then(AffiliateRow::live).filter(|a| a.org_id == org).cloned())
    }

    fn list_affiliates(&mut self, org: OrgId, filter: &AffiliateFilter, page: &PageRequest) -> Result<Vec<Affiliate>, StoreError> {
        let needle = filter.q.as_deref().map(str::to_lowercase);
        Ok(page_of(&self.affiliates, page, AffiliateId::as_uuid, |row| {
            let a = row.live()?;
            let matches = a.org_id == org
                && filter.program_id.is_none_or(|p| a.program_id == p)
                && filter.status.is_none_or(|s| a.status == s)
                && needle.as_deref().is_none_or(|q| {
                    a.email.as_str().to_lowercase().contains(q) || a.full_name.as_deref().is_some_and(|n| n.to_lowercase().contains(q))
                });
            matches.then(|| a.clone())
        }))
    }

    fn affiliates_of_user(&mut self, user_id: &str, email: &Email) -> Result<Vec<Affiliate>, StoreError> {
        Ok(self
            .affiliates
            .values()
            .rev()
            .filter_map(AffiliateRow::live)
            .filter(|a| match &a.user_id {
                Some(linked) => linked == user_id,
                None => a.email == *email,
            })
            .cloned()
            .collect())
    }

    fn insert_link(&mut self, link: &AffiliateLink) -> Result<(), StoreError> {
        if self.links.contains_key(&link.id) {
            return Err(conflict("affiliate_links_pkey"));
        }
        if self.link_slug_taken(link.org_id, &link.slug)? {
            return Err(conflict(constraints::LINK_SLUG));
        }
        references(&[
            (self.has_org(link.org_id), foreign_keys::LINK_ORG),
            (self.has_affiliate(link.org_id, link.affiliate_id), foreign_keys::LINK_AFFILIATE),
        ])?;
        self.links.insert(link.id, link.clone());
        Ok(())
    }

    fn links_of(&mut self, org: OrgId, affiliates: &[AffiliateId]) -> Result<Vec<AffiliateLink>, StoreError> {
        let mut links: Vec<AffiliateLink> =
            self.links.values().filter(|l| l.org_id == org && affiliates.contains(&l.affiliate_id)).cloned().collect();
        // Default links first, then oldest first (the map iterates by id, which sorts by
        // creation time); the sort is stable.
        links.sort_by_key(|l| !l.is_default);
        Ok(links)
    }

    fn link_slug_taken(&mut self, org: OrgId, slug: &str) -> Result<bool, StoreError> {
        Ok(self.links.values().any(|l| l.org_id == org && l.slug.to_lowercase() == slug.to_lowercase()))
    }
}

impl CouponRepo for State {
    fn insert_campaign_coupon(&mut self, coupon: &CampaignCoupon) -> Result<(), StoreError> {
        if self.campaign_coupons.contains_key(&coupon.id) {
            return Err(conflict("campaign_coupons_pkey"));
        }
        self.check_campaign_coupon_refs(coupon)?;
        self.campaign_coupons.insert(coupon.id, coupon.clone());
        Ok(())
    }

    fn update_campaign_coupon(&mut self, coupon: &CampaignCoupon) -> Result<(), StoreError> {
        if !self.has_campaign_coupon(coupon.org_id, coupon.id) {
            return Ok(());
        }
        self.check_campaign_coupon_refs(coupon)?;
        self.campaign_coupons.insert(coupon.id, coupon.clone());
        Ok(())
    }

    fn delete_campaign_coupon(&mut self, org: OrgId, id: CampaignCouponId) -> Result<(), StoreError> {
        if !self.has_campaign_coupon(org, id) {
            return Ok(());
        }
        if self.campaign_coupon_has_codes(org, id)? {
            return Err(conflict(foreign_keys::AFFILIATE_COUPON_CAMPAIGN_COUPON));
        }
        self.campaign_coupons.remove(&id);
        Ok(())
    }

    fn campaign_coupon(&mut self, org: OrgId, id: CampaignCouponId) -> Result<Option<CampaignCoupon>, StoreError> {
        Ok(self.campaign_coupons.get(&id).filter(|c| c.org_id == org).cloned())
    }

    fn list_campaign_coupons(&mut self, org: OrgId, program: ProgramId, page: &PageRequest) -> Result<Vec<CampaignCoupon>, StoreError> {
        Ok(page_of(&self.campaign_coupons, page, CampaignCouponId::as_uuid, |c| {
            (c.org_id == org && c.program_id == program && c.stripe_coupon_id.is_some()).then(|| c.clone())
        }))
    }

    fn unprovisioned_campaign_coupons(&mut self, before: OffsetDateTime, limit: i64) -> Result<Vec<CampaignCoupon>, StoreError> {
        let mut rows: Vec<CampaignCoupon> =
            self.campaign_coupons.values().filter(|c| c.stripe_coupon_id.is_none() && c.created_at < before).cloned().collect();
        rows.sort_by_key(|c| (c.created_at, c.id));
        rows.truncate(limit_of(limit));
        Ok(rows)
    }

    fn insert_affiliate_coupon(&mut self, coupon: &AffiliateCoupon) -> Result<(), StoreError> {
        if self.affiliate_coupons.contains_key(&coupon.id) {
            return Err(conflict("affiliate_coupons_pkey"));
        }
        if self.coupon_code_taken(coupon) {
            return Err(conflict(constraints::COUPON_CODE));
        }
        self.check_affiliate_coupon_refs(coupon)?;
        self.affiliate_coupons.insert(coupon.id, coupon.clone());
        Ok(())
    }

    fn update_affiliate_coupon(&mut self, coupon: &AffiliateCoupon) -> Result<(), StoreError> {
        if self.affiliate_coupons.get(&coupon.id).is_none_or(|c| c.org_id != coupon.org_id) {
            return Ok(());
        }
        if self.coupon_code_taken(coupon) {
            return Err(conflict(constraints::COUPON_CODE));
        }
        self.check_affiliate_coupon_refs(coupon)?;
        self.affiliate_coupons.insert(coupon.id, coupon.clone());
        Ok(())
    }

    fn delete_affiliate_coupon(&mut self, org: OrgId, id: AffiliateCouponId) -> Result<(), StoreError> {
        if self.affiliate_coupons.get(&id).is_some_and(|c| c.org_id == org) {
            self.affiliate_coupons.remove(&id);
        }
        Ok(())
    }

    fn affiliate_coupon(&mut self, org: OrgId, id: AffiliateCouponId) -> Result<Option<AffiliateCoupon>, StoreError> {
        Ok(self.affiliate_coupons.get(&id).filter(|c| c.org_id == org).cloned())
    }

    fn affiliate_coupon_by_code(&mut self, org: OrgId, code: &CouponCode) -> Result<Option<AffiliateCoupon>, StoreError> {
        Ok(self.affiliate_coupons.values().find(|c| c.org_id == org && c.code.as_str().eq_ignore_ascii_case(code.as_str())).cloned())
    }

    fn affiliate_coupon_by_stripe_id(&mut self, org: OrgId, stripe_id: &str) -> Result<Option<AffiliateCoupon>, StoreError> {
        Ok(self.affiliate_coupons.values().find(|c| c.org_id == org && c.stripe_promotion_code_id.as_deref() == Some(stripe_id)).cloned())
    }

    fn list_affiliate_coupons(
        &mut self,
        org: OrgId,
        selector: &CouponSelector,
        page: &PageRequest,
    ) -> Result<Vec<AffiliateCoupon>, StoreError> {
        let affiliates = &self.affiliates;
        Ok(page_of(&self.affiliate_coupons, page, AffiliateCouponId::as_uuid, |c| {
            let selected = match selector {
                CouponSelector::Affiliate(id) => c.affiliate_id == *id,
                CouponSelector::CampaignCoupon(id) => c.campaign_coupon_id == *id,
                // One person across programs: the codes of the live affiliate rows with the
                // email (a deleted affiliate no longer appears anywhere).
                CouponSelector::AffiliateEmail(email) => {
                    affiliates.get(&c.affiliate_id).and_then(AffiliateRow::live).is_some_and(|a| a.email == *email)
                }
            };
            (selected && c.org_id == org && c.stripe_promotion_code_id.is_some()).then(|| c.clone())
        }))
    }

    fn campaign_coupon_has_codes(&mut self, org: OrgId, id: CampaignCouponId) -> Result<bool, StoreError> {
        Ok(self.affiliate_coupons.values().any(|c| c.org_id == org && c.campaign_coupon_id == id))
    }

    fn org_has_stripe_objects(&mut self, org: OrgId) -> Result<bool, StoreError> {
        Ok(self.campaign_coupons.values().any(|c| c.org_id == org && c.stripe_coupon_id.is_some()))
    }

    fn unprovisioned_affiliate_coupons(&mut self, before: OffsetDateTime, limit: i64) -> Result<Vec<AffiliateCoupon>, StoreError> {
        let mut rows: Vec<AffiliateCoupon> =
            self.affiliate_coupons.values().filter(|c| c.stripe_promotion_code_id.is_none() && c.created_at < before).cloned().collect();
        rows.sort_by_key(|c| (c.created_at, c.id));
        rows.truncate(limit_of(limit));
        Ok(rows)
    }
}

impl AuditRepo for State {
    fn append_audit(&mut self, entry: &AuditEntry) -> Result<(), StoreError> {
        if self.audit.contains_key(&entry.id) {
            return Err(conflict("audit_log_pkey"));
        }
        references(&[(self.has_org(entry.org_id), foreign_keys::AUDIT_ORG)])?;
        self.audit.insert(entry.id, entry.clone());
        Ok(())
    }

    fn audit_entries(&mut self, org: OrgId, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self.audit.values().rev().filter(|e| e.org_id == org).take(limit_of(limit)).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]

    use super::*;
    use crate::block_on;
    use rekomi_domain::money::Currency;
    use rekomi_domain::org::Handle;
    use rekomi_domain::plan::{PlanTier, SubscriptionStatus};
    use rekomi_domain::ports::transact;
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
