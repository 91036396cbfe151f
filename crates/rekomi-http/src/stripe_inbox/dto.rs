//! The Stripe inbox's bodies: the receiver's answer, an inbound event as the inbox holds it,
//! the list query, and the value set of event statuses. Inbound adapter side of
//! `rekomi_domain::stripe_inbox`.

use rekomi_domain::stripe_inbox::{InboxEvent, InboxStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::dto::{ts, ts_opt, value_set, TimeParam};

value_set!(/// An inbound Stripe event's status.
    InboxStatusValue = "StripeEventStatus", "Where an inbound Stripe event stands.",
    InboxStatus::ALL.iter().map(InboxStatus::as_str));

/// The answer to a stored Stripe event.
#[derive(Debug, Serialize, ToSchema)]
pub struct StripeReceiptResponse {
    /// Always true.
    pub received: bool,
    /// The Stripe event id (`evt_…`).
    pub id: String,
    /// Whether the event had been stored before.
    pub duplicate: bool,
}

/// An inbound Stripe event as the inbox holds it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StripeEventResponse {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub account: Option<String>,
    #[schema(value_type = InboxStatusValue)]
    pub status: &'static str,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub received_at: String,
    pub processed_at: Option<String>,
    /// When a `Pending` event is next tried, or a `Waiting` one looked at again.
    pub next_attempt_at: Option<String>,
    /// While `Waiting`: the payment (invoice, payment intent or charge id) whose sale it waits for.
    pub waiting_for: Option<String>,
    /// How many of its 5 Owner replays were used.
    pub replays: u32,
}

pub(crate) fn event_response(e: &InboxEvent) -> StripeEventResponse {
    StripeEventResponse {
        id: e.id.as_str().to_owned(),
        event_type: e.event_type.clone(),
        account: e.account.as_ref().map(|account| account.as_str().to_owned()),
        status: e.status.as_str(),
        attempts: e.attempts,
        last_error: e.last_error.clone(),
        received_at: ts(e.received_at),
        processed_at: ts_opt(e.processed_at),
        next_attempt_at: matches!(e.status, InboxStatus::Pending | InboxStatus::Waiting).then(|| ts(e.next_attempt_at)),
        waiting_for: e.waiting_for.as_ref().map(|payment| payment.as_str().to_owned()),
        replays: e.replays,
    }
}

/// Inbox list query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StripeEventQuery {
    #[param(value_type = Option<InboxStatusValue>, inline)]
    pub status: Option<String>,
    /// Only events received before this instant, for paging: an RFC 3339 timestamp, or a date
    /// (`2026-04-01`) meaning that day's start in UTC.
    #[param(value_type = Option<TimeParam>, inline)]
    pub before: Option<String>,
    /// 1-200 (default 50).
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub take: Option<i64>,
}
