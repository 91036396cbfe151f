//! `rekomi-bench`: the benchmark behind `make bench` (run through `scripts/bench.sh`, which
//! builds the release binaries, creates the `rekomi_bench` database, migrates it and creates
//! an organization).
//!
//! 1. Ingestion: the release server with every background worker off receives signed
//!    `invoice.paid` events on `POST /api/webhooks/stripe` at a fixed rate (open loop, latency
//!    from the scheduled send time), after a warm-up.
//! 2. Processing: the server restarts with the inbox worker on and drains the inbox; the
//!    conversions per second, and a check that every event became one conversion with the
//!    right commission.
//! 3. A step test (500/1000/1500/2000/3000/4000 events/s by default, worker off again) finds where p99
//!    crosses the latency target. Its events stay Pending: the database is recreated per run.
//! 4. Clicks: Short links at a fixed rate, then a step test against the tracked server and a
//!    bare actix-web `302` (this binary with `--bare-redirect-port`), the ceiling (`clicks`).
//! 5. Server-to-server sales: signed `POST /api/tracking/s2s` at a fixed rate and a step test
//!    (`s2s`).
//!
//! Results go to stdout and to a dated section of `docs/benchmarks.md`.

// The `invoice.paid` body is one `json!` literal, deeper than the default limit allows.
#![recursion_limit = "256"]

mod clicks;
mod db;
mod events;
mod load;
mod payouts;
mod report;
mod s2s;
mod server;
mod sys;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::{json, Value};

use crate::events::Promo;
use crate::load::PhaseResult;
use crate::server::{Server, ServerSpec, Workers};
use crate::sys::{CpuSnapshot, CpuUsage, Machine};

/// Command-line options (each also read from a `BENCH_…` variable).
#[derive(Parser, Debug, Clone)]
#[command(name = "rekomi-bench", about = "Stripe webhook ingestion and inbox processing benchmark")]
pub struct Options {
    /// The release server binary.
    #[arg(long, env = "BENCH_SERVER_BIN", default_value = "target/release/rekomi-server")]
    server_bin: PathBuf,
    /// The (freshly migrated) benchmark database.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// A read_write API key of the benchmark organization (Growth plan).
    #[arg(long, env = "BENCH_API_KEY")]
    api_key: String,
    /// Fixed request rate of the main ingestion run, events per second.
    #[arg(long, env = "BENCH_RATE", default_value_t = 1000.0)]
    rate: f64,
    /// Length of the main ingestion run, seconds.
    #[arg(long, env = "BENCH_DURATION", default_value_t = 20)]
    duration: u64,
    /// Warm-up before the main run (same rate, not measured), seconds.
    #[arg(long, env = "BENCH_WARMUP", default_value_t = 3)]
    warmup: u64,
    /// Step-test rates, comma-separated; empty skips the step test.
    #[arg(long, env = "BENCH_STEPS", default_value = "500,1000,1500,2000,3000,4000", value_parser = parse_rates)]
    steps: Rates,
    /// Length of each step, seconds.
    #[arg(long, env = "BENCH_STEP_DURATION", default_value_t = 5)]
    step_duration: u64,
    /// Requests in flight at most; a request that finds no free slot at its scheduled time is
    /// counted as `no slot` (failed), never delayed.
    #[arg(long, env = "BENCH_CONCURRENCY", default_value_t = 256)]
    concurrency: usize,
    /// Tokio worker threads of the load generator.
    #[arg(long, env = "BENCH_CLIENT_THREADS", default_value_t = 1)]
    client_threads: usize,
    /// `REKOMI_HTTP_WORKERS` of the server (default: the server's, one per core).
    #[arg(long, env = "BENCH_SERVER_HTTP_WORKERS")]
    server_http_workers: Option<usize>,
    /// `REKOMI_DB_POOL_SIZE` of the server (default: the server's, 16).
    #[arg(long, env = "BENCH_DB_POOL_SIZE")]
    db_pool_size: Option<u32>,
    /// The invoices' `amount_paid`, minor units (USD).
    #[arg(long, env = "BENCH_AMOUNT", default_value_t = 1500)]
    amount: i64,
    /// Server processes draining the inbox in the processing phase (each runs one inbox
    /// worker; they share the inbox through row locks, as several replicas would).
    #[arg(long, env = "BENCH_PROCESS_SERVERS", default_value_t = 1)]
    process_servers: usize,
    /// How long the processing phase may take before it gives up, seconds.
    #[arg(long, env = "BENCH_PROCESS_TIMEOUT", default_value_t = 240)]
    process_timeout: u64,
    /// The markdown file whose dated section is replaced; empty writes nothing.
    #[arg(long, env = "BENCH_OUT", default_value = "docs/benchmarks.md")]
    out: String,
    /// The source tree measured (`git describe --always --dirty`), recorded in the report.
    #[arg(long, env = "BENCH_SOURCE", default_value = "unknown")]
    source: String,
    /// The command recorded in the report.
    #[arg(long, env = "BENCH_COMMAND", default_value = "make bench")]
    command: String,
    /// Short-link clicks per second of the click run.
    #[arg(long, env = "BENCH_CLICK_RATE", default_value_t = 10_000.0)]
    click_rate: f64,
    /// Length of the click run, seconds; 0 skips the click phase.
    #[arg(long, env = "BENCH_CLICK_DURATION", default_value_t = 20)]
    click_duration: u64,
    /// Step rates of the tracked-versus-bare comparison, comma-separated (each lasts
    /// `BENCH_STEP_DURATION`).
    #[arg(long, env = "BENCH_CLICK_STEPS", default_value = "5000,10000,15000,20000,25000", value_parser = parse_rates)]
    click_steps: Rates,
    /// Signed S2S sales per second of the S2S run.
    #[arg(long, env = "BENCH_S2S_RATE", default_value_t = 1000.0)]
    s2s_rate: f64,
    /// Length of the S2S run, seconds; 0 skips the S2S phase.
    #[arg(long, env = "BENCH_S2S_DURATION", default_value_t = 10)]
    s2s_duration: u64,
    /// Step rates of the S2S step test, comma-separated.
    #[arg(long, env = "BENCH_S2S_STEPS", default_value = "500,1000,1500,2000,3000", value_parser = parse_rates)]
    s2s_steps: Rates,
    /// Affiliates of the payout phase.
    #[arg(long, env = "BENCH_PAYOUT_AFFILIATES", default_value_t = 10_000)]
    payout_affiliates: i64,
    /// Ledger entries of the payout phase (spread evenly); 0 skips the phase.
    #[arg(long, env = "BENCH_PAYOUT_ENTRIES", default_value_t = 1_000_000)]
    payout_entries: i64,
    /// Target of the payout run, seconds.
    #[arg(long, default_value_t = 60.0)]
    payout_run_target_secs: f64,
    /// Target of the server's peak memory during the payout phase, MiB.
    #[arg(long, default_value_t = 200.0)]
    payout_memory_target_mib: f64,
    /// p99 target of an S2S sale, milliseconds.
    #[arg(long, default_value_t = 25.0)]
    s2s_p99_target_ms: f64,
    /// p99 target of a click, milliseconds.
    #[arg(long, default_value_t = 5.0)]
    click_p99_target_ms: f64,
    /// Latency target for p99, milliseconds.
    #[arg(long, default_value_t = 50.0)]
    p99_target_ms: f64,
    /// Accepted events per second the target asks for.
    #[arg(long, default_value_t = 1000.0)]
    rate_target: f64,
}

/// Comma-separated rates (empty: none).
#[derive(Debug, Clone, Default)]
pub struct Rates(pub Vec<f64>);

impl std::ops::Deref for Rates {
    type Target = Vec<f64>;
    fn deref(&self) -> &Vec<f64> {
        &self.0
    }
}

fn parse_rates(raw: &str) -> Result<Rates, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| r.parse::<f64>().map_err(|_| format!("{r:?} is not a rate")))
        .collect::<Result<Vec<_>, _>>()
        .map(Rates)
}

/// The commission rate of the benchmark program, percent.
const COMMISSION_PERCENT: i64 = 20;

/// `rekomi-bench --bare-redirect-port PORT [--server-http-workers N]`: the click phase's
/// ceiling, run as a child process of the benchmark.
fn bare_redirect_args() -> Option<(u16, Option<usize>)> {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
    let port = value("--bare-redirect-port")?.parse().ok()?;
    Some((port, value("--server-http-workers").and_then(|n| n.parse().ok())))
}

fn main() -> anyhow::Result<()> {
    if let Some((port, workers)) = bare_redirect_args() {
        return clicks::serve_bare(port, workers);
    }
    let options = Options::parse();
    if options.rate <= 0.0
        || options.click_rate <= 0.0
        || options.s2s_rate <= 0.0
        || options.steps.iter().chain(options.click_steps.iter()).chain(options.s2s_steps.iter()).any(|r| *r <= 0.0)
    {
        bail!("rates must be positive");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(options.client_threads.max(1)).enable_all().build()?;
    let report = runtime.block_on(run(&options))?;
    let markdown = report.markdown();
    println!("{markdown}");
    if !options.out.is_empty() {
        report::write_section(&options.out, &report.heading(), &markdown)?;
        eprintln!("rekomi-bench: wrote the section \"{}\" of {}", report.heading(), options.out);
    }
    Ok(())
}

/// Everything the report shows.
pub struct Report {
    pub options: Options,
    pub machine: Machine,
    pub postgres: String,
    pub pg_settings: String,
    pub started_utc: time::OffsetDateTime,
    pub elapsed: Duration,
    /// The machine's CPU use during the 2 seconds before the benchmark (other work).
    pub baseline: CpuUsage,
    pub main: PhaseResult,
    pub main_cpu: CpuUsage,
    pub main_waits: Vec<(String, f64)>,
    pub steps: Vec<(PhaseResult, CpuUsage)>,
    pub processing: Processing,
    pub clicks: Option<clicks::ClickPhase>,
    pub s2s: Option<s2s::S2sPhase>,
    pub payouts: Option<payouts::PayoutPhase>,
}

/// The processing phase.
#[derive(Debug, Clone)]
pub struct Processing {
    pub events: i64,
    pub wall_secs: f64,
    pub drained: bool,
    /// Done events over the span between the first and the last `processed_at`.
    pub done_per_sec_db: f64,
    /// Done events over the wall time from the server's start to the last poll.
    pub done_per_sec_wall: f64,
    /// The best 5-second window seen while polling.
    pub peak_5s_per_sec: f64,
    pub by_status: Vec<(String, i64)>,
    pub totals: db::Totals,
    pub ledger_entries: i64,
    pub expected_commission: i64,
    pub cpu: CpuUsage,
    pub waits: Vec<(String, f64)>,
    /// Statements the servers sent to PostgreSQL while draining, per event (from their
    /// `/metrics`; start-up and readiness checks included).
    pub statements_per_event: Option<f64>,
}

impl Processing {
    /// Every event Done, one conversion each, one ledger entry each, commissions exact.
    pub fn correct(&self) -> bool {
        let done = self.by_status.iter().find(|(s, _)| s == "Done").map(|(_, n)| *n).unwrap_or(0);
        done == self.events
            && self.totals.conversions == self.events
            && self.totals.distinct_subscriptions == self.events
            && self.totals.coupon_attributed == self.events
            && self.ledger_entries == self.events
            && self.totals.commission == self.expected_commission
    }
}

async fn run(options: &Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let started_utc = time::OffsetDateTime::now_utc();
    let machine = Machine::detect();
    let mut conn = db::connect(&options.database_url)?;
    let postgres = db::server_version(&mut conn)?;
    let pg_settings = db::settings(&mut conn)?;
    if db::inbox_total(&mut conn)? != 0 {
        bail!("the benchmark database already holds inbox events: scripts/bench.sh recreates it for every run");
    }
    let before = CpuSnapshot::take(&[]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let baseline = before.usage_until(&CpuSnapshot::take(&[]));
    if baseline.machine_busy > 0.2 {
        eprintln!("rekomi-bench: warning: the machine is already busy ({:.2} cores) before the benchmark", baseline.machine_busy);
    }
    let root = std::env::current_dir()?;
    let secret = format!("whsec_bench_{}", started_utc.unix_timestamp());
    let spec = ServerSpec {
        binary: options.server_bin.clone(),
        database_url: options.database_url.clone(),
        webhook_secret: secret.clone(),
        http_workers: options.server_http_workers,
        db_pool_size: options.db_pool_size,
        log_dir: server::log_dir(&root),
    };
    let run_tag = format!("{:x}", started_utc.unix_timestamp());
    let mut next_event = 0u64;

    // Phase 1: ingestion, every worker off.
    eprintln!("rekomi-bench: phase 1 (ingestion): starting the server with its workers off");
    let mut srv = Server::start(&spec, Workers::Off, "ingest").await?;
    let promo = setup(&srv.base, &options.api_key).await?;
    eprintln!("rekomi-bench: promotion code {} ({}) on coupon {}", promo.code, promo.promotion_code_id, promo.coupon_id);
    let url = format!("{}/api/webhooks/stripe", srv.base);
    let client = load::client(options.concurrency)?;
    let sender = load::webhook_sender(&client, &url);

    let warmup_count = (options.rate * options.warmup as f64).round() as u64;
    if warmup_count > 0 {
        eprintln!("rekomi-bench: warm-up, {} s at {}/s", options.warmup, options.rate);
        let batch = events::signed_batch(&run_tag, next_event, warmup_count, &promo, options.amount, &secret);
        next_event += warmup_count;
        let warm = load::run_fixed_rate("warm-up", &sender, batch, options.rate, options.concurrency).await;
        eprintln!("rekomi-bench: warm-up: {} ok, {} errors, p99 {:?}", warm.ok, warm.errors, warm.latency.p99);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let main_count = (options.rate * options.duration as f64).round() as u64;
    eprintln!("rekomi-bench: main run, {} s at {}/s ({} events)", options.duration, options.rate, main_count);
    let batch = events::signed_batch(&run_tag, next_event, main_count, &promo, options.amount, &secret);
    next_event += main_count;
    let sampler = db::ActivitySampler::start(&options.database_url)?;
    let cpu_before = CpuSnapshot::take(&[srv.pid]);
    let main = load::run_fixed_rate("main", &sender, batch, options.rate, options.concurrency).await;
    let main_cpu = cpu_before.usage_until(&CpuSnapshot::take(&[srv.pid]));
    let main_waits = sampler.finish();
    eprintln!("rekomi-bench: main: {}", report::phase_line(&main));
    drop(sender);
    drop(client);
    srv.stop();

    // Phase 2: processing, the inbox worker on.
    let events_to_process = db::pending(&mut conn)?;
    eprintln!("rekomi-bench: phase 2 (processing): {events_to_process} Pending events; starting the server with the inbox worker on");
    let processing = process(options, &spec, &mut conn, events_to_process).await?;
    eprintln!(
        "rekomi-bench: processing: {:.0} conversions/s (processed_at span), {} statements per event, correct = {}",
        processing.done_per_sec_db,
        processing.statements_per_event.map_or_else(|| "?".to_owned(), |n| format!("{n:.1}")),
        processing.correct()
    );

    // Phase 3: step test, workers off again.
    let mut steps = Vec::new();
    if !options.steps.is_empty() {
        eprintln!("rekomi-bench: phase 3 (step test): {:?} events/s, {} s each", options.steps.0, options.step_duration);
        let mut srv = Server::start(&spec, Workers::Off, "steps").await?;
        let url = format!("{}/api/webhooks/stripe", srv.base);
        let client = load::client(options.concurrency)?;
        let sender = load::webhook_sender(&client, &url);
        // A short warm-up to open connections and warm the new process.
        let batch = events::signed_batch(&run_tag, next_event, 500, &promo, options.amount, &secret);
        next_event += 500;
        let _ = load::run_fixed_rate("step warm-up", &sender, batch, 500.0, options.concurrency).await;
        for rate in options.steps.iter() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let count = (rate * options.step_duration as f64).round() as u64;
            let batch = events::signed_batch(&run_tag, next_event, count, &promo, options.amount, &secret);
            next_event += count;
            let before = CpuSnapshot::take(&[srv.pid]);
            let step = load::run_fixed_rate(&format!("step {rate}/s"), &sender, batch, *rate, options.concurrency).await;
            let cpu = before.usage_until(&CpuSnapshot::take(&[srv.pid]));
            eprintln!("rekomi-bench: {}", report::phase_line(&step));
            steps.push((step, cpu));
        }
        drop(sender);
        drop(client);
        srv.stop();
    }

    // Phase 4: clicks.
    let clicks = if options.click_duration > 0 {
        eprintln!("rekomi-bench: phase 4 (clicks): GET /r/{} at {}/s", clicks::SLUG, options.click_rate);
        Some(clicks::run(options, &spec, &mut conn).await?)
    } else {
        None
    };

    // Phase 5: server-to-server sales.
    let s2s = if options.s2s_duration > 0 {
        eprintln!("rekomi-bench: phase 5 (S2S): POST /api/tracking/s2s at {}/s", options.s2s_rate);
        Some(s2s::run(options, &spec, &mut conn, &run_tag, clicks::SLUG).await?)
    } else {
        None
    };

    // Phase 6: a payout run at scale.
    let payouts = if options.payout_entries > 0 && options.payout_affiliates > 0 {
        eprintln!("rekomi-bench: phase 6 (payouts): {} affiliates, {} entries", options.payout_affiliates, options.payout_entries);
        Some(payouts::run(options, &spec, &mut conn).await?)
    } else {
        None
    };

    Ok(Report {
        options: options.clone(),
        machine,
        postgres,
        pg_settings,
        started_utc,
        elapsed: started.elapsed(),
        baseline,
        main,
        main_cpu,
        main_waits,
        steps,
        processing,
        clicks,
        s2s,
        payouts,
    })
}

/// Phase 2: restart with the inbox worker on and poll until the inbox is drained.
async fn process(options: &Options, spec: &ServerSpec, conn: &mut diesel::PgConnection, events: i64) -> anyhow::Result<Processing> {
    let sampler = db::ActivitySampler::start(&options.database_url)?;
    let t0 = Instant::now();
    let mut servers = Vec::new();
    for i in 0..options.process_servers.max(1) {
        servers.push(Server::start(spec, Workers::InboxOnly, &format!("process-{i}")).await?);
    }
    let pids: Vec<u32> = servers.iter().map(|s| s.pid).collect();
    let cpu_before = CpuSnapshot::take(&pids);
    let deadline = t0 + Duration::from_secs(options.process_timeout);
    let mut history: Vec<(f64, i64)> = Vec::new();
    let mut drained = false;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let pending = db::pending(conn)?;
        let done = events - pending;
        history.push((t0.elapsed().as_secs_f64(), done));
        if pending == 0 {
            drained = true;
            break;
        }
        if Instant::now() >= deadline {
            eprintln!("rekomi-bench: processing timed out with {pending} events still Pending");
            break;
        }
        if history.len().is_multiple_of(20) {
            eprintln!("rekomi-bench: processing: {done}/{events} after {:.1} s", t0.elapsed().as_secs_f64());
        }
    }
    let wall_secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_before.usage_until(&CpuSnapshot::take(&pids));
    let mut statements = Some(0u64);
    for server in &servers {
        statements = match (statements, server.statements().await) {
            (Some(total), Some(n)) => Some(total + n),
            _ => None,
        };
    }
    for server in &mut servers {
        server.stop();
    }
    let waits = sampler.finish();

    let by_status: Vec<(String, i64)> = db::inbox_by_status(conn)?.into_iter().collect();
    let done = by_status.iter().find(|(s, _)| s == "Done").map(|(_, n)| *n).unwrap_or(0);
    let span = db::processed_span_secs(conn)?;
    let totals = db::totals(conn)?;
    let ledger_entries = db::ledger_entries(conn)?;
    let mut peak = 0.0f64;
    for (i, (t, n)) in history.iter().enumerate() {
        if let Some((t5, n5)) = history[i..].iter().find(|(t2, _)| t2 - t >= 5.0) {
            peak = peak.max((n5 - n) as f64 / (t5 - t));
        }
    }
    Ok(Processing {
        events,
        wall_secs,
        drained,
        done_per_sec_db: if span > 0.0 { done as f64 / span } else { 0.0 },
        done_per_sec_wall: if wall_secs > 0.0 { done as f64 / wall_secs } else { 0.0 },
        peak_5s_per_sec: peak,
        by_status,
        expected_commission: events * options.amount * COMMISSION_PERCENT / 100,
        totals,
        ledger_entries,
        cpu,
        waits,
        statements_per_event: statements.filter(|_| events > 0).map(|n| n as f64 / events as f64),
    })
}

/// Program (20 %), affiliate, campaign coupon (25 % off) and affiliate coupon, through the API.
async fn setup(base: &str, api_key: &str) -> anyhow::Result<Promo> {
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build()?;
    let post = |path: String, body: Value| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let response = client.post(&url).bearer_auth(api_key).json(&body).send().await.with_context(|| format!("POST {url}"))?;
            let status = response.status();
            let value: Value = response.json().await.with_context(|| format!("POST {url}: reading the answer"))?;
            if !status.is_success() {
                bail!("POST {url}: {status} {value}");
            }
            Ok::<Value, anyhow::Error>(value)
        }
    };
    let field = |value: &Value, name: &str| -> anyhow::Result<String> {
        value.get(name).and_then(Value::as_str).map(str::to_owned).with_context(|| format!("no `{name}` in {value}"))
    };
    let program = post(
        "/api/v1/programs".to_owned(),
        json!({ "name": "Bench program", "defaultCommissionType": "Percentage", "defaultCommissionValue": COMMISSION_PERCENT,
                "landingUrl": clicks::LANDING }),
    )
    .await?;
    let program_id = field(&program, "id")?;
    let affiliate = post(
        "/api/v1/affiliates".to_owned(),
        json!({ "programId": program_id, "email": "bench.affiliate@example.com", "fullName": "Bench Affiliate", "customAlias": clicks::SLUG }),
    )
    .await?;
    let affiliate_id = field(&affiliate, "id")?;
    let coupon = post(
        format!("/api/v1/campaigns/{program_id}/coupons"),
        json!({ "name": "Bench 25% off", "discountType": "PercentOff", "discountValue": 25, "duration": "Once",
                "allowAffiliateSelfMint": false, "overridesClickAttribution": true }),
    )
    .await?;
    let coupon_id = field(&coupon, "id")?;
    let code =
        post(format!("/api/v1/affiliates/{affiliate_id}/coupons"), json!({ "campaignCouponId": coupon_id, "code": "BENCH20" })).await?;
    Ok(Promo {
        promotion_code_id: field(&code, "stripePromotionCodeId")?,
        code: field(&code, "code")?,
        coupon_id: field(&coupon, "stripeCouponId")?,
    })
}
