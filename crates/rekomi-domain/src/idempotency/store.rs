//! The storage port's slice for idempotency records.

use crate::idempotency::model::{IdempotencyRecord, StoredResponse};
use crate::kernel::ids::OrgId;
use crate::ports::store::StoreError;

/// Idempotency records.
pub trait IdempotencyRepo {
    /// The record of a key, locked until the transaction ends.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn idempotency_record(&mut self, org: OrgId, key: &str) -> Result<Option<IdempotencyRecord>, StoreError>;
    /// Inserts a record, or replaces the existing one of the same organization and key.
    ///
    /// # Errors
    /// `Conflict` on [`constraints::IDEMPOTENCY_KEY`](crate::ports::store::constraints::IDEMPOTENCY_KEY)
    /// when `replace` is false and the key exists (a concurrent first use).
    fn put_idempotency_record(&mut self, record: &IdempotencyRecord, replace: bool) -> Result<(), StoreError>;
    /// Stores the response of a key's request.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn complete_idempotency_record(&mut self, org: OrgId, key: &str, response: &StoredResponse) -> Result<(), StoreError>;
    /// Forgets a key whose request ended without a response worth replaying (a 5xx).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn delete_idempotency_record(&mut self, org: OrgId, key: &str) -> Result<(), StoreError>;
}
