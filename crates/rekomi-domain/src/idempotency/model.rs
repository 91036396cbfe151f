//! An idempotency record and what a request finds when it presents its key.

use time::{Duration, OffsetDateTime};

use crate::kernel::ids::OrgId;

/// How long a key replays its response (the spec's window).
pub const IDEMPOTENCY_WINDOW: Duration = Duration::minutes(60);

/// A request still in flight after this long is taken to have died with its server (its
/// effects, if any, committed or not); a new request with the key may then run again. A run
/// that did commit is not repeated by this: its entries are no longer open, so the total the
/// retry confirms no longer matches.
pub const STALE_IN_FLIGHT: Duration = Duration::minutes(2);

/// A response as it was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: String,
}

/// One key of one organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Organization.
    pub org_id: OrgId,
    /// The client's key.
    pub key: String,
    /// SHA-256 (hex) of the request the key was first used with (route and body).
    pub request_hash: String,
    /// The response, once the first request finished.
    pub response: Option<StoredResponse>,
    /// When the first request arrived.
    pub created_at: OffsetDateTime,
    /// When the key may be used afresh.
    pub expires_at: OffsetDateTime,
}

/// What a request presenting a key may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotentStart {
    /// Nobody used the key (or its record expired): run, then store the response.
    Run,
    /// The same request was answered: send this again, with `Idempotency-Replayed: true`.
    Replay(StoredResponse),
    /// The same request is still being answered (409).
    InFlight,
    /// The key was used with another request (409).
    Mismatch,
}
