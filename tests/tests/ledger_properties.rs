//! Property tests of the commission ledger and payouts: random histories of sales, renewals,
//! partial and full refunds, replays, refunds that arrive before their sale, the clock moving
//! and Manual payout runs, driven through the real Stripe inbox use cases, against an
//! independent model of what each affiliate earned, had clawed back and was paid.
//!
//! After every step, per affiliate: the store's `earned − clawed back − paid = balance` holds
//! with each term equal to the model's; every payout is positive and pays exactly the model's
//! payable open entries; after a run nothing payable is left unpaid (a negative balance is
//! carried, never paid below zero); a replayed event changes nothing.
//!
//! 10,000 histories run on the in-memory store (`LEDGER_CASES` overrides), a smaller number
//! (`LEDGER_PG_CASES`, default 48) on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use rekomi_domain::affiliates::{AffiliateStatus, Email, NewAffiliate};
use rekomi_domain::kernel::actor::BrandActor;
use rekomi_domain::kernel::clock::Clock;
use rekomi_domain::kernel::ids::{AffiliateId, ApiKeyId};
use rekomi_domain::kernel::money::Currency;
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::kernel::plan::PlanTier;
use rekomi_domain::kernel::signature;
use rekomi_domain::kernel::stripe_ids::StripeAccountId;
use rekomi_domain::orgs::{Handle, NewOrganization};
use rekomi_domain::payouts::{Balance, PayoutMethod, PayoutSelection, PayoutStatus, RunPayouts};
use rekomi_domain::ports::store::UnitOfWork;
use rekomi_domain::programs::{AttributionModel, Commission, CommissionModel, CommissionType, Hundredths, NetworkVisibility, NewProgram};
use rekomi_domain::services::{BrandContext, Services};
use rekomi_domain::stripe_inbox::facts::{Discounts, InvoiceFact, RefundFact, StripeFact};
use rekomi_fakes::{FakeGateway, FakePayoutRail, FakeWebhookSender, FixedClock, InMemoryStore, ScriptedDecoder, SeededEntropy};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const SECRET: &str = "whsec_ledger_properties";
const AFFILIATES: usize = 2;
static CASE: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Debug)]
enum Step {
    /// A new subscription's first invoice, credited to an affiliate.
    Sale { affiliate: usize, amount: i64 },
    /// A further invoice of an earlier sale's subscription.
    Renewal { sale: usize, amount: i64 },
    /// The cumulative refunded share (percent) of an earlier invoice grows to at least this.
    Refund { invoice: usize, percent: i64 },
    /// An earlier event again: the same id (a redelivery) or its twin under a new id.
    Replay { event: usize, same_id: bool },
    /// A sale whose refund arrives first.
    RefundBeforeSale { affiliate: usize, amount: i64, percent: i64 },
    /// The clock moves.
    Advance { hours: i64 },
    /// A Manual payout run of everything payable.
    Payout,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..AFFILIATES, 1i64..=50_000).prop_map(|(affiliate, amount)| Step::Sale { affiliate, amount }),
        2 => (0usize..8, 1i64..=50_000).prop_map(|(sale, amount)| Step::Renewal { sale, amount }),
        3 => (0usize..12, 1i64..=100).prop_map(|(invoice, percent)| Step::Refund { invoice, percent }),
        2 => (0usize..20, any::<bool>()).prop_map(|(event, same_id)| Step::Replay { event, same_id }),
        1 => (0..AFFILIATES, 1i64..=50_000, 1i64..=100).prop_map(|(affiliate, amount, percent)| Step::RefundBeforeSale { affiliate, amount, percent }),
        3 => (0i64..=24 * 40).prop_map(|hours| Step::Advance { hours }),
        2 => Just(Step::Payout),
    ]
}

/// One ledger entry as the model expects it.
#[derive(Clone, Debug)]
struct Entry {
    affiliate: usize,
    commission: i64,
    payable_after: OffsetDateTime,
    paid: bool,
}

/// One invoice as the model knows it.
#[derive(Clone, Debug)]
struct Invoice {
    id: String,
    affiliate: usize,
    amount: i64,
    commission: i64,
    credit_payable_after: OffsetDateTime,
    refunded: i64,
    clawed: i64,
}

#[derive(Default)]
struct Model {
    invoices: Vec<Invoice>,
    /// Sales (subscriptions): their first invoice's index.
    sales: Vec<usize>,
    entries: Vec<Entry>,
    paid: [i64; AFFILIATES],
    /// Every event sent: (id, fact).
    events: Vec<(String, StripeFact)>,
}

/// Half away from zero, as the domain's one rounding rule; written here again on purpose.
fn rounded(numerator: i128, denominator: i128) -> i64 {
    i64::try_from((numerator + denominator / 2) / denominator).unwrap()
}

impl Model {
    fn credit(&mut self, id: String, affiliate: usize, amount: i64, at: OffsetDateTime, grace: Duration) -> usize {
        let commission = rounded(i128::from(amount) * 2_000, 10_000);
        let credit_payable_after = at + grace;
        if commission != 0 {
            self.entries.push(Entry { affiliate, commission, payable_after: credit_payable_after, paid: false });
        }
        self.invoices.push(Invoice { id, affiliate, amount, commission, credit_payable_after, refunded: 0, clawed: 0 });
        self.invoices.len() - 1
    }

    fn refund(&mut self, invoice: usize, refunded: i64, at: OffsetDateTime) {
        let inv = &mut self.invoices[invoice];
        if refunded <= inv.refunded {
            return;
        }
        inv.refunded = refunded;
        let target = rounded(i128::from(inv.commission) * i128::from(refunded), i128::from(inv.amount));
        let delta = target - inv.clawed;
        inv.clawed = target;
        if delta != 0 {
            let entry =
                Entry { affiliate: inv.affiliate, commission: -delta, payable_after: inv.credit_payable_after.max(at), paid: false };
            self.entries.push(entry);
        }
    }

    fn earned(&self, a: usize) -> i64 {
        self.entries.iter().filter(|e| e.affiliate == a && e.commission > 0).map(|e| e.commission).sum()
    }

    fn clawed(&self, a: usize) -> i64 {
        -self.entries.iter().filter(|e| e.affiliate == a && e.commission < 0).map(|e| e.commission).sum::<i64>()
    }

    /// What a run at `now` pays each affiliate: the open payable entries, when they sum above 0.
    fn payable(&self, a: usize, now: OffsetDateTime) -> i64 {
        self.entries.iter().filter(|e| e.affiliate == a && !e.paid && e.payable_after <= now).map(|e| e.commission).sum()
    }

    fn pay(&mut self, a: usize, now: OffsetDateTime) {
        for e in self.entries.iter_mut().filter(|e| e.affiliate == a && !e.paid && e.payable_after <= now) {
            e.paid = true;
        }
    }
}

/// A brand on `store`: an organization linked to its own Stripe account (so its events find it
/// among the other cases' organizations), a 20 % lifetime program and two Approved affiliates.
struct World {
    services: Services,
    clock: FixedClock,
    decoder: ScriptedDecoder,
    ctx: BrandContext,
    account: StripeAccountId,
    affiliates: Vec<AffiliateId>,
    grace: Duration,
    case: u64,
    next_event: u64,
}

async fn world(store: Arc<dyn UnitOfWork>) -> World {
    let case = CASE.fetch_add(1, Ordering::Relaxed);
    let clock = FixedClock::new(datetime!(2026-06-01 12:00 UTC));
    let decoder = ScriptedDecoder::new();
    let services = Services {
        store,
        gateway: Arc::new(FakeGateway::new()),
        payout_rail: Arc::new(FakePayoutRail::new()),
        clock: Arc::new(clock.clone()),
        entropy: Arc::new(SeededEntropy::new(case)),
        events: Arc::new(decoder.clone()),
        webhooks: Arc::new(FakeWebhookSender::new()),
    };
    let handle = Handle::parse(&format!("ledger-{case}-{}", std::process::id())).unwrap();
    let (org, _) = services.create_organization(NewOrganization { name: "Ledger".into(), handle, plan: PlanTier::Growth }).await.unwrap();
    let account: StripeAccountId = format!("acct_ledger{case}x{}", std::process::id()).parse().unwrap();
    services.link_stripe_account(org.id, Some(account.clone())).await.unwrap();
    let grace = Duration::days(i64::from(org.payout_grace_days));
    let ctx =
        BrandContext { actor: BrandActor::ApiKey { org: org.id, key: ApiKeyId::from_uuid(uuid::Uuid::nil()) }, org, now: clock.now() };
    let program = services
        .create_program(
            &ctx,
            NewProgram {
                name: "Partners".into(),
                slug: None,
                description: None,
                terms_url: None,
                default_commission: Commission::new(CommissionType::Percentage, Hundredths::new(2_000), "v").unwrap(),
                default_commission_model: CommissionModel::Cps,
                cookie_window_days: 30,
                recurring_months: None,
                recurring_delay_invoices: 0,
                attribution_model: AttributionModel::LastTouch,
                auto_approve: false,
                network_visibility: NetworkVisibility::Private,
                is_publicly_discoverable: true,
                landing_url: None,
            },
        )
        .await
        .unwrap()
        .id;
    let mut affiliates = Vec::new();
    for n in 0..AFFILIATES {
        let new = NewAffiliate {
            program_id: program,
            email: Email::parse("e", &format!("a{n}@ledger.example")).unwrap(),
            full_name: None,
            status: Some(AffiliateStatus::Approved),
            custom_commission: None,
            custom_alias: Some(format!("l{case}a{n}")),
            recruited_by: None,
        };
        affiliates.push(services.create_affiliate(&ctx, new).await.unwrap().affiliate.id);
    }
    World { services, clock, decoder, ctx, account, affiliates, grace, case, next_event: 0 }
}

impl World {
    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    fn slug(&self, affiliate: usize) -> String {
        format!("l{}a{affiliate}", self.case)
    }

    fn invoice(&self, id: &str, subscription: &str, affiliate: usize, amount: i64) -> StripeFact {
        StripeFact::InvoicePaid(InvoiceFact {
            invoice_id: id.parse().unwrap(),
            customer_id: Some(format!("cus_{subscription}").parse().unwrap()),
            customer_email: Some(format!("{subscription}@buyer.example")),
            subscription_id: Some(format!("sub_{subscription}").parse().unwrap()),
            amount_paid: amount,
            currency: "usd".into(),
            renewal: false,
            discounts: Discounts::default(),
            referral: Some(self.slug(affiliate)),
            charge_id: None,
            payment_intent_id: None,
            paid_at: self.now().unix_timestamp(),
            settlement: None,
        })
    }

    fn refund(&self, invoice: &Invoice, refunded: i64) -> StripeFact {
        StripeFact::ChargeRefunded(RefundFact {
            charge_id: format!("ch_{}", &invoice.id[3..]).parse().unwrap(),
            payment_intent_id: None,
            invoice_id: Some(invoice.id.parse().unwrap()),
            customer_id: None,
            amount: invoice.amount,
            amount_refunded: refunded,
            currency: "usd".into(),
            refunded_at: self.now().unix_timestamp(),
        })
    }

    fn event_id(&mut self) -> String {
        self.next_event += 1;
        format!("evt_c{}x{}n{}", self.case, std::process::id(), self.next_event)
    }

    /// Ingests `fact` under `id` and runs the worker until nothing is left (a sale wakes the
    /// refunds waiting for it). Returns whether the id was new.
    async fn deliver(&self, id: &str, fact: StripeFact) -> bool {
        self.decoder.script(id, Some(self.account.clone()), fact);
        let header = signature::header(SECRET, self.now().unix_timestamp(), id.as_bytes());
        let outcome = self.services.ingest_stripe_event(&[SECRET.to_owned()], None, Some(&header), id.as_bytes()).await.unwrap();
        for _ in 0..3 {
            self.services.process_stripe_inbox(50).await.unwrap();
            self.services.wake_due_stripe_events(50).await.unwrap();
        }
        !outcome.duplicate
    }

    async fn balance(&self, affiliate: usize) -> Balance {
        let org = self.ctx.org_id();
        let id = self.affiliates[affiliate];
        let claims =
            rekomi_domain::ports::transact(self.services.store.as_ref(), move |tx| tx.entry_claims(org, id, Currency::USD)).await.unwrap();
        Balance::of(claims)
    }
}

async fn check(world: &World, model: &Model) -> Result<(), TestCaseError> {
    for a in 0..AFFILIATES {
        let b = world.balance(a).await;
        prop_assert_eq!(b.earned - b.clawed_back - b.paid, b.balance);
        prop_assert_eq!(b.earned, model.earned(a), "earned of affiliate {}", a);
        prop_assert_eq!(b.clawed_back, model.clawed(a), "clawed back of affiliate {}", a);
        prop_assert_eq!(b.paid, model.paid[a], "paid to affiliate {}", a);
        prop_assert_eq!(b.in_flight, 0);
    }
    Ok(())
}

async fn run_history(store: Arc<dyn UnitOfWork>, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut w = world(store).await;
    let mut m = Model::default();
    for step in steps {
        match step {
            Step::Sale { affiliate, amount } => {
                let n = w.event_id();
                let id = format!("in_{}", &n[4..]);
                let fact = w.invoice(&id, &n[4..], affiliate, amount);
                w.deliver(&n, fact.clone()).await;
                let index = m.credit(id, affiliate, amount, w.now(), w.grace);
                m.sales.push(index);
                m.events.push((n, fact));
            }
            Step::Renewal { sale, amount } => {
                let Some(&first) = m.sales.get(sale % m.sales.len().max(1)) else { continue };
                let affiliate = m.invoices[first].affiliate;
                let subscription = m.invoices[first].id[3..].to_owned();
                let n = w.event_id();
                let id = format!("in_{}", &n[4..]);
                let fact = w.invoice(&id, &subscription, affiliate, amount);
                w.deliver(&n, fact.clone()).await;
                m.credit(id, affiliate, amount, w.now(), w.grace);
                m.events.push((n, fact));
            }
            Step::Refund { invoice, percent } => {
                if m.invoices.is_empty() {
                    continue;
                }
                let index = invoice % m.invoices.len();
                let inv = m.invoices[index].clone();
                let refunded = (inv.amount * percent / 100).max(inv.refunded).max(1).min(inv.amount);
                let n = w.event_id();
                let fact = w.refund(&inv, refunded);
                w.deliver(&n, fact.clone()).await;
                m.refund(index, refunded, w.now());
                m.events.push((n, fact));
            }
            Step::Replay { event, same_id } => {
                if m.events.is_empty() {
                    continue;
                }
                let (id, fact) = m.events[event % m.events.len()].clone();
                let before: Vec<Balance> = futures_balances(&w).await;
                let id = if same_id { id } else { w.event_id() };
                w.deliver(&id, fact).await;
                prop_assert_eq!(futures_balances(&w).await, before, "a replay changed the ledger");
            }
            Step::RefundBeforeSale { affiliate, amount, percent } => {
                let n = w.event_id();
                let id = format!("in_{}", &n[4..]);
                let refunded = (amount * percent / 100).max(1);
                let pending =
                    Invoice { id: id.clone(), affiliate, amount, commission: 0, credit_payable_after: w.now(), refunded: 0, clawed: 0 };
                let refund_id = w.event_id();
                let refund = w.refund(&pending, refunded);
                w.deliver(&refund_id, refund.clone()).await;
                let sale = w.invoice(&id, &n[4..], affiliate, amount);
                w.deliver(&n, sale.clone()).await;
                let index = m.credit(id, affiliate, amount, w.now(), w.grace);
                m.sales.push(index);
                m.refund(index, refunded, w.now());
                m.events.push((n, sale));
                m.events.push((refund_id, refund));
            }
            Step::Advance { hours } => {
                w.clock.advance(Duration::hours(hours));
            }
            Step::Payout => {
                let now = w.now();
                let selection = PayoutSelection {
                    method: PayoutMethod::Manual,
                    affiliate_ids: None,
                    period_start: None,
                    period_end: None,
                    currency: None,
                };
                let preview = w.services.preview_payouts(&w.ctx, selection.clone()).await.unwrap();
                let run = RunPayouts { selection: selection.clone(), confirm_total_minor: preview.total_minor, notes: None };
                let ids = w.services.run_payouts(&w.ctx, run).await.unwrap().iter().map(|p| p.id).collect();
                let paid = w.services.payouts_with_line_items(&w.ctx, ids).await.unwrap();
                for a in 0..AFFILIATES {
                    let expected = m.payable(a, now);
                    let made: Vec<_> = paid.iter().filter(|p| p.payout.affiliate_id == w.affiliates[a]).collect();
                    if expected > 0 {
                        prop_assert_eq!(made.len(), 1);
                        prop_assert_eq!(made[0].payout.amount_minor, expected);
                        prop_assert_eq!(made[0].payout.status, PayoutStatus::Paid);
                        prop_assert_eq!(made[0].line_items.iter().map(|l| l.amount_minor).sum::<i64>(), expected);
                        m.paid[a] += expected;
                        m.pay(a, now);
                    } else {
                        prop_assert!(made.is_empty(), "paid below zero: {:?}", made);
                    }
                }
                let after = w.services.preview_payouts(&w.ctx, selection).await.unwrap();
                prop_assert_eq!(after.total_minor, 0);
                prop_assert!(after.candidates.iter().all(|c| c.amount_minor <= 0), "{:?}", after.candidates);
            }
        }
        check(&w, &m).await?;
    }
    let listed = w.services.list_payouts(&w.ctx, Default::default(), PageRequest::parse(Some(200), None).unwrap()).await.unwrap();
    for a in 0..AFFILIATES {
        let sum: i64 = listed.items.iter().filter(|p| p.payout.affiliate_id == w.affiliates[a]).map(|p| p.payout.amount_minor).sum();
        prop_assert_eq!(sum, m.paid[a]);
    }
    prop_assert!(listed.items.iter().all(|p| p.payout.amount_minor > 0));
    Ok(())
}

async fn futures_balances(w: &World) -> Vec<Balance> {
    let mut out = Vec::new();
    for a in 0..AFFILIATES {
        out.push(w.balance(a).await);
    }
    out
}

fn cases(var: &str, default: u32) -> u32 {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() })
}

#[test]
fn the_ledger_balances_and_pays_exactly_once_on_the_in_memory_store() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runner(cases("LEDGER_CASES", 10_000))
        .run(&proptest::collection::vec(step(), 1..16), |steps| rt.block_on(run_history(Arc::new(InMemoryStore::new()), steps)))
        .unwrap();
}

#[test]
fn the_ledger_balances_and_pays_exactly_once_on_postgres() {
    let Some(db) = rekomi_e2e::db::TestDb::create() else { return };
    let store = match rekomi_postgres::PgStore::connect(db.url(), 4) {
        Ok(store) => Arc::new(store),
        Err(e) => panic!("connecting to {}: {e:?}", db.name()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runner(cases("LEDGER_PG_CASES", 48))
        .run(&proptest::collection::vec(step(), 1..16), |steps| {
            let store: Arc<dyn UnitOfWork> = store.clone();
            rt.block_on(run_history(store, steps))
        })
        .unwrap();
    drop(store);
}
