//! Tracking use cases over the in-memory store with a fixed clock: a rotated signing secret
//! verifies for exactly 24 hours more, an S2S sale earns the program's rate once per
//! `externalEventId` with no Stripe payment on its ledger, and an unknown slug or a lapsed plan
//! writes nothing. (`conversion.created` is checked end to end, in `tests/tests/s2s.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rekomi_domain::affiliates::{AffiliateStatus, Email, NewAffiliate};
use rekomi_domain::conversions::ConversionFilter;
use rekomi_domain::kernel::actor::{BrandActor, Role};
use rekomi_domain::kernel::clock::Clock;
use rekomi_domain::kernel::error::DomainError;
use rekomi_domain::kernel::ids::ApiKeyId;
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::kernel::plan::{PlanTier, SubscriptionStatus};
use rekomi_domain::orgs::{Handle, NewOrganization};
use rekomi_domain::services::{BrandContext, Services};
use rekomi_domain::tracking::signature::header;
use rekomi_domain::tracking::{S2sConversion, S2sError, S2sOutcome, SecretCache, SignatureRefusal};
use rekomi_fakes::{FixedClock, InMemoryStore};
use support::{block_on, new_program};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

fn world() -> (Services, InMemoryStore, FixedClock) {
    let store = InMemoryStore::new();
    let clock = FixedClock::new(T0);
    let services = support::offline_services(&store, &clock, 11);
    (services, store, clock)
}

fn org(services: &Services, plan: PlanTier) -> BrandContext {
    let new = NewOrganization { name: "Acme".into(), handle: Handle::parse("acme").unwrap(), plan };
    let (org, _) = block_on(services.create_organization(new)).unwrap();
    BrandContext { actor: BrandActor::ApiKey { org: org.id, key: ApiKeyId::from_uuid(uuid::Uuid::nil()) }, org, now: T0 }
}

/// Verifies with a cache of its own, so every call reads the store.
fn verify(services: &Services, ctx: &BrandContext, secret: &str, at: OffsetDateTime) -> Result<(), S2sError> {
    verify_with(&SecretCache::new(), services, ctx, secret, at)
}

fn verify_with(cache: &SecretCache, services: &Services, ctx: &BrandContext, secret: &str, at: OffsetDateTime) -> Result<(), S2sError> {
    let body = br#"{"externalEventId":"e1"}"#;
    block_on(services.verify_s2s_signature(cache, ctx, Some(header(secret, at.unix_timestamp(), body).as_str()), body))
}

#[test]
fn cached_secrets_never_hide_a_new_secret_nor_outlive_their_overlap() {
    let (services, _, clock) = world();
    let ctx = org(&services, PlanTier::Starter);
    let cache = SecretCache::new();
    let old = block_on(services.rotate_tracking_secret(&ctx)).unwrap().record.secret.expose().to_owned();
    assert!(verify_with(&cache, &services, &ctx, &old, T0).is_ok(), "read from the store, then cached");
    // Rotated a moment later (by any process): the new secret verifies at once, although the
    // cache still holds only the old one.
    let new = block_on(services.rotate_tracking_secret(&ctx)).unwrap().record.secret.expose().to_owned();
    assert!(verify_with(&cache, &services, &ctx, &new, T0).is_ok(), "a miss in the cache is checked against the store");
    assert!(verify_with(&cache, &services, &ctx, &old, T0).is_ok(), "inside the overlap");
    // The cached copy of the old secret carries its expiry: it stops at the end of the overlap.
    clock.set(T0 + Duration::hours(24));
    let late = verify_with(&cache, &services, &ctx, &old, clock.now());
    assert!(matches!(late, Err(S2sError::Signature(SignatureRefusal::Mismatch))), "{late:?}");
    assert!(verify_with(&cache, &services, &ctx, "rks_0000000000000000000000000000000000000000", clock.now()).is_err());
}

#[test]
fn a_rotated_secret_verifies_for_24_hours_more_and_only_owners_rotate() {
    let (services, _, clock) = world();
    let ctx = org(&services, PlanTier::Starter);
    let first = block_on(services.rotate_tracking_secret(&ctx)).unwrap();
    assert!(first.previous.is_none());
    let old = first.record.secret.expose().to_owned();
    assert!(verify(&services, &ctx, &old, T0).is_ok());

    let rotated = block_on(services.rotate_tracking_secret(&ctx)).unwrap();
    assert_eq!(rotated.previous.as_ref().and_then(|p| p.expires_at), Some(T0 + Duration::hours(24)));
    let new = rotated.record.secret.expose().to_owned();
    clock.set(T0 + Duration::hours(24) - Duration::seconds(1));
    assert!(verify(&services, &ctx, &old, clock.now()).is_ok(), "inside the overlap");
    clock.set(T0 + Duration::hours(24));
    let late = verify(&services, &ctx, &old, clock.now());
    assert!(matches!(late, Err(S2sError::Signature(SignatureRefusal::Mismatch))), "{late:?}");
    assert!(verify(&services, &ctx, &new, clock.now()).is_ok());

    let manager = BrandContext { actor: BrandActor::User { org: ctx.org.id, user_id: "u".into(), role: Role::Manager }, ..ctx.clone() };
    let refused = block_on(services.rotate_tracking_secret(&manager)).unwrap_err();
    assert!(matches!(refused, DomainError::Forbidden { code: "insufficient_role", .. }), "{refused:?}");
}

#[test]
fn an_s2s_sale_earns_the_program_rate_once_and_unknown_slugs_and_lapsed_plans_write_nothing() {
    let (services, store, _) = world();
    let ctx = org(&services, PlanTier::Trial);
    let program = block_on(services.create_program(&ctx, new_program("Default"))).unwrap().id;
    let new = NewAffiliate {
        program_id: program,
        email: Email::parse("email", "jane@creator.test").unwrap(),
        full_name: None,
        status: Some(AffiliateStatus::Approved),
        custom_commission: None,
        custom_alias: Some("jane".into()),
        recruited_by: None,
    };
    block_on(services.create_affiliate(&ctx, new)).unwrap();
    let sale = S2sConversion::parse("order-1", "JANE", 12_345, "EUR", None).unwrap();
    let S2sOutcome::Recorded(id) = block_on(services.record_s2s_conversion(&ctx, sale.clone())).unwrap() else {
        panic!("the first report records the sale");
    };
    assert_eq!(block_on(services.record_s2s_conversion(&ctx, sale)).unwrap(), S2sOutcome::Deduplicated);
    let org = ctx.org.id;
    let (c, ledger) = store.read(|tx| (tx.conversion(org, id).unwrap().unwrap(), tx.ledger_of(org, id).unwrap()));
    assert_eq!((c.amount_minor, c.commission_minor, c.currency.code()), (12_345, 2_469, "EUR"), "20 % of 123.45");
    assert_eq!((c.attribution_method.as_deref(), c.external_event_id.as_deref()), (None, Some("order-1")));
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].stripe_invoice_id, None, "no Stripe payment to refund against");

    let unknown = S2sConversion::parse("order-2", "nobody", 100, "USD", None).unwrap();
    let err = block_on(services.record_s2s_conversion(&ctx, unknown)).unwrap_err();
    assert!(matches!(err, DomainError::NotFound("affiliate_not_found")), "{err:?}");
    let mut lapsed = ctx.clone();
    lapsed.org.subscription_status = SubscriptionStatus::None;
    let again = S2sConversion::parse("order-3", "jane", 100, "USD", None).unwrap();
    assert!(matches!(block_on(services.record_s2s_conversion(&lapsed, again)), Err(DomainError::PlanRequired(_))));
    let page = PageRequest::parse(Some(50), None).unwrap();
    let count = store.read(|tx| tx.list_conversions(org, &ConversionFilter::default(), &page).unwrap().len());
    assert_eq!(count, 1, "neither the unknown slug nor the lapsed plan wrote a conversion");
}
