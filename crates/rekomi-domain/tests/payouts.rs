//! Payouts over the fakes: sales through the Stripe inbox become ledger entries payable after
//! the grace period; preview and run pay them (Manual, Stripe Connect, PayPal); a clawback of a
//! paid entry is netted in the next run; a transfer whose answer is lost is settled once by the
//! reconciler; a refused transfer fails and can be retried; a reversal returns the entries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use rekomi_domain::affiliates::{AffiliatePatch, AffiliateStatus, Email, NewAffiliate};
use rekomi_domain::conversions::{ConversionFilter, ConversionStatus};
use rekomi_domain::fx::{FxRate, FxSource};
use rekomi_domain::idempotency::{IdempotentStart, StoredResponse};
use rekomi_domain::kernel::actor::BrandActor;
use rekomi_domain::kernel::error::DomainError;
use rekomi_domain::kernel::ids::{AffiliateId, ApiKeyId, OrgId, ProgramId};
use rekomi_domain::kernel::money::Currency;
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::kernel::plan::PlanTier;
use rekomi_domain::kernel::signature;
use rekomi_domain::kernel::stripe_ids::StripeAccountId;
use rekomi_domain::orgs::{Handle, NewOrganization};
use rekomi_domain::payouts::rail::ConnectedAccount;
use rekomi_domain::payouts::{
    Balance, IneligibilityCode, PayoutMethod, PayoutSelection, PayoutStatus, PayoutView, RecordPayoutAccount, RunPayouts, RECONCILE_AFTER,
};
use rekomi_domain::ports::gateway::Settlement;
use rekomi_domain::services::{BrandContext, Services};
use rekomi_domain::stripe_inbox::facts::{Discounts, InvoiceFact, RefundFact, StripeFact};
use rekomi_fakes::{
    FakeGateway, FakePayoutRail, FakeWebhookSender, FixedClock, InMemoryStore, ScriptedDecoder, SeededEntropy, TransferFailure,
};
use support::{block_on, new_program, stripe_id};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const SECRET: &str = "whsec_payout_tests";
const T0: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

struct World {
    services: Services,
    store: InMemoryStore,
    gateway: FakeGateway,
    rail: FakePayoutRail,
    clock: FixedClock,
    decoder: ScriptedDecoder,
    ctx: BrandContext,
    sarah: AffiliateId,
    tom: AffiliateId,
    grace: Duration,
    events: u32,
}

fn world() -> World {
    let store = InMemoryStore::new();
    let rail = FakePayoutRail::new();
    let clock = FixedClock::new(T0);
    let decoder = ScriptedDecoder::new();
    let gateway = FakeGateway::new();
    let services = Services {
        store: Arc::new(store.clone()),
        gateway: Arc::new(gateway.clone()),
        payout_rail: Arc::new(rail.clone()),
        clock: Arc::new(clock.clone()),
        entropy: Arc::new(SeededEntropy::new(8)),
        events: Arc::new(decoder.clone()),
        webhooks: Arc::new(FakeWebhookSender::new()),
    };
    let (org, _) = block_on(services.create_organization(NewOrganization {
        name: "Acme".into(),
        handle: Handle::parse("acme").unwrap(),
        plan: PlanTier::Growth,
    }))
    .unwrap();
    let grace = Duration::days(i64::from(org.payout_grace_days));
    let ctx = BrandContext { actor: BrandActor::ApiKey { org: org.id, key: ApiKeyId::from_uuid(uuid::Uuid::nil()) }, org, now: T0 };
    let program = block_on(services.create_program(&ctx, new_program("Default"))).unwrap().id;
    let sarah = affiliate(&services, &ctx, program, "sarah");
    let tom = affiliate(&services, &ctx, program, "tom");
    World { services, store, gateway, rail, clock, decoder, ctx, sarah, tom, grace, events: 0 }
}

fn affiliate(services: &Services, ctx: &BrandContext, program: ProgramId, alias: &str) -> AffiliateId {
    let new = NewAffiliate {
        program_id: program,
        email: Email::parse("e", &format!("{alias}@creator.com")).unwrap(),
        full_name: None,
        status: Some(AffiliateStatus::Approved),
        custom_commission: None,
        custom_alias: Some(alias.to_owned()),
        recruited_by: None,
    };
    block_on(services.create_affiliate(ctx, new)).unwrap().affiliate.id
}

fn invoice(id: &str, referral: &str, amount: i64, paid_at: OffsetDateTime) -> StripeFact {
    invoice_in(id, referral, amount, "usd", paid_at)
}

fn invoice_in(id: &str, referral: &str, amount: i64, currency: &str, paid_at: OffsetDateTime) -> StripeFact {
    StripeFact::InvoicePaid(InvoiceFact {
        invoice_id: stripe_id(id),
        customer_id: Some(stripe_id(&format!("cus_{id}"))),
        customer_email: Some(format!("buyer-{id}@example.com")),
        subscription_id: None,
        amount_paid: amount,
        currency: currency.into(),
        renewal: false,
        discounts: Discounts::default(),
        referral: Some(referral.to_owned()),
        charge_id: None,
        payment_intent_id: None,
        paid_at: paid_at.unix_timestamp(),
        settlement: None,
    })
}

fn refund(invoice: &str, amount: i64, refunded: i64, at: OffsetDateTime) -> StripeFact {
    StripeFact::ChargeRefunded(RefundFact {
        charge_id: stripe_id(&format!("ch_{invoice}")),
        payment_intent_id: None,
        invoice_id: Some(stripe_id(invoice)),
        customer_id: Some(stripe_id(&format!("cus_{invoice}"))),
        amount,
        amount_refunded: refunded,
        currency: "usd".into(),
        refunded_at: at.unix_timestamp(),
    })
}

fn manual() -> PayoutSelection {
    PayoutSelection { method: PayoutMethod::Manual, affiliate_ids: None, period_start: None, period_end: None, currency: None }
}

fn connect() -> PayoutSelection {
    PayoutSelection { method: PayoutMethod::StripeConnect, ..manual() }
}

impl World {
    fn now(&self) -> OffsetDateTime {
        rekomi_domain::kernel::clock::Clock::now(&self.clock)
    }

    fn deliver(&mut self, fact: StripeFact) {
        self.events += 1;
        let id = format!("evt_{}", self.events);
        self.decoder.script(&id, None, fact);
        let header = signature::header(SECRET, self.now().unix_timestamp(), id.as_bytes());
        block_on(self.services.ingest_stripe_event(&[SECRET.to_owned()], None, Some(&header), id.as_bytes())).unwrap();
        block_on(self.services.process_stripe_inbox(50)).unwrap();
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    fn preview(&self, selection: PayoutSelection) -> rekomi_domain::payouts::PayoutPreview {
        block_on(self.services.preview_payouts(&self.ctx, selection)).unwrap()
    }

    fn run(&self, selection: PayoutSelection) -> Vec<PayoutView> {
        let total = self.preview(selection.clone()).total_minor;
        let paid =
            block_on(self.services.run_payouts(&self.ctx, RunPayouts { selection, confirm_total_minor: total, notes: None })).unwrap();
        block_on(self.services.payouts_with_line_items(&self.ctx, paid.iter().map(|p| p.id).collect())).unwrap()
    }

    fn balance(&self, affiliate: AffiliateId) -> Balance {
        let org = self.ctx.org_id();
        Balance::of(self.store.read(|tx| tx.entry_claims(org, affiliate, Currency::USD)).unwrap())
    }

    fn conversion_statuses(&self) -> Vec<ConversionStatus> {
        let page = block_on(self.services.list_conversions(&self.ctx, ConversionFilter::default(), PageRequest::first())).unwrap();
        page.items.iter().map(|c| c.status).collect()
    }

    fn connect_account(&self, affiliate: AffiliateId, acct: &str, enabled: bool) -> StripeAccountId {
        let id: StripeAccountId = stripe_id(acct);
        self.rail.set_account(&id, enabled);
        let record = RecordPayoutAccount { stripe_account_id: Some(id.clone()), paypal_email: None, wise_email: None };
        block_on(self.services.record_payout_account(&self.ctx, affiliate, record)).unwrap();
        id
    }
}

#[test]
fn a_sale_is_paid_once_its_grace_period_has_passed_and_its_conversion_becomes_paid() {
    let mut w = world();
    w.deliver(invoice("in_1", "sarah", 10_000, T0));
    assert!(w.preview(manual()).candidates.is_empty(), "held for the grace period");
    w.advance(w.grace + Duration::seconds(1));
    let preview = w.preview(manual());
    assert_eq!((preview.total_minor, preview.eligible_count, preview.currency), (2_000, 1, Currency::USD));
    let paid = w.run(manual());
    assert_eq!(paid.len(), 1);
    assert_eq!((paid[0].payout.status, paid[0].payout.amount_minor, paid[0].line_items.len()), (PayoutStatus::Paid, 2_000, 1));
    assert_eq!(w.conversion_statuses(), vec![ConversionStatus::Paid]);
    assert_eq!(w.balance(w.sarah), Balance { earned: 2_000, clawed_back: 0, paid: 2_000, in_flight: 0, balance: 0 });
    assert!(w.preview(manual()).candidates.is_empty(), "nothing is paid twice");
}

#[test]
fn the_grace_period_counts_from_the_sale_not_from_when_it_was_processed() {
    let mut w = world();
    w.advance(Duration::days(10));
    // An invoice paid ten days ago, processed only now.
    w.deliver(invoice("in_1", "sarah", 10_000, T0));
    w.advance(w.grace - Duration::days(10) + Duration::seconds(1));
    assert_eq!(w.preview(manual()).total_minor, 2_000);
}

#[test]
fn a_run_whose_confirmed_total_is_stale_is_refused_and_writes_nothing() {
    let mut w = world();
    w.deliver(invoice("in_1", "sarah", 10_000, T0));
    w.advance(w.grace + Duration::seconds(1));
    let run = RunPayouts { selection: manual(), confirm_total_minor: 1_999, notes: None };
    let err = block_on(w.services.run_payouts(&w.ctx, run)).unwrap_err();
    assert!(matches!(err, DomainError::Conflict { code: "confirm_total_mismatch", .. }), "{err:?}");
    let listed = block_on(w.services.list_payouts(&w.ctx, Default::default(), PageRequest::first())).unwrap();
    assert!(listed.items.is_empty());
    assert_eq!(w.balance(w.sarah).paid, 0);
}

#[test]
fn a_refund_after_payout_is_carried_as_a_negative_balance_and_netted_in_the_next_run() {
    let mut w = world();
    w.deliver(invoice("in_1", "sarah", 10_000, T0));
    w.advance(w.grace + Duration::seconds(1));
    w.run(manual());
    w.deliver(refund("in_1", 10_000, 10_000, w.now()));
    w.deliver(invoice("in_2", "sarah", 5_000, w.now()));
    w.advance(w.grace + Duration::seconds(1));
    let carried = w.preview(manual());
    assert_eq!(carried.total_minor, 0);
    assert_eq!(carried.candidates[0].amount_minor, -1_000);
    assert_eq!(carried.candidates[0].ineligible, Some(IneligibilityCode::NegativeBalance));
    assert!(w.run(manual()).is_empty(), "never paid below zero");
    w.deliver(invoice("in_3", "sarah", 20_000, w.now()));
    w.advance(w.grace + Duration::seconds(1));
    let paid = w.run(manual());
    assert_eq!((paid[0].payout.amount_minor, paid[0].line_items.len()), (3_000, 3));
    let b = w.balance(w.sarah);
    assert_eq!(b, Balance { earned: 7_000, clawed_back: 2_000, paid: 5_000, in_flight: 0, balance: 0 });
    assert_eq!(b.earned - b.clawed_back - b.paid, b.balance);
}

#[test]
fn a_refund_inside_the_grace_period_cancels_the_sale_before_either_is_payable() {
    let mut w = world();
    w.deliver(invoice("in_1", "sarah", 10_000, T0));
    w.deliver(invoice("in_2", "tom", 10_000, T0));
    w.advance(Duration::days(1));
    w.deliver(refund("in_1", 10_000, 4_000, w.now()));
    // Before the sale is payable, its clawback is not payable either.
    assert!(w.preview(manual()).candidates.is_empty());
    w.advance(w.grace);
    let preview = w.preview(manual());
    let by: Vec<(AffiliateId, i64)> = preview.candidates.iter().map(|c| (c.affiliate_id, c.amount_minor)).collect();
    assert!(by.contains(&(w.sarah, 1_200)) && by.contains(&(w.tom, 2_000)), "{by:?}");
}

#[test]
fn stripe_connect_transfers_once_per_payout_with_a_key_from_its_id_and_attempt() {
    let mut w = world();
    let acct = w.connect_account(w.sarah, "acct_sarah", true);
    w.deliver(invoice("in_1", "sarah", 10_000, T0));
    w.advance(w.grace + Duration::seconds(1));
    let paid = w.run(connect());
    let p = &paid[0].payout;
    assert_eq!(p.status, PayoutStatus::Paid);
    let transfers = w.rail.transfers();
    assert_eq!(transfers.len(), 1);
    assert_eq!((transfers[0].destination.clone(), transfers[0].amount.minor()), (acct, 2_000));
    assert_eq!(transfers[0].idempotency_key, format!("rekomi-payout-{}-attempt-1", p.id));
    assert_eq!(transfers[0].transfer_group, format!("rekomi_payout_{}", p.id));
    assert_eq!(p.stripe_transfer_id.as_ref(), Some(&transfers[0].id));
}

#[test]
fn stripe_connect_candidates_need_an_account_that_can_receive_payouts() {
    let mut w = world();
    w.connect_account(w.tom, "acct_tom", false);
    w.deliver(invoice("in_1", "sarah", 10_000, T0));
    w.deliver(invoice("in_2", "tom", 10_000, T0));
    w.advance(w.grace + Duration::seconds(1));
    let preview = w.preview(connect());
    let reasons: Vec<_> = preview.candidates.iter().map(|c| (c.affiliate_id, c.ineligible)).collect();
    assert!(reasons.contains(&(w.sarah, Some(IneligibilityCode::NoStripeConnect))), "{reasons:?}");
    assert!(reasons.contains(&(w.tom, Some(IneligibilityCode::PayoutsNotEnabled))), "{reasons:?}");
    assert_eq!(preview.total_minor, 0);
    // account.updated enables Tom's account.
    w.deliver(StripeFact::AccountUpdated(ConnectedAccount { id: stripe_id("acct_tom"), payouts_enabled: true, details_submitted: true }));
    w.rail.set_account(&stripe_id("acct_tom"), true);
    assert_eq!(w.preview(connect()).total_minor, 2_000);
    // A paused affiliate is carried.
    let patch = AffiliatePatch { status: Some(AffiliateStatus::Paused), ..Default::default() };
    block_on(w.services.update_affiliate(&w.ctx, w.tom, patch)).unwrap();
    let paused = w.preview(connect());
    assert!(paused.candidates.iter().any(|c| c.affiliate_id == w.tom && c.ineligible == Some(IneligibilityCode::AffiliateNotApproved)));
}

#[test]
fn a_transfer_whose_answer_was_lost_stays_processing_and_the_reconciler_settles_it_exactly_once() {
    let mut w = world();
    w.connect_account(w.sarah, "acct_sarah", true);
    w.deliver(invoice("in_1", "sarah", 10_000, T0));
    w.advance(w.grace + Duration::seconds(1));
    w.rail.fail_next_transfer(TransferFailure::LostAnswer);
    let run = w.run(connect());
    assert_eq!(run[0].payout.status, PayoutStatus::Processing);
    assert_eq!(w.rail.transfers().len(), 1, "Stripe made the transfer; Rekomi does not know yet");
    assert!(w.preview(connect()).candidates.is_empty(), "its entries stay held");
    // Too early for the reconciler: the run may still be recording.
    assert_eq!(block_on(w.services.reconcile_payouts(10, RECONCILE_AFTER)).unwrap(), 0);
    w.advance(Duration::minutes(2));
    assert_eq!(block_on(w.services.reconcile_payouts(10, RECONCILE_AFTER)).unwrap(), 1);
    let p = block_on(w.services.get_payout(&w.ctx, run[0].payout.id)).unwrap().payout;
    assert_eq!(p.status, PayoutStatus::Paid);
    assert_eq!(w.rail.transfers().len(), 1, "found by its transfer group, not made again");
    assert_eq!(p.stripe_transfer_id.as_ref(), Some(&w.rail.transfers()[0].id));
    assert_eq!(block_on(w.services.reconcile_payouts(10, RECONCILE_AFTER)).unwrap(), 0);
    assert_eq!(w.balance(w.sarah).paid, 2_000);
}

#[test]
fn a_transfer_that_never_reached_stripe_is_made_by_the_reconciler_with_the_same_key() {
    let mut w = world();
    w.connect_account(w.sarah, "acct_sarah", true);
    w.deliver(invoice("in_1", "sarah", 10_000, T0));
    w.advance(w.grace + Duration::seconds(1));
    w.rail.fail_next_transfer(TransferFailure::Unavailable);
    let run = w.run(connect());
    assert_eq!((run[0].payout.status, w.rail.transfers().len()), (PayoutStatus::Processing, 0));
    w.advance(Duration::minutes(2));
    block_on(w.services.reconcile_payouts(10, RECONCILE_AFTER)).unwrap();
    let transfers = w.rail.transfers();
    assert_eq!(transfers.len(), 1);
    assert_eq!(transfers[0].idempotency_key, run[0].payout.transfer_key());
    assert_eq!(block_on(w.services.get_payout(&w.ctx, run[0].payout.id)).unwrap().payout.status, PayoutStatus::Paid);
}

#[test]
fn a_refused_transfer_fails_returns_its_entries_and_a_retry_pays_them_as_a_new_attempt() {
    let mut w = world();
    w.connect_account(w.sarah, "acct_sarah", true);
    w.deliver(invoice("in_1", "sarah", 10_000, T0));
    w.advance(w.grace + Duration::seconds(1));
    w.rail.fail_next_transfer(TransferFailure::Rejected("Insufficient funds in the platform balance".into()));
    let run = w.run(connect());
    let failed = &run[0].payout;
    assert_eq!(failed.status, PayoutStatus::Failed);
    assert!(failed.failure_reason.as_deref().unwrap().contains("Insufficient funds"), "{failed:?}");
    assert_eq!(w.preview(connect()).total_minor, 2_000, "its entries are back in the balance");
    let retried = block_on(w.services.retry_payout(&w.ctx, failed.id)).unwrap();
    assert_eq!((retried.payout.status, retried.payout.attempt), (PayoutStatus::Paid, 2));
    assert_eq!(w.rail.transfers()[0].idempotency_key, format!("rekomi-payout-{}-attempt-2", failed.id));
    let again = block_on(w.services.retry_payout(&w.ctx, failed.id)).unwrap_err();
    assert!(matches!(again, DomainError::Conflict { code: "payout_not_failed", .. }), "{again:?}");
    assert_eq!(w.balance(w.sarah).paid, 2_000);
}

#[test]
fn a_failed_payout_whose_entries_were_paid_since_cannot_be_retried() {
    let mut w = world();
    w.connect_account(w.sarah, "acct_sarah", true);
    w.deliver(invoice("in_1", "sarah", 10_000, T0));
    w.advance(w.grace + Duration::seconds(1));
    w.rail.fail_next_transfer(TransferFailure::Rejected("no".into()));
    let failed = w.run(connect())[0].payout.id;
    w.run(manual());
    let err = block_on(w.services.retry_payout(&w.ctx, failed)).unwrap_err();
    assert!(matches!(err, DomainError::Conflict { code: "payout_entries_taken", .. }), "{err:?}");
    assert_eq!(w.balance(w.sarah).paid, 2_000);
}

#[test]
fn a_reversed_transfer_fails_its_payout_and_returns_the_entries_once() {
    let mut w = world();
    w.connect_account(w.sarah, "acct_sarah", true);
    w.deliver(invoice("in_1", "sarah", 10_000, T0));
    w.advance(w.grace + Duration::seconds(1));
    let run = w.run(connect());
    let transfer = run[0].payout.stripe_transfer_id.clone().unwrap();
    let reversed =
        StripeFact::TransferReversed { transfer, payout_id: Some(run[0].payout.id), org_id: Some(w.ctx.org_id()), fully_reversed: true };
    w.deliver(reversed.clone());
    w.deliver(reversed);
    let p = block_on(w.services.get_payout(&w.ctx, run[0].payout.id)).unwrap().payout;
    assert_eq!((p.status, p.failure_reason.as_deref()), (PayoutStatus::Failed, Some("reversed")));
    assert_eq!(w.conversion_statuses(), vec![ConversionStatus::Approved]);
    assert_eq!(w.balance(w.sarah), Balance { earned: 2_000, clawed_back: 0, paid: 0, in_flight: 0, balance: 2_000 });
    assert_eq!(w.preview(manual()).total_minor, 2_000);
}

#[test]
fn paypal_payouts_wait_for_the_brand_to_mark_them_paid() {
    let mut w = world();
    let email = Email::parse("paypalEmail", "sarah@paypal.example").unwrap();
    let record = RecordPayoutAccount { stripe_account_id: None, paypal_email: Some(email), wise_email: None };
    block_on(w.services.record_payout_account(&w.ctx, w.sarah, record)).unwrap();
    w.deliver(invoice("in_1", "sarah", 10_000, T0));
    w.deliver(invoice("in_2", "tom", 10_000, T0));
    w.advance(w.grace + Duration::seconds(1));
    let paypal = PayoutSelection { method: PayoutMethod::PayPal, ..manual() };
    let preview = w.preview(paypal.clone());
    assert!(preview.candidates.iter().any(|c| c.affiliate_id == w.tom && c.ineligible == Some(IneligibilityCode::NoPayoutEmail)));
    let run = w.run(paypal);
    assert_eq!(
        (run.len(), run[0].payout.status, run[0].payout.destination.as_deref()),
        (1, PayoutStatus::Pending, Some("sarah@paypal.example"))
    );
    assert_eq!(block_on(w.services.paypal_payouts_to_export(&w.ctx)).unwrap().len(), 1);
    let paid = block_on(w.services.mark_payout_paid(&w.ctx, run[0].payout.id, "PP-123".into(), None)).unwrap();
    assert_eq!((paid.payout.status, paid.payout.external_transaction_id.as_deref()), (PayoutStatus::Paid, Some("PP-123")));
    assert!(block_on(w.services.paypal_payouts_to_export(&w.ctx)).unwrap().is_empty());
    assert_eq!(w.balance(w.sarah).paid, 2_000);
}

#[test]
fn an_idempotency_key_replays_its_answer_refuses_another_body_and_one_in_flight() {
    let w = world();
    let org: OrgId = w.ctx.org_id();
    assert_eq!(block_on(w.services.start_idempotent(org, "k1", b"body")).unwrap(), IdempotentStart::Run);
    assert_eq!(block_on(w.services.start_idempotent(org, "k1", b"body")).unwrap(), IdempotentStart::InFlight);
    assert_eq!(block_on(w.services.start_idempotent(org, "k1", b"other")).unwrap(), IdempotentStart::Mismatch);
    let answer = StoredResponse { status: 200, body: "[]".into() };
    block_on(w.services.finish_idempotent(org, "k1", answer.clone())).unwrap();
    assert_eq!(block_on(w.services.start_idempotent(org, "k1", b"body")).unwrap(), IdempotentStart::Replay(answer));
    w.advance(Duration::minutes(61));
    assert_eq!(block_on(w.services.start_idempotent(org, "k1", b"other")).unwrap(), IdempotentStart::Run, "the window has passed");
    // A 5xx answer forgets the key, so the client's retry runs again.
    block_on(w.services.finish_idempotent(org, "k1", StoredResponse { status: 503, body: "{}".into() })).unwrap();
    assert_eq!(block_on(w.services.start_idempotent(org, "k1", b"body")).unwrap(), IdempotentStart::Run);
}

#[test]
fn every_entry_stores_its_rate_to_the_home_currency_stripes_own_first_then_the_ecb_then_none() {
    let mut w = world();
    // The ECB's rates of a Friday: a Sunday sale takes them.
    let csv = "Date,USD,JPY,GBP,\n2026-05-29,1.1172,175.68,0.8338,\n";
    block_on(w.services.import_fx_rates(csv)).unwrap();
    let sunday = datetime!(2026-05-31 12:00 UTC);
    w.gateway.set_invoice_settlement(
        &stripe_id("in_eur"),
        Settlement { currency: "usd".into(), exchange_rate: FxRate::parse("1.0832").unwrap() },
    );
    w.deliver(invoice_in("in_eur", "sarah", 10_000, "eur", sunday));
    w.deliver(invoice_in("in_gbp", "sarah", 10_000, "gbp", sunday));
    w.deliver(invoice_in("in_aed", "tom", 10_000, "aed", sunday));
    w.deliver(invoice("in_usd", "tom", 10_000, sunday));
    let org = w.ctx.org_id();
    let mut rates: Vec<(String, Option<(String, FxSource)>)> = w
        .store
        .read(|tx| {
            let all = tx.list_conversions(org, &ConversionFilter::default(), &PageRequest::first()).unwrap();
            all.iter().flat_map(|c| tx.ledger_of(org, c.id).unwrap()).collect::<Vec<_>>()
        })
        .into_iter()
        .map(|e| (e.currency.code().to_owned(), e.fx.map(|(rate, source)| (rate.to_string(), source))))
        .collect();
    rates.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        rates,
        vec![
            ("AED".to_owned(), None),
            ("EUR".to_owned(), Some(("1.0832".to_owned(), FxSource::StripeBalanceTransaction))),
            // USD per GBP = 1.1172 / 0.8338, rounded half up at 12 places.
            ("GBP".to_owned(), Some(("1.339889661789".to_owned(), FxSource::EcbReference))),
            ("USD".to_owned(), Some(("1".to_owned(), FxSource::Identity))),
        ]
    );
    // Only payments in another currency are asked about.
    let asked: Vec<String> = w
        .gateway
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            rekomi_fakes::GatewayCall::InvoiceSettlement { invoice_id, .. } => Some(invoice_id.as_str().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(asked, vec!["in_eur", "in_gbp", "in_aed"]);
}
