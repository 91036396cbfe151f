//! The storage port. One use case runs in one transaction: the use case hands a closure to
//! [`UnitOfWork::run`], the adapter runs it against one connection inside one transaction and
//! commits only when the closure succeeds. The repositories are synchronous (diesel is), and
//! every read and write names the organization it is scoped to.
//!
//! `UnitOfWork` is object-safe (the closure is boxed and its result type-erased) so the HTTP
//! adapter and the server can hold an `Arc<dyn UnitOfWork>` instead of threading a generic
//! parameter through every handler; [`transact`] restores the typed, generic call shape the
//! design describes. See docs/adr/0002-object-safe-unit-of-work.md.

use std::any::Any;

use async_trait::async_trait;

use crate::affiliates::AffiliateRepo;
use crate::audit::AuditRepo;
use crate::conversions::ConversionRepo;
use crate::coupons::CouponRepo;
use crate::fx::FxRepo;
use crate::idempotency::IdempotencyRepo;
use crate::orgs::OrgRepo;
use crate::outbound::OutboundRepo;
use crate::payouts::PayoutRepo;
use crate::programs::ProgramRepo;
use crate::stripe_inbox::InboxRepo;
use crate::tracking::TrackingRepo;
use crate::traffic::TrafficRepo;

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique or foreign-key constraint refused the write. `constraint` is the constraint's
    /// name from the migrations (e.g. `affiliate_coupons_org_code_key`), which use cases map to
    /// domain conflicts.
    #[error("constraint {constraint} refused the write")]
    Conflict {
        /// The constraint name.
        constraint: String,
    },
    /// The database could not be reached or the pool is exhausted (HTTP 503).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Anything else (HTTP 500, logged once with its cause).
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl StoreError {
    /// Whether this is a conflict on `constraint`.
    pub fn is_conflict_on(&self, constraint: &str) -> bool {
        matches!(self, Self::Conflict { constraint: c } if c == constraint)
    }
}

/// Constraint names shared by every store implementation.
pub mod constraints {
    /// Program slugs are unique per organization.
    pub const PROGRAM_SLUG: &str = "programs_org_slug_key";
    /// An email joins a program once.
    pub const AFFILIATE_EMAIL: &str = "affiliates_program_email_key";
    /// Link slugs are unique per organization.
    pub const LINK_SLUG: &str = "affiliate_links_org_slug_key";
    /// Codes are unique per organization regardless of case.
    pub const COUPON_CODE: &str = "affiliate_coupons_org_code_key";
    /// Organization handles are unique.
    pub const ORG_HANDLE: &str = "organizations_handle_key";
    /// A sale, checkout or lead source is processed once per organization.
    pub const PROCESSED_SOURCE: &str = "processed_sources_pkey";
    /// An inbound event id is stored once.
    pub const INBOX_EVENT: &str = "inbox_events_pkey";
    /// A subscription has one sale conversion.
    pub const SUBSCRIPTION_SALE: &str = "conversions_subscription_sale_key";
    /// A Stripe Connect account links one organization.
    pub const ORG_STRIPE_ACCOUNT: &str = "organizations_stripe_account_key";
    /// An organization has one current (unexpired) signing secret.
    pub const TRACKING_SECRET_CURRENT: &str = "tracking_secrets_org_current_key";
    /// A ledger entry is held by one live payout line item at most.
    pub const PAYOUT_ENTRY_LIVE: &str = "payout_line_items_live_key";
    /// An idempotency key is recorded once per organization.
    pub const IDEMPOTENCY_KEY: &str = "idempotency_records_pkey";
}

/// Nested transactions inside one unit of work.
pub trait Savepoints {
    /// Runs `work` in a nested transaction (a savepoint): its writes are kept when it returns
    /// true and undone when it returns false; either way the outer transaction goes on. Work
    /// that met a store error must return false (PostgreSQL undoes such a savepoint anyway). Returns whether the writes were kept. One batch of Stripe
    /// events is applied in one transaction this way, each event in a savepoint of its own.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected` when the savepoint itself cannot be taken or released.
    fn savepoint(&mut self, work: &mut dyn FnMut(&mut dyn Tx) -> bool) -> Result<bool, StoreError>;
}

/// One connection inside one transaction.
pub trait Tx:
    OrgRepo
    + ProgramRepo
    + AffiliateRepo
    + CouponRepo
    + ConversionRepo
    + InboxRepo
    + OutboundRepo
    + AuditRepo
    + TrafficRepo
    + TrackingRepo
    + PayoutRepo
    + IdempotencyRepo
    + FxRepo
    + Savepoints
{
}
impl<
        T: OrgRepo
            + ProgramRepo
            + AffiliateRepo
            + CouponRepo
            + ConversionRepo
            + InboxRepo
            + OutboundRepo
            + AuditRepo
            + TrafficRepo
            + TrackingRepo
            + PayoutRepo
            + IdempotencyRepo
            + FxRepo
            + Savepoints,
    > Tx for T
{
}

/// What a transaction's work returned: commit with a value, or roll back with an error.
pub enum TxOutcome {
    /// Commit; the boxed value is the work's result.
    Commit(Box<dyn Any + Send>),
    /// Roll back; the boxed value is the work's error.
    Rollback(Box<dyn Any + Send>),
}

/// The boxed work of one transaction.
pub type TxWork = Box<dyn FnOnce(&mut dyn Tx) -> TxOutcome + Send>;

/// Runs work in transactions.
#[async_trait]
pub trait UnitOfWork: Send + Sync + 'static {
    /// Runs `work` in one transaction, off the async executor's threads, committing on
    /// [`TxOutcome::Commit`] and rolling back on [`TxOutcome::Rollback`].
    ///
    /// # Errors
    /// `Unavailable` when no connection could be had or the commit failed for connectivity;
    /// `Unexpected` for anything else. Errors of the work itself come back as a `Rollback`.
    async fn run(&self, work: TxWork) -> Result<TxOutcome, StoreError>;

    /// Whether the store answers (for `/readyz`).
    ///
    /// # Errors
    /// `Unavailable` when it does not.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Runs `f` in one transaction of `uow` and returns its typed result.
///
/// # Errors
/// `f`'s error (after rollback), or the store's error converted into `E`.
pub async fn transact<R, E, F>(uow: &dyn UnitOfWork, f: F) -> Result<R, E>
where
    R: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnOnce(&mut dyn Tx) -> Result<R, E> + Send + 'static,
{
    let work: TxWork = Box::new(move |tx: &mut dyn Tx| match f(tx) {
        Ok(r) => TxOutcome::Commit(Box::new(r)),
        Err(e) => TxOutcome::Rollback(Box::new(e)),
    });
    let mismatch = || E::from(StoreError::Unexpected(anyhow::anyhow!("transaction result of an unexpected type")));
    match uow.run(work).await {
        Ok(TxOutcome::Commit(value)) => value.downcast::<R>().map(|b| *b).map_err(|_| mismatch()),
        Ok(TxOutcome::Rollback(err)) => Err(err.downcast::<E>().map(|b| *b).unwrap_or_else(|_| mismatch())),
        Err(e) => Err(E::from(e)),
    }
}
