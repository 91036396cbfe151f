//! Outbound webhooks in PostgreSQL: the rows of `webhook_endpoints`, `outbox_events` and
//! `webhook_deliveries`, and [`OutboundRepo`] for [`PgTx`]. An outbound adapter of the
//! hexagon, the `outbound` capability's side of the storage port.

use diesel::pg::Pg;
use diesel::prelude::*;
use rekomi_domain::kernel::ids::{DeliveryId, OrgId, WebhookEndpointId};
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::outbound::{Delivery, DeliveryStatus, EndpointStatus, EventType, OutboundRepo, OutboxEvent, WebhookEndpoint};
use rekomi_domain::ports::store::StoreError;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::columns::{api_enum, to_u16, to_u32};
use crate::schema::{outbox_events, webhook_deliveries, webhook_endpoints};
use crate::tx::{decode, get_by_org_and_id, keyset, PgTx, INSERT_CHUNK};

// ---------------------------------------------------------------------------------------------
// webhook_endpoints
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhook_endpoints, check_for_backend(diesel::pg::Pg))]
struct WebhookEndpointRow {
    id: Uuid,
    org_id: Uuid,
    url: String,
    description: Option<String>,
    events: Vec<String>,
    secret: String,
    status: String,
    disabled_reason: Option<String>,
    consecutive_failures: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl WebhookEndpointRow {
    fn into_domain(self) -> Result<WebhookEndpoint, StoreError> {
        const T: &str = "webhook_endpoints";
        Ok(WebhookEndpoint {
            id: self.id.into(),
            org_id: self.org_id.into(),
            url: self.url,
            description: self.description,
            events: self.events,
            secret: self.secret,
            status: api_enum(T, "status", &self.status, EndpointStatus::parse)?,
            disabled_reason: self.disabled_reason,
            consecutive_failures: to_u32(T, "consecutive_failures", self.consecutive_failures)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// INSERT and full-row UPDATE.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = webhook_endpoints, treat_none_as_null = true)]
struct NewWebhookEndpointRow<'a> {
    id: Uuid,
    org_id: Uuid,
    url: &'a str,
    description: Option<&'a str>,
    events: &'a [String],
    secret: &'a str,
    status: &'static str,
    disabled_reason: Option<&'a str>,
    consecutive_failures: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl<'a> From<&'a WebhookEndpoint> for NewWebhookEndpointRow<'a> {
    fn from(e: &'a WebhookEndpoint) -> Self {
        Self {
            id: e.id.as_uuid(),
            org_id: e.org_id.as_uuid(),
            url: &e.url,
            description: e.description.as_deref(),
            events: &e.events,
            secret: &e.secret,
            status: e.status.as_str(),
            disabled_reason: e.disabled_reason.as_deref(),
            consecutive_failures: i64::from(e.consecutive_failures),
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// outbox_events
// ---------------------------------------------------------------------------------------------

#[derive(Insertable)]
#[diesel(table_name = outbox_events, treat_none_as_default_value = false)]
struct NewOutboxEventRow<'a> {
    id: Uuid,
    org_id: Uuid,
    event_type: &'a str,
    data: &'a Value,
    created_at: OffsetDateTime,
}

impl<'a> From<&'a OutboxEvent> for NewOutboxEventRow<'a> {
    fn from(e: &'a OutboxEvent) -> Self {
        Self { id: e.id.as_uuid(), org_id: e.org_id.as_uuid(), event_type: e.event_type.as_str(), data: &e.data, created_at: e.created_at }
    }
}

// ---------------------------------------------------------------------------------------------
// webhook_deliveries
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries, check_for_backend(diesel::pg::Pg))]
struct DeliveryRow {
    id: Uuid,
    org_id: Uuid,
    endpoint_id: Uuid,
    event_id: Uuid,
    event_type: String,
    body: String,
    status: String,
    attempts: i64,
    next_attempt_at: OffsetDateTime,
    locked_until: Option<OffsetDateTime>,
    last_status: Option<i32>,
    last_error: Option<String>,
    created_at: OffsetDateTime,
    delivered_at: Option<OffsetDateTime>,
}

impl DeliveryRow {
    fn into_domain(self) -> Result<Delivery, StoreError> {
        const T: &str = "webhook_deliveries";
        Ok(Delivery {
            id: self.id.into(),
            org_id: self.org_id.into(),
            endpoint_id: self.endpoint_id.into(),
            event_id: self.event_id.into(),
            event_type: api_enum(T, "event_type", &self.event_type, EventType::parse)?,
            body: self.body,
            status: api_enum(T, "status", &self.status, DeliveryStatus::parse)?,
            attempts: to_u32(T, "attempts", self.attempts)?,
            next_attempt_at: self.next_attempt_at,
            locked_until: self.locked_until,
            last_status: self.last_status.map(|s| to_u16(T, "last_status", s)).transpose()?,
            last_error: self.last_error,
            created_at: self.created_at,
            delivered_at: self.delivered_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = webhook_deliveries)]
struct NewDeliveryRow<'a> {
    id: Uuid,
    org_id: Uuid,
    endpoint_id: Uuid,
    event_id: Uuid,
    event_type: &'a str,
    body: &'a str,
    status: &'static str,
    attempts: i64,
    next_attempt_at: OffsetDateTime,
    locked_until: Option<OffsetDateTime>,
    last_status: Option<i32>,
    last_error: Option<&'a str>,
    created_at: OffsetDateTime,
    delivered_at: Option<OffsetDateTime>,
}

impl<'a> From<&'a Delivery> for NewDeliveryRow<'a> {
    fn from(d: &'a Delivery) -> Self {
        Self {
            id: d.id.as_uuid(),
            org_id: d.org_id.as_uuid(),
            endpoint_id: d.endpoint_id.as_uuid(),
            event_id: d.event_id.as_uuid(),
            event_type: d.event_type.as_str(),
            body: &d.body,
            status: d.status.as_str(),
            attempts: i64::from(d.attempts),
            next_attempt_at: d.next_attempt_at,
            locked_until: d.locked_until,
            last_status: d.last_status.map(i32::from),
            last_error: d.last_error.as_deref(),
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// The retry state `update_delivery` replaces; what is delivered (endpoint, event, body) and
/// when it was created never change.
#[derive(AsChangeset)]
#[diesel(table_name = webhook_deliveries, treat_none_as_null = true)]
struct DeliveryStateChange<'a> {
    status: &'static str,
    attempts: i64,
    next_attempt_at: OffsetDateTime,
    locked_until: Option<OffsetDateTime>,
    last_status: Option<i32>,
    last_error: Option<&'a str>,
    delivered_at: Option<OffsetDateTime>,
}

impl<'a> From<&'a Delivery> for DeliveryStateChange<'a> {
    fn from(d: &'a Delivery) -> Self {
        Self {
            status: d.status.as_str(),
            attempts: i64::from(d.attempts),
            next_attempt_at: d.next_attempt_at,
            locked_until: d.locked_until,
            last_status: d.last_status.map(i32::from),
            last_error: d.last_error.as_deref(),
            delivered_at: d.delivered_at,
        }
    }
}

impl OutboundRepo for PgTx<'_> {
    fn insert_endpoint(&mut self, endpoint: &WebhookEndpoint) -> Result<(), StoreError> {
        let row = NewWebhookEndpointRow::from(endpoint);
        self.write(|c| diesel::insert_into(webhook_endpoints::table).values(&row).execute(c))?;
        Ok(())
    }

    fn update_endpoint(&mut self, endpoint: &WebhookEndpoint) -> Result<(), StoreError> {
        let row = NewWebhookEndpointRow::from(endpoint);
        let (id, org) = (endpoint.id.as_uuid(), endpoint.org_id.as_uuid());
        self.write(|c| {
            diesel::update(webhook_endpoints::table.filter(webhook_endpoints::id.eq(id)).filter(webhook_endpoints::org_id.eq(org)))
                .set(&row)
                .execute(c)
        })?;
        Ok(())
    }

    fn delete_endpoint(&mut self, org: OrgId, id: WebhookEndpointId) -> Result<bool, StoreError> {
        // Its deliveries go with it (ON DELETE CASCADE).
        let deleted = self.write(|c| {
            diesel::delete(
                webhook_endpoints::table.filter(webhook_endpoints::id.eq(id.as_uuid())).filter(webhook_endpoints::org_id.eq(org.as_uuid())),
            )
            .execute(c)
        })?;
        Ok(deleted > 0)
    }

    // FOR NO KEY UPDATE: the outbox inserts deliveries that reference the endpoint (taking
    // FOR KEY SHARE); they need not wait for a worker recording an outcome.
    get_by_org_and_id!(
        endpoint,
        endpoint_for_update,
        for_no_key_update,
        webhook_endpoints,
        WebhookEndpointId,
        WebhookEndpointRow,
        WebhookEndpoint
    );

    fn endpoints(&mut self, org: OrgId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let rows = self.read(|c| {
            webhook_endpoints::table
                .filter(webhook_endpoints::org_id.eq(org.as_uuid()))
                .order(webhook_endpoints::id.desc())
                .select(WebhookEndpointRow::as_select())
                .load(c)
        })?;
        decode(rows, WebhookEndpointRow::into_domain)
    }

    fn insert_outbox_events(&mut self, events: &[OutboxEvent]) -> Result<(), StoreError> {
        // One row (the common case) is a cached prepared statement, as for audit entries.
        if let [one] = events {
            let row = NewOutboxEventRow::from(one);
            self.write(|c| diesel::insert_into(outbox_events::table).values(&row).execute(c))?;
            return Ok(());
        }
        for chunk in events.chunks(INSERT_CHUNK) {
            let rows: Vec<NewOutboxEventRow<'_>> = chunk.iter().map(NewOutboxEventRow::from).collect();
            self.write(|c| diesel::insert_into(outbox_events::table).values(&rows).execute(c))?;
        }
        Ok(())
    }

    fn insert_deliveries(&mut self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        for chunk in deliveries.chunks(INSERT_CHUNK) {
            let rows: Vec<NewDeliveryRow<'_>> = chunk.iter().map(NewDeliveryRow::from).collect();
            self.write(|c| diesel::insert_into(webhook_deliveries::table).values(&rows).execute(c))?;
        }
        Ok(())
    }

    fn update_delivery(&mut self, delivery: &Delivery) -> Result<(), StoreError> {
        let change = DeliveryStateChange::from(delivery);
        let (id, org) = (delivery.id.as_uuid(), delivery.org_id.as_uuid());
        self.write(|c| {
            diesel::update(webhook_deliveries::table.filter(webhook_deliveries::id.eq(id)).filter(webhook_deliveries::org_id.eq(org)))
                .set(&change)
                .execute(c)
        })?;
        Ok(())
    }

    get_by_org_and_id!(delivery, delivery_for_update, for_update, webhook_deliveries, DeliveryId, DeliveryRow, Delivery);

    fn deliveries_of(&mut self, org: OrgId, endpoint: WebhookEndpointId, page: &PageRequest) -> Result<Vec<Delivery>, StoreError> {
        let rows = self.read(|c| {
            let base = webhook_deliveries::table
                .filter(webhook_deliveries::org_id.eq(org.as_uuid()))
                .filter(webhook_deliveries::endpoint_id.eq(endpoint.as_uuid()))
                .select(DeliveryRow::as_select())
                .into_boxed::<Pg>();
            keyset!(base, webhook_deliveries, page).load(c)
        })?;
        decode(rows, DeliveryRow::into_domain)
    }

    fn claim_deliveries(&mut self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: i64) -> Result<Vec<Delivery>, StoreError> {
        // As claim_inbox_events. The endpoint is a subquery rather than a join so that only
        // the deliveries are locked (the foreign key keeps endpoint and delivery in one
        // organization, so the endpoint id alone is enough).
        let enabled =
            webhook_endpoints::table.filter(webhook_endpoints::status.eq(EndpointStatus::Enabled.as_str())).select(webhook_endpoints::id);
        let ids: Vec<Uuid> = self.read(|c| {
            webhook_deliveries::table
                .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending.as_str()))
                .filter(webhook_deliveries::next_attempt_at.le(now))
                .filter(webhook_deliveries::locked_until.is_null().or(webhook_deliveries::locked_until.le(now)))
                .filter(webhook_deliveries::endpoint_id.eq_any(enabled))
                .order((webhook_deliveries::created_at.asc(), webhook_deliveries::id.asc()))
                .limit(limit.max(0))
                .select(webhook_deliveries::id)
                .for_update()
                .skip_locked()
                .load(c)
        })?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.write(|c| {
            diesel::update(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(&ids)))
                .set((webhook_deliveries::locked_until.eq(lease_until), webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1)))
                .returning(DeliveryRow::as_returning())
                .get_results(c)
        })?;
        let mut deliveries = decode(rows, DeliveryRow::into_domain)?;
        deliveries.sort_by_key(|d| (d.created_at, d.id));
        Ok(deliveries)
    }

    fn renew_delivery_leases(&mut self, ids: &[DeliveryId], lease_until: OffsetDateTime) -> Result<usize, StoreError> {
        let ids: Vec<Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        self.write(|c| {
            diesel::update(
                webhook_deliveries::table
                    .filter(webhook_deliveries::id.eq_any(&ids))
                    .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending.as_str()))
                    .filter(webhook_deliveries::locked_until.is_not_null()),
            )
            .set(webhook_deliveries::locked_until.eq(lease_until))
            .execute(c)
        })
    }

    fn delivery_depth(&mut self, now: OffsetDateTime) -> Result<(u64, Option<OffsetDateTime>), StoreError> {
        let enabled =
            webhook_endpoints::table.filter(webhook_endpoints::status.eq(EndpointStatus::Enabled.as_str())).select(webhook_endpoints::id);
        let pending = webhook_deliveries::table
            .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending.as_str()))
            .filter(webhook_deliveries::endpoint_id.eq_any(enabled));
        let count: i64 = self.read(|c| pending.count().get_result(c))?;
        let oldest: Option<OffsetDateTime> = self.read(|c| {
            pending
                .filter(webhook_deliveries::next_attempt_at.le(now))
                .select(diesel::dsl::min(webhook_deliveries::next_attempt_at))
                .get_result(c)
        })?;
        Ok((u64::try_from(count).unwrap_or(0), oldest))
    }

    fn endpoint_any_org(&mut self, id: WebhookEndpointId) -> Result<Option<WebhookEndpoint>, StoreError> {
        let row = self.read(|c| webhook_endpoints::table.find(id.as_uuid()).select(WebhookEndpointRow::as_select()).first(c).optional())?;
        row.map(WebhookEndpointRow::into_domain).transpose()
    }
}
