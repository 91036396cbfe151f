//! A stateful Stripe double for the end-to-end tests: a small HTTP/1.1 server on 127.0.0.1
//! that the real server's `StripeGateway` talks to instead of `api.stripe.com`.
//!
//! It keeps coupons and promotion codes like Stripe does, per account (the platform's own, or
//! the connected account named by `Stripe-Account`): ids, an active code unique on the account
//! regardless of case, a promotion code only under a coupon of its account, deactivation,
//! deletion. It replays the first answer for a repeated
//! `Idempotency-Key`, and records every request (method, path, headers, decoded form pairs) so
//! a test can assert on exactly what Rekomi sent.
//!
//! For the webhook pipeline it also answers the four reads Rekomi makes while processing
//! events, from what the test scripted: `GET /v1/invoices/{id}` and `GET /v1/subscriptions/{id}`
//! (which discounts, with which promotion code, the object carries; honouring
//! `expand[]=discounts` and `expand[]=discounts.promotion_code` as Stripe does),
//! `GET /v1/invoice_payments?payment[type]=payment_intent&payment[payment_intent]=…` (which
//! invoice a payment intent paid) or `?invoice=…` (which payment intents paid an invoice),
//! `GET /v1/payment_intents/{id}` (how a converted payment settled, see
//! [`StripeDouble::script_settlement`]), and `GET /v1/customers/{id}` (the customer's metadata; every
//! customer exists, with empty metadata unless scripted). See [`StripeDouble::script_invoice`],
//! [`StripeDouble::script_subscription`], [`StripeDouble::script_invoice_payment`] and
//! [`StripeDouble::script_customer_metadata`].
//!
//! For payouts it plays the Stripe Connect platform (requests without `Stripe-Account`):
//! `POST /v1/accounts` makes an Express account (`acct_dbl…`) that cannot be paid yet
//! (`payouts_enabled` and `details_submitted` false, until the test calls
//! [`StripeDouble::enable_payouts`], as finishing onboarding would), `GET /v1/accounts/{id}`
//! answers it, `POST /v1/account_links` makes an onboarding link for it, `POST /v1/transfers`
//! pays one (`tr_dbl…`; refused unless the destination exists and can be paid) and
//! `GET /v1/transfers?transfer_group=…` lists a group's transfers, newest first. A test can
//! reverse a transfer ([`StripeDouble::reverse_transfer`]) and make transfers whose answer is
//! lost ([`StripeDouble::lose_next_transfer_answers`]): made, but never answered.
//!
//! Answers are built from the project's own Stripe object shapes, the fixtures of the Stripe
//! adapter's tests (`crates/rekomi-stripe/tests/fixtures/objects/`: `coupon.json`,
//! `promotion_code.json`, `invoice.json`, `subscription.json`, `discount.json`,
//! `invoice_payment.json`, `customer.json`, `account.json`, `account_link.json` and
//! `transfer.json`, current API shapes, compiled in), with the fields of the request filled in,
//! so they deserialize in async-stripe's typed models exactly as Stripe's would (that adapter's
//! `fixture_shapes` test checks those files parse there).
//!
//! Hand-written on tokio: each request arrives on its own connection with a `Content-Length`
//! body, and every answer closes the connection (a lost answer closes it without one).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The secret key the server under test is configured with.
pub const SECRET_KEY: &str = "sk_test_51RekomiE2eDoubleKey";

/// The account of requests without a `Stripe-Account` header (the platform's own).
pub const PLATFORM: &str = "platform";

/// The environment variable naming the shared Stripe reference folder, an optional
/// cross-check (default `<workspace>/../shared`).
pub const SHARED_DIR_ENV: &str = "REKOMI_SHARED_DIR";

/// One request as the double received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// `GET`, `POST`, `DELETE`.
    pub method: String,
    /// The request target, e.g. `/v1/promotion_codes/promo_…`.
    pub path: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The form body, percent-decoded, in the order sent.
    pub form: Vec<(String, String)>,
}

impl Recorded {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The value of a form key such as `metadata[rekomi_id]`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The `Idempotency-Key` header.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.header("idempotency-key")
    }

    /// The connected account the request acts on (`Stripe-Account`), or [`PLATFORM`].
    pub fn account(&self) -> &str {
        self.header("stripe-account").unwrap_or(PLATFORM)
    }

    /// The path without its query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }

    /// The query string, percent-decoded, in the order sent (`expand[]` may repeat).
    pub fn query(&self) -> Vec<(String, String)> {
        self.path.split_once('?').map(|(_, q)| decode_form(q)).unwrap_or_default()
    }

    /// Every value of a query key such as `expand[]`.
    pub fn query_values(&self, key: &str) -> Vec<String> {
        self.query().into_iter().filter(|(k, _)| k == key).map(|(_, v)| v).collect()
    }
}

/// One discount of a scripted invoice or subscription: the discount's id (`di_…`, as the event
/// lists it) and the promotion code it redeemed (`promo_…`; `None` for a coupon applied
/// without a code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptedDiscount {
    /// `di_…`.
    pub id: String,
    /// `promo_…`: a promotion code the double holds (made through Rekomi or
    /// [`StripeDouble::seed_promotion_code`]).
    pub promotion_code: Option<String>,
}

impl ScriptedDiscount {
    /// A discount that redeemed `promotion_code`.
    pub fn code(id: &str, promotion_code: &str) -> Self {
        Self { id: id.to_owned(), promotion_code: Some(promotion_code.to_owned()) }
    }
}

/// The Stripe object shapes the answers are built from.
#[derive(Clone, Debug)]
struct Shapes {
    coupon: Value,
    promotion_code: Value,
    invoice: Value,
    subscription: Value,
    discount: Value,
    invoice_payment: Value,
    customer: Value,
    account: Value,
    account_link: Value,
    transfer: Value,
}

#[derive(Debug, Default)]
struct State {
    requests: Vec<Recorded>,
    /// Id → (account, coupon); the account is the `Stripe-Account` header or [`PLATFORM`].
    coupons: BTreeMap<String, (String, Value)>,
    /// Id → (account, promotion code).
    promotion_codes: BTreeMap<String, (String, Value)>,
    /// (account, method, idempotency key) → the first answer (status, body).
    replies: HashMap<String, (u16, String)>,
    /// Failures to answer the next requests with, whatever they are.
    faults: VecDeque<(u16, String)>,
    /// Invoice id → (account, its discounts), as scripted by the test.
    invoices: BTreeMap<String, (String, Vec<ScriptedDiscount>)>,
    /// Subscription id → (account, its discounts), as scripted by the test.
    subscriptions: BTreeMap<String, (String, Vec<ScriptedDiscount>)>,
    /// Payment intent id → (account, the invoice it paid), as scripted by the test.
    invoice_payments: BTreeMap<String, (String, String)>,
    /// Payment intent id → (the balance transaction's currency, its exchange rate), for the
    /// settlement of a converted payment.
    settlements: BTreeMap<String, (String, f64)>,
    /// Customer id → (account, its metadata), as scripted by the test; other customers exist
    /// on every account with empty metadata.
    customers: BTreeMap<String, (String, Value)>,
    /// Connected (Express) account id → (the account it was made on, the account).
    connected_accounts: BTreeMap<String, (String, Value)>,
    /// Transfer id → (the account it left, the transfer); ids grow, so this is creation order.
    transfers: BTreeMap<String, (String, Value)>,
    /// How many more `POST /v1/transfers` are carried out without an answer.
    lost_transfer_answers: usize,
    next_id: u64,
}

/// The running double. Dropping it stops it.
#[derive(Debug)]
pub struct StripeDouble {
    port: u16,
    state: Arc<Mutex<State>>,
    shapes: Arc<Shapes>,
    server: JoinHandle<()>,
}

/// Where the shared reference folder is: `$REKOMI_SHARED_DIR`, else `<workspace>/../shared`.
pub fn shared_dir() -> PathBuf {
    match std::env::var(SHARED_DIR_ENV) {
        Ok(dir) if !dir.trim().is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("..").join("shared"),
    }
}

/// `<shared>/stripe/<sub>` when it exists, for the optional cross-checks against the shared
/// reference data. Otherwise `None`, after one informational line: no test needs that folder,
/// so its absence fails nothing, under `CI=true` either.
pub fn shared_stripe_dir(sub: &str) -> Option<PathBuf> {
    let dir = shared_dir().join("stripe").join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    let test = std::thread::current().name().unwrap_or("an end-to-end test").to_owned();
    eprintln!("{test}: no shared Stripe reference data at {}; this optional cross-check did not run", dir.display());
    None
}

/// One of the object shapes, parsed.
fn shape(name: &str, json: &str) -> Value {
    let value: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("the Stripe fixture {name} is not JSON: {e}"));
    assert!(value.is_object(), "the Stripe fixture {name} is not an object");
    value
}

/// The Stripe adapter tests' object fixtures (see the module docs).
macro_rules! object_fixture {
    ($name:literal) => {
        shape($name, include_str!(concat!("../../crates/rekomi-stripe/tests/fixtures/objects/", $name)))
    };
}

fn load_shapes() -> Shapes {
    Shapes {
        coupon: object_fixture!("coupon.json"),
        promotion_code: object_fixture!("promotion_code.json"),
        invoice: object_fixture!("invoice.json"),
        subscription: object_fixture!("subscription.json"),
        discount: object_fixture!("discount.json"),
        invoice_payment: object_fixture!("invoice_payment.json"),
        customer: object_fixture!("customer.json"),
        account: object_fixture!("account.json"),
        account_link: object_fixture!("account_link.json"),
        transfer: object_fixture!("transfer.json"),
    }
}

impl StripeDouble {
    /// Starts the double. Always `Some`: its Stripe shapes are the project's own; the `Option`
    /// lets [`crate::app::TestApp`] chain it with the other resources a test may lack.
    ///
    /// # Panics
    /// When no local port can be bound.
    pub async fn start() -> Option<StripeDouble> {
        let shapes = Arc::new(load_shapes());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("binding the Stripe double: {e}"));
        let port = listener.local_addr().unwrap_or_else(|e| panic!("the Stripe double's address: {e}")).port();
        let state = Arc::new(Mutex::new(State::default()));
        let (server_state, server_shapes) = (Arc::clone(&state), Arc::clone(&shapes));
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, shapes) = (Arc::clone(&server_state), Arc::clone(&server_shapes));
                tokio::spawn(async move { serve(stream, &state, &shapes).await });
            }
        });
        Some(StripeDouble { port, state, shapes, server })
    }

    /// The API base to configure (`http://127.0.0.1:PORT/`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// The requests with this method whose path is `path` exactly.
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.method == method && r.path == path).collect()
    }

    /// How many requests arrived so far (to look only at later ones).
    pub fn request_count(&self) -> usize {
        self.state().requests.len()
    }

    /// The requests received after the first `from`.
    pub fn requests_since(&self, from: usize) -> Vec<Recorded> {
        self.requests().into_iter().skip(from).collect()
    }

    /// A coupon as the double holds it (`None` once deleted).
    pub fn coupon(&self, id: &str) -> Option<Value> {
        self.state().coupons.get(id).map(|(_, c)| c.clone())
    }

    /// The account a coupon lives on.
    pub fn coupon_account(&self, id: &str) -> Option<String> {
        self.state().coupons.get(id).map(|(a, _)| a.clone())
    }

    /// A promotion code as the double holds it.
    pub fn promotion_code(&self, id: &str) -> Option<Value> {
        self.state().promotion_codes.get(id).map(|(_, p)| p.clone())
    }

    /// Every promotion code the double holds, on every account.
    pub fn promotion_codes(&self) -> Vec<Value> {
        self.state().promotion_codes.values().map(|(_, p)| p.clone()).collect()
    }

    /// Answers the next `count` requests with `status` and Stripe's `api_error` body, as an
    /// outage would (they are still recorded).
    pub fn fail_next(&self, count: usize, status: u16) {
        let body = json!({"error": {"type": "api_error", "message": "An unknown error occurred (injected by the test)."}}).to_string();
        self.state().faults.extend(std::iter::repeat_n((status, body), count));
    }

    /// Creates an active promotion code directly on the platform account (as if made in
    /// Stripe's dashboard, unknown to Rekomi), under a coupon of its own. Returns its id.
    pub fn seed_promotion_code(&self, code: &str) -> String {
        let mut state = self.state();
        let coupon_id = state.new_id("DBLSEED");
        let coupon = coupon_object(&self.shapes, &coupon_id, &[("duration".into(), "once".into()), ("percent_off".into(), "5".into())]);
        state.coupons.insert(coupon_id.clone(), (PLATFORM.to_owned(), coupon));
        let id = state.new_id("promo_dblseed");
        let form = vec![("code".to_owned(), code.to_owned()), ("promotion[coupon]".to_owned(), coupon_id)];
        let promo = promotion_code_object(&self.shapes, &id, &form);
        state.promotion_codes.insert(id.clone(), (PLATFORM.to_owned(), promo));
        id
    }

    /// Makes invoice `invoice_id` exist on the platform account with `discounts`: `GET
    /// /v1/invoices/{id}` then answers it (unscripted invoices are `404 resource_missing`).
    /// Scripting the same invoice again replaces it.
    pub fn script_invoice(&self, invoice_id: &str, discounts: Vec<ScriptedDiscount>) {
        self.script_invoice_on(PLATFORM, invoice_id, discounts);
    }

    /// [`StripeDouble::script_invoice`] on a connected account (`acct_…`).
    pub fn script_invoice_on(&self, account: &str, invoice_id: &str, discounts: Vec<ScriptedDiscount>) {
        self.state().invoices.insert(invoice_id.to_owned(), (account.to_owned(), discounts));
    }

    /// Makes subscription `subscription_id` exist on the platform account with `discounts`.
    pub fn script_subscription(&self, subscription_id: &str, discounts: Vec<ScriptedDiscount>) {
        self.state().subscriptions.insert(subscription_id.to_owned(), (PLATFORM.to_owned(), discounts));
    }

    /// Records that `payment_intent` paid `invoice_id` on the platform account: `GET
    /// /v1/invoice_payments` filtered by that payment intent lists one invoice payment (and an
    /// empty list for payment intents never scripted).
    pub fn script_invoice_payment(&self, payment_intent: &str, invoice_id: &str) {
        self.script_invoice_payment_on(PLATFORM, payment_intent, invoice_id);
    }

    /// [`StripeDouble::script_invoice_payment`] on a connected account (`acct_…`).
    pub fn script_invoice_payment_on(&self, account: &str, payment_intent: &str, invoice_id: &str) {
        self.state().invoice_payments.insert(payment_intent.to_owned(), (account.to_owned(), invoice_id.to_owned()));
    }

    /// Records that `payment_intent` paid `invoice_id` on the platform account and that Stripe
    /// converted it, settling in `currency` at `exchange_rate`: `GET /v1/invoice_payments?invoice=…`
    /// lists the payment, and `GET /v1/payment_intents/{id}` answers the intent with its latest
    /// charge and balance transaction (expanded when `expand[]=latest_charge.balance_transaction`).
    pub fn script_settlement(&self, invoice_id: &str, payment_intent: &str, currency: &str, exchange_rate: f64) {
        let mut state = self.state();
        state.invoice_payments.insert(payment_intent.to_owned(), (PLATFORM.to_owned(), invoice_id.to_owned()));
        state.settlements.insert(payment_intent.to_owned(), (currency.to_owned(), exchange_rate));
    }

    /// Gives customer `customer_id` on the platform account this `metadata` (e.g.
    /// `{"rekomi_ref": "bob-links"}`): `GET /v1/customers/{id}` then answers it. Unscripted
    /// customers answer with empty metadata.
    pub fn script_customer_metadata(&self, customer_id: &str, metadata: Value) {
        self.state().customers.insert(customer_id.to_owned(), (PLATFORM.to_owned(), metadata));
    }

    /// A connected account as the double holds it.
    pub fn connected_account(&self, id: &str) -> Option<Value> {
        self.state().connected_accounts.get(id).map(|(_, a)| a.clone())
    }

    /// Finishes (or undoes) an account's onboarding, as Stripe would once the affiliate gave
    /// their details: sets `payouts_enabled` and `details_submitted` (and the transfers
    /// capability) to `enabled`. Returns the account as it now is, for an `account.updated`
    /// event, or `None` for an unknown account.
    pub fn enable_payouts(&self, account_id: &str, enabled: bool) -> Option<Value> {
        let mut state = self.state();
        let (_, account) = state.connected_accounts.get_mut(account_id)?;
        account["payouts_enabled"] = json!(enabled);
        account["details_submitted"] = json!(enabled);
        account["capabilities"]["transfers"] = json!(if enabled { "active" } else { "inactive" });
        // Onboarding settles what Stripe was waiting for; undoing it brings it back.
        let mut requirements = self.shapes.account["requirements"].clone();
        if enabled {
            requirements["currently_due"] = json!([]);
            requirements["eventually_due"] = json!([]);
            requirements["disabled_reason"] = Value::Null;
        }
        account["requirements"] = requirements;
        Some(account.clone())
    }

    /// Every transfer made so far, in creation order.
    pub fn transfers(&self) -> Vec<Value> {
        self.state().transfers.values().map(|(_, t)| t.clone()).collect()
    }

    /// Reverses a transfer in full, as the platform's dashboard would: `reversed` becomes true,
    /// `amount_reversed` its amount, and its reversals list one reversal. Returns the transfer as
    /// it now is, for a `transfer.reversed` event, or `None` for an unknown transfer.
    pub fn reverse_transfer(&self, id: &str) -> Option<Value> {
        let mut state = self.state();
        let reversal_id = state.new_id("trr_dbl");
        let (_, transfer) = state.transfers.get_mut(id)?;
        let reversal = json!({
            "id": reversal_id,
            "object": "transfer_reversal",
            "amount": transfer["amount"],
            "balance_transaction": null,
            "created": now(),
            "currency": transfer["currency"],
            "destination_payment_refund": null,
            "metadata": {},
            "source_refund": null,
            "transfer": id,
        });
        transfer["reversed"] = json!(true);
        transfer["amount_reversed"] = transfer["amount"].clone();
        transfer["reversals"]["data"] = json!([reversal]);
        Some(transfer.clone())
    }

    /// Makes the next `count` `POST /v1/transfers` lose their answer: each is carried out as
    /// usual (a transfer made, a refusal, or the replay of an idempotency key), then the
    /// connection closes without an answer, so the client sees a connection error, as after a
    /// timeout where Stripe did make the transfer. Requests failed by
    /// [`StripeDouble::fail_next`] do not count.
    pub fn lose_next_transfer_answers(&self, count: usize) {
        self.state().lost_transfer_answers += count;
    }

    /// The `GET` requests whose path (without the query) is `path`, e.g. the lookups of
    /// `/v1/invoices/in_…`.
    pub fn reads_of(&self, path: &str) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.method == "GET" && r.path_only() == path).collect()
    }
}

impl Drop for StripeDouble {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    match state.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl State {
    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:06}", self.next_id)
    }
}

// ---- Stripe's behaviour ------------------------------------------------------------------

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn stripe_error(status: u16, code: Option<&str>, param: Option<&str>, message: &str) -> (u16, String) {
    let mut error = Map::new();
    error.insert("type".into(), json!("invalid_request_error"));
    error.insert("message".into(), json!(message));
    if let Some(code) = code {
        error.insert("code".into(), json!(code));
    }
    if let Some(param) = param {
        error.insert("param".into(), json!(param));
    }
    (status, json!({ "error": error }).to_string())
}

fn no_such(kind: &str, id: &str, param: Option<&str>) -> (u16, String) {
    stripe_error(404, Some("resource_missing"), param, &format!("No such {kind}: '{id}'"))
}

fn get<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn int(form: &[(String, String)], key: &str) -> Value {
    get(form, key).and_then(|v| v.parse::<i64>().ok()).map_or(Value::Null, Value::from)
}

fn text(form: &[(String, String)], key: &str) -> Value {
    get(form, key).map_or(Value::Null, Value::from)
}

fn metadata(form: &[(String, String)]) -> Value {
    let map: Map<String, Value> = form
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("metadata[")?.strip_suffix(']')?.to_owned(), Value::from(v.as_str()))))
        .collect();
    Value::Object(map)
}

fn coupon_object(shapes: &Shapes, id: &str, form: &[(String, String)]) -> Value {
    let mut c = shapes.coupon.clone();
    c["id"] = json!(id);
    c["object"] = json!("coupon");
    c["created"] = json!(now());
    c["livemode"] = json!(false);
    c["name"] = text(form, "name");
    c["percent_off"] = get(form, "percent_off").and_then(|v| v.parse::<f64>().ok()).map_or(Value::Null, Value::from);
    c["amount_off"] = int(form, "amount_off");
    c["currency"] = text(form, "currency");
    c["duration"] = text(form, "duration");
    c["duration_in_months"] = int(form, "duration_in_months");
    c["max_redemptions"] = int(form, "max_redemptions");
    c["redeem_by"] = int(form, "redeem_by");
    c["metadata"] = metadata(form);
    c["times_redeemed"] = json!(0);
    c["valid"] = json!(true);
    c
}

fn promotion_code_object(shapes: &Shapes, id: &str, form: &[(String, String)]) -> Value {
    let mut p = shapes.promotion_code.clone();
    p["id"] = json!(id);
    p["object"] = json!("promotion_code");
    p["active"] = json!(true);
    p["code"] = text(form, "code");
    p["created"] = json!(now());
    p["livemode"] = json!(false);
    p["customer"] = text(form, "customer");
    p["expires_at"] = int(form, "expires_at");
    p["max_redemptions"] = int(form, "max_redemptions");
    p["metadata"] = metadata(form);
    p["promotion"] = json!({ "type": get(form, "promotion[type]").unwrap_or("coupon"), "coupon": text(form, "promotion[coupon]") });
    let mut restrictions = match p.get("restrictions") {
        Some(Value::Object(r)) => r.clone(),
        _ => Map::new(),
    };
    restrictions.insert("first_time_transaction".into(), json!(get(form, "restrictions[first_time_transaction]") == Some("true")));
    restrictions.insert("minimum_amount".into(), int(form, "restrictions[minimum_amount]"));
    restrictions.insert("minimum_amount_currency".into(), text(form, "restrictions[minimum_amount_currency]"));
    p["restrictions"] = Value::Object(restrictions);
    p["times_redeemed"] = json!(0);
    p
}

/// Validates like Stripe would, then creates the coupon on `account`.
fn create_coupon(state: &mut State, shapes: &Shapes, account: &str, form: &[(String, String)]) -> (u16, String) {
    let duration = get(form, "duration");
    if !matches!(duration, Some("once" | "repeating" | "forever")) {
        return stripe_error(400, Some("parameter_invalid_empty"), Some("duration"), "Invalid duration");
    }
    if (duration == Some("repeating")) != get(form, "duration_in_months").is_some() {
        return stripe_error(400, Some("parameter_invalid_integer"), Some("duration_in_months"), "duration_in_months goes with repeating");
    }
    match (get(form, "percent_off"), get(form, "amount_off"), get(form, "currency")) {
        (Some(_), None, None) | (None, Some(_), Some(_)) => {}
        _ => return stripe_error(400, Some("parameter_missing"), Some("percent_off"), "Pass percent_off, or amount_off with currency"),
    }
    if get(form, "name").is_some_and(|n| n.chars().count() > 40) {
        return stripe_error(400, Some("parameter_invalid_string_too_long"), Some("name"), "Coupon names are at most 40 characters");
    }
    let id = state.new_id("DBLCPN");
    let coupon = coupon_object(shapes, &id, form);
    state.coupons.insert(id, (account.to_owned(), coupon.clone()));
    (200, coupon.to_string())
}

/// Validates like Stripe would (the coupon must be on the same account; an active code is
/// unique on the account regardless of case), then creates the promotion code.
fn create_promotion_code(state: &mut State, shapes: &Shapes, account: &str, form: &[(String, String)]) -> (u16, String) {
    if get(form, "promotion[type]") != Some("coupon") {
        return stripe_error(400, Some("parameter_missing"), Some("promotion[type]"), "Missing required param: promotion[type].");
    }
    let Some(coupon) = get(form, "promotion[coupon]") else {
        return stripe_error(400, Some("parameter_missing"), Some("promotion[coupon]"), "Missing required param: promotion[coupon].");
    };
    let on_account = state.coupons.get(coupon).is_some_and(|(a, _)| a == account);
    if !on_account {
        return stripe_error(400, Some("resource_missing"), Some("promotion[coupon]"), &format!("No such coupon: '{coupon}'"));
    }
    let Some(code) = get(form, "code") else {
        return stripe_error(400, Some("parameter_missing"), Some("code"), "Rekomi always sends a code");
    };
    let taken = state
        .promotion_codes
        .values()
        .any(|(a, p)| a == account && p["active"] == json!(true) && p["code"].as_str().is_some_and(|c| c.eq_ignore_ascii_case(code)));
    if taken {
        return stripe_error(
            400,
            Some("resource_already_exists"),
            Some("code"),
            &format!("An active promotion code with `code: {code}` already exists."),
        );
    }
    if get(form, "restrictions[minimum_amount]").is_some() != get(form, "restrictions[minimum_amount_currency]").is_some() {
        return stripe_error(
            400,
            Some("parameter_missing"),
            Some("restrictions[minimum_amount_currency]"),
            "minimum amount needs a currency",
        );
    }
    let id = state.new_id("promo_dbl");
    let promo = promotion_code_object(shapes, &id, form);
    state.promotion_codes.insert(id, (account.to_owned(), promo.clone()));
    (200, promo.to_string())
}

fn update_promotion_code(state: &mut State, account: &str, id: &str, form: &[(String, String)]) -> (u16, String) {
    let Some((_, promo)) = state.promotion_codes.get_mut(id).filter(|(a, _)| a == account) else {
        return no_such("promotion code", id, Some("id"));
    };
    match get(form, "active") {
        Some("false") => promo["active"] = json!(false),
        Some("true") => promo["active"] = json!(true),
        _ => {}
    }
    if form.iter().any(|(k, _)| k.starts_with("metadata[")) {
        promo["metadata"] = metadata(form);
    }
    (200, promo.to_string())
}

fn delete_coupon(state: &mut State, account: &str, id: &str) -> (u16, String) {
    let on_account = state.coupons.get(id).is_some_and(|(a, _)| a == account);
    if !on_account {
        return no_such("coupon", id, Some("id"));
    }
    state.coupons.remove(id);
    (200, json!({ "id": id, "object": "coupon", "deleted": true }).to_string())
}

/// How a request asked for discounts: ids (no expansion), expanded discounts, or expanded
/// discounts with their promotion codes expanded too.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DiscountExpansion {
    Ids,
    Discounts,
    PromotionCodes,
}

fn discount_expansion(request: &Recorded) -> DiscountExpansion {
    let expand = request.query_values("expand[]");
    if expand.iter().any(|e| e == "discounts.promotion_code") {
        DiscountExpansion::PromotionCodes
    } else if expand.iter().any(|e| e == "discounts") {
        DiscountExpansion::Discounts
    } else {
        DiscountExpansion::Ids
    }
}

/// The `discounts` of an invoice or subscription as Stripe renders them for `expansion`.
fn discounts_value(
    state: &State,
    shapes: &Shapes,
    account: &str,
    parent: (&str, &str),
    discounts: &[ScriptedDiscount],
    expansion: DiscountExpansion,
) -> Value {
    let rendered = discounts.iter().map(|scripted| {
        if expansion == DiscountExpansion::Ids {
            return json!(scripted.id);
        }
        let promo = scripted.promotion_code.as_ref().and_then(|id| state.promotion_codes.get(id).filter(|(a, _)| a == account));
        let mut d = shapes.discount.clone();
        d["id"] = json!(scripted.id);
        d["object"] = json!("discount");
        d["source"] = json!({ "type": "coupon", "coupon": promo.map_or(Value::Null, |(_, p)| p["promotion"]["coupon"].clone()) });
        d["start"] = json!(now());
        d["end"] = Value::Null;
        d["customer"] = Value::Null;
        d["checkout_session"] = Value::Null;
        d["invoice"] = if parent.0 == "invoice" { json!(parent.1) } else { Value::Null };
        d["subscription"] = if parent.0 == "subscription" { json!(parent.1) } else { Value::Null };
        d["promotion_code"] = match (&scripted.promotion_code, promo, expansion) {
            (None, _, _) => Value::Null,
            (Some(_), Some((_, p)), DiscountExpansion::PromotionCodes) => p.clone(),
            (Some(id), _, _) => json!(id),
        };
        d
    });
    Value::Array(rendered.collect())
}

fn retrieve_invoice(state: &State, shapes: &Shapes, request: &Recorded, id: &str) -> (u16, String) {
    let account = request.account();
    let Some((_, discounts)) = state.invoices.get(id).filter(|(a, _)| a == account) else {
        return no_such("invoice", id, Some("invoice"));
    };
    let mut invoice = shapes.invoice.clone();
    invoice["id"] = json!(id);
    invoice["object"] = json!("invoice");
    invoice["livemode"] = json!(false);
    invoice["status"] = json!("paid");
    invoice["discounts"] = discounts_value(state, shapes, account, ("invoice", id), discounts, discount_expansion(request));
    (200, invoice.to_string())
}

fn retrieve_subscription(state: &State, shapes: &Shapes, request: &Recorded, id: &str) -> (u16, String) {
    let account = request.account();
    let Some((_, discounts)) = state.subscriptions.get(id).filter(|(a, _)| a == account) else {
        return no_such("subscription", id, Some("subscription"));
    };
    let mut subscription = shapes.subscription.clone();
    subscription["id"] = json!(id);
    subscription["object"] = json!("subscription");
    subscription["livemode"] = json!(false);
    subscription["discounts"] = discounts_value(state, shapes, account, ("subscription", id), discounts, discount_expansion(request));
    (200, subscription.to_string())
}

/// `GET /v1/customers/{id}`: every customer exists; its metadata is what the test scripted for
/// this account, else empty.
fn retrieve_customer(state: &State, shapes: &Shapes, request: &Recorded, id: &str) -> (u16, String) {
    let scripted = state.customers.get(id).filter(|(a, _)| a == request.account()).map(|(_, m)| m.clone());
    let mut customer = shapes.customer.clone();
    customer["id"] = json!(id);
    customer["object"] = json!("customer");
    customer["livemode"] = json!(false);
    customer["metadata"] = scripted.unwrap_or_else(|| json!({}));
    (200, customer.to_string())
}

/// `GET /v1/invoice_payments`: filtering by payment takes `payment[type]` and the matching id;
/// only `payment_intent` filters are scripted (others list nothing).
fn list_invoice_payments(state: &State, shapes: &Shapes, request: &Recorded) -> (u16, String) {
    let query = request.query();
    let (kind, intent) = (get(&query, "payment[type]"), get(&query, "payment[payment_intent]"));
    if kind.is_some_and(|k| k != "payment_intent" && k != "payment_record") {
        return stripe_error(400, Some("parameter_invalid_empty"), Some("payment[type]"), "Invalid payment[type]");
    }
    if kind == Some("payment_intent") && intent.is_none() {
        return stripe_error(400, Some("parameter_missing"), Some("payment[payment_intent]"), "Missing payment[payment_intent]");
    }
    // Listing an invoice's payments (`invoice=in_…`) finds the scripted payment intents of it.
    let by_invoice = get(&query, "invoice").and_then(|wanted| {
        state
            .invoice_payments
            .iter()
            .find(|(_, (a, invoice))| a == request.account() && invoice == wanted)
            .map(|(pi, (_, invoice))| (pi.as_str(), invoice))
    });
    let found = intent
        .and_then(|pi| state.invoice_payments.get(pi).filter(|(a, _)| a == request.account()).map(|(_, invoice)| (pi, invoice)))
        .or(by_invoice);
    let data: Vec<Value> = found
        .map(|(pi, invoice)| {
            let mut payment = shapes.invoice_payment.clone();
            payment["id"] = json!(format!("inpay_dbl_{pi}"));
            payment["object"] = json!("invoice_payment");
            payment["livemode"] = json!(false);
            payment["currency"] = json!("usd");
            payment["status"] = json!("paid");
            payment["invoice"] = json!(invoice);
            payment["payment"] = json!({ "type": "payment_intent", "payment_intent": pi });
            payment
        })
        .into_iter()
        .collect();
    (200, json!({ "object": "list", "url": "/v1/invoice_payments", "has_more": false, "data": data }).to_string())
}

/// `GET /v1/payment_intents/{id}`: a succeeded intent of a scripted invoice payment, its latest
/// charge and that charge's balance transaction expanded when asked (the scripted settlement's
/// currency and rate, else the charge's own currency with no rate).
fn retrieve_payment_intent(state: &State, request: &Recorded, id: &str) -> (u16, String) {
    let Some((_, invoice)) = state.invoice_payments.get(id).filter(|(a, _)| a == request.account()) else {
        return no_such("payment_intent", id, Some("intent"));
    };
    let expand = request.query_values("expand[]");
    let charge_id = format!("ch_dbl_{}", id.trim_start_matches("pi_"));
    let (currency, rate) = state.settlements.get(id).map_or(("usd".to_owned(), Value::Null), |(c, r)| (c.clone(), json!(r)));
    let balance_transaction = json!({
        "id": format!("txn_dbl_{}", id.trim_start_matches("pi_")), "object": "balance_transaction", "currency": currency,
        "exchange_rate": rate, "type": "charge", "status": "available",
    });
    let latest_charge = if expand.iter().any(|e| e == "latest_charge" || e.starts_with("latest_charge.")) {
        let balance = if expand.iter().any(|e| e == "latest_charge.balance_transaction") {
            balance_transaction
        } else {
            balance_transaction["id"].clone()
        };
        json!({ "id": charge_id, "object": "charge", "payment_intent": id, "balance_transaction": balance })
    } else {
        json!(charge_id)
    };
    let intent = json!({ "id": id, "object": "payment_intent", "status": "succeeded", "invoice": invoice, "latest_charge": latest_charge, "livemode": false });
    (200, intent.to_string())
}

/// Stripe's refusal of the first of `required` that `form` lacks.
fn missing_param(form: &[(String, String)], required: &[&str]) -> Option<(u16, String)> {
    let param = required.iter().find(|param| get(form, param).is_none())?;
    Some(stripe_error(400, Some("parameter_missing"), Some(param), &format!("Missing required param: {param}.")))
}

/// Validates like Stripe would (a type; an Express account must request a capability, and
/// Rekomi's need `transfers`), then makes the account on `account`, which becomes its platform.
fn create_account(state: &mut State, shapes: &Shapes, account: &str, form: &[(String, String)]) -> (u16, String) {
    let Some(kind) = get(form, "type") else {
        return stripe_error(400, Some("parameter_missing"), Some("type"), "Missing required param: type.");
    };
    if !matches!(kind, "express" | "standard" | "custom") {
        return stripe_error(
            400,
            Some("parameter_invalid_empty"),
            Some("type"),
            "Invalid type: must be one of custom, express, or standard",
        );
    }
    let transfers_requested = get(form, "capabilities[transfers][requested]") == Some("true");
    if kind == "express" && !transfers_requested {
        return stripe_error(
            400,
            Some("parameter_missing"),
            Some("capabilities"),
            "Express accounts must request the `transfers` capability (or `card_payments`).",
        );
    }
    let id = state.new_id("acct_dbl");
    let mut a = shapes.account.clone();
    a["id"] = json!(id);
    a["object"] = json!("account");
    a["type"] = json!(kind);
    a["created"] = json!(now());
    a["email"] = text(form, "email");
    a["metadata"] = metadata(form);
    a["charges_enabled"] = json!(false);
    a["payouts_enabled"] = json!(false);
    a["details_submitted"] = json!(false);
    a["capabilities"] = if transfers_requested { json!({ "transfers": "inactive" }) } else { json!({}) };
    a["external_accounts"] =
        json!({ "object": "list", "data": [], "has_more": false, "url": format!("/v1/accounts/{id}/external_accounts") });
    state.connected_accounts.insert(id, (account.to_owned(), a.clone()));
    (200, a.to_string())
}

fn retrieve_account(state: &State, account: &str, id: &str) -> (u16, String) {
    match state.connected_accounts.get(id).filter(|(platform, _)| platform == account) {
        Some((_, a)) => (200, a.to_string()),
        None => no_such("account", id, Some("account")),
    }
}

/// An onboarding (or update) link for an account of `account`'s; valid five minutes.
fn create_account_link(state: &mut State, shapes: &Shapes, account: &str, form: &[(String, String)]) -> (u16, String) {
    if let Some(missing) = missing_param(form, &["account", "refresh_url", "return_url", "type"]) {
        return missing;
    }
    if !matches!(get(form, "type"), Some("account_onboarding" | "account_update")) {
        return stripe_error(
            400,
            Some("parameter_invalid_empty"),
            Some("type"),
            "Invalid type: must be account_onboarding or account_update",
        );
    }
    let connected = get(form, "account").unwrap_or_default();
    let on_platform = state.connected_accounts.get(connected).is_some_and(|(platform, _)| platform == account);
    if !on_platform {
        return no_such("account", connected, Some("account"));
    }
    state.next_id += 1;
    let created = now();
    let mut link = shapes.account_link.clone();
    link["object"] = json!("account_link");
    link["url"] = json!(format!("https://connect.stripe.com/setup/e/{connected}/{}", state.next_id));
    link["created"] = json!(created);
    link["expires_at"] = json!(created + 300);
    (200, link.to_string())
}

/// Validates like Stripe would (amount, currency and a destination that exists on this
/// platform and can be paid), then moves the money: a transfer `tr_dbl…` on `account`.
fn create_transfer(state: &mut State, shapes: &Shapes, account: &str, form: &[(String, String)]) -> (u16, String) {
    if let Some(missing) = missing_param(form, &["amount", "currency", "destination"]) {
        return missing;
    }
    let Some(amount) = get(form, "amount").and_then(|a| a.parse::<i64>().ok()).filter(|a| *a > 0) else {
        return stripe_error(400, Some("parameter_invalid_integer"), Some("amount"), "This value must be greater than or equal to 1.");
    };
    let destination = get(form, "destination").unwrap_or_default();
    let Some((_, connected)) = state.connected_accounts.get(destination).filter(|(platform, _)| platform == account) else {
        return stripe_error(400, Some("account_invalid"), Some("destination"), &format!("No such destination: '{destination}'"));
    };
    if connected["payouts_enabled"] != json!(true) {
        return stripe_error(
            400,
            Some("insufficient_capabilities_for_transfer"),
            Some("destination"),
            "Your destination account needs to have at least one of the following capabilities enabled: transfers, crypto_transfers, legacy_payments",
        );
    }
    let id = state.new_id("tr_dbl");
    let suffix = id.trim_start_matches("tr_");
    let mut t = shapes.transfer.clone();
    t["id"] = json!(id);
    t["object"] = json!("transfer");
    t["amount"] = json!(amount);
    t["amount_reversed"] = json!(0);
    t["balance_transaction"] = json!(format!("txn_{suffix}"));
    t["created"] = json!(now());
    t["currency"] = json!(get(form, "currency").unwrap_or_default().to_ascii_lowercase());
    t["description"] = text(form, "description");
    t["destination"] = json!(destination);
    t["destination_payment"] = json!(format!("py_{suffix}"));
    t["livemode"] = json!(false);
    t["metadata"] = metadata(form);
    t["reversals"] = json!({ "object": "list", "data": [], "has_more": false, "url": format!("/v1/transfers/{id}/reversals") });
    t["reversed"] = json!(false);
    t["source_transaction"] = Value::Null;
    t["transfer_group"] = text(form, "transfer_group");
    state.transfers.insert(id, (account.to_owned(), t.clone()));
    (200, t.to_string())
}

/// `GET /v1/transfers`: the account's transfers, newest first, filtered by `transfer_group`
/// and `destination` when given, at most `limit` (default 10).
fn list_transfers(state: &State, request: &Recorded) -> (u16, String) {
    let query = request.query();
    let limit = match get(&query, "limit").map(str::parse::<usize>) {
        None => 10,
        Some(Ok(limit @ 1..=100)) => limit,
        Some(_) => return stripe_error(400, Some("parameter_invalid_integer"), Some("limit"), "limit must be between 1 and 100"),
    };
    let (group, destination) = (get(&query, "transfer_group"), get(&query, "destination"));
    let matching: Vec<&Value> = state
        .transfers
        .values()
        .rev()
        .filter(|(account, t)| {
            account == request.account()
                && group.is_none_or(|g| t["transfer_group"].as_str() == Some(g))
                && destination.is_none_or(|d| t["destination"].as_str() == Some(d))
        })
        .map(|(_, t)| t)
        .collect();
    let data: Vec<&Value> = matching.iter().copied().take(limit).collect();
    (200, json!({ "object": "list", "url": "/v1/transfers", "has_more": matching.len() > limit, "data": data }).to_string())
}

fn route(state: &mut State, shapes: &Shapes, request: &Recorded) -> (u16, String) {
    let authorized = request.header("authorization").is_some_and(|v| v.strip_prefix("Bearer ") == Some(SECRET_KEY));
    if !authorized {
        return (401, json!({"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}).to_string());
    }
    let path = request.path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (form, account) = (&request.form, request.account());
    match (request.method.as_str(), segments.as_slice()) {
        ("POST", ["v1", "coupons"]) => create_coupon(state, shapes, account, form),
        ("GET", ["v1", "coupons", id]) => match state.coupons.get(*id).filter(|(a, _)| a == account) {
            Some((_, c)) => (200, c.to_string()),
            None => no_such("coupon", id, Some("id")),
        },
        ("DELETE", ["v1", "coupons", id]) => delete_coupon(state, account, id),
        ("POST", ["v1", "promotion_codes"]) => create_promotion_code(state, shapes, account, form),
        ("GET", ["v1", "promotion_codes", id]) => match state.promotion_codes.get(*id).filter(|(a, _)| a == account) {
            Some((_, p)) => (200, p.to_string()),
            None => no_such("promotion code", id, Some("id")),
        },
        ("POST", ["v1", "promotion_codes", id]) => update_promotion_code(state, account, id, form),
        ("GET", ["v1", "invoices", id]) => retrieve_invoice(state, shapes, request, id),
        ("GET", ["v1", "subscriptions", id]) => retrieve_subscription(state, shapes, request, id),
        ("GET", ["v1", "invoice_payments"]) => list_invoice_payments(state, shapes, request),
        ("GET", ["v1", "customers", id]) => retrieve_customer(state, shapes, request, id),
        ("GET", ["v1", "payment_intents", id]) => retrieve_payment_intent(state, request, id),
        ("POST", ["v1", "accounts"]) => create_account(state, shapes, account, form),
        ("GET", ["v1", "accounts", id]) => retrieve_account(state, account, id),
        ("POST", ["v1", "account_links"]) => create_account_link(state, shapes, account, form),
        ("POST", ["v1", "transfers"]) => create_transfer(state, shapes, account, form),
        ("GET", ["v1", "transfers"]) => list_transfers(state, request),
        ("GET", ["v1", "transfers", id]) => match state.transfers.get(*id).filter(|(a, _)| a == account) {
            Some((_, t)) => (200, t.to_string()),
            None => no_such("transfer", id, Some("id")),
        },
        _ => stripe_error(404, None, None, &format!("Unrecognized request URL ({} {path}).", request.method)),
    }
}

/// The answer to `request` (status, body), or `None` when it is carried out but its answer is
/// lost ([`StripeDouble::lose_next_transfer_answers`]).
fn answer(state: &Mutex<State>, shapes: &Shapes, request: Recorded) -> Option<(u16, String)> {
    let mut state = lock(state);
    state.requests.push(request.clone());
    if let Some(fault) = state.faults.pop_front() {
        return Some(fault);
    }
    let key = request.idempotency_key().map(|k| format!("{} {} {k}", request.account(), request.method));
    let replayed = key.as_ref().and_then(|k| state.replies.get(k)).cloned();
    let reply = replayed.unwrap_or_else(|| {
        let reply = route(&mut state, shapes, &request);
        // Stripe does not store answers to requests that failed validation before running.
        if let (Some(key), true) = (key, reply.0 < 400 || reply.0 >= 500) {
            state.replies.insert(key, reply.clone());
        }
        reply
    });
    let transfer_creation = request.method == "POST" && request.path_only() == "/v1/transfers";
    if transfer_creation && state.lost_transfer_answers > 0 {
        state.lost_transfer_answers -= 1;
        return None;
    }
    Some(reply)
}

// ---- HTTP/1.1 ----------------------------------------------------------------------------

async fn serve(mut stream: TcpStream, state: &Mutex<State>, shapes: &Shapes) {
    let Some(request) = read_request(&mut stream).await else { return };
    let Some((status, body)) = answer(state, shapes, request) else {
        // The work is done; the client only sees the connection close before any answer.
        let _ = stream.shutdown().await;
        return;
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Other",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nrequest-id: req_e2e_double\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> =
        lines.filter_map(|line| line.split_once(':')).map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned())).collect();
    let length = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse::<usize>().ok()).unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    let form = decode_form(&String::from_utf8_lossy(&body));
    Some(Recorded { method, path, headers, form })
}

/// `application/x-www-form-urlencoded` decoding.
pub fn decode_form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn post(double: &StripeDouble, path: &str, key: Option<&str>, form: &str) -> (u16, Value) {
        let mut request = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("{}{}", double.url(), path.trim_start_matches('/')))
            .bearer_auth(SECRET_KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned());
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    #[tokio::test]
    async fn the_double_keeps_state_per_account_and_replays_idempotent_requests() {
        let double = StripeDouble::start().await.expect("the double always starts");
        let coupon_form = "duration=once&percent_off=20&metadata%5Brekomi_id%5D=abc";
        let (status, first) = post(&double, "/v1/coupons", Some("k1"), coupon_form).await;
        assert_eq!(status, 200, "{first}");
        assert_eq!((first["object"].clone(), first["percent_off"].clone()), (json!("coupon"), json!(20.0)));
        assert_eq!(first["metadata"], json!({"rekomi_id": "abc"}));
        let (_, replay) = post(&double, "/v1/coupons", Some("k1"), coupon_form).await;
        assert_eq!(replay, first, "same key, same object");
        let (_, other) = post(&double, "/v1/coupons", Some("k2"), coupon_form).await;
        assert_ne!(other["id"], first["id"]);

        let coupon = first["id"].as_str().unwrap();
        let promo_form = format!("code=SARAH20&promotion%5Btype%5D=coupon&promotion%5Bcoupon%5D={coupon}");
        let (status, promo) = post(&double, "/v1/promotion_codes", Some("p1"), &promo_form).await;
        assert_eq!(status, 200, "{promo}");
        assert_eq!((promo["active"].clone(), promo["promotion"]["coupon"].clone()), (json!(true), json!(coupon)));
        let (status, taken) = post(&double, "/v1/promotion_codes", Some("p2"), &promo_form.replace("SARAH20", "sarah20")).await;
        assert_eq!(status, 400);
        assert_eq!(taken["error"]["code"], "resource_already_exists");
        assert_eq!(taken["error"]["param"], "code");
        let promo_id = promo["id"].as_str().unwrap();
        let (status, inactive) = post(&double, &format!("/v1/promotion_codes/{promo_id}"), Some("p3"), "active=false").await;
        assert_eq!((status, inactive["active"].clone()), (200, json!(false)));
        // Inactive codes free the code text.
        assert_eq!(post(&double, "/v1/promotion_codes", Some("p4"), &promo_form).await.0, 200);

        let base = double.url();
        let delete = |id: String| {
            let url = format!("{base}v1/coupons/{id}");
            async move {
                let client = reqwest::Client::builder().no_proxy().build().unwrap();
                let response = client.delete(url).bearer_auth(SECRET_KEY).send().await.unwrap();
                (response.status().as_u16(), response.json::<Value>().await.unwrap())
            }
        };
        assert_eq!(delete(coupon.to_owned()).await, (200, json!({"id": coupon, "object": "coupon", "deleted": true})));
        assert_eq!(delete(coupon.to_owned()).await.0, 404);
        assert!(double.coupon(coupon).is_none());
        assert_eq!(double.requests().len(), 9);
        assert_eq!(double.requests()[0].param("metadata[rekomi_id]"), Some("abc"));
    }

    async fn get(double: &StripeDouble, path: &str, account: Option<&str>) -> (u16, Value) {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut request = client.get(format!("{}{}", double.url(), path.trim_start_matches('/'))).bearer_auth(SECRET_KEY);
        if let Some(account) = account {
            request = request.header("stripe-account", account);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    #[tokio::test]
    async fn scripted_invoices_subscriptions_and_invoice_payments_are_answered_as_stripe_would() {
        let double = StripeDouble::start().await.expect("the double always starts");
        let promo = double.seed_promotion_code("SEEDED10");
        let plain = ScriptedDiscount { id: "di_plain".to_owned(), promotion_code: None };
        double.script_invoice("in_1", vec![ScriptedDiscount::code("di_code", &promo), plain]);
        double.script_subscription("sub_1", vec![ScriptedDiscount::code("di_code", &promo)]);
        double.script_invoice_payment("pi_1", "in_1");

        // Without expansion the discounts are ids; `expand[]=discounts` expands the discounts
        // but leaves their promotion codes as ids; `discounts.promotion_code` expands both.
        let (status, invoice) = get(&double, "/v1/invoices/in_1", None).await;
        assert_eq!((status, invoice["id"].clone(), invoice["discounts"].clone()), (200, json!("in_1"), json!(["di_code", "di_plain"])));
        let (_, invoice) = get(&double, "/v1/invoices/in_1?expand%5B%5D=discounts", None).await;
        assert_eq!(invoice["discounts"][0]["promotion_code"], json!(promo));
        let (_, invoice) = get(&double, "/v1/invoices/in_1?expand%5B%5D=discounts.promotion_code", None).await;
        let discounts = invoice["discounts"].as_array().unwrap();
        assert_eq!((discounts[0]["id"].clone(), discounts[0]["object"].clone()), (json!("di_code"), json!("discount")));
        assert_eq!(discounts[0]["promotion_code"]["id"], json!(promo));
        assert_eq!(discounts[0]["promotion_code"]["code"], "SEEDED10");
        assert!(discounts[0]["source"]["coupon"].as_str().is_some_and(|c| c.starts_with("DBLSEED")), "{invoice}");
        assert_eq!(discounts[0]["invoice"], "in_1");
        assert_eq!(discounts[1]["promotion_code"], Value::Null);

        let (status, subscription) = get(&double, "/v1/subscriptions/sub_1?expand[]=discounts.promotion_code", None).await;
        assert_eq!(status, 200);
        assert_eq!(subscription["discounts"][0]["promotion_code"]["code"], "SEEDED10");
        assert_eq!(subscription["discounts"][0]["subscription"], "sub_1");

        // Unscripted objects, and objects of another account, do not exist.
        assert_eq!(get(&double, "/v1/invoices/in_2", None).await.0, 404);
        let (status, missing) = get(&double, "/v1/invoices/in_1", Some("acct_other")).await;
        assert_eq!((status, missing["error"]["code"].clone()), (404, json!("resource_missing")));
        assert_eq!(get(&double, "/v1/subscriptions/sub_2", None).await.0, 404);

        let (status, list) =
            get(&double, "/v1/invoice_payments?payment%5Btype%5D=payment_intent&payment%5Bpayment_intent%5D=pi_1", None).await;
        assert_eq!((status, list["object"].clone()), (200, json!("list")));
        assert_eq!(list["data"][0]["invoice"], "in_1");
        assert_eq!(list["data"][0]["payment"], json!({ "type": "payment_intent", "payment_intent": "pi_1" }));
        let (_, none) = get(&double, "/v1/invoice_payments?payment%5Btype%5D=payment_intent&payment%5Bpayment_intent%5D=pi_2", None).await;
        assert_eq!(none["data"], json!([]));
        assert_eq!(get(&double, "/v1/invoice_payments?payment%5Btype%5D=payment_intent", None).await.0, 400);

        let reads = double.reads_of("/v1/invoices/in_1");
        assert_eq!(reads.len(), 4);
        assert_eq!(reads[2].query_values("expand[]"), vec!["discounts.promotion_code".to_owned()]);
        assert_eq!(reads[3].account(), "acct_other");

        // Every customer exists; its metadata is the scripted one on its account, else empty.
        double.script_customer_metadata("cus_1", json!({ "rekomi_ref": "bob-links" }));
        let (status, customer) = get(&double, "/v1/customers/cus_1", None).await;
        assert_eq!((status, customer["id"].clone(), customer["object"].clone()), (200, json!("cus_1"), json!("customer")));
        assert_eq!(customer["metadata"], json!({ "rekomi_ref": "bob-links" }));
        assert_eq!(get(&double, "/v1/customers/cus_1", Some("acct_other")).await.1["metadata"], json!({}));
        assert_eq!(get(&double, "/v1/customers/cus_2", None).await.1["metadata"], json!({}));
    }

    #[tokio::test]
    async fn the_double_plays_the_connect_platform_for_accounts_links_and_transfers() {
        let double = StripeDouble::start().await.expect("the double always starts");
        let account_form = "type=express&email=sarah%2Bpay%40creators.example&capabilities%5Btransfers%5D%5Brequested%5D=true&metadata%5Brekomi_affiliate_id%5D=aff_1";
        let (status, account) = post(&double, "/v1/accounts", Some("a1"), account_form).await;
        assert_eq!(status, 200, "{account}");
        let id = account["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("acct_dbl"), "{id}");
        assert_eq!((account["object"].clone(), account["type"].clone()), (json!("account"), json!("express")));
        assert_eq!((account["payouts_enabled"].clone(), account["details_submitted"].clone()), (json!(false), json!(false)));
        assert_eq!(
            (account["email"].clone(), account["metadata"].clone()),
            (json!("sarah+pay@creators.example"), json!({"rekomi_affiliate_id": "aff_1"}))
        );
        assert_eq!(post(&double, "/v1/accounts", Some("a1"), account_form).await.1, account, "same key, same account");
        let (status, refused) = post(&double, "/v1/accounts", Some("a2"), "type=express&email=x%40y.example").await;
        assert_eq!((status, refused["error"]["param"].clone()), (400, json!("capabilities")));

        assert_eq!(get(&double, &format!("/v1/accounts/{id}"), None).await, (200, account.clone()));
        let (status, missing) = get(&double, "/v1/accounts/acct_unknown", None).await;
        assert_eq!((status, missing["error"]["code"].clone()), (404, json!("resource_missing")));
        assert_eq!(get(&double, &format!("/v1/accounts/{id}"), Some("acct_other")).await.0, 404, "only its platform sees it");

        let link_form = format!(
            "account={id}&refresh_url=https%3A%2F%2Fapp.example%2Fr&return_url=https%3A%2F%2Fapp.example%2Fd&type=account_onboarding"
        );
        let (status, link) = post(&double, "/v1/account_links", None, &link_form).await;
        assert_eq!((status, link["object"].clone()), (200, json!("account_link")), "{link}");
        assert!(link["url"].as_str().unwrap().starts_with(&format!("https://connect.stripe.com/setup/e/{id}/")), "{link}");
        assert_eq!(link["expires_at"].as_i64().unwrap() - link["created"].as_i64().unwrap(), 300);
        assert_eq!(post(&double, "/v1/account_links", None, &link_form.replace(&id, "acct_unknown")).await.0, 404);

        // Nobody has onboarded yet: the account cannot be paid.
        let transfer_form =
            format!("amount=4000&currency=usd&destination={id}&transfer_group=rekomi_payout_1&metadata%5Brekomi_payout_id%5D=p1");
        let (status, refused) = post(&double, "/v1/transfers", Some("t1"), &transfer_form).await;
        assert_eq!((status, refused["error"]["code"].clone()), (400, json!("insufficient_capabilities_for_transfer")));
        let (status, refused) = post(&double, "/v1/transfers", Some("t0"), &transfer_form.replace(&id, "acct_unknown")).await;
        assert_eq!((status, refused["error"]["code"].clone()), (400, json!("account_invalid")));
        let (status, refused) = post(&double, "/v1/transfers", Some("t0"), &transfer_form.replace("amount=4000&", "")).await;
        assert_eq!(
            (status, refused["error"]["code"].clone(), refused["error"]["param"].clone()),
            (400, json!("parameter_missing"), json!("amount"))
        );
        assert!(double.transfers().is_empty());

        let enabled = double.enable_payouts(&id, true).unwrap();
        assert_eq!((enabled["payouts_enabled"].clone(), enabled["details_submitted"].clone()), (json!(true), json!(true)));
        assert_eq!(get(&double, &format!("/v1/accounts/{id}"), None).await.1["payouts_enabled"], json!(true));
        assert!(double.enable_payouts("acct_unknown", true).is_none());

        // The refusal was not stored under its key: the same key now pays.
        let (status, transfer) = post(&double, "/v1/transfers", Some("t1"), &transfer_form).await;
        assert_eq!(status, 200, "{transfer}");
        assert!(transfer["id"].as_str().unwrap().starts_with("tr_dbl"), "{transfer}");
        assert_eq!(
            (transfer["amount"].clone(), transfer["currency"].clone(), transfer["destination"].clone()),
            (json!(4000), json!("usd"), json!(id))
        );
        assert_eq!(
            (transfer["transfer_group"].clone(), transfer["metadata"].clone()),
            (json!("rekomi_payout_1"), json!({"rekomi_payout_id": "p1"}))
        );
        assert_eq!((transfer["reversed"].clone(), transfer["amount_reversed"].clone()), (json!(false), json!(0)));
        assert_eq!(post(&double, "/v1/transfers", Some("t1"), &transfer_form).await.1, transfer, "same key, same transfer");
        assert_eq!(double.transfers(), vec![transfer.clone()]);

        let (status, list) = get(&double, "/v1/transfers?transfer_group=rekomi_payout_1&limit=10", None).await;
        assert_eq!(status, 200);
        assert_eq!(list, json!({"object": "list", "url": "/v1/transfers", "has_more": false, "data": [transfer.clone()]}));
        assert_eq!(get(&double, "/v1/transfers?transfer_group=rekomi_payout_2", None).await.1["data"], json!([]));

        // A lost answer: the transfer is made, the client sees the connection close; the same
        // key then replays it.
        double.lose_next_transfer_answers(1);
        let lost = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("{}v1/transfers", double.url()))
            .bearer_auth(SECRET_KEY)
            .header("idempotency-key", "t2")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(transfer_form.replace("rekomi_payout_1", "rekomi_payout_2"))
            .send()
            .await;
        assert!(lost.is_err(), "{lost:?}");
        let made = double.transfers();
        assert_eq!(made.len(), 2);
        let (status, replay) =
            post(&double, "/v1/transfers", Some("t2"), &transfer_form.replace("rekomi_payout_1", "rekomi_payout_2")).await;
        assert_eq!((status, replay.clone()), (200, made[1].clone()));

        let reversed = double.reverse_transfer(transfer["id"].as_str().unwrap()).unwrap();
        assert_eq!((reversed["reversed"].clone(), reversed["amount_reversed"].clone()), (json!(true), json!(4000)));
        assert_eq!(reversed["reversals"]["data"][0]["object"], "transfer_reversal");
        assert_eq!(get(&double, "/v1/transfers?transfer_group=rekomi_payout_1", None).await.1["data"][0]["reversed"], json!(true));
        assert!(double.reverse_transfer("tr_unknown").is_none());
        let (_, all) = get(&double, "/v1/transfers?limit=1", None).await;
        assert_eq!((all["data"][0]["id"].clone(), all["has_more"].clone()), (replay["id"].clone(), json!(true)), "newest first");
    }

    #[test]
    fn form_bodies_decode_brackets_plus_and_escapes() {
        let form = decode_form("metadata%5Brekomi_id%5D=abc&name=Summer+20%25+off&code=SARAH20&bad=%zz");
        assert_eq!(
            form,
            vec![
                ("metadata[rekomi_id]".to_owned(), "abc".to_owned()),
                ("name".to_owned(), "Summer 20% off".to_owned()),
                ("code".to_owned(), "SARAH20".to_owned()),
                ("bad".to_owned(), "%zz".to_owned()),
            ]
        );
    }
}
