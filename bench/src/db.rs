//! The benchmark's own database connection: inbox progress, the correctness checks, the
//! PostgreSQL version, and `pg_stat_activity` sampling (what the server's backends wait on).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{sql_query, Connection, QueryableByName, RunQueryDsl};

/// Opens a connection.
///
/// # Errors
/// When PostgreSQL refuses it.
pub fn connect(url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::establish(url).with_context(|| "connecting to the benchmark database".to_owned())
}

#[derive(QueryableByName)]
struct One {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    v: String,
}

/// `SHOW server_version` with the platform part of `version()`.
///
/// # Errors
/// Query failures.
pub fn server_version(conn: &mut PgConnection) -> anyhow::Result<String> {
    let rows: Vec<Version> = sql_query("select current_setting('server_version') as v").load(conn)?;
    Ok(rows.into_iter().next().map(|r| r.v).unwrap_or_default())
}

/// A few settings that matter for commit-heavy work.
///
/// # Errors
/// Query failures.
pub fn settings(conn: &mut PgConnection) -> anyhow::Result<String> {
    let mut parts = Vec::new();
    for name in ["synchronous_commit", "fsync", "shared_buffers", "max_connections"] {
        let rows: Vec<Version> = sql_query(format!("select current_setting('{name}') as v")).load(conn)?;
        parts.push(format!("{name}={}", rows.into_iter().next().map(|r| r.v).unwrap_or_default()));
    }
    Ok(parts.join(", "))
}

fn count(conn: &mut PgConnection, sql: &str) -> anyhow::Result<i64> {
    let rows: Vec<One> = sql_query(sql).load(conn).with_context(|| sql.to_owned())?;
    Ok(rows.into_iter().next().map(|r| r.n).unwrap_or(0))
}

/// Inbox events still `Pending` (the worker's partial index answers this cheaply, unlike a
/// count of `Done` rows over the whole table).
///
/// # Errors
/// Query failures.
pub fn pending(conn: &mut PgConnection) -> anyhow::Result<i64> {
    count(conn, "select count(*) as n from inbox_events where status = 'Pending'")
}

/// Clicks written.
///
/// # Errors
/// Query failures.
pub fn clicks(conn: &mut PgConnection) -> anyhow::Result<i64> {
    count(conn, "select count(*) as n from clicks")
}

/// Server-to-server conversions of the benchmark and their commissions: `(count, sum)`.
///
/// # Errors
/// Query failures.
pub fn s2s_totals(conn: &mut PgConnection) -> anyhow::Result<(i64, i64)> {
    let n = count(conn, "select count(*) as n from conversions where external_event_id like 'bench_s2s_%'")?;
    let sum =
        count(conn, "select coalesce(sum(commission_minor), 0)::bigint as n from conversions where external_event_id like 'bench_s2s_%'")?;
    Ok((n, sum))
}

/// All inbox events.
///
/// # Errors
/// Query failures.
pub fn inbox_total(conn: &mut PgConnection) -> anyhow::Result<i64> {
    count(conn, "select count(*) as n from inbox_events")
}

#[derive(QueryableByName)]
struct StatusCount {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Inbox events per status.
///
/// # Errors
/// Query failures.
pub fn inbox_by_status(conn: &mut PgConnection) -> anyhow::Result<BTreeMap<String, i64>> {
    let rows: Vec<StatusCount> = sql_query("select status, count(*) as n from inbox_events group by status").load(conn)?;
    Ok(rows.into_iter().map(|r| (r.status, r.n)).collect())
}

#[derive(QueryableByName, Debug, Clone)]
pub struct Totals {
    #[diesel(sql_type = BigInt)]
    pub conversions: i64,
    #[diesel(sql_type = BigInt)]
    pub commission: i64,
    #[diesel(sql_type = BigInt)]
    pub amount: i64,
    #[diesel(sql_type = BigInt)]
    pub coupon_attributed: i64,
    #[diesel(sql_type = BigInt)]
    pub distinct_subscriptions: i64,
}

/// Conversions, their commissions and amounts, and how many the coupon decided.
///
/// # Errors
/// Query failures.
pub fn totals(conn: &mut PgConnection) -> anyhow::Result<Totals> {
    let rows: Vec<Totals> = sql_query(
        "select count(*) as conversions, coalesce(sum(commission_minor), 0)::bigint as commission, \
         coalesce(sum(amount_minor), 0)::bigint as amount, \
         count(*) filter (where attribution_method = 'coupon') as coupon_attributed, \
         count(distinct stripe_subscription_id) as distinct_subscriptions from conversions",
    )
    .load(conn)?;
    rows.into_iter().next().context("no totals row")
}

#[derive(QueryableByName)]
struct Span {
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    seconds: Option<f64>,
}

/// Seconds between the first and the last `processed_at` of Done events.
///
/// # Errors
/// Query failures.
pub fn processed_span_secs(conn: &mut PgConnection) -> anyhow::Result<f64> {
    let rows: Vec<Span> = sql_query(
        "select extract(epoch from max(processed_at) - min(processed_at))::float8 as seconds from inbox_events where status = 'Done'",
    )
    .load(conn)?;
    Ok(rows.into_iter().next().and_then(|r| r.seconds).unwrap_or(0.0))
}

/// The ledger entries (one `initial` per conversion expected).
///
/// # Errors
/// Query failures.
pub fn ledger_entries(conn: &mut PgConnection) -> anyhow::Result<i64> {
    count(conn, "select count(*) as n from ledger_events")
}

#[derive(QueryableByName)]
struct Activity {
    #[diesel(sql_type = Nullable<Text>)]
    state: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    wait: Option<String>,
}

/// Samples `pg_stat_activity` for the benchmark database every 50 ms on its own thread, and
/// tallies what the server's backends were doing: `active: CPU` (running, no wait event),
/// `active: IO/WalSync`, `idle in transaction`, …
pub struct ActivitySampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<(BTreeMap<String, u64>, u64)>,
}

impl ActivitySampler {
    /// Starts sampling.
    ///
    /// # Errors
    /// When the connection cannot be made.
    pub fn start(url: &str) -> anyhow::Result<Self> {
        let mut conn = connect(url)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut tally = BTreeMap::new();
            let mut samples = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let rows: Vec<Activity> = sql_query(
                    "select state, case when wait_event is null then null else wait_event_type || '/' || wait_event end as wait \
                     from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() \
                     and backend_type = 'client backend'",
                )
                .load(&mut conn)
                .unwrap_or_default();
                samples += 1;
                for row in rows {
                    let state = row.state.unwrap_or_else(|| "?".to_owned());
                    if state == "idle" {
                        continue;
                    }
                    let key = match row.wait {
                        Some(wait) => format!("{state}: {wait}"),
                        None => format!("{state}: CPU"),
                    };
                    *tally.entry(key).or_default() += 1;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (tally, samples)
        });
        Ok(Self { stop, handle })
    }

    /// Stops and returns, per state, the average number of backends in it (over samples).
    pub fn finish(self) -> Vec<(String, f64)> {
        self.stop.store(true, Ordering::Relaxed);
        let (tally, samples) = self.handle.join().unwrap_or_default();
        let mut averages: Vec<(String, f64)> =
            tally.into_iter().map(|(k, n)| (k, if samples == 0 { 0.0 } else { n as f64 / samples as f64 })).collect();
        averages.sort_by(|a, b| b.1.total_cmp(&a.1));
        averages
    }
}
