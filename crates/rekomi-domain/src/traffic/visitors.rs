//! Who is the same visitor: a salted hash instead of the address, and the 30-minute window in
//! which a visitor's clicks on one link count once.

use std::collections::HashMap;
use std::net::IpAddr;

use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::kernel::ids::LinkId;

/// A visitor's clicks on one link within this window of its first counted click count once.
pub const UNIQUE_WINDOW: Duration = Duration::minutes(30);

/// The visitor hash: SHA-256 over the day's salt, the address and the User-Agent, as 32 hex
/// digits. The address is never stored; with the salt deleted after two days, the hash cannot
/// be turned back into it by trying every address.
pub fn visitor_hash(salt: &str, ip: IpAddr, user_agent: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update([0]);
    hasher.update(ip.to_string().as_bytes());
    hasher.update([0]);
    hasher.update(user_agent.as_bytes());
    let digest = hasher.finalize();
    hex::encode(&digest[..16])
}

/// The clicks counted as unique recently, per visitor and link. Bounded: past `capacity`
/// entries, windows that have ended are dropped first, and if that is not enough the oldest
/// half goes (those visitors' next clicks then count as unique again: a burst of distinct
/// visitors may overcount, never undercount, a returning one).
#[derive(Debug)]
pub struct UniqueWindow {
    counted: HashMap<(String, LinkId), OffsetDateTime>,
    capacity: usize,
}

impl UniqueWindow {
    /// An empty window holding at most `capacity` visitors.
    pub fn new(capacity: usize) -> Self {
        Self { counted: HashMap::new(), capacity: capacity.max(1) }
    }

    /// Whether a click of `visitor` on `link` at `at` is unique, remembering it when it is.
    pub fn observe(&mut self, visitor: &str, link: LinkId, at: OffsetDateTime) -> bool {
        let key = (visitor.to_owned(), link);
        if let Some(first) = self.counted.get(&key) {
            if at >= *first && at - *first < UNIQUE_WINDOW {
                return false;
            }
        }
        if self.counted.len() >= self.capacity && !self.counted.contains_key(&key) {
            self.evict(at);
        }
        self.counted.insert(key, at);
        true
    }

    fn evict(&mut self, now: OffsetDateTime) {
        self.counted.retain(|_, first| now - *first < UNIQUE_WINDOW);
        if self.counted.len() >= self.capacity {
            let mut times: Vec<OffsetDateTime> = self.counted.values().copied().collect();
            times.sort_unstable();
            let cut = times[times.len() / 2];
            self.counted.retain(|_, first| *first > cut);
        }
    }

    /// How many visitors are remembered.
    pub fn len(&self) -> usize {
        self.counted.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.counted.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use uuid::Uuid;

    const T0: OffsetDateTime = datetime!(2026-12-03 12:00 UTC);

    #[test]
    fn click_dedupe_table() {
        let a = LinkId::from_uuid(Uuid::from_u128(1));
        let b = LinkId::from_uuid(Uuid::from_u128(2));
        // (visitor, link, minutes after T0) -> unique?
        let table = [
            ("v1", a, 0, true),   // first click
            ("v1", a, 10, false), // same visitor and link within 30 minutes
            ("v1", a, 29, false),
            ("v1", b, 29, true),  // another link counts on its own
            ("v2", a, 29, true),  // another visitor counts on their own
            ("v1", a, 30, true),  // the window of the counted click at 0 has ended
            ("v1", a, 45, false), // within the window of the one at 30
            ("v1", a, 60, true),
        ];
        let mut window = UniqueWindow::new(100);
        for (i, (visitor, link, minutes, want)) in table.into_iter().enumerate() {
            assert_eq!(window.observe(visitor, link, T0 + Duration::minutes(minutes)), want, "row {i}");
        }
    }

    #[test]
    fn the_window_stays_bounded_and_keeps_recent_visitors() {
        let link = LinkId::from_uuid(Uuid::from_u128(1));
        let mut window = UniqueWindow::new(10);
        for i in 0..100 {
            assert!(window.observe(&format!("v{i}"), link, T0 + Duration::seconds(i)));
            assert!(window.len() <= 10);
        }
        // The newest visitor is still remembered.
        assert!(!window.observe("v99", link, T0 + Duration::seconds(100)));
    }

    #[test]
    fn visitor_hashes_depend_on_salt_address_and_agent_and_hide_the_address() {
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let h = visitor_hash("salt-1", ip, "UA");
        assert_eq!(h.len(), 32);
        assert!(!h.contains("203"));
        assert_eq!(h, visitor_hash("salt-1", ip, "UA"));
        assert_ne!(h, visitor_hash("salt-2", ip, "UA"));
        assert_ne!(h, visitor_hash("salt-1", "203.0.113.8".parse().unwrap(), "UA"));
        assert_ne!(h, visitor_hash("salt-1", ip, "UA2"));
    }
}
