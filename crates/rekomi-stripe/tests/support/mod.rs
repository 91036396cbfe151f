//! A scripted Stripe double: a minimal HTTP/1.1 server on 127.0.0.1 that answers each request
//! with the next scripted reply (or, for [`Reply::hang_up`], closes the connection without one,
//! as when an answer is lost) and records what it received (method, path, headers, decoded form
//! body) for the test to assert on. It serves [`StripeGateway`] and [`StripePayoutRail`].
//!
//! Hand-written on tokio rather than wiremock: the client opens one connection per request and
//! sends a `Content-Length` body, so a few dozen lines suffice and the tests compile no extra
//! HTTP stack.
//!
//! Successful replies are Stripe objects from the project's own fixtures
//! (`tests/fixtures/objects/`, see [`StripeObjects`] and `tests/fixtures/README.md`), patched
//! with the fields a scenario needs; error replies are the project's own inline Stripe error
//! JSON. [`StripeEvents`] reads the project's webhook payloads (`tests/fixtures/events/`).
//!
//! The shared Stripe reference folder (`REKOMI_SHARED_DIR`, else `shared/` beside the
//! workspace) is an optional cross-check: [`StripeObjects::shared`] and [`StripeEvents::shared`]
//! give it when it is present and `None` (after one informational line) when it is not, CI or
//! not. No test needs it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rekomi_stripe::{StripeConfig, StripeGateway, StripePayoutRail};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub const SECRET_KEY: &str = "sk_test_51RekomiDoubleKey";

/// The coupon of the gateway scenarios (`objects/coupon.json`).
pub const COUPON_ID: &str = "RK7SPR20";
/// Promotion code `ALICE20` of the gateway scenarios (`objects/promotion_code.json`).
pub const PROMOTION_CODE_ID: &str = "promo_1RekomiAlice20Code";

// Stripe error bodies for the project's own error scenarios.
pub const ERROR_CODE_TAKEN: &str = r#"{"error":{"code":"resource_already_exists","doc_url":"https://stripe.com/docs/error-codes/resource-already-exists","message":"An active promotion code with `code: ALICE20` already exists.","param":"code","request_log_url":"https://dashboard.stripe.com/test/logs/req_123","type":"invalid_request_error"}}"#;
pub const ERROR_NOT_FOUND: &str = r#"{"error":{"code":"resource_missing","doc_url":"https://stripe.com/docs/error-codes/resource-missing","message":"No such coupon: 'RK7SPR20'","param":"id","type":"invalid_request_error"}}"#;
pub const ERROR_API: &str = r#"{"error":{"message":"An unknown error occurred","type":"api_error"}}"#;
pub const ERROR_RATE_LIMIT: &str =
    r#"{"error":{"code":"rate_limit","message":"Too many requests hit the API too quickly.","type":"invalid_request_error"}}"#;

/// The project's own Stripe fixtures: this crate's `tests/fixtures/`.
/// A Stripe id of the type the call site needs; the test's own text, so it panics on a typo.
pub fn stripe_id<T: std::str::FromStr>(raw: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    raw.parse().unwrap_or_else(|e| panic!("{raw:?} is no such Stripe id: {e:?}"))
}

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// The shared reference folder: `REKOMI_SHARED_DIR`, else `shared/` beside the workspace root.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("REKOMI_SHARED_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")), PathBuf::from)
}

/// `<shared>/stripe/<sub>` when it exists. Otherwise `None`, after one informational line: the
/// shared folder only adds cross-checks, so its absence never fails a test, under `CI=true`
/// either.
pub fn shared_stripe_dir(sub: &str) -> Option<PathBuf> {
    let dir = shared_dir().join("stripe").join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    let test = std::thread::current().name().unwrap_or("a Stripe adapter test").to_owned();
    eprintln!("{test}: no shared Stripe reference data at {}; this optional cross-check did not run", dir.display());
    None
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// The `.json` file names of `dir`, sorted.
pub fn json_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").file_name().into_string().expect("UTF-8 file name"))
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// Webhook payloads, by set: the project's own (`tests/fixtures/events/{current,older}`), or
/// the shared reference folder's (`<shared>/stripe/events/{current,captured}`), read at run
/// time and never copied into the project.
pub struct StripeEvents {
    dir: PathBuf,
}

impl StripeEvents {
    /// The project's own events: `current` (the story in the current shapes) and `older`
    /// (older API versions' shapes the decoder must tolerate).
    pub fn in_repo() -> Self {
        Self { dir: fixtures_dir().join("events") }
    }

    /// The shared reference events (`current` and `captured`), or `None` when the shared folder
    /// is absent.
    pub fn shared() -> Option<Self> {
        shared_stripe_dir("events").map(|dir| Self { dir })
    }

    /// The raw bytes of `<set>/<file>`, e.g. `("current", "invoice.paid__….json")`.
    pub fn bytes(&self, set: &str, file: &str) -> Vec<u8> {
        let path = self.dir.join(set).join(file);
        std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// The file names of one set, sorted.
    pub fn files(&self, set: &str) -> Vec<String> {
        json_files(&self.dir.join(set))
    }
}

/// Stripe objects the double answers with: the project's own (`tests/fixtures/objects/`), or
/// for a cross-check Stripe's published ones from the shared folder (`<shared>/stripe/objects/`,
/// never copied into the project). Each reply is one of them with the fields a scenario needs
/// patched in.
pub struct StripeObjects {
    dir: PathBuf,
}

impl StripeObjects {
    /// The project's own objects.
    pub fn load() -> Self {
        Self { dir: fixtures_dir().join("objects") }
    }

    /// Stripe's published objects from the shared folder, or `None` when it is absent.
    pub fn shared() -> Option<Self> {
        shared_stripe_dir("objects").map(|dir| Self { dir })
    }

    /// One object, e.g. `coupon` for `coupon.json`. In the shared folder, objects without a file
    /// of their own (`deleted_coupon`, `deleted_customer`) come from Stripe's whole fixtures file
    /// (`fixtures3.json`).
    pub fn object(&self, name: &str) -> Value {
        let file = self.dir.join(format!("{name}.json"));
        let object = if file.is_file() {
            read_json(&file)
        } else {
            let all = self.dir.join("fixtures3.json");
            assert!(all.is_file(), "no {} and no {}", file.display(), all.display());
            read_json(&all)["resources"][name].take()
        };
        assert!(object.is_object(), "{name} is not a JSON object in {}", self.dir.display());
        object
    }

    /// The coupon Stripe returns on creation, as coupon [`COUPON_ID`].
    pub fn coupon(&self) -> Reply {
        let mut coupon = self.object("coupon");
        coupon["id"] = json!(COUPON_ID);
        Reply::json_value(200, &coupon)
    }

    /// The answer to deleting coupon [`COUPON_ID`].
    pub fn deleted_coupon(&self) -> Reply {
        let mut deleted = self.object("deleted_coupon");
        deleted["id"] = json!(COUPON_ID);
        assert_eq!(deleted["deleted"], json!(true), "a deleted coupon");
        Reply::json_value(200, &deleted)
    }

    /// Promotion code [`PROMOTION_CODE_ID`], `ALICE20` for coupon [`COUPON_ID`] in the current
    /// (clover) shape, `active` as given: `true` on creation, `false` after deactivation.
    pub fn promotion_code(&self, active: bool) -> Reply {
        let mut promotion_code = self.promotion_code_object();
        promotion_code["active"] = json!(active);
        promotion_code["metadata"] = json!({ "rekomi_code_id": "code_1" });
        Reply::json_value(200, &promotion_code)
    }

    /// A freshly created promotion code.
    pub fn created_promotion_code(&self) -> Reply {
        self.promotion_code(true)
    }

    /// The promotion code after `active=false`.
    pub fn deactivated_promotion_code(&self) -> Reply {
        self.promotion_code(false)
    }

    /// Promotion code [`PROMOTION_CODE_ID`] (`ALICE20`, coupon [`COUPON_ID`]) as an object,
    /// as `expand[]=discounts.promotion_code` embeds it.
    pub fn promotion_code_object(&self) -> Value {
        let mut promotion_code = self.object("promotion_code");
        promotion_code["id"] = json!(PROMOTION_CODE_ID);
        promotion_code["code"] = json!("ALICE20");
        promotion_code["active"] = json!(true);
        promotion_code["promotion"] = json!({ "type": "coupon", "coupon": COUPON_ID });
        promotion_code
    }

    /// A discount (clover shape: the coupon under `source`) with `id` and `promotion_code` as
    /// given (`null`, an id or an expanded object).
    pub fn discount_object(&self, id: &str, promotion_code: Value) -> Value {
        let mut discount = self.object("discount");
        discount["id"] = json!(id);
        discount["source"] = json!({ "type": "coupon", "coupon": COUPON_ID });
        discount["promotion_code"] = promotion_code;
        discount
    }

    /// The discounts of [`Self::invoice_with_discounts`] and [`Self::subscription_with_discounts`]:
    /// an expanded promotion code, a plain coupon, a code left as an id, and the first code again.
    pub fn expanded_discounts(&self) -> Value {
        json!([
            self.discount_object("di_1RekomiPromo", self.promotion_code_object()),
            self.discount_object("di_2RekomiCoupon", Value::Null),
            self.discount_object("di_3RekomiPromoId", json!("promo_2RekomiOther")),
            self.discount_object("di_4RekomiPromoAgain", self.promotion_code_object()),
        ])
    }

    /// Invoice `id` as `GET /v1/invoices/{id}?expand[]=discounts.promotion_code` returns it.
    pub fn invoice_with_discounts(&self, id: &str) -> Reply {
        let mut invoice = self.object("invoice");
        invoice["id"] = json!(id);
        invoice["discounts"] = self.expanded_discounts();
        Reply::json_value(200, &invoice)
    }

    /// Subscription `id` as `GET /v1/subscriptions/{id}?expand[]=discounts.promotion_code`
    /// returns it.
    pub fn subscription_with_discounts(&self, id: &str) -> Reply {
        let mut subscription = self.object("subscription");
        subscription["id"] = json!(id);
        subscription["discounts"] = self.expanded_discounts();
        Reply::json_value(200, &subscription)
    }

    /// Customer `id` as `GET /v1/customers/{id}` returns it, with `metadata` as given.
    pub fn customer(&self, id: &str, metadata: Value) -> Reply {
        let mut customer = self.object("customer");
        customer["id"] = json!(id);
        customer["metadata"] = metadata;
        Reply::json_value(200, &customer)
    }

    /// What `GET /v1/customers/{id}` returns once customer `id` was deleted.
    pub fn deleted_customer(&self, id: &str) -> Reply {
        let mut deleted = self.object("deleted_customer");
        deleted["id"] = json!(id);
        assert_eq!(deleted["deleted"], json!(true), "a deleted customer");
        Reply::json_value(200, &deleted)
    }

    /// Express account `id` as `POST /v1/accounts` and `GET /v1/accounts/{id}` return it.
    pub fn account(&self, id: &str, payouts_enabled: bool, details_submitted: bool) -> Reply {
        let mut account = self.object("account");
        account["id"] = json!(id);
        account["payouts_enabled"] = json!(payouts_enabled);
        account["details_submitted"] = json!(details_submitted);
        account["capabilities"]["transfers"] = json!(if payouts_enabled { "active" } else { "inactive" });
        Reply::json_value(200, &account)
    }

    /// An onboarding link for `account` expiring at `expires_at`.
    pub fn account_link(&self, account: &str, expires_at: i64) -> Reply {
        let mut link = self.object("account_link");
        link["url"] = json!(format!("https://connect.stripe.com/setup/e/{account}/RkOnboard"));
        link["expires_at"] = json!(expires_at);
        Reply::json_value(200, &link)
    }

    /// Transfer `id`, `reversed` as given (a reversed transfer has its whole amount reversed).
    pub fn transfer_object(&self, id: &str, reversed: bool) -> Value {
        let mut transfer = self.object("transfer");
        transfer["id"] = json!(id);
        transfer["reversed"] = json!(reversed);
        transfer["amount_reversed"] = if reversed { transfer["amount"].clone() } else { json!(0) };
        transfer["reversals"]["url"] = json!(format!("/v1/transfers/{id}/reversals"));
        transfer
    }

    /// Transfer `id` as `POST /v1/transfers` returns it.
    pub fn transfer(&self, id: &str) -> Reply {
        Reply::json_value(200, &self.transfer_object(id, false))
    }

    /// A page of `GET /v1/transfers` holding `transfers`.
    pub fn transfers(&self, transfers: Vec<Value>) -> Reply {
        Reply::json_value(200, &json!({ "object": "list", "url": "/v1/transfers", "has_more": false, "data": transfers }))
    }

    /// A page of `GET /v1/invoice_payments` holding `payments`.
    pub fn invoice_payments(&self, payments: Vec<Value>) -> Reply {
        Reply::json_value(200, &json!({ "object": "list", "url": "/v1/invoice_payments", "has_more": false, "data": payments }))
    }

    /// An invoice payment linking `payment` (`{type, payment_intent | charge}`) to `invoice`
    /// (an id or an expanded invoice).
    pub fn invoice_payment(&self, invoice: Value, payment: Value) -> Value {
        let mut invoice_payment = self.object("invoice_payment");
        invoice_payment["id"] = json!("inpay_1RekomiPayment");
        invoice_payment["currency"] = json!("usd");
        invoice_payment["status"] = json!("paid");
        invoice_payment["invoice"] = invoice;
        invoice_payment["payment"] = payment;
        invoice_payment
    }
}

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Close the connection without answering, as a request whose answer was lost.
    pub hang_up: bool,
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Self {
        Self { status, content_type: "application/json", body: body.to_owned(), hang_up: false }
    }

    pub fn json_value(status: u16, body: &Value) -> Self {
        Self::json(status, &body.to_string())
    }

    pub fn html(status: u16, body: &str) -> Self {
        Self { content_type: "text/html", ..Self::json(status, body) }
    }

    /// No answer at all: the request arrived (and is recorded), then the connection closes.
    pub fn hang_up() -> Self {
        Self { hang_up: true, ..Self::json(0, "") }
    }
}

/// One request as the double saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    /// The request target without its query string.
    pub path: String,
    /// The query string, percent-decoded, sorted by key then value.
    pub query: Vec<(String, String)>,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: String,
    /// The form body, percent-decoded, sorted by key then value.
    pub form: Vec<(String, String)>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        let name = name.to_ascii_lowercase();
        self.headers.iter().filter(|(n, _)| *n == name).count()
    }

    /// Asserts that the query string is exactly `expected` (order-insensitive).
    pub fn assert_query(&self, expected: &[(&str, &str)]) {
        let mut expected: Vec<(String, String)> = expected.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        expected.sort();
        assert_eq!(self.query, expected, "query of {} {}", self.method, self.path);
    }

    /// Asserts that the form body is exactly `expected` (order-insensitive).
    pub fn assert_form(&self, expected: &[(&str, &str)]) {
        let mut expected: Vec<(String, String)> = expected.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        expected.sort();
        assert_eq!(self.form, expected, "form body of {} {} was {:?}", self.method, self.path, self.body);
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    received: Vec<Recorded>,
}

pub struct StripeDouble {
    port: u16,
    state: Arc<Mutex<State>>,
    server: JoinHandle<()>,
}

impl StripeDouble {
    /// Starts a double that answers requests with `script`, in order. A request beyond the
    /// script gets a 418, which no test expects.
    pub async fn start(script: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the double");
        let port = listener.local_addr().expect("local address").port();
        let state = Arc::new(Mutex::new(State { script: script.into(), received: Vec::new() }));
        let server_state = Arc::clone(&state);
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = Arc::clone(&server_state);
                tokio::spawn(async move {
                    serve(stream, state).await;
                });
            }
        });
        Self { port, state, server }
    }

    /// The base URL to give the gateway.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// A gateway pointed at this double, retrying fast.
    pub fn gateway(&self) -> StripeGateway {
        self.gateway_with_retries(3)
    }

    pub fn gateway_with_retries(&self, max_retries: u32) -> StripeGateway {
        StripeGateway::new(self.config(max_retries)).expect("valid test configuration")
    }

    /// A payout rail pointed at this double, retrying fast.
    pub fn payout_rail(&self) -> StripePayoutRail {
        self.payout_rail_with_retries(3)
    }

    pub fn payout_rail_with_retries(&self, max_retries: u32) -> StripePayoutRail {
        StripePayoutRail::new(self.config(max_retries)).expect("valid test configuration")
    }

    fn config(&self, max_retries: u32) -> StripeConfig {
        StripeConfig {
            api_base: self.url(),
            max_retries,
            base_backoff: Duration::from_millis(1),
            request_timeout: Duration::from_secs(5),
            ..StripeConfig::new(SECRET_KEY)
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().expect("double state").received.clone()
    }

    /// The only request received; fails the test if there were more or none.
    pub fn single_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected exactly one request, got {requests:#?}");
        requests.into_iter().next().expect("one request")
    }
}

impl Drop for StripeDouble {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let reply = {
        let mut state = state.lock().expect("double state");
        state.received.push(request);
        state.script.pop_front().unwrap_or_else(|| Reply::json(418, r#"{"error":{"type":"api_error","message":"unscripted request"}}"#))
    };
    if reply.hang_up {
        let _ = stream.shutdown().await;
        return;
    }
    let head = format!(
        "HTTP/1.1 {} Scripted\r\ncontent-type: {}\r\ncontent-length: {}\r\nrequest-id: req_double\r\nconnection: close\r\n\r\n",
        reply.status,
        reply.content_type,
        reply.body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(reply.body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        if let Some(at) = find(&buffer, b"\r\n\r\n") {
            break at;
        }
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).expect("UTF-8 request head");
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = path.to_owned();
    let mut query = decode_form(query);
    query.sort();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    assert!(
        !headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked")),
        "the double only understands content-length bodies"
    );
    let length: usize = headers.iter().find(|(n, _)| n == "content-length").map_or(0, |(_, v)| v.parse().expect("numeric content-length"));
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    let body = String::from_utf8(body).expect("UTF-8 body");
    let mut form = decode_form(&body);
    form.sort();
    Some(Recorded { method, path, query, headers, body, form })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
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
            b'%' => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("percent escape");
                out.push(u8::from_str_radix(hex, 16).expect("hex percent escape"));
                i += 3;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("UTF-8 form value")
}

/// A base URL where nothing listens: bound then released, so connecting is refused.
pub async fn unreachable_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/")
}
