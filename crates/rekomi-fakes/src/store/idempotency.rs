//! The fake store's slice for idempotency records.

use rekomi_domain::idempotency::{IdempotencyRecord, IdempotencyRepo, StoredResponse};
use rekomi_domain::kernel::ids::OrgId;
use rekomi_domain::ports::store::{constraints, StoreError};

use super::{conflict, State};

impl IdempotencyRepo for State {
    fn idempotency_record(&mut self, org: OrgId, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self.idempotency.get(&(org, key.to_owned())).cloned())
    }

    fn put_idempotency_record(&mut self, record: &IdempotencyRecord, replace: bool) -> Result<(), StoreError> {
        let key = (record.org_id, record.key.clone());
        if !replace && self.idempotency.contains_key(&key) {
            return Err(conflict(constraints::IDEMPOTENCY_KEY));
        }
        self.idempotency.insert(key, record.clone());
        Ok(())
    }

    fn complete_idempotency_record(&mut self, org: OrgId, key: &str, response: &StoredResponse) -> Result<(), StoreError> {
        if let Some(r) = self.idempotency.get_mut(&(org, key.to_owned())) {
            r.response = Some(response.clone());
        }
        Ok(())
    }

    fn delete_idempotency_record(&mut self, org: OrgId, key: &str) -> Result<(), StoreError> {
        self.idempotency.remove(&(org, key.to_owned()));
        Ok(())
    }
}
