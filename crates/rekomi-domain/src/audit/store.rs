//! The storage port's slice for the audit log: the repository its use cases need. Every store
//! implements it; [`crate::ports::Tx`] composes all the slices into one transaction.

use crate::audit::AuditEntry;
use crate::kernel::ids::OrgId;
use crate::ports::store::StoreError;

/// The audit log.
pub trait AuditRepo {
    /// Appends entries (one statement for many, where the store can).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn append_audits(&mut self, entries: &[AuditEntry]) -> Result<(), StoreError>;
    /// Appends an entry.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn append_audit(&mut self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.append_audits(std::slice::from_ref(entry))
    }
    /// The organization's entries, newest first (for tests and the future audit API).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn audit_entries(&mut self, org: OrgId, limit: i64) -> Result<Vec<AuditEntry>, StoreError>;
}
