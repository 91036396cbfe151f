//! [`PgClickSink`]: clicks are queued in a bounded in-memory buffer and written by one
//! background task in multi-row `INSERT`s, at most [`SinkConfig::batch`] rows each, as soon as
//! that many are waiting or [`SinkConfig::interval`] after the first of them arrived. A request
//! never waits for the database, and at 10,000 clicks/s a batch of ~50 rows every 5 ms costs one
//! statement instead of 50 transactions.
//!
//! Loss window: clicks still in the buffer when the process dies (a crash, `SIGKILL`) are lost,
//! at most one interval's worth plus the batch being written. A graceful stop (`SIGTERM`) closes
//! the buffer and writes everything in it ([`ClickFlusher::flush_and_stop`]). A full buffer
//! (the database is slower than the traffic) drops the new click, counts it in
//! `rekomi_clicks_dropped_total{reason="buffer_full"}` and logs the first drop and every
//! 10,000th, so memory stays bounded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rekomi_domain::ports::store::StoreError;
use rekomi_domain::traffic::{Click, ClickSink, SinkFull};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

use super::{insert_click_rows, ClickRow};
use crate::error::from_diesel;
use crate::PgStore;

/// The buffer's size and how it is flushed.
#[derive(Clone, Copy, Debug)]
pub struct SinkConfig {
    /// Clicks buffered at most; beyond, new clicks are dropped.
    pub capacity: usize,
    /// Rows per `INSERT`, at most.
    pub batch: usize,
    /// How long the first click of a batch waits for company.
    pub interval: Duration,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self { capacity: 100_000, batch: 1_000, interval: Duration::from_millis(5) }
    }
}

/// Attempts to write one batch before its clicks are given up (and counted).
const WRITE_ATTEMPTS: u32 = 4;

/// The sending side, handed to the click tracker.
#[derive(Debug)]
pub struct PgClickSink {
    queue: mpsc::Sender<Click>,
    dropped: AtomicU64,
}

/// The background writer; [`flush_and_stop`](ClickFlusher::flush_and_stop) on shutdown.
#[derive(Debug)]
pub struct ClickFlusher {
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

impl PgClickSink {
    /// Starts the writer on the current tokio runtime.
    pub fn start(store: PgStore, config: SinkConfig) -> (Arc<PgClickSink>, ClickFlusher) {
        let (queue, rx) = mpsc::channel(config.capacity.max(1));
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(write_loop(store, rx, config, Arc::clone(&stop)));
        (Arc::new(PgClickSink { queue, dropped: AtomicU64::new(0) }), ClickFlusher { stop, task })
    }
}

impl ClickSink for PgClickSink {
    fn submit(&self, click: Click) -> Result<(), SinkFull> {
        match self.queue.try_send(click) {
            Ok(()) => Ok(()),
            Err(_) => {
                metrics::counter!("rekomi_clicks_dropped_total", "reason" => "buffer_full").increment(1);
                let n = self.dropped.fetch_add(1, Ordering::Relaxed);
                if n.is_multiple_of(10_000) {
                    tracing::warn!(dropped.total = n + 1, "the click buffer is full: clicks are being dropped");
                }
                Err(SinkFull)
            }
        }
    }
}

impl ClickFlusher {
    /// Closes the buffer (later clicks are dropped) and returns once every buffered click is
    /// written.
    pub async fn flush_and_stop(self) {
        self.stop.notify_one();
        if let Err(e) = self.task.await {
            tracing::error!(error.cause = %e, "the click writer did not finish");
        }
    }
}

async fn write_loop(store: PgStore, mut rx: mpsc::Receiver<Click>, config: SinkConfig, stop: Arc<Notify>) {
    let batch_size = config.batch.max(1);
    loop {
        let mut batch = Vec::with_capacity(batch_size);
        let stopping = tokio::select! {
            n = rx.recv_many(&mut batch, batch_size) => n == 0,
            () = stop.notified() => true,
        };
        if stopping {
            break;
        }
        let deadline = Instant::now() + config.interval;
        while batch.len() < batch_size {
            let room = batch_size - batch.len();
            tokio::select! {
                n = rx.recv_many(&mut batch, room) => if n == 0 { break },
                () = sleep_until(deadline) => break,
            }
        }
        write(&store, batch).await;
    }
    // Stopping: refuse new clicks, then write what is buffered.
    rx.close();
    loop {
        let mut batch = Vec::with_capacity(batch_size);
        if rx.recv_many(&mut batch, batch_size).await == 0 {
            break;
        }
        write(&store, batch).await;
    }
    tracing::info!("click writer stopped; every buffered click is written");
}

/// Writes one batch, retrying a failed write with a growing pause; a batch that cannot be
/// written after [`WRITE_ATTEMPTS`] is counted as dropped.
async fn write(store: &PgStore, batch: Vec<Click>) {
    let rows: Arc<Vec<ClickRow>> = Arc::new(batch.iter().map(ClickRow::from).collect());
    let mut pause = Duration::from_millis(50);
    for attempt in 1..=WRITE_ATTEMPTS {
        let shared = Arc::clone(&rows);
        match store.blocking(move |conn| insert_click_rows(conn, &shared).map_err(from_diesel)).await {
            Ok(written) => {
                metrics::counter!("rekomi_clicks_written_total").increment(written as u64);
                return;
            }
            Err(e) if attempt < WRITE_ATTEMPTS => {
                tracing::warn!(error.cause = %e, attempt, clicks = rows.len(), "writing clicks failed; retrying");
                tokio::time::sleep(pause).await;
                pause *= 4;
            }
            Err(e) => report_lost(&e, rows.len()),
        }
    }
}

fn report_lost(e: &StoreError, clicks: usize) {
    metrics::counter!("rekomi_clicks_dropped_total", "reason" => "write_failed").increment(clicks as u64);
    tracing::error!(error.cause = %e, clicks, "writing clicks failed {WRITE_ATTEMPTS} times: the batch is dropped");
}
