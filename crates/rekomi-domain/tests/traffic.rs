//! The click tracker over the in-memory store and a sink that writes each click at once (or
//! sheds on demand), with a fixed clock: a Short link's redirect and click, the 30-minute
//! uniqueness of a visitor, the cache that keeps a switched-off program's link alive for at most
//! its TTL, load shedding that still redirects, and a landing page that reuses its Short link's
//! click. (The same paths run end to end over HTTP and PostgreSQL in `tests/tests/traffic*.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::IpAddr;
use std::sync::Arc;

use rekomi_domain::affiliates::{AffiliateStatus, Email, NewAffiliate};
use rekomi_domain::kernel::actor::BrandActor;
use rekomi_domain::kernel::ids::ApiKeyId;
use rekomi_domain::kernel::plan::PlanTier;
use rekomi_domain::orgs::{Handle, NewOrganization};
use rekomi_domain::programs::{LandingUrl, ProgramPatch};
use rekomi_domain::services::{BrandContext, Services};
use rekomi_domain::traffic::{ClickId, ClickTracker, DeviceClass, TrackerConfig, Visit};
use rekomi_fakes::{FixedClock, InMemoryStore, StoreClickSink};
use support::{block_on, new_program};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

struct World {
    services: Services,
    store: InMemoryStore,
    clock: FixedClock,
    sink: Arc<StoreClickSink>,
    tracker: ClickTracker,
    ctx: BrandContext,
    affiliate: rekomi_domain::kernel::ids::AffiliateId,
    program: rekomi_domain::kernel::ids::ProgramId,
}

/// A Growth organization whose program lands on `https://shop.test/pricing`, with Jane
/// (Approved, slug `jane`).
fn world() -> World {
    let store = InMemoryStore::new();
    let clock = FixedClock::new(T0);
    let services = support::offline_services(&store, &clock, 7);
    let new = NewOrganization { name: "Acme".into(), handle: Handle::parse("acme").unwrap(), plan: PlanTier::Growth };
    let (org, _) = block_on(services.create_organization(new)).unwrap();
    let ctx = BrandContext { actor: BrandActor::ApiKey { org: org.id, key: ApiKeyId::from_uuid(uuid::Uuid::nil()) }, org, now: T0 };
    let mut program = new_program("Partners");
    program.landing_url = Some(LandingUrl::parse("https://shop.test/pricing").unwrap());
    let program = block_on(services.create_program(&ctx, program)).unwrap().id;
    let new = NewAffiliate {
        program_id: program,
        email: Email::parse("email", "jane@creator.test").unwrap(),
        full_name: None,
        status: Some(AffiliateStatus::Approved),
        custom_commission: None,
        custom_alias: Some("jane".into()),
        recruited_by: None,
    };
    let affiliate = block_on(services.create_affiliate(&ctx, new)).unwrap().affiliate.id;
    let sink = Arc::new(StoreClickSink::new(store.clone()));
    let tracker = ClickTracker::new(services.clone(), sink.clone(), TrackerConfig::default());
    World { services, store, clock, sink, tracker, ctx, affiliate, program }
}

fn visit(ip: &str, params: &[(&str, &str)]) -> Visit {
    Visit {
        ip: ip.parse::<IpAddr>().unwrap(),
        user_agent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0".into(),
        device: DeviceClass::Desktop,
        referrer: Some("https://news.test/a".into()),
        country: None,
        params: params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        page_url: None,
    }
}

fn clicks(store: &InMemoryStore, w: &World, id: ClickId) -> Option<rekomi_domain::traffic::Click> {
    let org = w.ctx.org.id;
    store.read(|tx| tx.click(org, id).unwrap())
}

#[test]
fn a_short_link_records_one_unique_click_per_visitor_and_half_hour_and_sheds_load_without_losing_the_referral() {
    let w = world();
    let first = block_on(w.tracker.follow_short_link("JANE", visit("203.0.113.7", &[("sub1", "yt")]))).unwrap();
    let id = first.click.expect("recorded");
    assert_eq!(first.location, format!("https://shop.test/pricing?sub1=yt&via=jane&rk_click={id}"));
    let stored = clicks(&w.store, &w, id).unwrap();
    assert_eq!((stored.affiliate_id, stored.program_id, stored.is_unique), (w.affiliate, w.program, true));
    assert_eq!((stored.referrer_host.as_str(), stored.sub_id.as_deref()), ("news.test", Some("yt")));

    // (minutes later, address) -> unique?
    for (minutes, ip, unique) in
        [(10, "203.0.113.7", false), (29, "203.0.113.7", false), (10, "198.51.100.2", true), (31, "203.0.113.7", true)]
    {
        w.clock.set(T0 + Duration::minutes(minutes));
        let again = block_on(w.tracker.follow_short_link("jane", visit(ip, &[]))).unwrap().click.unwrap();
        assert_eq!(clicks(&w.store, &w, again).unwrap().is_unique, unique, "{minutes} min, {ip}");
    }

    // A full buffer drops the click, counts it, and the visitor still gets the referral.
    w.sink.set_full(true);
    let shed = block_on(w.tracker.follow_short_link("jane", visit("192.0.2.9", &[]))).unwrap();
    assert_eq!((shed.click, shed.location.as_str()), (None, "https://shop.test/pricing?via=jane"));
    assert_eq!(w.sink.dropped(), 1);
}

#[test]
fn a_switched_off_programs_link_stops_within_the_cache_ttl() {
    let w = world();
    assert!(block_on(w.tracker.follow_short_link("jane", visit("203.0.113.7", &[]))).is_ok());
    block_on(w.services.update_program(&w.ctx, w.program, ProgramPatch { is_active: Some(false), ..ProgramPatch::default() })).unwrap();
    assert!(block_on(w.tracker.follow_short_link("jane", visit("203.0.113.7", &[]))).is_ok(), "cached for up to the TTL");
    w.clock.set(T0 + TrackerConfig::default().link_cache_ttl);
    let refused = block_on(w.tracker.follow_short_link("jane", visit("203.0.113.7", &[]))).unwrap_err();
    assert!(matches!(refused, rekomi_domain::kernel::error::DomainError::NotFound("link_not_found")), "{refused:?}");
}

#[test]
fn a_landing_page_reuses_its_short_links_click_and_counts_plain_visits() {
    let w = world();
    let short = block_on(w.tracker.follow_short_link("jane", visit("203.0.113.7", &[]))).unwrap().click.unwrap();
    let id = short.to_string();
    let landing = [("via", "jane"), ("rk_click", id.as_str())];
    let seen = block_on(w.tracker.record_page_visit(Some(w.program), visit("203.0.113.7", &landing))).unwrap().unwrap();
    assert_eq!((seen.click, seen.slug.as_str(), seen.cookie_window_days), (short, "jane", 30));
    let plain = block_on(w.tracker.record_page_visit(Some(w.program), visit("203.0.113.7", &[("ref", "jane")]))).unwrap().unwrap();
    assert_ne!(plain.click, short, "a page visit without a Short link is a click of its own");
    assert!(clicks(&w.store, &w, plain.click).is_some());
    let nothing = block_on(w.tracker.record_page_visit(Some(w.program), visit("203.0.113.7", &[("utm_source", "x")]))).unwrap();
    assert_eq!(nothing, None);
}
