//! [`TtlCache`]: values read from the store, trusted for a fixed time, bounded in size. The
//! traffic and tracking paths read the same few rows on every request (a link, a program's
//! parameters, an organization's signing secrets, an S2S caller's key); each keeps them here
//! rather than pay a transaction per request.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

use time::{Duration, OffsetDateTime};

/// Entries stamped with the instant they were read; each is trusted for `ttl`. Full, the cache
/// first drops what expired, then everything (bounded memory under a flood of distinct keys).
#[derive(Debug)]
pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (OffsetDateTime, V)>>,
    ttl: Duration,
    capacity: usize,
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    /// An empty cache trusting entries for `ttl`, holding at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { entries: Mutex::new(HashMap::new()), ttl, capacity: capacity.max(1) }
    }

    fn fresh(&self, read_at: OffsetDateTime, now: OffsetDateTime) -> bool {
        now >= read_at && now - read_at < self.ttl
    }

    /// The value of `key` when it was read less than the TTL before `now`.
    pub fn get(&self, key: &K, now: OffsetDateTime) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(key).filter(|(read_at, _)| self.fresh(*read_at, now)).map(|(_, v)| v.clone())
    }

    /// Remembers `value` for `key` as read at `now`.
    pub fn put(&self, key: K, value: V, now: OffsetDateTime) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, (read_at, _)| now >= *read_at && now - *read_at < self.ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (now, value));
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn entries_live_for_the_ttl_and_a_full_cache_drops_the_expired_first() {
        let t0 = datetime!(2026-06-01 12:00 UTC);
        let cache = TtlCache::new(Duration::seconds(5), 2);
        cache.put("a", 1, t0);
        assert_eq!(cache.get(&"a", t0 + Duration::seconds(4)), Some(1));
        assert_eq!(cache.get(&"a", t0 + Duration::seconds(5)), None, "expired");
        assert_eq!(cache.get(&"a", t0 - Duration::seconds(1)), None, "read in the future: not trusted");
        cache.put("b", 2, t0 + Duration::seconds(4));
        cache.put("c", 3, t0 + Duration::seconds(6)); // full: "a" (expired) goes, "b" stays
        assert_eq!((cache.get(&"b", t0 + Duration::seconds(6)), cache.get(&"c", t0 + Duration::seconds(6))), (Some(2), Some(3)));
        cache.put("d", 4, t0 + Duration::seconds(7)); // full of live entries: emptied first
        assert_eq!((cache.get(&"b", t0 + Duration::seconds(7)), cache.get(&"d", t0 + Duration::seconds(7))), (None, Some(4)));
    }
}
