//! The durable inbox of inbound Stripe events: stored when verified, processed by workers.

use time::OffsetDateTime;

use crate::ids::OrgId;
use crate::program::api_enum;

api_enum!(/// Where an inbound event stands.
    InboxStatus { Pending, Done, Failed, Skipped });

/// One inbound event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxEvent {
    /// Stripe's event id (`evt_…`): the idempotency key.
    pub id: String,
    /// The organization, once known (from `account`, or resolved while processing).
    pub org_id: Option<OrgId>,
    /// `account` of a connected account's event.
    pub account: Option<String>,
    /// e.g. `invoice.paid`.
    pub event_type: String,
    /// The raw body as received (UTF-8 JSON).
    pub payload: String,
    /// Status.
    pub status: InboxStatus,
    /// Processing attempts so far.
    pub attempts: u32,
    /// When it may next be processed.
    pub next_attempt_at: OffsetDateTime,
    /// While a worker holds it.
    pub locked_until: Option<OffsetDateTime>,
    /// Why the last attempt failed, or why it was skipped.
    pub last_error: Option<String>,
    /// When it arrived.
    pub received_at: OffsetDateTime,
    /// When it was done, failed or skipped.
    pub processed_at: Option<OffsetDateTime>,
}
