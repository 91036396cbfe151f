//! The audit log in PostgreSQL: the rows of `audit_log`, and [`AuditRepo`] for [`PgTx`]. An
//! outbound adapter of the hexagon, the `audit` capability's side of the storage port.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use diesel::prelude::*;
use rekomi_domain::audit::{AuditAction, AuditEntry, AuditRepo};
use rekomi_domain::kernel::actor::AuditActor;
use rekomi_domain::kernel::ids::OrgId;
use rekomi_domain::ports::store::StoreError;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::columns::api_enum;
use crate::error::bad_row;
use crate::schema::audit_log;
use crate::tx::{decode, PgTx, INSERT_CHUNK};

// ---------------------------------------------------------------------------------------------
// audit_log
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_log, check_for_backend(diesel::pg::Pg))]
struct AuditRow {
    id: Uuid,
    org_id: Uuid,
    actor_type: String,
    actor_id: Option<String>,
    action: String,
    entity_type: String,
    entity_id: String,
    before: Option<Value>,
    after: Option<Value>,
    created_at: OffsetDateTime,
}

impl AuditRow {
    fn into_domain(self) -> Result<AuditEntry, StoreError> {
        const T: &str = "audit_log";
        let actor = match (self.actor_type.as_str(), self.actor_id) {
            ("api_key", Some(id)) => AuditActor::ApiKey(id),
            ("user", Some(id)) => AuditActor::User(id),
            ("system", _) => AuditActor::System,
            // `mcp` and `admin` are allowed by the schema for writers to come, but the domain
            // has no variant for them yet: refuse rather than misattribute the entry.
            (kind, id) => {
                return Err(bad_row(
                    T,
                    "actor_type",
                    format!("{kind:?} (actor_id {}) has no domain actor", if id.is_some() { "set" } else { "missing" }),
                ))
            }
        };
        Ok(AuditEntry {
            id: self.id.into(),
            org_id: self.org_id.into(),
            actor,
            action: api_enum(T, "action", &self.action, AuditAction::parse)?,
            entity_type: intern_entity_type(&self.entity_type),
            entity_id: self.entity_id,
            before: self.before,
            after: self.after,
            created_at: self.created_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = audit_log, treat_none_as_default_value = false)]
struct NewAuditRow<'a> {
    id: Uuid,
    org_id: Uuid,
    actor_type: &'static str,
    actor_id: Option<&'a str>,
    action: &'static str,
    entity_type: &'static str,
    entity_id: &'a str,
    before: Option<&'a Value>,
    after: Option<&'a Value>,
    created_at: OffsetDateTime,
}

impl<'a> From<&'a AuditEntry> for NewAuditRow<'a> {
    fn from(e: &'a AuditEntry) -> Self {
        Self {
            id: e.id.as_uuid(),
            org_id: e.org_id.as_uuid(),
            actor_type: e.actor.kind(),
            actor_id: e.actor.id(),
            action: e.action.as_str(),
            entity_type: e.entity_type,
            entity_id: &e.entity_id,
            before: e.before.as_ref(),
            after: e.after.as_ref(),
            created_at: e.created_at,
        }
    }
}

/// The entity types the domain writes today, so reading them back allocates nothing.
const KNOWN_ENTITY_TYPES: &[&str] = &[
    "organization",
    "api_key",
    "program",
    "affiliate",
    "affiliate_link",
    "link",
    "campaign_coupon",
    "affiliate_coupon",
    "conversion",
    "subscription_event",
    "payout",
    "webhook_endpoint",
];

/// `AuditEntry::entity_type` is a `&'static str` (the domain only ever writes literals), so a
/// value read back must become one. Known names map to the table above; a name written by a
/// newer build is leaked once and reused, which bounds the leak by the number of distinct
/// entity types rather than the number of reads.
fn intern_entity_type(raw: &str) -> &'static str {
    if let Some(known) = KNOWN_ENTITY_TYPES.iter().find(|k| **k == raw) {
        return known;
    }
    static EXTRA: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    // A poisoned lock only means another thread panicked while inserting; the set is still
    // a valid set of leaked strings.
    let mut extra = EXTRA.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = extra.get(raw) {
        return found;
    }
    let leaked: &'static str = Box::leak(raw.to_owned().into_boxed_str());
    extra.insert(leaked);
    leaked
}

impl AuditRepo for PgTx<'_> {
    fn append_audits(&mut self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        // One row (the common case) is a cached prepared statement; a batch's SQL depends on
        // its size, so PostgreSQL plans it each time.
        if let [one] = entries {
            let row = NewAuditRow::from(one);
            self.write(|c| diesel::insert_into(audit_log::table).values(&row).execute(c))?;
            return Ok(());
        }
        for chunk in entries.chunks(INSERT_CHUNK) {
            let rows: Vec<NewAuditRow<'_>> = chunk.iter().map(NewAuditRow::from).collect();
            self.write(|c| diesel::insert_into(audit_log::table).values(&rows).execute(c))?;
        }
        Ok(())
    }

    fn audit_entries(&mut self, org: OrgId, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self.read(|c| {
            audit_log::table
                .filter(audit_log::org_id.eq(org.as_uuid()))
                .order(audit_log::id.desc())
                .limit(limit.max(0))
                .select(AuditRow::as_select())
                .load(c)
        })?;
        decode(rows, AuditRow::into_domain)
    }
}
