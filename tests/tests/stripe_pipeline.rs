//! The Stripe conversion pipeline end to end: events signed exactly as Stripe signs them
//! (`Stripe-Signature: t=…,v1=…` over the raw bytes) are posted to `POST /api/webhooks/stripe`
//! of the real server, whose inbox worker runs on real PostgreSQL and makes its Stripe lookups
//! (`GET /v1/invoices/{id}?expand[]=discounts.promotion_code`, `GET /v1/invoice_payments`,
//! `GET /v1/customers/{id}`) against the Stripe double; the outcome is read back through the
//! API (conversions, their ledger and attribution trace, promotional codes, the event inbox, the
//! CSV export) and, for outbound webhooks, at a local receiver.
//!
//! Events are the project's own, in the current API shapes:
//! - the story of the Stripe adapter's fixtures (`crates/rekomi-stripe/tests/fixtures/events/
//!   current/`), read at run time and sent byte for byte;
//! - the templates in `tests/fixtures/stripe/`, whose `"{{NAME}}"` placeholders are replaced by
//!   JSON values for each scenario.
//!
//! When the shared reference folder is present (`REKOMI_SHARED_DIR`, else `../shared`), its
//! story is sent through the same scenario as an optional cross-check; without it, that test
//! does not run (and fails nothing, under `CI=true` either).
//!
//! Waiting is always polling with a deadline ([`WITHIN`]), never a bare sleep: an event is
//! applied and marked `Done` in one transaction, so once the inbox says `Done` its effects are
//! visible.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rekomi_domain::kernel::plan::PlanTier;
use rekomi_domain::kernel::signature;
use rekomi_e2e::app::{id_of, Response, TestApp};
use rekomi_e2e::stripe_double::{shared_stripe_dir, Recorded, ScriptedDiscount};
use rekomi_e2e::stripe_events::{charge_refunded, fixture};
use rekomi_server::Config;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The server's Stripe webhook signing secret in these tests.
const SECRET: &str = "whsec_rekomi_e2e_pipeline_0123456789";
/// How long any asynchronous outcome may take.
const WITHIN: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(40);

const SARAH_EMAIL: &str = "sarah@creator.com";
const SARAH_SLUG: &str = "sarah-creates";
const BOB_EMAIL: &str = "bob@links.example";
const BOB_SLUG: &str = "bob-links";

// ---- the server, configured for the pipeline --------------------------------------------

/// A server with the inbox worker polling every 50 ms, verifying with [`SECRET`] and any
/// `extra_secrets` (several secrets are accepted during a rotation).
async fn spawn_pipeline(extra_secrets: &[&str], configure: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let mut secrets = vec![SECRET.to_owned()];
    secrets.extend(extra_secrets.iter().map(|s| (*s).to_owned()));
    TestApp::spawn_with(move |config| {
        config.stripe_webhook_secrets = secrets;
        config.inbox_interval_ms = 50;
        configure(config);
    })
    .await
}

async fn spawn() -> Option<TestApp> {
    spawn_pipeline(&[], |_| {}).await
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

// ---- a brand: one Growth organization with Sarah (SARAH20) and Bob ----------------------

struct Shop {
    key: String,
    org_id: String,
    owner: String,
    program_id: String,
    sarah: String,
    bob: String,
    /// SARAH20's Stripe promotion code id.
    promo: String,
}

/// Creates the brand through the API: a 20 % program (`recurringMonths` as given), Sarah and
/// Bob (Approved, with vanity link slugs), a 20 %-off campaign coupon that overrides click
/// attribution, and Sarah's SARAH20.
async fn shop(app: &TestApp, recurring_months: Option<u16>) -> Shop {
    let (org_id, key) = app.org(PlanTier::Growth).await;
    let program = app
        .post(
            "/api/v1/programs",
            &key,
            &json!({ "name": "Pro plan partners", "defaultCommissionType": "Percentage", "defaultCommissionValue": 20.0,
                     "recurringMonths": recurring_months }),
        )
        .await
        .expect(201)
        .clone();
    let program_id = id_of(&program);
    let sarah = affiliate(app, &key, &program_id, SARAH_EMAIL, "Sarah Smith", SARAH_SLUG).await;
    let bob = affiliate(app, &key, &program_id, BOB_EMAIL, "Bob Jones", BOB_SLUG).await;
    let coupon = app.create_campaign_coupon(&key, &program_id, json!({ "overridesClickAttribution": true })).await;
    let code = app.create_code(&key, &sarah, &id_of(&coupon), Some("SARAH20")).await;
    let promo = code["stripePromotionCodeId"].as_str().expect("stripePromotionCodeId").to_owned();
    let owner = app.jwt_dashboard(&org_id, "Owner");
    Shop { key, org_id, owner, program_id, sarah, bob, promo }
}

async fn affiliate(app: &TestApp, key: &str, program_id: &str, email: &str, name: &str, slug: &str) -> String {
    let body = json!({ "programId": program_id, "email": email, "fullName": name, "status": "Approved", "customAlias": slug });
    let created = app.post("/api/v1/affiliates", key, &body).await.expect(201).clone();
    assert_eq!(created["links"][0]["slug"], slug, "{created}");
    id_of(&created)
}

/// A further code for Sarah under a new campaign coupon with `extra` settings. Returns the
/// code's Stripe promotion code id.
async fn another_code(app: &TestApp, shop: &Shop, code: &str, extra: Value) -> String {
    let coupon = app.create_campaign_coupon(&shop.key, &shop.program_id, extra).await;
    let created = app.create_code(&shop.key, &shop.sarah, &id_of(&coupon), Some(code)).await;
    created["stripePromotionCodeId"].as_str().unwrap().to_owned()
}

// ---- fixtures ---------------------------------------------------------------------------

/// `invoice.paid` (or `invoice.payment_succeeded`) of a subscription invoice in the current
/// shape: `discounts` as ids, the subscription under `parent.subscription_details`.
#[derive(Clone, Debug)]
struct Invoice {
    event: String,
    kind: &'static str,
    invoice: String,
    subscription: String,
    customer: String,
    email: Option<String>,
    amount: i64,
    discounts: Vec<String>,
    referral: Option<String>,
    reason: &'static str,
    /// `created` and `status_transitions.paid_at` (Unix seconds; now when `None`).
    paid_at: Option<i64>,
}

impl Invoice {
    fn paid(event: &str, invoice: &str, subscription: &str, customer: &str, amount: i64) -> Self {
        Self {
            event: event.to_owned(),
            kind: "invoice.paid",
            invoice: invoice.to_owned(),
            subscription: subscription.to_owned(),
            customer: customer.to_owned(),
            email: Some(format!("{customer}@buyers.example")),
            amount,
            discounts: Vec::new(),
            referral: None,
            reason: "subscription_create",
            paid_at: None,
        }
    }

    fn paid_at(mut self, unix: i64) -> Self {
        self.paid_at = Some(unix);
        self
    }

    fn discount(mut self, id: &str) -> Self {
        self.discounts.push(id.to_owned());
        self
    }

    fn email(mut self, email: Option<&str>) -> Self {
        self.email = email.map(str::to_owned);
        self
    }

    fn referral(mut self, slug: &str) -> Self {
        self.referral = Some(slug.to_owned());
        self
    }

    fn renewal(mut self) -> Self {
        self.reason = "subscription_cycle";
        self
    }

    /// The same invoice in another notification (e.g. `invoice.payment_succeeded`).
    fn renotified(mut self, event: &str, kind: &'static str) -> Self {
        self.event = event.to_owned();
        self.kind = kind;
        self
    }

    fn body(&self) -> Vec<u8> {
        let metadata = match &self.referral {
            Some(slug) => json!({ "rekomi_ref": slug }),
            None => json!({}),
        };
        fixture(
            "invoice.paid.json",
            &[
                ("EVENT_ID", json!(self.event)),
                ("EVENT_TYPE", json!(self.kind)),
                ("CREATED", json!(self.paid_at.unwrap_or_else(now))),
                ("INVOICE_ID", json!(self.invoice)),
                ("SUBSCRIPTION_ID", json!(self.subscription)),
                ("CUSTOMER_ID", json!(self.customer)),
                ("EMAIL", json!(self.email)),
                ("AMOUNT", json!(self.amount)),
                ("DISCOUNT_IDS", json!(self.discounts)),
                ("METADATA", metadata),
                ("BILLING_REASON", json!(self.reason)),
            ],
        )
    }
}

/// `charge.refunded` in the current shape: a payment intent and no `invoice`.
fn refund(event: &str, payment_intent: &str, customer: &str, amount: i64, refunded: i64, previously: i64) -> Vec<u8> {
    charge_refunded(event, payment_intent, customer, amount, refunded, previously, now())
}

/// `checkout.session.completed` of a `payment`-mode session.
fn checkout(event: &str, session: &str, payment_status: &str, reference: Option<&str>, amount: i64) -> Vec<u8> {
    fixture(
        "checkout.session.completed.json",
        &[
            ("EVENT_ID", json!(event)),
            ("CREATED", json!(now())),
            ("SESSION_ID", json!(session)),
            ("PAYMENT_STATUS", json!(payment_status)),
            ("REF", json!(reference)),
            ("AMOUNT", json!(amount)),
            ("CUSTOMER_ID", json!("cus_e2e_checkout")),
            ("EMAIL", json!("checkout.buyer@example.com")),
            ("PAYMENT_INTENT_ID", json!(format!("pi_{}", event.trim_start_matches("evt_")))),
        ],
    )
}

// ---- the story of one sale, sent byte for byte ----------------------------------------------

/// The project's story in the current shapes: the Stripe adapter tests' events
/// (`crates/rekomi-stripe/tests/fixtures/events/current/`, described in that folder's README).
fn project_story_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("crates/rekomi-stripe/tests/fixtures/events/current")
}

/// The shared reference story (`<shared>/stripe/events/current/`), when the shared folder is
/// present; `None` otherwise, which fails nothing (it is an optional cross-check).
fn shared_story_dir() -> Option<PathBuf> {
    shared_stripe_dir("events/current")
}

fn read_bytes(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
}

/// The same bytes with the event id replaced: a new event (a later Stripe notification)
/// carrying the same object.
fn with_event_id(body: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from} should appear once");
    text.replace(from, to).into_bytes()
}

/// The files of a story (the project's and the shared one name them alike).
const STORY_PAID: &str = "invoice.paid__with_promotion_code_discount.json";
const STORY_SUCCEEDED: &str = "invoice.payment_succeeded__with_promotion_code_discount.json";
const STORY_PARTIAL_REFUND: &str = "charge.refunded__partial.json";
const STORY_FULL_REFUND: &str = "charge.refunded__full.json";

/// A story of one subscription sale through a promotion code: its first invoice paid
/// (`invoice.paid`, redelivered, then `invoice.payment_succeeded`), a partial refund, then the
/// rest refunded. The ids come from the files; the expected ledger is the scenario's.
struct Story {
    dir: PathBuf,
    /// The secret the story is signed with; the server trusts it beside its own (as during a
    /// rotation).
    secret: String,
    /// A `Stripe-Signature` of the `invoice.paid` file too old to be accepted.
    stale_signature: String,
    /// The SHA-256 of the `invoice.paid` file, hex.
    paid_sha256: String,
    /// The file of the redelivered `invoice.paid` (the same event id).
    redelivery: &'static str,
    /// `(amountCents, commissionCents)` of the sale, of the partial refund and of the rest.
    sale: (i64, i64),
    partial_refund: (i64, i64),
    rest_refunded: (i64, i64),
}

/// A string at `pointer` of a story file.
fn story_text(body: &[u8], pointer: &str) -> String {
    let event: Value = serde_json::from_slice(body).unwrap();
    let text = event.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("no {pointer} in the story's event"));
    assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{text}");
    text.to_owned()
}

/// Sends `story` to a server for a brand with Sarah's SARAH20 (20 %, 12 recurring months), at
/// "Stripe" the code of the story's discount: the sale is credited once to Sarah, and each
/// refund claws back its share of the commission, however often Stripe notifies it.
async fn a_story_is_credited_once_and_clawed_back_in_proportion(story: Story) {
    let Some(app) = spawn_pipeline(&[story.secret.as_str()], |_| {}).await else { return };
    let shop = shop(&app, Some(12)).await;
    let sign_story = |body: &[u8]| signature::header(&story.secret, now(), body);
    let paid = read_bytes(&story.dir, STORY_PAID);
    let succeeded = read_bytes(&story.dir, STORY_SUCCEEDED);
    let partial = read_bytes(&story.dir, STORY_PARTIAL_REFUND);
    let full = read_bytes(&story.dir, STORY_FULL_REFUND);
    let paid_id = story_text(&paid, "/id");
    let invoice = story_text(&paid, "/data/object/id");
    let subscription = story_text(&paid, "/data/object/parent/subscription_details/subscription");
    let customer = story_text(&paid, "/data/object/customer");
    let payment_intent = story_text(&partial, "/data/object/payment_intent");

    // The invoice names its discount by id only; at "Stripe" it is SARAH20, and the refunded
    // charge's payment intent paid that invoice.
    app.stripe.script_invoice(&invoice, vec![ScriptedDiscount::code(&story_text(&paid, "/data/object/discounts/0"), &shop.promo)]);
    app.stripe.script_invoice_payment(&payment_intent, &invoice);

    // ---- invoice.paid: a stale signature is refused; a fresh one over the same bytes is not ----
    let stale = post_event(&app, &paid, Some(&story.stale_signature)).await;
    stale.expect_error(400, "invalid_signature");
    assert!(stale.text.contains("tolerance"), "refused for its age: {}", stale.text);
    assert_eq!(app.count_rows("inbox_events").await, 0);
    assert!(inbox(&app, &shop, None).await.is_empty());

    let answer = post_event(&app, &paid, Some(&sign_story(&paid))).await;
    assert_eq!(answer.expect(200), &json!({ "received": true, "id": paid_id, "duplicate": false }));
    wait_for_status(&app, &shop, &paid_id, "Done").await;
    let digest = app
        .single_text(format!(
            "SELECT encode(sha256(convert_to(payload, 'UTF8')), 'hex') AS digest FROM inbox_events WHERE id = '{paid_id}'"
        ))
        .await;
    assert_eq!(digest, story.paid_sha256, "the body is stored byte for byte");

    let conversion = only(conversions(&app, &shop.key).await);
    let id = id_of(&conversion);
    assert_eq!(conversion["type"], "Recurring", "{conversion}");
    assert_eq!(conversion["affiliateId"], json!(shop.sarah));
    assert_eq!((conversion["attributionMethod"].as_str(), conversion["couponCode"].as_str()), (Some("coupon"), Some("SARAH20")));
    assert_eq!(conversion["stripeSubscriptionId"], json!(subscription));
    assert_eq!(conversion["stripeCustomerId"], json!(customer));
    assert_eq!(conversion["externalEventId"], json!(invoice));
    assert_eq!(ledger(&app, &shop.key, &id).await, vec![("initial".into(), story.sale.0, story.sale.1)]);
    assert_invoice_lookups(&app, &invoice, 1);
    // The story's subscription metadata holds a key that is not Rekomi's.
    assert_eq!(attribution(&app, &shop.key, &id).await["trace"]["referralRefs"], json!([]));

    // ---- the redelivery (same id): a duplicate ----
    let redelivery = read_bytes(&story.dir, story.redelivery);
    let answer = post_event(&app, &redelivery, Some(&sign_story(&redelivery))).await;
    assert_eq!(answer.expect(200), &json!({ "received": true, "id": paid_id, "duplicate": true }));

    // ---- invoice.payment_succeeded for the same invoice: the same fact ----
    let answer = post_event(&app, &succeeded, Some(&sign_story(&succeeded))).await;
    assert_eq!(answer.expect(200)["duplicate"], false);
    wait_for_status(&app, &shop, &story_text(&succeeded, "/id"), "Done").await;
    assert_eq!(ledger(&app, &shop.key, &id).await, vec![("initial".into(), story.sale.0, story.sale.1)], "no double counting");
    assert_eq!(redemptions(&app, &shop.key, "SARAH20").await, (1, 1));

    // ---- a partial refund: the same share of the commission ----
    let partial_id = story_text(&partial, "/id");
    let answer = post_event(&app, &partial, Some(&sign_story(&partial))).await;
    assert_eq!(answer.expect(200)["duplicate"], false);
    wait_for_status(&app, &shop, &partial_id, "Done").await;
    let reads = app.stripe.reads_of("/v1/invoice_payments");
    assert_eq!(reads.len(), 1);
    assert_invoice_payment_lookup(&reads[0], &payment_intent);
    let after_partial =
        vec![("initial".into(), story.sale.0, story.sale.1), ("refund".into(), story.partial_refund.0, story.partial_refund.1)];
    assert_eq!(ledger(&app, &shop.key, &id).await, after_partial);
    assert_eq!(only(conversions(&app, &shop.key).await)["commissionCents"], story.sale.1 + story.partial_refund.1);

    // The same partial refund notified again under a new id changes nothing.
    let again_id = format!("{partial_id}b");
    let partial_again = with_event_id(&partial, &partial_id, &again_id);
    let answer = post_event(&app, &partial_again, Some(&sign_story(&partial_again))).await;
    assert_eq!(answer.expect(200)["duplicate"], false);
    wait_for_status(&app, &shop, &again_id, "Done").await;
    assert_eq!(ledger(&app, &shop.key, &id).await.len(), 2);

    // ---- the full refund: the rest of the commission, and the conversion is Refunded ----
    let answer = post_event(&app, &full, Some(&sign_story(&full))).await;
    assert_eq!(answer.expect(200)["duplicate"], false);
    wait_for_status(&app, &shop, &story_text(&full, "/id"), "Done").await;
    let mut after_full = after_partial;
    after_full.push(("refund".into(), story.rest_refunded.0, story.rest_refunded.1));
    assert_eq!(ledger(&app, &shop.key, &id).await, after_full);
    assert_eq!(story.sale.0 + story.partial_refund.0 + story.rest_refunded.0, 0, "the scenario refunds everything");
    let refunded = only(conversions(&app, &shop.key).await);
    assert_eq!((refunded["status"].as_str(), refunded["commissionCents"].as_i64()), (Some("Refunded"), Some(0)), "{refunded}");
    assert!(refunded["refundedAt"].is_string());
    assert_eq!(redemptions(&app, &shop.key, "SARAH20").await, (0, 0));

    // The partial refund once more, late: still nothing.
    let late_id = format!("{partial_id}c");
    let partial_late = with_event_id(&partial, &partial_id, &late_id);
    let answer = post_event(&app, &partial_late, Some(&sign_story(&partial_late))).await;
    assert_eq!(answer.expect(200)["duplicate"], false);
    wait_for_status(&app, &shop, &late_id, "Done").await;
    assert_eq!(ledger(&app, &shop.key, &id).await.len(), 3);
    assert_eq!(only(conversions(&app, &shop.key).await)["status"], "Refunded");
    assert_eq!(app.count_rows("inbox_events").await, 6);
}

// ---- sending events -----------------------------------------------------------------------

/// `body` with its envelope's `account` set to the JSON string literal `account` (escapes kept).
fn with_account(body: &[u8], account: &str) -> Vec<u8> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    let at = text.find('{').unwrap() + 1;
    format!("{}\"account\": \"{account}\", {}", &text[..at], &text[at..]).into_bytes()
}

fn sign(body: &[u8]) -> String {
    signature::header(SECRET, now(), body)
}

async fn post_event(app: &TestApp, body: &[u8], signature: Option<&str>) -> Response {
    let mut request =
        app.request(Method::POST, "/api/webhooks/stripe").header("content-type", "application/json; charset=utf-8").body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    app.send(request).await
}

/// Posts a freshly signed event and checks Stripe's answer: `200 {received, id, duplicate}`.
async fn send(app: &TestApp, body: &[u8]) -> Value {
    let answer = post_event(app, body, Some(&sign(body))).await;
    let answer = answer.expect(200).clone();
    let sent: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(answer["received"], true, "{answer}");
    assert_eq!(answer["id"], sent["id"], "{answer}");
    answer
}

/// Sends a new event (not a duplicate) and waits until the worker has applied it.
async fn deliver(app: &TestApp, shop: &Shop, body: &[u8]) -> Value {
    let answer = send(app, body).await;
    assert_eq!(answer["duplicate"], false, "{answer}");
    wait_for_status(app, shop, answer["id"].as_str().unwrap(), "Done").await
}

/// The organization's inbox as its Owner lists it.
async fn inbox(app: &TestApp, shop: &Shop, status: Option<&str>) -> Vec<Value> {
    let path = match status {
        Some(status) => format!("/api/v1/webhooks/stripe/events?take=200&status={status}"),
        None => "/api/v1/webhooks/stripe/events?take=200".to_owned(),
    };
    let listed = app.get(&path, &shop.owner).await;
    listed.expect(200).as_array().unwrap_or_else(|| panic!("not an array: {}", listed.text)).clone()
}

/// The inbox row as stored, whatever its organization: `status|attempts|last_error`.
async fn inbox_row(app: &TestApp, id: &str) -> String {
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{id}");
    app.single_text(format!(
        "SELECT coalesce((SELECT status || '|' || attempts || '|' || coalesce(last_error, '') FROM inbox_events WHERE id = '{id}'), 'missing') AS digest"
    ))
    .await
}

/// Waits until the Owner's inbox lists event `id` with `status`.
async fn wait_for_status(app: &TestApp, shop: &Shop, id: &str, status: &str) -> Value {
    wait_for_event(app, shop, id, |e| e["status"] == status).await
}

async fn wait_for_event(app: &TestApp, shop: &Shop, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        if let Some(event) = inbox(app, shop, None).await.into_iter().find(|e| e["id"] == id) {
            if done(&event) {
                return event;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("event {id} never reached the expected state; stored: {}", inbox_row(app, id).await);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until event `id` leaves `Pending`, whatever its organization; returns the stored row.
async fn wait_until_settled(app: &TestApp, id: &str) -> String {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let row = inbox_row(app, id).await;
        if !row.starts_with("Pending") && row != "missing" {
            return row;
        }
        assert!(tokio::time::Instant::now() < deadline, "event {id} was never processed: {row}");
        tokio::time::sleep(POLL).await;
    }
}

// ---- reading results ----------------------------------------------------------------------

async fn conversions(app: &TestApp, key: &str) -> Vec<Value> {
    let listed = app.get("/api/v1/conversions?take=200", key).await;
    listed.expect(200)["items"].as_array().unwrap().clone()
}

#[track_caller]
fn only(items: Vec<Value>) -> Value {
    assert_eq!(items.len(), 1, "expected exactly one: {items:#?}");
    items.into_iter().next().unwrap()
}

async fn detail(app: &TestApp, key: &str, id: &str) -> Value {
    app.get(&format!("/api/v1/conversions/{id}"), key).await.expect(200).clone()
}

/// The ledger as `(eventType, amountCents, commissionCents)`, in the API's order.
async fn ledger(app: &TestApp, key: &str, id: &str) -> Vec<(String, i64, i64)> {
    let detail = detail(app, key, id).await;
    let events = detail["events"].as_array().unwrap_or_else(|| panic!("no events in {detail}"));
    events
        .iter()
        .map(|e| (e["eventType"].as_str().unwrap().to_owned(), e["amountCents"].as_i64().unwrap(), e["commissionCents"].as_i64().unwrap()))
        .collect()
}

async fn attribution(app: &TestApp, key: &str, id: &str) -> Value {
    app.get(&format!("/api/v1/conversions/{id}/attribution"), key).await.expect(200).clone()
}

/// `(redemptionCount, timesRedeemed)` of a code, by its text.
async fn redemptions(app: &TestApp, key: &str, code: &str) -> (i64, i64) {
    let found = app.get(&format!("/api/v1/promotional-codes?code={code}"), key).await.expect(200).clone();
    (found["redemptionCount"].as_i64().unwrap(), found["timesRedeemed"].as_i64().unwrap())
}

/// Asserts the double was asked for `invoice` once per `times`, each time with the discounts'
/// promotion codes expanded, on the platform account.
#[track_caller]
fn assert_invoice_lookups(app: &TestApp, invoice: &str, times: usize) {
    let reads = app.stripe.reads_of(&format!("/v1/invoices/{invoice}"));
    assert_eq!(reads.len(), times, "lookups of {invoice}: {reads:#?}");
    for read in &reads {
        assert_eq!(read.query_values("expand[]"), vec!["discounts.promotion_code".to_owned()], "{read:#?}");
        assert_eq!(read.header("stripe-account"), None);
        assert_eq!(read.header("idempotency-key"), None, "a read carries no idempotency key");
    }
}

/// Asserts an invoice-payments lookup filtered by `payment_intent`, as Stripe documents it.
#[track_caller]
fn assert_invoice_payment_lookup(read: &Recorded, payment_intent: &str) {
    assert_eq!(read.query_values("payment[type]"), vec!["payment_intent".to_owned()], "{read:#?}");
    assert_eq!(read.query_values("payment[payment_intent]"), vec![payment_intent.to_owned()], "{read:#?}");
    assert_eq!(read.header("stripe-account"), None);
}

// ---- the tests ------------------------------------------------------------------------------

#[tokio::test]
async fn a_paid_invoice_whose_discount_resolves_to_sarah20_is_one_recurring_coupon_conversion_for_sarah() {
    let Some(app) = spawn().await else { return };
    let shop = shop(&app, Some(12)).await;
    app.stripe.script_invoice("in_e2e_coupon", vec![ScriptedDiscount::code("di_e2e_coupon", &shop.promo)]);

    let sale = Invoice::paid("evt_e2e_coupon_sale", "in_e2e_coupon", "sub_e2e_coupon", "cus_e2e_coupon", 4999).discount("di_e2e_coupon");
    let event = deliver(&app, &shop, &sale.body()).await;
    assert_eq!((event["type"].as_str(), event["account"].as_str()), (Some("invoice.paid"), None), "{event}");
    assert!(event["processedAt"].is_string(), "{event}");

    let conversion = only(conversions(&app, &shop.key).await);
    let id = id_of(&conversion);
    assert_eq!(conversion["type"], "Recurring", "{conversion}");
    assert_eq!(conversion["status"], "Pending");
    assert_eq!(conversion["affiliateId"], json!(shop.sarah));
    assert_eq!(conversion["programId"], json!(shop.program_id));
    assert_eq!(conversion["attributionMethod"], "coupon");
    assert_eq!(conversion["couponCode"], "SARAH20");
    assert_eq!((conversion["amountCents"].as_i64(), conversion["currency"].as_str()), (Some(4999), Some("USD")));
    // 20 % of 49.99 is 9.998: rounded half away from zero to the cent, 10.00.
    assert_eq!(conversion["commissionCents"], 1000);
    assert_eq!(conversion["externalEventId"], "in_e2e_coupon");
    assert_eq!(conversion["stripeSubscriptionId"], "sub_e2e_coupon");
    assert_eq!(conversion["stripeCustomerId"], "cus_e2e_coupon");
    assert_eq!((conversion["denialReason"].clone(), conversion["refundedAt"].clone()), (Value::Null, Value::Null));

    let timeline = detail(&app, &shop.key, &id).await;
    let events = timeline["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{timeline}");
    assert_eq!(events[0]["eventType"], "initial");
    assert_eq!((events[0]["amountCents"].as_i64(), events[0]["commissionCents"].as_i64()), (Some(4999), Some(1000)));
    assert_eq!(events[0]["stripeInvoiceId"], "in_e2e_coupon");

    let why = attribution(&app, &shop.key, &id).await;
    assert_eq!(why["conversionId"], json!(id));
    assert_eq!((why["attributionMethod"].as_str(), why["couponCode"].as_str()), (Some("coupon"), Some("SARAH20")));
    let trace = &why["trace"];
    assert_eq!(trace["rule"], "coupon_overrides_click_attribution", "{why}");
    assert_eq!(trace["method"], "coupon");
    assert_eq!(trace["affiliateId"], json!(shop.sarah));
    assert_eq!(trace["promotionCodes"], json!([{ "id": shop.promo, "code": "SARAH20" }]), "the code the lookup found");
    assert_eq!(trace["coupon"]["code"], "SARAH20");
    assert_eq!(trace["coupon"]["affiliateId"], json!(shop.sarah));
    assert_eq!(trace["coupon"]["overridesClickAttribution"], true);
    assert_eq!(trace["referral"], Value::Null);
    assert_eq!(trace["customerHistory"], Value::Null);
    assert_eq!(trace["commission"]["type"], "Percentage");
    assert_eq!(trace["denied"], Value::Null);

    assert_eq!(redemptions(&app, &shop.key, "SARAH20").await, (1, 1));
    assert_invoice_lookups(&app, "in_e2e_coupon", 1);
    assert!(app.stripe.reads_of("/v1/invoice_payments").is_empty());
}

#[tokio::test]
async fn a_second_paid_invoice_of_the_subscription_is_a_renewal_that_earns_nothing_when_recurring_months_is_0() {
    let Some(app) = spawn().await else { return };
    let shop = shop(&app, Some(0)).await;
    app.stripe.script_invoice("in_e2e_renew_1", vec![ScriptedDiscount::code("di_e2e_renew", &shop.promo)]);
    let first = Invoice::paid("evt_e2e_renew_1", "in_e2e_renew_1", "sub_e2e_renew", "cus_e2e_renew", 2500).discount("di_e2e_renew");
    deliver(&app, &shop, &first.body()).await;
    let id = id_of(&only(conversions(&app, &shop.key).await));

    // Next month: the same subscription, no discount any more.
    let second = Invoice::paid("evt_e2e_renew_2", "in_e2e_renew_2", "sub_e2e_renew", "cus_e2e_renew", 2500).renewal();
    deliver(&app, &shop, &second.body()).await;

    let conversion = only(conversions(&app, &shop.key).await);
    assert_eq!(id_of(&conversion), id, "the renewal joins the subscription's conversion");
    assert_eq!((conversion["amountCents"].as_i64(), conversion["commissionCents"].as_i64()), (Some(2500), Some(500)));
    assert_eq!(ledger(&app, &shop.key, &id).await, vec![("initial".into(), 2500, 500), ("renewal".into(), 2500, 0)]);
    let timeline = detail(&app, &shop.key, &id).await;
    assert_eq!(timeline["events"][1]["stripeInvoiceId"], "in_e2e_renew_2");
    // An invoice without discounts needs no lookup.
    assert_invoice_lookups(&app, "in_e2e_renew_2", 0);
    assert_eq!(redemptions(&app, &shop.key, "SARAH20").await, (1, 1), "a renewal is not a redemption");

    // With the cap lifted (lifetime), the next renewal earns the rate again.
    app.patch(&format!("/api/v1/programs/{}", shop.program_id), &shop.key, &json!({ "recurringMonths": -1 })).await.expect(200);
    let third = Invoice::paid("evt_e2e_renew_3", "in_e2e_renew_3", "sub_e2e_renew", "cus_e2e_renew", 2500).renewal();
    deliver(&app, &shop, &third.body()).await;
    assert_eq!(
        ledger(&app, &shop.key, &id).await,
        vec![("initial".into(), 2500, 500), ("renewal".into(), 2500, 0), ("renewal".into(), 2500, 500)]
    );
    assert_eq!(only(conversions(&app, &shop.key).await)["commissionCents"], 1000);
}

#[tokio::test]
async fn a_code_that_overrides_click_attribution_beats_referral_metadata_and_one_that_does_not_loses_to_it() {
    let Some(app) = spawn().await else { return };
    let shop = shop(&app, Some(12)).await;
    let soft =
        another_code(&app, &shop, "SARAHSOFT", json!({ "name": "Soft 10% off", "discountValue": 10, "overridesClickAttribution": false }))
            .await;

    // Bob's link in the invoice metadata, Sarah's overriding code in the discounts: Sarah.
    app.stripe.script_invoice("in_e2e_click_a", vec![ScriptedDiscount::code("di_e2e_click_a", &shop.promo)]);
    let a = Invoice::paid("evt_e2e_click_a", "in_e2e_click_a", "sub_e2e_click_a", "cus_e2e_click_a", 10000)
        .discount("di_e2e_click_a")
        .referral(BOB_SLUG);
    deliver(&app, &shop, &a.body()).await;
    let won = only(conversions(&app, &shop.key).await);
    assert_eq!(won["affiliateId"], json!(shop.sarah), "{won}");
    assert_eq!((won["attributionMethod"].as_str(), won["couponCode"].as_str()), (Some("coupon"), Some("SARAH20")));
    assert_eq!(won["commissionCents"], 2000);
    let trace = attribution(&app, &shop.key, &id_of(&won)).await["trace"].clone();
    assert_eq!(trace["rule"], "coupon_overrides_click_attribution", "{trace}");
    assert_eq!(trace["referralRefs"], json!([BOB_SLUG]));
    assert_eq!(trace["referral"]["affiliateId"], json!(shop.bob), "the referral was seen and overridden: {trace}");

    // The same with a code whose campaign coupon does not override clicks: Bob.
    app.stripe.script_invoice("in_e2e_click_b", vec![ScriptedDiscount::code("di_e2e_click_b", &soft)]);
    let b = Invoice::paid("evt_e2e_click_b", "in_e2e_click_b", "sub_e2e_click_b", "cus_e2e_click_b", 10000)
        .discount("di_e2e_click_b")
        .referral(BOB_SLUG);
    deliver(&app, &shop, &b.body()).await;
    let bobs = only(conversions(&app, &shop.key).await.into_iter().filter(|c| c["externalEventId"] == "in_e2e_click_b").collect());
    assert_eq!(bobs["affiliateId"], json!(shop.bob), "{bobs}");
    assert_eq!(bobs["attributionMethod"], "metadata_or_customer");
    assert_eq!(bobs["couponCode"], Value::Null, "the code did not decide");
    assert_eq!(bobs["commissionCents"], 2000);
    let trace = attribution(&app, &shop.key, &id_of(&bobs)).await["trace"].clone();
    assert_eq!(trace["rule"], "referral_metadata", "{trace}");
    assert_eq!(trace["coupon"]["code"], "SARAHSOFT");
    assert_eq!(trace["coupon"]["overridesClickAttribution"], false);

    // Either way the redeemed code counts its redemption.
    assert_eq!(redemptions(&app, &shop.key, "SARAH20").await, (1, 1));
    assert_eq!(redemptions(&app, &shop.key, "SARAHSOFT").await, (1, 1));
    assert_eq!(conversions(&app, &shop.key).await.len(), 2);
}

#[tokio::test]
async fn a_first_invoice_without_code_or_referral_is_credited_to_the_affiliate_named_in_the_customers_metadata() {
    let Some(app) = spawn().await else { return };
    let shop = shop(&app, Some(12)).await;
    app.stripe.script_customer_metadata("cus_e2e_cusref", json!({ "rekomi_ref": BOB_SLUG }));

    let sale = Invoice::paid("evt_e2e_cusref_1", "in_e2e_cusref_1", "sub_e2e_cusref", "cus_e2e_cusref", 5000);
    deliver(&app, &shop, &sale.body()).await;
    let conversion = only(conversions(&app, &shop.key).await);
    assert_eq!(conversion["affiliateId"], json!(shop.bob), "{conversion}");
    assert_eq!((conversion["attributionMethod"].as_str(), conversion["couponCode"].clone()), (Some("metadata_or_customer"), Value::Null));
    assert_eq!(conversion["commissionCents"], 1000);
    let trace = attribution(&app, &shop.key, &id_of(&conversion)).await["trace"].clone();
    assert_eq!(trace["referralRefs"], json!([BOB_SLUG]), "{trace}");
    assert_eq!(trace["rule"], "referral_metadata");
    let reads = app.stripe.reads_of("/v1/customers/cus_e2e_cusref");
    assert_eq!(reads.len(), 1, "{reads:#?}");
    assert_eq!(reads[0].path, "/v1/customers/cus_e2e_cusref", "no query");
    assert_eq!((reads[0].header("stripe-account"), reads[0].header("idempotency-key")), (None, None));

    // The renewal joins Bob's conversion without asking for the customer again.
    let renewal = Invoice::paid("evt_e2e_cusref_2", "in_e2e_cusref_2", "sub_e2e_cusref", "cus_e2e_cusref", 5000).renewal();
    deliver(&app, &shop, &renewal.body()).await;
    assert_eq!(only(conversions(&app, &shop.key).await)["commissionCents"], 2000);
    assert_eq!(app.stripe.reads_of("/v1/customers/cus_e2e_cusref").len(), 1);
}

#[tokio::test]
async fn an_affiliate_redeeming_her_own_code_gets_a_denied_self_referral_conversion_worth_nothing() {
    let Some(app) = spawn().await else { return };
    let shop = shop(&app, Some(12)).await;
    app.stripe.script_invoice("in_e2e_self", vec![ScriptedDiscount::code("di_e2e_self", &shop.promo)]);
    // Sarah buys with her own code (her address in another case).
    let sale = Invoice::paid("evt_e2e_self", "in_e2e_self", "sub_e2e_self", "cus_e2e_sarah", 5000)
        .discount("di_e2e_self")
        .email(Some("Sarah@Creator.com"));
    deliver(&app, &shop, &sale.body()).await;

    let conversion = only(conversions(&app, &shop.key).await);
    assert_eq!(conversion["status"], "Denied", "{conversion}");
    assert_eq!(conversion["denialReason"], "self_referral", "the API's field is denialReason: {conversion}");
    assert_eq!(conversion["commissionCents"], 0);
    assert_eq!(conversion["amountCents"], 5000);
    assert_eq!(conversion["affiliateId"], json!(shop.sarah));
    assert_eq!(conversion["attributionMethod"], "coupon");
    let id = id_of(&conversion);
    assert_eq!(ledger(&app, &shop.key, &id).await, vec![("initial".into(), 5000, 0)]);
    assert_eq!(attribution(&app, &shop.key, &id).await["trace"]["denied"], "self_referral");
    // The code was redeemed all the same.
    assert_eq!(redemptions(&app, &shop.key, "SARAH20").await, (1, 1));
    let denied = app.get("/api/v1/conversions?status=Denied", &shop.key).await.expect(200)["items"].as_array().unwrap().len();
    assert_eq!(denied, 1);
}

#[tokio::test]
async fn a_replayed_event_id_is_a_duplicate_and_another_event_for_the_same_invoice_counts_nothing_twice() {
    let Some(app) = spawn().await else { return };
    let shop = shop(&app, Some(12)).await;
    app.stripe.script_invoice("in_e2e_replay", vec![ScriptedDiscount::code("di_e2e_replay", &shop.promo)]);
    let sale = Invoice::paid("evt_e2e_replay_paid", "in_e2e_replay", "sub_e2e_replay", "cus_e2e_replay", 3000).discount("di_e2e_replay");
    let body = sale.body();
    deliver(&app, &shop, &body).await;

    // Stripe retries the same event (same id, same bytes, a new signature): a duplicate.
    let again = send(&app, &body).await;
    assert_eq!(again, json!({ "received": true, "id": "evt_e2e_replay_paid", "duplicate": true }));
    // Even when the body differs, the event id decides.
    let changed = sale.clone().email(Some("someone.else@example.com")).body();
    assert_ne!(changed, body);
    assert_eq!(send(&app, &changed).await["duplicate"], true);

    // Stripe also sends invoice.payment_succeeded for the same invoice: a new event, the same
    // fact.
    let succeeded = sale.renotified("evt_e2e_replay_succeeded", "invoice.payment_succeeded");
    let event = deliver(&app, &shop, &succeeded.body()).await;
    assert_eq!(event["type"], "invoice.payment_succeeded");

    let conversion = only(conversions(&app, &shop.key).await);
    assert_eq!(conversion["commissionCents"], 600);
    assert_eq!(ledger(&app, &shop.key, &id_of(&conversion)).await, vec![("initial".into(), 3000, 600)]);
    assert_eq!(redemptions(&app, &shop.key, "SARAH20").await, (1, 1));
    let stored = inbox(&app, &shop, None).await;
    let ids: Vec<&str> = stored.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{stored:#?}");
    assert!(ids.contains(&"evt_e2e_replay_paid") && ids.contains(&"evt_e2e_replay_succeeded"));
    assert_eq!(app.count_rows("inbox_events").await, 2);
    // Each processed event looked the invoice up once; the duplicates were never processed.
    assert_invoice_lookups(&app, "in_e2e_replay", 2);
}

#[tokio::test]
async fn a_partial_then_full_refund_claws_back_in_proportion_then_refunds_the_conversion_and_stale_replays_change_nothing() {
    let Some(app) = spawn().await else { return };
    let shop = shop(&app, Some(12)).await;
    app.stripe.script_invoice("in_e2e_refund", vec![ScriptedDiscount::code("di_e2e_refund", &shop.promo)]);
    app.stripe.script_invoice_payment("pi_e2e_refund", "in_e2e_refund");
    let sale = Invoice::paid("evt_e2e_refund_sale", "in_e2e_refund", "sub_e2e_refund", "cus_e2e_refund", 1999).discount("di_e2e_refund");
    deliver(&app, &shop, &sale.body()).await;
    let id = id_of(&only(conversions(&app, &shop.key).await));
    // 20 % of 19.99 = 3.998 → 4.00.
    assert_eq!(ledger(&app, &shop.key, &id).await, vec![("initial".into(), 1999, 400)]);

    // 10.00 of 19.99 refunded: -round(400 × 1000 / 1999) = -round(200.1) = -200.
    deliver(&app, &shop, &refund("evt_e2e_refund_partial", "pi_e2e_refund", "cus_e2e_refund", 1999, 1000, 0)).await;
    let reads = app.stripe.reads_of("/v1/invoice_payments");
    assert_eq!(reads.len(), 1, "the charge names no invoice: Rekomi asks Stripe");
    assert_invoice_payment_lookup(&reads[0], "pi_e2e_refund");
    assert_eq!(ledger(&app, &shop.key, &id).await, vec![("initial".into(), 1999, 400), ("refund".into(), -1000, -200)]);
    let partly = only(conversions(&app, &shop.key).await);
    assert_eq!((partly["commissionCents"].as_i64(), partly["status"].as_str()), (Some(200), Some("Pending")));
    assert_eq!(partly["refundedAt"], Value::Null);
    assert_eq!(redemptions(&app, &shop.key, "SARAH20").await, (1, 1), "a partial refund keeps the redemption");

    // Stripe notifies the same cumulative refund again under a new event id: nothing changes.
    deliver(&app, &shop, &refund("evt_e2e_refund_partial_again", "pi_e2e_refund", "cus_e2e_refund", 1999, 1000, 0)).await;
    assert_eq!(ledger(&app, &shop.key, &id).await.len(), 2);
    assert_eq!(only(conversions(&app, &shop.key).await)["commissionCents"], 200);

    // The rest is refunded: exactly the sale's commission has been clawed back.
    deliver(&app, &shop, &refund("evt_e2e_refund_full", "pi_e2e_refund", "cus_e2e_refund", 1999, 1999, 1000)).await;
    assert_eq!(
        ledger(&app, &shop.key, &id).await,
        vec![("initial".into(), 1999, 400), ("refund".into(), -1000, -200), ("refund".into(), -999, -200)]
    );
    let refunded = only(conversions(&app, &shop.key).await);
    assert_eq!((refunded["status"].as_str(), refunded["commissionCents"].as_i64()), (Some("Refunded"), Some(0)), "{refunded}");
    assert!(refunded["refundedAt"].as_str().is_some_and(|t| t.ends_with('Z')), "{refunded}");
    assert_eq!(redemptions(&app, &shop.key, "SARAH20").await, (0, 0), "a fully refunded sale gives the redemption back");

    // A stale partial refund arriving late changes nothing, and never counts below zero.
    deliver(&app, &shop, &refund("evt_e2e_refund_partial_late", "pi_e2e_refund", "cus_e2e_refund", 1999, 1000, 0)).await;
    assert_eq!(ledger(&app, &shop.key, &id).await.len(), 3);
    let after = only(conversions(&app, &shop.key).await);
    assert_eq!((after["status"].as_str(), after["commissionCents"].as_i64()), (Some("Refunded"), Some(0)));
    assert_eq!(after["refundedAt"], refunded["refundedAt"]);
    assert_eq!(redemptions(&app, &shop.key, "SARAH20").await, (0, 0));
    assert_eq!(app.count_rows("ledger_events").await, 3);
}

#[tokio::test]
async fn a_refund_that_arrives_before_its_sale_waits_for_it_and_applies_when_it_arrives() {
    let Some(app) = spawn().await else { return };
    let shop = shop(&app, Some(12)).await;
    app.stripe.script_invoice("in_e2e_early", vec![ScriptedDiscount::code("di_e2e_early", &shop.promo)]);
    app.stripe.script_invoice_payment("pi_e2e_early", "in_e2e_early");

    // The refund comes first: no conversion records the invoice yet, so it waits.
    let early = refund("evt_e2e_early_refund", "pi_e2e_early", "cus_e2e_early", 2999, 1000, 0);
    assert_eq!(send(&app, &early).await["duplicate"], false);
    let waiting = wait_for_event(&app, &shop, "evt_e2e_early_refund", |e| e["status"] == "Waiting").await;
    let error = waiting["lastError"].as_str().unwrap_or_default();
    assert!(error.contains("no conversion") && error.contains("in_e2e_early"), "{waiting}");
    assert_eq!(waiting["waitingFor"], "in_e2e_early", "{waiting}");
    assert!(waiting["nextAttemptAt"].is_string(), "a recheck is scheduled: {waiting}");
    assert_eq!(waiting["processedAt"], Value::Null);
    let listed = app.get("/api/v1/webhooks/stripe/events?status=Waiting", &shop.owner).await.expect(200).clone();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // Then the sale, paid an hour before the refund (events arrive out of order, not facts):
    // it wakes the refund, which applies without a replay.
    let sale = Invoice::paid("evt_e2e_early_sale", "in_e2e_early", "sub_e2e_early", "cus_e2e_early", 2999)
        .discount("di_e2e_early")
        .paid_at(now() - 3600);
    deliver(&app, &shop, &sale.body()).await;
    wait_for_status(&app, &shop, "evt_e2e_early_refund", "Done").await;
    let id = id_of(&only(conversions(&app, &shop.key).await));
    // 20 % of 29.99 = 5.998 → 6.00; -round(600 × 1000 / 2999) = -round(200.07) = -200.
    assert_eq!(ledger(&app, &shop.key, &id).await, vec![("initial".into(), 2999, 600), ("refund".into(), -1000, -200)]);
    let conversion = only(conversions(&app, &shop.key).await);
    assert_eq!((conversion["commissionCents"].as_i64(), conversion["status"].as_str()), (Some(400), Some("Pending")));
    assert!(inbox(&app, &shop, Some("Waiting")).await.is_empty());
    assert_eq!(inbox(&app, &shop, Some("Done")).await.len(), 2);

    // Only an Owner may replay, and a replay of an applied refund changes nothing.
    let viewer = app.jwt_dashboard(&shop.org_id, "Viewer");
    app.post_empty("/api/v1/webhooks/stripe/events/evt_e2e_early_refund/replay", &viewer).await.expect_error(403, "insufficient_role");
    let replayed = app.post_empty("/api/v1/webhooks/stripe/events/evt_e2e_early_refund/replay", &shop.owner).await.expect(200).clone();
    assert_eq!((replayed["id"].as_str(), replayed["status"].as_str()), (Some("evt_e2e_early_refund"), Some("Pending")));
    assert_eq!((replayed["attempts"].as_i64(), replayed["replays"].as_i64()), (Some(0), Some(1)));
    wait_for_status(&app, &shop, "evt_e2e_early_refund", "Done").await;
    assert_eq!(ledger(&app, &shop.key, &id).await.len(), 2);
}

#[tokio::test]
async fn with_two_brands_a_refund_before_its_sale_waits_and_claws_back_the_whole_commission_when_the_sale_arrives() {
    // The reliability probe's repro: two organizations; the refund (cumulative 9900) of in_x,
    // then the invoice.paid of in_x with one of the first organization's codes. Before the fix
    // the refund was Skipped for good and the conversion stayed Pending at 1980.
    let Some(app) = spawn().await else { return };
    let shop = shop(&app, Some(12)).await;
    let _other_brand = app.org(PlanTier::Growth).await;
    app.stripe.script_invoice("in_e2e_x", vec![ScriptedDiscount::code("di_e2e_x", &shop.promo)]);
    app.stripe.script_invoice_payment("pi_e2e_x", "in_e2e_x");

    let early = refund("evt_e2e_x_refund", "pi_e2e_x", "cus_e2e_x", 9900, 9900, 0);
    assert_eq!(send(&app, &early).await["duplicate"], false);
    // No organization is known yet: only operators see it, as Waiting.
    let waiting = tokio::time::timeout(WITHIN, async {
        loop {
            let events = app.services.list_all_stripe_events(Some(rekomi_domain::stripe_inbox::InboxStatus::Waiting), 10).await.unwrap();
            if let Some(event) = events.into_iter().find(|e| e.id == "evt_e2e_x_refund") {
                return event;
            }
            tokio::time::sleep(POLL).await;
        }
    })
    .await
    .expect("the refund waits");
    assert_eq!((waiting.org_id, waiting.waiting_for.as_ref().map(|p| p.as_str())), (None, Some("in_e2e_x")), "{:?}", waiting.last_error);

    let sale = Invoice::paid("evt_e2e_x_sale", "in_e2e_x", "sub_e2e_x", "cus_e2e_x", 9900).discount("di_e2e_x");
    deliver(&app, &shop, &sale.body()).await;
    wait_for_status(&app, &shop, "evt_e2e_x_refund", "Done").await;
    let conversion = only(conversions(&app, &shop.key).await);
    assert_eq!((conversion["status"].as_str(), conversion["commissionCents"].as_i64()), (Some("Refunded"), Some(0)), "{conversion}");
    assert_eq!(redemptions(&app, &shop.key, "SARAH20").await, (0, 0), "the code's redemption is given back");
}

#[tokio::test]
async fn events_held_by_a_worker_that_died_are_processed_by_another_replica_within_seconds() {
    // This server runs no inbox worker: the test plays a worker that claims a batch and is
    // killed (no outcome recorded, nothing let go), then a replica with a worker takes over.
    let Some(app) = spawn_pipeline(&[], |config| config.inbox_interval_ms = 0).await else { return };
    let shop = shop(&app, Some(12)).await;
    let ids: Vec<String> = (1..=5).map(|n| format!("evt_e2e_dead_{n}")).collect();
    for (n, id) in ids.iter().enumerate() {
        let invoice = format!("in_e2e_dead_{n}");
        app.stripe.script_invoice(&invoice, vec![ScriptedDiscount::code(&format!("di_e2e_dead_{n}"), &shop.promo)]);
        let body = Invoice::paid(id, &invoice, &format!("sub_e2e_dead_{n}"), "cus_e2e_dead", 1000).discount(&format!("di_e2e_dead_{n}"));
        assert_eq!(send(&app, &body.body()).await["duplicate"], false);
    }
    let batch = app.services.claim_stripe_events(50).await.unwrap();
    assert_eq!(batch.len(), 5);
    drop(batch);

    let started = tokio::time::Instant::now();
    let replica = app.spawn_replica(|config| {
        config.inbox_interval_ms = 50;
        config.stripe_webhook_secrets = vec![SECRET.to_owned()];
    });
    let deadline = started + Duration::from_secs(30);
    loop {
        if inbox(&app, &shop, Some("Done")).await.len() == ids.len() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the dead worker's events were not processed within 30 s");
        tokio::time::sleep(POLL).await;
    }
    replica.abort();
    let credited = conversions(&app, &shop.key).await;
    assert_eq!(credited.len(), 5, "each event credited exactly once");
    assert!(credited.iter().all(|c| c["commissionCents"] == 200), "{credited:#?}");
}

#[tokio::test]
async fn a_free_signup_with_sarahs_100_percent_code_is_her_lead_and_the_customers_first_payment_her_sale() {
    let Some(app) = spawn().await else { return };
    let shop = shop(&app, Some(12)).await;
    let free = another_code(&app, &shop, "SARAHFREE", json!({ "name": "First month free", "discountValue": 100 })).await;
    app.stripe.script_invoice("in_e2e_lead_0", vec![ScriptedDiscount::code("di_e2e_lead", &free)]);

    // A $0 paid invoice: the 100 %-off code made the first month free.
    let signup = Invoice::paid("evt_e2e_lead_signup", "in_e2e_lead_0", "sub_e2e_lead", "cus_e2e_lead", 0).discount("di_e2e_lead");
    deliver(&app, &shop, &signup.body()).await;
    let lead = only(conversions(&app, &shop.key).await);
    assert_eq!(lead["type"], "LeadReward", "{lead}");
    assert_eq!((lead["amountCents"].as_i64(), lead["commissionCents"].as_i64()), (Some(0), Some(0)));
    assert_eq!(lead["affiliateId"], json!(shop.sarah));
    assert_eq!((lead["attributionMethod"].as_str(), lead["couponCode"].as_str()), (Some("coupon"), Some("SARAHFREE")));
    assert_eq!(lead["status"], "Pending");
    assert_eq!(redemptions(&app, &shop.key, "SARAHFREE").await, (1, 1));

    // The second month is paid, without a code: Sarah earns it through customer history.
    let paid = Invoice::paid("evt_e2e_lead_paid", "in_e2e_lead_1", "sub_e2e_lead", "cus_e2e_lead", 2900).renewal();
    deliver(&app, &shop, &paid.body()).await;
    let all = conversions(&app, &shop.key).await;
    assert_eq!(all.len(), 2, "{all:#?}");
    let sale = only(all.into_iter().filter(|c| c["type"] == "Recurring").collect());
    assert_eq!(sale["affiliateId"], json!(shop.sarah), "{sale}");
    assert_eq!((sale["attributionMethod"].as_str(), sale["couponCode"].clone()), (Some("metadata_or_customer"), Value::Null));
    assert_eq!((sale["amountCents"].as_i64(), sale["commissionCents"].as_i64()), (Some(2900), Some(580)));
    assert_eq!(sale["externalEventId"], "in_e2e_lead_1");
    assert_eq!(attribution(&app, &shop.key, &id_of(&sale)).await["trace"]["rule"], "customer_history");
    assert_eq!(redemptions(&app, &shop.key, "SARAHFREE").await, (1, 1), "the paid month redeemed nothing");
    assert_eq!(redemptions(&app, &shop.key, "SARAH20").await, (0, 0));
}

#[tokio::test]
async fn a_paid_checkout_with_bobs_reference_is_his_one_time_sale_and_an_unpaid_one_is_nothing() {
    let Some(app) = spawn().await else { return };
    let shop = shop(&app, Some(12)).await;

    deliver(&app, &shop, &checkout("evt_e2e_cs_paid", "cs_e2e_paid", "paid", Some(BOB_SLUG), 12000)).await;
    let sale = only(conversions(&app, &shop.key).await);
    assert_eq!(sale["type"], "OneTime", "{sale}");
    assert_eq!(sale["affiliateId"], json!(shop.bob));
    assert_eq!((sale["attributionMethod"].as_str(), sale["couponCode"].clone()), (Some("metadata_or_customer"), Value::Null));
    assert_eq!((sale["amountCents"].as_i64(), sale["commissionCents"].as_i64()), (Some(12000), Some(2400)));
    assert_eq!(sale["externalEventId"], "cs_e2e_paid");
    assert_eq!(sale["stripeSubscriptionId"], Value::Null);
    assert_eq!(sale["stripeCustomerId"], "cus_e2e_checkout");
    let trace = attribution(&app, &shop.key, &id_of(&sale)).await["trace"].clone();
    assert_eq!(trace["referralRefs"], json!([BOB_SLUG]), "client_reference_id is the referral: {trace}");
    assert_eq!(trace["rule"], "referral_metadata");

    // A session completed without payment (e.g. a delayed bank debit) is not a sale.
    deliver(&app, &shop, &checkout("evt_e2e_cs_unpaid", "cs_e2e_unpaid", "unpaid", Some(BOB_SLUG), 8000)).await;
    assert_eq!(conversions(&app, &shop.key).await.len(), 1);
    assert!(app.stripe.requests().iter().all(|r| r.method != "GET"), "a checkout names everything Rekomi needs");

    // A one-time payment is refunded by its payment intent; Stripe knows no invoice for it.
    deliver(&app, &shop, &refund("evt_e2e_cs_refund", "pi_e2e_cs_paid", "cus_e2e_checkout", 12000, 12000, 0)).await;
    let refunded = only(conversions(&app, &shop.key).await);
    assert_eq!((refunded["status"].as_str(), refunded["commissionCents"].as_i64()), (Some("Refunded"), Some(0)), "{refunded}");
    assert_eq!(ledger(&app, &shop.key, &id_of(&refunded)).await, vec![("initial".into(), 12000, 2400), ("refund".into(), -12000, -2400)]);
    let reads = app.stripe.reads_of("/v1/invoice_payments");
    assert_eq!(reads.len(), 1);
    assert_invoice_payment_lookup(&reads[0], "pi_e2e_cs_paid");
}

#[tokio::test]
async fn bad_signatures_and_bodies_are_refused_and_store_nothing_while_unknown_types_and_live_mode_events_are_stored_then_skipped() {
    let Some(app) = spawn().await else { return };
    let shop = shop(&app, Some(12)).await;
    let body = Invoice::paid("evt_e2e_bad", "in_e2e_bad", "sub_e2e_bad", "cus_e2e_bad", 1000).body();
    let t = now();
    // `n` wrong `v1` values (as from retired secrets) followed by the right one.
    let with_decoys = |n: usize, body: &[u8]| {
        let decoys: Vec<String> = (0..n).map(|i| format!("v1={}", signature::sign(&format!("whsec_retired_{i}"), t, body))).collect();
        format!("t={t},{},v1={}", decoys.join(","), signature::sign(SECRET, t, body))
    };

    let refused = [
        ("no signature", None),
        ("another secret", Some(signature::header("whsec_someone_else", t, &body))),
        ("signed over other bytes", Some(signature::header(SECRET, t, b"{}"))),
        ("stale by 301 s", Some(signature::header(SECRET, t - 301, &body))),
        ("from 301 s in the future", Some(signature::header(SECRET, t + 301, &body))),
        ("no timestamp", Some(signature::header(SECRET, t, &body).split_once(',').unwrap().1.to_owned())),
        ("only a v0 signature", Some(format!("t={t},v0={}", signature::sign(SECRET, t, &body)))),
        ("not hex", Some(format!("t={t},v1=zz"))),
        ("empty", Some(String::new())),
        ("nine v1 values (at most 8 are considered)", Some(with_decoys(8, &body))),
    ];
    for (case, header) in refused {
        let answer = post_event(&app, &body, header.as_deref()).await;
        assert_eq!((answer.status, answer.error_code()), (400, Some("invalid_signature")), "{case}: {}", answer.text);
        assert!(answer.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{case}: {}", answer.text);
    }
    // A body altered after signing (one digit of the amount).
    let signed = sign(&body);
    let tampered = String::from_utf8(body.clone()).unwrap().replacen("\"amount_paid\": 1000", "\"amount_paid\": 9000", 1);
    assert_ne!(tampered.as_bytes(), body.as_slice());
    post_event(&app, tampered.as_bytes(), Some(&signed)).await.expect_error(400, "invalid_signature");
    // Still within the tolerance: accepted (proves the cases above failed for their reason).
    let accepted_early = signature::header(SECRET, t - 250, &body);

    // Validly signed, but not Stripe events.
    for (case, not_an_event) in [
        ("not JSON", b"this is not json".to_vec()),
        ("a JSON array", b"[1,2,3]".to_vec()),
        ("an object without id or type", br#"{"hello":"world"}"#.to_vec()),
        ("an event without created", br#"{"id":"evt_x","object":"event","type":"invoice.paid","livemode":false}"#.to_vec()),
        ("an account with a NUL", with_account(&body, r"acct_\u0000")),
        ("an account with a line break", with_account(&body, r"acct_1\nX")),
        (
            "a created time before 2000",
            String::from_utf8(body.clone()).unwrap().replacen("\"created\": ", "\"created\": -", 1).into_bytes(),
        ),
    ] {
        let answer = post_event(&app, &not_an_event, Some(&sign(&not_an_event))).await;
        assert_eq!((answer.status, answer.error_code()), (400, Some("invalid_payload")), "{case}: {}", answer.text);
    }

    // Over 512 KiB, correctly signed: 413.
    let mut huge: Value = serde_json::from_slice(&body).unwrap();
    huge["data"]["object"]["description"] = json!("x".repeat(512 * 1024));
    let huge = serde_json::to_vec(&huge).unwrap();
    let answer = post_event(&app, &huge, Some(&sign(&huge))).await;
    answer.expect_error(413, "payload_too_large");

    assert_eq!(app.count_rows("inbox_events").await, 0, "nothing refused was stored");
    assert!(inbox(&app, &shop, None).await.is_empty());
    assert!(conversions(&app, &shop.key).await.is_empty());

    // The signature from 250 s ago is still good.
    let answer = post_event(&app, &body, Some(&accepted_early)).await;
    assert_eq!(answer.expect(200)["duplicate"], false);

    // An event type Rekomi does not handle is acknowledged, stored, then skipped. (Signed during
    // a secret rotation: an old secret's v1 first, then the current one.)
    let unknown = fixture("customer.created.json", &[("EVENT_ID", json!("evt_e2e_unknown_type")), ("CREATED", json!(now()))]);
    let answer = post_event(&app, &unknown, Some(&with_decoys(1, &unknown))).await;
    assert_eq!(answer.expect(200)["duplicate"], false);
    let row = wait_until_settled(&app, "evt_e2e_unknown_type").await;
    assert!(row.starts_with("Skipped|"), "{row}");
    assert!(row.contains("customer.created"), "the reason names the type: {row}");

    // A live-mode event reaching this test-key installation is kept but never credited, even
    // with a redeemed code. (Eight v1 values: still considered.)
    app.stripe.script_invoice("in_e2e_live", vec![ScriptedDiscount::code("di_e2e_live", &shop.promo)]);
    let live = Invoice::paid("evt_e2e_live", "in_e2e_live", "sub_e2e_live", "cus_e2e_live", 1000).discount("di_e2e_live").body();
    let live = String::from_utf8(live).unwrap().replace("\"livemode\": false", "\"livemode\": true").into_bytes();
    let answer = post_event(&app, &live, Some(&with_decoys(7, &live))).await;
    assert_eq!(answer.expect(200)["duplicate"], false);
    let row = wait_until_settled(&app, "evt_e2e_live").await;
    assert!(row.starts_with("Skipped|") && row.contains("live-mode"), "{row}");
    assert_invoice_lookups(&app, "in_e2e_live", 0);

    let skipped = app.services.list_all_stripe_events(Some(rekomi_domain::stripe_inbox::InboxStatus::Skipped), 10).await.unwrap();
    let mut skipped: Vec<&str> = skipped.iter().map(|e| e.id.as_str()).collect();
    skipped.sort_unstable();
    assert_eq!(skipped, vec!["evt_e2e_live", "evt_e2e_unknown_type"]);
    // The accepted invoice named no code and no referral: processed, credited nobody.
    wait_until_settled(&app, "evt_e2e_bad").await;
    assert!(conversions(&app, &shop.key).await.is_empty());
    assert_eq!(redemptions(&app, &shop.key, "SARAH20").await, (0, 0));
}

// ---- outbound webhooks: a local receiver ------------------------------------------------------

#[derive(Clone, Debug)]
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {name}"))
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// Answers 200 to everything and keeps what it got.
async fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hooks/rekomi", listener.local_addr().unwrap().port());
    let got = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&got);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0_u8; 8192];
                let (head_end, length) = loop {
                    let Ok(n) = stream.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buffer[..at]).to_string();
                        let length = head
                            .lines()
                            .filter_map(|l| l.split_once(':'))
                            .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
                            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (at, length);
                    }
                };
                while buffer.len() < head_end + 4 + length {
                    let Ok(n) = stream.read(&mut chunk).await else { return };
                    if n == 0 {
                        break;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
                let headers =
                    head.lines().skip(1).filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()));
                let body = String::from_utf8_lossy(&buffer[head_end + 4..]).to_string();
                log.lock().unwrap().push(Received { headers: headers.collect(), body });
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (url, got)
}

async fn wait_for_delivery(got: &Mutex<Vec<Received>>, event_type: &str) -> Received {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let found = got.lock().unwrap().iter().find(|r| r.json()["type"] == event_type).cloned();
        if let Some(found) = found {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "no {event_type} delivery; got {:#?}", got.lock().unwrap());
        tokio::time::sleep(POLL).await;
    }
}

/// HMAC-SHA256 from its definition (RFC 2104), independent of the product's implementation.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0_u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner_pad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let outer_pad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&inner_pad).chain_update(message).finalize();
    Sha256::new().chain_update(&outer_pad).chain_update(inner).finalize().to_vec()
}

/// Checks `X-Rekomi-Signature` (`t=…,v1=…`) as a receiver would.
#[track_caller]
fn assert_signed(delivery: &Received, secret: &str) {
    let header = delivery.header("x-rekomi-signature");
    let t: i64 = header.split(',').find_map(|p| p.strip_prefix("t=")).and_then(|t| t.parse().ok()).expect("t=");
    let expected = hex::encode(hmac_sha256(secret.as_bytes(), format!("{t}.{}", delivery.body).as_bytes()));
    assert!(header.split(',').any(|p| p == format!("v1={expected}")), "{header} does not carry v1={expected}");
    assert!((now() - t).abs() <= 300, "stale signature timestamp {t}");
}

#[tokio::test]
async fn an_endpoint_subscribed_to_conversion_events_receives_the_sale_and_the_refund_signed() {
    let Some(app) = spawn_pipeline(&[], |config| {
        config.webhook_allow_private_targets = true;
        config.delivery_interval_ms = 50;
    })
    .await
    else {
        return;
    };
    let shop = shop(&app, Some(12)).await;
    let (url, got) = receiver().await;
    let endpoint = app.post("/api/v1/webhook-endpoints", &shop.key, &json!({ "url": url, "events": ["conversion.*"] })).await;
    let endpoint = endpoint.expect(201).clone();
    let secret = endpoint["secret"].as_str().unwrap().to_owned();

    app.stripe.script_invoice("in_e2e_hook", vec![ScriptedDiscount::code("di_e2e_hook", &shop.promo)]);
    app.stripe.script_invoice_payment("pi_e2e_hook", "in_e2e_hook");
    let sale = Invoice::paid("evt_e2e_hook_sale", "in_e2e_hook", "sub_e2e_hook", "cus_e2e_hook", 4000).discount("di_e2e_hook");
    deliver(&app, &shop, &sale.body()).await;
    let conversion = only(conversions(&app, &shop.key).await);

    let created = wait_for_delivery(&got, "conversion.created").await;
    assert_signed(&created, &secret);
    assert_eq!(created.header("x-rekomi-event"), "conversion.created");
    let data = created.json()["data"].clone();
    assert_eq!(data["id"], conversion["id"], "{data}");
    assert_eq!(data["affiliateId"], json!(shop.sarah));
    assert_eq!((data["couponCode"].as_str(), data["attributionMethod"].as_str()), (Some("SARAH20"), Some("coupon")));
    assert_eq!((data["amountCents"].as_i64(), data["commissionCents"].as_i64()), (Some(4000), Some(800)));
    assert_eq!(data["status"], "Pending");

    deliver(&app, &shop, &refund("evt_e2e_hook_refund", "pi_e2e_hook", "cus_e2e_hook", 4000, 4000, 0)).await;
    let refunded = wait_for_delivery(&got, "conversion.refunded").await;
    assert_signed(&refunded, &secret);
    assert_eq!(refunded.header("x-rekomi-event"), "conversion.refunded");
    let data = refunded.json()["data"].clone();
    assert_eq!(data["id"], conversion["id"], "{data}");
    assert_eq!((data["status"].as_str(), data["commissionCents"].as_i64()), (Some("Refunded"), Some(0)));
    assert!(data["refundedAt"].is_i64(), "{data}");
    assert_ne!(created.header("x-rekomi-delivery-id"), refunded.header("x-rekomi-delivery-id"));

    let types: Vec<String> = got.lock().unwrap().iter().map(|r| r.json()["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(types, vec!["conversion.created", "conversion.refunded"], "only the subscribed events, once each");
}

// ---- the CSV export and tenant isolation -------------------------------------------------------

/// Splits one CSV line into cells (RFC 4180 quoting).
fn csv_cells(line: &str) -> Vec<String> {
    let (mut cells, mut cell, mut quoted, mut chars) = (Vec::new(), String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(std::mem::take(&mut cell)),
            (c, _) => cell.push(c),
        }
    }
    cells.push(cell);
    cells
}

#[tokio::test]
async fn the_csv_export_has_the_documented_header_one_row_per_conversion_and_defused_formulas_and_other_brands_see_nothing() {
    let Some(app) = spawn().await else { return };
    let shop = shop(&app, Some(12)).await;
    app.stripe.script_invoice("in_e2e_csv", vec![ScriptedDiscount::code("di_e2e_csv", &shop.promo)]);
    let sale = Invoice::paid("evt_e2e_csv_sale", "in_e2e_csv", "sub_e2e_csv", "cus_e2e_csv", 1500).discount("di_e2e_csv");
    deliver(&app, &shop, &sale.body()).await;
    // A session id crafted as a spreadsheet formula (a payload is attacker-influenced text) is
    // no checkout session id: the event fails at decoding and never reaches the export.
    let formula = r#"=HYPERLINK("http://evil.example/","click")"#;
    let answer = send(&app, &checkout("evt_e2e_csv_formula", formula, "paid", Some(BOB_SLUG), 700)).await;
    assert_eq!(answer["duplicate"], false, "{answer}");
    let deadline = tokio::time::Instant::now() + WITHIN;
    let refused = loop {
        let row = inbox_row(&app, "evt_e2e_csv_formula").await;
        if row.starts_with("Failed|") || tokio::time::Instant::now() >= deadline {
            break row;
        }
        tokio::time::sleep(POLL).await;
    };
    assert!(refused.starts_with("Failed|") && refused.contains("`data.object.id` is not a Stripe checkout session id"), "{refused}");
    // A session id that is one, but holds what a formula would (quotes and commas).
    let crafted = format!("cs_test_{formula}");
    deliver(&app, &shop, &checkout("evt_e2e_csv_checkout", &crafted, "paid", Some(BOB_SLUG), 700)).await;
    let listed = conversions(&app, &shop.key).await;
    assert_eq!(listed.len(), 2);

    let export = app.get("/api/v1/conversions/export.csv", &shop.key).await;
    assert_eq!(export.status, 200, "{}", export.text);
    assert!(export.header("content-type").is_some_and(|t| t.starts_with("text/csv")), "{:?}", export.headers);
    let mut lines = export.text.lines();
    assert_eq!(
        lines.next(),
        Some("id,affiliate_id,program_id,amount_cents,currency,commission_cents,status,type,external_event_id,created_at,refunded_at,attribution_method,coupon_code")
    );
    let rows: Vec<Vec<String>> = lines.map(csv_cells).collect();
    assert_eq!(rows.len(), 2, "{}", export.text);
    assert!(rows.iter().all(|r| r.len() == 13), "{rows:?}");
    let mut exported: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let mut ids: Vec<&str> = listed.iter().map(|c| c["id"].as_str().unwrap()).collect();
    exported.sort_unstable();
    ids.sort_unstable();
    assert_eq!(exported, ids, "one row per conversion");

    let coupon_row = rows.iter().find(|r| r[8] == "in_e2e_csv").expect("the coupon sale's row");
    assert_eq!(coupon_row[1], shop.sarah);
    assert_eq!(coupon_row[2], shop.program_id);
    assert_eq!(&coupon_row[3..8], &["1500", "USD", "300", "Pending", "Recurring"]);
    assert_eq!(&coupon_row[10..], &["", "coupon", "SARAH20"]);
    assert!(coupon_row[9].ends_with('Z'), "{coupon_row:?}");

    let checkout_row = rows.iter().find(|r| r[1] == shop.bob).expect("the checkout's row");
    assert_eq!(checkout_row[8], crafted, "a cell that starts with no formula sign is kept as it is");
    assert!(
        export.text.contains(r#","cs_test_=HYPERLINK(""http://evil.example/"",""click"")","#),
        "the cell is quoted and its quotes doubled: {}",
        export.text
    );
    assert_eq!(&checkout_row[11..], &["metadata_or_customer", ""]);

    // Another brand, created after the events were processed (a platform event belongs to the
    // only organization of a single-brand installation), sees none of it.
    let (other_org, other) = app.org(PlanTier::Growth).await;
    let other_owner = app.jwt_dashboard(&other_org, "Owner");
    for id in &ids {
        app.get(&format!("/api/v1/conversions/{id}"), &other).await.expect_error(404, "conversion_not_found");
        app.get(&format!("/api/v1/conversions/{id}/attribution"), &other).await.expect_error(404, "conversion_not_found");
    }
    let theirs = app.get("/api/v1/conversions", &other).await.expect(200).clone();
    assert_eq!(theirs["items"], json!([]), "{theirs}");
    let their_export = app.get("/api/v1/conversions/export.csv", &other).await;
    assert_eq!(their_export.text.lines().count(), 1, "only the header: {}", their_export.text);
    let their_inbox = app.get("/api/v1/webhooks/stripe/events", &other_owner).await;
    assert_eq!(their_inbox.expect(200), &json!([]));
    app.post_empty("/api/v1/webhooks/stripe/events/evt_e2e_csv_sale/replay", &other_owner)
        .await
        .expect_error(404, "stripe_event_not_found");
    // The exporting brand's own export was audited.
    let audited = app.single_text("SELECT count(*)::text AS digest FROM audit_log WHERE action = 'conversions.exported'".to_owned()).await;
    assert_eq!(audited, "2", "one per export");
}

// ---- the story of one sale, sent byte for byte ----------------------------------------------

/// The secret the project's story is signed with in this test.
const STORY_SECRET: &str = "whsec_rekomi_story_fixtures_only";

#[tokio::test]
async fn the_projects_story_is_credited_once_and_clawed_back_in_proportion_when_sent_byte_for_byte() {
    let dir = project_story_dir();
    let paid = read_bytes(&dir, STORY_PAID);
    a_story_is_credited_once_and_clawed_back_in_proportion(Story {
        stale_signature: signature::header(STORY_SECRET, now() - 2 * signature::TOLERANCE_SECS, &paid),
        paid_sha256: hex::encode(Sha256::digest(&paid)),
        dir,
        secret: STORY_SECRET.to_owned(),
        // Stripe redelivers the same event: the same file again.
        redelivery: STORY_PAID,
        // 20 % of 20.00; 5.00 of it refunded is a quarter; then the other 15.00.
        sale: (2000, 400),
        partial_refund: (-500, -100),
        rest_refunded: (-1500, -300),
    })
    .await;
}

#[tokio::test]
async fn the_shared_reference_story_is_credited_once_and_clawed_back_in_proportion_when_sent_byte_for_byte() {
    // An optional cross-check: the same scenario with the shared folder's story and its
    // published signature vectors, when that folder is present.
    let Some(dir) = shared_story_dir() else { return };
    let vectors: Value = serde_json::from_slice(&read_bytes(&dir, "signature_vectors.json")).unwrap();
    let vector = |field: &str| {
        let events = vectors["events"].as_array().unwrap();
        let paid = events.iter().find(|v| v["file"] == STORY_PAID).unwrap_or_else(|| panic!("no signature vector for {STORY_PAID}"));
        paid[field].as_str().unwrap().to_owned()
    };
    a_story_is_credited_once_and_clawed_back_in_proportion(Story {
        secret: vectors["secret"].as_str().unwrap().to_owned(),
        // The published header is long stale now.
        stale_signature: vector("header"),
        paid_sha256: vector("sha256_of_body"),
        dir,
        redelivery: "invoice.paid__with_promotion_code_discount__redelivery.json",
        // 20 % of 15.00; 5.00 of it refunded is a third; then the other 10.00.
        sale: (1500, 300),
        partial_refund: (-500, -100),
        rest_refunded: (-1000, -200),
    })
    .await;
}

// ---- several brands on one platform account ------------------------------------------------------

#[tokio::test]
async fn a_platform_account_coupon_sale_is_credited_to_the_codes_owner_when_several_brands_share_the_installation() {
    // docs/api.md: "for platform-account events, the owner of a redeemed Rekomi code". In the
    // current API shapes the invoice names its discounts by id only, so the code is known only
    // after the expanded lookup.
    let Some(app) = spawn().await else { return };
    let shop = shop(&app, Some(12)).await;
    let _other_brand = app.org(PlanTier::Growth).await;
    app.stripe.script_invoice("in_e2e_multi", vec![ScriptedDiscount::code("di_e2e_multi", &shop.promo)]);

    let sale = Invoice::paid("evt_e2e_multi", "in_e2e_multi", "sub_e2e_multi", "cus_e2e_multi", 5000).discount("di_e2e_multi");
    assert_eq!(send(&app, &sale.body()).await["duplicate"], false);
    let row = wait_until_settled(&app, "evt_e2e_multi").await;

    assert!(row.starts_with("Done|"), "the event should be applied for SARAH20's organization, but it was: {row}");
    let conversion = only(conversions(&app, &shop.key).await);
    assert_eq!((conversion["affiliateId"].clone(), conversion["couponCode"].clone()), (json!(shop.sarah), json!("SARAH20")));
    assert_eq!(conversion["commissionCents"], 1000);
}
