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
use rekomi_domain::conversion::{Conversion, ConversionStatus, ConversionType, LedgerEvent, LedgerKind, SubAffiliateConfig};
use rekomi_domain::coupon::{AffiliateCoupon, CampaignCoupon, CouponCode};
use rekomi_domain::ids::{
    AffiliateCouponId, AffiliateId, ApiKeyId, AuditId, CampaignCouponId, ConversionId, DeliveryId, LedgerEventId, LinkId, OrgId,
    OutboxEventId, ProgramId, WebhookEndpointId,
};
use rekomi_domain::inbox::{InboxEvent, InboxStatus};
use rekomi_domain::org::{ApiKey, OrgUsage, Organization};
use rekomi_domain::outbound::{Delivery, DeliveryStatus, EndpointStatus, OutboxEvent, WebhookEndpoint};
use rekomi_domain::page::PageRequest;
use rekomi_domain::ports::store::{
    constraints, AffiliateFilter, AffiliateRepo, AuditRepo, ConversionFilter, ConversionRepo, CouponRepo, CouponSelector, InboxRepo,
    OrgRepo, OutboundRepo, ProgramRepo, Savepoints,
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
    /// Claimed sources and when they were claimed.
    processed_sources: BTreeMap<(OrgId, String), OffsetDateTime>,
    /// Per program: its organization and setting.
    sub_affiliate_configs: BTreeMap<ProgramId, (OrgId, SubAffiliateConfig)>,
    /// Per recruited affiliate.
    recruitments: BTreeMap<AffiliateId, Recruitment>,
    conversions: BTreeMap<ConversionId, Conversion>,
    ledger: BTreeMap<LedgerEventId, LedgerEvent>,
    inbox: BTreeMap<String, InboxEvent>,
    endpoints: BTreeMap<WebhookEndpointId, WebhookEndpoint>,
    outbox: BTreeMap<OutboxEventId, OutboxEvent>,
    deliveries: BTreeMap<DeliveryId, Delivery>,
}

/// Who recruited an affiliate.
#[derive(Clone, Copy)]
struct Recruitment {
    org_id: OrgId,
    recruiter_id: AffiliateId,
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
    pub const PROCESSED_SOURCE_ORG: &str = "processed_sources_org_id_fkey";
    pub const SUB_AFFILIATE_CONFIG_ORG: &str = "program_sub_affiliate_configs_org_id_fkey";
    pub const SUB_AFFILIATE_CONFIG_PROGRAM: &str = "program_sub_affiliate_configs_program_fkey";
    pub const RECRUITMENT_ORG: &str = "affiliate_recruitments_org_id_fkey";
    pub const RECRUITMENT_AFFILIATE: &str = "affiliate_recruitments_affiliate_fkey";
    pub const RECRUITMENT_RECRUITER: &str = "affiliate_recruitments_recruiter_fkey";
    pub const CONVERSION_ORG: &str = "conversions_org_id_fkey";
    pub const CONVERSION_PROGRAM: &str = "conversions_program_fkey";
    pub const CONVERSION_AFFILIATE: &str = "conversions_affiliate_fkey";
    pub const CONVERSION_AFFILIATE_COUPON: &str = "conversions_affiliate_coupon_fkey";
    pub const CONVERSION_PARENT: &str = "conversions_parent_fkey";
    pub const LEDGER_ORG: &str = "ledger_events_org_id_fkey";
    pub const LEDGER_CONVERSION: &str = "ledger_events_conversion_fkey";
    pub const INBOX_ORG: &str = "inbox_events_org_id_fkey";
    pub const ENDPOINT_ORG: &str = "webhook_endpoints_org_id_fkey";
    pub const OUTBOX_ORG: &str = "outbox_events_org_id_fkey";
    pub const DELIVERY_ORG: &str = "webhook_deliveries_org_id_fkey";
    pub const DELIVERY_ENDPOINT: &str = "webhook_deliveries_endpoint_fkey";
    pub const DELIVERY_EVENT: &str = "webhook_deliveries_event_fkey";
}

/// CHECK constraint names of the migrations that the domain types cannot rule out.
mod checks {
    pub const RECRUITMENT_NOT_SELF: &str = "affiliate_recruitments_not_self_check";
    pub const CONVERSION_NOT_OWN_PARENT: &str = "conversions_not_own_parent_check";
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

    fn has_affiliate_coupon(&self, org: OrgId, id: AffiliateCouponId) -> bool {
        self.affiliate_coupons.get(&id).is_some_and(|c| c.org_id == org)
    }

    fn has_conversion(&self, org: OrgId, id: ConversionId) -> bool {
        self.conversions.get(&id).is_some_and(|c| c.org_id == org)
    }

    fn has_endpoint(&self, org: OrgId, id: WebhookEndpointId) -> bool {
        self.endpoints.get(&id).is_some_and(|e| e.org_id == org)
    }

    /// The checks and foreign keys of a conversion row, in the order PostgreSQL applies them
    /// (CHECK constraints before the foreign-key triggers).
    fn check_conversion(&self, c: &Conversion) -> Result<(), StoreError> {
        if c.parent_conversion_id == Some(c.id) {
            return Err(check_violation(checks::CONVERSION_NOT_OWN_PARENT));
        }
        references(&[
            (self.has_org(c.org_id), foreign_keys::CONVERSION_ORG),
            (self.has_program(c.org_id, c.program_id), foreign_keys::CONVERSION_PROGRAM),
            (self.has_affiliate(c.org_id, c.affiliate_id), foreign_keys::CONVERSION_AFFILIATE),
            (c.affiliate_coupon_id.is_none_or(|id| self.has_affiliate_coupon(c.org_id, id)), foreign_keys::CONVERSION_AFFILIATE_COUPON),
            (c.parent_conversion_id.is_none_or(|id| self.has_conversion(c.org_id, id)), foreign_keys::CONVERSION_PARENT),
        ])
    }

    /// Non-override conversions of the organization, the most recent (by creation, then id)
    /// of those `keep` accepts.
    fn latest_conversion(&self, org: OrgId, keep: impl Fn(&Conversion) -> bool) -> Option<&Conversion> {
        self.conversions
            .values()
            .filter(|c| c.org_id == org && c.parent_conversion_id.is_none() && keep(c))
            .max_by_key(|c| (c.created_at, c.id))
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
        if account.is_some() && self.orgs.values().any(|o| o.id != id && o.stripe_account_id.as_deref() == account) {
            return Err(conflict(constraints::ORG_STRIPE_ACCOUNT));
        }
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

    fn org_by_stripe_account(&mut self, account: &str) -> Result<Option<Organization>, StoreError> {
        Ok(self.orgs.values().filter(|o| o.stripe_account_id.as_deref() == Some(account)).min_by_key(|o| (o.created_at, o.id)).cloned())
    }

    fn some_orgs(&mut self, limit: i64) -> Result<Vec<Organization>, StoreError> {
        let mut orgs: Vec<Organization> = self.orgs.values().cloned().collect();
        orgs.sort_by_key(|o| (o.created_at, o.id));
        orgs.truncate(limit_of(limit));
        Ok(orgs)
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

    fn sub_affiliate_config(&mut self, org: OrgId, program: ProgramId) -> Result<SubAffiliateConfig, StoreError> {
        Ok(self.sub_affiliate_configs.get(&program).filter(|(o, _)| *o == org).map(|(_, c)| *c).unwrap_or_default())
    }

    fn put_sub_affiliate_config(&mut self, org: OrgId, program: ProgramId, config: &SubAffiliateConfig) -> Result<(), StoreError> {
        references(&[
            (self.has_org(org), foreign_keys::SUB_AFFILIATE_CONFIG_ORG),
            (self.has_program(org, program), foreign_keys::SUB_AFFILIATE_CONFIG_PROGRAM),
        ])?;
        self.sub_affiliate_configs.insert(program, (org, *config));
        Ok(())
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

    fn affiliate_by_link_slug(&mut self, org: OrgId, slug: &str) -> Result<Option<Affiliate>, StoreError> {
        let slug = slug.to_lowercase();
        let link = self.links.values().find(|l| l.org_id == org && l.slug.to_lowercase() == slug);
        Ok(link.and_then(|l| self.affiliates.get(&l.affiliate_id)).and_then(AffiliateRow::live).filter(|a| a.org_id == org).cloned())
    }

    fn recruiter_of(&mut self, org: OrgId, affiliate: AffiliateId) -> Result<Option<AffiliateId>, StoreError> {
        Ok(self.recruitments.get(&affiliate).filter(|r| r.org_id == org).map(|r| r.recruiter_id))
    }

    fn set_recruiter(&mut self, org: OrgId, affiliate: AffiliateId, recruiter: AffiliateId) -> Result<(), StoreError> {
        if affiliate == recruiter {
            return Err(check_violation(checks::RECRUITMENT_NOT_SELF));
        }
        references(&[
            (self.has_org(org), foreign_keys::RECRUITMENT_ORG),
            (self.has_affiliate(org, affiliate), foreign_keys::RECRUITMENT_AFFILIATE),
            (self.has_affiliate(org, recruiter), foreign_keys::RECRUITMENT_RECRUITER),
        ])?;
        self.recruitments.insert(affiliate, Recruitment { org_id: org, recruiter_id: recruiter });
        Ok(())
    }

    fn recruits_of(&mut self, org: OrgId, recruiter: AffiliateId) -> Result<Vec<Affiliate>, StoreError> {
        // Keyed by the recruit's id, so oldest first.
        Ok(self
            .recruitments
            .iter()
            .filter(|(_, r)| r.org_id == org && r.recruiter_id == recruiter)
            .filter_map(|(id, _)| self.affiliates.get(id).and_then(AffiliateRow::live))
            .cloned()
            .collect())
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
        // Newest first, like PgStore (Stripe ids are unique anyway).
        Ok(self
            .affiliate_coupons
            .values()
            .rev()
            .find(|c| c.org_id == org && c.stripe_promotion_code_id.as_deref() == Some(stripe_id))
            .cloned())
    }

    fn affiliate_coupon_by_stripe_id_any_org(&mut self, stripe_id: &str) -> Result<Option<AffiliateCoupon>, StoreError> {
        Ok(self.affiliate_coupons.values().rev().find(|c| c.stripe_promotion_code_id.as_deref() == Some(stripe_id)).cloned())
    }

    fn campaign_coupons_by_stripe_id(&mut self, stripe_id: &str) -> Result<Vec<CampaignCoupon>, StoreError> {
        Ok(self.campaign_coupons.values().rev().filter(|c| c.stripe_coupon_id.as_deref() == Some(stripe_id)).cloned().collect())
    }

    fn add_redemption(&mut self, org: OrgId, id: AffiliateCouponId, delta: i64, at: OffsetDateTime) -> Result<(), StoreError> {
        if let Some(code) = self.affiliate_coupons.get_mut(&id).filter(|c| c.org_id == org) {
            code.times_redeemed = code.times_redeemed.saturating_add(delta).max(0);
            if delta > 0 {
                code.last_redeemed_at = Some(at);
            }
            code.updated_at = at;
        }
        Ok(())
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

impl ConversionRepo for State {
    fn claim_source(&mut self, org: OrgId, source: &str, at: OffsetDateTime) -> Result<bool, StoreError> {
        let key = (org, source.to_owned());
        if self.processed_sources.contains_key(&key) {
            return Ok(false);
        }
        references(&[(self.has_org(org), foreign_keys::PROCESSED_SOURCE_ORG)])?;
        self.processed_sources.insert(key, at);
        Ok(true)
    }

    fn source_seen(&mut self, org: OrgId, source: &str) -> Result<bool, StoreError> {
        Ok(self.processed_sources.contains_key(&(org, source.to_owned())))
    }

    fn insert_conversion(&mut self, conversion: &Conversion) -> Result<(), StoreError> {
        // PostgreSQL checks CHECK constraints before the primary key, and both before the
        // foreign keys (check_conversion repeats the check harmlessly).
        if conversion.parent_conversion_id == Some(conversion.id) {
            return Err(check_violation(checks::CONVERSION_NOT_OWN_PARENT));
        }
        if self.conversions.contains_key(&conversion.id) {
            return Err(conflict("conversions_pkey"));
        }
        self.check_conversion(conversion)?;
        let is_sale = |c: &Conversion| {
            c.parent_conversion_id.is_none()
                && matches!(
                    c.kind,
                    rekomi_domain::conversion::ConversionType::OneTime | rekomi_domain::conversion::ConversionType::Recurring
                )
        };
        if is_sale(conversion) && conversion.stripe_subscription_id.is_some() {
            let taken = self
                .conversions
                .values()
                .any(|c| c.org_id == conversion.org_id && is_sale(c) && c.stripe_subscription_id == conversion.stripe_subscription_id);
            if taken {
                return Err(conflict(constraints::SUBSCRIPTION_SALE));
            }
        }
        self.conversions.insert(conversion.id, conversion.clone());
        Ok(())
    }

    fn update_conversion(&mut self, conversion: &Conversion) -> Result<(), StoreError> {
        if !self.has_conversion(conversion.org_id, conversion.id) {
            return Ok(());
        }
        self.check_conversion(conversion)?;
        self.conversions.insert(conversion.id, conversion.clone());
        Ok(())
    }

    fn conversion(&mut self, org: OrgId, id: ConversionId) -> Result<Option<Conversion>, StoreError> {
        Ok(self.conversions.get(&id).filter(|c| c.org_id == org).cloned())
    }

    fn sale_conversion_of_subscription(&mut self, org: OrgId, subscription_id: &str) -> Result<Option<Conversion>, StoreError> {
        Ok(self
            .latest_conversion(org, |c| {
                matches!(c.kind, ConversionType::OneTime | ConversionType::Recurring)
                    && c.stripe_subscription_id.as_deref() == Some(subscription_id)
            })
            .cloned())
    }

    fn conversion_of_invoice(&mut self, org: OrgId, invoice_id: &str) -> Result<Option<Conversion>, StoreError> {
        let by_ledger: Vec<ConversionId> = self
            .ledger
            .values()
            .filter(|e| {
                e.org_id == org
                    && matches!(e.kind, LedgerKind::Initial | LedgerKind::Renewal)
                    && e.stripe_invoice_id.as_deref() == Some(invoice_id)
            })
            .map(|e| e.conversion_id)
            .collect();
        Ok(self.latest_conversion(org, |c| by_ledger.contains(&c.id) || c.external_event_id.as_deref() == Some(invoice_id)).cloned())
    }

    fn overrides_of(&mut self, org: OrgId, parent: ConversionId) -> Result<Vec<Conversion>, StoreError> {
        Ok(self.conversions.values().filter(|c| c.org_id == org && c.parent_conversion_id == Some(parent)).cloned().collect())
    }

    fn affiliate_of_customer(
        &mut self,
        org: OrgId,
        customer_id: Option<&str>,
        email: Option<&str>,
    ) -> Result<Option<AffiliateId>, StoreError> {
        let email = email.map(str::to_lowercase);
        Ok(self
            .latest_conversion(org, |c| {
                c.status != ConversionStatus::Denied
                    && (customer_id.is_some_and(|id| c.stripe_customer_id.as_deref() == Some(id))
                        || email.as_deref().is_some_and(|e| c.customer_email.as_deref().is_some_and(|mine| mine.to_lowercase() == e)))
            })
            .map(|c| c.affiliate_id))
    }

    fn orgs_of_stripe_customer(&mut self, customer_id: &str) -> Result<Vec<OrgId>, StoreError> {
        let mut latest: Vec<(OrgId, time::OffsetDateTime)> = Vec::new();
        for c in self.conversions.values().filter(|c| c.stripe_customer_id.as_deref() == Some(customer_id)) {
            match latest.iter_mut().find(|(org, _)| *org == c.org_id) {
                Some((_, at)) => *at = (*at).max(c.created_at),
                None => latest.push((c.org_id, c.created_at)),
            }
        }
        latest.sort_by_key(|entry| std::cmp::Reverse(entry.1));
        Ok(latest.into_iter().take(2).map(|(org, _)| org).collect())
    }

    fn orgs_of_payment(&mut self, payment: &str) -> Result<Vec<OrgId>, StoreError> {
        let mut orgs: Vec<OrgId> = Vec::new();
        for e in self.ledger.values() {
            let sale = matches!(e.kind, LedgerKind::Initial | LedgerKind::Renewal);
            if sale && e.stripe_invoice_id.as_deref() == Some(payment) && !orgs.contains(&e.org_id) {
                orgs.push(e.org_id);
            }
        }
        orgs.truncate(2);
        Ok(orgs)
    }

    fn list_conversions(&mut self, org: OrgId, filter: &ConversionFilter, page: &PageRequest) -> Result<Vec<Conversion>, StoreError> {
        Ok(page_of(&self.conversions, page, ConversionId::as_uuid, |c| {
            let matches = c.org_id == org
                && filter.affiliate_id.is_none_or(|a| c.affiliate_id == a)
                && filter.program_id.is_none_or(|p| c.program_id == p)
                && filter.status.is_none_or(|s| c.status == s)
                && filter.since.is_none_or(|since| c.created_at >= since)
                && filter.until.is_none_or(|until| c.created_at < until);
            matches.then(|| c.clone())
        }))
    }

    fn conversions_due_for_approval(&mut self, now: OffsetDateTime, limit: i64) -> Result<Vec<Conversion>, StoreError> {
        let mut due: Vec<Conversion> =
            self.conversions.values().filter(|c| c.status == ConversionStatus::Pending && c.approve_after <= now).cloned().collect();
        due.sort_by_key(|c| (c.approve_after, c.id));
        due.truncate(limit_of(limit));
        Ok(due)
    }

    fn insert_ledger_event(&mut self, event: &LedgerEvent) -> Result<(), StoreError> {
        if self.ledger.contains_key(&event.id) {
            return Err(conflict("ledger_events_pkey"));
        }
        references(&[
            (self.has_org(event.org_id), foreign_keys::LEDGER_ORG),
            (self.has_conversion(event.org_id, event.conversion_id), foreign_keys::LEDGER_CONVERSION),
        ])?;
        self.ledger.insert(event.id, event.clone());
        Ok(())
    }

    fn ledger_of(&mut self, org: OrgId, conversion: ConversionId) -> Result<Vec<LedgerEvent>, StoreError> {
        let mut entries: Vec<LedgerEvent> =
            self.ledger.values().filter(|e| e.org_id == org && e.conversion_id == conversion).cloned().collect();
        entries.sort_by_key(|e| (e.occurred_at, e.id));
        Ok(entries)
    }
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
        let mut due: Vec<(OffsetDateTime, String)> = self
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

    fn renew_inbox_leases(&mut self, ids: &[String], lease_until: OffsetDateTime) -> Result<usize, StoreError> {
        let mut renewed = 0;
        for id in ids {
            if let Some(e) = self.inbox.get_mut(id).filter(|e| e.status == InboxStatus::Pending && e.locked_until.is_some()) {
                e.locked_until = Some(lease_until);
                renewed += 1;
            }
        }
        Ok(renewed)
    }

    fn release_inbox_events(&mut self, ids: &[String]) -> Result<usize, StoreError> {
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
        account: Option<&str>,
        payments: &[String],
        org: OrgId,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        references(&[(self.has_org(org), foreign_keys::INBOX_ORG)])?;
        let mut woken = 0;
        for e in self.inbox.values_mut() {
            let waits_here = e.status == InboxStatus::Waiting
                && e.account.as_deref() == account
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
        let mut due: Vec<(OffsetDateTime, String)> = self
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

    fn inbox_event(&mut self, id: &str) -> Result<Option<InboxEvent>, StoreError> {
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

impl OutboundRepo for State {
    fn insert_endpoint(&mut self, endpoint: &WebhookEndpoint) -> Result<(), StoreError> {
        if self.endpoints.contains_key(&endpoint.id) {
            return Err(conflict("webhook_endpoints_pkey"));
        }
        references(&[(self.has_org(endpoint.org_id), foreign_keys::ENDPOINT_ORG)])?;
        self.endpoints.insert(endpoint.id, endpoint.clone());
        Ok(())
    }

    fn update_endpoint(&mut self, endpoint: &WebhookEndpoint) -> Result<(), StoreError> {
        if self.has_endpoint(endpoint.org_id, endpoint.id) {
            self.endpoints.insert(endpoint.id, endpoint.clone());
        }
        Ok(())
    }

    fn delete_endpoint(&mut self, org: OrgId, id: WebhookEndpointId) -> Result<bool, StoreError> {
        if !self.has_endpoint(org, id) {
            return Ok(false);
        }
        self.endpoints.remove(&id);
        self.deliveries.retain(|_, d| d.endpoint_id != id);
        Ok(true)
    }

    fn endpoint(&mut self, org: OrgId, id: WebhookEndpointId) -> Result<Option<WebhookEndpoint>, StoreError> {
        Ok(self.endpoints.get(&id).filter(|e| e.org_id == org).cloned())
    }

    fn endpoints(&mut self, org: OrgId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        Ok(self.endpoints.values().rev().filter(|e| e.org_id == org).cloned().collect())
    }

    fn insert_outbox_events(&mut self, events: &[OutboxEvent]) -> Result<(), StoreError> {
        // All or nothing, as one multi-row statement.
        let before = self.outbox.clone();
        for event in events {
            let checked = if self.outbox.contains_key(&event.id) {
                Err(conflict("outbox_events_pkey"))
            } else {
                references(&[(self.has_org(event.org_id), foreign_keys::OUTBOX_ORG)])
            };
            if let Err(e) = checked {
                self.outbox = before;
                return Err(e);
            }
            self.outbox.insert(event.id, event.clone());
        }
        Ok(())
    }

    fn insert_deliveries(&mut self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        let before = self.deliveries.clone();
        for delivery in deliveries {
            if let Err(e) = self.insert_one_delivery(delivery) {
                self.deliveries = before;
                return Err(e);
            }
        }
        Ok(())
    }

    fn update_delivery(&mut self, delivery: &Delivery) -> Result<(), StoreError> {
        if let Some(stored) = self.deliveries.get_mut(&delivery.id).filter(|d| d.org_id == delivery.org_id) {
            // The retry state only: what is delivered never changes.
            stored.status = delivery.status;
            stored.attempts = delivery.attempts;
            stored.next_attempt_at = delivery.next_attempt_at;
            stored.locked_until = delivery.locked_until;
            stored.last_status = delivery.last_status;
            stored.last_error = delivery.last_error.clone();
            stored.delivered_at = delivery.delivered_at;
        }
        Ok(())
    }

    fn delivery(&mut self, org: OrgId, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        Ok(self.deliveries.get(&id).filter(|d| d.org_id == org).cloned())
    }

    fn deliveries_of(&mut self, org: OrgId, endpoint: WebhookEndpointId, page: &PageRequest) -> Result<Vec<Delivery>, StoreError> {
        Ok(page_of(&self.deliveries, page, DeliveryId::as_uuid, |d| (d.org_id == org && d.endpoint_id == endpoint).then(|| d.clone())))
    }

    fn claim_deliveries(&mut self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: i64) -> Result<Vec<Delivery>, StoreError> {
        let endpoints = &self.endpoints;
        let mut due: Vec<(OffsetDateTime, DeliveryId)> = self
            .deliveries
            .values()
            .filter(|d| {
                d.status == DeliveryStatus::Pending
                    && d.next_attempt_at <= now
                    && unlocked(d.locked_until, now)
                    && endpoints.get(&d.endpoint_id).is_some_and(|e| e.status == EndpointStatus::Enabled)
            })
            .map(|d| (d.created_at, d.id))
            .collect();
        due.sort();
        due.truncate(limit_of(limit));
        Ok(due
            .into_iter()
            .filter_map(|(_, id)| {
                let delivery = self.deliveries.get_mut(&id)?;
                delivery.locked_until = Some(lease_until);
                delivery.attempts = delivery.attempts.saturating_add(1);
                Some(delivery.clone())
            })
            .collect())
    }

    fn renew_delivery_leases(&mut self, ids: &[DeliveryId], lease_until: OffsetDateTime) -> Result<usize, StoreError> {
        let mut renewed = 0;
        for id in ids {
            if let Some(d) = self.deliveries.get_mut(id).filter(|d| d.status == DeliveryStatus::Pending && d.locked_until.is_some()) {
                d.locked_until = Some(lease_until);
                renewed += 1;
            }
        }
        Ok(renewed)
    }

    fn delivery_depth(&mut self, now: OffsetDateTime) -> Result<(u64, Option<OffsetDateTime>), StoreError> {
        let endpoints = &self.endpoints;
        let pending: Vec<&Delivery> = self
            .deliveries
            .values()
            .filter(|d| {
                d.status == DeliveryStatus::Pending && endpoints.get(&d.endpoint_id).is_some_and(|e| e.status == EndpointStatus::Enabled)
            })
            .collect();
        let oldest = pending.iter().map(|d| d.next_attempt_at).filter(|at| *at <= now).min();
        Ok((pending.len() as u64, oldest))
    }

    fn endpoint_any_org(&mut self, id: WebhookEndpointId) -> Result<Option<WebhookEndpoint>, StoreError> {
        Ok(self.endpoints.get(&id).cloned())
    }
}

impl State {
    fn insert_one_delivery(&mut self, delivery: &Delivery) -> Result<(), StoreError> {
        if self.deliveries.contains_key(&delivery.id) {
            return Err(conflict("webhook_deliveries_pkey"));
        }
        let org = delivery.org_id;
        references(&[
            (self.has_org(org), foreign_keys::DELIVERY_ORG),
            (self.has_endpoint(org, delivery.endpoint_id), foreign_keys::DELIVERY_ENDPOINT),
            (self.outbox.get(&delivery.event_id).is_some_and(|e| e.org_id == org), foreign_keys::DELIVERY_EVENT),
        ])?;
        self.deliveries.insert(delivery.id, delivery.clone());
        Ok(())
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

impl AuditRepo for State {
    fn append_audits(&mut self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        let before = self.audit.clone();
        for entry in entries {
            let checked = if self.audit.contains_key(&entry.id) {
                Err(conflict("audit_log_pkey"))
            } else {
                references(&[(self.has_org(entry.org_id), foreign_keys::AUDIT_ORG)])
            };
            if let Err(e) = checked {
                self.audit = before;
                return Err(e);
            }
            self.audit.insert(entry.id, entry.clone());
        }
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
