//! The storage contract of organizations and API keys ([`OrgRepo`]): every field round trips,
//! the handle and the Stripe account are unique, a key is found by its hash until revoked, the
//! usage snapshot counts what billing limits, and the scans across organizations.
//!
//! [`OrgRepo`]: rekomi_domain::orgs::OrgRepo

use rekomi_domain::kernel::plan::{PlanTier, SubscriptionStatus};
use rekomi_domain::orgs::{hash_api_key, ApiKeyScope, OrgUsage, Organization};
use rekomi_domain::ports::store::{constraints, UnitOfWork};
use time::{Duration, OffsetDateTime};

use super::fixtures::*;
use super::{assert_conflict, attempt, commit, nums};

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

/// Two organizations cannot share a handle.
pub async fn an_organization_handle_is_unique(store: &dyn UnitOfWork) {
    seed(store, Seed { orgs: vec![org(1, "acme")], ..Seed::default() }).await;
    let result = attempt(store, |tx| tx.insert_org(&org(2, "acme"))).await;
    assert_conflict(result, constraints::ORG_HANDLE);
    assert_eq!(commit(store, |tx| tx.org(id(2))).await, None);
}

/// `set_stripe_account` links and unlinks one organization and reports a missing one.
pub async fn an_organization_links_and_unlinks_its_stripe_account(store: &dyn UnitOfWork) {
    let mut acme = org(1, "acme");
    acme.stripe_account_id = None;
    let other = org(2, "globex");
    seed(store, Seed { orgs: vec![acme, other.clone()], ..Seed::default() }).await;
    assert!(commit(store, |tx| tx.set_stripe_account(id(1), Some(&stripe_id("acct_linked")))).await);
    assert_eq!(
        commit(store, |tx| tx.org(id(1))).await.and_then(|o| o.stripe_account_id).as_ref().map(|id| id.as_str()),
        Some("acct_linked")
    );
    assert_eq!(commit(store, |tx| tx.org(id(2))).await, Some(other), "another organization is untouched");
    assert!(commit(store, |tx| tx.set_stripe_account(id(1), None)).await);
    assert_eq!(commit(store, |tx| tx.org(id(1))).await.and_then(|o| o.stripe_account_id), None);
    assert!(!commit(store, |tx| tx.set_stripe_account(id(9), Some(&stripe_id("acct_x")))).await);
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

/// An organization is found by the exact Stripe account it is linked to, and no longer once
/// unlinked.
pub async fn an_organization_is_found_by_its_stripe_account(store: &dyn UnitOfWork) {
    let mut unlinked = org(3, "initech");
    unlinked.stripe_account_id = None;
    let mut globex = org(2, "globex");
    globex.stripe_account_id = Some(stripe_id("acct_2Globex"));
    seed(store, Seed { orgs: vec![org(1, "acme"), globex.clone(), unlinked], ..Seed::default() }).await;

    let got = commit(store, |tx| {
        Ok((
            tx.org_by_stripe_account(&stripe_id("acct_2Globex"))?,
            tx.org_by_stripe_account(&stripe_id("acct_2GLOBEX"))?,
            tx.org_by_stripe_account(&stripe_id("acct_9"))?,
        ))
    })
    .await;
    assert_eq!(got, (Some(globex), None, None));
    commit(store, |tx| tx.set_stripe_account(id(2), None).map(drop)).await;
    assert_eq!(commit(store, |tx| tx.org_by_stripe_account(&stripe_id("acct_2Globex"))).await, None);
}

/// `some_orgs` returns up to `limit` organizations, oldest first (then by id).
pub async fn some_orgs_come_oldest_first(store: &dyn UnitOfWork) {
    let at = |mut o: Organization, created_at: OffsetDateTime| {
        o.created_at = created_at;
        o
    };
    let day = Duration::days(1);
    seed(
        store,
        Seed {
            orgs: vec![
                at(org(1, "acme"), T0 - day),
                at(org(2, "globex"), T0),
                at(org(3, "initech"), T0 - 2 * day),
                at(org(4, "umbrella"), T0),
            ],
            ..Seed::default()
        },
    )
    .await;

    let ids_of = |orgs: Vec<Organization>| orgs.iter().map(|o| o.id.as_uuid()).collect::<Vec<_>>();
    let (all, two, none) = commit(store, |tx| Ok((tx.some_orgs(10)?, tx.some_orgs(2)?, tx.some_orgs(0)?))).await;
    assert_eq!(ids_of(all), nums(&[3, 1, 2, 4]));
    assert_eq!(ids_of(two), nums(&[3, 1]));
    assert!(none.is_empty());
}
