//! Outbound webhooks over the fakes: endpoint management, the outbox fan-out, and the delivery
//! worker (signatures, headers, retries with jitter, giving up, disabling, redelivery).
//!
//! Longer than 600 lines: one world shared by the endpoint and the delivery-worker scenarios.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rekomi_domain::conversions::attribution;
use rekomi_domain::conversions::{Conversion, ConversionStatus, ConversionType};
use rekomi_domain::kernel::actor::{BrandActor, Role};
use rekomi_domain::kernel::clock::Clock;
use rekomi_domain::kernel::error::DomainError;
use rekomi_domain::kernel::ids::{AffiliateId, ApiKeyId, ConversionId, DeliveryId, OrgId, ProgramId, WebhookEndpointId};
use rekomi_domain::kernel::money::Currency;
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::kernel::plan::PlanTier;
use rekomi_domain::kernel::signature;
use rekomi_domain::orgs::{Handle, NewOrganization};
use rekomi_domain::outbound::{
    outbox, ulid_of, Delivery, DeliveryReport, DeliveryStatus, EndpointStatus, EventType, OutboundRequest, SendOutcome, WebhookEndpoint,
    WebhookEndpointPatch, WebhookSender, DELIVERY_RETRY, DISABLE_AFTER_FAILURES,
};
use rekomi_domain::services::{BrandContext, Services};
use rekomi_domain::stripe_inbox::facts::{DecodeError, EventDecoder, EventEnvelope, StripeFact};
use rekomi_fakes::{FakeGateway, FakeWebhookSender, FixedClock, InMemoryStore, SeededEntropy};
use serde_json::{json, Value};
use support::block_on;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// Stripe decoding is not exercised here.
struct NoDecoder;

impl EventDecoder for NoDecoder {
    fn envelope(&self, _: &[u8]) -> Result<EventEnvelope, DecodeError> {
        Err(DecodeError("not used in these tests".into()))
    }
    fn decode(&self, _: &[u8]) -> Result<StripeFact, DecodeError> {
        Err(DecodeError("not used in these tests".into()))
    }
}

type Hook = Box<dyn FnOnce(&OutboundRequest) + Send + Sync>;

/// The fake sender, plus an optional one-shot hook run while the next request is "in flight"
/// (taken out before it runs, so it may itself run the worker).
#[derive(Clone)]
struct Sender {
    fake: FakeWebhookSender,
    hook: Arc<Mutex<Option<Hook>>>,
}

#[async_trait]
impl WebhookSender for Sender {
    async fn send(&self, request: &OutboundRequest) -> SendOutcome {
        let hook = self.hook.lock().unwrap().take();
        if let Some(hook) = hook {
            hook(request);
        }
        self.fake.send(request).await
    }
    async fn check_target(&self, url: &str) -> Result<(), String> {
        self.fake.check_target(url).await
    }
}

struct World {
    services: Services,
    store: InMemoryStore,
    sender: FakeWebhookSender,
    hook: Arc<Mutex<Option<Hook>>>,
    clock: FixedClock,
    entropy: Arc<SeededEntropy>,
}

const START: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

fn world() -> World {
    let store = InMemoryStore::new();
    let clock = FixedClock::new(START);
    let entropy = Arc::new(SeededEntropy::new(11));
    let sender = FakeWebhookSender::new();
    let hook: Arc<Mutex<Option<Hook>>> = Arc::default();
    let services = Services {
        store: Arc::new(store.clone()),
        gateway: Arc::new(FakeGateway::new()),
        payout_rail: Arc::new(rekomi_fakes::FakePayoutRail::new()),
        clock: Arc::new(clock.clone()),
        entropy: entropy.clone(),
        events: Arc::new(NoDecoder),
        webhooks: Arc::new(Sender { fake: sender.clone(), hook: Arc::clone(&hook) }),
    };
    World { services, store, sender, hook, clock, entropy }
}

fn code_of(err: DomainError) -> String {
    match err {
        DomainError::NotFound(c) => c.to_owned(),
        DomainError::Conflict { code, .. } | DomainError::Unprocessable { code, .. } | DomainError::Forbidden { code, .. } => {
            code.to_owned()
        }
        DomainError::Validation(f) => format!("validation:{}", f.field),
        DomainError::PlanRequired(p) => format!("plan:{}", p.required),
        other => format!("{other:?}"),
    }
}

impl World {
    fn org(&self, handle: &str) -> BrandContext {
        let (org, _key) = block_on(self.services.create_organization(NewOrganization {
            name: handle.to_owned(),
            handle: Handle::parse(handle).unwrap(),
            plan: PlanTier::Starter,
        }))
        .unwrap();
        BrandContext { actor: BrandActor::ApiKey { org: org.id, key: ApiKeyId::from_uuid(uuid::Uuid::nil()) }, org, now: START }
    }

    fn endpoint(&self, ctx: &BrandContext, events: &[&str]) -> WebhookEndpoint {
        let events = events.iter().map(|e| (*e).to_owned()).collect();
        block_on(self.services.create_webhook_endpoint(ctx, "https://hooks.example.com/rekomi".into(), Some("main".into()), events))
            .unwrap()
    }

    fn emit(&self, ctx: &BrandContext, event_type: &str) {
        let (org, now, entropy) = (ctx.org_id(), self.clock.now(), Arc::clone(&self.entropy));
        let event_type = EventType::parse(event_type).expect("a Rekomi event type");
        self.store.write(|tx| outbox::emit(tx, org, event_type, json!({ "id": "abc", "n": 1 }), now, entropy.as_ref())).unwrap();
    }

    fn deliver(&self) -> DeliveryReport {
        block_on(self.services.deliver_due_webhooks(20)).unwrap()
    }

    fn deliveries(&self, ctx: &BrandContext, endpoint: WebhookEndpointId) -> Vec<Delivery> {
        block_on(self.services.list_deliveries(ctx, endpoint, PageRequest::parse(Some(200), None).unwrap())).unwrap().items
    }

    fn only_delivery(&self, ctx: &BrandContext, endpoint: WebhookEndpointId) -> Delivery {
        let mut all = self.deliveries(ctx, endpoint);
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    fn get(&self, ctx: &BrandContext, id: WebhookEndpointId) -> WebhookEndpoint {
        block_on(self.services.get_webhook_endpoint(ctx, id)).unwrap()
    }
}

fn header<'a>(request: &'a OutboundRequest, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

// ---- delivery ---------------------------------------------------------------------------

#[test]
fn a_delivery_is_signed_with_the_endpoint_secret_and_carries_the_rekomi_headers() {
    let w = world();
    let ctx = w.org("acme");
    let ep = w.endpoint(&ctx, &["affiliate.*"]);
    w.emit(&ctx, "affiliate.created");
    w.clock.advance(Duration::seconds(3));

    let report = w.deliver();
    assert_eq!((report.claimed, report.delivered), (1, 1));
    let requests = w.sender.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.url, "https://hooks.example.com/rekomi");
    assert_eq!(header(request, "Content-Type"), Some("application/json"));
    assert_eq!(header(request, "X-Rekomi-Event"), Some("affiliate.created"));

    let now = w.clock.now().unix_timestamp();
    let sig = header(request, "X-Rekomi-Signature").unwrap();
    assert_eq!(signature::verify(sig, request.body.as_bytes(), std::slice::from_ref(&ep.secret), now), Ok(now), "signed at send time");
    assert!(signature::verify(sig, request.body.as_bytes(), &["whsec_other".to_owned()], now).is_err());
    assert!(sig.starts_with(&format!("t={now},v1=")));

    let delivery = w.only_delivery(&ctx, ep.id);
    let delivery_id = header(request, "X-Rekomi-Delivery-Id").unwrap();
    assert_eq!(delivery_id, ulid_of(delivery.id.as_uuid()));
    assert_eq!(delivery_id.len(), 26);
    assert!(delivery_id.bytes().all(|c| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&c)), "{delivery_id}");

    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["type"], "affiliate.created");
    assert_eq!(body["data"], json!({ "id": "abc", "n": 1 }));
    assert_eq!(body["created"], START.unix_timestamp(), "the body is fixed when the event happens");
    assert_eq!(body["id"].as_str().map(str::len), Some(26));

    assert_eq!(delivery.status, DeliveryStatus::Succeeded);
    assert_eq!(delivery.attempts, 1);
    assert_eq!(delivery.last_status, Some(200));
    assert_eq!(delivery.delivered_at, Some(w.clock.now()));
    assert_eq!(w.deliver(), DeliveryReport::default(), "nothing is sent twice");
}

#[test]
fn a_failed_attempt_is_retried_after_the_first_delay_with_the_same_body_and_id() {
    let w = world();
    let ctx = w.org("acme");
    let ep = w.endpoint(&ctx, &[]);
    w.emit(&ctx, "conversion.created");
    w.sender.fail_next(1, 500);

    let report = w.deliver();
    assert_eq!((report.claimed, report.retrying), (1, 1));
    let d = w.only_delivery(&ctx, ep.id);
    assert_eq!((d.status, d.attempts, d.last_status), (DeliveryStatus::Pending, 1, Some(500)));
    assert_eq!(d.last_error.as_deref(), Some("HTTP 500"));
    assert!(d.locked_until.is_none());
    let delay = d.next_attempt_at - START;
    assert!(delay >= Duration::seconds(10) && delay <= Duration::seconds(12), "{delay}");

    w.clock.advance(Duration::seconds(9));
    assert_eq!(w.deliver().claimed, 0, "not due yet");
    w.clock.set(d.next_attempt_at);
    assert_eq!(w.deliver().delivered, 1);

    let requests = w.sender.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body);
    assert_eq!(header(&requests[0], "X-Rekomi-Delivery-Id"), header(&requests[1], "X-Rekomi-Delivery-Id"));
    assert_ne!(header(&requests[0], "X-Rekomi-Signature"), header(&requests[1], "X-Rekomi-Signature"), "a new timestamp");
    let d = w.only_delivery(&ctx, ep.id);
    assert_eq!((d.status, d.attempts, d.last_status, d.last_error), (DeliveryStatus::Succeeded, 2, Some(200), None));
}

#[test]
fn retries_follow_the_schedule_with_at_most_twenty_percent_jitter_then_the_delivery_fails() {
    let w = world();
    let ctx = w.org("acme");
    let ep = w.endpoint(&ctx, &[]);
    w.emit(&ctx, "lead.created");
    w.sender.fail_next(100, 503);

    let mut jitters = Vec::new();
    for attempt in 1..=12u32 {
        let before = w.clock.now();
        let report = w.deliver();
        assert_eq!(report.retrying, 1, "attempt {attempt}");
        let d = w.only_delivery(&ctx, ep.id);
        assert_eq!(d.attempts, attempt);
        let base = DELIVERY_RETRY.delay(attempt).unwrap();
        let waited = d.next_attempt_at - before;
        assert!(waited >= base && waited <= base * 1.2, "attempt {attempt}: {waited} for {base}");
        jitters.push(waited - base);
        w.clock.set(d.next_attempt_at);
    }
    assert!(jitters.iter().any(|j| *j > Duration::ZERO), "some jitter is drawn");

    let report = w.deliver();
    assert_eq!((report.failed, report.endpoints_disabled), (1, 0));
    let d = w.only_delivery(&ctx, ep.id);
    assert_eq!((d.status, d.attempts, d.last_status), (DeliveryStatus::Failed, 13, Some(503)));
    assert_eq!(w.sender.requests().len(), 13);
    let total = w.clock.now() - START;
    assert!(total > Duration::days(2) && total < Duration::days(4), "{total}");
    assert_eq!(w.get(&ctx, ep.id).consecutive_failures, 1);
    assert_eq!(w.get(&ctx, ep.id).status, EndpointStatus::Enabled);
    w.clock.advance(Duration::days(5));
    assert_eq!(w.deliver().claimed, 0, "a failed delivery is not retried");
}

/// Runs the worker until no delivery is pending, moving the clock past every retry delay.
fn exhaust(w: &World) {
    for _ in 0..14 {
        w.deliver();
        w.clock.advance(Duration::hours(15));
    }
}

#[test]
fn an_endpoint_is_disabled_after_consecutive_dead_deliveries_and_re_enabling_resets_it() {
    let w = world();
    let ctx = w.org("acme");
    let ep = w.endpoint(&ctx, &["affiliate_coupon.*"]);
    for _ in 0..DISABLE_AFTER_FAILURES {
        w.emit(&ctx, "affiliate_coupon.created");
    }
    w.sender.fail_next(10_000, 500);
    exhaust(&w);

    let disabled = w.get(&ctx, ep.id);
    assert_eq!(disabled.status, EndpointStatus::Disabled);
    assert_eq!(disabled.consecutive_failures, DISABLE_AFTER_FAILURES);
    assert!(disabled.disabled_reason.as_deref().is_some_and(|r| r.contains("failed")), "{:?}", disabled.disabled_reason);
    assert!(w.deliveries(&ctx, ep.id).iter().all(|d| d.status == DeliveryStatus::Failed));
    let audit = w.store.read(|tx| tx.audit_entries(ctx.org_id(), 100).unwrap());
    let entry = audit.iter().find(|e| e.action.as_str() == "webhook_endpoint.disabled").expect("the disabling is audited");
    assert_eq!(entry.actor.kind(), "system");

    // A disabled endpoint gets no new deliveries, and redelivery to it is refused.
    w.emit(&ctx, "affiliate_coupon.updated");
    assert_eq!(w.deliveries(&ctx, ep.id).len(), DISABLE_AFTER_FAILURES as usize);
    let some = w.deliveries(&ctx, ep.id)[0].id;
    assert_eq!(code_of(block_on(w.services.redeliver(&ctx, ep.id, some)).unwrap_err()), "webhook_endpoint_disabled");

    let enabled =
        block_on(w.services.update_webhook_endpoint(&ctx, ep.id, WebhookEndpointPatch { enabled: Some(true), ..Default::default() }))
            .unwrap();
    assert_eq!((enabled.status, enabled.consecutive_failures, enabled.disabled_reason), (EndpointStatus::Enabled, 0, None));
    w.emit(&ctx, "affiliate_coupon.updated");
    assert_eq!(w.deliveries(&ctx, ep.id).len(), DISABLE_AFTER_FAILURES as usize + 1);
}

#[test]
fn a_success_resets_the_count_of_dead_deliveries() {
    let w = world();
    let ctx = w.org("acme");
    let ep = w.endpoint(&ctx, &[]);
    for _ in 0..DISABLE_AFTER_FAILURES - 1 {
        w.emit(&ctx, "lead.created");
    }
    w.sender.fail_next(13 * (DISABLE_AFTER_FAILURES as usize - 1), 500);
    exhaust(&w);
    assert_eq!(w.get(&ctx, ep.id).consecutive_failures, DISABLE_AFTER_FAILURES - 1);
    w.emit(&ctx, "lead.created");
    assert_eq!(w.deliver().delivered, 1);
    let ep = w.get(&ctx, ep.id);
    assert_eq!((ep.status, ep.consecutive_failures), (EndpointStatus::Enabled, 0));
}

#[test]
fn manually_disabling_stops_deliveries_until_enabled_again() {
    let w = world();
    let ctx = w.org("acme");
    let ep = w.endpoint(&ctx, &[]);
    w.emit(&ctx, "lead.created");
    let off = WebhookEndpointPatch { enabled: Some(false), ..Default::default() };
    let ep2 = block_on(w.services.update_webhook_endpoint(&ctx, ep.id, off)).unwrap();
    assert_eq!(ep2.status, EndpointStatus::Disabled);
    assert_eq!(w.deliver().claimed, 0, "pending deliveries of a disabled endpoint wait");
    let on = WebhookEndpointPatch { enabled: Some(true), ..Default::default() };
    block_on(w.services.update_webhook_endpoint(&ctx, ep.id, on)).unwrap();
    assert_eq!(w.deliver().delivered, 1);
}

#[test]
fn redelivery_sends_the_same_delivery_again_with_a_fresh_schedule() {
    let w = world();
    let ctx = w.org("acme");
    let ep = w.endpoint(&ctx, &[]);
    w.emit(&ctx, "conversion.refunded");
    w.deliver();
    let first = w.only_delivery(&ctx, ep.id);
    assert_eq!(first.status, DeliveryStatus::Succeeded);

    w.clock.advance(Duration::hours(1));
    let again = block_on(w.services.redeliver(&ctx, ep.id, first.id)).unwrap();
    assert_eq!((again.id, again.status, again.attempts, again.next_attempt_at), (first.id, DeliveryStatus::Pending, 0, w.clock.now()));
    assert_eq!(again.body, first.body);
    assert_eq!(w.deliver().delivered, 1);
    let requests = w.sender.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body);
    assert_eq!(header(&requests[1], "X-Rekomi-Delivery-Id"), Some(ulid_of(first.id.as_uuid()).as_str()));
    let audit = w.store.read(|tx| tx.audit_entries(ctx.org_id(), 100).unwrap());
    assert!(audit.iter().any(|e| e.action.as_str() == "webhook_delivery.redelivered"));

    // Another endpoint's delivery, or no delivery at all, is not found.
    let other = w.endpoint(&ctx, &[]);
    assert_eq!(code_of(block_on(w.services.redeliver(&ctx, other.id, first.id)).unwrap_err()), "delivery_not_found");
    let unknown = DeliveryId::from_uuid(uuid::Uuid::now_v7());
    assert_eq!(code_of(block_on(w.services.redeliver(&ctx, ep.id, unknown)).unwrap_err()), "delivery_not_found");
}

#[test]
fn a_redelivery_while_an_attempt_is_in_flight_wins_over_that_attempts_outcome() {
    let w = world();
    let ctx = w.org("acme");
    let ep = w.endpoint(&ctx, &[]);
    w.emit(&ctx, "lead.created");
    let d = w.only_delivery(&ctx, ep.id);
    // While the first attempt is in flight, the brand redelivers (which releases the lease).
    let (store, services, ctx2) = (w.store.clone(), w.services.clone(), ctx.clone());
    *w.hook.lock().unwrap() = Some(Box::new(move |_| {
        let current = store.read(|tx| tx.delivery(ctx2.org_id(), d.id).unwrap().unwrap());
        assert!(current.locked_until.is_some(), "held while in flight");
        block_on(services.redeliver(&ctx2, ep.id, d.id)).unwrap();
    }));
    w.sender.fail_next(1, 500);
    let report = w.deliver();
    assert_eq!((report.claimed, report.skipped, report.retrying), (1, 1, 0));
    *w.hook.lock().unwrap() = None;
    let d = w.only_delivery(&ctx, ep.id);
    assert_eq!((d.status, d.attempts, d.next_attempt_at), (DeliveryStatus::Pending, 0, w.clock.now()), "the redelivery's state stands");
    assert_eq!(w.deliver().delivered, 1);
}

#[test]
fn endpoints_receive_only_the_events_their_filters_match() {
    let w = world();
    let ctx = w.org("acme");
    let coupons = w.endpoint(&ctx, &["affiliate_coupon.*"]);
    let created = w.endpoint(&ctx, &["affiliate.created"]);
    let families = w.endpoint(&ctx, &["affiliate.*", "conversion.*"]);
    let everything = w.endpoint(&ctx, &[]);
    let star = w.endpoint(&ctx, &["*"]);
    let off = w.endpoint(&ctx, &["*"]);
    block_on(w.services.update_webhook_endpoint(&ctx, off.id, WebhookEndpointPatch { enabled: Some(false), ..Default::default() }))
        .unwrap();

    for event in ["affiliate_coupon.created", "affiliate.created", "affiliate.approved", "conversion.created", "lead.created"] {
        w.emit(&ctx, event);
    }
    let types = |id| {
        let mut t: Vec<String> = w.deliveries(&ctx, id).into_iter().map(|d| d.event_type.as_str().to_owned()).collect();
        t.sort();
        t
    };
    assert_eq!(types(coupons.id), ["affiliate_coupon.created"]);
    assert_eq!(types(created.id), ["affiliate.created"]);
    assert_eq!(types(families.id), ["affiliate.approved", "affiliate.created", "conversion.created"]);
    assert_eq!(types(everything.id).len(), 5);
    assert_eq!(types(star.id).len(), 5);
    assert!(types(off.id).is_empty());
}

#[test]
fn rotating_the_secret_signs_later_attempts_with_the_new_secret() {
    let w = world();
    let ctx = w.org("acme");
    let ep = w.endpoint(&ctx, &[]);
    assert!(ep.secret.starts_with("whsec_") && ep.secret.len() == 38, "{}", ep.secret);
    assert!(ep.secret[6..].bytes().all(|b| b.is_ascii_alphanumeric()));
    w.emit(&ctx, "lead.created");
    w.sender.fail_next(1, 500);
    w.deliver();

    let rotated = block_on(w.services.rotate_webhook_secret(&ctx, ep.id)).unwrap();
    assert_ne!(rotated.secret, ep.secret);
    assert!(rotated.secret.starts_with("whsec_") && rotated.secret.len() == 38);
    assert_eq!(w.get(&ctx, ep.id).secret, rotated.secret);

    w.clock.advance(Duration::minutes(1));
    assert_eq!(w.deliver().delivered, 1);
    let retry = &w.sender.requests()[1];
    let sig = header(retry, "X-Rekomi-Signature").unwrap();
    let now = w.clock.now().unix_timestamp();
    assert!(signature::verify(sig, retry.body.as_bytes(), std::slice::from_ref(&rotated.secret), now).is_ok());
    assert!(signature::verify(sig, retry.body.as_bytes(), std::slice::from_ref(&ep.secret), now).is_err());
}

// ---- concurrent changes to an endpoint ---------------------------------------------------
//
// The fakes run transactions one at a time, so these interleave whole use cases: a change
// committed while an attempt is in flight (between the worker's claim and its outcome). The
// worker and the other use cases must apply their own change to the current row, never write
// back a copy read earlier.

/// With every attempt failing, runs the worker until the pending deliveries of `ep` are due
/// for their last (13th) attempt.
fn run_to_last_attempt(w: &World, ctx: &BrandContext, ep: WebhookEndpointId) {
    let pending =
        |w: &World| -> Vec<Delivery> { w.deliveries(ctx, ep).into_iter().filter(|d| d.status == DeliveryStatus::Pending).collect() };
    for _ in 1..=12 {
        w.deliver();
        w.clock.set(pending(w).iter().map(|d| d.next_attempt_at).max().expect("pending deliveries"));
    }
    assert!(pending(w).iter().all(|d| d.attempts == 12), "{:?}", pending(w));
}

#[test]
fn a_rotation_while_an_attempt_is_in_flight_keeps_the_new_secret() {
    let w = world();
    let ctx = w.org("acme");
    let ep = w.endpoint(&ctx, &[]);
    w.emit(&ctx, "lead.created");
    w.sender.fail_next(13, 500);
    run_to_last_attempt(&w, &ctx, ep.id);

    // The brand rotates the secret while the last attempt is in flight; that attempt fails
    // for good, so the worker counts a dead delivery on the endpoint.
    let rotate_in_flight = |w: &World| -> Arc<Mutex<Option<String>>> {
        let rotated: Arc<Mutex<Option<String>>> = Arc::default();
        let (services, ctx, slot) = (w.services.clone(), ctx.clone(), Arc::clone(&rotated));
        *w.hook.lock().unwrap() = Some(Box::new(move |_| {
            *slot.lock().unwrap() = Some(block_on(services.rotate_webhook_secret(&ctx, ep.id)).unwrap().secret);
        }));
        rotated
    };
    let rotated = rotate_in_flight(&w);
    let report = w.deliver();
    assert_eq!((report.claimed, report.failed), (1, 1));
    let first = rotated.lock().unwrap().clone().expect("rotated while in flight");
    assert_ne!(first, ep.secret);
    let after = w.get(&ctx, ep.id);
    assert_eq!(after.secret, first, "the worker did not write the old secret back");
    assert_eq!(after.consecutive_failures, 1, "and its own change stands");

    // A success resets the count (another write of the endpoint), with a rotation in flight
    // again; later deliveries are signed with the newest secret.
    w.emit(&ctx, "lead.created");
    let rotated = rotate_in_flight(&w);
    assert_eq!(w.deliver().delivered, 1);
    let second = rotated.lock().unwrap().clone().expect("rotated while in flight");
    let after = w.get(&ctx, ep.id);
    assert_eq!((after.secret.as_str(), after.consecutive_failures), (second.as_str(), 0));
    w.emit(&ctx, "lead.created");
    assert_eq!(w.deliver().delivered, 1);
    let last = w.sender.requests().pop().unwrap();
    let now = w.clock.now().unix_timestamp();
    let sig = header(&last, "X-Rekomi-Signature").unwrap();
    assert!(signature::verify(sig, last.body.as_bytes(), std::slice::from_ref(&second), now).is_ok());
}

#[test]
fn a_patch_while_the_worker_disables_the_endpoint_leaves_it_disabled() {
    let w = world();
    let ctx = w.org("acme");
    let ep = w.endpoint(&ctx, &[]);
    for _ in 0..DISABLE_AFTER_FAILURES - 1 {
        w.emit(&ctx, "lead.created");
    }
    w.sender.fail_next(10_000, 500);
    exhaust(&w);
    assert_eq!(w.get(&ctx, ep.id).consecutive_failures, DISABLE_AFTER_FAILURES - 1);
    w.emit(&ctx, "lead.created");
    run_to_last_attempt(&w, &ctx, ep.id);

    // The brand renames the endpoint while the attempt that disables it is in flight.
    let (services, ctx2) = (w.services.clone(), ctx.clone());
    *w.hook.lock().unwrap() = Some(Box::new(move |_| {
        let patch = WebhookEndpointPatch { description: Some(Some("renamed".into())), ..Default::default() };
        let patched = block_on(services.update_webhook_endpoint(&ctx2, ep.id, patch)).unwrap();
        assert_eq!(patched.status, EndpointStatus::Enabled);
    }));
    let report = w.deliver();
    assert_eq!((report.failed, report.endpoints_disabled), (1, 1));
    let disabled = w.get(&ctx, ep.id);
    assert_eq!((disabled.status, disabled.consecutive_failures), (EndpointStatus::Disabled, DISABLE_AFTER_FAILURES));
    assert_eq!(disabled.description.as_deref(), Some("renamed"), "the worker's change was applied to the renamed row");
    assert!(disabled.disabled_reason.is_some());

    // A PATCH of the description alone, right after, keeps it disabled with its reason.
    let patch = WebhookEndpointPatch { description: Some(Some("renamed again".into())), ..Default::default() };
    let patched = block_on(w.services.update_webhook_endpoint(&ctx, ep.id, patch)).unwrap();
    assert_eq!(
        (patched.status, patched.consecutive_failures, &patched.disabled_reason),
        (EndpointStatus::Disabled, DISABLE_AFTER_FAILURES, &disabled.disabled_reason)
    );
    assert_eq!(w.get(&ctx, ep.id), patched);
    w.emit(&ctx, "lead.created");
    assert_eq!(w.deliver().claimed, 0, "nothing is sent to it");
}

#[test]
fn two_workers_recording_dead_deliveries_of_one_endpoint_both_count() {
    let w = world();
    let ctx = w.org("acme");
    let ep = w.endpoint(&ctx, &[]);
    w.emit(&ctx, "lead.created");
    w.emit(&ctx, "lead.created");
    w.sender.fail_next(26, 500);
    run_to_last_attempt(&w, &ctx, ep.id);

    // One worker takes one delivery; while its last attempt is in flight another worker takes
    // the other and records that it failed for good.
    let inner: Arc<Mutex<Option<DeliveryReport>>> = Arc::default();
    let (services, slot) = (w.services.clone(), Arc::clone(&inner));
    *w.hook.lock().unwrap() = Some(Box::new(move |_| {
        *slot.lock().unwrap() = Some(block_on(services.deliver_due_webhooks(1)).unwrap());
    }));
    let outer = block_on(w.services.deliver_due_webhooks(1)).unwrap();
    let inner = inner.lock().unwrap().expect("the second worker ran");
    assert_eq!((outer.claimed, outer.failed, inner.claimed, inner.failed), (1, 1, 1, 1));
    assert_eq!(w.get(&ctx, ep.id).consecutive_failures, 2, "no failure was lost");
    assert!(w.deliveries(&ctx, ep.id).iter().all(|d| d.status == DeliveryStatus::Failed && d.attempts == 13));
}

// ---- management -------------------------------------------------------------------------

#[test]
fn urls_events_and_descriptions_are_validated_and_refused_targets_explain_why() {
    let w = world();
    let ctx = w.org("acme");
    let create = |url: &str, events: &[&str]| {
        let events = events.iter().map(|e| (*e).to_owned()).collect();
        block_on(w.services.create_webhook_endpoint(&ctx, url.to_owned(), None, events))
    };
    assert_eq!(code_of(create("ftp://hooks.example.com", &[]).unwrap_err()), "validation:url");
    assert_eq!(code_of(create(&format!("https://example.com/{}", "a".repeat(2048)), &[]).unwrap_err()), "validation:url");
    assert_eq!(code_of(create("https://hooks.example.com", &["payout.sent"]).unwrap_err()), "validation:events");
    assert_eq!(code_of(create("https://hooks.example.com", &["nope.*"]).unwrap_err()), "validation:events");
    let long = Some("d".repeat(501));
    let err = block_on(w.services.create_webhook_endpoint(&ctx, "https://hooks.example.com".into(), long, Vec::new())).unwrap_err();
    assert_eq!(code_of(err), "validation:description");

    w.sender.refuse_targets(true);
    match create("http://127.0.0.1:8080/hook", &[]).unwrap_err() {
        DomainError::Validation(f) => {
            assert_eq!(f.field, "url");
            assert!(f.message.contains("private"), "{}", f.message);
        }
        other => panic!("{other:?}"),
    }
    assert!(w.sender.checked_targets().contains(&"http://127.0.0.1:8080/hook".to_owned()));
    assert!(block_on(w.services.list_webhook_endpoints(&ctx, PageRequest::first())).unwrap().items.is_empty(), "nothing was stored");

    // A change of URL is checked again; other changes are not.
    w.sender.refuse_targets(false);
    let ep = w.endpoint(&ctx, &[]);
    w.sender.refuse_targets(true);
    let url = WebhookEndpointPatch { url: Some("http://10.0.0.1/".into()), ..Default::default() };
    assert_eq!(code_of(block_on(w.services.update_webhook_endpoint(&ctx, ep.id, url)).unwrap_err()), "validation:url");
    let events = WebhookEndpointPatch { events: Some(vec!["lead.created".into()]), description: Some(None), ..Default::default() };
    let updated = block_on(w.services.update_webhook_endpoint(&ctx, ep.id, events)).unwrap();
    assert_eq!((updated.events, updated.description, updated.url), (vec!["lead.created".to_owned()], None, ep.url));
}

#[test]
fn viewers_may_read_but_not_change_endpoints() {
    let w = world();
    let owner = w.org("acme");
    let ep = w.endpoint(&owner, &[]);
    let viewer = BrandContext {
        actor: BrandActor::User { org: owner.org_id(), user_id: "u1".into(), role: Role::Viewer },
        org: owner.org.clone(),
        now: START,
    };
    assert_eq!(block_on(w.services.list_webhook_endpoints(&viewer, PageRequest::first())).unwrap().items.len(), 1);
    assert!(block_on(w.services.list_deliveries(&viewer, ep.id, PageRequest::first())).is_ok());
    let denied = [
        block_on(w.services.create_webhook_endpoint(&viewer, "https://x.example.com".into(), None, Vec::new())).err(),
        block_on(w.services.update_webhook_endpoint(&viewer, ep.id, WebhookEndpointPatch::default())).err(),
        block_on(w.services.rotate_webhook_secret(&viewer, ep.id)).err(),
        block_on(w.services.delete_webhook_endpoint(&viewer, ep.id)).err(),
    ];
    for err in denied {
        assert_eq!(code_of(err.unwrap()), "insufficient_role");
    }
}

#[test]
fn another_organizations_endpoints_and_deliveries_are_not_found() {
    let w = world();
    let acme = w.org("acme");
    let rival = w.org("rival");
    let ep = w.endpoint(&acme, &[]);
    w.emit(&acme, "lead.created");
    let d = w.only_delivery(&acme, ep.id);

    let s = &w.services;
    let not_found = "webhook_endpoint_not_found";
    assert_eq!(code_of(block_on(s.get_webhook_endpoint(&rival, ep.id)).unwrap_err()), not_found);
    assert_eq!(code_of(block_on(s.update_webhook_endpoint(&rival, ep.id, WebhookEndpointPatch::default())).unwrap_err()), not_found);
    assert_eq!(code_of(block_on(s.rotate_webhook_secret(&rival, ep.id)).unwrap_err()), not_found);
    assert_eq!(code_of(block_on(s.list_deliveries(&rival, ep.id, PageRequest::first())).unwrap_err()), not_found);
    assert_eq!(code_of(block_on(s.redeliver(&rival, ep.id, d.id)).unwrap_err()), not_found);
    assert_eq!(code_of(block_on(s.delete_webhook_endpoint(&rival, ep.id)).unwrap_err()), not_found);
    let rivals = rival_endpoint(&w, &rival);
    assert_eq!(code_of(block_on(s.redeliver(&rival, rivals, d.id)).unwrap_err()), "delivery_not_found");
    let listed = block_on(s.list_webhook_endpoints(&rival, PageRequest::first())).unwrap().items;
    assert_eq!(listed.iter().map(|e| e.id).collect::<Vec<_>>(), [rivals]);
    // Untouched.
    assert_eq!(w.get(&acme, ep.id).secret, ep.secret);
    // Events of one organization never reach another's endpoints.
    assert!(w.deliveries(&rival, rivals).is_empty());
}

fn rival_endpoint(w: &World, ctx: &BrandContext) -> WebhookEndpointId {
    w.endpoint(ctx, &["*"]).id
}

#[test]
fn endpoint_lists_are_newest_first_and_paginated() {
    let w = world();
    let ctx = w.org("acme");
    let ids: Vec<WebhookEndpointId> = (0..3).map(|_| w.endpoint(&ctx, &[]).id).collect();
    let first = block_on(w.services.list_webhook_endpoints(&ctx, PageRequest::parse(Some(2), None).unwrap())).unwrap();
    assert_eq!(first.items.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[2], ids[1]]);
    assert!(first.has_more());
    let second = block_on(w.services.list_webhook_endpoints(&ctx, PageRequest::parse(Some(2), first.next_after).unwrap())).unwrap();
    assert_eq!(second.items.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[0]]);
    assert!(!second.has_more());
}

#[test]
fn deleting_an_endpoint_removes_it_and_its_deliveries() {
    let w = world();
    let ctx = w.org("acme");
    let ep = w.endpoint(&ctx, &[]);
    w.emit(&ctx, "lead.created");
    block_on(w.services.delete_webhook_endpoint(&ctx, ep.id)).unwrap();
    assert_eq!(code_of(block_on(w.services.get_webhook_endpoint(&ctx, ep.id)).unwrap_err()), "webhook_endpoint_not_found");
    assert_eq!(code_of(block_on(w.services.list_deliveries(&ctx, ep.id, PageRequest::first())).unwrap_err()), "webhook_endpoint_not_found");
    assert_eq!(w.deliver().claimed, 0);
    assert_eq!(code_of(block_on(w.services.delete_webhook_endpoint(&ctx, ep.id)).unwrap_err()), "webhook_endpoint_not_found");
}

#[test]
fn every_change_is_audited_and_no_audit_entry_holds_a_secret() {
    let w = world();
    let ctx = w.org("acme");
    let ep = w.endpoint(&ctx, &["lead.created"]);
    let patch = WebhookEndpointPatch { description: Some(Some("renamed".into())), ..Default::default() };
    block_on(w.services.update_webhook_endpoint(&ctx, ep.id, patch)).unwrap();
    let rotated = block_on(w.services.rotate_webhook_secret(&ctx, ep.id)).unwrap();
    block_on(w.services.delete_webhook_endpoint(&ctx, ep.id)).unwrap();

    let audit = w.store.read(|tx| tx.audit_entries(ctx.org_id(), 100).unwrap());
    let mut actions: Vec<&str> = audit.iter().filter(|e| e.entity_type == "webhook_endpoint").map(|e| e.action.as_str()).collect();
    actions.reverse();
    assert_eq!(
        actions,
        ["webhook_endpoint.created", "webhook_endpoint.updated", "webhook_endpoint.secret_rotated", "webhook_endpoint.deleted"]
    );
    for entry in &audit {
        let text = format!("{:?} {:?}", entry.before, entry.after);
        assert!(!text.contains(&ep.secret) && !text.contains(&rotated.secret) && !text.contains("whsec_"), "{}: {text}", entry.action);
    }
}

#[test]
fn debug_output_never_shows_the_secret() {
    let w = world();
    let ctx = w.org("acme");
    let ep = w.endpoint(&ctx, &[]);
    let rotated = block_on(w.services.rotate_webhook_secret(&ctx, ep.id)).unwrap();
    for shown in [format!("{ep:?}"), format!("{:?}", rotated), format!("{:#?}", vec![rotated.clone()])] {
        assert!(!shown.contains(&ep.secret) && !shown.contains(&rotated.secret) && !shown.contains("whsec_"), "{shown}");
        assert!(shown.contains("<redacted>") && shown.contains("hooks.example.com"), "{shown}");
    }
}

#[test]
fn audit_snapshots_keep_no_query_string_fragment_or_userinfo_of_the_url() {
    let w = world();
    let ctx = w.org("acme");
    let url = "https://hooks.example.com/rekomi?token=tok_s3cr3t&v=1#frag_s3cr3t";
    let ep = block_on(w.services.create_webhook_endpoint(&ctx, url.into(), None, Vec::new())).unwrap();
    assert_eq!(ep.url, url, "the endpoint itself keeps the whole URL");
    let patch = WebhookEndpointPatch { url: Some("https://hooks.example.com:8443/v2?api_key=key_s3cr3t".into()), ..Default::default() };
    block_on(w.services.update_webhook_endpoint(&ctx, ep.id, patch)).unwrap();
    block_on(w.services.delete_webhook_endpoint(&ctx, ep.id)).unwrap();
    // A URL with userinfo (refused on input today, but it may be stored from before).
    let legacy = WebhookEndpoint {
        id: WebhookEndpointId::from_uuid(uuid::Uuid::now_v7()),
        url: "https://user:pa55_s3cr3t@legacy.example.com/in?sig=s3cr3t".into(),
        ..ep.clone()
    };
    w.store.write(|tx| tx.insert_endpoint(&legacy)).unwrap();
    block_on(w.services.rotate_webhook_secret(&ctx, legacy.id)).unwrap();

    let audit = w.store.read(|tx| tx.audit_entries(ctx.org_id(), 100).unwrap());
    let mut urls = Vec::new();
    for entry in audit.iter().rev().filter(|e| e.entity_type == "webhook_endpoint") {
        let text = format!("{:?} {:?}", entry.before, entry.after);
        assert!(!text.contains("s3cr3t") && !text.contains('?') && !text.contains('#') && !text.contains('@'), "{}: {text}", entry.action);
        for snapshot in [&entry.before, &entry.after].into_iter().flatten() {
            urls.push(snapshot["url"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        urls,
        [
            "https://hooks.example.com/rekomi",
            "https://hooks.example.com/rekomi",
            "https://hooks.example.com:8443/v2",
            "https://hooks.example.com:8443/v2",
            "https://legacy.example.com/in",
            "https://legacy.example.com/in",
        ]
    );
}

/// The `json` blocks of docs/webhooks.md that parse, in order.
fn doc_json_examples() -> Vec<Value> {
    let doc = include_str!("../../../docs/webhooks.md");
    doc.split("```json").skip(1).filter_map(|block| block.split("```").next()).filter_map(|b| serde_json::from_str(b).ok()).collect()
}

#[test]
fn the_conversion_examples_of_docs_webhooks_md_carry_the_fields_and_values_rekomi_sends() {
    let conversion = Conversion {
        id: ConversionId::from_uuid(uuid::Uuid::now_v7()),
        org_id: OrgId::from_uuid(uuid::Uuid::now_v7()),
        program_id: ProgramId::from_uuid(uuid::Uuid::now_v7()),
        affiliate_id: AffiliateId::from_uuid(uuid::Uuid::now_v7()),
        kind: ConversionType::Recurring,
        status: ConversionStatus::Pending,
        amount_minor: 4900,
        currency: Currency::USD,
        commission_minor: 980,
        attribution_method: Some(attribution::Method::Coupon.as_str().to_owned()),
        coupon_code: Some("SARAH20".into()),
        affiliate_coupon_id: None,
        stripe_customer_id: Some("cus_1".parse().unwrap()),
        stripe_subscription_id: Some("sub_1".parse().unwrap()),
        external_event_id: Some("in_1".into()),
        customer_email: Some("buyer@example.com".into()),
        denial_reason: None,
        parent_conversion_id: Some(ConversionId::from_uuid(uuid::Uuid::now_v7())),
        click_id: None,
        attribution_trace: json!({}),
        paid_invoices: 1,
        approve_after: START,
        approved_at: None,
        refunded_at: Some(START),
        created_at: START,
        updated_at: START,
    };
    let sent = outbox::conversion_data(&conversion);
    let examples: Vec<Value> = doc_json_examples()
        .into_iter()
        .filter(|e| e["type"].as_str().is_some_and(|t| t.starts_with("conversion.") || t == "lead.created"))
        .collect();
    assert!(!examples.is_empty());
    for example in examples {
        let data = example["data"].as_object().expect("an object");
        let (mut shown, mut real): (Vec<&String>, Vec<&String>) = (data.keys().collect(), sent.as_object().unwrap().keys().collect());
        shown.sort();
        real.sort();
        assert_eq!(shown, real, "the fields of conversion_data");
        for (key, value) in data {
            // Same JSON types (null stands for any nullable field).
            let kind = |v: &Value| std::mem::discriminant(v);
            assert!(value.is_null() || kind(value) == kind(&sent[key]), "{key}: {value}");
        }
        let kind = ConversionType::parse(data["type"].as_str().unwrap()).expect("a conversion type");
        assert!(ConversionStatus::parse(data["status"].as_str().unwrap()).is_some(), "{data:?}");
        assert_eq!(Currency::parse(data["currency"].as_str().unwrap()).unwrap().code(), data["currency"]);
        let method = data["attributionMethod"].as_str();
        assert!(
            method.is_none_or(|m| attribution::Method::parse(m).is_some() || m == "sub_affiliate_override"),
            "attributionMethod {method:?}"
        );
        assert_eq!(data["couponCode"].is_null(), !matches!(method, Some("coupon" | "coupon_with_metadata")), "{data:?}");
        if kind == ConversionType::OneTime {
            assert!(data["stripeSubscriptionId"].is_null(), "a sale of a subscription is Recurring");
        }
    }
}

#[test]
fn the_worked_example_of_docs_webhooks_md_is_what_rekomi_sends() {
    let body = r#"{"id":"01JWM8Z3Q0ABCDEFGHJKMNPQRS","type":"affiliate.created","created":1780315200,"data":{}}"#;
    assert_eq!(
        signature::header("whsec_Q2x8mZk1R4tY7uV0bN3cW6eJ9pL5sA2d", 1_780_315_200, body.as_bytes()),
        "t=1780315200,v1=6d7d86f727607f632b247090365d5d65f5344b0c678ce7333dae69bd9b2a7352"
    );
}
