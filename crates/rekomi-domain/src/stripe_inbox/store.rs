//! The storage port's slice for the inbound Stripe event inbox: the repository its use cases need. Every store
//! implements it; [`crate::ports::Tx`] composes all the slices into one transaction.

use time::OffsetDateTime;

use crate::kernel::ids::OrgId;
use crate::kernel::stripe_ids::{StripeAccountId, StripeEventId, StripePaymentRef};
use crate::ports::store::StoreError;
use crate::stripe_inbox::{InboxEvent, InboxStatus};

/// The inbound event inbox.
pub trait InboxRepo {
    /// Stores an event. Returns false when its id is already stored (a redelivery).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_inbox_event(&mut self, event: &InboxEvent) -> Result<bool, StoreError>;
    /// Takes up to `limit` pending events due at `now` and not held by another worker, marking
    /// them held until `lease_until` and counting an attempt. Concurrent workers never take the
    /// same event (`FOR UPDATE SKIP LOCKED`).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn claim_inbox_events(&mut self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: i64) -> Result<Vec<InboxEvent>, StoreError>;
    /// Extends the lease of events still held (`Pending` and locked) to `lease_until`; events
    /// already finished are left alone. Returns how many were renewed.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn renew_inbox_leases(&mut self, ids: &[StripeEventId], lease_until: OffsetDateTime) -> Result<usize, StoreError>;
    /// Lets go of events still held (`Pending` and locked) so any worker may take them at once.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn release_inbox_events(&mut self, ids: &[StripeEventId]) -> Result<usize, StoreError>;
    /// Makes `Waiting` events of the Stripe `account` (`None`: the platform account) that wait
    /// for one of `payments` due at `now`, and gives those without an organization `org`: the
    /// payment's sale was just recorded there. Returns how many woke.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn wake_waiting_inbox_events(
        &mut self,
        account: Option<&StripeAccountId>,
        payments: &[StripePaymentRef],
        org: OrgId,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError>;
    /// How many events are `Pending`, and the oldest `next_attempt_at` among those due at
    /// `now`.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn inbox_depth(&mut self, now: OffsetDateTime) -> Result<(u64, Option<OffsetDateTime>), StoreError>;
    /// Makes up to `limit` `Waiting` events whose recheck time has come (`next_attempt_at <=
    /// now`) `Pending`. Returns how many.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn wake_due_inbox_events(&mut self, now: OffsetDateTime, limit: i64) -> Result<usize, StoreError>;
    /// Replaces an event's processing state (status, org, attempts, next attempt, lock, error,
    /// processed time, what it waits for, replays).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn update_inbox_event(&mut self, event: &InboxEvent) -> Result<(), StoreError>;
    /// One event (any organization).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn inbox_event(&mut self, id: &StripeEventId) -> Result<Option<InboxEvent>, StoreError>;
    /// Events of an organization (`None`: of every organization, for operators), newest first
    /// by arrival, optionally of one status, at most `limit`, received before `before`.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn list_inbox_events(
        &mut self,
        org: Option<OrgId>,
        status: Option<InboxStatus>,
        before: Option<OffsetDateTime>,
        limit: i64,
    ) -> Result<Vec<InboxEvent>, StoreError>;
}
