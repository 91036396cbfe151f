//! The tracking capability's slice of the storage port: the organizations' signing secrets.

use time::OffsetDateTime;

use crate::kernel::ids::OrgId;
use crate::ports::store::StoreError;
use crate::tracking::model::TrackingSecret;

/// Signing secrets. An organization has at most one current secret (no expiry); rotating
/// gives the current one an expiry and inserts a new current one.
pub trait TrackingRepo {
    /// Every secret of `org` that still verifies at `now` (no expiry, or an expiry after
    /// `now`), newest first.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn live_tracking_secrets(&mut self, org: OrgId, now: OffsetDateTime) -> Result<Vec<TrackingSecret>, StoreError>;

    /// Gives `org`'s current secret (the one without an expiry) the expiry `at`, and returns
    /// it as it was before, if there was one. Locks it until the transaction ends.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn expire_current_tracking_secret(&mut self, org: OrgId, at: OffsetDateTime) -> Result<Option<TrackingSecret>, StoreError>;

    /// Inserts a secret.
    ///
    /// # Errors
    /// `Conflict` on [`TRACKING_SECRET_CURRENT`](crate::ports::store::constraints::TRACKING_SECRET_CURRENT)
    /// when `org` already has a current secret (a concurrent rotation), `Conflict` on the
    /// organization foreign key when `org` does not exist; `Unavailable` or `Unexpected`.
    fn insert_tracking_secret(&mut self, secret: &TrackingSecret) -> Result<(), StoreError>;
}
