//! The fake store's slice for outbound webhooks: the domain's `OutboundRepo` over the
//! `endpoints`, `outbox` and `deliveries` tables of `State`, delivery leases included.

use rekomi_domain::kernel::ids::{DeliveryId, OrgId, WebhookEndpointId};
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::outbound::{Delivery, DeliveryStatus, EndpointStatus, OutboundRepo, OutboxEvent, WebhookEndpoint};
use rekomi_domain::ports::store::StoreError;
use time::OffsetDateTime;

use super::{conflict, limit_of, page_of, references, unlocked, State};

/// Foreign-key names of these tables in the migrations.
mod foreign_keys {
    pub const ENDPOINT_ORG: &str = "webhook_endpoints_org_id_fkey";
    pub const OUTBOX_ORG: &str = "outbox_events_org_id_fkey";
    pub const DELIVERY_ORG: &str = "webhook_deliveries_org_id_fkey";
    pub const DELIVERY_ENDPOINT: &str = "webhook_deliveries_endpoint_fkey";
    pub const DELIVERY_EVENT: &str = "webhook_deliveries_event_fkey";
}

impl State {
    fn has_endpoint(&self, org: OrgId, id: WebhookEndpointId) -> bool {
        self.endpoints.get(&id).is_some_and(|e| e.org_id == org)
    }

    fn insert_one_delivery(&mut self, delivery: &Delivery) -> Result<(), StoreError> {
        if self.deliveries.contains_key(&delivery.id) {
            return Err(conflict("webhook_deliveries_pkey"));
        }
        let org = delivery.org_id;
        references(&[
            (self.has_org(org), foreign_keys::DELIVERY_ORG),
            (self.has_endpoint(org, delivery.endpoint_id), foreign_keys::DELIVERY_ENDPOINT),
            (self.outbox.get(&delivery.event_id).is_some_and(|e| e.org_id == org), foreign_keys::DELIVERY_EVENT),
        ])?;
        self.deliveries.insert(delivery.id, delivery.clone());
        Ok(())
    }
}

impl OutboundRepo for State {
    fn insert_endpoint(&mut self, endpoint: &WebhookEndpoint) -> Result<(), StoreError> {
        if self.endpoints.contains_key(&endpoint.id) {
            return Err(conflict("webhook_endpoints_pkey"));
        }
        references(&[(self.has_org(endpoint.org_id), foreign_keys::ENDPOINT_ORG)])?;
        self.endpoints.insert(endpoint.id, endpoint.clone());
        Ok(())
    }

    fn update_endpoint(&mut self, endpoint: &WebhookEndpoint) -> Result<(), StoreError> {
        if self.has_endpoint(endpoint.org_id, endpoint.id) {
            self.endpoints.insert(endpoint.id, endpoint.clone());
        }
        Ok(())
    }

    fn delete_endpoint(&mut self, org: OrgId, id: WebhookEndpointId) -> Result<bool, StoreError> {
        if !self.has_endpoint(org, id) {
            return Ok(false);
        }
        self.endpoints.remove(&id);
        self.deliveries.retain(|_, d| d.endpoint_id != id);
        Ok(true)
    }

    fn endpoint(&mut self, org: OrgId, id: WebhookEndpointId) -> Result<Option<WebhookEndpoint>, StoreError> {
        Ok(self.endpoints.get(&id).filter(|e| e.org_id == org).cloned())
    }

    fn endpoints(&mut self, org: OrgId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        Ok(self.endpoints.values().rev().filter(|e| e.org_id == org).cloned().collect())
    }

    fn insert_outbox_events(&mut self, events: &[OutboxEvent]) -> Result<(), StoreError> {
        // All or nothing, as one multi-row statement.
        let before = self.outbox.clone();
        for event in events {
            let checked = if self.outbox.contains_key(&event.id) {
                Err(conflict("outbox_events_pkey"))
            } else {
                references(&[(self.has_org(event.org_id), foreign_keys::OUTBOX_ORG)])
            };
            if let Err(e) = checked {
                self.outbox = before;
                return Err(e);
            }
            self.outbox.insert(event.id, event.clone());
        }
        Ok(())
    }

    fn insert_deliveries(&mut self, deliveries: &[Delivery]) -> Result<(), StoreError> {
        let before = self.deliveries.clone();
        for delivery in deliveries {
            if let Err(e) = self.insert_one_delivery(delivery) {
                self.deliveries = before;
                return Err(e);
            }
        }
        Ok(())
    }

    fn update_delivery(&mut self, delivery: &Delivery) -> Result<(), StoreError> {
        if let Some(stored) = self.deliveries.get_mut(&delivery.id).filter(|d| d.org_id == delivery.org_id) {
            // The retry state only: what is delivered never changes.
            stored.status = delivery.status;
            stored.attempts = delivery.attempts;
            stored.next_attempt_at = delivery.next_attempt_at;
            stored.locked_until = delivery.locked_until;
            stored.last_status = delivery.last_status;
            stored.last_error = delivery.last_error.clone();
            stored.delivered_at = delivery.delivered_at;
        }
        Ok(())
    }

    fn delivery(&mut self, org: OrgId, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        Ok(self.deliveries.get(&id).filter(|d| d.org_id == org).cloned())
    }

    fn deliveries_of(&mut self, org: OrgId, endpoint: WebhookEndpointId, page: &PageRequest) -> Result<Vec<Delivery>, StoreError> {
        Ok(page_of(&self.deliveries, page, DeliveryId::as_uuid, |d| (d.org_id == org && d.endpoint_id == endpoint).then(|| d.clone())))
    }

    fn claim_deliveries(&mut self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: i64) -> Result<Vec<Delivery>, StoreError> {
        let endpoints = &self.endpoints;
        let mut due: Vec<(OffsetDateTime, DeliveryId)> = self
            .deliveries
            .values()
            .filter(|d| {
                d.status == DeliveryStatus::Pending
                    && d.next_attempt_at <= now
                    && unlocked(d.locked_until, now)
                    && endpoints.get(&d.endpoint_id).is_some_and(|e| e.status == EndpointStatus::Enabled)
            })
            .map(|d| (d.created_at, d.id))
            .collect();
        due.sort();
        due.truncate(limit_of(limit));
        Ok(due
            .into_iter()
            .filter_map(|(_, id)| {
                let delivery = self.deliveries.get_mut(&id)?;
                delivery.locked_until = Some(lease_until);
                delivery.attempts = delivery.attempts.saturating_add(1);
                Some(delivery.clone())
            })
            .collect())
    }

    fn renew_delivery_leases(&mut self, ids: &[DeliveryId], lease_until: OffsetDateTime) -> Result<usize, StoreError> {
        let mut renewed = 0;
        for id in ids {
            if let Some(d) = self.deliveries.get_mut(id).filter(|d| d.status == DeliveryStatus::Pending && d.locked_until.is_some()) {
                d.locked_until = Some(lease_until);
                renewed += 1;
            }
        }
        Ok(renewed)
    }

    fn delivery_depth(&mut self, now: OffsetDateTime) -> Result<(u64, Option<OffsetDateTime>), StoreError> {
        let endpoints = &self.endpoints;
        let pending: Vec<&Delivery> = self
            .deliveries
            .values()
            .filter(|d| {
                d.status == DeliveryStatus::Pending && endpoints.get(&d.endpoint_id).is_some_and(|e| e.status == EndpointStatus::Enabled)
            })
            .collect();
        let oldest = pending.iter().map(|d| d.next_attempt_at).filter(|at| *at <= now).min();
        Ok((pending.len() as u64, oldest))
    }

    fn endpoint_any_org(&mut self, id: WebhookEndpointId) -> Result<Option<WebhookEndpoint>, StoreError> {
        Ok(self.endpoints.get(&id).cloned())
    }
}
