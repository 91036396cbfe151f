//! Idempotency records in PostgreSQL: [`IdempotencyRepo`] for [`PgTx`] over
//! `idempotency_records`. A first use inserts with `ON CONFLICT DO NOTHING`, so two first uses
//! at once do not abort a transaction: the second waits for the first to commit and is told
//! the key exists.

use diesel::prelude::*;
use rekomi_domain::idempotency::{IdempotencyRecord, IdempotencyRepo, StoredResponse};
use rekomi_domain::kernel::ids::OrgId;
use rekomi_domain::ports::store::{constraints, StoreError};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::bad_row;
use crate::schema::idempotency_records as ir;
use crate::tx::PgTx;

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = ir, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
struct RecordRow {
    org_id: Uuid,
    key: String,
    request_hash: String,
    status_code: Option<i32>,
    response_body: Option<String>,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
}

impl RecordRow {
    fn into_domain(self) -> Result<IdempotencyRecord, StoreError> {
        let response = match (self.status_code, self.response_body) {
            (Some(status), Some(body)) => {
                Some(StoredResponse { status: u16::try_from(status).map_err(|e| bad_row("idempotency_records", "status_code", e))?, body })
            }
            _ => None,
        };
        Ok(IdempotencyRecord {
            org_id: self.org_id.into(),
            key: self.key,
            request_hash: self.request_hash,
            response,
            created_at: self.created_at,
            expires_at: self.expires_at,
        })
    }
}

impl From<&IdempotencyRecord> for RecordRow {
    fn from(r: &IdempotencyRecord) -> Self {
        Self {
            org_id: r.org_id.as_uuid(),
            key: r.key.clone(),
            request_hash: r.request_hash.clone(),
            status_code: r.response.as_ref().map(|s| i32::from(s.status)),
            response_body: r.response.as_ref().map(|s| s.body.clone()),
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

impl IdempotencyRepo for PgTx<'_> {
    fn idempotency_record(&mut self, org: OrgId, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = self.read(|c| {
            ir::table
                .filter(ir::org_id.eq(org.as_uuid()))
                .filter(ir::key.eq(key))
                .select(RecordRow::as_select())
                .for_update()
                .first(c)
                .optional()
        })?;
        row.map(RecordRow::into_domain).transpose()
    }

    fn put_idempotency_record(&mut self, record: &IdempotencyRecord, replace: bool) -> Result<(), StoreError> {
        let row = RecordRow::from(record);
        let inserted = self.write(|c| {
            let insert = diesel::insert_into(ir::table).values(&row).on_conflict((ir::org_id, ir::key));
            if replace {
                insert.do_update().set(&row).execute(c)
            } else {
                insert.do_nothing().execute(c)
            }
        })?;
        if inserted == 0 {
            return Err(StoreError::Conflict { constraint: constraints::IDEMPOTENCY_KEY.to_owned() });
        }
        Ok(())
    }

    fn complete_idempotency_record(&mut self, org: OrgId, key: &str, response: &StoredResponse) -> Result<(), StoreError> {
        self.write(|c| {
            diesel::update(ir::table.filter(ir::org_id.eq(org.as_uuid())).filter(ir::key.eq(key)))
                .set((ir::status_code.eq(Some(i32::from(response.status))), ir::response_body.eq(Some(&response.body))))
                .execute(c)
        })?;
        Ok(())
    }

    fn delete_idempotency_record(&mut self, org: OrgId, key: &str) -> Result<(), StoreError> {
        self.write(|c| diesel::delete(ir::table.filter(ir::org_id.eq(org.as_uuid())).filter(ir::key.eq(key))).execute(c))?;
        Ok(())
    }
}
