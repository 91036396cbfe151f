//! Leased background work: one shape for every queue. A queue's jobs are rows its store
//! claims under a short lease (`FOR UPDATE SKIP LOCKED`, so processes share the work without
//! doing it twice); the runner (started by the server) renews the lease of the jobs still in
//! hand while it processes a batch, so a worker that dies loses nothing and its jobs are taken
//! by another within one lease. A failed attempt is retried on the queue's [`RetryPolicy`].
//!
//! Queues today: the Stripe inbox and the outbound webhook deliveries. The payout reconciler,
//! the click flusher, the mailer and daily aggregations are meant to be more queues on it.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::kernel::entropy::Entropy;
use crate::kernel::error::DomainError;

/// When a failed attempt is tried again: after `schedule[n - 1]` seconds for the `n`-th failed
/// attempt, plus up to `jitter_percent` of that at random (so jobs that failed together are not
/// retried together). A job gets one attempt more than the schedule has delays; when the last
/// one fails it fails for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    schedule: &'static [i64],
    jitter_percent: i64,
}

impl RetryPolicy {
    /// A policy of `schedule` (seconds after each failed attempt) and jitter.
    pub const fn new(schedule: &'static [i64], jitter_percent: i64) -> Self {
        Self { schedule, jitter_percent }
    }

    /// How many attempts a job gets.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.schedule.len()).unwrap_or(u32::MAX).saturating_add(1)
    }

    /// The delay before the next attempt after `attempts` failed ones, without jitter, or
    /// `None` once the schedule is spent.
    pub fn delay(&self, attempts: u32) -> Option<Duration> {
        let index = usize::try_from(attempts.checked_sub(1)?).ok()?;
        self.schedule.get(index).map(|secs| Duration::seconds(*secs))
    }

    /// When the job may run again after `attempts` failed attempts (jitter drawn from
    /// `entropy`), or `None` once the schedule is spent.
    pub fn next_attempt(&self, attempts: u32, now: OffsetDateTime, entropy: &dyn Entropy) -> Option<OffsetDateTime> {
        let delay = self.delay(attempts)?;
        // Up to `jitter_percent` of the delay, drawn in hundredths of that span.
        let span_ms = delay.whole_milliseconds().saturating_mul(i128::from(self.jitter_percent)) / 100;
        let share = i128::try_from(entropy.index(101)).unwrap_or(0);
        let jitter_ms = i64::try_from(span_ms * share / 100).unwrap_or(0);
        Some(now + delay + Duration::milliseconds(jitter_ms))
    }
}

/// How long a claim holds a job, and how often a worker renews the lease of the jobs it still
/// holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTerms {
    /// How long a claim (or a renewal) holds.
    pub duration: Duration,
    /// How often the runner renews it while the batch is processed.
    pub renew_every: Duration,
}

/// The ids of the claimed jobs a worker still holds, shared between the processing (which
/// lets go of each job once its outcome is recorded) and the lease renewal.
#[derive(Clone, Debug, Default)]
pub struct Lease(Arc<Mutex<Vec<String>>>);

impl Lease {
    /// A lease on `ids`.
    pub fn on(ids: Vec<String>) -> Self {
        Self(Arc::new(Mutex::new(ids)))
    }

    /// The jobs still held.
    pub fn held(&self) -> Vec<String> {
        self.0.lock().map(|held| held.clone()).unwrap_or_default()
    }

    /// Lets go of a job whose outcome is recorded (or that was released).
    pub fn finished(&self, id: &str) {
        if let Ok(mut held) = self.0.lock() {
            held.retain(|held| held != id);
        }
    }
}

/// What one batch of a queue came to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Jobs claimed.
    pub claimed: usize,
    /// Finished successfully.
    pub done: usize,
    /// Put back for a later attempt.
    pub retried: usize,
    /// Failed for good.
    pub failed: usize,
    /// Nothing to do for them (not for Rekomi, no organization, a disabled endpoint…).
    pub skipped: usize,
    /// Waiting for something else to happen first.
    pub waiting: usize,
    /// Whose outcome could not be recorded: they keep their short lease and are retried when
    /// it runs out.
    pub errors: usize,
    /// Let go unprocessed, for any worker to take at once.
    pub released: usize,
}

/// How much work a queue has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Jobs waiting to be processed (due or not yet due, not finished).
    pub pending: u64,
    /// How long the oldest due job has been due.
    pub oldest_due_age: Option<Duration>,
}

/// A queue of leased jobs, as the runner drives it.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// What one claim took.
    type Batch: Send + 'static;

    /// The queue's name (for logs and metrics), e.g. `stripe_inbox`.
    fn name(&self) -> &'static str;

    /// The queue's lease.
    fn lease_terms(&self) -> LeaseTerms;

    /// How many jobs one claim takes at most.
    fn batch_size(&self) -> usize;

    /// Claims up to [`JobQueue::batch_size`] due jobs; `None` when none is due.
    ///
    /// # Errors
    /// Storage failures.
    async fn claim(&self) -> Result<Option<(Self::Batch, Lease)>, DomainError>;

    /// Processes a claimed batch and records each job's outcome. Never fails as a whole: a
    /// job whose outcome cannot be recorded is counted in [`BatchReport::errors`].
    async fn process(&self, batch: Self::Batch, lease: &Lease) -> BatchReport;

    /// Extends the lease of the jobs still held. Returns how many were renewed.
    ///
    /// # Errors
    /// Storage failures (the lease then runs out and another worker may take the jobs).
    async fn renew(&self, lease: &Lease) -> Result<usize, DomainError>;

    /// How much work is waiting.
    ///
    /// # Errors
    /// Storage failures.
    async fn depth(&self) -> Result<QueueDepth, DomainError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Always draws `self.0` (capped to the range asked for).
    struct Fixed(usize);
    impl Entropy for Fixed {
        fn fill(&self, buf: &mut [u8]) {
            buf.fill(0);
        }
        fn index(&self, n: usize) -> usize {
            self.0.min(n.saturating_sub(1))
        }
    }

    const POLICY: RetryPolicy = RetryPolicy::new(&[10, 60, 300], 20);

    #[test]
    fn the_schedule_gives_each_failed_attempt_its_delay_and_then_gives_up() {
        assert_eq!(POLICY.max_attempts(), 4);
        assert_eq!(POLICY.delay(0), None, "no attempt failed yet");
        assert_eq!(POLICY.delay(1), Some(Duration::seconds(10)));
        assert_eq!(POLICY.delay(3), Some(Duration::seconds(300)));
        assert_eq!(POLICY.delay(4), None);
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(POLICY.next_attempt(4, now, &Fixed(0)), None);
    }

    #[test]
    fn jitter_adds_at_most_its_share_of_the_delay() {
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(POLICY.next_attempt(1, now, &Fixed(0)), Some(now + Duration::seconds(10)));
        // 20 % of 10 s is 2,000 ms: the largest draw is exactly that.
        assert_eq!(POLICY.next_attempt(1, now, &Fixed(usize::MAX)), Some(now + Duration::seconds(12)));
        // Half of the 12 s span of a 60 s delay.
        assert_eq!(POLICY.next_attempt(2, now, &Fixed(50)), Some(now + Duration::seconds(66)));
    }

    #[test]
    fn a_lease_lets_go_of_finished_jobs() {
        let lease = Lease::on(vec!["a".into(), "b".into(), "c".into()]);
        let shared = lease.clone();
        lease.finished("b");
        assert_eq!(shared.held(), vec!["a".to_owned(), "c".to_owned()]);
    }
}
