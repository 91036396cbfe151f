//! The `rekomi-server` binary as an operator runs it: `migrate` and the `admin` commands
//! against a fresh, empty PostgreSQL database, their JSON on stdout and their failures, and
//! `serve` accepting the keys and tokens the admin commands printed.
//!
//! Each test creates its own database on `REKOMI_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and drops it afterwards; without a reachable
//! server the tests skip with a message, except under `CI=true`, where they fail. (The
//! template-database harness of `rekomi-e2e` depends on this crate, so a tiny helper lives
//! here instead.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::sql_types::BigInt;
use diesel::{sql_query, Connection, QueryableByName, RunQueryDsl};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_rekomi-server");
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const JWT_SECRET: &str = "cli-test-jwt-secret-0123456789abcdef";

/// An empty database, dropped with the guard.
struct EmptyDb {
    admin_url: String,
    name: String,
    url: String,
}

fn admin_url() -> String {
    std::env::var("REKOMI_TEST_DATABASE_URL").ok().filter(|u| !u.trim().is_empty()).unwrap_or_else(|| DEFAULT_ADMIN_URL.to_owned())
}

/// `url` with its database replaced by `database`, query parameters kept.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..].find('/').map_or(base.len(), |i| authority + i);
    match query {
        Some(query) => format!("{}/{database}?{query}", &base[..path]),
        None => format!("{}/{database}", &base[..path]),
    }
}

fn connect(url: &str) -> Result<PgConnection, String> {
    let sep = if url.contains('?') { '&' } else { '?' };
    PgConnection::establish(&format!("{url}{sep}connect_timeout=5")).map_err(|e| e.to_string())
}

impl EmptyDb {
    fn create() -> Option<EmptyDb> {
        let admin_url = admin_url();
        let mut conn = match connect(&admin_url) {
            Ok(conn) => conn,
            Err(why) => {
                assert!(
                    std::env::var("CI").map_or(true, |v| v != "true"),
                    "PostgreSQL tests must run under CI=true, but the test server is unreachable: {why}"
                );
                eprintln!("skipping a CLI test: PostgreSQL is unreachable ({why}); set REKOMI_TEST_DATABASE_URL to run it");
                return None;
            }
        };
        let name = format!("rekomi_cli_{}", uuid::Uuid::new_v4().simple());
        sql_query(format!(r#"CREATE DATABASE "{name}""#)).execute(&mut conn).unwrap_or_else(|e| panic!("creating {name}: {e}"));
        Some(EmptyDb { url: with_database(&admin_url, &name), admin_url, name })
    }

    fn count(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = connect(&self.url).unwrap();
        sql_query(sql).get_result::<N>(&mut conn).unwrap_or_else(|e| panic!("{sql}: {e}")).n
    }
}

impl Drop for EmptyDb {
    fn drop(&mut self) {
        let dropped = connect(&self.admin_url).and_then(|mut c| {
            sql_query(format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name)).execute(&mut c).map_err(|e| e.to_string())
        });
        if let Err(e) = dropped {
            eprintln!("could not drop {}: {e}", self.name);
        }
    }
}

/// The binary with a clean environment apart from what the test gives it.
fn rekomi(db: Option<&EmptyDb>) -> Command {
    let mut command = Command::new(BIN);
    for var in [
        "DATABASE_URL",
        "REKOMI_STRIPE_SECRET_KEY",
        "REKOMI_STRIPE_API_BASE",
        "REKOMI_JWT_SECRET",
        "REKOMI_BIND",
        "REKOMI_MIGRATE_ON_START",
        "REKOMI_LOG_FORMAT",
    ] {
        command.env_remove(var);
    }
    command.env("RUST_LOG", "warn").env("REKOMI_DB_POOL_SIZE", "2").env("REKOMI_HTTP_WORKERS", "1");
    if let Some(db) = db {
        command.env("DATABASE_URL", &db.url);
    }
    command
}

struct Ran {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

fn run(mut command: Command, args: &[&str]) -> Ran {
    let Output { status, stdout, stderr } = command.args(args).output().unwrap_or_else(|e| panic!("running {BIN}: {e}"));
    Ran { status, stdout: String::from_utf8_lossy(&stdout).into_owned(), stderr: String::from_utf8_lossy(&stderr).into_owned() }
}

/// Runs a command that must succeed and print exactly one JSON line.
#[track_caller]
fn run_json(command: Command, args: &[&str]) -> Value {
    let ran = run(command, args);
    assert!(ran.status.success(), "{args:?} failed with {}: {}", ran.status, ran.stderr);
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?} must print one line of JSON on stdout, printed {:?}", ran.stdout);
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{args:?} printed {:?}, not JSON: {e}", lines[0]))
}

/// Runs a command that must fail with a message containing `needle` on stderr and nothing on
/// stdout.
#[track_caller]
fn run_failing(command: Command, args: &[&str], needle: &str) {
    let ran = run(command, args);
    assert!(!ran.status.success(), "{args:?} succeeded: {}", ran.stdout);
    assert!(ran.stdout.trim().is_empty(), "{args:?} printed on stdout: {}", ran.stdout);
    assert!(ran.stderr.contains(needle), "{args:?}: stderr does not say {needle:?}: {}", ran.stderr);
}

fn migration_count() -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten().filter(|e| e.path().is_dir()).count()
}

#[test]
fn migrate_applies_every_migration_once_and_prints_the_count() {
    let Some(db) = EmptyDb::create() else { return };
    let first = run_json(rekomi(Some(&db)), &["migrate"]);
    assert_eq!(first, serde_json::json!({ "applied": migration_count() }));
    assert_eq!(db.count("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'campaign_coupons'"), 1);
    let again = run_json(rekomi(Some(&db)), &["migrate"]);
    assert_eq!(again, serde_json::json!({ "applied": 0 }));
}

#[test]
fn admin_create_org_and_create_api_key_print_keys_that_the_server_accepts() {
    let Some(db) = EmptyDb::create() else { return };
    run_json(rekomi(Some(&db)), &["migrate"]);

    let created = run_json(rekomi(Some(&db)), &["admin", "create-org", "--name", "Acme", "--handle", "acme", "--plan", "growth"]);
    let fields: Vec<&str> = created.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(fields, vec!["apiKey", "organizationId"], "{created}");
    let org_id = created["organizationId"].as_str().unwrap().to_owned();
    let key = created["apiKey"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&org_id).is_ok(), "{org_id}");
    assert!(key.starts_with("rk_live_") && key.len() > 20, "{key}");

    let read = run_json(rekomi(Some(&db)), &["admin", "create-api-key", "--org", &org_id, "--scope", "read"]);
    assert_eq!(read.as_object().unwrap().len(), 1, "{read}");
    let read_key = read["apiKey"].as_str().unwrap().to_owned();
    assert!(read_key.starts_with("rk_live_") && read_key != key);
    assert_eq!(db.count(&format!("SELECT count(*) AS n FROM api_keys WHERE org_id = '{org_id}' AND scope = 'read'")), 1);
    assert_eq!(db.count("SELECT count(*) AS n FROM organizations WHERE handle = 'acme' AND plan_tier = 'Growth'"), 1);

    let mut token_cmd = rekomi(None);
    token_cmd.env("REKOMI_JWT_SECRET", JWT_SECRET);
    let token = run_json(token_cmd, &["admin", "dashboard-token", "--org", &org_id, "--sub", "ops", "--role", "Viewer"]);
    let token = token["token"].as_str().unwrap().to_owned();

    // The real binary serves them.
    let server = Served::start(&db);
    let me = server.get("/api/organizations/me", &key);
    assert_eq!(me.0, 200, "{}", me.1);
    let me: Value = serde_json::from_str(&me.1).unwrap();
    assert_eq!((me["id"].as_str(), me["slug"].as_str(), me["planTier"].as_str()), (Some(org_id.as_str()), Some("acme"), Some("Growth")));
    assert_eq!(server.get("/api/v1/programs", &read_key).0, 200);
    let refused =
        server.post_json("/api/v1/programs", &read_key, r#"{"name":"P","defaultCommissionType":"Percentage","defaultCommissionValue":5}"#);
    assert_eq!(refused.0, 403, "{}", refused.1);
    assert!(refused.1.contains("insufficient_scope"), "{}", refused.1);
    let as_viewer = server.get("/api/organizations/me", &token);
    assert_eq!(as_viewer.0, 200, "{}", as_viewer.1);
}

#[test]
fn admin_commands_refuse_bad_arguments_with_a_clear_message_and_a_failing_status() {
    let Some(db) = EmptyDb::create() else { return };
    run_json(rekomi(Some(&db)), &["migrate"]);
    run_failing(rekomi(Some(&db)), &create_org("enterprise", "acme"), "--plan must be trial, starter, growth or pro");
    run_failing(rekomi(Some(&db)), &create_org("", "acme"), "--plan");
    run_failing(rekomi(Some(&db)), &create_org("growth", "Not A Handle"), "--handle");
    run_failing(rekomi(Some(&db)), &["admin", "create-org", "--name", "Acme", "--handle", "acme"], "--plan");
    assert_eq!(db.count("SELECT count(*) AS n FROM organizations"), 0, "a refused command created an organization");

    let created = run_json(rekomi(Some(&db)), &create_org("Starter", "acme"));
    let org_id = created["organizationId"].as_str().unwrap().to_owned();
    run_failing(rekomi(Some(&db)), &create_org("growth", "acme"), "handle");
    run_failing(
        rekomi(Some(&db)),
        &["admin", "create-api-key", "--org", &org_id, "--scope", "admin"],
        "--scope must be read or read_write",
    );
    run_failing(rekomi(Some(&db)), &["admin", "create-api-key", "--org", "acme", "--scope", "read"], "--org must be an organization id");
    run_failing(
        rekomi(Some(&db)),
        &["admin", "create-api-key", "--org", "00000000-0000-7000-8000-000000000000", "--scope", "read"],
        "organization",
    );
    assert_eq!(db.count("SELECT count(*) AS n FROM organizations"), 1);
    assert_eq!(db.count("SELECT count(*) AS n FROM api_keys"), 1, "only create-org's key exists");

    // Signing secrets: a bad --org is refused before the database is reached, an unknown one by
    // the use case; a good one prints the secret once, and a rotation keeps the old one 24 h.
    run_failing(rekomi(None), &["admin", "create-tracking-secret", "--org", "acme"], "--org must be an organization id");
    run_failing(rekomi(Some(&db)), &["admin", "create-tracking-secret", "--org", "00000000-0000-7000-8000-000000000000"], "organization");
    assert_eq!(db.count("SELECT count(*) AS n FROM tracking_secrets"), 0);
    let first = run_json(rekomi(Some(&db)), &["admin", "create-tracking-secret", "--org", &org_id]);
    let secret = first["trackingSecret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("rks_") && secret.len() == 44, "{first}");
    assert_eq!(first["prefix"].as_str(), Some(&secret[..8]));
    assert!(first["previousExpiresAt"].is_null(), "{first}");
    let second = run_json(rekomi(Some(&db)), &["admin", "create-tracking-secret", "--org", &org_id]);
    assert_ne!(second["trackingSecret"].as_str(), Some(secret.as_str()));
    assert!(second["previousExpiresAt"].is_i64(), "{second}");
    assert_eq!(db.count("SELECT count(*) AS n FROM tracking_secrets WHERE expires_at IS NULL"), 1);
    assert_eq!(db.count("SELECT count(*) AS n FROM tracking_secrets WHERE expires_at > now() + interval '23 hours'"), 1);
    assert_eq!(db.count("SELECT count(*) AS n FROM audit_log WHERE action LIKE 'tracking_secret.%'"), 2);

    // Stripe ids are parsed before anything is looked up.
    for account in ["cus_1", "acct_", "acct_1 2", "bogus"] {
        let args = ["admin", "link-stripe-account", "--org", &org_id, "--account", account];
        run_failing(rekomi(Some(&db)), &args, "--account must be a Stripe account id (acct_…)");
    }
    assert_eq!(db.count("SELECT count(*) AS n FROM organizations WHERE stripe_account_id IS NOT NULL"), 0);
    let linked = run_json(rekomi(Some(&db)), &["admin", "link-stripe-account", "--org", &org_id, "--account", "acct_1RekomiConnected"]);
    assert_eq!(linked["stripeAccountId"], "acct_1RekomiConnected");
    run_failing(rekomi(Some(&db)), &["admin", "replay-stripe-event", "--id", "in_1"], "--id must be a Stripe event id (evt_…)");
    run_failing(rekomi(Some(&db)), &["admin", "replay-stripe-event", "--id", "evt_unknown"], "stripe_event_not_found");

    // Without DATABASE_URL the commands that need it say so.
    run_failing(rekomi(None), &["migrate"], "DATABASE_URL");
    run_failing(rekomi(None), &create_org("growth", "other"), "DATABASE_URL");
    run_failing(rekomi(None), &["admin", "dashboard-token", "--org", &org_id, "--sub", "ops"], "REKOMI_JWT_SECRET");
}

fn create_org<'a>(plan: &'a str, handle: &'a str) -> Vec<&'a str> {
    vec!["admin", "create-org", "--name", "Acme", "--handle", handle, "--plan", plan]
}

/// `rekomi-server serve` on a free local port, killed with the guard.
struct Served {
    child: Child,
    port: u16,
}

impl Served {
    fn start(db: &EmptyDb) -> Served {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = rekomi(Some(db))
            .env("REKOMI_BIND", format!("127.0.0.1:{port}"))
            .env("REKOMI_JWT_SECRET", JWT_SECRET)
            .env("REKOMI_RECONCILE_INTERVAL_SECS", "0")
            .env("RUST_LOG", "error")
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {BIN} serve: {e}"));
        let mut served = Served { child, port };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = served.child.try_wait().unwrap() {
                panic!("rekomi-server serve exited with {status}");
            }
            if served.try_request("GET", "/healthz", None, None).is_some_and(|(status, _)| status == 200) {
                return served;
            }
            assert!(Instant::now() < deadline, "rekomi-server serve did not answer /healthz on port {}", served.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn try_request(&self, method: &str, path: &str, token: Option<&str>, json: Option<&str>) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        if let Some(token) = token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        let body = json.unwrap_or_default();
        if json.is_some() {
            head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body.as_bytes()).ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let status = answer.split(' ').nth(1)?.parse().ok()?;
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
        Some((status, body))
    }

    fn get(&self, path: &str, token: &str) -> (u16, String) {
        self.try_request("GET", path, Some(token), None).unwrap_or_else(|| panic!("GET {path} failed"))
    }

    fn post_json(&self, path: &str, token: &str, json: &str) -> (u16, String) {
        self.try_request("POST", path, Some(token), Some(json)).unwrap_or_else(|| panic!("POST {path} failed"))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
