//! A fresh PostgreSQL database per test, so PostgreSQL tests run in parallel without sharing
//! state or cleaning up after each other.
//!
//! Once per test process, a template database `rekomi_tmpl_<hash>` is made ready, `<hash>`
//! being a digest of the files under `migrations/`: a template for the current migrations is
//! reused (by later runs too), a change to the migrations gets a new one. Building a template
//! is guarded by a PostgreSQL advisory lock, so concurrent test processes build it once; it is
//! built under a temporary name and renamed only when migrated, so a crash never leaves a
//! half-migrated template behind; and it is closed to connections afterwards, because
//! `CREATE DATABASE … TEMPLATE` refuses a source that anyone is connected to. Each test then
//! gets `CREATE DATABASE rekomi_test_<random> TEMPLATE rekomi_tmpl_<hash>` (a file copy,
//! much faster than migrating) and a [`TestDb`] guard that drops it `WITH (FORCE)`.
//!
//! The server is `REKOMI_TEST_DATABASE_URL` (a `postgres://` URL naming a database the user
//! may connect to, and a user allowed to create databases), by default
//! [`DEFAULT_DATABASE_URL`]. When it cannot be reached, [`TestDb::create`] prints why and
//! returns `None` so the test can skip — except under `CI=true`, where it panics: CI must never
//! pass by skipping.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::{sql_query, Connection, QueryableByName, RunQueryDsl};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The environment variable naming the PostgreSQL server for tests.
pub const DATABASE_URL_ENV: &str = "REKOMI_TEST_DATABASE_URL";
/// The server used when [`DATABASE_URL_ENV`] is not set.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Advisory-lock key serializing template builds across test processes ("rekomit"); distinct
/// from the key `rekomi_postgres::run_migrations` takes.
const TEMPLATE_LOCK_KEY: i64 = 0x0072_656b_6f6d_6974;

/// How long a connection attempt may take before the server counts as unreachable.
const CONNECT_TIMEOUT_SECS: u32 = 5;

/// A database created for one test from the migrated template, dropped when the guard drops.
/// Drop every pool connected to it first (declare the guard before the store), although the
/// drop forces remaining connections closed anyway.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDb {
    /// Creates a fresh, migrated database.
    ///
    /// Returns `None` after printing a skip notice when PostgreSQL cannot be reached, unless
    /// `CI=true`.
    ///
    /// # Panics
    /// When PostgreSQL is unreachable under `CI=true`, or reachable but the template or the
    /// database cannot be made (a failing migration, missing privileges): those are failures,
    /// not reasons to skip.
    pub fn create() -> Option<TestDb> {
        let admin_url = admin_url();
        let template = match template(&admin_url) {
            Ok(template) => template,
            Err(unreachable) => return skip(&admin_url, unreachable),
        };
        let mut conn = match connect(&admin_url) {
            Ok(conn) => conn,
            Err(unreachable) => return skip(&admin_url, &unreachable),
        };
        let name = format!("rekomi_test_{}", Uuid::new_v4().simple());
        if let Err(e) = sql_query(format!(r#"CREATE DATABASE "{name}" TEMPLATE "{template}""#)).execute(&mut conn) {
            panic!("could not create the test database {name} from {template}: {e}");
        }
        Some(TestDb { url: with_database(&admin_url, &name), name, admin_url })
    }

    /// The URL of the test database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The name of the test database.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // A failure here must not turn a passing test into a panic during unwinding; a left-over
        // `rekomi_test_*` database is harmless and easy to spot.
        let dropped = connect(&self.admin_url).map_err(|e| e.to_string()).and_then(|mut conn| {
            sql_query(format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name)).execute(&mut conn).map_err(|e| e.to_string())
        });
        if let Err(e) = dropped {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

/// The admin URL: [`DATABASE_URL_ENV`] or [`DEFAULT_DATABASE_URL`].
pub fn admin_url() -> String {
    std::env::var(DATABASE_URL_ENV).ok().filter(|url| !url.trim().is_empty()).unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())
}

fn skip<T>(admin_url: &str, why: &str) -> Option<T> {
    let shown = redact(admin_url);
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "PostgreSQL tests must run under CI=true, but {shown} is unreachable: {why}. \
             Start PostgreSQL or point {DATABASE_URL_ENV} at one."
        );
    }
    eprintln!(
        "skipping a PostgreSQL test: {shown} is unreachable ({why}). \
         Start PostgreSQL or set {DATABASE_URL_ENV} to run it."
    );
    None
}

/// The migrated template's name, made ready once per process. `Err` only when the server is
/// unreachable; any other failure panics (and the next test tries again, and fails alike).
fn template(admin_url: &str) -> Result<&'static str, &'static str> {
    static TEMPLATE: OnceLock<Result<String, String>> = OnceLock::new();
    match TEMPLATE.get_or_init(|| prepare_template(admin_url)) {
        Ok(name) => Ok(name),
        Err(why) => Err(why),
    }
}

fn prepare_template(admin_url: &str) -> Result<String, String> {
    let mut conn = connect(admin_url)?;
    let name = format!("rekomi_tmpl_{}", migrations_digest());
    // Another test process may be building the same template: wait for it, then reuse it.
    // A panic below drops the connection, which releases the lock as well.
    check("taking the template lock", sql_query("SELECT pg_advisory_lock($1)").bind::<BigInt, _>(TEMPLATE_LOCK_KEY).execute(&mut conn));
    build_template(&mut conn, admin_url, &name);
    check(
        "releasing the template lock",
        sql_query("SELECT pg_advisory_unlock($1)").bind::<BigInt, _>(TEMPLATE_LOCK_KEY).execute(&mut conn),
    );
    Ok(name)
}

fn build_template(conn: &mut PgConnection, admin_url: &str, name: &str) {
    if database_exists(conn, name) {
        return;
    }
    let building = format!("{name}_building");
    // Left over by a process that died mid-build (the lock is ours, so nobody else uses it).
    check("dropping a half-built template", sql_query(format!(r#"DROP DATABASE IF EXISTS "{building}" WITH (FORCE)"#)).execute(conn));
    check("creating the template", sql_query(format!(r#"CREATE DATABASE "{building}""#)).execute(conn));
    if let Err(e) = rekomi_postgres::run_migrations(&with_database(admin_url, &building)) {
        panic!("migrating the template database {building} failed: {e:#}");
    }
    // No connection may stay open: renaming needs it, and so does every later
    // `CREATE DATABASE … TEMPLATE`. A terminated backend takes a moment to go, hence retries.
    let mut attempts = 0;
    loop {
        check(
            "closing connections to the template",
            sql_query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
                .bind::<Text, _>(&building)
                .execute(conn),
        );
        match sql_query(format!(r#"ALTER DATABASE "{building}" RENAME TO "{name}""#)).execute(conn) {
            Ok(_) => break,
            Err(e) if attempts < 50 => {
                attempts += 1;
                if attempts == 1 {
                    eprintln!("waiting for connections to {building} to close: {e}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("could not rename {building} to {name}: {e}"),
        }
    }
    check(
        "closing the template to connections",
        sql_query(format!(r#"ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false"#)).execute(conn),
    );
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

fn database_exists(conn: &mut PgConnection, name: &str) -> bool {
    let found = sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
        .bind::<Text, _>(name)
        .get_result::<Exists>(conn);
    match found {
        Ok(row) => row.exists,
        Err(e) => panic!("could not look for the database {name}: {e}"),
    }
}

/// An admin statement's failure fails the test.
fn check(what: &str, result: diesel::QueryResult<usize>) {
    if let Err(e) = result {
        panic!("{what} failed: {e}");
    }
}

/// Connects with a bounded wait; `Err` says why the server is unreachable.
fn connect(url: &str) -> Result<PgConnection, String> {
    PgConnection::establish(&with_connect_timeout(url)).map_err(|e| e.to_string())
}

/// A hex digest of every file under `migrations/` (paths and contents), 16 characters.
pub fn migrations_digest() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut files = Vec::new();
    collect_files(&root, &mut files);
    files.sort();
    assert!(!files.is_empty(), "no migration files under {}", root.display());
    let mut hasher = Sha256::new();
    for file in files {
        let relative = file.strip_prefix(&root).unwrap_or(&file).to_string_lossy().replace('\\', "/");
        let contents = match std::fs::read(&file) {
            Ok(contents) => contents,
            Err(e) => panic!("could not read the migration file {}: {e}", file.display()),
        };
        hasher.update(relative.as_bytes());
        hasher.update([0]);
        hasher.update(u64::try_from(contents.len()).unwrap_or(u64::MAX).to_le_bytes());
        hasher.update(&contents);
    }
    let digest = hex::encode(hasher.finalize());
    digest[..16].to_owned()
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => panic!("could not read the migrations folder {}: {e}", dir.display()),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// `url` with its database (the URL path) replaced by `database`, query parameters kept.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..].find('/').map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{database}", &base[..path]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        url.to_owned()
    } else {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}connect_timeout={CONNECT_TIMEOUT_SECS}")
    }
}

/// `url` with any password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!("{}{}:***{}", &url[..scheme_end], &rest[..colon], &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced_and_its_parameters_kept() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "t1"), "postgres://u@h:5432/t1");
        assert_eq!(with_database("postgres://u:p@h/db?sslmode=disable", "t1"), "postgres://u:p@h/t1?sslmode=disable");
        assert_eq!(with_database("postgres://u@h:5432", "t1"), "postgres://u@h:5432/t1");
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn a_connect_timeout_is_added_once() {
        assert_eq!(with_connect_timeout("postgres://h/db"), "postgres://h/db?connect_timeout=5");
        assert_eq!(with_connect_timeout("postgres://h/db?a=b"), "postgres://h/db?a=b&connect_timeout=5");
        assert_eq!(with_connect_timeout("postgres://h/db?connect_timeout=1"), "postgres://h/db?connect_timeout=1");
    }

    #[test]
    fn the_template_name_follows_the_migrations() {
        let digest = migrations_digest();
        assert_eq!(digest.len(), 16);
        assert_eq!(digest, migrations_digest());
    }
}
