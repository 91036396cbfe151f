//! [`SecretCache`]: the live signing secrets of recently seen organizations, so a brand's
//! server reporting sale after sale does not pay a database round trip per request for them.
//!
//! Only a successful verification trusts the cache: a signature that no cached secret matches
//! (a secret rotated a moment ago, by this process or another) is checked again against the
//! database before it is refused. Each secret carries its own expiry, which verification
//! checks, so a cached secret never verifies past the end of its rotation overlap either; at
//! worst a secret rotated out elsewhere keeps its old, later expiry for [`SECRET_CACHE_TTL`].

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use time::{Duration, OffsetDateTime};

use crate::kernel::ids::OrgId;
use crate::tracking::TrackingSecret;

/// How long the secrets read for an organization are trusted.
pub const SECRET_CACHE_TTL: Duration = Duration::seconds(10);
/// Organizations remembered, at most (the cache is emptied when full).
const CAPACITY: usize = 10_000;

/// The live secrets per organization, with when they were read.
#[derive(Debug, Default)]
pub struct SecretCache {
    entries: Mutex<HashMap<OrgId, (OffsetDateTime, Vec<TrackingSecret>)>>,
}

impl SecretCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The secrets of `org` read less than [`SECRET_CACHE_TTL`] before `now`.
    pub(crate) fn get(&self, org: OrgId, now: OffsetDateTime) -> Option<Vec<TrackingSecret>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(&org).filter(|(read_at, _)| now >= *read_at && now - *read_at < SECRET_CACHE_TTL).map(|(_, s)| s.clone())
    }

    /// Remembers `secrets` of `org` as read at `now`.
    pub(crate) fn put(&self, org: OrgId, secrets: Vec<TrackingSecret>, now: OffsetDateTime) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY && !entries.contains_key(&org) {
            entries.clear();
        }
        entries.insert(org, (now, secrets));
    }
}
