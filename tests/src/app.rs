//! The end-to-end harness: the real `rekomi-server` application on `127.0.0.1:0`, over a fresh
//! PostgreSQL database ([`TestDb`]) and the Stripe double ([`StripeDouble`]), with an HTTP
//! client and the helpers the tests share (organizations, API keys, JWTs, fixtures, and direct
//! row counts to prove that a refused request wrote nothing).
//!
//! [`TestApp::spawn`] returns `None` (after printing why) when PostgreSQL is unavailable, so a
//! test can skip; under `CI=true` it panics instead. The Stripe double serves the fixtures kept
//! in this repository; the shared reference data beside the project is optional.
//! Set `TEST_LOG=1` to see the server's logs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{sql_query, Connection, QueryableByName, RunQueryDsl};
use jsonwebtoken::{encode, EncodingKey, Header};
use rekomi_domain::kernel::ids::OrgId;
use rekomi_domain::kernel::plan::PlanTier;
use rekomi_domain::orgs::{ApiKeyScope, Handle, NewOrganization};
use rekomi_domain::services::Services;
use rekomi_server::{Application, Config};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::db::TestDb;
use crate::stripe_double::{StripeDouble, SECRET_KEY};

/// The HS256 secret of dashboard and affiliate JWTs in tests.
pub const JWT_SECRET: &str = "e2e-jwt-secret-not-for-production-0123456789";

/// The tables a refused request must leave alone.
pub const WRITE_TABLES: [&str; 6] = ["programs", "affiliates", "affiliate_links", "campaign_coupons", "affiliate_coupons", "audit_log"];

/// A running server with its database and Stripe double.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The client every helper uses (no proxy, 30 s timeout).
    pub client: reqwest::Client,
    /// The Stripe double the server talks to.
    pub stripe: StripeDouble,
    /// Use cases over the same database, for what the API cannot do (creating organizations).
    pub services: Services,
    server: JoinHandle<()>,
    /// The test's own connection to its database, made on first use.
    conn: Arc<Mutex<Option<PgConnection>>>,
    // Last, so it drops after everything connected to the database.
    db: TestDb,
}

/// An HTTP answer, read completely.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub text: String,
    /// The body as JSON (`Null` when empty or not JSON).
    pub body: Value,
}

impl Response {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The envelope's `error`.
    pub fn error_code(&self) -> Option<&str> {
        self.body.get("error").and_then(Value::as_str)
    }

    /// The envelope's `field`.
    pub fn field(&self) -> Option<&str> {
        self.body.get("field").and_then(Value::as_str)
    }

    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        &self.body
    }

    /// Asserts an error envelope with this status and code (and a message).
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> &Value {
        assert_eq!((self.status, self.error_code()), (status, Some(code)), "unexpected answer; body: {}", self.text);
        assert!(self.body.get("message").and_then(Value::as_str).is_some_and(|m| !m.is_empty()), "no message in {}", self.text);
        &self.body
    }

    /// Asserts an error envelope naming `field`.
    #[track_caller]
    pub fn expect_field_error(&self, status: u16, code: &str, field: &str) -> &Value {
        self.expect_error(status, code);
        assert_eq!(self.field(), Some(field), "unexpected field; body: {}", self.text);
        &self.body
    }
}

static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

fn init_test_log() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        if std::env::var("TEST_LOG").is_ok_and(|v| !v.is_empty() && v != "0") {
            let _ = tracing_subscriber::fmt().with_env_filter("info").with_test_writer().try_init();
        }
    });
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Fingerprint {
    #[diesel(sql_type = Text)]
    digest: String,
}

/// The configuration of a server under test: workers off, the Stripe double as Stripe.
fn base_config(database_url: &str, stripe: &StripeDouble) -> Config {
    Config {
        database_url: without_tls_on_loopback(database_url),
        bind: "127.0.0.1:0".to_owned(),
        stripe_secret_key: Some(SECRET_KEY.to_owned()),
        stripe_api_base: Some(stripe.url()),
        jwt_secret: Some(JWT_SECRET.to_owned()),
        db_pool_size: 4,
        http_workers: 2,
        migrate_on_start: false,
        reconcile_interval_secs: 0,
        payout_reconcile_after_secs: 60,
        stripe_webhook_secrets: Vec::new(),
        inbox_interval_ms: 0,
        inbox_workers: 1,
        webhook_allow_private_targets: false,
        delivery_interval_ms: 0,
        jwt_max_ttl_secs: 24 * 3600,
        client_ip_header: None,
        metrics_token: None,
        trusted_proxies: Vec::new(),
        country_header: None,
        tracking_limit_per_minute: 1_200,
        click_flush_ms: 5,
        click_buffer: 100_000,
        s2s_limit_per_minute: 180_000,
        public_url: None,
    }
}

/// Builds and starts the application; returns its task and port.
fn start(config: &Config) -> (JoinHandle<()>, u16) {
    let app = Application::build(config).unwrap_or_else(|e| panic!("building the application: {e:#}"));
    let port = app.port();
    let server = tokio::spawn(async move {
        if let Err(e) = app.run_until_stopped().await {
            eprintln!("the server under test stopped: {e:#}");
        }
    });
    (server, port)
}

impl TestApp {
    /// Starts a server on a fresh database, with the Stripe double as its Stripe.
    ///
    /// # Panics
    /// When the application cannot be built (a product failure), or under `CI=true` without
    /// PostgreSQL.
    pub async fn spawn() -> Option<TestApp> {
        Self::spawn_with(|_| {}).await
    }

    /// [`TestApp::spawn`] with the configuration adjusted by `configure` before the server is
    /// built (e.g. `webhook_allow_private_targets` and a short `delivery_interval_ms` for
    /// outbound webhook tests). Background workers are off unless `configure` turns them on.
    ///
    /// # Panics
    /// As [`TestApp::spawn`].
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Option<TestApp> {
        init_test_log();
        let db = TestDb::create()?;
        let stripe = StripeDouble::start().await?;
        let mut config = base_config(db.url(), &stripe);
        configure(&mut config);
        let server = start(&config);
        let address = format!("http://127.0.0.1:{}", server.1);
        let server = server.0;
        let services = rekomi_server::services(&Config { db_pool_size: 2, ..config })
            .unwrap_or_else(|e| panic!("building the test's own services: {e:#}"));
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|e| panic!("building the HTTP client: {e}"));
        Some(TestApp { address, client, stripe, services, server, conn: Arc::default(), db })
    }

    /// Starts another server process's worth of application on this test's database and
    /// Stripe double (as a second replica would run), configured by `configure`; it stops
    /// when the returned handle is aborted or the test ends.
    pub fn spawn_replica(&self, configure: impl FnOnce(&mut Config)) -> JoinHandle<()> {
        let mut config = base_config(self.db.url(), &self.stripe);
        configure(&mut config);
        start(&config).0
    }

    /// The test database's URL.
    pub fn database_url(&self) -> &str {
        self.db.url()
    }

    // ---- organizations, keys, tokens ------------------------------------------------

    /// Creates an organization on `plan` and returns its id and `rk_live_…` read_write key.
    pub async fn org(&self, plan: PlanTier) -> (String, String) {
        let n = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
        let handle = Handle::parse(&format!("org-{n}-{}", plan.as_str().to_ascii_lowercase())).unwrap_or_else(|e| panic!("{e:?}"));
        let (org, key) = self
            .services
            .create_organization(NewOrganization { name: format!("Org {n}"), handle, plan })
            .await
            .unwrap_or_else(|e| panic!("creating an organization: {e}"));
        (org.id.to_string(), key.expose().to_owned())
    }

    /// A further API key of `org` with `scope`.
    pub async fn api_key(&self, org_id: &str, scope: ApiKeyScope) -> String {
        let org: OrgId = org_id.parse().unwrap_or_else(|e| panic!("{e:?}"));
        self.services.create_api_key(org, scope).await.unwrap_or_else(|e| panic!("creating an API key: {e}")).expose().to_owned()
    }

    /// Links `org_id` to a Stripe Connect account (`acct_…`): its Stripe calls then carry
    /// `Stripe-Account`.
    pub async fn link_stripe_account(&self, org_id: &str, account: &str) {
        let org: OrgId = org_id.parse().unwrap_or_else(|e| panic!("{e:?}"));
        self.services
            .link_stripe_account(org, Some(crate::contract::fixtures::stripe_id(account)))
            .await
            .unwrap_or_else(|e| panic!("linking {account}: {e}"));
    }

    /// Signs arbitrary claims with the server's JWT secret.
    pub fn jwt(&self, claims: &Value) -> String {
        encode(&Header::default(), claims, &EncodingKey::from_secret(JWT_SECRET.as_bytes())).unwrap_or_else(|e| panic!("signing: {e}"))
    }

    /// A dashboard JWT of a user of `org_id` with `role` (`Owner`, `Manager`, `Viewer`).
    pub fn jwt_dashboard(&self, org_id: &str, role: &str) -> String {
        self.jwt(
            &json!({ "sub": format!("user-{}-{org_id}", role.to_ascii_lowercase()), "org_id": org_id, "role": role, "exp": in_an_hour() }),
        )
    }

    /// An affiliate JWT (`aud` = `affiliate`).
    pub fn jwt_affiliate(&self, sub: &str, email: &str) -> String {
        self.jwt(&json!({ "aud": "affiliate", "sub": sub, "email": email, "exp": in_an_hour() }))
    }

    // ---- HTTP -----------------------------------------------------------------------

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request builder for `path`, without authentication.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(&self, request: RequestBuilder) -> Response {
        let response = request.send().await.unwrap_or_else(|e| panic!("sending the request: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_else(|e| panic!("reading the answer: {e}"));
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Response { status, headers, text, body }
    }

    /// `GET path` with a bearer token.
    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.send(self.request(Method::GET, path).bearer_auth(token)).await
    }

    /// `POST path` with a bearer token and a JSON body.
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.send(self.request(Method::POST, path).bearer_auth(token).json(body)).await
    }

    /// `POST path` with a bearer token and no body.
    pub async fn post_empty(&self, path: &str, token: &str) -> Response {
        self.send(self.request(Method::POST, path).bearer_auth(token)).await
    }

    /// `PATCH path` with a bearer token and a JSON body.
    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Response {
        self.send(self.request(Method::PATCH, path).bearer_auth(token).json(body)).await
    }

    /// `DELETE path` with a bearer token.
    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.send(self.request(Method::DELETE, path).bearer_auth(token)).await
    }

    /// Sends raw bytes with an optional `Content-Type`.
    pub async fn raw(&self, method: Method, path: &str, token: &str, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Response {
        let mut request = self.request(method, path).bearer_auth(token).body(body.into());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        self.send(request).await
    }

    // ---- the database, directly -----------------------------------------------------

    async fn with_connection<T: Send + 'static>(&self, f: impl FnOnce(&mut PgConnection) -> T + Send + 'static) -> T {
        let (url, conn) = (without_tls_on_loopback(self.db.url()), Arc::clone(&self.conn));
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            let conn = guard
                .get_or_insert_with(|| PgConnection::establish(&url).unwrap_or_else(|e| panic!("connecting to the test database: {e}")));
            f(conn)
        })
        .await
        .unwrap_or_else(|e| panic!("database task: {e}"))
    }

    /// The number of rows of `table` (one of the schema's tables).
    pub async fn count_rows(&self, table: &'static str) -> i64 {
        self.with_connection(move |conn| {
            sql_query(format!("SELECT count(*) AS n FROM {table}"))
                .get_result::<Count>(conn)
                .unwrap_or_else(|e| panic!("counting {table}: {e}"))
                .n
        })
        .await
    }

    /// The row count of every table of [`WRITE_TABLES`], in one query.
    pub async fn counts(&self) -> Vec<(&'static str, i64)> {
        let select = WRITE_TABLES.map(|t| format!("(SELECT count(*) FROM {t})::text")).join(" || ',' || ");
        let joined = self.single_text(format!("SELECT {select} AS digest")).await;
        WRITE_TABLES.into_iter().zip(joined.split(',').map(|n| n.parse().unwrap_or(-1))).collect()
    }

    /// A digest of every row of `table`: equal digests mean no row was added, changed or
    /// removed.
    pub async fn fingerprint(&self, table: &'static str) -> String {
        self.single_text(format!("SELECT {} AS digest", digest_of(table))).await
    }

    /// Digests of every table of [`WRITE_TABLES`], in one query.
    pub async fn fingerprints(&self) -> Vec<(&'static str, String)> {
        let select = WRITE_TABLES.map(digest_of).join(" || ',' || ");
        let joined = self.single_text(format!("SELECT {select} AS digest")).await;
        WRITE_TABLES.into_iter().zip(joined.split(',').map(str::to_owned)).collect()
    }

    /// Runs SQL returning one text column named `digest` (test set-up and fingerprints).
    pub async fn single_text(&self, sql: String) -> String {
        self.with_connection(move |conn| sql_query(&sql).get_result::<Fingerprint>(conn).unwrap_or_else(|e| panic!("{sql}: {e}")).digest)
            .await
    }

    /// Runs one SQL statement on the test database (for states the API cannot reach, such as
    /// a revoked API key).
    pub async fn execute_sql(&self, sql: &str) -> usize {
        let sql = sql.to_owned();
        self.with_connection(move |conn| sql_query(&sql).execute(conn).unwrap_or_else(|e| panic!("{sql}: {e}"))).await
    }

    // ---- fixtures -------------------------------------------------------------------

    /// Creates a program (`201`) and returns it.
    pub async fn create_program(&self, token: &str, name: &str) -> Value {
        let body = json!({ "name": name, "defaultCommissionType": "Percentage", "defaultCommissionValue": 20.0, "recurringMonths": 12 });
        self.post("/api/v1/programs", token, &body).await.expect(201).clone()
    }

    /// Creates an affiliate (`201`) with `status` (`Approved` or `Pending`) and returns it.
    pub async fn create_affiliate(&self, token: &str, program_id: &str, email: &str, status: &str) -> Value {
        let body = json!({ "programId": program_id, "email": email, "fullName": "Sarah Smith", "status": status });
        self.post("/api/v1/affiliates", token, &body).await.expect(201).clone()
    }

    /// Creates a 20 % off, once, campaign coupon (`201`) with `extra` fields merged in.
    pub async fn create_campaign_coupon(&self, token: &str, program_id: &str, extra: Value) -> Value {
        let mut body = json!({ "name": "Summer 20% off", "discountType": "PercentOff", "discountValue": 20, "duration": "Once" });
        merge(&mut body, extra);
        self.post(&format!("/api/v1/campaigns/{program_id}/coupons"), token, &body).await.expect(201).clone()
    }

    /// Creates an affiliate coupon (`201`) with `code` (null generates one).
    pub async fn create_code(&self, token: &str, affiliate_id: &str, campaign_coupon_id: &str, code: Option<&str>) -> Value {
        let body = json!({ "campaignCouponId": campaign_coupon_id, "code": code });
        self.post(&format!("/api/v1/affiliates/{affiliate_id}/coupons"), token, &body).await.expect(201).clone()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stops the server (its workers and pool) before the database guard drops it.
        self.server.abort();
    }
}

/// `url` with `sslmode=disable` when it names a loopback host and no `sslmode`.
///
/// A precaution: after a test, the server's worker threads close their pooled connections on
/// their own, and the last ones may still be closing when the test process exits. Over TLS,
/// libpq's teardown then races OpenSSL's exit-time cleanup; one run of this suite aborted
/// after all its tests had finished ("double free or corruption"). A local server needs no
/// TLS, so the harness does without it there.
pub fn without_tls_on_loopback(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.split(']').next().map(|h| format!("{h}]")).unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default().to_owned()
    };
    let loopback = matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]");
    if !loopback || url.contains("sslmode=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}sslmode=disable")
}

fn digest_of(table: &str) -> String {
    format!("(SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '-') FROM {table} t)")
}

/// Adds or replaces the keys of `extra` (an object) in `base`.
pub fn merge(base: &mut Value, extra: Value) {
    if let (Value::Object(base), Value::Object(extra)) = (base, extra) {
        base.extend(extra);
    }
}

/// A Unix time an hour from now (JWT `exp`).
pub fn in_an_hour() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() + 3600
}

/// The `id` of a JSON object as text.
#[track_caller]
pub fn id_of(value: &Value) -> String {
    value["id"].as_str().unwrap_or_else(|| panic!("no id in {value}")).to_owned()
}

#[cfg(test)]
mod tests {
    use super::without_tls_on_loopback;

    #[test]
    fn only_loopback_urls_without_an_sslmode_lose_tls() {
        assert_eq!(
            without_tls_on_loopback("postgres://postgres@127.0.0.1:5432/db"),
            "postgres://postgres@127.0.0.1:5432/db?sslmode=disable"
        );
        assert_eq!(without_tls_on_loopback("postgres://u:p@localhost/db?a=b"), "postgres://u:p@localhost/db?a=b&sslmode=disable");
        assert_eq!(without_tls_on_loopback("postgres://u@[::1]:5432/db"), "postgres://u@[::1]:5432/db?sslmode=disable");
        assert_eq!(without_tls_on_loopback("postgres://u@db.example.com/db"), "postgres://u@db.example.com/db");
        assert_eq!(without_tls_on_loopback("postgres://u@127.0.0.1/db?sslmode=require"), "postgres://u@127.0.0.1/db?sslmode=require");
    }
}
