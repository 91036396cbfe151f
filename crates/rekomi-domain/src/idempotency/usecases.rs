//! Starting and finishing a request under an idempotency key.

use sha2::{Digest, Sha256};

use crate::idempotency::model::{IdempotencyRecord, IdempotentStart, StoredResponse, IDEMPOTENCY_WINDOW, STALE_IN_FLIGHT};
use crate::kernel::error::DomainError;
use crate::kernel::ids::OrgId;
use crate::ports::store::constraints;
use crate::services::Services;

impl Services {
    /// Claims `key` for a request whose route and body are `request`: whether to run it, replay
    /// an earlier answer, or refuse it. Two first uses at once: one runs, the other is told
    /// the key is in flight.
    ///
    /// # Errors
    /// Storage.
    pub async fn start_idempotent(&self, org: OrgId, key: &str, request: &[u8]) -> Result<IdempotentStart, DomainError> {
        let now = self.now();
        let hash = hex::encode(Sha256::digest(request));
        let key = key.to_owned();
        self.tx(move |tx| {
            let existing = tx.idempotency_record(org, &key)?;
            let replace = match &existing {
                Some(r) if r.expires_at > now => {
                    if r.request_hash != hash {
                        return Ok(IdempotentStart::Mismatch);
                    }
                    match &r.response {
                        Some(response) => return Ok(IdempotentStart::Replay(response.clone())),
                        None if now - r.created_at < STALE_IN_FLIGHT => return Ok(IdempotentStart::InFlight),
                        None => true,
                    }
                }
                Some(_) => true,
                None => false,
            };
            let record = IdempotencyRecord {
                org_id: org,
                key,
                request_hash: hash,
                response: None,
                created_at: now,
                expires_at: now + IDEMPOTENCY_WINDOW,
            };
            match tx.put_idempotency_record(&record, replace) {
                Ok(()) => Ok(IdempotentStart::Run),
                Err(e) if e.is_conflict_on(constraints::IDEMPOTENCY_KEY) => Ok(IdempotentStart::InFlight),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Stores the answer of a request started with [`Services::start_idempotent`]; a 5xx
    /// answer forgets the key instead, so the client's retry runs again.
    ///
    /// # Errors
    /// Storage.
    pub async fn finish_idempotent(&self, org: OrgId, key: &str, response: StoredResponse) -> Result<(), DomainError> {
        let key = key.to_owned();
        self.tx(move |tx| {
            if response.status >= 500 {
                tx.delete_idempotency_record(org, &key)?;
            } else {
                tx.complete_idempotency_record(org, &key, &response)?;
            }
            Ok(())
        })
        .await
    }
}
