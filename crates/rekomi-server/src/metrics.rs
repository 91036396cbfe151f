//! Metrics: the Prometheus recorder behind the `metrics` facade that the adapters record to
//! (HTTP requests, Stripe calls, webhook attempts, job batches), rendered at `GET /metrics`,
//! and a sampler for what nothing records as it happens (queue depth and the age of the
//! oldest due job, database pool use).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rekomi_domain::jobs::JobQueue;
use rekomi_postgres::PgStore;

/// Latency buckets (seconds) of every `*_seconds` histogram: from a cached read to a Stripe call
/// that retried.
const BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The process's recorder, installed on first use. One per process: the facade is global, so
/// several applications in one process (the end-to-end tests) share it.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = || PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &BUCKETS);
            match builder().and_then(|b| b.install_recorder()) {
                Ok(handle) => handle,
                Err(e) => {
                    // Another recorder owns the facade: /metrics then shows only an empty page
                    // rather than failing the process.
                    tracing::warn!(error.cause = %e, "the Prometheus recorder could not be installed");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            }
        })
        .clone()
}

/// Something the sampler reads every few seconds.
pub type Probe = Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>;

/// A probe of `queue`'s depth: `rekomi_queue_pending{queue}` and
/// `rekomi_queue_oldest_due_seconds{queue}`.
pub fn queue_probe<Q: JobQueue>(queue: Arc<Q>) -> Probe {
    Arc::new(move || {
        let queue = Arc::clone(&queue);
        Box::pin(async move {
            match queue.depth().await {
                Ok(depth) => {
                    let name = queue.name();
                    metrics::gauge!("rekomi_queue_pending", "queue" => name).set(depth.pending as f64);
                    let age = depth.oldest_due_age.map_or(0.0, |age| age.as_seconds_f64().max(0.0));
                    metrics::gauge!("rekomi_queue_oldest_due_seconds", "queue" => name).set(age);
                }
                Err(e) => tracing::debug!(queue = queue.name(), error.cause = %e, "sampling a queue's depth failed"),
            }
        })
    })
}

/// A probe of the connection pool: `rekomi_db_pool_connections{state="idle"|"in_use"}` and
/// `rekomi_db_pool_max_connections`.
pub fn pool_probe(store: PgStore) -> Probe {
    Arc::new(move || {
        let pool = store.pool_use();
        Box::pin(async move {
            metrics::gauge!("rekomi_db_pool_connections", "state" => "idle").set(f64::from(pool.idle));
            metrics::gauge!("rekomi_db_pool_connections", "state" => "in_use").set(f64::from(pool.open.saturating_sub(pool.idle)));
            metrics::gauge!("rekomi_db_pool_max_connections").set(f64::from(pool.max));
        })
    })
}

/// Runs every probe every `every`, until the process stops.
pub async fn sample(probes: Vec<Probe>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        for probe in &probes {
            probe().await;
        }
    }
}
