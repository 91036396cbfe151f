//! The storage port's slice for outbound webhooks: endpoints, the outbox, deliveries: the repository its use cases need. Every store
//! implements it; [`crate::ports::Tx`] composes all the slices into one transaction.

use time::OffsetDateTime;

use crate::kernel::ids::{DeliveryId, OrgId, WebhookEndpointId};
use crate::kernel::page::PageRequest;
use crate::outbound::{Delivery, OutboxEvent, WebhookEndpoint};
use crate::ports::store::StoreError;

/// Outbound webhooks: endpoints, the outbox, deliveries.
pub trait OutboundRepo {
    /// Inserts an endpoint.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_endpoint(&mut self, endpoint: &WebhookEndpoint) -> Result<(), StoreError>;
    /// Replaces an endpoint's fields.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn update_endpoint(&mut self, endpoint: &WebhookEndpoint) -> Result<(), StoreError>;
    /// Deletes an endpoint and its deliveries.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn delete_endpoint(&mut self, org: OrgId, id: WebhookEndpointId) -> Result<bool, StoreError>;
    /// An endpoint of the organization.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn endpoint(&mut self, org: OrgId, id: WebhookEndpointId) -> Result<Option<WebhookEndpoint>, StoreError>;
    /// [`OutboundRepo::endpoint`] holding the row locked until the transaction ends, so the
    /// worker's failure counting, a rotation and a PATCH never overwrite each other.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn endpoint_for_update(&mut self, org: OrgId, id: WebhookEndpointId) -> Result<Option<WebhookEndpoint>, StoreError> {
        self.endpoint(org, id)
    }
    /// The organization's endpoints, newest first.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn endpoints(&mut self, org: OrgId) -> Result<Vec<WebhookEndpoint>, StoreError>;
    /// Inserts outbox events (one statement for many, where the store can).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_outbox_events(&mut self, events: &[OutboxEvent]) -> Result<(), StoreError>;
    /// Inserts an outbox event.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_outbox_event(&mut self, event: &OutboxEvent) -> Result<(), StoreError> {
        self.insert_outbox_events(std::slice::from_ref(event))
    }
    /// Inserts deliveries (one statement for many, where the store can); their outbox events
    /// must exist.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_deliveries(&mut self, deliveries: &[Delivery]) -> Result<(), StoreError>;
    /// Inserts a delivery.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_delivery(&mut self, delivery: &Delivery) -> Result<(), StoreError> {
        self.insert_deliveries(std::slice::from_ref(delivery))
    }
    /// Replaces a delivery's state.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn update_delivery(&mut self, delivery: &Delivery) -> Result<(), StoreError>;
    /// A delivery of the organization.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn delivery(&mut self, org: OrgId, id: DeliveryId) -> Result<Option<Delivery>, StoreError>;
    /// [`OutboundRepo::delivery`] holding the row locked until the transaction ends.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn delivery_for_update(&mut self, org: OrgId, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        self.delivery(org, id)
    }
    /// An endpoint's deliveries, newest first, at most `page.fetch_limit()` rows.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn deliveries_of(&mut self, org: OrgId, endpoint: WebhookEndpointId, page: &PageRequest) -> Result<Vec<Delivery>, StoreError>;
    /// Takes up to `limit` pending deliveries due at `now` (of enabled endpoints) not held by
    /// another worker, holding them until `lease_until` (`FOR UPDATE SKIP LOCKED`).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn claim_deliveries(&mut self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: i64) -> Result<Vec<Delivery>, StoreError>;
    /// Extends the lease of the given deliveries still `Pending` and held to `lease_until`.
    /// Returns how many were renewed.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn renew_delivery_leases(&mut self, ids: &[DeliveryId], lease_until: OffsetDateTime) -> Result<usize, StoreError>;
    /// How many deliveries of enabled endpoints are `Pending`, and the oldest `next_attempt_at`
    /// among those due at `now`.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn delivery_depth(&mut self, now: OffsetDateTime) -> Result<(u64, Option<OffsetDateTime>), StoreError>;
    /// An endpoint by id in any organization (the delivery worker's lookup).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn endpoint_any_org(&mut self, id: WebhookEndpointId) -> Result<Option<WebhookEndpoint>, StoreError>;
}
