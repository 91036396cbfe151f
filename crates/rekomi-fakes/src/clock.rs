//! [`FixedClock`]: the clock port with a "now" that only tests move.

use std::sync::{Arc, Mutex, PoisonError};

use rekomi_domain::kernel::clock::Clock;
use time::{Duration, OffsetDateTime};

/// A clock that stands still until a test sets or advances it. Clones share the same "now", so
/// a test keeps one handle and gives another to the code under test.
#[derive(Clone, Debug)]
pub struct FixedClock(Arc<Mutex<OffsetDateTime>>);

impl FixedClock {
    /// A clock showing `now`.
    pub fn new(now: OffsetDateTime) -> Self {
        Self(Arc::new(Mutex::new(now)))
    }

    /// Moves the clock to `now` (backwards too).
    pub fn set(&self, now: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = now;
    }

    /// Moves the clock by `by` and returns the new time.
    pub fn advance(&self, by: Duration) -> OffsetDateTime {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
        *now
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_fixed_clock_moves_only_when_told_and_clones_share_the_time() {
        let clock = FixedClock::new(datetime!(2026-06-01 12:00 UTC));
        let handle = clock.clone();
        assert_eq!(clock.now(), datetime!(2026-06-01 12:00 UTC));
        assert_eq!(handle.advance(Duration::minutes(90)), datetime!(2026-06-01 13:30 UTC));
        assert_eq!(clock.now(), datetime!(2026-06-01 13:30 UTC));
        handle.set(datetime!(2020-01-01 0:00 UTC));
        assert_eq!(clock.now(), datetime!(2020-01-01 0:00 UTC));
    }
}
