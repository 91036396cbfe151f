//! [`SeededEntropy`]: the entropy port as a deterministic pseudo-random sequence, so tests pin
//! generated codes, slugs, secrets and ids.

use std::sync::atomic::{AtomicU64, Ordering};

use rekomi_domain::ports::Entropy;

/// The SplitMix64 increment (2^64 divided by the golden ratio).
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64 (Steele, Lea and Flood, 2014) from a 64-bit seed: the same seed always yields the
/// same bytes. Fast and well distributed, and NOT cryptographically secure: for tests only.
#[derive(Debug)]
pub struct SeededEntropy {
    state: AtomicU64,
}

impl SeededEntropy {
    /// A sequence starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: AtomicU64::new(seed) }
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
    fn indexes_stay_in_range_and_cover_it() {
        let e = SeededEntropy::new(7);
        let mut seen = [false; 30];
        for _ in 0..2000 {
            seen[e.index(30)] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
