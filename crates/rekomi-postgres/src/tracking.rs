//! Tracking in PostgreSQL: [`TrackingRepo`] for [`PgTx`] over the `tracking_secrets` table.
//! An outbound adapter of the hexagon, the `tracking` capability's side of the storage port.

use diesel::prelude::*;
use rekomi_domain::kernel::ids::OrgId;
use rekomi_domain::ports::store::StoreError;
use rekomi_domain::tracking::{SigningSecret, TrackingRepo, TrackingSecret};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::bad_row;
use crate::schema::tracking_secrets;
use crate::tx::{decode, PgTx};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = tracking_secrets, check_for_backend(diesel::pg::Pg))]
struct TrackingSecretRow {
    id: Uuid,
    org_id: Uuid,
    secret: String,
    created_at: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
}

impl TrackingSecretRow {
    fn into_domain(self) -> Result<TrackingSecret, StoreError> {
        Ok(TrackingSecret {
            id: self.id.into(),
            org_id: self.org_id.into(),
            secret: SigningSecret::parse(&self.secret).map_err(|e| bad_row("tracking_secrets", "secret", e))?,
            created_at: self.created_at,
            expires_at: self.expires_at,
        })
    }
}

impl From<&TrackingSecret> for TrackingSecretRow {
    fn from(s: &TrackingSecret) -> Self {
        Self {
            id: s.id.as_uuid(),
            org_id: s.org_id.as_uuid(),
            secret: s.secret.expose().to_owned(),
            created_at: s.created_at,
            expires_at: s.expires_at,
        }
    }
}

impl TrackingRepo for PgTx<'_> {
    fn live_tracking_secrets(&mut self, org: OrgId, now: OffsetDateTime) -> Result<Vec<TrackingSecret>, StoreError> {
        let rows = self.read(|c| {
            tracking_secrets::table
                .filter(tracking_secrets::org_id.eq(org.as_uuid()))
                .filter(tracking_secrets::expires_at.is_null().or(tracking_secrets::expires_at.gt(now)))
                .order((tracking_secrets::created_at.desc(), tracking_secrets::id.desc()))
                .select(TrackingSecretRow::as_select())
                .load(c)
        })?;
        decode(rows, TrackingSecretRow::into_domain)
    }

    fn expire_current_tracking_secret(&mut self, org: OrgId, at: OffsetDateTime) -> Result<Option<TrackingSecret>, StoreError> {
        let before = self.read(|c| {
            tracking_secrets::table
                .filter(tracking_secrets::org_id.eq(org.as_uuid()))
                .filter(tracking_secrets::expires_at.is_null())
                .select(TrackingSecretRow::as_select())
                .for_update()
                .first(c)
                .optional()
        })?;
        let Some(before) = before else { return Ok(None) };
        let id = before.id;
        self.write(|c| {
            diesel::update(tracking_secrets::table.filter(tracking_secrets::id.eq(id)))
                .set(tracking_secrets::expires_at.eq(Some(at)))
                .execute(c)
        })?;
        before.into_domain().map(Some)
    }

    fn insert_tracking_secret(&mut self, secret: &TrackingSecret) -> Result<(), StoreError> {
        let row = TrackingSecretRow::from(secret);
        self.guarded_write(|c| diesel::insert_into(tracking_secrets::table).values(&row).execute(c))?;
        Ok(())
    }
}
