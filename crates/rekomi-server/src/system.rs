//! The production clock and entropy: the only place ambient time and randomness enter.

use rand::RngCore;
use rekomi_domain::kernel::clock::Clock;
use rekomi_domain::kernel::entropy::Entropy;
use time::OffsetDateTime;

/// Wall-clock time, truncated to microseconds (PostgreSQL's precision, so a value read back
/// equals the value written).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now)
    }
}

/// The operating system's CSPRNG (through rand's thread-local, OS-seeded ChaCha generator).
#[derive(Clone, Copy, Debug, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        rand::rng().fill_bytes(buf);
    }
}
