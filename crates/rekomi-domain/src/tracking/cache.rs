//! [`SecretCache`]: the live signing secrets of recently seen organizations, so a brand's
//! server reporting sale after sale does not pay a database round trip per request for them.
//!
//! Only a successful verification trusts the cache: a signature that no cached secret matches
//! (a secret rotated a moment ago, by this process or another) is checked again against the
//! database before it is refused. Each secret carries its own expiry, which verification
//! checks, so a cached secret never verifies past the end of its rotation overlap either; at
//! worst a secret rotated out elsewhere keeps its old, later expiry for [`SECRET_CACHE_TTL`].

use time::{Duration, OffsetDateTime};

use crate::kernel::ids::OrgId;
use crate::kernel::ttl_cache::TtlCache;
use crate::tracking::TrackingSecret;

/// How long the secrets read for an organization are trusted.
pub const SECRET_CACHE_TTL: Duration = Duration::seconds(10);
/// Organizations remembered, at most.
const CAPACITY: usize = 10_000;

/// The live secrets per organization, with when they were read.
#[derive(Debug)]
pub struct SecretCache(TtlCache<OrgId, Vec<TrackingSecret>>);

impl Default for SecretCache {
    fn default() -> Self {
        Self(TtlCache::new(SECRET_CACHE_TTL, CAPACITY))
    }
}

impl SecretCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The secrets of `org` read less than [`SECRET_CACHE_TTL`] before `now`.
    pub(crate) fn get(&self, org: OrgId, now: OffsetDateTime) -> Option<Vec<TrackingSecret>> {
        self.0.get(&org, now)
    }

    /// Remembers `secrets` of `org` as read at `now`.
    pub(crate) fn put(&self, org: OrgId, secrets: Vec<TrackingSecret>, now: OffsetDateTime) {
        self.0.put(org, secrets, now);
    }
}
