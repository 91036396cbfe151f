//! The job runner: drives any [`JobQueue`] of the domain on tokio. A worker claims a batch,
//! renews the lease of the jobs still in hand every `renew_every` while the queue processes
//! the batch, and claims again at once after a full batch (otherwise it waits `idle`).

use std::sync::Arc;
use std::time::Duration;

use rekomi_domain::jobs::{BatchReport, JobQueue, Lease};

/// Runs one worker of `queue` until the process stops.
pub async fn run_queue<Q: JobQueue>(queue: Arc<Q>, idle: Duration) {
    loop {
        let busy = match queue.claim().await {
            Ok(Some((batch, lease))) => {
                let renewal = tokio::spawn(renew(Arc::clone(&queue), lease.clone()));
                let started = std::time::Instant::now();
                let report = queue.process(batch, &lease).await;
                renewal.abort();
                record(queue.name(), &report, started.elapsed());
                tracing::debug!(
                    queue = queue.name(),
                    claimed = report.claimed,
                    done = report.done,
                    retried = report.retried,
                    failed = report.failed,
                    skipped = report.skipped,
                    waiting = report.waiting,
                    errors = report.errors,
                    released = report.released,
                    "processed a batch"
                );
                // Errors most likely mean the database is away: wait before claiming again.
                report.claimed >= queue.batch_size() && report.errors == 0
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(queue = queue.name(), error.cause = %e, "claiming jobs failed");
                false
            }
        };
        if !busy {
            tokio::time::sleep(idle).await;
        }
    }
}

/// Renews `lease` every `renew_every` of the queue's terms until aborted.
async fn renew<Q: JobQueue>(queue: Arc<Q>, lease: Lease) {
    let every = Duration::try_from(queue.lease_terms().renew_every).unwrap_or(Duration::from_secs(5));
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = queue.renew(&lease).await {
            tracing::warn!(queue = queue.name(), error.cause = %e, "renewing a lease failed");
        }
    }
}

/// `rekomi_jobs_total{queue, outcome}` and `rekomi_job_batch_duration_seconds{queue}`.
fn record(queue: &'static str, report: &BatchReport, took: Duration) {
    let outcomes = [
        ("done", report.done),
        ("retried", report.retried),
        ("failed", report.failed),
        ("skipped", report.skipped),
        ("waiting", report.waiting),
        ("error", report.errors),
        ("released", report.released),
    ];
    for (outcome, n) in outcomes {
        if n > 0 {
            metrics::counter!("rekomi_jobs_total", "queue" => queue, "outcome" => outcome).increment(n as u64);
        }
    }
    metrics::histogram!("rekomi_job_batch_duration_seconds", "queue" => queue).record(took.as_secs_f64());
}
