//! The fake store's slice for tracking: the domain's `TrackingRepo` over the `tracking_secrets`
//! table of `State`, with the migration's one-current-secret rule and organization reference.

use rekomi_domain::kernel::ids::OrgId;
use rekomi_domain::ports::store::{constraints, StoreError};
use rekomi_domain::tracking::{TrackingRepo, TrackingSecret};
use time::OffsetDateTime;

use super::{conflict, references, State};

mod foreign_keys {
    pub const TRACKING_SECRET_ORG: &str = "tracking_secrets_org_id_fkey";
}

impl TrackingRepo for State {
    fn live_tracking_secrets(&mut self, org: OrgId, now: OffsetDateTime) -> Result<Vec<TrackingSecret>, StoreError> {
        let mut live: Vec<TrackingSecret> =
            self.tracking_secrets.values().filter(|s| s.org_id == org && s.is_live_at(now)).cloned().collect();
        live.sort_by_key(|s| std::cmp::Reverse((s.created_at, s.id)));
        Ok(live)
    }

    fn expire_current_tracking_secret(&mut self, org: OrgId, at: OffsetDateTime) -> Result<Option<TrackingSecret>, StoreError> {
        let current = self.tracking_secrets.values_mut().find(|s| s.org_id == org && s.expires_at.is_none());
        Ok(current.map(|s| {
            let before = s.clone();
            s.expires_at = Some(at);
            before
        }))
    }

    fn insert_tracking_secret(&mut self, secret: &TrackingSecret) -> Result<(), StoreError> {
        references(&[(self.has_org(secret.org_id), foreign_keys::TRACKING_SECRET_ORG)])?;
        if self.tracking_secrets.contains_key(&secret.id) {
            return Err(conflict("tracking_secrets_pkey"));
        }
        if secret.expires_at.is_none() && self.tracking_secrets.values().any(|s| s.org_id == secret.org_id && s.expires_at.is_none()) {
            return Err(conflict(constraints::TRACKING_SECRET_CURRENT));
        }
        self.tracking_secrets.insert(secret.id, secret.clone());
        Ok(())
    }
}
