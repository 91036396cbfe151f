//! The storage contract of affiliates, their links and recruitment ([`AffiliateRepo`]): round
//! trips, deletion, the email unique per program, filters and pages, the rows an affiliate-side
//! user owns, link slugs unique per organization in any case, and recruiters.
//!
//! [`AffiliateRepo`]: rekomi_domain::affiliates::AffiliateRepo

use rekomi_domain::affiliates::{Affiliate, AffiliateFilter, AffiliateStatus, Email};
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::ports::store::{constraints, UnitOfWork};
use time::Duration;
use uuid::Uuid;

use super::fixtures::*;
use super::{assert_conflict, attempt, commit, nums, read_pages, sorted, uuids};

fn affiliate_uuid(a: &Affiliate) -> Uuid {
    a.id.as_uuid()
}

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

/// A link slug names its (not deleted) affiliate, whatever the case it is typed in.
pub async fn an_affiliate_is_found_by_link_slug_in_any_case_unless_deleted(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let (jane, bob) = (affiliate(&p, 200, "jane@creator.test"), affiliate(&p, 201, "bob@creator.test"));
    seed(
        store,
        Seed {
            orgs: vec![a, org(2, "globex")],
            programs: vec![p],
            links: vec![link(&jane, 300, "Jane-Doe", true), link(&jane, 301, "jane-yt", false), link(&bob, 302, "bob", true)],
            affiliates: vec![jane.clone(), bob],
            ..Seed::default()
        },
    )
    .await;
    commit(store, |tx| tx.delete_affiliate(id(1), id(201), T0).map(drop)).await;

    let got = commit(store, |tx| {
        Ok(vec![
            tx.affiliate_by_link_slug(id(1), "jane-doe")?,
            tx.affiliate_by_link_slug(id(1), "JANE-DOE")?,
            tx.affiliate_by_link_slug(id(1), "Jane-YT")?,
            tx.affiliate_by_link_slug(id(1), "bob")?,
            tx.affiliate_by_link_slug(id(1), "nobody")?,
            tx.affiliate_by_link_slug(id(2), "jane-doe")?,
        ])
    })
    .await;
    assert_eq!(got, vec![Some(jane.clone()), Some(jane.clone()), Some(jane), None, None, None]);
}

/// Recruitment: one recruiter per affiliate (set again, it is replaced), and a recruiter's
/// recruits oldest first, deleted ones left out.
pub async fn recruiters_are_recorded_and_replaced_and_recruits_listed(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let (jane, bob, eve, ann) = (
        affiliate(&p, 200, "jane@creator.test"),
        affiliate(&p, 201, "bob@creator.test"),
        affiliate(&p, 202, "eve@creator.test"),
        affiliate(&p, 203, "ann@creator.test"),
    );
    seed(
        store,
        Seed { orgs: vec![a], programs: vec![p], affiliates: vec![jane, bob.clone(), eve.clone(), ann.clone()], ..Seed::default() },
    )
    .await;

    commit(store, |tx| {
        tx.set_recruiter(id(1), id(203), id(200))?;
        tx.set_recruiter(id(1), id(201), id(200))?;
        tx.set_recruiter(id(1), id(202), id(201))
    })
    .await;
    let (of_bob, of_jane, janes, bobs) = commit(store, |tx| {
        Ok((
            tx.recruiter_of(id(1), id(201))?,
            tx.recruiter_of(id(1), id(200))?,
            tx.recruits_of(id(1), id(200))?,
            tx.recruits_of(id(1), id(201))?,
        ))
    })
    .await;
    assert_eq!(of_bob, Some(id(200)));
    assert_eq!(of_jane, None);
    assert_eq!(janes, vec![bob.clone(), ann.clone()], "oldest first");
    assert_eq!(bobs, vec![eve.clone()]);

    commit(store, |tx| tx.set_recruiter(id(1), id(203), id(201))).await;
    let (of_ann, janes, bobs) =
        commit(store, |tx| Ok((tx.recruiter_of(id(1), id(203))?, tx.recruits_of(id(1), id(200))?, tx.recruits_of(id(1), id(201))?))).await;
    assert_eq!(of_ann, Some(id(201)), "a second record replaces the first");
    assert_eq!(janes, vec![bob]);
    assert_eq!(bobs, vec![eve, ann.clone()]);

    commit(store, |tx| tx.delete_affiliate(id(1), id(202), T0).map(drop)).await;
    assert_eq!(commit(store, |tx| tx.recruits_of(id(1), id(201))).await, vec![ann], "deleted recruits are left out");
}
