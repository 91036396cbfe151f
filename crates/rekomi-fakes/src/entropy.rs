//! [`SeededEntropy`]: the entropy port as a deterministic pseudo-random sequence, so tests pin
//! generated codes, slugs, secrets and ids.

use std::sync::atomic::{AtomicU64, Ordering};

use rekomi_domain::kernel::entropy::Entropy;
use time::OffsetDateTime;
use uuid::Uuid;

/// The SplitMix64 increment (2^64 divided by the golden ratio).
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64 (Steele, Lea and Flood, 2014) from a 64-bit seed: the same seed always yields the
/// same bytes. Fast and well distributed, and NOT cryptographically secure: for tests only.
///
/// Its UUID v7 ids carry a counter after the timestamp (RFC 9562, "fixed-length dedicated
/// counter"), so ids drawn under a [`FixedClock`](crate::FixedClock) that does not move still
/// sort in the order they were drawn, as newest-first lists expect.
#[derive(Debug)]
pub struct SeededEntropy {
    state: AtomicU64,
    ids_issued: AtomicU64,
}

impl SeededEntropy {
    /// A sequence starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: AtomicU64::new(seed), ids_issued: AtomicU64::new(0) }
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&self) -> u64 {
        // One atomic step per draw keeps the sequence intact when threads share the source.
        let mut z = self.state.fetch_add(GOLDEN_GAMMA, Ordering::Relaxed).wrapping_add(GOLDEN_GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Entropy for SeededEntropy {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// `unix_ts_ms` (48 bits) | version 7 | 42-bit counter (12 bits of `rand_a`, 30 of
    /// `rand_b`) | 32 pseudo-random bits: time-ordered first, then in drawing order.
    fn uuid_v7(&self, now: OffsetDateTime) -> Uuid {
        let millis = u128::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0) & 0xFFFF_FFFF_FFFF;
        let counter = u128::from(self.ids_issued.fetch_add(1, Ordering::Relaxed)) & 0x3FF_FFFF_FFFF;
        let random = u128::from(self.next_u64() as u32);
        Uuid::from_u128((millis << 80) | (0x7 << 76) | ((counter >> 30) << 64) | (0b10 << 62) | ((counter & 0x3FFF_FFFF) << 32) | random)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_splitmix64() {
        // Reference values of SplitMix64 seeded with 0.
        let e = SeededEntropy::new(0);
        assert_eq!(e.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(e.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_another_seed_does_not() {
        let draw = |seed| {
            let mut buf = [0u8; 21];
            SeededEntropy::new(seed).fill(&mut buf);
            buf
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }

    #[test]
    fn uuid_v7_ids_are_valid_and_sort_in_drawing_order_even_when_time_stands_still() {
        use time::macros::datetime;
        let e = SeededEntropy::new(1);
        let now = datetime!(2026-06-01 12:00 UTC);
        let ids: Vec<Uuid> = (0..1000).map(|_| e.uuid_v7(now)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(ids.iter().all(|id| id.get_version_num() == 7 && id.get_variant() == uuid::Variant::RFC4122));
        let (secs, _) = ids[0].get_timestamp().map(|t| t.to_unix()).unwrap_or_default();
        assert_eq!(i64::try_from(secs).ok(), Some(now.unix_timestamp()));
        let later = e.uuid_v7(now + time::Duration::milliseconds(1));
        let earlier = e.uuid_v7(now - time::Duration::milliseconds(1));
        assert!(later > ids[999] && earlier < ids[0]);
        assert_eq!(SeededEntropy::new(1).uuid_v7(now), ids[0], "deterministic");
    }

    #[test]
    fn indexes_stay_in_range_and_cover_it() {
        let e = SeededEntropy::new(7);
        let mut seen = [false; 30];
        for _ in 0..2000 {
            seen[e.index(30)] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
