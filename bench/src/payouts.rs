//! Phase 6, a payout run at scale: 10,000 Approved affiliates with 1,000,000 payable ledger
//! entries between them (100,000 conversions of 10 entries, seeded with `INSERT … SELECT` in
//! the benchmark organization), then `POST /api/v1/payouts/preview` and a Manual
//! `POST /api/v1/payouts/run` of all of it against a fresh release server. Reports the run's
//! time (to the answer's last byte) and the server's peak resident memory (`VmHWM`), and checks
//! that exactly one payout per affiliate paid exactly the seeded total.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use diesel::sql_types::{BigInt, Text};
use diesel::{sql_query, QueryableByName, RunQueryDsl};
use serde_json::{json, Value};

use crate::server::{Server, ServerSpec, Workers};
use crate::Options;

/// What the phase measured.
pub struct PayoutPhase {
    pub affiliates: i64,
    pub entries: i64,
    pub seed_secs: f64,
    pub preview_secs: f64,
    /// Until the run's answer began (its transaction committed).
    pub commit_secs: f64,
    pub run_secs: f64,
    /// The answer's size, bytes.
    pub answer_bytes: usize,
    /// The server's peak resident memory over its life (started for this phase), MiB.
    pub peak_rss_mib: Option<f64>,
    /// Its resident memory when it was ready, before the preview, MiB.
    pub idle_rss_mib: Option<f64>,
    pub expected_total: i64,
    pub preview_total: i64,
    pub payouts: i64,
    pub paid_total: i64,
    pub line_items: i64,
    pub conversions_paid: i64,
}

impl PayoutPhase {
    /// One payout per affiliate, the seeded total paid, every entry a line item, every
    /// conversion Paid.
    pub fn correct(&self) -> bool {
        self.payouts == self.affiliates
            && self.paid_total == self.expected_total
            && self.preview_total == self.expected_total
            && self.line_items == self.entries
            && self.conversions_paid == self.entries / ENTRIES_PER_CONVERSION
    }
}

/// Entries per seeded conversion (an initial one and nine renewals).
const ENTRIES_PER_CONVERSION: i64 = 10;

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = Text)]
    id: String,
}

#[derive(QueryableByName)]
struct Sum {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn one(conn: &mut diesel::PgConnection, sql: &str) -> anyhow::Result<i64> {
    Ok(sql_query(sql).get_result::<Sum>(conn).with_context(|| sql.to_owned())?.n)
}

/// Seeds the organization of the first program (the benchmark's) with `affiliates` payees and
/// `entries` payable entries; returns the organization id and the seeded total.
fn seed(conn: &mut diesel::PgConnection, affiliates: i64, entries: i64) -> anyhow::Result<(String, i64)> {
    let org: Id =
        sql_query("select org_id::text as id from programs order by id limit 1").get_result(conn).context("the benchmark program")?;
    let program: Id =
        sql_query(format!("select id::text as id from programs where org_id = '{}' order by id limit 1", org.id)).get_result(conn)?;
    let per_affiliate = (entries / affiliates / ENTRIES_PER_CONVERSION).max(1);
    let statements = [
        format!(
            "insert into affiliates (id, org_id, program_id, email, status, source, applied_at, approved_at, created_at, updated_at) \
             select gen_random_uuid(), '{org}', '{program}', 'payee' || g || '@bench.example', 'Approved', 'Direct', now(), now(), now(), now() \
             from generate_series(1, {affiliates}) g",
            org = org.id,
            program = program.id
        ),
        format!(
            "insert into conversions (id, org_id, program_id, affiliate_id, kind, status, amount_minor, currency, commission_minor, \
                 attribution_trace, paid_invoices, approve_after, approved_at, created_at, updated_at) \
             select gen_random_uuid(), a.org_id, a.program_id, a.id, 'Recurring', 'Approved', 10000, 'USD', 0, '{{}}'::jsonb, \
                 {ENTRIES_PER_CONVERSION}, now() - interval '40 days', now(), now(), now() \
             from affiliates a cross join generate_series(1, {per_affiliate}) g where a.email like 'payee%@bench.example'"
        ),
        format!(
            "insert into ledger_events (id, org_id, conversion_id, affiliate_id, currency, kind, amount_minor, commission_minor, \
                 occurred_at, payable_after, home_currency, fx_rate, fx_source, created_at) \
             select gen_random_uuid(), c.org_id, c.id, c.affiliate_id, 'USD', case when g = 1 then 'initial' else 'renewal' end, \
                 10000, 100 + (g * 37 + ascii(c.id::text)) % 900, now() - interval '40 days', now() - interval '1 day', 'USD', '1', 'identity', now() \
             from conversions c join affiliates a on a.id = c.affiliate_id cross join generate_series(1, {ENTRIES_PER_CONVERSION}) g \
             where a.email like 'payee%@bench.example'"
        ),
        "analyze affiliates".to_owned(),
        "analyze conversions".to_owned(),
        "analyze ledger_events".to_owned(),
    ];
    for statement in &statements {
        sql_query(statement).execute(conn).with_context(|| statement.clone())?;
    }
    let total = one(
        conn,
        &format!(
            "select coalesce(sum(e.commission_minor), 0)::bigint as n from ledger_events e join affiliates a on a.id = e.affiliate_id \
             where e.org_id = '{}' and a.email like 'payee%@bench.example' and e.payable_after <= now()",
            org.id
        ),
    )?;
    Ok((org.id, total))
}

/// `VmHWM` or `VmRSS` of a process, MiB.
fn memory_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs the phase.
///
/// # Errors
/// When seeding, the server or a request fails.
pub async fn run(options: &Options, spec: &ServerSpec, conn: &mut diesel::PgConnection) -> anyhow::Result<PayoutPhase> {
    let (affiliates, entries) = (options.payout_affiliates, options.payout_entries);
    let t0 = Instant::now();
    let (org, expected_total) = seed(conn, affiliates, entries)?;
    let seed_secs = t0.elapsed().as_secs_f64();
    eprintln!("rekomi-bench: payouts: seeded {affiliates} affiliates and {entries} entries in {seed_secs:.1} s");
    let mut srv = Server::start(spec, Workers::Off, "payouts").await?;
    let idle_rss_mib = memory_mib(srv.pid, "VmRSS:");
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(600)).build()?;
    let post = |path: &str, body: Value| client.post(format!("{}{path}", srv.base)).bearer_auth(&options.api_key).json(&body).send();

    let t = Instant::now();
    let preview = post("/api/v1/payouts/preview", json!({ "method": "Manual" })).await?;
    if !preview.status().is_success() {
        bail!("preview: {} {}", preview.status(), preview.text().await.unwrap_or_default());
    }
    let preview: Value = preview.json().await?;
    let preview_secs = t.elapsed().as_secs_f64();
    let preview_total = preview["totalCents"].as_i64().unwrap_or(-1);
    eprintln!("rekomi-bench: payouts: preview of {} cents in {preview_secs:.1} s", preview_total);

    let t = Instant::now();
    let answer = post("/api/v1/payouts/run", json!({ "method": "Manual", "confirmTotalCents": preview_total })).await?;
    let commit_secs = t.elapsed().as_secs_f64();
    let status = answer.status();
    let body = answer.bytes().await?;
    let run_secs = t.elapsed().as_secs_f64();
    if !status.is_success() {
        bail!("run: {status} {}", String::from_utf8_lossy(&body[..body.len().min(500)]));
    }
    let peak_rss_mib = memory_mib(srv.pid, "VmHWM:");
    srv.stop();
    eprintln!("rekomi-bench: payouts: run answered {} bytes in {run_secs:.1} s; server peak RSS {peak_rss_mib:?} MiB", body.len());

    let payouts = one(conn, &format!("select count(*)::bigint as n from payouts where org_id = '{org}'"))?;
    let paid_total =
        one(conn, &format!("select coalesce(sum(amount_minor), 0)::bigint as n from payouts where org_id = '{org}' and status = 'Paid'"))?;
    let line_items = one(conn, &format!("select count(*)::bigint as n from payout_line_items where org_id = '{org}' and not released"))?;
    let conversions_paid = one(conn, &format!("select count(*)::bigint as n from conversions where org_id = '{org}' and status = 'Paid'"))?;
    Ok(PayoutPhase {
        affiliates,
        entries: affiliates * (entries / affiliates / ENTRIES_PER_CONVERSION).max(1) * ENTRIES_PER_CONVERSION,
        seed_secs,
        preview_secs,
        commit_secs,
        run_secs,
        answer_bytes: body.len(),
        peak_rss_mib,
        idle_rss_mib,
        expected_total,
        preview_total,
        payouts,
        paid_total,
        line_items,
        conversions_paid,
    })
}
