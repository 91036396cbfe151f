//! Rekomi's PostgreSQL adapter: an outbound adapter of the hexagon that implements the
//! domain's storage port ([`UnitOfWork`] and the repositories of `Tx`) with diesel over an
//! r2d2 connection pool, and embeds the SQL migrations of `migrations/`.
//!
//! diesel is synchronous, so each unit of work runs on tokio's blocking pool: the connection
//! is checked out inside the blocking task (a busy pool never stalls an async worker), the
//! caller's tracing span is carried over, and the work runs inside one
//! `conn.transaction(..)` that commits on [`TxOutcome::Commit`] and rolls back on
//! [`TxOutcome::Rollback`]. Nothing here knows HTTP or Stripe.
//!
//! The crate is laid out by capability, under the same names as the domain
//! (docs/adr/0005-capability-layout.md):
//!
//! - the shared part: this file (the pool and the unit of work), `tx` (`PgTx`, the one
//!   transaction every repository runs in, its read/write helpers, savepoints and query
//!   macros), `columns` (decoding columns into the domain's value types), `error` (diesel
//!   and pool failures as `StoreError`) and `schema` (diesel's table definitions);
//! - one module per capability, each holding its tables' rows (`XxxRow` decodes a `SELECT`,
//!   `NewXxxRow` borrows an entity for an `INSERT` or full-row `UPDATE`) and the
//!   implementation of its repository trait for `PgTx`: `orgs`, `programs`, `affiliates`,
//!   `coupons`, `conversions`, `stripe_inbox`, `outbound`, `audit`, `traffic` (which also holds
//!   the batched click writer) and `tracking`.
//!
//! A new capability adds its own module beside these instead of growing a shared file.

mod affiliates;
mod audit;
mod columns;
mod conversions;
mod coupons;
mod error;
mod fx;
mod idempotency;
mod orgs;
mod outbound;
mod payouts;
mod programs;
mod schema;
mod stripe_inbox;
mod tracking;
mod traffic;
mod tx;

use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use diesel::connection::SimpleConnection as _;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::{Connection as _, RunQueryDsl as _};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness as _};
use rekomi_domain::ports::store::{StoreError, Tx, TxOutcome, TxWork, UnitOfWork};

use crate::error::{from_diesel, from_pool};
pub use crate::traffic::{ClickFlusher, PgClickSink, SinkConfig};
use crate::tx::PgTx;

/// The SQL of `migrations/`, compiled into the binary (build.rs reruns on changes there).
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// How long a unit of work waits for a pooled connection before the store reports itself
/// `Unavailable` (HTTP 503). Short enough that a request fails while its client still waits.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// An arbitrary, fixed key for the advisory lock that serializes concurrent migration runs
/// (several server processes starting at once against one database).
const MIGRATION_LOCK_KEY: i64 = 0x7265_6b6f_6d69; // "rekomi"

/// How many connections the pool may open, has open, and has idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUse {
    /// The pool's size.
    pub max: u32,
    /// Connections open.
    pub open: u32,
    /// Open connections not lent out.
    pub idle: u32,
}

/// Counts every statement a pooled connection sends (`rekomi_db_statements_total`): the cost
/// per Stripe event in `make bench` is read from it.
#[derive(Debug)]
struct CountStatements;

impl diesel::r2d2::CustomizeConnection<PgConnection, diesel::r2d2::Error> for CountStatements {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        conn.set_instrumentation(|event: diesel::connection::InstrumentationEvent<'_>| {
            if let diesel::connection::InstrumentationEvent::StartQuery { .. } = event {
                metrics::counter!("rekomi_db_statements_total").increment(1);
            }
        });
        Ok(())
    }
}

/// The PostgreSQL store: a pool of connections, cheap to clone and share.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool<ConnectionManager<PgConnection>>,
}

impl std::fmt::Debug for PgStore {
    // The manager holds the database URL, which may carry a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.pool.state();
        f.debug_struct("PgStore")
            .field("max_size", &self.pool.max_size())
            .field("connections", &state.connections)
            .field("idle_connections", &state.idle_connections)
            .finish()
    }
}

impl PgStore {
    /// Builds a pool of at most `max_connections` connections to `database_url`. The pool
    /// connects lazily, so a database that is down at start-up makes units of work fail with
    /// `Unavailable` (and `/readyz` say so) instead of preventing the process from starting.
    ///
    /// # Errors
    /// `Unexpected` when `max_connections` is zero.
    pub fn connect(database_url: &str, max_connections: u32) -> Result<PgStore, StoreError> {
        if max_connections == 0 {
            // r2d2 would panic on a zero-sized pool.
            return Err(StoreError::Unexpected(anyhow::anyhow!("the connection pool needs at least one connection")));
        }
        let manager = ConnectionManager::<PgConnection>::new(database_url);
        let pool = Pool::builder()
            .max_size(max_connections)
            .min_idle(Some(0))
            .connection_timeout(CHECKOUT_TIMEOUT)
            // Checks each connection before lending it, so a database restart costs failed
            // health checks instead of failed requests.
            .test_on_check_out(true)
            .connection_customizer(Box::new(CountStatements))
            .build_unchecked(manager);
        Ok(PgStore { pool })
    }

    /// How the pool is used right now, for `/metrics`.
    pub fn pool_use(&self) -> PoolUse {
        let state = self.pool.state();
        PoolUse { max: self.pool.max_size(), open: state.connections, idle: state.idle_connections }
    }

    /// Runs `f` with a pooled connection on the blocking pool, in the caller's tracing span.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut PgConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        let task = tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                // Checked out here, not before spawning: waiting for a free connection is
                // blocking work too.
                let mut conn = pool.get().map_err(|e| from_pool(&e))?;
                f(&mut conn)
            })
        });
        match task.await {
            Ok(result) => result,
            // A panic inside the work: the connection was discarded by the pool (r2d2 drops
            // connections returned while panicking), so only the request fails.
            Err(join) => Err(StoreError::Unexpected(anyhow::anyhow!("the unit of work did not finish: {join}"))),
        }
    }
}

/// Why `conn.transaction` ended without committing.
enum Abort {
    /// The work asked for a rollback; carries its error back to the caller.
    Rollback(Box<dyn std::any::Any + Send>),
    /// The database failed (BEGIN, COMMIT, or a statement the work could not survive).
    Store(StoreError),
}

impl From<diesel::result::Error> for Abort {
    fn from(err: diesel::result::Error) -> Self {
        Abort::Store(from_diesel(err))
    }
}

/// Runs one unit of work in one transaction on `conn`.
fn run_in_transaction(conn: &mut PgConnection, work: TxWork) -> Result<TxOutcome, StoreError> {
    let result = conn.transaction::<_, Abort, _>(|conn| {
        let mut tx = PgTx::new(conn);
        let outcome = work(&mut tx as &mut dyn Tx);
        match outcome {
            TxOutcome::Commit(value) => match tx.aborted_by() {
                // PostgreSQL already aborted the transaction, so COMMIT would quietly roll
                // back: report the truth instead of a commit that did not happen.
                Some(cause) => Err(Abort::Store(StoreError::Unexpected(anyhow::anyhow!(
                    "the unit of work asked to commit after a statement failed: {cause}"
                )))),
                None => Ok(value),
            },
            TxOutcome::Rollback(err) => Err(Abort::Rollback(err)),
        }
    });
    match result {
        Ok(value) => Ok(TxOutcome::Commit(value)),
        Err(Abort::Rollback(err)) => Ok(TxOutcome::Rollback(err)),
        Err(Abort::Store(err)) => Err(err),
    }
}

#[async_trait]
impl UnitOfWork for PgStore {
    async fn run(&self, work: TxWork) -> Result<TxOutcome, StoreError> {
        self.blocking(move |conn| run_in_transaction(conn, work)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.blocking(|conn| {
            diesel::sql_query("SELECT 1")
                .execute(conn)
                .map(|_| ())
                .map_err(|e| StoreError::Unavailable(format!("the database did not answer: {e}")))
        })
        .await
        .map_err(|e| match e {
            StoreError::Unavailable(_) => e,
            other => StoreError::Unavailable(other.to_string()),
        })
    }
}

/// Applies the embedded migrations that `database_url` has not run yet and returns how many
/// ran. Concurrent callers (several processes starting together) are serialized by an
/// advisory lock; each migration runs in its own transaction.
///
/// # Errors
/// When the database cannot be reached or a migration fails (that migration is rolled back).
pub fn run_migrations(database_url: &str) -> anyhow::Result<usize> {
    let mut conn = PgConnection::establish(database_url).context("connecting to PostgreSQL to run migrations")?;
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")).context("taking the migration lock")?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.len())
        .map_err(|e| anyhow::anyhow!(e).context("running migrations"));
    // Released explicitly so a failed run does not hold the lock while the caller reports;
    // closing the connection would release it too.
    let unlocked = conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
    let applied = applied?;
    unlocked.context("releasing the migration lock")?;
    if applied > 0 {
        tracing::info!(migrations.applied = applied, "database migrations applied");
    }
    Ok(applied)
}
