//! The storage contract: one suite, written once against the storage port
//! ([`UnitOfWork`] + [`Tx`]), that every store implementation must pass — the in-memory fake
//! of `rekomi-fakes` and `PgStore` of `rekomi-postgres` alike (in the manner of arrow-rs'
//! object_store). `tests/store_contract.rs` turns each function listed in
//! [`storage_contract!`](crate::storage_contract) into one test per backend.
//!
//! Each function takes an empty store, seeds what it needs and asserts what the port's
//! documentation promises: ordering (newest first by id), keyset pages (`fetch_limit()` rows
//! with `id < after`), which reads see provisioning rows (Stripe id `None`) and deleted
//! affiliates, the named unique and foreign-key constraints, tenant isolation (another
//! organization's id reads as absent), and real rollback.
//!
//! Every constraint violation is provoked in a transaction of its own: after a violation
//! PostgreSQL aborts the transaction, so nothing else can run in it.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]

use std::fmt::Debug;

use rekomi_domain::actor::AuditActor;
use rekomi_domain::affiliate::{AffiliateStatus, Email};
use rekomi_domain::audit::{affiliate_snapshot, program_snapshot};
use rekomi_domain::coupon::{CodeRestrictions, CouponCode};
use rekomi_domain::money::Money;
use rekomi_domain::org::{hash_api_key, ApiKeyScope, OrgUsage};
use rekomi_domain::page::{Page, PageRequest};
use rekomi_domain::plan::{PlanTier, SubscriptionStatus};
use rekomi_domain::ports::store::{constraints, AffiliateFilter, CouponSelector};
use rekomi_domain::ports::{transact, CouponDuration, DiscountSpec, StoreError, Tx, UnitOfWork};
use rekomi_domain::program::{AttributionModel, Commission, CommissionModel, CommissionType, Hundredths, NetworkVisibility, ProgramSlug};
use time::Duration;
use uuid::Uuid;

use self::fixtures::*;

/// Calls `$callback! { name, … }` with the name of every contract function, so the list lives
/// in one place and each backend's test file generates one test per name.
#[macro_export]
macro_rules! storage_contract {
    ($callback:ident) => {
        $callback! {
            an_organization_round_trips_by_id,
            an_organization_handle_is_unique,
            an_organization_links_and_unlinks_its_stripe_account,
            an_api_key_is_found_by_its_hash_until_revoked,
            org_usage_counts_live_affiliates_and_unarchived_programs,
            a_program_round_trips_and_every_field_updates,
            a_program_slug_is_unique_per_organization_even_once_archived,
            archived_programs_stay_readable_but_leave_the_list,
            program_pages_run_newest_first_without_skips_or_repeats,
            an_affiliate_round_trips_and_every_field_updates,
            a_deleted_affiliate_disappears_and_frees_its_email,
            an_email_joins_a_program_once,
            affiliate_lists_filter_by_program_status_and_text,
            affiliate_pages_run_newest_first_without_skips_or_repeats,
            an_affiliate_side_user_owns_its_linked_rows_and_the_unlinked_rows_with_its_email,
            links_come_back_default_first_for_the_affiliates_asked,
            a_link_slug_is_unique_per_organization_regardless_of_case,
            a_campaign_coupon_round_trips_updates_and_deletes,
            provisioning_campaign_coupons_are_readable_but_not_listed,
            unprovisioned_campaign_coupons_span_organizations_and_respect_the_cutoff,
            a_campaign_coupon_with_codes_cannot_be_deleted,
            an_affiliate_coupon_round_trips_updates_and_deletes,
            a_code_is_unique_per_organization_regardless_of_case,
            the_same_code_may_live_in_two_organizations,
            an_affiliate_coupon_is_found_by_code_in_any_case_and_by_stripe_id,
            affiliate_coupons_list_by_each_selector_newest_first,
            a_campaign_coupon_has_codes_once_any_code_exists,
            unprovisioned_affiliate_coupons_span_organizations_and_respect_the_cutoff,
            audit_entries_come_back_newest_first_per_organization,
            no_getter_reveals_another_organizations_rows,
            no_write_reaches_into_another_organization,
            a_row_cannot_point_into_another_organization,
            a_failed_transaction_leaves_nothing_behind,
            a_conflict_rolls_back_the_writes_before_it,
            the_store_answers_pings,
        }
    };
}

/// Foreign-key constraint names of the migrations. Use cases do not branch on them (so they
/// are not in [`constraints`]), but every store reports them the same way.
pub mod foreign_keys {
    /// An affiliate's program is in the affiliate's organization.
    pub const AFFILIATE_PROGRAM: &str = "affiliates_program_fkey";
    /// A link's affiliate is in the link's organization.
    pub const LINK_AFFILIATE: &str = "affiliate_links_affiliate_fkey";
    /// A campaign coupon's program is in the coupon's organization.
    pub const CAMPAIGN_COUPON_PROGRAM: &str = "campaign_coupons_program_fkey";
    /// An affiliate coupon's affiliate is in the coupon's organization.
    pub const AFFILIATE_COUPON_AFFILIATE: &str = "affiliate_coupons_affiliate_fkey";
    /// An affiliate coupon's campaign coupon is in the coupon's organization (and a campaign
    /// coupon with codes cannot be deleted).
    pub const AFFILIATE_COUPON_CAMPAIGN_COUPON: &str = "affiliate_coupons_campaign_coupon_fkey";
}

/// Test data: entities built with every optional field set (so round trips cover every
/// column), fixed timestamps, and ids from small integers (`Uuid::from_u128`), which sort as
/// the integers do, so a larger number is a newer row.
pub mod fixtures {
    use rekomi_domain::actor::AuditActor;
    use rekomi_domain::affiliate::{Affiliate, AffiliateLink, AffiliateSource, AffiliateStatus, Email, LinkFormat};
    use rekomi_domain::audit::AuditEntry;
    use rekomi_domain::coupon::{AffiliateCoupon, CampaignCoupon, CodeRestrictions, CouponCode};
    use rekomi_domain::money::{Currency, Money};
    use rekomi_domain::org::{hash_api_key, ApiKey, ApiKeyScope, Handle, Organization};
    use rekomi_domain::plan::{PlanTier, SubscriptionStatus};
    use rekomi_domain::ports::{transact, CouponDuration, DiscountSpec, StoreError, Tx, UnitOfWork};
    use rekomi_domain::program::{
        AttributionModel, Commission, CommissionModel, CommissionType, Hundredths, NetworkVisibility, Program, ProgramSlug,
    };
    use time::macros::datetime;
    use time::{Duration, OffsetDateTime};
    use uuid::Uuid;

    /// The instant every fixture is created at (whole seconds: PostgreSQL keeps microseconds).
    pub const T0: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    /// The id numbered `n`.
    pub fn id<T: From<Uuid>>(n: u128) -> T {
        T::from(Uuid::from_u128(n))
    }

    /// A supported currency.
    pub fn currency(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    /// An organization numbered `n`.
    pub fn org(n: u128, handle: &str) -> Organization {
        Organization {
            id: id(n),
            name: format!("{handle} Inc."),
            handle: Handle::parse(handle).unwrap(),
            billing_email: Some(format!("billing@{handle}.test")),
            timezone: "Europe/Paris".to_owned(),
            plan_tier: PlanTier::Growth,
            subscription_status: SubscriptionStatus::Trialing,
            trial_ends_at: Some(T0 + Duration::days(14)),
            home_currency: currency("EUR"),
            payout_grace_days: 14,
            stripe_account_id: Some(format!("acct_{n}")),
            created_at: T0,
        }
    }

    /// An unrevoked read-write key of `org` whose secret is `secret`.
    pub fn api_key(org: &Organization, n: u128, secret: &str) -> ApiKey {
        ApiKey {
            id: id(n),
            org_id: org.id,
            scope: ApiKeyScope::ReadWrite,
            prefix: secret.chars().take(12).collect(),
            hash: hash_api_key(secret),
            created_at: T0,
            revoked_at: None,
        }
    }

    /// An active program of `org`.
    pub fn program(org: &Organization, n: u128, slug: &str) -> Program {
        Program {
            id: id(n),
            org_id: org.id,
            name: format!("Program {slug}"),
            slug: ProgramSlug::parse(slug).unwrap(),
            description: Some("Earn on every sale you refer.".to_owned()),
            terms_url: Some("https://brand.test/terms".to_owned()),
            is_active: true,
            default_commission: Commission::new(CommissionType::Percentage, Hundredths::new(20_50), "v").unwrap(),
            default_commission_model: CommissionModel::Cps,
            cookie_window_days: 30,
            recurring_months: Some(12),
            recurring_delay_invoices: 1,
            attribution_model: AttributionModel::LastTouch,
            auto_approve: false,
            custom_domain: None,
            custom_domain_verified: false,
            network_visibility: NetworkVisibility::Private,
            is_publicly_discoverable: true,
            created_at: T0,
            updated_at: T0,
            archived_at: None,
        }
    }

    /// An approved, unlinked affiliate of `program`.
    pub fn affiliate(program: &Program, n: u128, email: &str) -> Affiliate {
        Affiliate {
            id: id(n),
            org_id: program.org_id,
            program_id: program.id,
            email: Email::parse("email", email).unwrap(),
            full_name: Some("Jane Doe".to_owned()),
            status: AffiliateStatus::Approved,
            custom_commission: Some(Commission::new(CommissionType::Fixed, Hundredths::new(5_00), "v").unwrap()),
            tags: vec!["youtube".to_owned(), "vip".to_owned()],
            notes: Some("met at the summit".to_owned()),
            source: AffiliateSource::Invite,
            user_id: None,
            rejection_reason: None,
            applied_at: T0 - Duration::days(2),
            approved_at: Some(T0 - Duration::days(1)),
            created_at: T0,
            updated_at: T0,
        }
    }

    /// A link of `affiliate`.
    pub fn link(affiliate: &Affiliate, n: u128, slug: &str, is_default: bool) -> AffiliateLink {
        AffiliateLink {
            id: id(n),
            org_id: affiliate.org_id,
            affiliate_id: affiliate.id,
            slug: slug.to_owned(),
            custom_alias: (!is_default).then(|| slug.to_owned()),
            is_default,
            format: LinkFormat::Query,
            created_at: T0,
        }
    }

    /// A 20 % campaign coupon of `program`; `stripe_coupon_id` `None` is a provisioning row.
    pub fn campaign_coupon(program: &Program, n: u128, stripe_coupon_id: Option<&str>) -> CampaignCoupon {
        CampaignCoupon {
            id: id(n),
            org_id: program.org_id,
            program_id: program.id,
            name: format!("Spring {n}"),
            discount: DiscountSpec::PercentOff(20),
            duration: CouponDuration::Repeating(3),
            max_redemptions_per_code: Some(100),
            expires_at: Some(T0 + Duration::days(90)),
            allow_affiliate_self_mint: true,
            overrides_click_attribution: false,
            is_active: true,
            stripe_coupon_id: stripe_coupon_id.map(str::to_owned),
            created_at: T0,
            updated_at: T0,
            archived_at: None,
        }
    }

    /// A code of `affiliate` under `coupon`; `stripe_id` `None` is a provisioning row.
    pub fn affiliate_coupon(
        affiliate: &Affiliate,
        coupon: &CampaignCoupon,
        n: u128,
        code: &str,
        stripe_id: Option<&str>,
    ) -> AffiliateCoupon {
        AffiliateCoupon {
            id: id(n),
            org_id: affiliate.org_id,
            program_id: affiliate.program_id,
            affiliate_id: affiliate.id,
            campaign_coupon_id: coupon.id,
            code: CouponCode::parse(code).unwrap(),
            stripe_promotion_code_id: stripe_id.map(str::to_owned),
            is_active: true,
            max_redemptions: Some(10),
            expires_at: Some(T0 + Duration::days(30)),
            restrictions: CodeRestrictions {
                first_time_order: true,
                minimum_amount: Some(Money::new(50_00, currency("USD"))),
                limit_to_customers: true,
                customer_id: Some("cus_123".to_owned()),
                limit_to_affiliate: false,
            },
            times_redeemed: 0,
            last_redeemed_at: None,
            is_auto_generated: false,
            self_minted: false,
            created_at: T0,
            updated_at: T0,
            revoked_at: None,
        }
    }

    /// An audit entry of `org` recording `action` on `program`.
    pub fn audit(org: &Organization, n: u128, actor: AuditActor, action: &str, program: &Program) -> AuditEntry {
        AuditEntry {
            id: id(n),
            org_id: org.id,
            actor,
            action: action.to_owned(),
            entity_type: "program",
            entity_id: program.id.to_string(),
            before: None,
            after: Some(rekomi_domain::audit::program_snapshot(program)),
            created_at: T0,
        }
    }

    /// Rows to insert, in dependency order.
    #[derive(Clone, Default)]
    pub struct Seed {
        /// Organizations.
        pub orgs: Vec<Organization>,
        /// API keys.
        pub api_keys: Vec<ApiKey>,
        /// Programs.
        pub programs: Vec<Program>,
        /// Affiliates.
        pub affiliates: Vec<Affiliate>,
        /// Links.
        pub links: Vec<AffiliateLink>,
        /// Campaign coupons.
        pub campaign_coupons: Vec<CampaignCoupon>,
        /// Affiliate coupons.
        pub affiliate_coupons: Vec<AffiliateCoupon>,
        /// Audit entries.
        pub audit: Vec<AuditEntry>,
    }

    impl Seed {
        /// Inserts every row through `tx`.
        ///
        /// # Errors
        /// The first write the store refuses.
        pub fn insert(&self, tx: &mut dyn Tx) -> Result<(), StoreError> {
            self.orgs.iter().try_for_each(|r| tx.insert_org(r))?;
            self.api_keys.iter().try_for_each(|r| tx.insert_api_key(r))?;
            self.programs.iter().try_for_each(|r| tx.insert_program(r))?;
            self.affiliates.iter().try_for_each(|r| tx.insert_affiliate(r))?;
            self.links.iter().try_for_each(|r| tx.insert_link(r))?;
            self.campaign_coupons.iter().try_for_each(|r| tx.insert_campaign_coupon(r))?;
            self.affiliate_coupons.iter().try_for_each(|r| tx.insert_affiliate_coupon(r))?;
            self.audit.iter().try_for_each(|r| tx.append_audit(r))
        }
    }

    /// Inserts `seed` in one committed transaction.
    pub async fn seed(store: &dyn UnitOfWork, seed: Seed) {
        let result = transact(store, move |tx| seed.insert(tx)).await;
        if let Err(e) = result {
            panic!("seeding failed: {e:?}");
        }
    }
}

/// Runs `f` in one transaction and returns its value, failing the test if the store refuses.
async fn commit<R, F>(store: &dyn UnitOfWork, f: F) -> R
where
    R: Send + 'static,
    F: FnOnce(&mut dyn Tx) -> Result<R, StoreError> + Send + 'static,
{
    match transact(store, f).await {
        Ok(value) => value,
        Err(e) => panic!("transaction failed: {e:?}"),
    }
}

/// Runs `f` in one transaction and returns what happened.
async fn attempt<R, F>(store: &dyn UnitOfWork, f: F) -> Result<R, StoreError>
where
    R: Send + 'static,
    F: FnOnce(&mut dyn Tx) -> Result<R, StoreError> + Send + 'static,
{
    transact(store, f).await
}

#[track_caller]
fn assert_conflict<T: Debug>(result: Result<T, StoreError>, constraint: &str) {
    match result {
        Err(e) if e.is_conflict_on(constraint) => {}
        other => panic!("expected a conflict on {constraint}, got {other:?}"),
    }
}

fn uuids<T>(rows: &[T], id_of: fn(&T) -> Uuid) -> Vec<Uuid> {
    rows.iter().map(id_of).collect()
}

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}

fn nums(ns: &[u128]) -> Vec<Uuid> {
    ns.iter().map(|n| Uuid::from_u128(*n)).collect()
}

fn page(take: i64, after: Option<Uuid>) -> PageRequest {
    PageRequest::parse(Some(take), after).unwrap()
}

fn program_uuid(p: &rekomi_domain::program::Program) -> Uuid {
    p.id.as_uuid()
}

fn affiliate_uuid(a: &rekomi_domain::affiliate::Affiliate) -> Uuid {
    a.id.as_uuid()
}

fn campaign_coupon_uuid(c: &rekomi_domain::coupon::CampaignCoupon) -> Uuid {
    c.id.as_uuid()
}

fn affiliate_coupon_uuid(c: &rekomi_domain::coupon::AffiliateCoupon) -> Uuid {
    c.id.as_uuid()
}

/// Reads every page of a list `take` rows at a time, checking that no call returns more than
/// `fetch_limit()` rows and that every page but the last is full; returns the pages' ids.
async fn read_pages<T, F>(store: &dyn UnitOfWork, take: i64, id_of: fn(&T) -> Uuid, fetch: F) -> Vec<Vec<Uuid>>
where
    T: Send + 'static,
    F: Fn(&mut dyn Tx, &PageRequest) -> Result<Vec<T>, StoreError> + Clone + Send + 'static,
{
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let request = page(take, after);
        let f = fetch.clone();
        let rows = commit(store, move |tx| f(tx, &request)).await;
        assert!(rows.len() as i64 <= request.fetch_limit(), "a store returned more than fetch_limit() rows");
        let got = Page::from_rows(rows, &request, id_of);
        pages.push(got.items.iter().map(id_of).collect::<Vec<_>>());
        match got.next_after {
            Some(next) => {
                assert_eq!(got.items.len() as i64, take, "only the last page may be short");
                after = Some(next);
            }
            None => break,
        }
        assert!(pages.len() < 100, "the pages never end");
    }
    pages
}

// ---------------------------------------------------------------------------------------------
// Organizations and API keys
// ---------------------------------------------------------------------------------------------

/// Every field of an organization survives storage, optional ones set or not.
pub async fn an_organization_round_trips_by_id(store: &dyn UnitOfWork) {
    let full = org(1, "acme");
    let mut bare = org(2, "bare-co");
    bare.billing_email = None;
    bare.trial_ends_at = None;
    bare.stripe_account_id = None;
    bare.plan_tier = PlanTier::Pro;
    bare.subscription_status = SubscriptionStatus::None;
    bare.home_currency = currency("JPY");
    bare.payout_grace_days = 0;
    seed(store, Seed { orgs: vec![full.clone(), bare.clone()], ..Seed::default() }).await;

    let (got_full, got_bare, missing) = commit(store, |tx| Ok((tx.org(id(1))?, tx.org(id(2))?, tx.org(id(3))?))).await;
    assert_eq!(got_full, Some(full));
    assert_eq!(got_bare, Some(bare));
    assert_eq!(missing, None);
}

/// `set_stripe_account` links and unlinks one organization and reports a missing one.
pub async fn an_organization_links_and_unlinks_its_stripe_account(store: &dyn UnitOfWork) {
    let mut acme = org(1, "acme");
    acme.stripe_account_id = None;
    let other = org(2, "globex");
    seed(store, Seed { orgs: vec![acme, other.clone()], ..Seed::default() }).await;
    assert!(commit(store, |tx| tx.set_stripe_account(id(1), Some("acct_linked"))).await);
    assert_eq!(commit(store, |tx| tx.org(id(1))).await.and_then(|o| o.stripe_account_id).as_deref(), Some("acct_linked"));
    assert_eq!(commit(store, |tx| tx.org(id(2))).await, Some(other), "another organization is untouched");
    assert!(commit(store, |tx| tx.set_stripe_account(id(1), None)).await);
    assert_eq!(commit(store, |tx| tx.org(id(1))).await.and_then(|o| o.stripe_account_id), None);
    assert!(!commit(store, |tx| tx.set_stripe_account(id(9), Some("acct_x"))).await);
}

/// Two organizations cannot share a handle.
pub async fn an_organization_handle_is_unique(store: &dyn UnitOfWork) {
    seed(store, Seed { orgs: vec![org(1, "acme")], ..Seed::default() }).await;
    let result = attempt(store, |tx| tx.insert_org(&org(2, "acme"))).await;
    assert_conflict(result, constraints::ORG_HANDLE);
    assert_eq!(commit(store, |tx| tx.org(id(2))).await, None);
}

/// `api_key_by_hash` finds a key by the hash of its secret, in any organization, and never a
/// revoked one.
pub async fn an_api_key_is_found_by_its_hash_until_revoked(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let live = api_key(&a, 700, "rk_live_live_secret");
    let mut read_only = api_key(&b, 701, "rk_live_read_only");
    read_only.scope = ApiKeyScope::Read;
    let mut revoked = api_key(&a, 702, "rk_live_revoked_secret");
    revoked.revoked_at = Some(T0 + Duration::hours(1));
    seed(store, Seed { orgs: vec![a, b], api_keys: vec![live.clone(), read_only.clone(), revoked], ..Seed::default() }).await;

    let (got_live, got_read_only, got_revoked, unknown) = commit(store, |tx| {
        Ok((
            tx.api_key_by_hash(&hash_api_key("rk_live_live_secret"))?,
            tx.api_key_by_hash(&hash_api_key("rk_live_read_only"))?,
            tx.api_key_by_hash(&hash_api_key("rk_live_revoked_secret"))?,
            tx.api_key_by_hash(&hash_api_key("rk_live_never_issued"))?,
        ))
    })
    .await;
    assert_eq!(got_live, Some(live));
    assert_eq!(got_read_only, Some(read_only));
    assert_eq!(got_revoked, None, "a revoked key authenticates nothing");
    assert_eq!(unknown, None);
}

/// The billing snapshot counts the organization's live affiliates and unarchived programs.
pub async fn org_usage_counts_live_affiliates_and_unarchived_programs(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let live = program(&a, 100, "spring");
    let mut archived = program(&a, 101, "winter");
    archived.archived_at = Some(T0);
    let elsewhere = program(&b, 102, "spring");
    seed(
        store,
        Seed {
            orgs: vec![a.clone(), b.clone()],
            programs: vec![live.clone(), archived.clone(), elsewhere.clone()],
            affiliates: vec![
                affiliate(&live, 200, "jane@creator.test"),
                affiliate(&live, 201, "bob@creator.test"),
                affiliate(&archived, 202, "ann@creator.test"),
                affiliate(&elsewhere, 203, "jane@creator.test"),
            ],
            ..Seed::default()
        },
    )
    .await;
    commit(store, |tx| tx.delete_affiliate(id(1), id(201), T0).map(drop)).await;

    let (usage_a, usage_b, usage_none) = commit(store, |tx| Ok((tx.org_usage(id(1))?, tx.org_usage(id(2))?, tx.org_usage(id(3))?))).await;
    assert_eq!(usage_a, OrgUsage { affiliates: 2, campaigns: 1 });
    assert_eq!(usage_b, OrgUsage { affiliates: 1, campaigns: 1 });
    assert_eq!(usage_none, OrgUsage { affiliates: 0, campaigns: 0 });
}

// ---------------------------------------------------------------------------------------------
// Programs
// ---------------------------------------------------------------------------------------------

/// Every field of a program survives storage, and `update_program` replaces every field.
pub async fn a_program_round_trips_and_every_field_updates(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let original = program(&a, 100, "spring");
    seed(store, Seed { orgs: vec![a], programs: vec![original.clone()], ..Seed::default() }).await;
    assert_eq!(commit(store, |tx| tx.program(id(1), id(100))).await, Some(original.clone()));

    let mut changed = original;
    changed.name = "Spring 2026".to_owned();
    changed.slug = ProgramSlug::parse("spring-2026").unwrap();
    changed.description = None;
    changed.terms_url = None;
    changed.is_active = false;
    changed.default_commission = Commission::new(CommissionType::Fixed, Hundredths::new(12_50), "v").unwrap();
    changed.default_commission_model = CommissionModel::Cpl;
    changed.cookie_window_days = 365;
    changed.recurring_months = None;
    changed.recurring_delay_invoices = 0;
    changed.attribution_model = AttributionModel::FirstTouch;
    changed.auto_approve = true;
    changed.custom_domain = Some("go.acme.test".to_owned());
    changed.custom_domain_verified = true;
    changed.network_visibility = NetworkVisibility::InviteOnly;
    changed.is_publicly_discoverable = false;
    changed.updated_at = T0 + Duration::hours(1);
    let update = changed.clone();
    commit(store, move |tx| tx.update_program(&update)).await;
    assert_eq!(commit(store, |tx| tx.program(id(1), id(100))).await, Some(changed));
}

/// A slug names one program per organization, on insert and on update, archived programs
/// included; another organization may use it.
pub async fn a_program_slug_is_unique_per_organization_even_once_archived(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let spring = program(&a, 100, "spring");
    let summer = program(&a, 101, "summer");
    seed(store, Seed { orgs: vec![a.clone(), b.clone()], programs: vec![spring.clone(), summer.clone()], ..Seed::default() }).await;

    let dup = program(&a, 102, "spring");
    assert_conflict(attempt(store, move |tx| tx.insert_program(&dup)).await, constraints::PROGRAM_SLUG);

    let mut renamed = summer.clone();
    renamed.slug = ProgramSlug::parse("spring").unwrap();
    assert_conflict(attempt(store, move |tx| tx.update_program(&renamed)).await, constraints::PROGRAM_SLUG);
    assert_eq!(commit(store, |tx| tx.program(id(1), id(101))).await, Some(summer));

    let other_org = program(&b, 103, "spring");
    commit(store, move |tx| tx.insert_program(&other_org)).await;

    let mut archived = spring;
    archived.archived_at = Some(T0 + Duration::hours(1));
    commit(store, move |tx| tx.update_program(&archived)).await;
    let after_archive = program(&a, 104, "spring");
    assert_conflict(attempt(store, move |tx| tx.insert_program(&after_archive)).await, constraints::PROGRAM_SLUG);
}

/// An archived program is still read by id but no longer listed.
pub async fn archived_programs_stay_readable_but_leave_the_list(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let live = program(&a, 100, "spring");
    let mut archived = program(&a, 101, "winter");
    archived.archived_at = Some(T0 + Duration::hours(1));
    archived.is_active = false;
    seed(store, Seed { orgs: vec![a], programs: vec![live.clone(), archived.clone()], ..Seed::default() }).await;

    let (listed, got) = commit(store, |tx| Ok((tx.list_programs(id(1), &PageRequest::first())?, tx.program(id(1), id(101))?))).await;
    assert_eq!(listed, vec![live]);
    assert_eq!(got, Some(archived));
}

/// Program pages come newest first by id; following the cursor visits every program once even
/// when a program is created between two page reads.
pub async fn program_pages_run_newest_first_without_skips_or_repeats(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let mut programs: Vec<_> = (100..107).map(|n| program(&a, n, &format!("p{n}"))).collect();
    programs[3].archived_at = Some(T0); // 103
    programs.push(program(&b, 150, "p150"));
    seed(store, Seed { orgs: vec![a.clone(), b], programs, ..Seed::default() }).await;

    let first = commit(store, |tx| tx.list_programs(id(1), &page(2, None))).await;
    assert_eq!(first.len(), 3, "a store fetches take + 1 rows to tell whether more exist");
    let first = Page::from_rows(first, &page(2, None), program_uuid);
    assert_eq!(uuids(&first.items, program_uuid), nums(&[106, 105]));

    // A newer program appears between two page reads: later pages are unaffected.
    let newcomer = program(&a, 107, "p107");
    commit(store, move |tx| tx.insert_program(&newcomer)).await;

    let mut seen = uuids(&first.items, program_uuid);
    let mut after = first.next_after;
    while let Some(cursor) = after {
        let request = page(2, Some(cursor));
        let rows = commit(store, move |tx| tx.list_programs(id(1), &request)).await;
        let next = Page::from_rows(rows, &request, program_uuid);
        seen.extend(uuids(&next.items, program_uuid));
        after = next.next_after;
    }
    assert_eq!(seen, nums(&[106, 105, 104, 102, 101, 100]));

    let all = read_pages(store, 50, program_uuid, |tx, p| tx.list_programs(id(1), p)).await;
    assert_eq!(all, vec![nums(&[107, 106, 105, 104, 102, 101, 100])]);
}

// ---------------------------------------------------------------------------------------------
// Affiliates
// ---------------------------------------------------------------------------------------------

/// Every field of an affiliate survives storage, and `update_affiliate` replaces every field.
pub async fn an_affiliate_round_trips_and_every_field_updates(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let original = affiliate(&p, 200, "jane@creator.test");
    seed(store, Seed { orgs: vec![a], programs: vec![p], affiliates: vec![original.clone()], ..Seed::default() }).await;
    assert_eq!(commit(store, |tx| tx.affiliate(id(1), id(200))).await, Some(original.clone()));

    let mut changed = original;
    changed.email = Email::parse("email", "jane.doe@creator.test").unwrap();
    changed.full_name = None;
    changed.status = AffiliateStatus::Rejected;
    changed.custom_commission = None;
    changed.tags = Vec::new();
    changed.notes = None;
    changed.user_id = Some("user_jane".to_owned());
    changed.rejection_reason = Some("audience mismatch".to_owned());
    changed.approved_at = None;
    changed.updated_at = T0 + Duration::hours(1);
    let update = changed.clone();
    commit(store, move |tx| tx.update_affiliate(&update)).await;
    assert_eq!(commit(store, |tx| tx.affiliate(id(1), id(200))).await, Some(changed));
}

/// A deleted affiliate is gone from every read, is deleted once, and no longer holds its
/// email in the program.
pub async fn a_deleted_affiliate_disappears_and_frees_its_email(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let mut jane = affiliate(&p, 200, "jane@creator.test");
    jane.user_id = Some("user_jane".to_owned());
    seed(store, Seed { orgs: vec![a], programs: vec![p.clone()], affiliates: vec![jane], ..Seed::default() }).await;

    let (first, second) =
        commit(store, |tx| Ok((tx.delete_affiliate(id(1), id(200), T0)?, tx.delete_affiliate(id(1), id(200), T0)?))).await;
    assert!(first, "the first delete removes the affiliate");
    assert!(!second, "a deleted affiliate cannot be deleted again");

    let email = Email::parse("email", "jane@creator.test").unwrap();
    let (got, listed, owned) = commit(store, move |tx| {
        Ok((
            tx.affiliate(id(1), id(200))?,
            tx.list_affiliates(id(1), &AffiliateFilter::default(), &PageRequest::first())?,
            tx.affiliates_of_user("user_jane", &email)?,
        ))
    })
    .await;
    assert_eq!(got, None);
    assert!(listed.is_empty());
    assert!(owned.is_empty());

    let again = affiliate(&p, 201, "jane@creator.test");
    commit(store, move |tx| tx.insert_affiliate(&again)).await;
    assert!(commit(store, |tx| tx.affiliate(id(1), id(201))).await.is_some());
}

/// An email joins a program once; the same person may join another program.
pub async fn an_email_joins_a_program_once(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let (spring, summer) = (program(&a, 100, "spring"), program(&a, 101, "summer"));
    seed(
        store,
        Seed {
            orgs: vec![a],
            programs: vec![spring.clone(), summer.clone()],
            affiliates: vec![affiliate(&spring, 200, "jane@creator.test"), affiliate(&spring, 201, "bob@creator.test")],
            ..Seed::default()
        },
    )
    .await;

    let dup = affiliate(&spring, 202, "jane@creator.test");
    assert_conflict(attempt(store, move |tx| tx.insert_affiliate(&dup)).await, constraints::AFFILIATE_EMAIL);

    let mut bob = affiliate(&spring, 201, "bob@creator.test");
    bob.email = Email::parse("email", "jane@creator.test").unwrap();
    assert_conflict(attempt(store, move |tx| tx.update_affiliate(&bob)).await, constraints::AFFILIATE_EMAIL);

    let elsewhere = affiliate(&summer, 203, "jane@creator.test");
    commit(store, move |tx| tx.insert_affiliate(&elsewhere)).await;
}

/// The affiliate list filters by program, by status and by a case-insensitive piece of the
/// email or full name (taken literally), alone or together, newest first.
pub async fn affiliate_lists_filter_by_program_status_and_text(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (spring, summer, foreign) = (program(&a, 100, "spring"), program(&a, 101, "summer"), program(&b, 102, "spring"));
    let jane = affiliate(&spring, 200, "jane@creator.test");
    let mut bob = affiliate(&spring, 201, "bob@mail.test");
    bob.full_name = Some("Bob Stone".to_owned());
    bob.status = AffiliateStatus::Pending;
    let mut ann = affiliate(&spring, 202, "ann_jones@mail.test");
    ann.full_name = None;
    let mut janet = affiliate(&summer, 203, "j.smith@creator.test");
    janet.full_name = Some("Janet Smith".to_owned());
    let mut outsider = affiliate(&foreign, 204, "jane@creator.test");
    outsider.full_name = Some("Jane Elsewhere".to_owned());
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![spring, summer, foreign],
            affiliates: vec![jane, bob, ann, janet, outsider],
            ..Seed::default()
        },
    )
    .await;

    let cases: Vec<(AffiliateFilter, Vec<u128>)> = vec![
        (AffiliateFilter::default(), vec![203, 202, 201, 200]),
        (AffiliateFilter { program_id: Some(id(100)), ..AffiliateFilter::default() }, vec![202, 201, 200]),
        (AffiliateFilter { status: Some(AffiliateStatus::Approved), ..AffiliateFilter::default() }, vec![203, 202, 200]),
        (AffiliateFilter { q: Some("JAN".to_owned()), ..AffiliateFilter::default() }, vec![203, 200]),
        (AffiliateFilter { q: Some("Stone".to_owned()), ..AffiliateFilter::default() }, vec![201]),
        (AffiliateFilter { q: Some("@MAIL.test".to_owned()), ..AffiliateFilter::default() }, vec![202, 201]),
        (AffiliateFilter { q: Some("_".to_owned()), ..AffiliateFilter::default() }, vec![202]),
        (AffiliateFilter { q: Some("%".to_owned()), ..AffiliateFilter::default() }, vec![]),
        (AffiliateFilter { program_id: Some(id(100)), status: Some(AffiliateStatus::Approved), q: Some("jane".to_owned()) }, vec![200]),
        (AffiliateFilter { program_id: Some(id(102)), ..AffiliateFilter::default() }, vec![]),
    ];
    for (filter, want) in cases {
        let f = filter.clone();
        let got = commit(store, move |tx| tx.list_affiliates(id(1), &f, &PageRequest::first())).await;
        assert_eq!(uuids(&got, affiliate_uuid), nums(&want), "filter {filter:?}");
    }
}

/// Affiliate pages come newest first and following the cursor visits every row once.
pub async fn affiliate_pages_run_newest_first_without_skips_or_repeats(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let affiliates: Vec<_> = (200..205).map(|n| affiliate(&p, n, &format!("a{n}@creator.test"))).collect();
    seed(store, Seed { orgs: vec![a], programs: vec![p], affiliates, ..Seed::default() }).await;
    commit(store, |tx| tx.delete_affiliate(id(1), id(202), T0).map(drop)).await;

    let pages = read_pages(store, 2, affiliate_uuid, |tx, p| {
        tx.list_affiliates(id(1), &AffiliateFilter { program_id: Some(id(100)), ..AffiliateFilter::default() }, p)
    })
    .await;
    assert_eq!(pages, vec![nums(&[204, 203]), nums(&[201, 200])]);
}

/// An affiliate-side user owns, in every organization, the rows linked to its user id and the
/// unlinked rows with its email — not a row with its email linked to someone else, nor a
/// deleted row.
pub async fn an_affiliate_side_user_owns_its_linked_rows_and_the_unlinked_rows_with_its_email(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (spring, summer, foreign) = (program(&a, 100, "spring"), program(&a, 101, "summer"), program(&b, 102, "spring"));
    let mut linked = affiliate(&spring, 200, "jane.work@creator.test");
    linked.user_id = Some("user_jane".to_owned());
    let unlinked_elsewhere = affiliate(&foreign, 201, "jane@creator.test");
    let mut linked_to_other = affiliate(&summer, 202, "jane@creator.test");
    linked_to_other.user_id = Some("user_impostor".to_owned());
    let stranger = affiliate(&summer, 203, "bob@creator.test");
    let mut deleted = affiliate(&foreign, 204, "jane.old@creator.test");
    deleted.user_id = Some("user_jane".to_owned());
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![spring, summer, foreign],
            affiliates: vec![linked.clone(), unlinked_elsewhere.clone(), linked_to_other, stranger, deleted],
            ..Seed::default()
        },
    )
    .await;
    commit(store, |tx| tx.delete_affiliate(id(2), id(204), T0).map(drop)).await;

    let email = Email::parse("email", "jane@creator.test").unwrap();
    let mut owned = commit(store, move |tx| tx.affiliates_of_user("user_jane", &email)).await;
    owned.sort_by_key(|a| a.id);
    assert_eq!(owned, vec![linked, unlinked_elsewhere]);
}

// ---------------------------------------------------------------------------------------------
// Links
// ---------------------------------------------------------------------------------------------

/// `links_of` returns the links of the affiliates asked for, default links first.
pub async fn links_come_back_default_first_for_the_affiliates_asked(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let (jane, bob, ann) =
        (affiliate(&p, 200, "jane@creator.test"), affiliate(&p, 201, "bob@creator.test"), affiliate(&p, 202, "ann@creator.test"));
    let links = vec![
        link(&jane, 300, "jane-extra", false),
        link(&jane, 301, "jane-doe-k3m9p", true),
        link(&bob, 302, "bob-extra", false),
        link(&bob, 303, "bob-stone-x7q2r", true),
        link(&ann, 304, "ann-jones-p4t8w", true),
    ];
    seed(store, Seed { orgs: vec![a], programs: vec![p], affiliates: vec![jane, bob, ann], links: links.clone(), ..Seed::default() }).await;

    let janes = commit(store, |tx| tx.links_of(id(1), &[id(200)])).await;
    assert_eq!(janes, vec![links[1].clone(), links[0].clone()]);

    let both = commit(store, |tx| tx.links_of(id(1), &[id(200), id(201)])).await;
    assert_eq!(sorted(both.iter().map(|l| l.id.as_uuid()).collect()), nums(&[300, 301, 302, 303]));
    let defaults_first = both.windows(2).all(|w| w[0].is_default || !w[1].is_default);
    assert!(defaults_first, "default links come first: {both:?}");

    assert!(commit(store, |tx| tx.links_of(id(1), &[])).await.is_empty());
}

/// A link slug is taken once per organization, whatever its case; another organization may
/// use it.
pub async fn a_link_slug_is_unique_per_organization_regardless_of_case(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (p, q) = (program(&a, 100, "spring"), program(&b, 101, "spring"));
    let (jane, bob) = (affiliate(&p, 200, "jane@creator.test"), affiliate(&q, 201, "bob@creator.test"));
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p, q],
            affiliates: vec![jane.clone(), bob.clone()],
            links: vec![link(&jane, 300, "jane-doe", true)],
            ..Seed::default()
        },
    )
    .await;

    let (exact, other_case, other_slug, other_org) = commit(store, |tx| {
        Ok((
            tx.link_slug_taken(id(1), "jane-doe")?,
            tx.link_slug_taken(id(1), "Jane-DOE")?,
            tx.link_slug_taken(id(1), "jane-doe-2")?,
            tx.link_slug_taken(id(2), "jane-doe")?,
        ))
    })
    .await;
    assert!(exact && other_case);
    assert!(!other_slug && !other_org);

    let shouting = link(&jane, 301, "JANE-DOE", false);
    assert_conflict(attempt(store, move |tx| tx.insert_link(&shouting)).await, constraints::LINK_SLUG);

    let elsewhere = link(&bob, 302, "jane-doe", true);
    commit(store, move |tx| tx.insert_link(&elsewhere)).await;
}

// ---------------------------------------------------------------------------------------------
// Campaign coupons
// ---------------------------------------------------------------------------------------------

/// Every field of a campaign coupon survives storage; `update_campaign_coupon` replaces every
/// field (a reservation becomes provisioned this way); `delete_campaign_coupon` removes it.
pub async fn a_campaign_coupon_round_trips_updates_and_deletes(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let mut reserved = campaign_coupon(&p, 400, None);
    reserved.discount = DiscountSpec::AmountOff(Money::new(5_00, currency("USD")));
    let mut forever = campaign_coupon(&p, 401, Some("coupon_forever"));
    forever.duration = CouponDuration::Forever;
    forever.max_redemptions_per_code = None;
    forever.expires_at = None;
    seed(store, Seed { orgs: vec![a], programs: vec![p], campaign_coupons: vec![reserved.clone(), forever.clone()], ..Seed::default() })
        .await;
    let (got_reserved, got_forever) =
        commit(store, |tx| Ok((tx.campaign_coupon(id(1), id(400))?, tx.campaign_coupon(id(1), id(401))?))).await;
    assert_eq!(got_reserved, Some(reserved.clone()));
    assert_eq!(got_forever, Some(forever));

    let mut changed = reserved;
    changed.stripe_coupon_id = Some("coupon_abc".to_owned());
    changed.name = "Spring sale".to_owned();
    changed.allow_affiliate_self_mint = false;
    changed.overrides_click_attribution = true;
    changed.is_active = false;
    changed.archived_at = Some(T0 + Duration::hours(2));
    changed.updated_at = T0 + Duration::hours(2);
    let update = changed.clone();
    commit(store, move |tx| tx.update_campaign_coupon(&update)).await;
    assert_eq!(commit(store, |tx| tx.campaign_coupon(id(1), id(400))).await, Some(changed));

    commit(store, |tx| tx.delete_campaign_coupon(id(1), id(400))).await;
    assert_eq!(commit(store, |tx| tx.campaign_coupon(id(1), id(400))).await, None);
    assert!(commit(store, |tx| tx.campaign_coupon(id(1), id(401))).await.is_some());
}

/// A campaign coupon still provisioning (no Stripe id) is read by id but not listed; the list
/// holds the program's provisioned coupons, newest first, page by page.
pub async fn provisioning_campaign_coupons_are_readable_but_not_listed(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let (spring, summer) = (program(&a, 100, "spring"), program(&a, 101, "summer"));
    let coupons = vec![
        campaign_coupon(&spring, 400, Some("coupon_400")),
        campaign_coupon(&spring, 401, Some("coupon_401")),
        campaign_coupon(&spring, 402, None),
        campaign_coupon(&summer, 403, Some("coupon_403")),
        campaign_coupon(&spring, 404, Some("coupon_404")),
    ];
    seed(store, Seed { orgs: vec![a], programs: vec![spring, summer], campaign_coupons: coupons.clone(), ..Seed::default() }).await;

    assert_eq!(commit(store, |tx| tx.campaign_coupon(id(1), id(402))).await, Some(coupons[2].clone()));
    let pages = read_pages(store, 2, campaign_coupon_uuid, |tx, p| tx.list_campaign_coupons(id(1), id(100), p)).await;
    assert_eq!(pages, vec![nums(&[404, 401]), nums(&[400])]);
}

/// The reconciler's scan returns unprovisioned campaign coupons of every organization created
/// strictly before the cutoff, at most `limit` of them.
pub async fn unprovisioned_campaign_coupons_span_organizations_and_respect_the_cutoff(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (p, q) = (program(&a, 100, "spring"), program(&b, 101, "spring"));
    let at = |mut c: rekomi_domain::coupon::CampaignCoupon, hours_before: i64| {
        c.created_at = T0 - Duration::hours(hours_before);
        c
    };
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p.clone(), q.clone()],
            campaign_coupons: vec![
                at(campaign_coupon(&p, 400, None), 2),
                at(campaign_coupon(&q, 401, None), 1),
                at(campaign_coupon(&p, 402, None), 0),
                at(campaign_coupon(&p, 403, Some("coupon_403")), 3),
            ],
            ..Seed::default()
        },
    )
    .await;

    let (stale, one, none) = commit(store, |tx| {
        Ok((
            tx.unprovisioned_campaign_coupons(T0, 10)?,
            tx.unprovisioned_campaign_coupons(T0, 1)?,
            tx.unprovisioned_campaign_coupons(T0 - Duration::hours(5), 10)?,
        ))
    })
    .await;
    assert_eq!(sorted(uuids(&stale, campaign_coupon_uuid)), nums(&[400, 401]));
    assert_eq!(one.len(), 1);
    assert!(nums(&[400, 401]).contains(&one[0].id.as_uuid()));
    assert!(none.is_empty());
}

/// A campaign coupon that still has codes cannot be deleted (the codes' foreign key refuses).
pub async fn a_campaign_coupon_with_codes_cannot_be_deleted(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let jane = affiliate(&p, 200, "jane@creator.test");
    let cc = campaign_coupon(&p, 400, Some("coupon_400"));
    let code = affiliate_coupon(&jane, &cc, 500, "JANE20", Some("promo_500"));
    seed(
        store,
        Seed {
            orgs: vec![a],
            programs: vec![p],
            affiliates: vec![jane],
            campaign_coupons: vec![cc],
            affiliate_coupons: vec![code],
            ..Seed::default()
        },
    )
    .await;

    let refused = attempt(store, |tx| tx.delete_campaign_coupon(id(1), id(400))).await;
    assert_conflict(refused, foreign_keys::AFFILIATE_COUPON_CAMPAIGN_COUPON);
    assert!(commit(store, |tx| tx.campaign_coupon(id(1), id(400))).await.is_some());

    commit(store, |tx| {
        tx.delete_affiliate_coupon(id(1), id(500))?;
        tx.delete_campaign_coupon(id(1), id(400))
    })
    .await;
    assert_eq!(commit(store, |tx| tx.campaign_coupon(id(1), id(400))).await, None);
}

// ---------------------------------------------------------------------------------------------
// Affiliate coupons
// ---------------------------------------------------------------------------------------------

/// Every field of an affiliate coupon survives storage; `update_affiliate_coupon` replaces
/// every field; `delete_affiliate_coupon` removes the row and releases its code.
pub async fn an_affiliate_coupon_round_trips_updates_and_deletes(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let jane = affiliate(&p, 200, "jane@creator.test");
    let cc = campaign_coupon(&p, 400, Some("coupon_400"));
    let reserved = affiliate_coupon(&jane, &cc, 500, "JANE20", None);
    let mut plain = affiliate_coupon(&jane, &cc, 501, "JANE-PLAIN", Some("promo_501"));
    plain.max_redemptions = None;
    plain.expires_at = None;
    plain.restrictions = CodeRestrictions::default();
    seed(
        store,
        Seed {
            orgs: vec![a],
            programs: vec![p],
            affiliates: vec![jane.clone()],
            campaign_coupons: vec![cc.clone()],
            affiliate_coupons: vec![reserved.clone(), plain.clone()],
            ..Seed::default()
        },
    )
    .await;
    let (got_reserved, got_plain) =
        commit(store, |tx| Ok((tx.affiliate_coupon(id(1), id(500))?, tx.affiliate_coupon(id(1), id(501))?))).await;
    assert_eq!(got_reserved, Some(reserved.clone()));
    assert_eq!(got_plain, Some(plain));

    let mut changed = reserved;
    changed.stripe_promotion_code_id = Some("promo_500".to_owned());
    changed.code = CouponCode::parse("JANE-SPRING").unwrap();
    changed.max_redemptions = None;
    changed.expires_at = None;
    changed.restrictions = CodeRestrictions {
        first_time_order: false,
        minimum_amount: None,
        limit_to_customers: false,
        customer_id: Some("cus_999".to_owned()),
        limit_to_affiliate: true,
    };
    changed.times_redeemed = 3;
    changed.last_redeemed_at = Some(T0 + Duration::hours(5));
    changed.is_auto_generated = true;
    changed.self_minted = true;
    changed.revoke(T0 + Duration::hours(6));
    let update = changed.clone();
    commit(store, move |tx| tx.update_affiliate_coupon(&update)).await;
    assert_eq!(commit(store, |tx| tx.affiliate_coupon(id(1), id(500))).await, Some(changed));

    commit(store, |tx| tx.delete_affiliate_coupon(id(1), id(500))).await;
    assert_eq!(commit(store, |tx| tx.affiliate_coupon(id(1), id(500))).await, None);
    let reuse = affiliate_coupon(&jane, &cc, 502, "JANE-SPRING", None);
    commit(store, move |tx| tx.insert_affiliate_coupon(&reuse)).await;
}

/// A code is taken once per organization whatever its case (`sarah20` and `SARAH20` are one
/// code), whether the holder is provisioning, live or revoked.
pub async fn a_code_is_unique_per_organization_regardless_of_case(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let (spring, summer) = (program(&a, 100, "spring"), program(&a, 101, "summer"));
    let (sarah, bob) = (affiliate(&spring, 200, "sarah@creator.test"), affiliate(&summer, 201, "bob@creator.test"));
    let (cc_spring, cc_summer) = (campaign_coupon(&spring, 400, Some("coupon_400")), campaign_coupon(&summer, 401, Some("coupon_401")));
    let mut revoked = affiliate_coupon(&sarah, &cc_spring, 501, "OLD-CODE", Some("promo_501"));
    revoked.revoke(T0);
    seed(
        store,
        Seed {
            orgs: vec![a],
            programs: vec![spring, summer],
            affiliates: vec![sarah.clone(), bob.clone()],
            campaign_coupons: vec![cc_spring.clone(), cc_summer.clone()],
            affiliate_coupons: vec![affiliate_coupon(&sarah, &cc_spring, 500, "sarah20", Some("promo_500")), revoked],
            ..Seed::default()
        },
    )
    .await;

    // Another affiliate, another program, another campaign coupon: still the same organization.
    let shouting = affiliate_coupon(&bob, &cc_summer, 502, "SARAH20", None);
    assert_conflict(attempt(store, move |tx| tx.insert_affiliate_coupon(&shouting)).await, constraints::COUPON_CODE);
    let reusing_revoked = affiliate_coupon(&bob, &cc_summer, 503, "old-code", None);
    assert_conflict(attempt(store, move |tx| tx.insert_affiliate_coupon(&reusing_revoked)).await, constraints::COUPON_CODE);

    let bobs = affiliate_coupon(&bob, &cc_summer, 504, "BOB10", Some("promo_504"));
    commit(store, {
        let bobs = bobs.clone();
        move |tx| tx.insert_affiliate_coupon(&bobs)
    })
    .await;
    let mut renamed = bobs;
    renamed.code = CouponCode::parse("Sarah20").unwrap();
    assert_conflict(attempt(store, move |tx| tx.update_affiliate_coupon(&renamed)).await, constraints::COUPON_CODE);
}

/// Codes are unique per organization only: another organization may hold the same text.
pub async fn the_same_code_may_live_in_two_organizations(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (p, q) = (program(&a, 100, "spring"), program(&b, 101, "spring"));
    let (jane, bob) = (affiliate(&p, 200, "jane@creator.test"), affiliate(&q, 201, "bob@creator.test"));
    let (cp, cq) = (campaign_coupon(&p, 400, Some("coupon_400")), campaign_coupon(&q, 401, Some("coupon_401")));
    let (ours, theirs) =
        (affiliate_coupon(&jane, &cp, 500, "SPRING20", Some("promo_500")), affiliate_coupon(&bob, &cq, 501, "spring20", Some("promo_501")));
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p, q],
            affiliates: vec![jane, bob],
            campaign_coupons: vec![cp, cq],
            affiliate_coupons: vec![ours.clone(), theirs.clone()],
            ..Seed::default()
        },
    )
    .await;

    let code = CouponCode::parse("SPRING20").unwrap();
    let (got_ours, got_theirs) =
        commit(store, move |tx| Ok((tx.affiliate_coupon_by_code(id(1), &code)?, tx.affiliate_coupon_by_code(id(2), &code)?))).await;
    assert_eq!(got_ours, Some(ours));
    assert_eq!(got_theirs, Some(theirs));
}

/// `affiliate_coupon_by_code` ignores case and sees provisioning rows;
/// `affiliate_coupon_by_stripe_id` finds a code by its promotion code id.
pub async fn an_affiliate_coupon_is_found_by_code_in_any_case_and_by_stripe_id(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let sarah = affiliate(&p, 200, "sarah@creator.test");
    let cc = campaign_coupon(&p, 400, Some("coupon_400"));
    let live = affiliate_coupon(&sarah, &cc, 500, "SARAH20", Some("promo_500"));
    let reserved = affiliate_coupon(&sarah, &cc, 501, "SARAH-VIP", None);
    seed(
        store,
        Seed {
            orgs: vec![a],
            programs: vec![p],
            affiliates: vec![sarah],
            campaign_coupons: vec![cc],
            affiliate_coupons: vec![live.clone(), reserved.clone()],
            ..Seed::default()
        },
    )
    .await;

    let (by_lower, by_reserved, by_unknown, by_stripe, by_unknown_stripe) = commit(store, |tx| {
        Ok((
            tx.affiliate_coupon_by_code(id(1), &CouponCode::parse("sarah20").unwrap())?,
            tx.affiliate_coupon_by_code(id(1), &CouponCode::parse("Sarah-Vip").unwrap())?,
            tx.affiliate_coupon_by_code(id(1), &CouponCode::parse("SARAH").unwrap())?,
            tx.affiliate_coupon_by_stripe_id(id(1), "promo_500")?,
            tx.affiliate_coupon_by_stripe_id(id(1), "promo_nope")?,
        ))
    })
    .await;
    assert_eq!(by_lower, Some(live.clone()));
    assert_eq!(by_reserved, Some(reserved));
    assert_eq!(by_unknown, None, "a prefix is not the code");
    assert_eq!(by_stripe, Some(live));
    assert_eq!(by_unknown_stripe, None);
}

/// Each selector lists the provisioned codes it names, newest first, page by page: one
/// affiliate's, one campaign coupon's, and one person's across programs (by email).
pub async fn affiliate_coupons_list_by_each_selector_newest_first(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (spring, summer, foreign) = (program(&a, 100, "spring"), program(&a, 101, "summer"), program(&b, 102, "spring"));
    let jane_spring = affiliate(&spring, 200, "jane@creator.test");
    let bob = affiliate(&spring, 201, "bob@creator.test");
    let jane_summer = affiliate(&summer, 202, "jane@creator.test");
    let jane_foreign = affiliate(&foreign, 203, "jane@creator.test");
    let c1 = campaign_coupon(&spring, 400, Some("coupon_400"));
    let c2 = campaign_coupon(&spring, 401, Some("coupon_401"));
    let c3 = campaign_coupon(&summer, 402, Some("coupon_402"));
    let c4 = campaign_coupon(&foreign, 403, Some("coupon_403"));
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![spring, summer, foreign],
            affiliates: vec![jane_spring.clone(), bob.clone(), jane_summer.clone(), jane_foreign.clone()],
            campaign_coupons: vec![c1.clone(), c2.clone(), c3.clone(), c4.clone()],
            affiliate_coupons: vec![
                affiliate_coupon(&jane_spring, &c1, 500, "JANE-ONE", Some("promo_500")),
                affiliate_coupon(&jane_spring, &c2, 501, "JANE-TWO", Some("promo_501")),
                affiliate_coupon(&bob, &c1, 502, "BOB-ONE", Some("promo_502")),
                affiliate_coupon(&jane_spring, &c1, 503, "JANE-RESERVED", None),
                affiliate_coupon(&jane_summer, &c3, 504, "JANE-SUMMER", Some("promo_504")),
                affiliate_coupon(&jane_foreign, &c4, 505, "JANE-FOREIGN", Some("promo_505")),
            ],
            ..Seed::default()
        },
    )
    .await;

    let jane = Email::parse("email", "jane@creator.test").unwrap();
    let cases: Vec<(CouponSelector, Vec<Vec<u128>>)> = vec![
        (CouponSelector::Affiliate(id(200)), vec![vec![501, 500]]),
        (CouponSelector::CampaignCoupon(id(400)), vec![vec![502, 500]]),
        (CouponSelector::AffiliateEmail(jane.clone()), vec![vec![504, 501], vec![500]]),
        (CouponSelector::Affiliate(id(203)), vec![vec![]]),
    ];
    for (selector, want) in cases {
        let s = selector.clone();
        let pages = read_pages(store, 2, affiliate_coupon_uuid, move |tx, p| tx.list_affiliate_coupons(id(1), &s, p)).await;
        let want: Vec<Vec<Uuid>> = want.iter().map(|p| nums(p)).collect();
        assert_eq!(pages, want, "selector {selector:?}");
    }
}

/// `campaign_coupon_has_codes` holds once any code exists under the coupon, provisioning or
/// revoked ones included.
pub async fn a_campaign_coupon_has_codes_once_any_code_exists(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let jane = affiliate(&p, 200, "jane@creator.test");
    let (with_reserved, with_revoked, bare) = (
        campaign_coupon(&p, 400, Some("coupon_400")),
        campaign_coupon(&p, 401, Some("coupon_401")),
        campaign_coupon(&p, 402, Some("coupon_402")),
    );
    let mut revoked = affiliate_coupon(&jane, &with_revoked, 501, "JANE-OLD", Some("promo_501"));
    revoked.revoke(T0);
    seed(
        store,
        Seed {
            orgs: vec![a],
            programs: vec![p],
            affiliates: vec![jane.clone()],
            campaign_coupons: vec![with_reserved.clone(), with_revoked, bare],
            affiliate_coupons: vec![affiliate_coupon(&jane, &with_reserved, 500, "JANE20", None), revoked],
            ..Seed::default()
        },
    )
    .await;

    let got = commit(store, |tx| {
        Ok((
            tx.campaign_coupon_has_codes(id(1), id(400))?,
            tx.campaign_coupon_has_codes(id(1), id(401))?,
            tx.campaign_coupon_has_codes(id(1), id(402))?,
        ))
    })
    .await;
    assert_eq!(got, (true, true, false));
}

/// The reconciler's scan returns unprovisioned affiliate coupons of every organization created
/// strictly before the cutoff, at most `limit` of them.
pub async fn unprovisioned_affiliate_coupons_span_organizations_and_respect_the_cutoff(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (p, q) = (program(&a, 100, "spring"), program(&b, 101, "spring"));
    let (jane, bob) = (affiliate(&p, 200, "jane@creator.test"), affiliate(&q, 201, "bob@creator.test"));
    let (cp, cq) = (campaign_coupon(&p, 400, Some("coupon_400")), campaign_coupon(&q, 401, Some("coupon_401")));
    let at = |mut c: rekomi_domain::coupon::AffiliateCoupon, hours_before: i64| {
        c.created_at = T0 - Duration::hours(hours_before);
        c
    };
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p, q],
            affiliates: vec![jane.clone(), bob.clone()],
            campaign_coupons: vec![cp.clone(), cq.clone()],
            affiliate_coupons: vec![
                at(affiliate_coupon(&jane, &cp, 500, "JANE-A", None), 2),
                at(affiliate_coupon(&bob, &cq, 501, "BOB-A", None), 1),
                at(affiliate_coupon(&jane, &cp, 502, "JANE-B", None), 0),
                at(affiliate_coupon(&jane, &cp, 503, "JANE-C", Some("promo_503")), 3),
            ],
            ..Seed::default()
        },
    )
    .await;

    let (stale, one, none) = commit(store, |tx| {
        Ok((
            tx.unprovisioned_affiliate_coupons(T0, 10)?,
            tx.unprovisioned_affiliate_coupons(T0, 1)?,
            tx.unprovisioned_affiliate_coupons(T0 - Duration::hours(5), 10)?,
        ))
    })
    .await;
    assert_eq!(sorted(uuids(&stale, affiliate_coupon_uuid)), nums(&[500, 501]));
    assert_eq!(one.len(), 1);
    assert!(nums(&[500, 501]).contains(&one[0].id.as_uuid()));
    assert!(none.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Audit log
// ---------------------------------------------------------------------------------------------

/// Audit entries come back whole, newest first, for their organization only, at most `limit`.
pub async fn audit_entries_come_back_newest_first_per_organization(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let p = program(&a, 100, "spring");
    let mut archived = p.clone();
    archived.archived_at = Some(T0 + Duration::hours(1));
    let created = audit(&a, 600, AuditActor::ApiKey(id::<Uuid>(700).to_string()), "program.created", &p);
    let mut updated = audit(&a, 601, AuditActor::User("user_owner".to_owned()), "program.archived", &archived);
    updated.before = Some(program_snapshot(&p));
    updated.created_at = T0 + Duration::hours(1);
    let jane = affiliate(&p, 200, "jane@creator.test");
    let mut deleted = audit(&a, 602, AuditActor::System, "affiliate.deleted", &p);
    deleted.entity_type = "affiliate";
    deleted.entity_id = jane.id.to_string();
    deleted.before = Some(affiliate_snapshot(&jane));
    deleted.after = None;
    let theirs = audit(&b, 603, AuditActor::System, "program.created", &program(&b, 101, "spring"));
    seed(
        store,
        Seed { orgs: vec![a, b], audit: vec![created.clone(), updated.clone(), deleted.clone(), theirs.clone()], ..Seed::default() },
    )
    .await;

    let (all, two, other, none) = commit(store, |tx| {
        Ok((tx.audit_entries(id(1), 10)?, tx.audit_entries(id(1), 2)?, tx.audit_entries(id(2), 10)?, tx.audit_entries(id(3), 10)?))
    })
    .await;
    assert_eq!(all, vec![deleted.clone(), updated.clone(), created]);
    assert_eq!(two, vec![deleted, updated]);
    assert_eq!(other, vec![theirs]);
    assert!(none.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Tenant isolation
// ---------------------------------------------------------------------------------------------

/// Every read scoped to an organization treats another organization's ids, codes, slugs and
/// Stripe ids as absent (so ids cannot be probed), while the owner still sees them.
pub async fn no_getter_reveals_another_organizations_rows(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let p = program(&a, 100, "spring");
    let jane = affiliate(&p, 200, "jane@creator.test");
    let cc = campaign_coupon(&p, 400, Some("coupon_400"));
    seed(
        store,
        Seed {
            orgs: vec![a.clone(), b],
            programs: vec![p.clone()],
            affiliates: vec![jane.clone()],
            links: vec![link(&jane, 300, "jane-doe", true)],
            campaign_coupons: vec![cc.clone()],
            affiliate_coupons: vec![affiliate_coupon(&jane, &cc, 500, "JANE20", Some("promo_500"))],
            audit: vec![audit(&a, 600, AuditActor::System, "program.created", &p)],
            ..Seed::default()
        },
    )
    .await;

    // Reads every org-scoped getter as `org` and reports what each saw.
    let read_as = |org: u128| {
        move |tx: &mut dyn Tx| -> Result<Vec<(&'static str, bool)>, StoreError> {
            let o = id(org);
            let code = CouponCode::parse("jane20").unwrap();
            let jane = Email::parse("email", "jane@creator.test").unwrap();
            let first = PageRequest::first();
            let program_filter = AffiliateFilter { program_id: Some(id(100)), ..AffiliateFilter::default() };
            Ok(vec![
                ("program", tx.program(o, id(100))?.is_some()),
                ("list_programs", !tx.list_programs(o, &first)?.is_empty()),
                ("affiliate", tx.affiliate(o, id(200))?.is_some()),
                ("list_affiliates", !tx.list_affiliates(o, &AffiliateFilter::default(), &first)?.is_empty()),
                ("list_affiliates by program", !tx.list_affiliates(o, &program_filter, &first)?.is_empty()),
                ("links_of", !tx.links_of(o, &[id(200)])?.is_empty()),
                ("link_slug_taken", tx.link_slug_taken(o, "jane-doe")?),
                ("campaign_coupon", tx.campaign_coupon(o, id(400))?.is_some()),
                ("list_campaign_coupons", !tx.list_campaign_coupons(o, id(100), &first)?.is_empty()),
                ("campaign_coupon_has_codes", tx.campaign_coupon_has_codes(o, id(400))?),
                ("affiliate_coupon", tx.affiliate_coupon(o, id(500))?.is_some()),
                ("affiliate_coupon_by_code", tx.affiliate_coupon_by_code(o, &code)?.is_some()),
                ("affiliate_coupon_by_stripe_id", tx.affiliate_coupon_by_stripe_id(o, "promo_500")?.is_some()),
                ("list by affiliate", !tx.list_affiliate_coupons(o, &CouponSelector::Affiliate(id(200)), &first)?.is_empty()),
                ("list by campaign coupon", !tx.list_affiliate_coupons(o, &CouponSelector::CampaignCoupon(id(400)), &first)?.is_empty()),
                ("list by email", !tx.list_affiliate_coupons(o, &CouponSelector::AffiliateEmail(jane), &first)?.is_empty()),
                ("audit_entries", !tx.audit_entries(o, 10)?.is_empty()),
                ("org_usage", tx.org_usage(o)? != OrgUsage::default()),
            ])
        }
    };
    let owner = commit(store, read_as(1)).await;
    let stranger = commit(store, read_as(2)).await;
    for ((getter, owner_saw), (_, stranger_saw)) in owner.into_iter().zip(stranger) {
        assert!(owner_saw, "{getter}: the owner must see its row (the check would be vacuous otherwise)");
        assert!(!stranger_saw, "{getter}: another organization must not see the row");
    }

    let deleted = commit(store, |tx| tx.delete_affiliate(id(2), id(200), T0)).await;
    assert!(!deleted, "another organization cannot delete the affiliate");
    assert!(commit(store, |tx| tx.affiliate(id(1), id(200))).await.is_some());
}

/// Updates and deletes naming another organization change nothing, whatever ids they carry.
pub async fn no_write_reaches_into_another_organization(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let p = program(&a, 100, "spring");
    let jane = affiliate(&p, 200, "jane@creator.test");
    let (cc, spare) = (campaign_coupon(&p, 400, Some("coupon_400")), campaign_coupon(&p, 401, Some("coupon_401")));
    let code = affiliate_coupon(&jane, &cc, 500, "JANE20", Some("promo_500"));
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p.clone()],
            affiliates: vec![jane.clone()],
            campaign_coupons: vec![cc.clone(), spare.clone()],
            affiliate_coupons: vec![code.clone()],
            ..Seed::default()
        },
    )
    .await;

    let mut forged_program = p.clone();
    forged_program.org_id = id(2);
    forged_program.name = "Hijacked".to_owned();
    let mut forged_affiliate = jane.clone();
    forged_affiliate.org_id = id(2);
    forged_affiliate.status = AffiliateStatus::Banned;
    let mut forged_coupon = cc.clone();
    forged_coupon.org_id = id(2);
    forged_coupon.name = "Hijacked".to_owned();
    let mut forged_code = code.clone();
    forged_code.org_id = id(2);
    forged_code.is_active = false;
    // Whether a store reports these as errors or as no-ops is its choice; none may land.
    let _ = attempt(store, move |tx| tx.update_program(&forged_program)).await;
    let _ = attempt(store, move |tx| tx.update_affiliate(&forged_affiliate)).await;
    let _ = attempt(store, move |tx| tx.update_campaign_coupon(&forged_coupon)).await;
    let _ = attempt(store, move |tx| tx.update_affiliate_coupon(&forged_code)).await;
    let _ = attempt(store, |tx| tx.delete_affiliate(id(2), id(200), T0)).await;
    let _ = attempt(store, |tx| tx.delete_affiliate_coupon(id(2), id(500))).await;
    let _ = attempt(store, |tx| tx.delete_campaign_coupon(id(2), id(401))).await;

    let now = commit(store, |tx| {
        Ok((
            tx.program(id(1), id(100))?,
            tx.affiliate(id(1), id(200))?,
            tx.campaign_coupon(id(1), id(400))?,
            tx.campaign_coupon(id(1), id(401))?,
            tx.affiliate_coupon(id(1), id(500))?,
            tx.program(id(2), id(100))?,
        ))
    })
    .await;
    assert_eq!(now, (Some(p), Some(jane), Some(cc), Some(spare), Some(code), None));
}

/// References between tenant rows stay inside one organization: the composite foreign keys
/// refuse a row of one organization that points at another's.
pub async fn a_row_cannot_point_into_another_organization(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (pa, pb) = (program(&a, 100, "spring"), program(&b, 101, "spring"));
    let (ja, jb) = (affiliate(&pa, 200, "jane@creator.test"), affiliate(&pb, 201, "bob@creator.test"));
    let (ca, cb) = (campaign_coupon(&pa, 400, Some("coupon_400")), campaign_coupon(&pb, 401, Some("coupon_401")));
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![pa.clone(), pb.clone()],
            affiliates: vec![ja.clone(), jb.clone()],
            campaign_coupons: vec![ca.clone(), cb.clone()],
            ..Seed::default()
        },
    )
    .await;

    let mut affiliate_into_a = affiliate(&pb, 202, "eve@creator.test");
    affiliate_into_a.program_id = pa.id;
    assert_conflict(attempt(store, move |tx| tx.insert_affiliate(&affiliate_into_a)).await, foreign_keys::AFFILIATE_PROGRAM);

    let mut link_into_a = link(&jb, 300, "eve", true);
    link_into_a.affiliate_id = ja.id;
    assert_conflict(attempt(store, move |tx| tx.insert_link(&link_into_a)).await, foreign_keys::LINK_AFFILIATE);

    let mut coupon_into_a = campaign_coupon(&pb, 402, None);
    coupon_into_a.program_id = pa.id;
    assert_conflict(attempt(store, move |tx| tx.insert_campaign_coupon(&coupon_into_a)).await, foreign_keys::CAMPAIGN_COUPON_PROGRAM);

    let mut code_of_a_affiliate = affiliate_coupon(&jb, &cb, 500, "EVE20", None);
    code_of_a_affiliate.affiliate_id = ja.id;
    assert_conflict(
        attempt(store, move |tx| tx.insert_affiliate_coupon(&code_of_a_affiliate)).await,
        foreign_keys::AFFILIATE_COUPON_AFFILIATE,
    );

    let mut code_of_a_coupon = affiliate_coupon(&jb, &cb, 501, "EVE21", None);
    code_of_a_coupon.campaign_coupon_id = ca.id;
    assert_conflict(
        attempt(store, move |tx| tx.insert_affiliate_coupon(&code_of_a_coupon)).await,
        foreign_keys::AFFILIATE_COUPON_CAMPAIGN_COUPON,
    );
}

// ---------------------------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------------------------

/// The work's own error, distinct from the store's.
#[derive(Debug)]
enum WorkError {
    Store(StoreError),
    GaveUp,
}

impl From<StoreError> for WorkError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

fn everything() -> Seed {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let jane = affiliate(&p, 200, "jane@creator.test");
    let cc = campaign_coupon(&p, 400, None);
    Seed {
        orgs: vec![a.clone()],
        api_keys: vec![api_key(&a, 700, "rk_live_secret")],
        programs: vec![p.clone()],
        affiliates: vec![jane.clone()],
        links: vec![link(&jane, 300, "jane-doe", true)],
        campaign_coupons: vec![cc.clone()],
        affiliate_coupons: vec![affiliate_coupon(&jane, &cc, 500, "JANE20", None)],
        audit: vec![audit(&a, 600, AuditActor::System, "program.created", &p)],
    }
}

/// A transaction whose work fails leaves no trace of anything it wrote (while it ran, it saw
/// its own writes), and the uniqueness it claimed is released.
pub async fn a_failed_transaction_leaves_nothing_behind(store: &dyn UnitOfWork) {
    let rows = everything();
    let result: Result<(), WorkError> = transact(store, move |tx| {
        rows.insert(tx)?;
        assert!(tx.program(id(1), id(100))?.is_some(), "a transaction reads its own writes");
        Err(WorkError::GaveUp)
    })
    .await;
    match result {
        Err(WorkError::GaveUp) => {}
        Err(WorkError::Store(e)) => panic!("the store failed instead of the work: {e:?}"),
        Ok(()) => panic!("the work was meant to fail"),
    }

    let traces = commit(store, |tx| {
        let jane = Email::parse("email", "jane@creator.test").unwrap();
        Ok(vec![
            ("org", tx.org(id(1))?.is_some()),
            ("api key", tx.api_key_by_hash(&hash_api_key("rk_live_secret"))?.is_some()),
            ("program", tx.program(id(1), id(100))?.is_some()),
            ("affiliate", tx.affiliate(id(1), id(200))?.is_some()),
            ("affiliates_of_user", !tx.affiliates_of_user("user_x", &jane)?.is_empty()),
            ("link", tx.link_slug_taken(id(1), "jane-doe")?),
            ("campaign coupon", tx.campaign_coupon(id(1), id(400))?.is_some()),
            ("unprovisioned campaign coupons", !tx.unprovisioned_campaign_coupons(T0 + Duration::days(1), 10)?.is_empty()),
            ("affiliate coupon", tx.affiliate_coupon(id(1), id(500))?.is_some()),
            ("code", tx.affiliate_coupon_by_code(id(1), &CouponCode::parse("JANE20").unwrap())?.is_some()),
            ("unprovisioned codes", !tx.unprovisioned_affiliate_coupons(T0 + Duration::days(1), 10)?.is_empty()),
            ("audit", !tx.audit_entries(id(1), 10)?.is_empty()),
        ])
    })
    .await;
    for (what, left) in traces {
        assert!(!left, "the rolled-back {what} is still there");
    }

    seed(store, everything()).await;
    assert!(commit(store, |tx| tx.program(id(1), id(100))).await.is_some());
}

/// A write refused by a constraint fails the transaction, and the writes before it in the same
/// transaction are rolled back with it.
pub async fn a_conflict_rolls_back_the_writes_before_it(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let spring = program(&a, 100, "spring");
    seed(store, Seed { orgs: vec![a.clone()], programs: vec![spring], ..Seed::default() }).await;

    let (summer, dup) = (program(&a, 101, "summer"), program(&a, 102, "spring"));
    let result = attempt(store, move |tx| {
        tx.insert_program(&summer)?;
        tx.insert_program(&dup)
    })
    .await;
    assert_conflict(result, constraints::PROGRAM_SLUG);
    assert_eq!(commit(store, |tx| tx.program(id(1), id(101))).await, None);
}

/// A reachable store answers `ping`.
pub async fn the_store_answers_pings(store: &dyn UnitOfWork) {
    if let Err(e) = store.ping().await {
        panic!("ping failed: {e:?}");
    }
}
