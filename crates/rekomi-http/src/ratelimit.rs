//! Per-key rate limiting: 600 requests per rolling minute per API key (or dashboard user),
//! as a token bucket refilled continuously at 10 per second. State lives in this process, so
//! with several server processes each enforces the limit on its own share of traffic
//! (documented in docs/operations.md).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The standard authenticated bucket.
pub const REQUESTS_PER_MINUTE: u32 = 600;

/// A decision for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, with this many requests left in the window.
    Allowed { remaining: u32 },
    /// Refused; retry after this many seconds.
    Limited { retry_after_secs: u64 },
}

/// A keyed token-bucket limiter.
#[derive(Debug)]
pub struct RateLimiter {
    capacity: f64,
    per_sec: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    /// When idle buckets were last dropped.
    swept: Mutex<Instant>,
}

/// Buckets held before idle ones are dropped, and how often they are dropped at most: a sweep
/// walks the whole map, so it must not run on every request of a busy anonymous endpoint.
const SWEEP_ABOVE: usize = 10_000;
const SWEEP_EVERY: Duration = Duration::from_secs(10);

impl RateLimiter {
    /// A limiter of `per_minute` requests per key.
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            capacity: f64::from(per_minute),
            per_sec: f64::from(per_minute) / 60.0,
            buckets: Mutex::new(HashMap::new()),
            swept: Mutex::new(Instant::now()),
        }
    }

    /// Whether `key` has no request left at `now` (and then how long until it has), without
    /// taking one.
    pub fn exhausted(&self, key: &str, now: Instant) -> Option<u64> {
        let buckets = self.buckets();
        let (tokens, at) = buckets.get(key)?;
        let tokens = (tokens + now.saturating_duration_since(*at).as_secs_f64() * self.per_sec).min(self.capacity);
        (tokens < 1.0).then(|| (((1.0 - tokens) / self.per_sec).ceil() as u64).max(1))
    }

    fn buckets(&self) -> std::sync::MutexGuard<'_, HashMap<String, (f64, Instant)>> {
        match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Takes one request for `key` at `now`.
    pub fn check(&self, key: &str, now: Instant) -> Decision {
        let mut buckets = self.buckets();
        // Drop idle buckets now and then so the map does not grow with every key ever seen.
        if buckets.len() > SWEEP_ABOVE {
            let mut swept = self.swept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if now.saturating_duration_since(*swept) >= SWEEP_EVERY {
                let idle = Duration::from_secs(120);
                buckets.retain(|_, (_, at)| now.saturating_duration_since(*at) < idle);
                *swept = now;
            }
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((self.capacity, now));
        let elapsed = now.saturating_duration_since(*at).as_secs_f64();
        *tokens = (*tokens + elapsed * self.per_sec).min(self.capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Decision::Allowed { remaining: tokens.floor() as u32 }
        } else {
            let wait = ((1.0 - *tokens) / self.per_sec).ceil() as u64;
            Decision::Limited { retry_after_secs: wait.max(1) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_quota_then_waits_and_other_keys_are_independent() {
        let limiter = RateLimiter::per_minute(600);
        let t0 = Instant::now();
        for i in 0..600u32 {
            assert_eq!(limiter.check("a", t0), Decision::Allowed { remaining: 599 - i });
        }
        assert_eq!(limiter.check("a", t0), Decision::Limited { retry_after_secs: 1 });
        assert!(matches!(limiter.check("b", t0), Decision::Allowed { remaining: 599 }));
        assert!(matches!(limiter.check("a", t0 + Duration::from_millis(200)), Decision::Allowed { .. }));
    }

    #[test]
    fn exhausted_looks_without_taking() {
        let limiter = RateLimiter::per_minute(60);
        let t0 = Instant::now();
        assert_eq!(limiter.exhausted("a", t0), None, "an unseen key has its whole quota");
        for _ in 0..60 {
            assert!(matches!(limiter.check("a", t0), Decision::Allowed { .. }));
        }
        assert_eq!(limiter.exhausted("a", t0), Some(1));
        assert_eq!(limiter.exhausted("a", t0), Some(1), "looking takes nothing");
        assert_eq!(limiter.exhausted("a", t0 + Duration::from_secs(1)), None, "one request refilled");
    }
}
