//! Integration tests of the PostgreSQL adapter against a real server: each test creates a
//! throwaway database, runs the embedded migrations, exercises the store through the port
//! (`transact`), and drops the database again.
//!
//! The server is `REKOMI_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! Without a reachable server the tests skip with a message, unless `CI=true`, where they fail.

// A test that cannot set up its fixtures should stop right there, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use rekomi_domain::affiliates::{Affiliate, AffiliateFilter, AffiliateLink, AffiliateSource, AffiliateStatus, Email, LinkFormat};
use rekomi_domain::audit::{AuditAction, AuditEntry};
use rekomi_domain::coupons::{AffiliateCoupon, CampaignCoupon, CodeRestrictions, CouponCode, CouponDuration, CouponSelector, DiscountSpec};
use rekomi_domain::kernel::actor::AuditActor;
use rekomi_domain::kernel::ids::{AffiliateCouponId, AffiliateId, ApiKeyId, AuditId, CampaignCouponId, LinkId, OrgId, ProgramId};
use rekomi_domain::kernel::money::{Currency, Money};
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::kernel::plan::{PlanTier, SubscriptionStatus};
use rekomi_domain::orgs::{ApiKey, ApiKeyScope, Handle, OrgUsage, Organization};
use rekomi_domain::ports::store::{constraints, transact, StoreError, UnitOfWork};
use rekomi_domain::programs::{
    AttributionModel, Commission, CommissionModel, CommissionType, Hundredths, NetworkVisibility, Program, ProgramSlug,
};
use rekomi_postgres::{run_migrations, PgStore};
use serde_json::json;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const T0: OffsetDateTime = datetime!(2026-06-01 12:00:00 UTC);

/// A database that exists for one test and is dropped (forcibly) when the test ends.
struct TestDb {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDb {
    /// Creates a fresh database and migrates it, or returns `None` (after saying why) when no
    /// server is reachable outside CI.
    fn create() -> Option<TestDb> {
        let admin_url = std::env::var("REKOMI_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let mut admin = match PgConnection::establish(&admin_url) {
            Ok(conn) => conn,
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("CI=true but PostgreSQL at REKOMI_TEST_DATABASE_URL is unreachable: {e}")
            }
            Err(e) => {
                eprintln!("skipping: PostgreSQL is unreachable ({e}); set REKOMI_TEST_DATABASE_URL to run these tests");
                return None;
            }
        };
        let name = format!("rekomi_test_{}", Uuid::new_v4().simple());
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let url = with_database(&admin_url, &name);
        let db = TestDb { admin_url, name, url };
        let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations"))
            .unwrap()
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
            .count();
        assert_eq!(run_migrations(&db.url).unwrap(), migrations, "the first run applies every migration");
        assert_eq!(run_migrations(&db.url).unwrap(), 0, "a second run applies nothing");
        Some(db)
    }

    fn store(&self) -> PgStore {
        PgStore::connect(&self.url, 4).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// `url` with its database path replaced by `name` (query parameters kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

macro_rules! test_db {
    () => {
        match TestDb::create() {
            Some(db) => db,
            None => return,
        }
    };
}

// ----------------------------------------------------------------------------------------------
// Fixtures
// ----------------------------------------------------------------------------------------------

fn id() -> Uuid {
    Uuid::now_v7()
}

fn org(handle: &str) -> Organization {
    Organization {
        id: OrgId::from_uuid(id()),
        name: "Acme".into(),
        handle: Handle::parse(handle).unwrap(),
        billing_email: Some("billing@acme.test".into()),
        timezone: "Europe/Paris".into(),
        plan_tier: PlanTier::Growth,
        subscription_status: SubscriptionStatus::Trialing,
        trial_ends_at: Some(T0 + Duration::days(14)),
        home_currency: Currency::parse("EUR").unwrap(),
        payout_grace_days: 30,
        minimum_payout_minor: 0,
        home_currency_changed_at: None,
        stripe_account_id: None,
        created_at: T0,
    }
}

fn program(org: OrgId, slug: &str) -> Program {
    Program {
        id: ProgramId::from_uuid(id()),
        org_id: org,
        name: "Spring".into(),
        slug: ProgramSlug::parse(slug).unwrap(),
        description: Some("Twenty percent".into()),
        terms_url: None,
        is_active: true,
        default_commission: Commission::new(CommissionType::Percentage, Hundredths::new(20_50), "v").unwrap(),
        default_commission_model: CommissionModel::Cps,
        cookie_window_days: 30,
        recurring_months: Some(12),
        recurring_delay_invoices: 0,
        attribution_model: AttributionModel::LastTouch,
        auto_approve: false,
        custom_domain: Some("go.acme.test".into()),
        custom_domain_verified: false,
        network_visibility: NetworkVisibility::Private,
        is_publicly_discoverable: true,
        created_at: T0,
        updated_at: T0,
        archived_at: None,
        landing_url: Some(rekomi_domain::programs::LandingUrl::parse("https://acme.test/pricing?plan=pro").unwrap()),
    }
}

fn affiliate(org: OrgId, program: ProgramId, email: &str) -> Affiliate {
    Affiliate {
        id: AffiliateId::from_uuid(id()),
        org_id: org,
        program_id: program,
        email: Email::parse("email", email).unwrap(),
        full_name: Some("Jane Doe".into()),
        status: AffiliateStatus::Approved,
        custom_commission: Some(Commission::new(CommissionType::Fixed, Hundredths::new(5_00), "v").unwrap()),
        tags: vec!["youtube".into(), "vip".into()],
        notes: None,
        source: AffiliateSource::Invite,
        user_id: None,
        rejection_reason: None,
        applied_at: T0,
        approved_at: Some(T0),
        created_at: T0,
        updated_at: T0,
    }
}

fn campaign_coupon(org: OrgId, program: ProgramId) -> CampaignCoupon {
    CampaignCoupon {
        id: CampaignCouponId::from_uuid(id()),
        org_id: org,
        program_id: program,
        name: "Five off".into(),
        discount: DiscountSpec::AmountOff(Money::new(500, Currency::parse("USD").unwrap())),
        duration: CouponDuration::Repeating(3),
        max_redemptions_per_code: Some(100),
        expires_at: Some(T0 + Duration::days(90)),
        allow_affiliate_self_mint: true,
        overrides_click_attribution: true,
        is_active: true,
        stripe_coupon_id: Some("co_123".parse().unwrap()),
        created_at: T0,
        updated_at: T0,
        archived_at: None,
    }
}

fn affiliate_coupon(a: &Affiliate, coupon: &CampaignCoupon, code: &str) -> AffiliateCoupon {
    AffiliateCoupon {
        id: AffiliateCouponId::from_uuid(id()),
        org_id: a.org_id,
        program_id: a.program_id,
        affiliate_id: a.id,
        campaign_coupon_id: coupon.id,
        code: CouponCode::parse(code).unwrap(),
        stripe_promotion_code_id: Some(format!("promo_{code}").parse().unwrap()),
        is_active: true,
        max_redemptions: Some(10),
        expires_at: None,
        restrictions: CodeRestrictions {
            first_time_order: true,
            minimum_amount: Some(Money::new(5000, Currency::parse("USD").unwrap())),
            limit_to_customers: true,
            customer_id: Some("cus_1".parse().unwrap()),
            limit_to_affiliate: false,
        },
        times_redeemed: 3,
        last_redeemed_at: Some(T0),
        is_auto_generated: false,
        self_minted: true,
        created_at: T0,
        updated_at: T0,
        revoked_at: None,
    }
}

/// An organization with one program and one affiliate, committed.
async fn seed(store: &PgStore, handle: &str) -> (Organization, Program, Affiliate) {
    let o = org(handle);
    let p = program(o.id, "spring");
    let a = affiliate(o.id, p.id, "jane@creator.test");
    let (o2, p2, a2) = (o.clone(), p.clone(), a.clone());
    transact::<_, StoreError, _>(store, move |tx| {
        tx.insert_org(&o2)?;
        tx.insert_program(&p2)?;
        tx.insert_affiliate(&a2)
    })
    .await
    .unwrap();
    (o, p, a)
}

// ----------------------------------------------------------------------------------------------
// Tests
// ----------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_entity_round_trips_through_a_transaction() {
    let db = test_db!();
    let store = db.store();
    store.ping().await.unwrap();

    let (o, p, a) = seed(&store, "acme").await;
    let key = ApiKey {
        id: ApiKeyId::from_uuid(id()),
        org_id: o.id,
        scope: ApiKeyScope::ReadWrite,
        prefix: "rk_live_ab12".into(),
        hash: "ab".repeat(32),
        created_at: T0,
        revoked_at: None,
    };
    let link = AffiliateLink {
        id: LinkId::from_uuid(id()),
        org_id: o.id,
        affiliate_id: a.id,
        slug: "jane-doe-k3m9p".into(),
        custom_alias: None,
        is_default: true,
        format: LinkFormat::Query,
        created_at: T0,
    };
    let mut cc = campaign_coupon(o.id, p.id);
    cc.discount = DiscountSpec::PercentOff(20);
    cc.duration = CouponDuration::Once;
    let cc_amount = campaign_coupon(o.id, p.id);
    let ac = affiliate_coupon(&a, &cc, "JANE20");
    let entry = AuditEntry {
        id: AuditId::from_uuid(id()),
        org_id: o.id,
        actor: AuditActor::ApiKey(key.id.to_string()),
        action: AuditAction::AffiliateCouponCreated,
        entity_type: "affiliate_coupon",
        entity_id: ac.id.to_string(),
        before: None,
        after: Some(json!({ "code": "JANE20", "nested": { "n": 1 } })),
        created_at: T0,
    };
    let system_entry = AuditEntry {
        id: AuditId::from_uuid(id()),
        actor: AuditActor::System,
        entity_type: "something_new",
        before: Some(json!({ "x": null })),
        after: None,
        ..entry.clone()
    };

    let written = (key.clone(), link.clone(), cc.clone(), cc_amount.clone(), ac.clone(), entry.clone(), system_entry.clone());
    transact::<_, StoreError, _>(&store, move |tx| {
        let (key, link, cc, cc_amount, ac, entry, system_entry) = written;
        tx.insert_api_key(&key)?;
        tx.insert_link(&link)?;
        tx.insert_campaign_coupon(&cc)?;
        tx.insert_campaign_coupon(&cc_amount)?;
        tx.insert_affiliate_coupon(&ac)?;
        tx.append_audit(&entry)?;
        tx.append_audit(&system_entry)
    })
    .await
    .unwrap();

    let expected = (o.clone(), p.clone(), a.clone(), key.clone(), link.clone(), cc.clone(), cc_amount.clone(), ac.clone());
    let hash = key.hash.clone();
    let (org_id, prog_id, aff_id) = (o.id, p.id, a.id);
    transact::<_, StoreError, _>(&store, move |tx| {
        let (o, p, a, key, link, cc, cc_amount, ac) = expected;
        assert_eq!(tx.org(org_id)?, Some(o));
        assert_eq!(tx.api_key_by_hash(&hash)?, Some(key));
        assert_eq!(tx.program(org_id, prog_id)?, Some(p.clone()));
        assert_eq!(tx.list_programs(org_id, &PageRequest::first())?, vec![p]);
        assert_eq!(tx.affiliate(org_id, aff_id)?, Some(a.clone()));
        assert_eq!(tx.links_of(org_id, &[aff_id])?, vec![link]);
        assert!(tx.link_slug_taken(org_id, "JANE-DOE-K3M9P")?, "slug lookups ignore case");
        assert_eq!(tx.campaign_coupon(org_id, cc.id)?, Some(cc.clone()));
        assert_eq!(tx.campaign_coupon(org_id, cc_amount.id)?, Some(cc_amount.clone()));
        assert_eq!(tx.list_campaign_coupons(org_id, prog_id, &PageRequest::first())?, vec![cc_amount, cc.clone()]);
        assert_eq!(tx.affiliate_coupon(org_id, ac.id)?, Some(ac.clone()));
        assert_eq!(tx.affiliate_coupon_by_code(org_id, &CouponCode::parse("jane20").unwrap())?, Some(ac.clone()));
        assert_eq!(tx.affiliate_coupon_by_stripe_id(org_id, &"promo_JANE20".parse().unwrap())?, Some(ac.clone()));
        assert_eq!(
            tx.list_affiliate_coupons(org_id, &CouponSelector::AffiliateEmail(a.email.clone()), &PageRequest::first())?,
            vec![ac.clone()]
        );
        assert!(tx.campaign_coupon_has_codes(org_id, cc.id)?);
        assert_eq!(tx.org_usage(org_id)?, OrgUsage { affiliates: 1, campaigns: 1 });
        Ok(())
    })
    .await
    .unwrap();

    let entries = transact::<_, StoreError, _>(&store, move |tx| tx.audit_entries(org_id, 10)).await.unwrap();
    let mut want = vec![entry, system_entry];
    want.sort_by_key(|e| std::cmp::Reverse(e.id));
    assert_eq!(entries, want, "audit entries come back newest first, JSON intact");
}

#[tokio::test]
async fn a_code_differing_only_in_case_conflicts_on_the_code_constraint() {
    let db = test_db!();
    let store = db.store();
    let (o, p, a) = seed(&store, "acme").await;
    let cc = campaign_coupon(o.id, p.id);
    let first = affiliate_coupon(&a, &cc, "SUMMER");
    let (cc2, first2) = (cc.clone(), first.clone());
    transact::<_, StoreError, _>(&store, move |tx| {
        tx.insert_campaign_coupon(&cc2)?;
        tx.insert_affiliate_coupon(&first2)
    })
    .await
    .unwrap();

    // CouponCode upper-cases, so a lower-case duplicate can only come from a row written
    // outside the domain; the index must still refuse it.
    let mut conn = PgConnection::establish(&db.url).unwrap();
    let raw = conn.batch_execute(&format!(
        "INSERT INTO affiliate_coupons (id, org_id, program_id, affiliate_id, campaign_coupon_id, code, is_active, \
         first_time_order, limit_to_customers, limit_to_affiliate, is_auto_generated, self_minted, created_at, updated_at) \
         VALUES ('{}', '{}', '{}', '{}', '{}', 'summer', true, false, false, false, false, false, now(), now())",
        Uuid::now_v7(),
        o.id,
        p.id,
        a.id,
        cc.id
    ));
    let raw = raw.expect_err("a lower-case duplicate must be refused");
    assert!(raw.to_string().contains("affiliate_coupons_org_code_key"), "{raw}");

    let retry = affiliate_coupon(&a, &cc, "SUMMER2");
    let (dup, retry2) = (affiliate_coupon(&a, &cc, "summer"), retry.clone());
    let outcome = transact::<_, StoreError, _>(&store, move |tx| {
        let conflict = tx.insert_affiliate_coupon(&dup).unwrap_err();
        // The refused insert is confined to its savepoint: the same transaction carries on.
        tx.insert_affiliate_coupon(&retry2)?;
        Ok(conflict)
    })
    .await
    .unwrap();
    match outcome {
        StoreError::Conflict { constraint } => assert_eq!(constraint, constraints::COUPON_CODE),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let (org_id, retry_id) = (o.id, retry.id);
    let found = transact::<_, StoreError, _>(&store, move |tx| tx.affiliate_coupon(org_id, retry_id)).await.unwrap();
    assert_eq!(found, Some(retry), "the work after the conflict committed");
}

#[tokio::test]
async fn unique_violations_name_the_port_constraints() {
    let db = test_db!();
    let store = db.store();
    let (o, p, a) = seed(&store, "acme").await;
    let org_id = o.id;

    let conflict_of = |r: Result<(), StoreError>| match r {
        Err(StoreError::Conflict { constraint }) => constraint,
        other => panic!("expected a conflict, got {other:?}"),
    };
    let (p2, a2) = (p.clone(), a.clone());
    let names = transact::<_, StoreError, _>(&store, move |tx| {
        let handle = conflict_of(tx.insert_org(&org("acme")));
        let slug = conflict_of(tx.insert_program(&program(org_id, "spring")));
        let email = conflict_of(tx.insert_affiliate(&affiliate(org_id, p2.id, "JANE@creator.test")));
        let link = |slug: &str| AffiliateLink {
            id: LinkId::from_uuid(id()),
            org_id,
            affiliate_id: a2.id,
            slug: slug.into(),
            custom_alias: Some(slug.into()),
            is_default: false,
            format: LinkFormat::Short,
            created_at: T0,
        };
        tx.insert_link(&link("jane"))?;
        let link_slug = conflict_of(tx.insert_link(&link("JANE")));
        Ok(vec![handle, slug, email, link_slug])
    })
    .await
    .unwrap();
    assert_eq!(names, vec![constraints::ORG_HANDLE, constraints::PROGRAM_SLUG, constraints::AFFILIATE_EMAIL, constraints::LINK_SLUG]);

    // A deleted affiliate no longer blocks its email, and disappears from every read.
    let (p3, a3) = (p.clone(), a.clone());
    transact::<_, StoreError, _>(&store, move |tx| {
        assert!(tx.delete_affiliate(org_id, a3.id, T0)?);
        assert!(!tx.delete_affiliate(org_id, a3.id, T0)?, "a second delete finds nothing");
        assert_eq!(tx.affiliate(org_id, a3.id)?, None);
        assert_eq!(tx.affiliates_of_user("nobody", &a3.email)?, vec![]);
        tx.insert_affiliate(&affiliate(org_id, p3.id, "jane@creator.test"))?;
        assert_eq!(tx.org_usage(org_id)?.affiliates, 1);
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn lists_page_newest_first_and_filter() {
    let db = test_db!();
    let store = db.store();
    let (o, p, first) = seed(&store, "acme").await;
    let org_id = o.id;
    let mut others: Vec<Affiliate> = (0..4).map(|i| affiliate(org_id, p.id, &format!("a{i}@x.test"))).collect();
    others[2].full_name = Some("Percy 100%".into());
    others[3].user_id = Some("user-9".into());
    let written = others.clone();
    transact::<_, StoreError, _>(&store, move |tx| written.iter().try_for_each(|a| tx.insert_affiliate(a))).await.unwrap();

    let mut all = others.clone();
    all.push(first.clone());
    all.sort_by_key(|a| std::cmp::Reverse(a.id));
    let page_one = PageRequest::parse(Some(2), None).unwrap();
    let rows = transact::<_, StoreError, _>(&store, move |tx| {
        let one = tx.list_affiliates(org_id, &AffiliateFilter::default(), &page_one)?;
        let after = PageRequest::parse(Some(2), Some(one[1].id.as_uuid())).unwrap();
        let two = tx.list_affiliates(org_id, &AffiliateFilter::default(), &after)?;
        let q = |q: &str| AffiliateFilter { q: Some(q.into()), ..AffiliateFilter::default() };
        let percent = tx.list_affiliates(org_id, &q("100%"), &PageRequest::first())?;
        let wildcard = tx.list_affiliates(org_id, &q("_"), &PageRequest::first())?;
        let by_email = tx.list_affiliates(org_id, &q("A2@X"), &PageRequest::first())?;
        let banned = AffiliateFilter { status: Some(AffiliateStatus::Banned), ..AffiliateFilter::default() };
        let none = tx.list_affiliates(org_id, &banned, &PageRequest::first())?;
        let linked = tx.affiliates_of_user("user-9", &Email::parse("e", "a3@x.test").unwrap())?;
        let by_email_unlinked = tx.affiliates_of_user("user-1", &Email::parse("e", "a1@x.test").unwrap())?;
        Ok((one, two, percent, wildcard, by_email, none, linked, by_email_unlinked))
    })
    .await
    .unwrap();
    let (one, two, percent, wildcard, by_email, none, linked, by_email_unlinked) = rows;
    assert_eq!(one, all[..3].to_vec(), "take + 1 rows, newest first");
    assert_eq!(two, all[2..5].to_vec(), "the next page starts strictly after the cursor");
    assert_eq!(percent, vec![others[2].clone()]);
    assert_eq!(wildcard, vec![], "LIKE wildcards in q are literal");
    assert_eq!(by_email, vec![others[2].clone()], "q ignores case");
    assert_eq!(none, vec![]);
    assert_eq!(linked, vec![others[3].clone()]);
    assert_eq!(by_email_unlinked, vec![others[1].clone()]);
}

#[derive(Debug)]
enum WorkError {
    Refused,
    #[allow(dead_code)] // read through Debug in assertion messages only
    Store(StoreError),
}

impl From<StoreError> for WorkError {
    fn from(e: StoreError) -> Self {
        WorkError::Store(e)
    }
}

#[tokio::test]
async fn a_rolled_back_transaction_leaves_nothing() {
    let db = test_db!();
    let store = db.store();
    let o = org("acme");
    let p = program(o.id, "spring");
    let (o2, p2) = (o.clone(), p.clone());
    let result = transact::<(), WorkError, _>(&store, move |tx| {
        tx.insert_org(&o2)?;
        tx.insert_program(&p2)?;
        Err(WorkError::Refused)
    })
    .await;
    assert!(matches!(result, Err(WorkError::Refused)), "the work's own error comes back: {result:?}");

    let (org_id, prog_id) = (o.id, p.id);
    let after = transact::<_, StoreError, _>(&store, move |tx| Ok((tx.org(org_id)?, tx.program(org_id, prog_id)?))).await.unwrap();
    assert_eq!(after, (None, None));
}

#[tokio::test]
async fn a_work_that_swallows_a_failed_read_is_not_reported_as_committed() {
    let db = test_db!();
    let store = db.store();
    let (o, _, _) = seed(&store, "acme").await;
    // Corrupt nothing; make a read fail on the server instead, by querying a missing table.
    let org_id = o.id;
    let mut conn = PgConnection::establish(&db.url).unwrap();
    conn.batch_execute("ALTER TABLE api_keys RENAME TO api_keys_gone").unwrap();
    let result = transact::<_, StoreError, _>(&store, move |tx| {
        let _ignored = tx.api_key_by_hash("x");
        tx.org_usage(org_id).map(|_| ()).or(Ok(()))
    })
    .await;
    match result {
        Err(StoreError::Unexpected(e)) => assert!(e.to_string().contains("after a statement failed"), "{e}"),
        other => panic!("expected Unexpected, got {other:?}"),
    }
}

#[tokio::test]
async fn a_stored_stripe_id_the_domain_refuses_is_read_back_as_unexpected_naming_its_column() {
    let db = test_db!();
    let store = db.store();
    let (o, p, a) = seed(&store, "acme").await;
    let cc = campaign_coupon(o.id, p.id);
    let ac = affiliate_coupon(&a, &cc, "JANE20");
    let (cc2, ac2) = (cc.clone(), ac.clone());
    transact::<_, StoreError, _>(&store, move |tx| {
        tx.insert_campaign_coupon(&cc2)?;
        tx.insert_affiliate_coupon(&ac2)
    })
    .await
    .unwrap();
    // Rows written outside the domain: a customer id where an account id belongs, an invoice
    // id where a promotion code's belongs.
    let mut conn = PgConnection::establish(&db.url).unwrap();
    conn.batch_execute(&format!("UPDATE organizations SET stripe_account_id = 'cus_1' WHERE id = '{}'", o.id)).unwrap();
    conn.batch_execute(&format!("UPDATE affiliate_coupons SET stripe_promotion_code_id = 'in_1' WHERE id = '{}'", ac.id)).unwrap();

    let (org_id, code_id) = (o.id, ac.id);
    let read_org = transact::<_, StoreError, _>(&store, move |tx| tx.org(org_id)).await;
    match read_org {
        Err(StoreError::Unexpected(e)) => {
            let message = e.to_string();
            assert!(message.contains("organizations.stripe_account_id holds a value the domain rejects"), "{message}");
            assert!(message.contains("acct_"), "{message}");
        }
        other => panic!("expected Unexpected, got {other:?}"),
    }
    let read_code = transact::<_, StoreError, _>(&store, move |tx| tx.affiliate_coupon(org_id, code_id)).await;
    match read_code {
        Err(StoreError::Unexpected(e)) => {
            assert!(e.to_string().contains("affiliate_coupons.stripe_promotion_code_id holds a value the domain rejects"), "{e}");
        }
        other => panic!("expected Unexpected, got {other:?}"),
    }
}

#[tokio::test]
async fn the_audit_log_refuses_updates_and_deletes() {
    let db = test_db!();
    let store = db.store();
    let (o, _, _) = seed(&store, "acme").await;
    let entry = AuditEntry {
        id: AuditId::from_uuid(id()),
        org_id: o.id,
        actor: AuditActor::User("user-1".into()),
        action: AuditAction::ProgramCreated,
        entity_type: "program",
        entity_id: "p".into(),
        before: None,
        after: None,
        created_at: T0,
    };
    let written = entry.clone();
    transact::<_, StoreError, _>(&store, move |tx| tx.append_audit(&written)).await.unwrap();

    let mut conn = PgConnection::establish(&db.url).unwrap();
    let update = conn.batch_execute("UPDATE audit_log SET action = 'rewritten'");
    assert!(update.is_err_and(|e| e.to_string().contains("append-only")));
    assert!(conn.batch_execute("DELETE FROM audit_log").is_err());
    assert!(conn.batch_execute("TRUNCATE audit_log").is_err());

    let org_id = o.id;
    let entries = transact::<_, StoreError, _>(&store, move |tx| tx.audit_entries(org_id, 10)).await.unwrap();
    assert_eq!(entries, vec![entry]);
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_not_a_panic() {
    // Port 1 on localhost refuses connections immediately.
    let store = PgStore::connect("postgres://postgres@127.0.0.1:1/none", 1).unwrap();
    assert!(matches!(store.ping().await, Err(StoreError::Unavailable(_))));
    let result = transact::<_, StoreError, _>(&store, |tx| tx.org_usage(OrgId::from_uuid(Uuid::nil()))).await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
    assert!(PgStore::connect("postgres://x", 0).is_err());
}

#[test]
fn database_names_replace_only_the_path_of_the_url() {
    assert_eq!(with_database(DEFAULT_URL, "t1"), "postgres://postgres@127.0.0.1:5432/t1");
    assert_eq!(with_database("postgres://h/db?sslmode=disable", "t2"), "postgres://h/t2?sslmode=disable");
    assert_eq!(with_database("postgres://h", "t3"), "postgres://h/t3");
}
