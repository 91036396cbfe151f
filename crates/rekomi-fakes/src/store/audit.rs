//! The fake store's slice for the audit log: the domain's `AuditRepo` over the `audit` table
//! of `State`.

use rekomi_domain::audit::{AuditEntry, AuditRepo};
use rekomi_domain::kernel::ids::OrgId;
use rekomi_domain::ports::store::StoreError;

use super::{conflict, limit_of, references, State};

/// Foreign-key names of this table in the migrations.
mod foreign_keys {
    pub const AUDIT_ORG: &str = "audit_log_org_id_fkey";
}

impl AuditRepo for State {
    fn append_audits(&mut self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        let before = self.audit.clone();
        for entry in entries {
            let checked = if self.audit.contains_key(&entry.id) {
                Err(conflict("audit_log_pkey"))
            } else {
                references(&[(self.has_org(entry.org_id), foreign_keys::AUDIT_ORG)])
            };
            if let Err(e) = checked {
                self.audit = before;
                return Err(e);
            }
            self.audit.insert(entry.id, entry.clone());
        }
        Ok(())
    }

    fn audit_entries(&mut self, org: OrgId, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self.audit.values().rev().filter(|e| e.org_id == org).take(limit_of(limit)).cloned().collect())
    }
}
