//! The Stripe inbox in PostgreSQL: the rows of `inbox_events`, and [`InboxRepo`] for
//! [`PgTx`] (claiming, leasing, waking and listing inbound events). An outbound adapter of the
//! hexagon, the `stripe_inbox` capability's side of the storage port.

use diesel::pg::Pg;
use diesel::prelude::*;
use rekomi_domain::kernel::ids::OrgId;
use rekomi_domain::kernel::stripe_ids::{StripeAccountId, StripeEventId, StripePaymentRef};
use rekomi_domain::ports::store::StoreError;
use rekomi_domain::stripe_inbox::{InboxEvent, InboxRepo, InboxStatus};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::columns::{api_enum, stripe_id, stripe_id_opt, to_u32};
use crate::schema::inbox_events;
use crate::tx::{decode, PgTx};

// ---------------------------------------------------------------------------------------------
// inbox_events
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = inbox_events, check_for_backend(diesel::pg::Pg))]
struct InboxEventRow {
    id: String,
    org_id: Option<Uuid>,
    account: Option<String>,
    event_type: String,
    payload: String,
    status: String,
    attempts: i64,
    next_attempt_at: OffsetDateTime,
    locked_until: Option<OffsetDateTime>,
    last_error: Option<String>,
    received_at: OffsetDateTime,
    processed_at: Option<OffsetDateTime>,
    waiting_for: Option<String>,
    replays: i64,
}

impl InboxEventRow {
    fn into_domain(self) -> Result<InboxEvent, StoreError> {
        const T: &str = "inbox_events";
        Ok(InboxEvent {
            id: stripe_id(T, "id", &self.id)?,
            org_id: self.org_id.map(Into::into),
            account: stripe_id_opt(T, "account", self.account.as_deref())?,
            event_type: self.event_type,
            payload: self.payload,
            status: api_enum(T, "status", &self.status, InboxStatus::parse)?,
            attempts: to_u32(T, "attempts", self.attempts)?,
            next_attempt_at: self.next_attempt_at,
            locked_until: self.locked_until,
            last_error: self.last_error,
            received_at: self.received_at,
            processed_at: self.processed_at,
            waiting_for: stripe_id_opt(T, "waiting_for", self.waiting_for.as_deref())?,
            replays: to_u32(T, "replays", self.replays)?,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = inbox_events)]
struct NewInboxEventRow<'a> {
    id: &'a str,
    org_id: Option<Uuid>,
    account: Option<&'a str>,
    event_type: &'a str,
    payload: &'a str,
    status: &'static str,
    attempts: i64,
    next_attempt_at: OffsetDateTime,
    locked_until: Option<OffsetDateTime>,
    last_error: Option<&'a str>,
    received_at: OffsetDateTime,
    processed_at: Option<OffsetDateTime>,
    waiting_for: Option<&'a str>,
    replays: i64,
}

impl<'a> From<&'a InboxEvent> for NewInboxEventRow<'a> {
    fn from(e: &'a InboxEvent) -> Self {
        Self {
            id: e.id.as_str(),
            org_id: e.org_id.map(|id| id.as_uuid()),
            account: e.account.as_ref().map(StripeAccountId::as_str),
            event_type: &e.event_type,
            payload: &e.payload,
            status: e.status.as_str(),
            attempts: i64::from(e.attempts),
            next_attempt_at: e.next_attempt_at,
            locked_until: e.locked_until,
            last_error: e.last_error.as_deref(),
            received_at: e.received_at,
            processed_at: e.processed_at,
            waiting_for: e.waiting_for.as_ref().map(StripePaymentRef::as_str),
            replays: i64::from(e.replays),
        }
    }
}

/// The processing state `update_inbox_event` replaces; what arrived (id, account, type,
/// payload, arrival time) never changes.
#[derive(AsChangeset)]
#[diesel(table_name = inbox_events, treat_none_as_null = true)]
struct InboxStateChange<'a> {
    org_id: Option<Uuid>,
    status: &'static str,
    attempts: i64,
    next_attempt_at: OffsetDateTime,
    locked_until: Option<OffsetDateTime>,
    last_error: Option<&'a str>,
    processed_at: Option<OffsetDateTime>,
    waiting_for: Option<&'a str>,
    replays: i64,
}

impl<'a> From<&'a InboxEvent> for InboxStateChange<'a> {
    fn from(e: &'a InboxEvent) -> Self {
        Self {
            org_id: e.org_id.map(|id| id.as_uuid()),
            status: e.status.as_str(),
            attempts: i64::from(e.attempts),
            next_attempt_at: e.next_attempt_at,
            locked_until: e.locked_until,
            last_error: e.last_error.as_deref(),
            processed_at: e.processed_at,
            waiting_for: e.waiting_for.as_ref().map(StripePaymentRef::as_str),
            replays: i64::from(e.replays),
        }
    }
}

impl InboxRepo for PgTx<'_> {
    fn insert_inbox_event(&mut self, event: &InboxEvent) -> Result<bool, StoreError> {
        let row = NewInboxEventRow::from(event);
        let inserted =
            self.write(|c| diesel::insert_into(inbox_events::table).values(&row).on_conflict(inbox_events::id).do_nothing().execute(c))?;
        Ok(inserted == 1)
    }

    fn claim_inbox_events(&mut self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: i64) -> Result<Vec<InboxEvent>, StoreError> {
        // Lock the due rows no other worker holds (SKIP LOCKED passes over rows a concurrent
        // claim has locked but not yet committed), then lease them: the lease outlives this
        // transaction, the row lock keeps concurrent claims apart until it commits.
        let ids: Vec<String> = self.read(|c| {
            inbox_events::table
                .filter(inbox_events::status.eq(InboxStatus::Pending.as_str()))
                .filter(inbox_events::next_attempt_at.le(now))
                .filter(inbox_events::locked_until.is_null().or(inbox_events::locked_until.le(now)))
                .order((inbox_events::received_at.asc(), inbox_events::id.asc()))
                .limit(limit.max(0))
                .select(inbox_events::id)
                .for_update()
                .skip_locked()
                .load(c)
        })?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.write(|c| {
            diesel::update(inbox_events::table.filter(inbox_events::id.eq_any(&ids)))
                .set((inbox_events::locked_until.eq(lease_until), inbox_events::attempts.eq(inbox_events::attempts + 1)))
                .returning(InboxEventRow::as_returning())
                .get_results(c)
        })?;
        let mut events = decode(rows, InboxEventRow::into_domain)?;
        // RETURNING promises no order.
        events.sort_by(|a, b| (a.received_at, &a.id).cmp(&(b.received_at, &b.id)));
        Ok(events)
    }

    fn renew_inbox_leases(&mut self, ids: &[StripeEventId], lease_until: OffsetDateTime) -> Result<usize, StoreError> {
        let ids: Vec<&str> = ids.iter().map(StripeEventId::as_str).collect();
        self.write(|c| {
            diesel::update(
                inbox_events::table
                    .filter(inbox_events::id.eq_any(&ids))
                    .filter(inbox_events::status.eq(InboxStatus::Pending.as_str()))
                    .filter(inbox_events::locked_until.is_not_null()),
            )
            .set(inbox_events::locked_until.eq(lease_until))
            .execute(c)
        })
    }

    fn release_inbox_events(&mut self, ids: &[StripeEventId]) -> Result<usize, StoreError> {
        let ids: Vec<&str> = ids.iter().map(StripeEventId::as_str).collect();
        self.write(|c| {
            diesel::update(
                inbox_events::table
                    .filter(inbox_events::id.eq_any(&ids))
                    .filter(inbox_events::status.eq(InboxStatus::Pending.as_str()))
                    .filter(inbox_events::locked_until.is_not_null()),
            )
            .set(inbox_events::locked_until.eq(None::<OffsetDateTime>))
            .execute(c)
        })
    }

    fn wake_waiting_inbox_events(
        &mut self,
        account: Option<&StripeAccountId>,
        payments: &[StripePaymentRef],
        org: OrgId,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let payments: Vec<&str> = payments.iter().map(StripePaymentRef::as_str).collect();
        self.write(|c| {
            let waiting = inbox_events::table
                .filter(inbox_events::status.eq(InboxStatus::Waiting.as_str()))
                .filter(inbox_events::waiting_for.eq_any(&payments))
                .into_boxed::<Pg>();
            let waiting = match account {
                Some(account) => waiting.filter(inbox_events::account.eq(account.as_str())),
                None => waiting.filter(inbox_events::account.is_null()),
            };
            diesel::update(inbox_events::table.filter(inbox_events::id.eq_any(waiting.select(inbox_events::id))))
                .set((
                    inbox_events::status.eq(InboxStatus::Pending.as_str()),
                    inbox_events::waiting_for.eq(None::<String>),
                    inbox_events::next_attempt_at.eq(now),
                    inbox_events::org_id.eq(diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Uuid>>("coalesce(org_id, ")
                        .bind::<diesel::sql_types::Uuid, _>(org.as_uuid())
                        .sql(")")),
                ))
                .execute(c)
        })
    }

    fn inbox_depth(&mut self, now: OffsetDateTime) -> Result<(u64, Option<OffsetDateTime>), StoreError> {
        let pending = inbox_events::table.filter(inbox_events::status.eq(InboxStatus::Pending.as_str()));
        let count: i64 = self.read(|c| pending.count().get_result(c))?;
        let oldest: Option<OffsetDateTime> = self.read(|c| {
            pending.filter(inbox_events::next_attempt_at.le(now)).select(diesel::dsl::min(inbox_events::next_attempt_at)).get_result(c)
        })?;
        Ok((u64::try_from(count).unwrap_or(0), oldest))
    }

    fn wake_due_inbox_events(&mut self, now: OffsetDateTime, limit: i64) -> Result<usize, StoreError> {
        let due: Vec<String> = self.read(|c| {
            inbox_events::table
                .filter(inbox_events::status.eq(InboxStatus::Waiting.as_str()))
                .filter(inbox_events::next_attempt_at.le(now))
                .order((inbox_events::next_attempt_at.asc(), inbox_events::id.asc()))
                .limit(limit.max(0))
                .select(inbox_events::id)
                .for_update()
                .skip_locked()
                .load(c)
        })?;
        if due.is_empty() {
            return Ok(0);
        }
        self.write(|c| {
            diesel::update(inbox_events::table.filter(inbox_events::id.eq_any(&due)))
                .set((inbox_events::status.eq(InboxStatus::Pending.as_str()), inbox_events::waiting_for.eq(None::<String>)))
                .execute(c)
        })
    }

    fn update_inbox_event(&mut self, event: &InboxEvent) -> Result<(), StoreError> {
        let change = InboxStateChange::from(event);
        self.write(|c| diesel::update(inbox_events::table.find(event.id.as_str())).set(&change).execute(c))?;
        Ok(())
    }

    fn inbox_event(&mut self, id: &StripeEventId) -> Result<Option<InboxEvent>, StoreError> {
        let row = self.read(|c| inbox_events::table.find(id.as_str()).select(InboxEventRow::as_select()).first(c).optional())?;
        row.map(InboxEventRow::into_domain).transpose()
    }

    fn list_inbox_events(
        &mut self,
        org: Option<OrgId>,
        status: Option<InboxStatus>,
        before: Option<OffsetDateTime>,
        limit: i64,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let rows = self.read(|c| {
            let mut query = inbox_events::table.select(InboxEventRow::as_select()).into_boxed::<Pg>();
            if let Some(org) = org {
                query = query.filter(inbox_events::org_id.eq(org.as_uuid()));
            }
            if let Some(status) = status {
                query = query.filter(inbox_events::status.eq(status.as_str()));
            }
            if let Some(before) = before {
                query = query.filter(inbox_events::received_at.lt(before));
            }
            query.order((inbox_events::received_at.desc(), inbox_events::id.desc())).limit(limit.max(0)).load(c)
        })?;
        decode(rows, InboxEventRow::into_domain)
    }
}
