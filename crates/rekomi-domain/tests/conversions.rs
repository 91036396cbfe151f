//! The Stripe conversion pipeline over the fakes: signed ingestion into the inbox, the worker,
//! attribution, commissions, renewals, leads, refunds and sub-affiliate overrides. A test
//! decoder maps event ids to facts, so each test states exactly what Stripe said.
//!
//! Longer than 600 lines: one world (the fakes, a brand, a code) shared by every scenario of the
//! pipeline; splitting it would repeat the world or hide it in a support module.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use rekomi_domain::affiliates::{AffiliateStatus, Email, NewAffiliate};
use rekomi_domain::conversions::{ConversionFilter, ConversionStatus, ConversionType, LedgerKind};
use rekomi_domain::coupons::AffiliateCouponInput;
use rekomi_domain::jobs::JobQueue;
use rekomi_domain::kernel::actor::BrandActor;
use rekomi_domain::kernel::ids::{AffiliateId, ApiKeyId, CampaignCouponId, ProgramId};
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::kernel::plan::PlanTier;
use rekomi_domain::kernel::signature;
use rekomi_domain::kernel::stripe_ids::{StripePaymentRef, StripePromotionCodeId};
use rekomi_domain::orgs::{Handle, NewOrganization};
use rekomi_domain::outbound::{OutboundRequest, SendOutcome, WebhookSender};
use rekomi_domain::ports::gateway::GatewayError;
use rekomi_domain::programs::{Commission, CommissionType, Hundredths};
use rekomi_domain::services::{BrandContext, Services};
use rekomi_domain::stripe_inbox::facts::{CheckoutMode, Discounts, InvoiceFact, PromotionCodeRef, RefundFact, StripeFact};
use rekomi_domain::stripe_inbox::{InboxStatus, StripeInbox};
use rekomi_fakes::{FakeGateway, FixedClock, InMemoryStore, ScriptedDecoder, SeededEntropy};
use support::{block_on, new_program, stripe_id, summer_coupon};
use time::macros::datetime;
use time::Duration;

const SECRET: &str = "whsec_pipeline_tests";

struct NoSender;
#[async_trait]
impl WebhookSender for NoSender {
    async fn send(&self, _: &OutboundRequest) -> SendOutcome {
        SendOutcome::Delivered { status: 200 }
    }
    async fn check_target(&self, _: &str) -> Result<(), String> {
        Ok(())
    }
}

struct World {
    services: Services,
    store: InMemoryStore,
    gateway: FakeGateway,
    clock: FixedClock,
    decoder: ScriptedDecoder,
    ctx: BrandContext,
    program: ProgramId,
    sarah: AffiliateId,
    coupon: CampaignCouponId,
    promo: StripePromotionCodeId,
}

fn world_with(overrides_click: bool) -> World {
    let store = InMemoryStore::new();
    let gateway = FakeGateway::new();
    let clock = FixedClock::new(datetime!(2026-06-01 12:00 UTC));
    let decoder = ScriptedDecoder::new();
    let services = Services {
        store: Arc::new(store.clone()),
        gateway: Arc::new(gateway.clone()),
        payout_rail: Arc::new(rekomi_fakes::FakePayoutRail::new()),
        clock: Arc::new(clock.clone()),
        entropy: Arc::new(SeededEntropy::new(3)),
        events: Arc::new(decoder.clone()),
        webhooks: Arc::new(NoSender),
    };
    let (org, _) = block_on(services.create_organization(NewOrganization {
        name: "Acme".into(),
        handle: Handle::parse("acme").unwrap(),
        plan: PlanTier::Growth,
    }))
    .unwrap();
    let ctx = BrandContext {
        actor: BrandActor::ApiKey { org: org.id, key: ApiKeyId::from_uuid(uuid::Uuid::nil()) },
        org,
        now: clock.now_for_tests(),
    };
    let program = block_on(services.create_program(&ctx, new_program("Default"))).unwrap().id;
    let sarah = affiliate(&services, &ctx, program, "sarah@creator.com", AffiliateStatus::Approved, None);
    let mut input = summer_coupon(false);
    input.overrides_click_attribution = Some(overrides_click);
    let coupon = block_on(services.create_campaign_coupon(&ctx, program, input)).unwrap().id;
    let code = block_on(services.create_affiliate_coupon(
        &ctx,
        sarah,
        coupon,
        AffiliateCouponInput { code: Some("SARAH20".into()), ..Default::default() },
    ))
    .unwrap();
    let promo = code.coupon.stripe_promotion_code_id.unwrap();
    World { services, store, gateway, clock, decoder, ctx, program, sarah, coupon, promo }
}

trait NowForTests {
    fn now_for_tests(&self) -> time::OffsetDateTime;
}
impl NowForTests for FixedClock {
    fn now_for_tests(&self) -> time::OffsetDateTime {
        rekomi_domain::kernel::clock::Clock::now(self)
    }
}

fn affiliate(
    services: &Services,
    ctx: &BrandContext,
    program: ProgramId,
    email: &str,
    status: AffiliateStatus,
    recruiter: Option<AffiliateId>,
) -> AffiliateId {
    let new = NewAffiliate {
        program_id: program,
        email: Email::parse("e", email).unwrap(),
        full_name: None,
        status: Some(status),
        custom_commission: None,
        custom_alias: None,
        recruited_by: recruiter,
    };
    block_on(services.create_affiliate(ctx, new)).unwrap().affiliate.id
}

fn invoice(id: &str, sub: Option<&str>, amount: i64, codes: Vec<PromotionCodeRef>) -> InvoiceFact {
    InvoiceFact {
        invoice_id: stripe_id(id),
        customer_id: Some(stripe_id("cus_buyer")),
        customer_email: Some("buyer@example.com".into()),
        subscription_id: sub.map(stripe_id),
        amount_paid: amount,
        currency: "usd".into(),
        renewal: false,
        discounts: Discounts { promotion_codes: codes, unresolved: false, full_discount: false },
        referral: None,
        charge_id: None,
        payment_intent_id: None,
        paid_at: 1_780_000_000,
        settlement: None,
    }
}

fn refund(invoice: Option<&str>, pi: Option<&str>, amount: i64, refunded: i64) -> RefundFact {
    RefundFact {
        charge_id: stripe_id("ch_1"),
        payment_intent_id: pi.map(stripe_id),
        invoice_id: invoice.map(stripe_id),
        customer_id: Some(stripe_id("cus_buyer")),
        amount,
        amount_refunded: refunded,
        currency: "usd".into(),
        refunded_at: 1_780_000_100,
    }
}

impl World {
    fn promo_ref(&self) -> PromotionCodeRef {
        PromotionCodeRef { id: self.promo.clone(), code: None }
    }

    /// Signs and ingests event `id` carrying `fact`, then runs the worker.
    fn deliver(&self, id: &str, fact: StripeFact) -> bool {
        self.deliver_from(id, None, fact)
    }

    fn deliver_from(&self, id: &str, account: Option<&str>, fact: StripeFact) -> bool {
        self.decoder.script(id, account.map(stripe_id), fact);
        let now = rekomi_domain::kernel::clock::Clock::now(&self.clock).unix_timestamp();
        let header = signature::header(SECRET, now, id.as_bytes());
        let outcome = block_on(self.services.ingest_stripe_event(&[SECRET.to_owned()], None, Some(&header), id.as_bytes())).unwrap();
        block_on(self.services.process_stripe_inbox(50)).unwrap();
        !outcome.duplicate
    }

    fn conversions(&self) -> Vec<rekomi_domain::conversions::Conversion> {
        block_on(self.services.list_conversions(&self.ctx, ConversionFilter::default(), PageRequest::first())).unwrap().items
    }

    fn only_conversion(&self) -> rekomi_domain::conversions::Conversion {
        let all = self.conversions();
        assert_eq!(all.len(), 1, "{all:#?}");
        all.into_iter().next().unwrap()
    }

    fn redemptions(&self) -> i64 {
        self.store.read(|tx| tx.affiliate_coupon_by_stripe_id(self.ctx.org_id(), &self.promo).unwrap().unwrap().times_redeemed)
    }

    fn inbox(&self, id: &str) -> rekomi_domain::stripe_inbox::InboxEvent {
        self.store.read(|tx| tx.inbox_event(&stripe_id(id)).unwrap().unwrap())
    }
}

#[test]
fn a_paid_invoice_with_an_affiliate_code_credits_its_owner_with_twenty_percent() {
    let w = world_with(true);
    assert!(w.deliver("evt_1", StripeFact::InvoicePaid(invoice("in_1", Some("sub_1"), 1500, vec![w.promo_ref()]))));
    let c = w.only_conversion();
    assert_eq!((c.affiliate_id, c.kind, c.status), (w.sarah, ConversionType::Recurring, ConversionStatus::Pending));
    assert_eq!((c.amount_minor, c.commission_minor), (1500, 300));
    assert_eq!(c.attribution_method.as_deref(), Some("coupon"));
    assert_eq!(c.coupon_code.as_deref(), Some("SARAH20"));
    assert_eq!(c.attribution_trace["rule"], "coupon_overrides_click_attribution");
    assert_eq!(w.redemptions(), 1);
    let (_, ledger) = block_on(w.services.get_conversion(&w.ctx, c.id)).unwrap();
    assert_eq!(ledger.iter().map(|e| (e.kind, e.commission_minor)).collect::<Vec<_>>(), vec![(LedgerKind::Initial, 300)]);
    assert_eq!(w.inbox("evt_1").status, InboxStatus::Done);
}

#[test]
fn a_redelivered_event_and_the_payment_succeeded_twin_change_nothing() {
    let w = world_with(true);
    let fact = StripeFact::InvoicePaid(invoice("in_1", Some("sub_1"), 1500, vec![w.promo_ref()]));
    assert!(w.deliver("evt_1", fact.clone()));
    assert!(!w.deliver("evt_1", fact.clone()), "the same event id is a duplicate");
    assert!(w.deliver("evt_2", fact), "invoice.payment_succeeded of the same invoice is stored");
    let c = w.only_conversion();
    assert_eq!(c.commission_minor, 300);
    assert_eq!(w.redemptions(), 1);
    assert_eq!(w.inbox("evt_2").status, InboxStatus::Done);
}

#[test]
fn renewals_follow_recurring_months_and_delay_invoices() {
    let w = world_with(true);
    let patch =
        rekomi_domain::programs::ProgramPatch { recurring_months: Some(Some(1)), recurring_delay_invoices: Some(1), ..Default::default() };
    block_on(w.services.update_program(&w.ctx, w.program, patch)).unwrap();
    for (i, id) in ["in_1", "in_2", "in_3"].iter().enumerate() {
        w.deliver(
            &format!("evt_{i}"),
            StripeFact::InvoicePaid(invoice(id, Some("sub_1"), 1000, if i == 0 { vec![w.promo_ref()] } else { vec![] })),
        );
    }
    let c = w.only_conversion();
    let (_, ledger) = block_on(w.services.get_conversion(&w.ctx, c.id)).unwrap();
    // Invoice 1 is delayed, invoice 2 is the first renewal (within 1 month), invoice 3 is past it.
    assert_eq!(
        ledger.iter().map(|e| (e.kind, e.commission_minor)).collect::<Vec<_>>(),
        vec![(LedgerKind::Initial, 0), (LedgerKind::Renewal, 200), (LedgerKind::Renewal, 0)]
    );
    assert_eq!(c.commission_minor, 200);
    assert_eq!(w.redemptions(), 1, "renewals do not count as new redemptions");
}

#[test]
fn a_coupon_that_overrides_clicks_beats_a_referral_and_one_that_does_not_yields() {
    for (overrides, expected_method) in [(true, "coupon"), (false, "metadata_or_customer")] {
        let w = world_with(overrides);
        let bob = affiliate(&w.services, &w.ctx, w.program, "bob@creator.com", AffiliateStatus::Approved, None);
        let bob_slug = block_on(w.services.get_affiliate(&w.ctx, bob)).unwrap().links[0].slug.clone();
        let mut inv = invoice("in_1", None, 1000, vec![w.promo_ref()]);
        inv.referral = Some(bob_slug);
        w.deliver("evt_1", StripeFact::InvoicePaid(inv));
        let c = w.only_conversion();
        assert_eq!(c.attribution_method.as_deref(), Some(expected_method));
        assert_eq!(c.affiliate_id, if overrides { w.sarah } else { bob });
        assert_eq!(c.coupon_code.is_some(), overrides, "couponCode only when the coupon decided");
    }
}

#[test]
fn a_code_and_a_referral_to_the_same_affiliate_is_coupon_with_metadata() {
    let w = world_with(false);
    let slug = block_on(w.services.get_affiliate(&w.ctx, w.sarah)).unwrap().links[0].slug.clone();
    let mut inv = invoice("in_1", None, 1000, vec![w.promo_ref()]);
    inv.referral = Some(slug);
    w.deliver("evt_1", StripeFact::InvoicePaid(inv));
    assert_eq!(w.only_conversion().attribution_method.as_deref(), Some("coupon_with_metadata"));
}

#[test]
fn an_affiliate_buying_with_their_own_code_is_denied_as_self_referral() {
    let w = world_with(true);
    let mut inv = invoice("in_1", None, 1000, vec![w.promo_ref()]);
    inv.customer_email = Some("SARAH@creator.com".into());
    w.deliver("evt_1", StripeFact::InvoicePaid(inv));
    let c = w.only_conversion();
    assert_eq!((c.status, c.commission_minor, c.denial_reason.as_deref()), (ConversionStatus::Denied, 0, Some("self_referral")));
}

#[test]
fn partial_then_full_refunds_claw_back_exactly_and_decrement_the_redemption_once() {
    let w = world_with(true);
    w.deliver("evt_1", StripeFact::InvoicePaid(invoice("in_1", None, 1500, vec![w.promo_ref()])));
    w.deliver("evt_r1", StripeFact::ChargeRefunded(refund(Some("in_1"), Some("pi_1"), 1500, 500)));
    let c = w.only_conversion();
    assert_eq!((c.commission_minor, c.status), (200, ConversionStatus::Pending));
    assert_eq!(w.redemptions(), 1);
    w.deliver("evt_r2", StripeFact::ChargeRefunded(refund(Some("in_1"), Some("pi_1"), 1500, 1500)));
    // A late replay of the partial refund changes nothing.
    w.deliver("evt_r1_again", StripeFact::ChargeRefunded(refund(Some("in_1"), Some("pi_1"), 1500, 500)));
    let c = w.only_conversion();
    assert_eq!((c.commission_minor, c.status), (0, ConversionStatus::Refunded));
    assert!(c.refunded_at.is_some());
    assert_eq!(w.redemptions(), 0);
    let (_, ledger) = block_on(w.services.get_conversion(&w.ctx, c.id)).unwrap();
    let refunds: Vec<(i64, i64)> =
        ledger.iter().filter(|e| e.kind == LedgerKind::Refund).map(|e| (e.amount_minor, e.commission_minor)).collect();
    assert_eq!(refunds, vec![(-500, -100), (-1000, -200)]);
}

#[test]
fn a_refund_before_its_sale_waits_and_applies_once_the_sale_arrives() {
    let w = world_with(true);
    w.deliver("evt_r", StripeFact::ChargeRefunded(refund(Some("in_1"), None, 1000, 1000)));
    let waiting = w.inbox("evt_r");
    assert_eq!((waiting.status, waiting.attempts), (InboxStatus::Waiting, 0));
    assert_eq!(waiting.waiting_for.as_ref().map(|p| p.as_str()), Some("in_1"));
    assert!(waiting.last_error.unwrap().contains("no conversion records it yet"));
    assert_eq!(waiting.processed_at, None);
    // Nothing happens to it while its sale is missing, however often the worker runs.
    block_on(w.services.process_stripe_inbox(50)).unwrap();
    assert_eq!(w.inbox("evt_r").status, InboxStatus::Waiting);

    // The sale wakes it; the next pass applies it, with no replay and no clock change.
    w.deliver("evt_s", StripeFact::InvoicePaid(invoice("in_1", None, 1000, vec![w.promo_ref()])));
    assert_eq!(w.inbox("evt_r").status, InboxStatus::Pending);
    block_on(w.services.process_stripe_inbox(50)).unwrap();
    let c = w.only_conversion();
    assert_eq!((c.commission_minor, c.status), (0, ConversionStatus::Refunded));
    assert_eq!(w.redemptions(), 0, "the fully refunded sale gives its redemption back");
    let applied = w.inbox("evt_r");
    assert_eq!((applied.status, applied.waiting_for), (InboxStatus::Done, None));
}

/// A second organization on the platform account, so refunds cannot fall back on "the only
/// organization".
fn second_brand(w: &World) {
    block_on(w.services.create_organization(NewOrganization {
        name: "Globex".into(),
        handle: Handle::parse("globex").unwrap(),
        plan: PlanTier::Growth,
    }))
    .unwrap();
}

#[test]
fn with_several_brands_a_refund_before_its_sale_waits_for_it_then_claws_back_everything() {
    // The probe's repro: two organizations; the refund (cumulative 9900) of in_x, then the
    // invoice.paid of in_x with one of the first organization's codes.
    let w = world_with(true);
    second_brand(&w);
    w.deliver("evt_refund", StripeFact::ChargeRefunded(refund(Some("in_x"), None, 9900, 9900)));
    let waiting = w.inbox("evt_refund");
    assert_eq!((waiting.status, waiting.org_id), (InboxStatus::Waiting, None), "{:?}", waiting.last_error);
    assert!(waiting.last_error.unwrap().contains("no organization could be identified"));
    // Operators see it while it waits.
    let listed = block_on(w.services.list_all_stripe_events(Some(InboxStatus::Waiting), 10)).unwrap();
    assert_eq!(listed.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), vec!["evt_refund"]);

    w.deliver("evt_sale", StripeFact::InvoicePaid(invoice("in_x", Some("sub_x"), 9900, vec![w.promo_ref()])));
    assert_eq!(w.inbox("evt_refund").org_id, Some(w.ctx.org_id()), "the sale names the refund's organization");
    block_on(w.services.process_stripe_inbox(50)).unwrap();

    let c = w.only_conversion();
    assert_eq!((c.status, c.commission_minor), (ConversionStatus::Refunded, 0));
    assert_eq!(w.redemptions(), 0);
    assert_eq!(w.inbox("evt_refund").status, InboxStatus::Done);
}

#[test]
fn with_several_brands_a_later_refund_finds_the_organization_that_recorded_its_sale() {
    let w = world_with(true);
    second_brand(&w);
    w.deliver("evt_sale", StripeFact::InvoicePaid(invoice("in_x", None, 9900, vec![w.promo_ref()])));
    // A refund of another customer's charge of the same invoice names no customer it knows.
    let mut late = refund(Some("in_x"), None, 9900, 4950);
    late.customer_id = None;
    w.deliver("evt_refund", StripeFact::ChargeRefunded(late));
    assert_eq!(w.inbox("evt_refund").status, InboxStatus::Done, "{:?}", w.inbox("evt_refund").last_error);
    assert_eq!(w.only_conversion().commission_minor, 990);
}

#[test]
fn a_waiting_refund_is_looked_at_again_now_and_then_and_an_uncredited_sale_ends_it() {
    let w = world_with(true);
    w.deliver("evt_r", StripeFact::ChargeRefunded(refund(Some("in_nobody"), None, 1000, 1000)));
    assert_eq!(w.inbox("evt_r").status, InboxStatus::Waiting);
    assert_eq!(block_on(w.services.wake_due_stripe_events(10)).unwrap(), 0, "not due yet");
    w.clock.advance(Duration::hours(7));
    assert_eq!(block_on(w.services.wake_due_stripe_events(10)).unwrap(), 1);
    block_on(w.services.process_stripe_inbox(50)).unwrap();
    assert_eq!(w.inbox("evt_r").status, InboxStatus::Waiting, "still no sale");

    // A sale that credits nobody ends the wait: there is nothing to claw back.
    w.deliver("evt_s", StripeFact::InvoicePaid(invoice("in_nobody", None, 1000, vec![])));
    block_on(w.services.process_stripe_inbox(50)).unwrap();
    let done = w.inbox("evt_r");
    assert_eq!(done.status, InboxStatus::Done, "{:?}", done.last_error);
    assert!(w.conversions().is_empty());
}

/// Ingests events `evt_{first}..=evt_{last}` that decode to `fact(n)`, without processing them.
fn ingest_many(w: &World, range: std::ops::RangeInclusive<u32>, fact: impl Fn(u32) -> StripeFact) {
    for n in range {
        let id = format!("evt_{n}");
        w.decoder.script(&id, None, fact(n));
        let now = rekomi_domain::kernel::clock::Clock::now(&w.clock).unix_timestamp();
        let header = signature::header(SECRET, now, id.as_bytes());
        block_on(w.services.ingest_stripe_event(&[SECRET.to_owned()], None, Some(&header), id.as_bytes())).unwrap();
    }
}

#[test]
fn a_batch_of_sales_is_applied_in_one_transaction_and_counts_each_redemption_once() {
    let w = world_with(true);
    ingest_many(&w, 1..=10, |n| StripeFact::InvoicePaid(invoice(&format!("in_{n}"), Some(&format!("sub_{n}")), 1000, vec![w.promo_ref()])));
    let commits = w.store.commits();
    let report = block_on(w.services.process_stripe_inbox(50)).unwrap();
    assert_eq!((report.claimed, report.done), (10, 10), "{report:?}");
    assert_eq!(w.store.commits() - commits, 3, "the claim, the organizations of the batch, and the batch itself");
    assert_eq!(w.conversions().len(), 10);
    assert_eq!(w.redemptions(), 10);
}

#[test]
fn an_event_that_fails_inside_its_batch_is_undone_alone_while_the_others_apply() {
    let w = world_with(true);
    // A subscription whose commission total is one renewal short of overflowing (see the
    // overflow test below).
    for n in 1..=5 {
        w.deliver(&format!("evt_{n}"), StripeFact::InvoicePaid(invoice(&format!("in_{n}"), Some("sub_1"), i64::MAX, vec![w.promo_ref()])));
    }
    let big = w.only_conversion();
    // One batch: a new sale, the renewal that overflows, another new sale.
    let facts = [
        invoice("in_a", Some("sub_a"), 1000, vec![w.promo_ref()]),
        invoice("in_6", Some("sub_1"), i64::MAX, vec![w.promo_ref()]),
        invoice("in_b", Some("sub_b"), 1000, vec![w.promo_ref()]),
    ];
    ingest_many(&w, 11..=13, |n| StripeFact::InvoicePaid(facts[(n - 11) as usize].clone()));
    let report = block_on(w.services.process_stripe_inbox(50)).unwrap();
    assert_eq!((report.done, report.failed), (2, 1), "{report:?}");
    assert_eq!(w.inbox("evt_12").status, InboxStatus::Failed);
    assert_eq!(w.conversions().len(), 3);
    assert_eq!(w.conversions().into_iter().find(|c| c.id == big.id), Some(big), "the failed renewal changed nothing");
    assert_eq!(w.redemptions(), 3, "each applied sale counted its redemption");
    // Its claim of the invoice was undone with it: replayed, it is judged afresh, not taken
    // for a renewal already recorded.
    block_on(w.services.replay_any_stripe_event(stripe_id("evt_12"))).unwrap();
    block_on(w.services.process_stripe_inbox(50)).unwrap();
    let again = w.inbox("evt_12");
    assert_eq!(again.status, InboxStatus::Failed);
    assert!(again.last_error.unwrap().contains("overflow"));
}

#[test]
fn one_event_whose_outcome_cannot_be_recorded_does_not_hold_up_the_rest_of_its_batch() {
    let w = world_with(true);
    ingest_many(&w, 1..=3, |_| StripeFact::Ignored);
    let inbox = StripeInbox(w.services.clone());
    let (batch, lease) = block_on(inbox.claim()).unwrap().unwrap();
    assert_eq!(batch.len(), 3);
    // The batch's own transaction fails, then the first event's when it is tried alone.
    w.store.fail_next_with_unavailable();
    w.store.fail_next_with_unavailable();
    let report = block_on(inbox.process(batch, &lease));
    assert_eq!((report.errors, report.skipped, report.released), (1, 2, 0), "{report:?}");
    assert_eq!(w.inbox("evt_1").status, InboxStatus::Pending);
    assert!(lease.held().is_empty(), "nothing is held once the batch is over");
    // It keeps its short lease, then any worker takes it again.
    assert_eq!(block_on(w.services.process_stripe_inbox(50)).unwrap().claimed, 0);
    w.clock.advance(rekomi_domain::stripe_inbox::INBOX_LEASE + Duration::seconds(1));
    assert_eq!(block_on(w.services.process_stripe_inbox(50)).unwrap().skipped, 1);
    assert_eq!(w.inbox("evt_1").status, InboxStatus::Skipped);
}

#[test]
fn a_worker_that_loses_its_store_mid_batch_lets_the_rest_go_and_its_lease_is_renewed_while_it_works() {
    let w = world_with(true);
    ingest_many(&w, 1..=6, |_| StripeFact::Ignored);
    let inbox = StripeInbox(w.services.clone());
    let (batch, lease) = block_on(inbox.claim()).unwrap().unwrap();
    // A renewal moves the lease of every event still held.
    w.clock.advance(Duration::seconds(10));
    assert_eq!(block_on(inbox.renew(&lease)).unwrap(), 6);
    let renewed = w.inbox("evt_6").locked_until.unwrap();
    assert_eq!(renewed, rekomi_domain::kernel::clock::Clock::now(&w.clock) + rekomi_domain::stripe_inbox::INBOX_LEASE);
    // The batch transaction and then three events alone fail, then the store is back.
    for _ in 0..4 {
        w.store.fail_next_with_unavailable();
    }
    let report = block_on(inbox.process(batch, &lease));
    assert_eq!((report.errors, report.released, report.skipped), (3, 3, 0), "{report:?}");
    assert_eq!(block_on(inbox.renew(&lease)).unwrap(), 0, "nothing is held any more");
    // The three let go are taken at once; the three that failed once their lease runs out.
    assert_eq!(block_on(w.services.process_stripe_inbox(50)).unwrap().skipped, 3);
    w.clock.advance(rekomi_domain::stripe_inbox::INBOX_LEASE + Duration::seconds(1));
    assert_eq!(block_on(w.services.process_stripe_inbox(50)).unwrap().skipped, 3);
    for n in 1..=6 {
        assert_eq!(w.inbox(&format!("evt_{n}")).status, InboxStatus::Skipped);
    }
}

#[test]
fn a_commission_total_that_would_overflow_fails_the_event_with_its_reason_and_changes_nothing() {
    let w = world_with(true);
    // Amounts this large are refused when a real payload is decoded; a forged history could
    // still bring the total to the edge.
    // 20 % of i64::MAX is 1.8e18: five such invoices come to just under i64::MAX, a sixth
    // would pass it.
    for n in 1..=5 {
        w.deliver(&format!("evt_{n}"), StripeFact::InvoicePaid(invoice(&format!("in_{n}"), Some("sub_1"), i64::MAX, vec![w.promo_ref()])));
        assert_eq!(w.inbox(&format!("evt_{n}")).status, InboxStatus::Done);
    }
    let before = w.only_conversion();
    let ledger_before = block_on(w.services.get_conversion(&w.ctx, before.id)).unwrap().1.len();
    w.deliver("evt_6", StripeFact::InvoicePaid(invoice("in_6", Some("sub_1"), i64::MAX, vec![w.promo_ref()])));
    let failed = w.inbox("evt_6");
    assert_eq!(failed.status, InboxStatus::Failed);
    assert!(failed.last_error.unwrap().contains("overflow"));
    assert_eq!(w.only_conversion(), before, "the renewal changed nothing");
    assert_eq!(block_on(w.services.get_conversion(&w.ctx, before.id)).unwrap().1.len(), ledger_before);
}

#[test]
fn an_owner_replays_an_event_at_most_five_times_and_an_operator_further() {
    let w = world_with(true);
    w.deliver("evt_1", StripeFact::InvoicePaid(invoice("in_1", None, 1000, vec![])));
    for n in 1..=5 {
        let replayed = block_on(w.services.replay_stripe_event(&w.ctx, stripe_id("evt_1"))).unwrap();
        assert_eq!((replayed.status, replayed.replays), (InboxStatus::Pending, n));
        block_on(w.services.process_stripe_inbox(50)).unwrap();
    }
    let refused = block_on(w.services.replay_stripe_event(&w.ctx, stripe_id("evt_1"))).unwrap_err();
    assert!(matches!(refused, rekomi_domain::kernel::error::DomainError::Conflict { code: "replay_limit_reached", .. }), "{refused:?}");
    assert_eq!(w.inbox("evt_1").status, InboxStatus::Done, "a refused replay changes nothing");
    let operator = block_on(w.services.replay_any_stripe_event(stripe_id("evt_1"))).unwrap();
    assert_eq!((operator.status, operator.replays), (InboxStatus::Pending, 5));
}

#[test]
fn discount_ids_are_resolved_by_fetching_the_invoice_and_refunds_find_their_invoice_through_payments() {
    let w = world_with(true);
    w.gateway.set_invoice_promotion_codes(&stripe_id("in_9"), vec![PromotionCodeRef { id: w.promo.clone(), code: Some("SARAH20".into()) }]);
    let mut inv = invoice("in_9", None, 2000, vec![]);
    inv.discounts.unresolved = true;
    w.deliver("evt_1", StripeFact::InvoicePaid(inv));
    assert_eq!(w.only_conversion().commission_minor, 400);
    w.gateway.set_invoice_of_payment(stripe_id::<StripePaymentRef>("pi_9"), &stripe_id("in_9"));
    w.deliver("evt_2", StripeFact::ChargeRefunded(refund(None, Some("pi_9"), 2000, 2000)));
    assert_eq!(w.only_conversion().status, ConversionStatus::Refunded);
    let methods = w.gateway.methods();
    assert!(methods.contains(&"invoice_promotion_codes") && methods.contains(&"invoice_of_payment"), "{methods:?}");
}

#[test]
fn a_stripe_outage_during_a_lookup_retries_the_event_later() {
    let w = world_with(true);
    let mut inv = invoice("in_9", None, 2000, vec![]);
    inv.discounts.unresolved = true;
    w.gateway.fail_next(GatewayError::Unavailable("down".into()));
    w.deliver("evt_1", StripeFact::InvoicePaid(inv));
    assert_eq!(w.inbox("evt_1").status, InboxStatus::Pending);
    assert!(w.conversions().is_empty());
}

#[test]
fn a_free_signup_is_a_lead_and_the_customers_later_payment_goes_to_the_same_affiliate() {
    let w = world_with(true);
    w.deliver("evt_1", StripeFact::InvoicePaid(invoice("in_free", Some("sub_1"), 0, vec![w.promo_ref()])));
    let lead = w.only_conversion();
    assert_eq!((lead.kind, lead.amount_minor, lead.commission_minor), (ConversionType::LeadReward, 0, 0));
    assert_eq!(w.redemptions(), 1, "the free signup still counts as a redemption");
    w.deliver("evt_2", StripeFact::InvoicePaid(invoice("in_paid", Some("sub_1"), 3000, vec![])));
    let sale = w.conversions().into_iter().find(|c| c.kind != ConversionType::LeadReward).unwrap();
    assert_eq!((sale.affiliate_id, sale.commission_minor), (w.sarah, 600));
    assert_eq!(sale.attribution_method.as_deref(), Some("metadata_or_customer"));
}

#[test]
fn a_custom_fixed_commission_beats_the_program_rate() {
    let w = world_with(true);
    let patch = rekomi_domain::affiliates::AffiliatePatch {
        custom_commission: Some(Some(Commission { kind: CommissionType::Fixed, value: Hundredths::new(1234) })),
        ..Default::default()
    };
    block_on(w.services.update_affiliate(&w.ctx, w.sarah, patch)).unwrap();
    w.deliver("evt_1", StripeFact::InvoicePaid(invoice("in_1", None, 100, vec![w.promo_ref()])));
    assert_eq!(w.only_conversion().commission_minor, 1234);
}

#[test]
fn a_recruiter_earns_an_override_that_is_clawed_back_with_the_sale() {
    let w = world_with(true);
    let mut ctx = w.ctx.clone();
    ctx.org.plan_tier = PlanTier::Pro;
    block_on(w.services.put_sub_affiliate_config(&ctx, w.program, true, Hundredths::new(1000))).unwrap();
    let recruit = affiliate(&w.services, &w.ctx, w.program, "recruit@creator.com", AffiliateStatus::Approved, Some(w.sarah));
    let code = block_on(w.services.create_affiliate_coupon(
        &w.ctx,
        recruit,
        w.coupon,
        AffiliateCouponInput { code: Some("RECRUIT".into()), ..Default::default() },
    ))
    .unwrap();
    let promo = PromotionCodeRef { id: code.coupon.stripe_promotion_code_id.unwrap(), code: None };
    w.deliver("evt_1", StripeFact::InvoicePaid(invoice("in_1", None, 10_000, vec![promo])));
    let all = w.conversions();
    let sale = all.iter().find(|c| c.affiliate_id == recruit).unwrap();
    let over = all.iter().find(|c| c.affiliate_id == w.sarah).unwrap();
    assert_eq!((sale.commission_minor, over.commission_minor, over.amount_minor), (2000, 200, 0));
    assert_eq!(over.attribution_method.as_deref(), Some("sub_affiliate_override"));
    assert_eq!(over.parent_conversion_id, Some(sale.id));
    let summary = block_on(w.services.sub_affiliates(&w.ctx, w.sarah)).unwrap();
    assert_eq!((summary[0].total_commission_minor, summary[0].override_earned_minor), (2000, 200));
    w.deliver("evt_2", StripeFact::ChargeRefunded(refund(Some("in_1"), None, 10_000, 5_000)));
    let all = w.conversions();
    assert_eq!(all.iter().find(|c| c.affiliate_id == w.sarah).unwrap().commission_minor, 100);
}

#[test]
fn conversions_become_approved_after_the_grace_days() {
    let w = world_with(true);
    w.deliver("evt_1", StripeFact::InvoicePaid(invoice("in_1", None, 1000, vec![w.promo_ref()])));
    assert_eq!(block_on(w.services.approve_due_conversions(10)).unwrap(), 0);
    w.clock.advance(Duration::days(i64::from(w.ctx.org.payout_grace_days)) + Duration::seconds(1));
    assert_eq!(block_on(w.services.approve_due_conversions(10)).unwrap(), 1);
    assert_eq!(w.only_conversion().status, ConversionStatus::Approved);
}

#[test]
fn a_bad_signature_stores_nothing() {
    let w = world_with(true);
    let now = rekomi_domain::kernel::clock::Clock::now(&w.clock).unix_timestamp();
    let forged = signature::header("whsec_other", now, b"evt_x");
    assert!(block_on(w.services.ingest_stripe_event(&[SECRET.to_owned()], None, Some(&forged), b"evt_x")).is_err());
    let stale = signature::header(SECRET, now - 301, b"evt_x");
    assert!(block_on(w.services.ingest_stripe_event(&[SECRET.to_owned()], None, Some(&stale), b"evt_x")).is_err());
    assert!(block_on(w.services.ingest_stripe_event(&[SECRET.to_owned()], None, None, b"evt_x")).is_err());
    assert!(w.store.read(|tx| tx.inbox_event(&stripe_id("evt_x")).unwrap()).is_none());
}

#[test]
fn a_code_deactivated_in_stripe_is_revoked_locally() {
    let w = world_with(true);
    w.deliver("evt_1", StripeFact::PromotionCodeUpdated { id: w.promo.clone(), active: false });
    assert!(!w.store.read(|tx| tx.affiliate_coupon_by_stripe_id(w.ctx.org_id(), &w.promo).unwrap().unwrap().is_active));
}

#[test]
fn events_of_unlinked_accounts_and_of_unknown_organizations_are_skipped() {
    let w = world_with(true);
    w.deliver_from("evt_1", Some("acct_unknown"), StripeFact::InvoicePaid(invoice("in_1", None, 1000, vec![w.promo_ref()])));
    assert_eq!(w.inbox("evt_1").status, InboxStatus::Skipped);
    assert!(w.conversions().is_empty());
    // A second organization makes a code-less platform event ambiguous.
    second_brand(&w);
    w.deliver("evt_2", StripeFact::InvoicePaid(invoice("in_2", None, 1000, vec![])));
    assert_eq!(w.inbox("evt_2").status, InboxStatus::Skipped);
    // A platform event with one of the first organization's codes still finds it.
    w.deliver("evt_3", StripeFact::InvoicePaid(invoice("in_3", None, 1000, vec![w.promo_ref()])));
    assert_eq!(w.conversions().len(), 1);
    // A refund names no code, but its customer was credited in this organization only.
    w.deliver("evt_4", StripeFact::ChargeRefunded(refund(Some("in_3"), None, 1000, 1000)));
    assert_eq!(w.inbox("evt_4").status, InboxStatus::Done);
    assert_eq!(w.only_conversion().status, ConversionStatus::Refunded);
}

fn checkout(session: &str, invoice: Option<&str>, amount: i64, codes: Vec<PromotionCodeRef>) -> StripeFact {
    StripeFact::CheckoutCompleted(rekomi_domain::stripe_inbox::facts::CheckoutFact {
        session_id: stripe_id(session),
        customer_id: Some(stripe_id("cus_buyer")),
        customer_email: Some("buyer@example.com".into()),
        mode: CheckoutMode::Payment,
        paid: true,
        amount_total: amount,
        currency: Some("usd".into()),
        subscription_id: None,
        invoice_id: invoice.map(stripe_id),
        payment_intent_id: Some(stripe_id("pi_checkout")),
        discounts: Discounts { promotion_codes: codes, unresolved: false, full_discount: false },
        referral: None,
        client_reference_id: None,
        created: 1_780_000_000,
    })
}

#[test]
fn a_one_time_checkout_with_an_invoice_and_that_invoice_are_one_sale_and_its_refund_claws_back() {
    let w = world_with(true);
    w.deliver("evt_1", checkout("cs_1", Some("in_1"), 1000, vec![w.promo_ref()]));
    w.deliver("evt_2", StripeFact::InvoicePaid(invoice("in_1", None, 1000, vec![w.promo_ref()])));
    let c = w.only_conversion();
    assert_eq!((c.commission_minor, w.redemptions()), (200, 1));
    w.deliver("evt_3", StripeFact::ChargeRefunded(refund(Some("in_1"), Some("pi_checkout"), 1000, 1000)));
    assert_eq!(w.only_conversion().status, ConversionStatus::Refunded);
}

#[test]
fn a_free_renewal_earns_no_fixed_fee_and_does_not_use_up_the_recurring_window() {
    let w = world_with(true);
    let patch = rekomi_domain::programs::ProgramPatch {
        default_commission_type: Some(CommissionType::Fixed),
        default_commission_value: Some(Hundredths::new(500)),
        recurring_months: Some(Some(1)),
        ..Default::default()
    };
    block_on(w.services.update_program(&w.ctx, w.program, patch)).unwrap();
    w.deliver("evt_1", StripeFact::InvoicePaid(invoice("in_1", Some("sub_1"), 1000, vec![w.promo_ref()])));
    w.deliver("evt_2", StripeFact::InvoicePaid(invoice("in_2", Some("sub_1"), 0, vec![])));
    w.deliver("evt_3", StripeFact::InvoicePaid(invoice("in_3", Some("sub_1"), 1000, vec![])));
    let c = w.only_conversion();
    let (_, ledger) = block_on(w.services.get_conversion(&w.ctx, c.id)).unwrap();
    assert_eq!(
        ledger.iter().map(|e| e.commission_minor).collect::<Vec<_>>(),
        vec![500, 0, 500],
        "the $0 month is not the first renewal: {ledger:#?}"
    );
}

#[test]
fn a_refund_of_a_sale_that_credited_nobody_is_done_at_once() {
    let w = world_with(true);
    w.deliver("evt_1", StripeFact::InvoicePaid(invoice("in_nobody", None, 1000, vec![])));
    w.deliver("evt_2", StripeFact::ChargeRefunded(refund(Some("in_nobody"), None, 1000, 1000)));
    assert_eq!(w.inbox("evt_2").status, InboxStatus::Done, "{:?}", w.inbox("evt_2").last_error);
    assert!(w.conversions().is_empty());
}

#[test]
fn test_mode_events_on_a_live_installation_are_stored_and_skipped() {
    let w = world_with(true);
    w.decoder.script("evt_test", None, StripeFact::InvoicePaid(invoice("in_1", None, 1000, vec![w.promo_ref()])));
    let now = rekomi_domain::kernel::clock::Clock::now(&w.clock).unix_timestamp();
    let header = signature::header(SECRET, now, b"evt_test");
    block_on(w.services.ingest_stripe_event(&[SECRET.to_owned()], Some(true), Some(&header), b"evt_test")).unwrap();
    block_on(w.services.process_stripe_inbox(50)).unwrap();
    assert_eq!(w.inbox("evt_test").status, InboxStatus::Skipped);
    assert!(w.conversions().is_empty());
}

#[test]
fn an_activation_at_stripe_never_brings_back_a_revoked_code() {
    let w = world_with(true);
    w.deliver("evt_1", StripeFact::PromotionCodeUpdated { id: w.promo.clone(), active: false });
    w.deliver("evt_2", StripeFact::PromotionCodeUpdated { id: w.promo.clone(), active: true });
    assert!(!w.store.read(|tx| tx.affiliate_coupon_by_stripe_id(w.ctx.org_id(), &w.promo).unwrap().unwrap().is_active));
}

#[test]
fn a_conversion_is_refunded_once_everything_it_earned_is_clawed_back_and_a_denied_one_stays_denied() {
    let w = world_with(true);
    let patch = rekomi_domain::programs::ProgramPatch { recurring_months: Some(Some(0)), ..Default::default() };
    block_on(w.services.update_program(&w.ctx, w.program, patch)).unwrap();
    w.deliver("evt_1", StripeFact::InvoicePaid(invoice("in_1", Some("sub_1"), 1000, vec![w.promo_ref()])));
    w.deliver("evt_2", StripeFact::InvoicePaid(invoice("in_2", Some("sub_1"), 1000, vec![])));
    w.deliver("evt_3", StripeFact::ChargeRefunded(refund(Some("in_1"), None, 1000, 1000)));
    assert_eq!(w.only_conversion().status, ConversionStatus::Refunded, "the renewal earned nothing, so nothing is left");

    let w = world_with(true);
    let mut own = invoice("in_1", None, 1000, vec![w.promo_ref()]);
    own.customer_email = Some("sarah@creator.com".into());
    w.deliver("evt_1", StripeFact::InvoicePaid(own));
    w.deliver("evt_2", StripeFact::ChargeRefunded(refund(Some("in_1"), None, 1000, 1000)));
    assert_eq!(w.only_conversion().status, ConversionStatus::Denied);
}

#[test]
fn a_platform_event_never_goes_to_an_organization_linked_to_its_own_stripe_account() {
    let w = world_with(true);
    block_on(w.services.link_stripe_account(w.ctx.org_id(), None)).unwrap();
    // Linking is refused once coupons exist on the platform account; simulate a brand that was
    // linked from the start by linking the store row directly.
    w.store.write(|tx| tx.set_stripe_account(w.ctx.org_id(), Some(&stripe_id("acct_brand"))).map(|_| ())).unwrap();
    w.deliver("evt_1", StripeFact::InvoicePaid(invoice("in_1", None, 1000, vec![w.promo_ref()])));
    assert_eq!(w.inbox("evt_1").status, InboxStatus::Skipped);
    w.deliver_from("evt_2", Some("acct_brand"), StripeFact::InvoicePaid(invoice("in_2", None, 1000, vec![w.promo_ref()])));
    assert_eq!(w.conversions().len(), 1, "the same code on the brand's own account is credited");
}

fn calls_of(w: &World, method: &str) -> usize {
    w.gateway.methods().iter().filter(|m| **m == method).count()
}

#[test]
fn a_referral_in_the_customers_metadata_beats_a_code_that_does_not_override_clicks() {
    let w = world_with(false);
    let bob = affiliate(&w.services, &w.ctx, w.program, "bob@creator.com", AffiliateStatus::Approved, None);
    let bob_slug = block_on(w.services.get_affiliate(&w.ctx, bob)).unwrap().links[0].slug.clone();
    w.gateway.set_customer_referral(&stripe_id("cus_buyer"), &bob_slug);
    let mut inv = invoice("in_1", Some("sub_1"), 1000, vec![w.promo_ref()]);
    inv.renewal = false;
    w.deliver("evt_1", StripeFact::InvoicePaid(inv));

    let c = w.only_conversion();
    assert_eq!((c.affiliate_id, c.attribution_method.as_deref()), (bob, Some("metadata_or_customer")));
    assert_eq!(c.coupon_code, None, "the code did not decide");
    assert_eq!(c.attribution_trace["rule"], "referral_metadata");
    assert_eq!(c.attribution_trace["referralRefs"], serde_json::json!([bob_slug]));
    assert_eq!(w.redemptions(), 1, "Sarah's code was redeemed all the same");
    let lookups: Vec<_> = w.gateway.calls().into_iter().filter(|c| c.method() == "customer_referral").collect();
    assert_eq!(lookups, vec![rekomi_fakes::GatewayCall::CustomerReferral { ctx: Default::default(), customer_id: stripe_id("cus_buyer") }]);
}

#[test]
fn renewal_invoices_and_payloads_that_name_a_referral_make_no_customer_lookup() {
    let w = world_with(false);
    let slug = block_on(w.services.get_affiliate(&w.ctx, w.sarah)).unwrap().links[0].slug.clone();
    w.deliver("evt_1", StripeFact::InvoicePaid(invoice("in_1", Some("sub_1"), 1000, vec![w.promo_ref()])));
    assert_eq!(calls_of(&w, "customer_referral"), 1, "a first invoice without referral looks the customer up");
    for i in 0..3 {
        let mut renewal = invoice(&format!("in_r{i}"), Some("sub_1"), 1000, vec![]);
        renewal.renewal = true;
        w.deliver(&format!("evt_r{i}"), StripeFact::InvoicePaid(renewal));
    }
    let mut named = invoice("in_named", None, 1000, vec![]);
    named.referral = Some(slug.clone());
    w.deliver("evt_named", StripeFact::InvoicePaid(named));
    let StripeFact::CheckoutCompleted(mut referenced) = checkout("cs_ref", None, 500, vec![]) else { unreachable!() };
    referenced.client_reference_id = Some(slug);
    w.deliver("evt_cs_ref", StripeFact::CheckoutCompleted(referenced));

    assert_eq!(calls_of(&w, "customer_referral"), 1, "{:?}", w.gateway.methods());
    assert_eq!(w.conversions().len(), 3, "the subscription's conversion, the named invoice and the checkout");
}

#[test]
fn a_checkout_without_reference_takes_the_customers_referral() {
    let w = world_with(true);
    let bob = affiliate(&w.services, &w.ctx, w.program, "bob@creator.com", AffiliateStatus::Approved, None);
    let bob_slug = block_on(w.services.get_affiliate(&w.ctx, bob)).unwrap().links[0].slug.clone();
    w.gateway.set_customer_referral(&stripe_id("cus_buyer"), &bob_slug);
    w.deliver("evt_1", checkout("cs_1", None, 1000, vec![]));
    let c = w.only_conversion();
    assert_eq!((c.affiliate_id, c.attribution_method.as_deref()), (bob, Some("metadata_or_customer")));
    assert_eq!(calls_of(&w, "customer_referral"), 1);
}

#[test]
fn an_unknown_customer_has_no_referral_and_the_code_still_credits_the_sale_while_an_outage_retries() {
    let w = world_with(false);
    w.gateway.fail_when(|call| (call.method() == "customer_referral").then_some(GatewayError::NotFound));
    w.deliver("evt_1", StripeFact::InvoicePaid(invoice("in_1", None, 1000, vec![w.promo_ref()])));
    let c = w.only_conversion();
    assert_eq!((c.affiliate_id, c.attribution_method.as_deref()), (w.sarah, Some("coupon")));
    assert_eq!(c.attribution_trace["rule"], "coupon_fallback");
    assert_eq!(w.inbox("evt_1").status, InboxStatus::Done);
    assert_eq!(calls_of(&w, "customer_referral"), 1);

    let w = world_with(false);
    w.gateway.fail_when(|call| (call.method() == "customer_referral").then_some(GatewayError::Unavailable("down".into())));
    w.deliver("evt_1", StripeFact::InvoicePaid(invoice("in_1", None, 1000, vec![w.promo_ref()])));
    let event = w.inbox("evt_1");
    assert_eq!(event.status, InboxStatus::Pending, "{:?}", event.last_error);
    assert!(event.last_error.unwrap_or_default().contains("Stripe lookup failed"));
    assert!(w.conversions().is_empty());
}
