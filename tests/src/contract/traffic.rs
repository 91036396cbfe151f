//! The storage contract of traffic ([`TrafficRepo`]): links are found by slug across
//! organizations for Short links, clicks are written once and read back only in their
//! organization, and every process agrees on a day's visitor salt.
//!
//! [`TrafficRepo`]: rekomi_domain::traffic::TrafficRepo

use rekomi_domain::affiliates::AffiliateStatus;
use rekomi_domain::kernel::ids::OrgId;
use rekomi_domain::ports::store::UnitOfWork;
use rekomi_domain::programs::{CommissionModel, LandingUrl};
use rekomi_domain::traffic::ClickId;
use time::macros::date;
use time::Duration;
use uuid::Uuid;

use super::commit;
use super::fixtures::*;

/// A slug is found in any case, in every organization that holds it, oldest link first, with
/// what a click needs to know of its affiliate and program; a deleted affiliate's link is gone.
pub async fn a_link_target_is_found_by_slug_in_any_case_across_organizations_oldest_first(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let mut pa = program(&a, 100, "spring");
    pa.landing_url = Some(LandingUrl::parse("https://acme.test/pricing").unwrap());
    let mut pb = program(&b, 101, "spring");
    pb.is_active = false;
    let jane = affiliate(&pa, 200, "jane@creator.test");
    let mut other_jane = affiliate(&pb, 201, "jane@other.test");
    other_jane.status = AffiliateStatus::Paused;
    let gone = affiliate(&pa, 202, "gone@creator.test");
    let mut newer = link(&other_jane, 301, "Jane", false);
    newer.created_at = T0 + Duration::minutes(1);
    seed(
        store,
        Seed {
            orgs: vec![a.clone(), b.clone()],
            programs: vec![pa.clone(), pb.clone()],
            affiliates: vec![jane.clone(), other_jane.clone(), gone.clone()],
            links: vec![newer, link(&jane, 300, "jane", true), link(&gone, 302, "gone", true)],
            ..Seed::default()
        },
    )
    .await;
    let gone_id = gone.id;
    let (found, gone_found, none) = commit(store, move |tx| {
        assert!(tx.delete_affiliate(id(1), gone_id, T0)?);
        Ok((tx.link_targets_by_slug("JANE")?, tx.link_targets_by_slug("gone")?, tx.link_targets_by_slug("nobody")?))
    })
    .await;
    assert_eq!(found.len(), 2, "{found:?}");
    let (first, second) = (&found[0], &found[1]);
    assert_eq!((first.org_id, first.program_id, first.affiliate_id, first.link_id), (a.id, pa.id, jane.id, id(300)));
    assert_eq!(first.slug, "jane");
    assert_eq!(first.affiliate_status, AffiliateStatus::Approved);
    assert!(first.program_live && first.is_trackable());
    assert_eq!(first.landing_url, pa.landing_url);
    assert_eq!(
        (first.cookie_window_days, first.attribution_model, first.commission_model),
        (30, pa.attribution_model, pa.default_commission_model)
    );
    assert_eq!((second.org_id, second.link_id, second.slug.as_str()), (b.id, id(301), "Jane"));
    assert!(!second.program_live && !second.is_trackable(), "a paused affiliate of an inactive program");
    assert_eq!(second.landing_url, None);
    assert!(gone_found.is_empty(), "a deleted affiliate's link is not followed");
    assert!(none.is_empty());
}

/// Clicks come back whole in their own organization only; a batch written again (a retried
/// flush) writes nothing twice.
pub async fn clicks_are_written_once_and_read_back_only_in_their_organization(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let p = program(&a, 100, "spring");
    let jane = affiliate(&p, 200, "jane@creator.test");
    let l = link(&jane, 300, "jane", true);
    seed(store, Seed { orgs: vec![a, b], programs: vec![p.clone()], affiliates: vec![jane], links: vec![l.clone()], ..Seed::default() })
        .await;
    let first = click(&l, &p, 900, T0);
    let mut second = click(&l, &p, 901, T0 + Duration::seconds(1));
    (second.landing_url, second.utm_source, second.utm_medium, second.utm_campaign, second.sub_id, second.country) =
        (None, None, None, None, None, None);
    second.referrer_host = "(direct)".to_owned();
    second.is_unique = false;
    let batch = vec![first.clone(), second.clone()];
    let again = batch.clone();
    let (written, rewritten) = commit(store, move |tx| Ok((tx.insert_clicks(&batch)?, tx.insert_clicks(&again)?))).await;
    assert_eq!((written, rewritten), (2, 0));
    let (one, two, theirs, missing) = commit(store, move |tx| {
        Ok((
            tx.click(id(1), first.id)?,
            tx.click(id(1), second.id)?,
            tx.click(OrgId::from(Uuid::from_u128(2)), first.id)?,
            tx.click(id(1), ClickId::from_uuid(Uuid::from_u128(999)))?,
        ))
    })
    .await;
    assert_eq!(one, Some(click(&l, &p, 900, T0)));
    assert_eq!(two, Some(second));
    assert_eq!(theirs, None, "another organization's click reads as absent");
    assert_eq!(missing, None);
    let empty = commit(store, |tx| tx.insert_clicks(&[])).await;
    assert_eq!(empty, 0);
}

/// The first salt stored for a day is every caller's; salts before a day are forgotten.
pub async fn a_day_keeps_its_first_visitor_salt_until_forgotten(store: &dyn UnitOfWork) {
    let (d1, d2, d3) = (date!(2026 - 06 - 01), date!(2026 - 06 - 02), date!(2026 - 06 - 03));
    let (first, second, other) = commit(store, move |tx| {
        Ok((tx.visitor_salt(d1, "salt-one")?, tx.visitor_salt(d1, "salt-two")?, tx.visitor_salt(d2, "salt-three")?))
    })
    .await;
    assert_eq!((first.as_str(), second.as_str(), other.as_str()), ("salt-one", "salt-one", "salt-three"));
    let (forgotten, again, kept) = commit(store, move |tx| {
        let forgotten = tx.forget_visitor_salts_before(d2)?;
        Ok((forgotten, tx.visitor_salt(d1, "salt-four")?, tx.visitor_salt(d2, "salt-five")?))
    })
    .await;
    assert_eq!(forgotten, 1);
    assert_eq!(again, "salt-four", "a forgotten day starts afresh");
    assert_eq!(kept, "salt-three");
    assert_eq!(commit(store, move |tx| tx.forget_visitor_salts_before(d3)).await, 2);
}

/// A day's paid clicks are the unique, non-bot clicks of that UTC day on `Cpc` programs, per
/// affiliate, in every organization.
pub async fn cpc_counts_take_a_days_unique_human_clicks_on_cpc_programs(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    let mut cpc = program(&a, 100, "cpc");
    cpc.default_commission_model = CommissionModel::Cpc;
    let cps = program(&a, 101, "cps");
    let mut theirs = program(&b, 102, "cpc");
    theirs.default_commission_model = CommissionModel::Cpc;
    let (jane, sam, gus) =
        (affiliate(&cpc, 200, "jane@creator.test"), affiliate(&cps, 201, "sam@creator.test"), affiliate(&theirs, 202, "gus@creator.test"));
    let (lj, ls, lg) = (link(&jane, 300, "jane", true), link(&sam, 301, "sam", true), link(&gus, 302, "gus", true));
    seed(
        store,
        Seed {
            orgs: vec![a, b],
            programs: vec![cpc.clone(), cps.clone(), theirs.clone()],
            affiliates: vec![jane.clone(), sam, gus.clone()],
            links: vec![lj.clone(), ls.clone(), lg.clone()],
            ..Seed::default()
        },
    )
    .await;
    let day = T0.date();
    let mut clicks = vec![click(&lj, &cpc, 900, T0), click(&lj, &cpc, 901, T0 + Duration::hours(3)), click(&lg, &theirs, 902, T0)];
    let mut repeat = click(&lj, &cpc, 903, T0);
    repeat.is_unique = false;
    let mut bot = click(&lj, &cpc, 904, T0);
    bot.is_bot = true;
    let next_day = click(&lj, &cpc, 905, T0 + Duration::days(1));
    clicks.extend([repeat, bot, next_day, click(&ls, &cps, 906, T0)]);
    commit(store, move |tx| tx.insert_clicks(&clicks)).await;
    let counts = commit(store, move |tx| tx.cpc_click_counts(day)).await;
    let mut got: Vec<(Uuid, i64)> = counts.iter().map(|c| (c.affiliate_id.as_uuid(), c.clicks)).collect();
    got.sort();
    assert_eq!(got, vec![(jane.id.as_uuid(), 2), (gus.id.as_uuid(), 1)]);
    assert!(counts
        .iter()
        .all(|c| (c.org_id, c.program_id) == (jane.org_id, cpc.id) || (c.org_id, c.program_id) == (gus.org_id, theirs.id)));
    assert!(commit(store, move |tx| tx.cpc_click_counts(day - Duration::days(1))).await.is_empty());
}

/// An organization's pixel key is the first one claimed, and its attribution parameters and
/// pixel key change independently (neither write clobbers the other).
pub async fn a_pixel_key_is_claimed_once_and_settings_change_column_by_column(store: &dyn UnitOfWork) {
    let (a, b) = (org(1, "acme"), org(2, "globex"));
    seed(store, Seed { orgs: vec![a.clone(), b.clone()], ..Seed::default() }).await;
    let custom = rekomi_domain::traffic::CustomParams::parse("my_aff,brand_ref").unwrap();
    let (first, second, theirs) = commit(store, move |tx| {
        let first = tx.claim_pixel_key(id(1), "rkp_first", T0)?;
        tx.set_attribution_params(id(1), custom.as_ref(), T0 + Duration::seconds(1))?;
        let second = tx.claim_pixel_key(id(1), "rkp_second", T0 + Duration::seconds(2))?;
        Ok((first, second, tx.claim_pixel_key(id(2), "rkp_theirs", T0)?))
    })
    .await;
    assert_eq!((first.as_str(), second.as_str(), theirs.as_str()), ("rkp_first", "rkp_first", "rkp_theirs"));
    let (ours, other, none) =
        commit(store, |tx| Ok((tx.web_tracking_settings(id(1))?, tx.web_tracking_settings(id(2))?, tx.web_tracking_settings(id(3))?)))
            .await;
    let ours = ours.unwrap();
    assert_eq!(ours.pixel_public_key.as_deref(), Some("rkp_first"), "setting the parameters kept the key");
    assert_eq!(ours.custom_params.map(|c| c.to_csv()).as_deref(), Some("my_aff,brand_ref"), "claiming a key kept the parameters");
    assert_eq!(other.unwrap().custom_params, None);
    assert_eq!(none, None);
    commit(store, |tx| tx.set_attribution_params(id(1), None, T0 + Duration::seconds(3))).await;
    let cleared = commit(store, |tx| tx.web_tracking_settings(id(1))).await.unwrap();
    assert_eq!((cleared.custom_params, cleared.pixel_public_key.as_deref()), (None, Some("rkp_first")));
}
