//! Client idempotency keys (`Idempotency-Key`, supported on `POST /api/v1/payouts/run`): a
//! stored record per organization and key holds the request's hash and, once answered, the
//! response, for the spec's 60-minute window.

mod model;
mod store;
mod usecases;

pub use model::{IdempotencyRecord, IdempotentStart, StoredResponse, IDEMPOTENCY_WINDOW, STALE_IN_FLIGHT};
pub use store::IdempotencyRepo;
