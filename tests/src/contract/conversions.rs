//! The storage contract of conversions and their ledger ([`ConversionRepo`]): processed
//! sources claimed once, round trips, the lookups the attribution and refund rules rely on (by
//! subscription, invoice, customer, payment), one sale per subscription, filters and pages, the
//! approval scan, and ledger order.
//!
//! Longer than 600 lines: one repository's contract, each test's seed spelled out beside its asserts.
//!
//! [`ConversionRepo`]: rekomi_domain::conversions::ConversionRepo

use rekomi_domain::conversions::{Conversion, ConversionFilter, ConversionStatus, ConversionType, LedgerKind};
use rekomi_domain::kernel::ids::AffiliateId;
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::ports::store::{constraints, StoreError, UnitOfWork};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::fixtures::*;
use super::{assert_conflict, attempt, commit, nums, read_pages, uuids};

fn conversion_uuid(c: &Conversion) -> Uuid {
    c.id.as_uuid()
}

/// `c` with its kind, status and creation time set.
fn shaped(mut c: Conversion, kind: ConversionType, status: ConversionStatus, created_at: OffsetDateTime) -> Conversion {
    c.kind = kind;
    c.status = status;
    c.created_at = created_at;
    c.updated_at = created_at;
    c
}

/// A source is claimed once per organization: a second claim answers false without failing the
/// transaction (later writes in it still land), another organization claims the same source
/// for itself, and a claim that is rolled back is released.
pub async fn a_source_is_claimed_once_per_organization(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    seed(store, Seed { orgs: vec![a.clone(), b], ..Seed::default() }).await;

    let p = program(&a, 100, "spring");
    let (first, again, seen) = commit(store, move |tx| {
        let first = tx.claim_source(id(1), "invoice:in_1", T0)?;
        let again = tx.claim_source(id(1), "invoice:in_1", T0 + Duration::seconds(1))?;
        tx.insert_program(&p)?;
        Ok((first, again, tx.program(id(1), id(100))?.is_some()))
    })
    .await;
    assert!(first, "the first claim wins");
    assert!(!again, "the same source is claimed once");
    assert!(seen);
    assert!(commit(store, |tx| tx.program(id(1), id(100))).await.is_some(), "a refused claim does not abort the transaction");

    let (later, other_org, other_source) = commit(store, |tx| {
        Ok((
            tx.claim_source(id(1), "invoice:in_1", T0 + Duration::days(1))?,
            tx.claim_source(id(2), "invoice:in_1", T0)?,
            tx.claim_source(id(1), "checkout:cs_1", T0)?,
        ))
    })
    .await;
    assert!(!later, "a claim holds in later transactions");
    assert!(other_org, "another organization claims the same source for itself");
    assert!(other_source);
    assert!(!commit(store, |tx| tx.claim_source(id(2), "invoice:in_1", T0)).await);

    let abandoned: Result<(), StoreError> = attempt(store, |tx| {
        assert!(tx.claim_source(id(1), "lead:sub_1", T0)?);
        Err(StoreError::Unavailable("abandoned".to_owned()))
    })
    .await;
    assert!(abandoned.is_err());
    assert!(commit(store, |tx| tx.claim_source(id(1), "lead:sub_1", T0)).await, "a rolled-back claim is released");
}

/// Every field of a conversion survives storage (the attribution trace as JSON, every optional
/// field set or not, the full `u32` range), the locking read sees the same row, and
/// `update_conversion` replaces every field.
pub async fn a_conversion_round_trips_and_every_field_updates(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let (jane, bob) = (affiliate(&p, 200, "jane@creator.test"), affiliate(&p, 201, "bob@creator.test"));
    let cc = campaign_coupon(&p, 400, Some("coupon_400"));
    let code = affiliate_coupon(&jane, &cc, 500, "JANE20", Some("promo_500"));

    let mut sale = shaped(conversion(&jane, 800), ConversionType::OneTime, ConversionStatus::Refunded, T0);
    sale.attribution_method = Some("coupon".to_owned());
    sale.coupon_code = Some("JANE20".to_owned());
    sale.affiliate_coupon_id = Some(code.id);
    sale.denial_reason = Some("kept for the record".to_owned());
    sale.paid_invoices = u32::MAX;
    sale.approved_at = Some(T0 + Duration::days(30));
    sale.refunded_at = Some(T0 + Duration::days(40));
    let mut bare = shaped(conversion(&bob, 801), ConversionType::LeadReward, ConversionStatus::Denied, T0);
    bare.amount_minor = 0;
    bare.commission_minor = 0;
    bare.currency = currency("JPY");
    bare.attribution_method = None;
    bare.stripe_customer_id = None;
    bare.stripe_subscription_id = None;
    bare.external_event_id = None;
    bare.customer_email = None;
    bare.denial_reason = Some("self_referral".to_owned());
    bare.attribution_trace = serde_json::Value::Null;
    bare.paid_invoices = 0;
    let over = override_of(&sale, &bob, 802);
    seed(
        store,
        Seed {
            orgs: vec![a],
            programs: vec![p],
            affiliates: vec![jane, bob.clone()],
            campaign_coupons: vec![cc],
            affiliate_coupons: vec![code],
            conversions: vec![sale.clone(), bare.clone(), over.clone()],
            ..Seed::default()
        },
    )
    .await;

    let got = commit(store, |tx| {
        Ok((tx.conversion(id(1), id(800))?, tx.conversion(id(1), id(801))?, tx.conversion(id(1), id(802))?, tx.conversion(id(1), id(899))?))
    })
    .await;
    assert_eq!(got, (Some(sale.clone()), Some(bare), Some(over), None));
    assert_eq!(commit(store, |tx| tx.conversion_for_update(id(1), id(800))).await, Some(sale.clone()));

    let mut changed = sale;
    changed.affiliate_id = bob.id;
    changed.kind = ConversionType::Recurring;
    changed.status = ConversionStatus::Approved;
    changed.amount_minor = 99_00;
    changed.currency = currency("EUR");
    changed.commission_minor = 19_80;
    changed.attribution_method = None;
    changed.coupon_code = None;
    changed.affiliate_coupon_id = None;
    changed.stripe_customer_id = Some(stripe_id("cus_changed"));
    changed.stripe_subscription_id = None;
    changed.external_event_id = Some("cs_changed".to_owned());
    changed.customer_email = None;
    changed.denial_reason = None;
    changed.attribution_trace = serde_json::json!(["reordered", { "b": 2, "a": 1 }]);
    changed.paid_invoices = 2;
    changed.approve_after = T0 + Duration::days(1);
    changed.approved_at = None;
    changed.refunded_at = None;
    changed.updated_at = T0 + Duration::hours(5);
    let update = changed.clone();
    commit(store, move |tx| tx.update_conversion(&update)).await;
    assert_eq!(commit(store, |tx| tx.conversion(id(1), id(800))).await, Some(changed.clone()));

    let ghost = Conversion { id: id(899), ..changed };
    let _ = attempt(store, move |tx| tx.update_conversion(&ghost)).await;
    assert_eq!(commit(store, |tx| tx.conversion(id(1), id(899))).await, None, "an update creates nothing");
}

/// A subscription's sale conversion is its most recent one-time or recurring conversion that
/// is not an override: leads, bonuses and overrides carrying the subscription are passed over.
pub async fn the_sale_conversion_of_a_subscription_skips_leads_and_overrides(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (p, q) = (program(&a, 100, "spring"), program(&b, 101, "spring"));
    let (jane, bob, theirs) =
        (affiliate(&p, 200, "jane@creator.test"), affiliate(&p, 201, "bob@creator.test"), affiliate(&q, 202, "eve@creator.test"));
    let on_sub = |c: Conversion, sub: &str| Conversion { stripe_subscription_id: Some(stripe_id(sub)), ..c };
    let sale =
        on_sub(shaped(conversion(&jane, 800), ConversionType::Recurring, ConversionStatus::Approved, T0 - Duration::days(2)), "sub_X");
    let lead =
        on_sub(shaped(conversion(&jane, 801), ConversionType::LeadReward, ConversionStatus::Pending, T0 - Duration::days(1)), "sub_X");
    let over = shaped(override_of(&sale, &bob, 802), ConversionType::Recurring, ConversionStatus::Pending, T0);
    let bonus = on_sub(shaped(conversion(&jane, 803), ConversionType::Bonus, ConversionStatus::Pending, T0), "sub_X");
    let one_time = on_sub(shaped(conversion(&jane, 804), ConversionType::OneTime, ConversionStatus::Pending, T0), "sub_Y");
    let elsewhere =
        on_sub(shaped(conversion(&theirs, 805), ConversionType::Recurring, ConversionStatus::Pending, T0 + Duration::days(1)), "sub_X");
    assert_eq!(over.stripe_subscription_id.as_ref().map(|id| id.as_str()), Some("sub_X"));
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p, q],
            affiliates: vec![jane.clone(), bob, theirs],
            conversions: vec![sale.clone(), lead, over, bonus, one_time.clone(), elsewhere.clone()],
            ..Seed::default()
        },
    )
    .await;

    let got = commit(store, |tx| {
        Ok((
            tx.sale_conversion_of_subscription(id(1), &stripe_id("sub_X"))?,
            tx.sale_conversion_of_subscription(id(1), &stripe_id("sub_Y"))?,
            tx.sale_conversion_of_subscription(id(1), &stripe_id("sub_Z"))?,
            tx.sale_conversion_of_subscription(id(2), &stripe_id("sub_X"))?,
            tx.sale_conversion_of_subscription(id(2), &stripe_id("sub_Y"))?,
        ))
    })
    .await;
    assert_eq!(got, (Some(sale), Some(one_time), None, Some(elsewhere), None));

    // A subscription has one sale conversion (a_subscription_has_one_sale_conversion_…), so a
    // second one cannot appear beside it.
    let newer =
        on_sub(shaped(conversion(&jane, 806), ConversionType::Recurring, ConversionStatus::Pending, T0 - Duration::hours(1)), "sub_X");
    assert_conflict(attempt(store, move |tx| tx.insert_conversion(&newer)).await, constraints::SUBSCRIPTION_SALE);
}

/// An invoice or checkout session leads to the non-override conversion whose ledger records it
/// as a sale (initial or renewal), or whose first event it was.
pub async fn a_conversion_is_found_by_invoice_through_its_ledger_or_first_event(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (p, q) = (program(&a, 100, "spring"), program(&b, 101, "spring"));
    let (jane, bob, theirs) =
        (affiliate(&p, 200, "jane@creator.test"), affiliate(&p, 201, "bob@creator.test"), affiliate(&q, 202, "eve@creator.test"));
    let first_event = |c: Conversion, event: &str| Conversion { external_event_id: Some(event.to_owned()), ..c };
    let sale = first_event(conversion(&jane, 800), "in_first");
    let over = override_of(&sale, &bob, 801);
    let mut checkout = first_event(conversion(&jane, 802), "cs_checkout");
    checkout.kind = ConversionType::OneTime;
    let elsewhere = first_event(conversion(&theirs, 803), "in_first");
    let day = Duration::days(1);
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p, q],
            affiliates: vec![jane, bob, theirs],
            conversions: vec![sale.clone(), over.clone(), checkout.clone(), elsewhere.clone()],
            ledger: vec![
                ledger_event(&sale, 900, LedgerKind::Initial, Some("in_first"), T0),
                ledger_event(&sale, 901, LedgerKind::Renewal, Some("in_second"), T0 + 30 * day),
                ledger_event(&sale, 902, LedgerKind::Refund, Some("in_second"), T0 + 31 * day),
                ledger_event(&sale, 903, LedgerKind::Adjustment, Some("in_adjusted"), T0 + 32 * day),
                ledger_event(&over, 904, LedgerKind::Renewal, Some("in_third"), T0 + 60 * day),
                ledger_event(&checkout, 905, LedgerKind::Refund, Some("in_refund_only"), T0 + day),
            ],
            ..Seed::default()
        },
    )
    .await;

    let got = commit(store, |tx| {
        Ok(vec![
            tx.conversion_of_invoice(id(1), &stripe_id("in_first"))?,
            tx.conversion_of_invoice(id(1), &stripe_id("in_second"))?,
            tx.conversion_of_invoice(id(1), &stripe_id("cs_checkout"))?,
            tx.conversion_of_invoice(id(1), &stripe_id("in_third"))?,
            tx.conversion_of_invoice(id(1), &stripe_id("in_adjusted"))?,
            tx.conversion_of_invoice(id(1), &stripe_id("in_refund_only"))?,
            tx.conversion_of_invoice(id(1), &stripe_id("in_unknown"))?,
            tx.conversion_of_invoice(id(2), &stripe_id("in_first"))?,
            tx.conversion_of_invoice(id(2), &stripe_id("in_second"))?,
        ])
    })
    .await;
    let ids: Vec<Option<Uuid>> = got.iter().map(|c| c.as_ref().map(conversion_uuid)).collect();
    let n = |v: u128| Some(Uuid::from_u128(v));
    assert_eq!(ids, vec![n(800), n(800), n(802), None, None, None, None, n(803), None]);
    assert_eq!(got[0], Some(sale), "the whole row comes back");
}

/// The overrides earned on a conversion come back oldest first, and only those.
pub async fn overrides_come_back_for_their_parent_oldest_first(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let (jane, bob, ann) =
        (affiliate(&p, 200, "jane@creator.test"), affiliate(&p, 201, "bob@creator.test"), affiliate(&p, 202, "ann@creator.test"));
    let (first, second) = (conversion(&jane, 800), conversion(&jane, 801));
    let overrides = vec![override_of(&first, &bob, 802), override_of(&second, &bob, 803), override_of(&first, &ann, 804)];
    let mut rows = vec![first, second];
    rows.extend(overrides.clone());
    seed(
        store,
        Seed { orgs: vec![a, org(2, "globex")], programs: vec![p], affiliates: vec![jane, bob, ann], conversions: rows, ..Seed::default() },
    )
    .await;

    let (of_first, of_second, of_override, elsewhere) = commit(store, |tx| {
        Ok((
            tx.overrides_of(id(1), id(800))?,
            tx.overrides_of(id(1), id(801))?,
            tx.overrides_of(id(1), id(802))?,
            tx.overrides_of(id(2), id(800))?,
        ))
    })
    .await;
    assert_eq!(of_first, vec![overrides[0].clone(), overrides[2].clone()]);
    assert_eq!(of_second, vec![overrides[1].clone()]);
    assert!(of_override.is_empty());
    assert!(elsewhere.is_empty());
}

/// A second sale conversion of one subscription, and a second organization on one Stripe
/// account, are refused under their constraint names; leads and overrides are not sales.
pub async fn a_subscription_has_one_sale_conversion_and_an_account_one_organization(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let p = program(&a, 100, "spring");
    let (jane, bob) = (affiliate(&p, 200, "jane@a.test"), affiliate(&p, 201, "bob@a.test"));
    let on_sub = |c: Conversion| Conversion { stripe_subscription_id: Some(stripe_id("sub_1")), ..c };
    let first = on_sub(shaped(conversion(&jane, 800), ConversionType::Recurring, ConversionStatus::Pending, T0));
    let lead = on_sub(shaped(conversion(&bob, 801), ConversionType::LeadReward, ConversionStatus::Pending, T0));
    let over = on_sub(override_of(&first, &bob, 802));
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p],
            affiliates: vec![jane.clone(), bob],
            conversions: vec![first, lead, over],
            ..Seed::default()
        },
    )
    .await;
    let second = on_sub(shaped(conversion(&jane, 803), ConversionType::OneTime, ConversionStatus::Pending, T0));
    assert_conflict(attempt(store, move |tx| tx.insert_conversion(&second)).await, constraints::SUBSCRIPTION_SALE);
    assert!(commit(store, |tx| tx.set_stripe_account(id(1), Some(&stripe_id("acct_shared")))).await);
    assert_conflict(
        attempt(store, |tx| tx.set_stripe_account(id(2), Some(&stripe_id("acct_shared"))).map(|_| ())).await,
        constraints::ORG_STRIPE_ACCOUNT,
    );
}

/// `orgs_of_stripe_customer` names every organization holding a conversion of the customer,
/// most recent first, at most two.
pub async fn the_organizations_of_a_stripe_customer_come_most_recent_first(store: &dyn UnitOfWork) {
    let (a, b, c) = (org(1, "acme"), org(2, "globex"), org(3, "initech"));
    let (pa, pb, pc) = (program(&a, 100, "spring"), program(&b, 101, "spring"), program(&c, 102, "spring"));
    let (ja, jb, jc) = (affiliate(&pa, 200, "j@a.test"), affiliate(&pb, 201, "j@b.test"), affiliate(&pc, 202, "j@c.test"));
    let of = |conversion: Conversion, customer: &str, at| Conversion {
        stripe_customer_id: Some(stripe_id(customer)),
        created_at: at,
        ..conversion
    };
    let day = Duration::days(1);
    seed(
        store,
        Seed {
            orgs: vec![a, b, c],
            programs: vec![pa, pb, pc],
            affiliates: vec![ja.clone(), jb.clone(), jc.clone()],
            conversions: vec![
                of(conversion(&ja, 800), "cus_shared", T0 - 2 * day),
                of(conversion(&jb, 801), "cus_shared", T0 - day),
                of(conversion(&jc, 802), "cus_shared", T0 - 3 * day),
                of(conversion(&ja, 803), "cus_only_a", T0),
            ],
            ..Seed::default()
        },
    )
    .await;
    let got = commit(store, |tx| {
        Ok((
            tx.orgs_of_stripe_customer(&stripe_id("cus_shared"))?,
            tx.orgs_of_stripe_customer(&stripe_id("cus_only_a"))?,
            tx.orgs_of_stripe_customer(&stripe_id("cus_none"))?,
        ))
    })
    .await;
    assert_eq!(got, (vec![id(2), id(1)], vec![id(1)], vec![]));
}

/// The affiliate of a customer is the one of the most recent conversion (by creation, then
/// id) matching the Stripe customer or the email in any case, leads included, denied
/// conversions and overrides excluded.
pub async fn the_affiliate_of_a_customer_is_the_latest_credited_by_id_or_email(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let p = program(&a, 100, "spring");
    let (jane, bob, eve, ann) = (
        affiliate(&p, 200, "jane@creator.test"),
        affiliate(&p, 201, "bob@creator.test"),
        affiliate(&p, 202, "eve@creator.test"),
        affiliate(&p, 203, "ann@creator.test"),
    );
    let buyer = |c: Conversion, customer: Option<&str>, email: Option<&str>| Conversion {
        stripe_customer_id: customer.map(stripe_id),
        customer_email: email.map(str::to_owned),
        ..c
    };
    let day = Duration::days(1);
    let jane_sale = buyer(
        shaped(conversion(&jane, 800), ConversionType::Recurring, ConversionStatus::Approved, T0 - 3 * day),
        Some("cus_A"),
        Some("Buyer@Shop.test"),
    );
    let bob_denied = buyer(
        shaped(conversion(&bob, 801), ConversionType::OneTime, ConversionStatus::Denied, T0 - day),
        Some("cus_A"),
        Some("buyer@shop.test"),
    );
    let eve_override = buyer(
        shaped(override_of(&jane_sale, &eve, 802), ConversionType::Recurring, ConversionStatus::Pending, T0),
        Some("cus_A"),
        Some("buyer@shop.test"),
    );
    let ann_by_email = buyer(
        shaped(conversion(&ann, 803), ConversionType::OneTime, ConversionStatus::Refunded, T0 - 2 * day),
        None,
        Some("BUYER@shop.test"),
    );
    let bob_lead = buyer(
        shaped(conversion(&bob, 804), ConversionType::LeadReward, ConversionStatus::Pending, T0 - Duration::hours(1)),
        Some("cus_B"),
        None,
    );
    // Two conversions created at the same instant: the larger id breaks the tie.
    let tie_jane = buyer(shaped(conversion(&jane, 805), ConversionType::OneTime, ConversionStatus::Pending, T0), Some("cus_C"), None);
    let tie_eve = buyer(shaped(conversion(&eve, 806), ConversionType::OneTime, ConversionStatus::Pending, T0), Some("cus_C"), None);
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p],
            affiliates: vec![jane, bob, eve, ann],
            conversions: vec![jane_sale, bob_denied, eve_override, ann_by_email, bob_lead, tie_jane, tie_eve],
            ..Seed::default()
        },
    )
    .await;

    let got = commit(store, |tx| {
        Ok(vec![
            ("customer only", tx.affiliate_of_customer(id(1), Some(&stripe_id("cus_A")), None)?),
            ("email only, any case", tx.affiliate_of_customer(id(1), None, Some("bUYER@SHOP.test"))?),
            ("either matches", tx.affiliate_of_customer(id(1), Some(&stripe_id("cus_A")), Some("buyer@shop.test"))?),
            ("unknown customer, known email", tx.affiliate_of_customer(id(1), Some(&stripe_id("cus_unknown")), Some("buyer@shop.test"))?),
            ("a lead counts", tx.affiliate_of_customer(id(1), Some(&stripe_id("cus_B")), None)?),
            ("tie on creation", tx.affiliate_of_customer(id(1), Some(&stripe_id("cus_C")), None)?),
            ("unknown", tx.affiliate_of_customer(id(1), Some(&stripe_id("cus_unknown")), Some("nobody@shop.test"))?),
            ("nothing asked", tx.affiliate_of_customer(id(1), None, None)?),
            ("another organization", tx.affiliate_of_customer(id(2), Some(&stripe_id("cus_A")), Some("buyer@shop.test"))?),
        ])
    })
    .await;
    let want: Vec<Option<AffiliateId>> =
        vec![Some(id(200)), Some(id(203)), Some(id(203)), Some(id(203)), Some(id(201)), Some(id(202)), None, None, None];
    for ((case, got), want) in got.into_iter().zip(want) {
        assert_eq!(got, want, "{case}");
    }
}

/// The conversion list filters by affiliate, program, status and creation window (`since`
/// inclusive, `until` exclusive) and pages newest first by id.
pub async fn conversion_lists_filter_and_page_newest_first(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (spring, summer, q) = (program(&a, 100, "spring"), program(&a, 101, "summer"), program(&b, 102, "spring"));
    let (jane, bob, ann, theirs) = (
        affiliate(&spring, 200, "jane@creator.test"),
        affiliate(&spring, 201, "bob@creator.test"),
        affiliate(&summer, 202, "ann@creator.test"),
        affiliate(&q, 203, "eve@creator.test"),
    );
    let day = Duration::days(1);
    let (pending, approved, denied, one) =
        (ConversionStatus::Pending, ConversionStatus::Approved, ConversionStatus::Denied, ConversionType::OneTime);
    let rows = vec![
        shaped(conversion(&jane, 800), one, pending, T0 - 3 * day),
        shaped(conversion(&bob, 801), one, approved, T0 - 2 * day),
        shaped(conversion(&ann, 802), one, pending, T0 - day),
        shaped(conversion(&jane, 803), one, denied, T0),
        shaped(conversion(&jane, 804), one, pending, T0 + Duration::hours(1)),
        shaped(conversion(&bob, 805), one, pending, T0 + day),
        shaped(conversion(&ann, 806), one, approved, T0 + 2 * day),
        shaped(conversion(&jane, 807), one, approved, T0 + 3 * day),
        shaped(conversion(&theirs, 808), one, pending, T0),
    ];
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![spring, summer, q],
            affiliates: vec![jane, bob, ann, theirs],
            conversions: rows,
            ..Seed::default()
        },
    )
    .await;

    let list = |filter: ConversionFilter| async move {
        let rows = commit(store, move |tx| tx.list_conversions(id(1), &filter, &PageRequest::first())).await;
        uuids(&rows, conversion_uuid)
    };
    let all = ConversionFilter::default();
    assert_eq!(list(all.clone()).await, nums(&[807, 806, 805, 804, 803, 802, 801, 800]));
    assert_eq!(list(ConversionFilter { affiliate_id: Some(id(200)), ..all.clone() }).await, nums(&[807, 804, 803, 800]));
    assert_eq!(list(ConversionFilter { program_id: Some(id(101)), ..all.clone() }).await, nums(&[806, 802]));
    assert_eq!(list(ConversionFilter { status: Some(pending), ..all.clone() }).await, nums(&[805, 804, 802, 800]));
    assert_eq!(list(ConversionFilter { since: Some(T0), ..all.clone() }).await, nums(&[807, 806, 805, 804, 803]));
    assert_eq!(list(ConversionFilter { until: Some(T0), ..all.clone() }).await, nums(&[802, 801, 800]));
    assert_eq!(
        list(ConversionFilter { since: Some(T0 - 2 * day), until: Some(T0 + day), ..all.clone() }).await,
        nums(&[804, 803, 802, 801])
    );
    assert_eq!(
        list(ConversionFilter { affiliate_id: Some(id(200)), status: Some(approved), since: Some(T0), ..all.clone() }).await,
        nums(&[807])
    );
    assert_eq!(list(ConversionFilter { affiliate_id: Some(id(203)), ..all.clone() }).await, nums(&[]), "another organization's affiliate");

    let pages = read_pages(store, 3, conversion_uuid, |tx, p| tx.list_conversions(id(1), &ConversionFilter::default(), p)).await;
    assert_eq!(pages, vec![nums(&[807, 806, 805]), nums(&[804, 803, 802]), nums(&[801, 800])]);
    let janes = ConversionFilter { affiliate_id: Some(id(200)), ..ConversionFilter::default() };
    let pages = read_pages(store, 2, conversion_uuid, move |tx, p| tx.list_conversions(id(1), &janes, p)).await;
    assert_eq!(pages, vec![nums(&[807, 804]), nums(&[803, 800])]);
}

/// Pending conversions whose `approve_after` has passed (inclusive), of every organization,
/// longest due first, at most `limit`.
pub async fn conversions_due_for_approval_span_organizations_longest_due_first(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let (p, q) = (program(&a, 100, "spring"), program(&b, 101, "spring"));
    let (jane, theirs) = (affiliate(&p, 200, "jane@creator.test"), affiliate(&q, 201, "eve@creator.test"));
    let due = |c: Conversion, status: ConversionStatus, approve_after: OffsetDateTime| Conversion { status, approve_after, ..c };
    let (pending, day) = (ConversionStatus::Pending, Duration::days(1));
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![p, q],
            affiliates: vec![jane.clone(), theirs.clone()],
            conversions: vec![
                due(conversion(&jane, 800), pending, T0 - day),
                due(conversion(&jane, 801), pending, T0),
                due(conversion(&jane, 802), pending, T0 + Duration::seconds(1)),
                due(conversion(&jane, 803), ConversionStatus::Approved, T0 - 5 * day),
                due(conversion(&jane, 804), ConversionStatus::Denied, T0 - 5 * day),
                due(conversion(&theirs, 805), pending, T0 - 2 * day),
                due(conversion(&jane, 806), pending, T0 - day),
            ],
            ..Seed::default()
        },
    )
    .await;

    let (all, two, none) = commit(store, move |tx| {
        Ok((
            tx.conversions_due_for_approval(T0, 10)?,
            tx.conversions_due_for_approval(T0, 2)?,
            tx.conversions_due_for_approval(T0 - 3 * day, 10)?,
        ))
    })
    .await;
    assert_eq!(uuids(&all, conversion_uuid), nums(&[805, 800, 806, 801]));
    assert_eq!(uuids(&two, conversion_uuid), nums(&[805, 800]));
    assert!(none.is_empty());
}

/// A conversion's ledger comes back whole and oldest first (by occurrence, then id), only its
/// own entries.
pub async fn a_ledger_comes_back_oldest_first(store: &dyn UnitOfWork) {
    let a = org(1, "acme");
    let p = program(&a, 100, "spring");
    let jane = affiliate(&p, 200, "jane@creator.test");
    let (sale, other) = (conversion(&jane, 800), conversion(&jane, 801));
    let hour = Duration::hours(1);
    let mut manual = ledger_event(&sale, 903, LedgerKind::Adjustment, None, T0 + hour);
    manual.amount_minor = 0;
    manual.commission_minor = -1;
    let entries = vec![
        ledger_event(&sale, 900, LedgerKind::Renewal, Some("in_2"), T0 + 2 * hour),
        ledger_event(&sale, 901, LedgerKind::Initial, Some("in_1"), T0),
        ledger_event(&sale, 902, LedgerKind::Refund, Some("in_1"), T0 + hour),
        manual,
        ledger_event(&other, 904, LedgerKind::Initial, Some("in_9"), T0 - hour),
    ];
    seed(
        store,
        Seed {
            orgs: vec![a, org(2, "globex")],
            programs: vec![p],
            affiliates: vec![jane],
            conversions: vec![sale, other],
            ledger: entries.clone(),
            ..Seed::default()
        },
    )
    .await;

    let (ledger, elsewhere, none) =
        commit(store, |tx| Ok((tx.ledger_of(id(1), id(800))?, tx.ledger_of(id(2), id(800))?, tx.ledger_of(id(1), id(899))?))).await;
    assert_eq!(ledger, vec![entries[1].clone(), entries[2].clone(), entries[3].clone(), entries[0].clone()]);
    assert!(elsewhere.is_empty());
    assert!(none.is_empty());
}

/// `orgs_of_payment` names the organizations whose ledger records a sale (initial or renewal
/// entry) of the payment, at most two; a refund entry alone names nobody.
pub async fn the_organizations_of_a_payment_are_those_whose_ledger_records_its_sale(store: &dyn UnitOfWork) {
    let (a, b, c) = (org(1, "acme"), org(2, "globex"), org(3, "initech"));
    let (pa, pb, pc) = (program(&a, 100, "spring"), program(&b, 101, "spring"), program(&c, 102, "spring"));
    let (ja, jb, jc) = (affiliate(&pa, 200, "j@a.test"), affiliate(&pb, 201, "j@b.test"), affiliate(&pc, 202, "j@c.test"));
    let (ca, cb, cc) = (conversion(&ja, 800), conversion(&jb, 801), conversion(&jc, 802));
    seed(
        store,
        Seed {
            orgs: vec![a, b, c],
            programs: vec![pa, pb, pc],
            affiliates: vec![ja, jb, jc],
            ledger: vec![
                ledger_event(&ca, 900, LedgerKind::Initial, Some("in_only_a"), T0),
                ledger_event(&ca, 901, LedgerKind::Renewal, Some("in_shared"), T0),
                ledger_event(&cb, 902, LedgerKind::Initial, Some("in_shared"), T0),
                ledger_event(&cc, 903, LedgerKind::Refund, Some("in_shared"), T0),
                ledger_event(&cc, 904, LedgerKind::Refund, Some("in_refund_only"), T0),
            ],
            conversions: vec![ca, cb, cc],
            ..Seed::default()
        },
    )
    .await;
    let (mut shared, only_a, refund_only, unknown) = commit(store, |tx| {
        Ok((
            tx.orgs_of_payment(&stripe_id("in_shared"))?,
            tx.orgs_of_payment(&stripe_id("in_only_a"))?,
            tx.orgs_of_payment(&stripe_id("in_refund_only"))?,
            tx.orgs_of_payment(&stripe_id("in_unknown"))?,
        ))
    })
    .await;
    shared.sort();
    assert_eq!((shared, only_a, refund_only, unknown), (vec![id(1), id(2)], vec![id(1)], vec![], vec![]));
}
