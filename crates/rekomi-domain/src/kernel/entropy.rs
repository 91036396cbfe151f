//! Randomness as a port, so tests pin exact ids and generated codes.

use time::OffsetDateTime;
use uuid::Uuid;

/// The source of randomness.
pub trait Entropy: Send + Sync + 'static {
    /// Fills `buf` with random bytes. Secrets (API keys) are drawn from here, so a production
    /// implementation must be a CSPRNG.
    fn fill(&self, buf: &mut [u8]);

    /// A time-ordered UUID v7 for `now`, so ids sort by creation time.
    fn uuid_v7(&self, now: OffsetDateTime) -> Uuid {
        let mut rand = [0u8; 10];
        self.fill(&mut rand);
        let millis = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        uuid::Builder::from_unix_timestamp_millis(millis, &rand).into_uuid()
    }

    /// A uniformly distributed index in `0..n` (rejection sampling, no modulo bias).
    fn index(&self, n: usize) -> usize {
        debug_assert!(n > 0 && n <= 256);
        let n16 = n as u16;
        let limit = 256 - (256 % n16);
        loop {
            let mut b = [0u8; 1];
            self.fill(&mut b);
            let v = u16::from(b[0]);
            if v < limit {
                return usize::from(v % n16);
            }
        }
    }
}
