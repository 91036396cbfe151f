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
use time::OffsetDateTime;

use crate::affiliate::{Affiliate, AffiliateLink, AffiliateStatus, Email};
use crate::audit::AuditEntry;
use crate::conversion::{Conversion, ConversionStatus, LedgerEvent, SubAffiliateConfig};
use crate::coupon::{AffiliateCoupon, CampaignCoupon, CouponCode};
use crate::ids::{AffiliateCouponId, AffiliateId, CampaignCouponId, ConversionId, DeliveryId, OrgId, ProgramId, WebhookEndpointId};
use crate::inbox::{InboxEvent, InboxStatus};
use crate::org::{ApiKey, OrgUsage, Organization};
use crate::outbound::{Delivery, OutboxEvent, WebhookEndpoint};
use crate::page::PageRequest;
use crate::program::Program;

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

/// Filters of the affiliate list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AffiliateFilter {
    /// Only this program.
    pub program_id: Option<ProgramId>,
    /// Only this status.
    pub status: Option<AffiliateStatus>,
    /// Case-insensitive substring of email or full name.
    pub q: Option<String>,
}

/// Which affiliate coupons to list (exactly one selector).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CouponSelector {
    /// Codes of one affiliate.
    Affiliate(AffiliateId),
    /// Codes of one campaign coupon.
    CampaignCoupon(CampaignCouponId),
    /// Codes of every affiliate row with this email (one person across programs).
    AffiliateEmail(Email),
}

/// Organizations and API keys.
pub trait OrgRepo {
    /// Inserts an organization.
    ///
    /// # Errors
    /// `Conflict` on [`constraints::ORG_HANDLE`].
    fn insert_org(&mut self, org: &Organization) -> Result<(), StoreError>;
    /// An organization by id.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn org(&mut self, id: OrgId) -> Result<Option<Organization>, StoreError>;
    /// Links the organization to a Stripe Connect account (`None` unlinks). Returns whether
    /// the organization exists.
    ///
    /// # Errors
    /// `Conflict` on [`constraints::ORG_STRIPE_ACCOUNT`] when another organization holds the
    /// account.
    fn set_stripe_account(&mut self, id: OrgId, account: Option<&str>) -> Result<bool, StoreError>;
    /// Inserts an API key.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_api_key(&mut self, key: &ApiKey) -> Result<(), StoreError>;
    /// The unrevoked API key with this hash.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn api_key_by_hash(&mut self, hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// The organization linked to a Stripe Connect account.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn org_by_stripe_account(&mut self, account: &str) -> Result<Option<Organization>, StoreError>;
    /// Up to `limit` organizations, oldest first (to tell a single-brand installation).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn some_orgs(&mut self, limit: i64) -> Result<Vec<Organization>, StoreError>;
    /// Usage counts for the billing snapshot.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn org_usage(&mut self, org: OrgId) -> Result<OrgUsage, StoreError>;
}

/// Programs.
pub trait ProgramRepo {
    /// Inserts a program.
    ///
    /// # Errors
    /// `Conflict` on [`constraints::PROGRAM_SLUG`].
    fn insert_program(&mut self, program: &Program) -> Result<(), StoreError>;
    /// Replaces a program's fields.
    ///
    /// # Errors
    /// `Conflict` on [`constraints::PROGRAM_SLUG`].
    fn update_program(&mut self, program: &Program) -> Result<(), StoreError>;
    /// A program of the organization (archived ones included).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn program(&mut self, org: OrgId, id: ProgramId) -> Result<Option<Program>, StoreError>;
    /// [`ProgramRepo::program`] holding the row locked until the transaction ends, for
    /// read-modify-write use cases, so concurrent changes serialize instead of overwriting each
    /// other. Stores whose transactions already run one at a time keep this default.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn program_for_update(&mut self, org: OrgId, id: ProgramId) -> Result<Option<Program>, StoreError> {
        self.program(org, id)
    }
    /// A program's sub-affiliate setting (the default, disabled, when never set).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn sub_affiliate_config(&mut self, org: OrgId, program: ProgramId) -> Result<SubAffiliateConfig, StoreError>;
    /// Stores a program's sub-affiliate setting.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn put_sub_affiliate_config(&mut self, org: OrgId, program: ProgramId, config: &SubAffiliateConfig) -> Result<(), StoreError>;
    /// Unarchived programs, newest first, at most `page.fetch_limit()` rows after the cursor.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn list_programs(&mut self, org: OrgId, page: &PageRequest) -> Result<Vec<Program>, StoreError>;
}

/// Affiliates and their links.
pub trait AffiliateRepo {
    /// Inserts an affiliate.
    ///
    /// # Errors
    /// `Conflict` on [`constraints::AFFILIATE_EMAIL`].
    fn insert_affiliate(&mut self, affiliate: &Affiliate) -> Result<(), StoreError>;
    /// Replaces an affiliate's fields.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn update_affiliate(&mut self, affiliate: &Affiliate) -> Result<(), StoreError>;
    /// Deletes an affiliate whose id is in the organization (its links and codes stay for
    /// history but the affiliate no longer appears anywhere). Returns whether a row went.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn delete_affiliate(&mut self, org: OrgId, id: AffiliateId, now: OffsetDateTime) -> Result<bool, StoreError>;
    /// An affiliate of the organization (deleted ones excluded).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate(&mut self, org: OrgId, id: AffiliateId) -> Result<Option<Affiliate>, StoreError>;
    /// [`AffiliateRepo::affiliate`] holding the row locked (see
    /// [`ProgramRepo::program_for_update`]).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate_for_update(&mut self, org: OrgId, id: AffiliateId) -> Result<Option<Affiliate>, StoreError> {
        self.affiliate(org, id)
    }
    /// Affiliates matching the filter, newest first, at most `page.fetch_limit()` rows.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn list_affiliates(&mut self, org: OrgId, filter: &AffiliateFilter, page: &PageRequest) -> Result<Vec<Affiliate>, StoreError>;
    /// Every affiliate row (in any organization) an affiliate-side caller owns: linked to
    /// `user_id`, or unlinked with `email`.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliates_of_user(&mut self, user_id: &str, email: &Email) -> Result<Vec<Affiliate>, StoreError>;
    /// Inserts a link.
    ///
    /// # Errors
    /// `Conflict` on [`constraints::LINK_SLUG`].
    fn insert_link(&mut self, link: &AffiliateLink) -> Result<(), StoreError>;
    /// The links of these affiliates, default first.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn links_of(&mut self, org: OrgId, affiliates: &[AffiliateId]) -> Result<Vec<AffiliateLink>, StoreError>;
    /// The (not deleted) affiliate owning a link slug, case-insensitively.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate_by_link_slug(&mut self, org: OrgId, slug: &str) -> Result<Option<Affiliate>, StoreError>;
    /// The affiliate who recruited `affiliate`, if any.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn recruiter_of(&mut self, org: OrgId, affiliate: AffiliateId) -> Result<Option<AffiliateId>, StoreError>;
    /// Records that `recruiter` recruited `affiliate` (replacing any earlier record).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn set_recruiter(&mut self, org: OrgId, affiliate: AffiliateId, recruiter: AffiliateId) -> Result<(), StoreError>;
    /// The affiliates `recruiter` recruited (not deleted).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn recruits_of(&mut self, org: OrgId, recruiter: AffiliateId) -> Result<Vec<Affiliate>, StoreError>;
    /// Whether a link slug is taken in the organization.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn link_slug_taken(&mut self, org: OrgId, slug: &str) -> Result<bool, StoreError>;
}

/// Campaign and affiliate coupons.
pub trait CouponRepo {
    /// Inserts a campaign coupon.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_campaign_coupon(&mut self, coupon: &CampaignCoupon) -> Result<(), StoreError>;
    /// Replaces a campaign coupon's fields.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn update_campaign_coupon(&mut self, coupon: &CampaignCoupon) -> Result<(), StoreError>;
    /// Deletes a campaign coupon.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn delete_campaign_coupon(&mut self, org: OrgId, id: CampaignCouponId) -> Result<(), StoreError>;
    /// A campaign coupon of the organization (provisioning ones included).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn campaign_coupon(&mut self, org: OrgId, id: CampaignCouponId) -> Result<Option<CampaignCoupon>, StoreError>;
    /// [`CouponRepo::campaign_coupon`] holding the row locked (see
    /// [`ProgramRepo::program_for_update`]). Archive, delete, code reservation and code
    /// provisioning all take this lock, so none of them acts on a stale view of the others.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn campaign_coupon_for_update(&mut self, org: OrgId, id: CampaignCouponId) -> Result<Option<CampaignCoupon>, StoreError> {
        self.campaign_coupon(org, id)
    }
    /// Provisioned campaign coupons of a program, newest first.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn list_campaign_coupons(&mut self, org: OrgId, program: ProgramId, page: &PageRequest) -> Result<Vec<CampaignCoupon>, StoreError>;
    /// Campaign coupons of every organization still without a Stripe id and created before
    /// `before` (for the reconciler).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn unprovisioned_campaign_coupons(&mut self, before: OffsetDateTime, limit: i64) -> Result<Vec<CampaignCoupon>, StoreError>;

    /// Inserts an affiliate coupon.
    ///
    /// # Errors
    /// `Conflict` on [`constraints::COUPON_CODE`].
    fn insert_affiliate_coupon(&mut self, coupon: &AffiliateCoupon) -> Result<(), StoreError>;
    /// Replaces an affiliate coupon's fields.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn update_affiliate_coupon(&mut self, coupon: &AffiliateCoupon) -> Result<(), StoreError>;
    /// Deletes an affiliate coupon (only used to release a reservation Stripe refused).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn delete_affiliate_coupon(&mut self, org: OrgId, id: AffiliateCouponId) -> Result<(), StoreError>;
    /// An affiliate coupon of the organization (provisioning ones included).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate_coupon(&mut self, org: OrgId, id: AffiliateCouponId) -> Result<Option<AffiliateCoupon>, StoreError>;
    /// [`CouponRepo::affiliate_coupon`] holding the row locked (see
    /// [`ProgramRepo::program_for_update`]).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate_coupon_for_update(&mut self, org: OrgId, id: AffiliateCouponId) -> Result<Option<AffiliateCoupon>, StoreError> {
        self.affiliate_coupon(org, id)
    }
    /// The affiliate coupon with this code (case-insensitive), provisioning ones included.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate_coupon_by_code(&mut self, org: OrgId, code: &CouponCode) -> Result<Option<AffiliateCoupon>, StoreError>;
    /// The affiliate coupon with this Stripe promotion code id.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate_coupon_by_stripe_id(&mut self, org: OrgId, stripe_id: &str) -> Result<Option<AffiliateCoupon>, StoreError>;
    /// The affiliate coupon with this Stripe promotion code id, in whichever organization (ids
    /// are Stripe's, unique across accounts): resolves the organization of platform events.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate_coupon_by_stripe_id_any_org(&mut self, stripe_id: &str) -> Result<Option<AffiliateCoupon>, StoreError>;
    /// Campaign coupons with this Stripe coupon id, in whichever organization.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn campaign_coupons_by_stripe_id(&mut self, stripe_id: &str) -> Result<Vec<CampaignCoupon>, StoreError>;
    /// Adds `delta` (+1 or -1) to a code's redemption count, never below zero, and sets
    /// `last_redeemed_at` when `delta` is positive: a targeted update, so it never overwrites
    /// a concurrent change to the rest of the row.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn add_redemption(&mut self, org: OrgId, id: AffiliateCouponId, delta: i64, at: OffsetDateTime) -> Result<(), StoreError>;
    /// Provisioned affiliate coupons matching the selector, newest first, at most
    /// `page.fetch_limit()` rows.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn list_affiliate_coupons(
        &mut self,
        org: OrgId,
        selector: &CouponSelector,
        page: &PageRequest,
    ) -> Result<Vec<AffiliateCoupon>, StoreError>;
    /// Whether any affiliate coupon (in any state) exists under a campaign coupon.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn campaign_coupon_has_codes(&mut self, org: OrgId, id: CampaignCouponId) -> Result<bool, StoreError>;
    /// Whether the organization holds any provisioned campaign coupon (its Stripe objects live
    /// on the linked Stripe account).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn org_has_stripe_objects(&mut self, org: OrgId) -> Result<bool, StoreError>;
    /// Affiliate coupons of every organization still without a Stripe id and created before
    /// `before` (for the reconciler).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn unprovisioned_affiliate_coupons(&mut self, before: OffsetDateTime, limit: i64) -> Result<Vec<AffiliateCoupon>, StoreError>;
}

/// Conversions, their ledger, and processed sources.
pub trait ConversionRepo {
    /// Claims a source (`invoice:in_…`, `checkout:cs_…`, `lead:sub_…`) for the organization.
    /// Returns false when it was already claimed: the fact was processed before.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn claim_source(&mut self, org: OrgId, source: &str, at: OffsetDateTime) -> Result<bool, StoreError>;
    /// Whether a source was claimed for the organization (read-only).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn source_seen(&mut self, org: OrgId, source: &str) -> Result<bool, StoreError>;
    /// Inserts a conversion.
    ///
    /// # Errors
    /// `Conflict` on [`constraints::SUBSCRIPTION_SALE`] for a second sale conversion of a
    /// subscription.
    fn insert_conversion(&mut self, conversion: &Conversion) -> Result<(), StoreError>;
    /// Replaces a conversion's fields.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn update_conversion(&mut self, conversion: &Conversion) -> Result<(), StoreError>;
    /// A conversion of the organization.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn conversion(&mut self, org: OrgId, id: ConversionId) -> Result<Option<Conversion>, StoreError>;
    /// [`ConversionRepo::conversion`] holding the row locked until the transaction ends.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn conversion_for_update(&mut self, org: OrgId, id: ConversionId) -> Result<Option<Conversion>, StoreError> {
        self.conversion(org, id)
    }
    /// The sale conversion (not an override, not a lead) of a subscription, locked.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn sale_conversion_of_subscription(&mut self, org: OrgId, subscription_id: &str) -> Result<Option<Conversion>, StoreError>;
    /// The conversion (not an override) whose ledger holds this invoice or checkout session, locked.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn conversion_of_invoice(&mut self, org: OrgId, invoice_id: &str) -> Result<Option<Conversion>, StoreError>;
    /// The overrides earned on a conversion.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn overrides_of(&mut self, org: OrgId, parent: ConversionId) -> Result<Vec<Conversion>, StoreError>;
    /// The affiliate most recently credited (sale or lead, not denied, not an override) for a
    /// Stripe customer or a customer email.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate_of_customer(
        &mut self,
        org: OrgId,
        customer_id: Option<&str>,
        email: Option<&str>,
    ) -> Result<Option<AffiliateId>, StoreError>;
    /// The organizations holding a conversion of this Stripe customer (at most two, most
    /// recent first): resolves the organization of platform-account events that carry no
    /// Rekomi code, such as refunds and renewals.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn orgs_of_stripe_customer(&mut self, customer_id: &str) -> Result<Vec<OrgId>, StoreError>;
    /// The organizations (at most two) whose ledger records a sale of `payment` (an invoice or
    /// payment intent id): how a refund that names no code finds its organization.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn orgs_of_payment(&mut self, payment: &str) -> Result<Vec<OrgId>, StoreError>;
    /// Conversions matching the filter, newest first, at most `page.fetch_limit()` rows.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn list_conversions(&mut self, org: OrgId, filter: &ConversionFilter, page: &PageRequest) -> Result<Vec<Conversion>, StoreError>;
    /// Pending conversions of every organization whose `approve_after` has passed.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn conversions_due_for_approval(&mut self, now: OffsetDateTime, limit: i64) -> Result<Vec<Conversion>, StoreError>;
    /// Appends a ledger entry.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_ledger_event(&mut self, event: &LedgerEvent) -> Result<(), StoreError>;
    /// A conversion's ledger, oldest first.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn ledger_of(&mut self, org: OrgId, conversion: ConversionId) -> Result<Vec<LedgerEvent>, StoreError>;
}

/// The inbound event inbox.
pub trait InboxRepo {
    /// Stores an event. Returns false when its id is already stored (a redelivery).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_inbox_event(&mut self, event: &InboxEvent) -> Result<bool, StoreError>;
    /// Takes up to `limit` pending events due at `now` and not held by another worker, marking
    /// them held until `lease_until` and counting an attempt. Concurrent workers never take the
    /// same event (`FOR UPDATE SKIP LOCKED`).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn claim_inbox_events(&mut self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: i64) -> Result<Vec<InboxEvent>, StoreError>;
    /// Extends the lease of events still held (`Pending` and locked) to `lease_until`; events
    /// already finished are left alone. Returns how many were renewed.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn renew_inbox_leases(&mut self, ids: &[String], lease_until: OffsetDateTime) -> Result<usize, StoreError>;
    /// Lets go of events still held (`Pending` and locked) so any worker may take them at once.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn release_inbox_events(&mut self, ids: &[String]) -> Result<usize, StoreError>;
    /// Makes `Waiting` events of the Stripe `account` (`None`: the platform account) that wait
    /// for one of `payments` due at `now`, and gives those without an organization `org`: the
    /// payment's sale was just recorded there. Returns how many woke.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn wake_waiting_inbox_events(
        &mut self,
        account: Option<&str>,
        payments: &[String],
        org: OrgId,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError>;
    /// How many events are `Pending`, and the oldest `next_attempt_at` among those due at
    /// `now`.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn inbox_depth(&mut self, now: OffsetDateTime) -> Result<(u64, Option<OffsetDateTime>), StoreError>;
    /// Makes up to `limit` `Waiting` events whose recheck time has come (`next_attempt_at <=
    /// now`) `Pending`. Returns how many.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn wake_due_inbox_events(&mut self, now: OffsetDateTime, limit: i64) -> Result<usize, StoreError>;
    /// Replaces an event's processing state (status, org, attempts, next attempt, lock, error,
    /// processed time, what it waits for, replays).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn update_inbox_event(&mut self, event: &InboxEvent) -> Result<(), StoreError>;
    /// One event (any organization).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn inbox_event(&mut self, id: &str) -> Result<Option<InboxEvent>, StoreError>;
    /// Events of an organization (`None`: of every organization, for operators), newest first
    /// by arrival, optionally of one status, at most `limit`, received before `before`.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn list_inbox_events(
        &mut self,
        org: Option<OrgId>,
        status: Option<InboxStatus>,
        before: Option<OffsetDateTime>,
        limit: i64,
    ) -> Result<Vec<InboxEvent>, StoreError>;
}

/// Outbound webhooks: endpoints, the outbox, deliveries.
pub trait OutboundRepo {
    /// Inserts an endpoint.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_endpoint(&mut self, endpoint: &WebhookEndpoint) -> Result<(), StoreError>;
    /// Replaces an endpoint's fields.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn update_endpoint(&mut self, endpoint: &WebhookEndpoint) -> Result<(), StoreError>;
    /// Deletes an endpoint and its deliveries.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn delete_endpoint(&mut self, org: OrgId, id: WebhookEndpointId) -> Result<bool, StoreError>;
    /// An endpoint of the organization.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn endpoint(&mut self, org: OrgId, id: WebhookEndpointId) -> Result<Option<WebhookEndpoint>, StoreError>;
    /// [`OutboundRepo::endpoint`] holding the row locked until the transaction ends, so the
    /// worker's failure counting, a rotation and a PATCH never overwrite each other.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn endpoint_for_update(&mut self, org: OrgId, id: WebhookEndpointId) -> Result<Option<WebhookEndpoint>, StoreError> {
        self.endpoint(org, id)
    }
    /// The organization's endpoints, newest first.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn endpoints(&mut self, org: OrgId) -> Result<Vec<WebhookEndpoint>, StoreError>;
    /// Inserts outbox events (one statement for many, where the store can).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_outbox_events(&mut self, events: &[OutboxEvent]) -> Result<(), StoreError>;
    /// Inserts an outbox event.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_outbox_event(&mut self, event: &OutboxEvent) -> Result<(), StoreError> {
        self.insert_outbox_events(std::slice::from_ref(event))
    }
    /// Inserts deliveries (one statement for many, where the store can); their outbox events
    /// must exist.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_deliveries(&mut self, deliveries: &[Delivery]) -> Result<(), StoreError>;
    /// Inserts a delivery.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_delivery(&mut self, delivery: &Delivery) -> Result<(), StoreError> {
        self.insert_deliveries(std::slice::from_ref(delivery))
    }
    /// Replaces a delivery's state.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn update_delivery(&mut self, delivery: &Delivery) -> Result<(), StoreError>;
    /// A delivery of the organization.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn delivery(&mut self, org: OrgId, id: DeliveryId) -> Result<Option<Delivery>, StoreError>;
    /// [`OutboundRepo::delivery`] holding the row locked until the transaction ends.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn delivery_for_update(&mut self, org: OrgId, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        self.delivery(org, id)
    }
    /// An endpoint's deliveries, newest first, at most `page.fetch_limit()` rows.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn deliveries_of(&mut self, org: OrgId, endpoint: WebhookEndpointId, page: &PageRequest) -> Result<Vec<Delivery>, StoreError>;
    /// Takes up to `limit` pending deliveries due at `now` (of enabled endpoints) not held by
    /// another worker, holding them until `lease_until` (`FOR UPDATE SKIP LOCKED`).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn claim_deliveries(&mut self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: i64) -> Result<Vec<Delivery>, StoreError>;
    /// Extends the lease of the given deliveries still `Pending` and held to `lease_until`.
    /// Returns how many were renewed.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn renew_delivery_leases(&mut self, ids: &[DeliveryId], lease_until: OffsetDateTime) -> Result<usize, StoreError>;
    /// How many deliveries of enabled endpoints are `Pending`, and the oldest `next_attempt_at`
    /// among those due at `now`.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn delivery_depth(&mut self, now: OffsetDateTime) -> Result<(u64, Option<OffsetDateTime>), StoreError>;
    /// An endpoint by id in any organization (the delivery worker's lookup).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn endpoint_any_org(&mut self, id: WebhookEndpointId) -> Result<Option<WebhookEndpoint>, StoreError>;
}

/// The audit log.
pub trait AuditRepo {
    /// Appends entries (one statement for many, where the store can).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn append_audits(&mut self, entries: &[AuditEntry]) -> Result<(), StoreError>;
    /// Appends an entry.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn append_audit(&mut self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.append_audits(std::slice::from_ref(entry))
    }
    /// The organization's entries, newest first (for tests and the future audit API).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn audit_entries(&mut self, org: OrgId, limit: i64) -> Result<Vec<AuditEntry>, StoreError>;
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
    OrgRepo + ProgramRepo + AffiliateRepo + CouponRepo + ConversionRepo + InboxRepo + OutboundRepo + AuditRepo + Savepoints
{
}
impl<T: OrgRepo + ProgramRepo + AffiliateRepo + CouponRepo + ConversionRepo + InboxRepo + OutboundRepo + AuditRepo + Savepoints> Tx for T {}

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
