//! Tenant isolation across every capability's store slice: no read or write scoped to one
//! organization reaches another's rows, the composite foreign keys keep references inside one
//! organization, and rows cannot point at themselves. Kept together rather than per
//! capability because each test seeds one tenant's rows of every kind and probes them all.

use rekomi_domain::affiliates::{AffiliateFilter, AffiliateStatus, Email};
use rekomi_domain::conversions::{Conversion, ConversionFilter, ConversionStatus, LedgerKind, SubAffiliateConfig};
use rekomi_domain::coupons::{CouponCode, CouponSelector};
use rekomi_domain::kernel::actor::AuditActor;
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::orgs::OrgUsage;
use rekomi_domain::outbound::DeliveryStatus;
use rekomi_domain::ports::store::{StoreError, Tx, UnitOfWork};
use rekomi_domain::programs::Hundredths;

use super::fixtures::*;
use super::{assert_conflict, attempt, commit, foreign_keys};

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
                ("affiliate_coupon_by_stripe_id", tx.affiliate_coupon_by_stripe_id(o, &stripe_id("promo_500"))?.is_some()),
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

/// One organization's conversion, ledger, recruitment, sub-affiliate setting, webhook rows and
/// inbox event, for the isolation tests.
fn tenant_rows() -> Seed {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let p = program(&a, 100, "spring");
    let (jane, bob) = (affiliate(&p, 200, "jane@creator.test"), affiliate(&p, 201, "bob@creator.test"));
    let cc = campaign_coupon(&p, 400, Some("coupon_400"));
    let code = affiliate_coupon(&jane, &cc, 500, "JANE20", Some("promo_500"));
    let mut sale = conversion(&jane, 800);
    sale.affiliate_coupon_id = Some(code.id);
    let over = override_of(&sale, &bob, 801);
    let (hook, event) = (endpoint(&a, 1000), outbox_event(&a, 1100));
    Seed {
        orgs: vec![a.clone(), b],
        programs: vec![p],
        affiliates: vec![jane.clone(), bob],
        links: vec![link(&jane, 300, "jane-doe", true)],
        campaign_coupons: vec![cc],
        affiliate_coupons: vec![code],
        ledger: vec![ledger_event(&sale, 900, LedgerKind::Initial, Some("in_paid"), T0)],
        conversions: vec![sale, over],
        inbox: vec![inbox_event(1300, Some(&a), T0)],
        endpoints: vec![hook.clone()],
        outbox: vec![event.clone()],
        deliveries: vec![delivery(&hook, &event, 1200, T0)],
        ..Seed::default()
    }
}

/// The getters added for conversions, recruitment, sub-affiliate settings, link slugs, webhooks
/// and the inbox treat another organization's ids, slugs and Stripe ids as absent.
pub async fn no_conversion_or_webhook_getter_reveals_another_organizations_rows(store: &dyn UnitOfWork) {
    seed(store, tenant_rows()).await;
    commit(store, |tx| {
        tx.set_recruiter(id(1), id(201), id(200))?;
        tx.put_sub_affiliate_config(id(1), id(100), &SubAffiliateConfig { enabled: true, percent: Hundredths::new(10_00) })
    })
    .await;

    let read_as = |org: u128| {
        move |tx: &mut dyn Tx| -> Result<Vec<(&'static str, bool)>, StoreError> {
            let o = id(org);
            let first = PageRequest::first();
            Ok(vec![
                ("conversion", tx.conversion(o, id(800))?.is_some()),
                ("conversion_for_update", tx.conversion_for_update(o, id(800))?.is_some()),
                ("sale_conversion_of_subscription", tx.sale_conversion_of_subscription(o, &stripe_id("sub_800"))?.is_some()),
                ("conversion_of_invoice by ledger", tx.conversion_of_invoice(o, &stripe_id("in_paid"))?.is_some()),
                ("conversion_of_invoice by first event", tx.conversion_of_invoice(o, &stripe_id("in_800"))?.is_some()),
                ("overrides_of", !tx.overrides_of(o, id(800))?.is_empty()),
                ("affiliate_of_customer", tx.affiliate_of_customer(o, Some(&stripe_id("cus_800")), Some("buyer800@shop.test"))?.is_some()),
                ("list_conversions", !tx.list_conversions(o, &ConversionFilter::default(), &first)?.is_empty()),
                (
                    "list_conversions by affiliate",
                    !tx.list_conversions(o, &ConversionFilter { affiliate_id: Some(id(200)), ..ConversionFilter::default() }, &first)?
                        .is_empty(),
                ),
                ("ledger_of", !tx.ledger_of(o, id(800))?.is_empty()),
                ("affiliate_by_link_slug", tx.affiliate_by_link_slug(o, "jane-doe")?.is_some()),
                ("recruiter_of", tx.recruiter_of(o, id(201))?.is_some()),
                ("recruits_of", !tx.recruits_of(o, id(200))?.is_empty()),
                ("sub_affiliate_config", tx.sub_affiliate_config(o, id(100))? != SubAffiliateConfig::default()),
                ("endpoint", tx.endpoint(o, id(1000))?.is_some()),
                ("endpoints", !tx.endpoints(o)?.is_empty()),
                ("delivery", tx.delivery(o, id(1200))?.is_some()),
                ("deliveries_of", !tx.deliveries_of(o, id(1000), &first)?.is_empty()),
                ("list_inbox_events", !tx.list_inbox_events(Some(o), None, None, 10)?.is_empty()),
            ])
        }
    };
    let owner = commit(store, read_as(1)).await;
    let stranger = commit(store, read_as(2)).await;
    for ((getter, owner_saw), (_, stranger_saw)) in owner.into_iter().zip(stranger) {
        assert!(owner_saw, "{getter}: the owner must see its row (the check would be vacuous otherwise)");
        assert!(!stranger_saw, "{getter}: another organization must not see the row");
    }
}

/// Updates and deletes of conversions, webhooks, redemptions, recruitment and sub-affiliate
/// settings naming another organization change nothing.
pub async fn no_conversion_or_webhook_write_reaches_into_another_organization(store: &dyn UnitOfWork) {
    seed(store, tenant_rows()).await;
    commit(store, |tx| {
        tx.set_recruiter(id(1), id(201), id(200))?;
        // Stored, so a forged put meets the row (the upsert's update path) rather than nothing.
        tx.put_sub_affiliate_config(id(1), id(100), &SubAffiliateConfig { enabled: false, percent: Hundredths::new(7_00) })
    })
    .await;
    let before = commit(store, |tx| {
        Ok((
            tx.conversion(id(1), id(800))?,
            tx.endpoint(id(1), id(1000))?,
            tx.delivery(id(1), id(1200))?,
            tx.affiliate_coupon(id(1), id(500))?,
            tx.recruiter_of(id(1), id(201))?,
            tx.sub_affiliate_config(id(1), id(100))?,
        ))
    })
    .await;

    let mut forged_conversion = before.0.clone().unwrap();
    forged_conversion.org_id = id(2);
    forged_conversion.status = ConversionStatus::Paid;
    let mut forged_endpoint = before.1.clone().unwrap();
    forged_endpoint.org_id = id(2);
    forged_endpoint.url = "https://evil.test".to_owned();
    let mut forged_delivery = before.2.clone().unwrap();
    forged_delivery.org_id = id(2);
    forged_delivery.status = DeliveryStatus::Succeeded;
    // Whether a store reports these as errors or as no-ops is its choice; none may land.
    let _ = attempt(store, move |tx| tx.update_conversion(&forged_conversion)).await;
    let _ = attempt(store, move |tx| tx.update_endpoint(&forged_endpoint)).await;
    let _ = attempt(store, move |tx| tx.update_delivery(&forged_delivery)).await;
    let _ = attempt(store, |tx| tx.add_redemption(id(2), id(500), 1, T0)).await;
    let _ = attempt(store, |tx| tx.set_recruiter(id(2), id(201), id(200))).await;
    let on = SubAffiliateConfig { enabled: true, percent: Hundredths::new(50_00) };
    let _ = attempt(store, move |tx| tx.put_sub_affiliate_config(id(2), id(100), &on)).await;
    let deleted = commit(store, |tx| tx.delete_endpoint(id(2), id(1000))).await;
    assert!(!deleted, "another organization cannot delete the endpoint");

    let after = commit(store, |tx| {
        Ok((
            tx.conversion(id(1), id(800))?,
            tx.endpoint(id(1), id(1000))?,
            tx.delivery(id(1), id(1200))?,
            tx.affiliate_coupon(id(1), id(500))?,
            tx.recruiter_of(id(1), id(201))?,
            tx.sub_affiliate_config(id(1), id(100))?,
        ))
    })
    .await;
    assert_eq!(after, before);
    let theirs = commit(store, |tx| {
        Ok((tx.conversion(id(2), id(800))?, tx.sub_affiliate_config(id(2), id(100))?, tx.recruiter_of(id(2), id(201))?))
    })
    .await;
    assert_eq!(theirs, (None, SubAffiliateConfig::default(), None));
}

/// The composite foreign keys of the new tables refuse a row of one organization that points
/// at another's program, affiliate, code, conversion, endpoint or outbox event.
pub async fn conversion_and_webhook_rows_cannot_point_into_another_organization(store: &dyn UnitOfWork) {
    let mut rows = tenant_rows();
    let b = rows.orgs[1].clone();
    let q = program(&b, 101, "spring");
    let theirs = affiliate(&q, 202, "eve@creator.test");
    let their_coupon = campaign_coupon(&q, 401, Some("coupon_401"));
    let (their_hook, their_event) = (endpoint(&b, 1001), outbox_event(&b, 1101));
    rows.programs.push(q.clone());
    rows.affiliates.push(theirs.clone());
    rows.campaign_coupons.push(their_coupon);
    rows.endpoints.push(their_hook.clone());
    rows.outbox.push(their_event.clone());
    seed(store, rows).await;

    let refused = |c: Conversion, constraint: &'static str| async move {
        assert_conflict(attempt(store, move |tx| tx.insert_conversion(&c)).await, constraint);
    };
    refused(Conversion { program_id: id(100), ..conversion(&theirs, 810) }, foreign_keys::CONVERSION_PROGRAM).await;
    refused(Conversion { affiliate_id: id(200), ..conversion(&theirs, 811) }, foreign_keys::CONVERSION_AFFILIATE).await;
    refused(Conversion { affiliate_coupon_id: Some(id(500)), ..conversion(&theirs, 812) }, foreign_keys::CONVERSION_AFFILIATE_COUPON).await;
    refused(Conversion { parent_conversion_id: Some(id(800)), ..conversion(&theirs, 813) }, foreign_keys::CONVERSION_PARENT).await;

    let their_sale = conversion(&theirs, 814);
    let insert = their_sale.clone();
    commit(store, move |tx| tx.insert_conversion(&insert)).await;
    let mut forged = their_sale.clone();
    forged.affiliate_id = id(200);
    assert_conflict(attempt(store, move |tx| tx.update_conversion(&forged)).await, foreign_keys::CONVERSION_AFFILIATE);
    let mut entry = ledger_event(&their_sale, 910, LedgerKind::Initial, None, T0);
    entry.conversion_id = id(800);
    assert_conflict(attempt(store, move |tx| tx.insert_ledger_event(&entry)).await, foreign_keys::LEDGER_CONVERSION);

    let mut to_their_hook = delivery(&their_hook, &their_event, 1210, T0);
    to_their_hook.endpoint_id = id(1000);
    assert_conflict(attempt(store, move |tx| tx.insert_delivery(&to_their_hook)).await, foreign_keys::DELIVERY_ENDPOINT);
    let mut of_their_event = delivery(&their_hook, &their_event, 1211, T0);
    of_their_event.event_id = id(1100);
    assert_conflict(attempt(store, move |tx| tx.insert_delivery(&of_their_event)).await, foreign_keys::DELIVERY_EVENT);

    assert_conflict(attempt(store, |tx| tx.set_recruiter(id(2), id(202), id(200))).await, foreign_keys::RECRUITMENT_RECRUITER);
    assert_conflict(attempt(store, |tx| tx.set_recruiter(id(2), id(200), id(202))).await, foreign_keys::RECRUITMENT_AFFILIATE);
    let on = SubAffiliateConfig { enabled: true, percent: Hundredths::new(10_00) };
    assert_conflict(
        attempt(store, move |tx| tx.put_sub_affiliate_config(id(2), id(100), &on)).await,
        foreign_keys::SUB_AFFILIATE_CONFIG_PROGRAM,
    );
}

/// An affiliate cannot recruit itself and a conversion cannot be its own parent: the store
/// refuses (as an unexpected error: it is a bug in the caller, not a conflict to handle).
pub async fn self_references_are_refused(store: &dyn UnitOfWork) {
    seed(store, tenant_rows()).await;
    let own_recruiter = attempt(store, |tx| tx.set_recruiter(id(1), id(200), id(200))).await;
    assert!(matches!(own_recruiter, Err(StoreError::Unexpected(_))), "{own_recruiter:?}");
    let mut own_parent = commit(store, |tx| tx.conversion(id(1), id(801))).await.unwrap();
    own_parent.parent_conversion_id = Some(own_parent.id);
    let update = own_parent.clone();
    let refused = attempt(store, move |tx| tx.update_conversion(&update)).await;
    assert!(matches!(refused, Err(StoreError::Unexpected(_))), "{refused:?}");
    own_parent.id = id(815);
    own_parent.parent_conversion_id = Some(id(815));
    let refused = attempt(store, move |tx| tx.insert_conversion(&own_parent)).await;
    assert!(matches!(refused, Err(StoreError::Unexpected(_))), "{refused:?}");
    assert_eq!(commit(store, |tx| tx.recruiter_of(id(1), id(200))).await, None);
    assert_eq!(commit(store, |tx| tx.conversion(id(1), id(801))).await.and_then(|c| c.parent_conversion_id), Some(id(800)));
}
