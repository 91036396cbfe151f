//! The markdown report and its dated section in `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context;

use crate::load::PhaseResult;
use crate::Report;

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// One line for the console.
pub fn phase_line(p: &PhaseResult) -> String {
    format!(
        "{} at {}/s: {} sent, {} ok, {} errors, {} no slot, {:.0} accepted/s, p50 {} ms, p90 {} ms, p99 {} ms, max {} ms{}",
        p.label,
        p.rate,
        p.scheduled,
        p.ok,
        p.errors,
        p.no_slot,
        p.accepted_per_sec,
        ms(p.latency.p50),
        ms(p.latency.p90),
        ms(p.latency.p99),
        ms(p.latency.max),
        p.error_examples.first().map(|e| format!(" (first error: {e})")).unwrap_or_default()
    )
}

fn row(p: &PhaseResult, cpu: Option<&crate::sys::CpuUsage>) -> String {
    let cpu = cpu
        .map(|c| {
            format!(
                " {:.2} / {:.2} / {:.2} / {:.2} |",
                share(c, "rekomi-server"),
                share(c, "postgres"),
                share(c, "rekomi-bench"),
                share(c, "other")
            )
        })
        .unwrap_or_default();
    format!(
        "| {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} |{}",
        p.label,
        p.rate,
        p.scheduled,
        p.ok,
        p.errors,
        p.no_slot,
        p.accepted_per_sec,
        ms(p.latency.p50),
        ms(p.latency.p90),
        ms(p.latency.p99),
        ms(p.latency.p999),
        ms(p.latency.max),
        cpu
    )
}

fn share(c: &crate::sys::CpuUsage, group: &str) -> f64 {
    c.groups.iter().find(|(g, _)| *g == group).map(|(_, v)| *v).unwrap_or(0.0)
}

impl Report {
    /// `Run 2026-05-01`: one section per day (a later run the same day replaces it).
    pub fn heading(&self) -> String {
        let t = self.started_utc;
        format!("Run {:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
    }

    fn started(&self) -> String {
        let t = self.started_utc;
        format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
    }

    fn meets_target(&self, p: &PhaseResult) -> bool {
        p.accepted_per_sec >= self.options.rate_target * 0.99
            && p.errors == 0
            && p.no_slot == 0
            && p.latency.p99.as_secs_f64() * 1000.0 < self.options.p99_target_ms
    }

    /// The section, starting with its `##` heading.
    pub fn markdown(&self) -> String {
        let o = &self.options;
        let m = &self.machine;
        let mut s = String::new();
        let _ = writeln!(s, "## {}\n", self.heading());
        let _ = writeln!(
            s,
            "Started {}. Command: `{}` (`scripts/bench.sh`, then `target/release/rekomi-bench`); the measurement took {:.0} s \
             (plus the build). Source: `{}` as built.\n",
            self.started(),
            o.command,
            self.elapsed.as_secs_f64(),
            o.source
        );
        let _ = writeln!(s, "| Machine | |\n|---|---|");
        let _ = writeln!(s, "| CPU | {} |", m.cpu_model);
        let _ = writeln!(s, "| Cores | {} (shared by the server, PostgreSQL and the load generator) |", m.cores);
        let _ = writeln!(s, "| Memory | {} |", m.memory);
        let _ = writeln!(s, "| PostgreSQL | {} ({}) |", self.postgres, self.pg_settings);
        let _ = writeln!(s, "| OS | {} (Linux {}) |", m.os, m.kernel);
        let _ = writeln!(
            s,
            "| Busy before the run | {:.2} of {:.2} cores (work of other processes during the 2 s before the benchmark) |\n",
            self.baseline.machine_busy, self.baseline.machine_total
        );
        let _ = writeln!(
            s,
            "Parameters: main run {} events/s for {} s after a {} s warm-up; step test {} events/s, {} s each; \
             at most {} requests in flight; load generator on {} tokio worker thread(s); server HTTP workers {}, \
             DB pool {}; `invoice.paid` of {} cents with an expanded promotion-code discount, program commission {} %.\n",
            o.rate,
            o.duration,
            o.warmup,
            o.steps.iter().map(|r| format!("{r}")).collect::<Vec<_>>().join("/"),
            o.step_duration,
            o.concurrency,
            o.client_threads,
            o.server_http_workers.map(|n| n.to_string()).unwrap_or_else(|| format!("{} (default: cores)", m.cores)),
            o.db_pool_size.map(|n| n.to_string()).unwrap_or_else(|| "16 (default)".to_owned()),
            o.amount,
            crate::COMMISSION_PERCENT,
        );

        let main = &self.main;
        let verdict = if self.meets_target(main) {
            format!(
                "**Target met**: {:.0} events/s accepted with p99 {} ms (target ≥ {} events/s, p99 < {} ms).",
                main.accepted_per_sec,
                ms(main.latency.p99),
                o.rate_target,
                o.p99_target_ms
            )
        } else {
            format!(
                "**Target missed**: {:.0} events/s accepted ({} errors, {} no slot) with p99 {} ms (target ≥ {} events/s, p99 < {} ms).",
                main.accepted_per_sec,
                main.errors,
                main.no_slot,
                ms(main.latency.p99),
                o.rate_target,
                o.p99_target_ms
            )
        };
        let _ = writeln!(s, "### Ingestion: `POST /api/webhooks/stripe` at a fixed rate (open loop)\n");
        let _ = writeln!(s, "{verdict}\n");
        let _ = writeln!(
            s,
            "Latency runs from each request's scheduled send time to the end of its response, so the generator's own \
             lateness counts against the server (no coordinated omission). Inbox worker, delivery and reconcile off.\n"
        );
        let _ = writeln!(
            s,
            "| Run | rate/s | sent | accepted | errors | no slot | accepted/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | CPU cores: server / postgres / generator / other |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        let _ = writeln!(s, "{}", row(main, Some(&self.main_cpu)));
        for (step, cpu) in &self.steps {
            let _ = writeln!(s, "{}", row(step, Some(cpu)));
        }
        let _ = writeln!(s);
        let crossing = self.steps.iter().find(|(p, _)| !self.meets_target_at(p));
        let step_verdict = match (self.steps.is_empty(), crossing) {
            (true, _) => "No step test was run.".to_owned(),
            (false, None) => format!(
                "Step test: every step met its rate with p99 under {} ms (up to {} events/s).",
                o.p99_target_ms,
                self.steps.last().map(|(p, _)| p.rate).unwrap_or(0.0)
            ),
            (false, Some((p, _))) => {
                let held = self.steps.iter().take_while(|(q, _)| self.meets_target_at(q)).last().map(|(q, _)| q.rate);
                format!(
                    "Step test: p99 first exceeds {} ms (or the rate is not kept) at **{} events/s** (p99 {} ms, {:.0} accepted/s); {}.",
                    o.p99_target_ms,
                    p.rate,
                    ms(p.latency.p99),
                    p.accepted_per_sec,
                    match held {
                        Some(rate) => format!("the last step that held was {rate} events/s"),
                        None => "no step held".to_owned(),
                    }
                )
            }
        };
        let _ = writeln!(s, "{step_verdict}\n");
        let _ = writeln!(
            s,
            "- Generator lateness in the main run (scheduled → sent): p50 {} ms, p99 {} ms, max {} ms; most requests in flight: {}.",
            ms(main.lag.p50),
            ms(main.lag.p99),
            ms(main.lag.max),
            main.max_in_flight
        );
        let _ = writeln!(s, "- CPU during the main run, in cores: {}.", self.main_cpu.describe());
        let _ = writeln!(
            s,
            "- Server backends in `pg_stat_activity` during the main run (average count, idle left out): {}.",
            waits(&self.main_waits)
        );
        if let Some(e) = main.error_examples.first() {
            let _ = writeln!(s, "- First error: `{e}`.");
        }
        let _ = writeln!(s);

        let p = &self.processing;
        let _ = writeln!(s, "### Processing: the inbox worker\n");
        let _ = writeln!(
            s,
            "{} (default interval, batches of 50), drained the {} events of the warm-up and the main run.\n",
            if o.process_servers > 1 {
                format!("{} server processes, each running the inbox worker", o.process_servers)
            } else {
                "The server, restarted with the inbox worker on".to_owned()
            },
            p.events
        );
        let _ = writeln!(
            s,
            "| Events | drained | wall time s | conversions/s (first → last `processed_at`) | conversions/s (wall) | best 5 s window/s |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|");
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} | **{:.0}** | {:.0} | {:.0} |\n",
            p.events,
            if p.drained { "yes" } else { "no (timeout)" },
            p.wall_secs,
            p.done_per_sec_db,
            p.done_per_sec_wall,
            p.peak_5s_per_sec
        );
        let statuses: Vec<String> = p.by_status.iter().map(|(status, n)| format!("{status} {n}")).collect();
        let _ = writeln!(
            s,
            "Correctness: {} — inbox {}; {} conversions ({} distinct subscriptions, {} attributed by the coupon), {} ledger entries; \
             commissions {} cents, expected {} × {} % of {} = {} cents.\n",
            if p.correct() { "**passed**" } else { "**FAILED**" },
            statuses.join(", "),
            p.totals.conversions,
            p.totals.distinct_subscriptions,
            p.totals.coupon_attributed,
            p.ledger_entries,
            p.totals.commission,
            p.events,
            crate::COMMISSION_PERCENT,
            o.amount,
            p.expected_commission
        );
        if let Some(per_event) = p.statements_per_event {
            let _ = writeln!(s, "- Statements sent to PostgreSQL while draining: {per_event:.1} per event (`rekomi_db_statements_total`).");
        }
        let _ = writeln!(s, "- CPU while draining, in cores: {}.", p.cpu.describe());
        let _ = writeln!(s, "- Server backends in `pg_stat_activity` while draining: {}.", waits(&p.waits));
        if let Some(c) = &self.clicks {
            self.click_section(&mut s, c);
        }
        if let Some(p) = &self.s2s {
            self.s2s_section(&mut s, p);
        }
        if let Some(p) = &self.payouts {
            self.payout_section(&mut s, p);
        }
        s
    }

    fn payout_section(&self, s: &mut String, p: &crate::payouts::PayoutPhase) {
        let o = &self.options;
        let _ = writeln!(s, "\n### Payout run: {} affiliates, {} ledger entries\n", p.affiliates, p.entries);
        let memory_ok = p.peak_rss_mib.is_some_and(|m| m <= o.payout_memory_target_mib);
        let verdict = if p.run_secs <= o.payout_run_target_secs && memory_ok { "**Target met**" } else { "**Target missed**" };
        let mib = |m: Option<f64>| m.map_or_else(|| "unknown".to_owned(), |m| format!("{m:.0} MiB"));
        let _ = writeln!(
            s,
            "{verdict}: a Manual `POST /api/v1/payouts/run` paid every affiliate in {:.1} s (to the answer's last byte, {:.1} MB of JSON) \
             with the server's peak resident memory at {} (target under {:.0} s and {:.0} MiB; {} when ready). The run pages through \
             affiliates 500 at a time inside its one transaction and streams its answer 200 payouts at a time.\n",
            p.run_secs,
            p.answer_bytes as f64 / 1e6,
            mib(p.peak_rss_mib),
            o.payout_run_target_secs,
            o.payout_memory_target_mib,
            mib(p.idle_rss_mib)
        );
        let _ = writeln!(
            s,
            "Correctness: {} — {} payouts (one per affiliate), {} cents paid (seeded {} cents, previewed {} cents), {} line items, \
             {} conversions Paid.\n",
            if p.correct() { "**passed**" } else { "**FAILED**" },
            p.payouts,
            p.paid_total,
            p.expected_total,
            p.preview_total,
            p.line_items,
            p.conversions_paid
        );
        let _ = writeln!(
            s,
            "- Seeding (`INSERT … SELECT` of the affiliates, {} conversions and the entries, then `ANALYZE`): {:.1} s.",
            p.entries / 10,
            p.seed_secs
        );
        let _ = writeln!(
            s,
            "- The run's transaction (every payout, line item, audit row and outbox event, conversions marked Paid) committed after \
             {:.1} s; its answer then streamed for {:.1} s.",
            p.commit_secs,
            p.run_secs - p.commit_secs
        );
        let _ = writeln!(s, "- `POST /api/v1/payouts/preview` of the same: {:.1} s.", p.preview_secs);
    }

    fn s2s_section(&self, s: &mut String, p: &crate::s2s::S2sPhase) {
        let o = &self.options;
        let target = o.s2s_p99_target_ms;
        let _ = writeln!(s, "\n### Server-to-server sales: signed `POST /api/tracking/s2s` at a fixed rate (open loop)\n");
        let held = |r: &PhaseResult| crate::clicks::holds(r, target);
        let verdict = if held(&p.main) && p.main.accepted_per_sec >= 1000.0 * 0.99 { "**Target met**" } else { "**Target missed**" };
        let _ = writeln!(
            s,
            "{verdict}: {:.0} sales/s recorded with p99 {} ms (target ≥ 1,000/s with p99 ≤ {target} ms). Each request is verified \
             (HMAC-SHA256 over `t.body`), claimed by its `externalEventId` and credited (conversion, ledger entry, audit row, \
             `conversion.created` outbox event) in one transaction.\n",
            p.main.accepted_per_sec,
            ms(p.main.latency.p99)
        );
        let _ = writeln!(
            s,
            "Correctness: {} — {} sales accepted over the phase, {} conversions, commissions {} cents (expected {} cents).\n",
            if p.correct() { "**passed**" } else { "**FAILED**" },
            p.accepted,
            p.conversions,
            p.commission,
            p.expected_commission
        );
        let _ = writeln!(
            s,
            "| Run | rate/s | sent | recorded | errors | no slot | recorded/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | CPU cores: server / postgres / generator / other |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        let _ = writeln!(s, "{}", row(&p.main, Some(&p.main_cpu)));
        for step in &p.steps {
            let _ = writeln!(s, "{}", row(step, None));
        }
        let best = crate::clicks::ClickPhase::saturation(&p.steps, target);
        let _ = writeln!(
            s,
            "\nThe highest step kept with no error and p99 ≤ {target} ms: {}.",
            best.map_or_else(|| "none".to_owned(), |r| format!("{r} sales/s"))
        );
        let _ = writeln!(s, "- CPU during the S2S run, in cores: {}.", p.main_cpu.describe());
        if let Some(e) = p.main.error_examples.first() {
            let _ = writeln!(s, "- First error: `{e}`.");
        }
    }

    fn click_section(&self, s: &mut String, c: &crate::clicks::ClickPhase) {
        let o = &self.options;
        let target = o.click_p99_target_ms;
        let _ = writeln!(s, "\n### Clicks: `GET /r/{{slug}}` at a fixed rate (open loop)\n");
        let verdict = if crate::clicks::holds(&c.main, target) { "**Target met**" } else { "**Target missed**" };
        let _ = writeln!(
            s,
            "{verdict}: {:.0} clicks/s answered `302` with p99 {} ms (target {} /s, p99 ≤ {} ms). Each answer names its click \
             (`rk_click=rkc_…`); clicks go through the batching sink (5 ms flush).\n",
            c.main.accepted_per_sec,
            ms(c.main.latency.p99),
            o.click_rate,
            target
        );
        let lost = c.answered as i64 - c.rows;
        let _ = writeln!(
            s,
            "Nothing lost: {} — {} `302`s answered over the phase (warm-up, run and steps), {} rows in `clicks` after the graceful stop.\n",
            if lost == 0 { "**passed**" } else { "**FAILED**" },
            c.answered,
            c.rows
        );
        let _ = writeln!(
            s,
            "| Run | rate/s | sent | answered | errors | no slot | answered/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | CPU cores: server / postgres / generator / other |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        let _ = writeln!(s, "{}", row(&c.main, Some(&c.main_cpu)));
        for step in c.tracked_steps.iter().chain(c.bare_steps.iter()) {
            let _ = writeln!(s, "{}", row(step, None));
        }
        let tracked = crate::clicks::ClickPhase::saturation(&c.tracked_steps, target);
        let bare = crate::clicks::ClickPhase::saturation(&c.bare_steps, target);
        let ratio = match (tracked, bare) {
            (Some(t), Some(b)) if b > 0.0 => format!("**{:.2}**", t / b),
            _ => "not measurable (a side held no step)".to_owned(),
        };
        let show = |r: Option<f64>| r.map_or_else(|| "none".to_owned(), |r| format!("{r}/s"));
        let _ = writeln!(
            s,
            "\nSaturation (the highest step kept with no error and p99 ≤ {target} ms): tracked {}, bare actix-web `302` {}; \
             ratio tracked/bare {ratio} (target ≥ 0.5). The bare handler answers the same redirect from the same kind of \
             actix-web server with nothing recorded; both share the 2 cores with the load generator.\n",
            show(tracked),
            show(bare)
        );
        let _ = writeln!(
            s,
            "- Generator lateness in the click run: p50 {} ms, p99 {} ms; most requests in flight: {}.",
            ms(c.main.lag.p50),
            ms(c.main.lag.p99),
            c.main.max_in_flight
        );
        let _ = writeln!(s, "- CPU during the click run, in cores: {}.", c.main_cpu.describe());
        if let Some(e) = c.main.error_examples.first() {
            let _ = writeln!(s, "- First error: `{e}`.");
        }
    }

    fn meets_target_at(&self, p: &PhaseResult) -> bool {
        p.accepted_per_sec >= p.rate * 0.99
            && p.errors == 0
            && p.no_slot == 0
            && p.latency.p99.as_secs_f64() * 1000.0 < self.options.p99_target_ms
    }
}

fn waits(w: &[(String, f64)]) -> String {
    if w.is_empty() {
        return "none seen".to_owned();
    }
    w.iter().take(6).map(|(k, v)| format!("{k} {v:.2}")).collect::<Vec<_>>().join(", ")
}

/// Replaces the section headed `## {heading}` in `path` (or inserts it before the first
/// `## Run …` section, newest first), keeping everything else.
///
/// # Errors
/// I/O failures.
pub fn write_section(path: &str, heading: &str, section: &str) -> anyhow::Result<()> {
    let existing = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    let mut sections: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in existing.lines() {
        if line.starts_with("## ") && !current.is_empty() {
            sections.push(std::mem::take(&mut current));
        }
        current.push_str(line);
        current.push('\n');
    }
    if !current.is_empty() {
        sections.push(current);
    }
    let ours = format!("## {heading}");
    sections.retain(|s| s.lines().next() != Some(ours.as_str()));
    let section = format!("{}\n", section.trim_end());
    let at = sections.iter().position(|s| s.starts_with("## Run ")).unwrap_or(sections.len());
    sections.insert(at, section);
    let mut text = String::new();
    for s in sections {
        text.push_str(s.trim_end());
        text.push_str("\n\n");
    }
    std::fs::write(path, format!("{}\n", text.trim_end())).with_context(|| format!("writing {path}"))
}
