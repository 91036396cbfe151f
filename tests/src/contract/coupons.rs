//! The storage contract of campaign coupons and affiliate codes ([`CouponRepo`]): round trips,
//! provisioning rows (no Stripe id yet) readable but not listed, the reconciler's scans, codes
//! unique per organization in any case, the lookups by code and Stripe id, selectors, and the
//! redemption count.
//!
//! [`CouponRepo`]: rekomi_domain::coupons::CouponRepo

use rekomi_domain::affiliates::Email;
use rekomi_domain::coupons::{AffiliateCoupon, CampaignCoupon, CodeRestrictions, CouponCode, CouponDuration, CouponSelector, DiscountSpec};
use rekomi_domain::kernel::money::Money;
use rekomi_domain::ports::store::{constraints, UnitOfWork};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::fixtures::*;
use super::{assert_conflict, attempt, commit, foreign_keys, nums, read_pages, sorted, uuids};

fn campaign_coupon_uuid(c: &CampaignCoupon) -> Uuid {
    c.id.as_uuid()
}

fn affiliate_coupon_uuid(c: &AffiliateCoupon) -> Uuid {
    c.id.as_uuid()
}

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
    changed.stripe_coupon_id = Some(stripe_id("coupon_abc"));
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
    let at = |mut c: CampaignCoupon, hours_before: i64| {
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
    changed.stripe_promotion_code_id = Some(stripe_id("promo_500"));
    changed.code = CouponCode::parse("JANE-SPRING").unwrap();
    changed.max_redemptions = None;
    changed.expires_at = None;
    changed.restrictions = CodeRestrictions {
        first_time_order: false,
        minimum_amount: None,
        limit_to_customers: false,
        customer_id: Some(stripe_id("cus_999")),
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
            tx.affiliate_coupon_by_stripe_id(id(1), &stripe_id("promo_500"))?,
            tx.affiliate_coupon_by_stripe_id(id(1), &stripe_id("promo_nope"))?,
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
    let at = |mut c: AffiliateCoupon, hours_before: i64| {
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

/// `add_redemption` moves the count by `delta` but never below zero, stamps
/// `last_redeemed_at` only when adding, always stamps `updated_at`, and touches nothing else.
pub async fn a_redemption_count_never_falls_below_zero(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let jane = affiliate(&p, 200, "jane@creator.test");
    let cc = campaign_coupon(&p, 400, Some("coupon_400"));
    let code = affiliate_coupon(&jane, &cc, 500, "JANE20", Some("promo_500"));
    let untouched = affiliate_coupon(&jane, &cc, 501, "JANE21", Some("promo_501"));
    seed(
        store,
        Seed {
            orgs: vec![a, org(2, "globex")],
            programs: vec![p],
            affiliates: vec![jane],
            campaign_coupons: vec![cc],
            affiliate_coupons: vec![code.clone(), untouched.clone()],
            ..Seed::default()
        },
    )
    .await;

    let at = |minutes: i64| T0 + Duration::minutes(minutes);
    let read = || async { commit(store, |tx| tx.affiliate_coupon(id(1), id(500))).await.unwrap() };
    let expect = |times: i64, last: Option<OffsetDateTime>, updated: OffsetDateTime| {
        let mut c = code.clone();
        c.times_redeemed = times;
        c.last_redeemed_at = last;
        c.updated_at = updated;
        c
    };

    commit(store, move |tx| tx.add_redemption(id(1), id(500), -1, at(1))).await;
    assert_eq!(read().await, expect(0, None, at(1)), "never below zero");
    commit(store, move |tx| tx.add_redemption(id(1), id(500), 1, at(2))).await;
    commit(store, move |tx| tx.add_redemption(id(1), id(500), 1, at(3))).await;
    assert_eq!(read().await, expect(2, Some(at(3)), at(3)));
    commit(store, move |tx| tx.add_redemption(id(1), id(500), -1, at(4))).await;
    assert_eq!(read().await, expect(1, Some(at(3)), at(4)), "a refund keeps the last redemption time");
    commit(store, move |tx| {
        tx.add_redemption(id(1), id(500), -1, at(5))?;
        tx.add_redemption(id(1), id(500), -1, at(6))
    })
    .await;
    assert_eq!(read().await, expect(0, Some(at(3)), at(6)));

    commit(store, move |tx| tx.add_redemption(id(2), id(500), 1, at(7))).await;
    assert_eq!(read().await, expect(0, Some(at(3)), at(6)), "another organization cannot count a redemption");
    commit(store, move |tx| tx.add_redemption(id(1), id(599), 1, at(7))).await;
    assert_eq!(commit(store, |tx| tx.affiliate_coupon(id(1), id(501))).await, Some(untouched));
}

/// Stripe ids resolve coupons in whichever organization holds them: a promotion code to its
/// affiliate coupon, a coupon id to every campaign coupon using it (newest first).
pub async fn stripe_ids_resolve_coupons_in_any_organization(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (p, q) = (program(&a, 100, "spring"), program(&b, 101, "spring"));
    let (jane, theirs) = (affiliate(&p, 200, "jane@creator.test"), affiliate(&q, 201, "eve@creator.test"));
    let coupons = vec![
        campaign_coupon(&p, 400, Some("coupon_shared")),
        campaign_coupon(&q, 401, Some("coupon_shared")),
        campaign_coupon(&p, 402, Some("coupon_own")),
        campaign_coupon(&q, 403, None),
    ];
    let codes = vec![
        affiliate_coupon(&jane, &coupons[0], 500, "JANE20", Some("promo_a")),
        affiliate_coupon(&theirs, &coupons[1], 501, "EVE20", Some("promo_b")),
        affiliate_coupon(&theirs, &coupons[1], 502, "EVE21", None),
    ];
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p, q],
            affiliates: vec![jane, theirs],
            campaign_coupons: coupons.clone(),
            affiliate_coupons: codes.clone(),
            ..Seed::default()
        },
    )
    .await;

    let got = commit(store, |tx| {
        Ok((
            tx.affiliate_coupon_by_stripe_id_any_org(&stripe_id("promo_a"))?,
            tx.affiliate_coupon_by_stripe_id_any_org(&stripe_id("promo_b"))?,
            tx.affiliate_coupon_by_stripe_id_any_org(&stripe_id("promo_unknown"))?,
            tx.campaign_coupons_by_stripe_id(&stripe_id("coupon_shared"))?,
            tx.campaign_coupons_by_stripe_id(&stripe_id("coupon_own"))?,
            tx.campaign_coupons_by_stripe_id(&stripe_id("coupon_unknown"))?,
        ))
    })
    .await;
    assert_eq!(got.0, Some(codes[0].clone()));
    assert_eq!(got.1, Some(codes[1].clone()));
    assert_eq!(got.2, None);
    assert_eq!(got.3, vec![coupons[1].clone(), coupons[0].clone()]);
    assert_eq!(got.4, vec![coupons[2].clone()]);
    assert!(got.5.is_empty());
}
