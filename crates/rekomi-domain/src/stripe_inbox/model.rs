//! The durable inbox of inbound Stripe events: stored when verified, processed by workers.

use time::OffsetDateTime;

use crate::kernel::ids::OrgId;
use crate::kernel::stripe_ids::{StripeAccountId, StripeEventId, StripePaymentRef};
use crate::kernel::text::api_enum;

api_enum!(/// Where an inbound event stands. `Waiting`: a refund whose sale (or organization) is not
    /// known yet; it is woken when that sale is recorded, and rechecked now and then.
    InboxStatus { Pending, Done, Failed, Skipped, Waiting });

/// One inbound event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxEvent {
    /// Stripe's event id (`evt_…`): the idempotency key.
    pub id: StripeEventId,
    /// The organization, once known (from `account`, or resolved while processing).
    pub org_id: Option<OrgId>,
    /// `account` of a connected account's event.
    pub account: Option<StripeAccountId>,
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
    /// While `Waiting`: the payment (invoice, else payment intent, else charge id) whose sale
    /// it waits for.
    pub waiting_for: Option<StripePaymentRef>,
    /// How many times an Owner replayed it (capped).
    pub replays: u32,
}

/// How many times an Owner may replay one event. Replays are for after a cause is fixed (a
/// linked account, a Stripe outage); an event that still fails after this many is for an
/// operator (`rekomi-server admin replay-stripe-event`, not capped) to look at.
pub const MAX_OWNER_REPLAYS: u32 = 5;

/// Why an event cannot be replayed now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayRefused {
    /// A worker holds it.
    #[error("a worker is processing this event; replay it once it is done")]
    InProgress,
    /// An Owner replayed it [`MAX_OWNER_REPLAYS`] times already.
    #[error("this event was replayed 5 times already; an operator can replay it further")]
    LimitReached,
}

impl From<ReplayRefused> for crate::kernel::error::DomainError {
    fn from(e: ReplayRefused) -> Self {
        let code = match e {
            ReplayRefused::InProgress => "stripe_event_in_progress",
            ReplayRefused::LimitReached => "replay_limit_reached",
        };
        Self::conflict(code, e.to_string())
    }
}

impl InboxEvent {
    /// Applied: its effects are recorded (in the same transaction).
    pub fn done(&mut self, note: Option<String>, now: OffsetDateTime) {
        self.settle(InboxStatus::Done, note, now);
    }

    /// Nothing for Rekomi to do.
    pub fn skip(&mut self, why: String, now: OffsetDateTime) {
        self.settle(InboxStatus::Skipped, Some(why), now);
    }

    /// Failed for good.
    pub fn fail(&mut self, why: String, now: OffsetDateTime) {
        self.settle(InboxStatus::Failed, Some(why), now);
    }

    /// To be tried again at `next` (from the queue's retry policy), or failed for good when
    /// the policy is spent (`None`).
    pub fn retry(&mut self, why: String, next: Option<OffsetDateTime>, now: OffsetDateTime) {
        match next {
            Some(at) => {
                self.status = InboxStatus::Pending;
                self.next_attempt_at = at;
                self.locked_until = None;
                self.waiting_for = None;
                self.last_error = Some(why);
            }
            None => {
                let why = format!("gave up after {} attempts: {why}", self.attempts);
                self.fail(why, now);
            }
        }
    }

    /// Waits for the sale of `payment` (a refund that arrived first); looked at again at
    /// `recheck_at` unless the sale wakes it before. Waiting spends no attempt.
    pub fn wait(&mut self, payment: StripePaymentRef, why: String, recheck_at: OffsetDateTime) {
        self.status = InboxStatus::Waiting;
        self.attempts = 0;
        self.waiting_for = Some(payment);
        self.next_attempt_at = recheck_at;
        self.locked_until = None;
        self.last_error = Some(why);
    }

    fn settle(&mut self, status: InboxStatus, note: Option<String>, now: OffsetDateTime) {
        self.status = status;
        self.last_error = note;
        self.locked_until = None;
        self.waiting_for = None;
        self.processed_at = Some(now);
    }

    /// Puts the event back in the queue as new: due now, its retry budget whole. An Owner's
    /// replay (`counted`) uses up one of [`MAX_OWNER_REPLAYS`]; an operator's does not.
    ///
    /// # Errors
    /// [`ReplayRefused`]; nothing changes then.
    pub fn replay(&mut self, now: OffsetDateTime, counted: bool) -> Result<(), ReplayRefused> {
        if self.status == InboxStatus::Pending && self.locked_until.is_some_and(|t| t > now) {
            return Err(ReplayRefused::InProgress);
        }
        if counted {
            if self.replays >= MAX_OWNER_REPLAYS {
                return Err(ReplayRefused::LimitReached);
            }
            self.replays += 1;
        }
        self.status = InboxStatus::Pending;
        self.attempts = 0;
        self.next_attempt_at = now;
        self.locked_until = None;
        self.processed_at = None;
        self.waiting_for = None;
        Ok(())
    }
}
