//! Outbound webhook use cases: brands register endpoints (each with its own signing secret and
//! event filter), read their delivery log and redeliver; the delivery worker sends what the
//! transactional outbox ([`crate::outbound::outbox`]) queued.
//!
//! The worker never holds a transaction across a send: it claims due deliveries under a lease
//! (`FOR UPDATE SKIP LOCKED`, so several server processes share the work; the claim counts the
//! attempt, so one that crashes the worker counts too), commits, sends each one through the
//! [`WebhookSender`](crate::ports::WebhookSender) port, and records each outcome in a
//! transaction of its own, only while the delivery still carries this pass's lease.
//!
//! Attempt `n` that fails is retried on [`DELIVERY_RETRY`] (after its `n`-th delay plus up to
//! 20 % jitter); when
//! the schedule (12 retries over about three days) is exhausted the delivery is Failed and the
//! endpoint's count of dead deliveries grows; at `DISABLE_AFTER_FAILURES` in a row the endpoint
//! is disabled. A success resets the count. A delivery is signed at send time with the endpoint's
//! current secret, so a rotation takes effect on the next attempt; the body itself is fixed at
//! enqueue time and every attempt sends the same bytes.
//!
//! Every transaction that changes an endpoint (the worker's failure counting, a PATCH, a
//! rotation, a deletion) reads it with [`OutboundRepo::endpoint_for_update`] and writes back
//! only its own change applied to that locked, current row, so none of them undoes another's
//! (a rotation is never reverted to the old secret, a PATCH never re-enables an endpoint the
//! worker just disabled, two workers never lose a failure). Locks are taken endpoint first,
//! then delivery: the order of a deletion (the endpoint, then its deliveries by cascade).
//!
//! [`OutboundRepo::endpoint_for_update`]: crate::ports::OutboundRepo::endpoint_for_update

use async_trait::async_trait;
use serde_json::{json, Value};
use time::Duration;

use crate::actor::{AuditActor, Role};
use crate::error::{DomainError, FieldError};
use crate::ids::{DeliveryId, WebhookEndpointId};
use crate::jobs::{BatchReport, JobQueue, Lease, LeaseTerms, QueueDepth};
use crate::outbound::{
    redacted_url, ulid_of, Delivery, DeliveryStatus, EndpointStatus, WebhookEndpoint, DELIVERY_RETRY, DISABLE_AFTER_FAILURES,
};
use crate::page::{Page, PageRequest};
use crate::plan::PlanTier;
use crate::ports::{OutboundRequest, SendOutcome};
use crate::signature;

use crate::services::{BrandContext, Services};

/// Every event type Rekomi emits, as endpoint filters name them.
pub const WEBHOOK_EVENT_TYPES: &[&str] = &[
    "conversion.created",
    "conversion.refunded",
    "lead.created",
    "affiliate_coupon.created",
    "affiliate_coupon.updated",
    "affiliate_coupon.deactivated",
    "affiliate_coupon.deleted",
    "affiliate.created",
    "affiliate.approved",
];

/// The longest accepted endpoint URL.
pub const MAX_WEBHOOK_URL_LEN: usize = 2048;
/// The most filters one endpoint may carry.
pub const MAX_EVENT_FILTERS: usize = 50;
/// The longest endpoint description.
pub const MAX_DESCRIPTION_LEN: usize = 500;
/// How long one attempt may take at most, the transport's own timeout included: a claimed
/// delivery is held for this long per delivery of its batch, so a slow batch is never taken
/// over by another worker half-way.
pub const SEND_BUDGET_SECS: i64 = 30;

const SECRET_PREFIX: &str = "whsec_";
const SECRET_LEN: usize = 32;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Changes to an endpoint; `None` keeps a field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookEndpointPatch {
    /// A new URL (checked like a new endpoint's).
    pub url: Option<String>,
    /// A new description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New filters (an empty list subscribes to every event).
    pub events: Option<Vec<String>>,
    /// Enables or disables the endpoint; enabling resets its failure count.
    pub enabled: Option<bool>,
}

/// What one pass of the delivery worker did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Deliveries claimed (a full batch means more may be due).
    pub claimed: usize,
    /// Answered 2xx.
    pub delivered: usize,
    /// Failed and scheduled for another attempt.
    pub retrying: usize,
    /// Failed for good (the retry schedule is exhausted).
    pub failed: usize,
    /// Not sent or not recorded: the endpoint went away or was disabled, or a redelivery reset
    /// the delivery while it was being sent.
    pub skipped: usize,
    /// Endpoints disabled after persistent failure.
    pub endpoints_disabled: usize,
    /// Whose outcome could not be recorded (retried once the lease runs out).
    pub errors: usize,
}

/// How long a claim holds a delivery: one send's budget. The runner renews it every
/// [`DELIVERY_LEASE_RENEWAL`] while the batch is sent, so a slow receiver never lets another
/// worker take a delivery in flight, and a dead worker's deliveries are free within 30 s.
pub const DELIVERY_LEASE: Duration = Duration::seconds(SEND_BUDGET_SECS);
/// How often the runner renews the lease of deliveries still held.
pub const DELIVERY_LEASE_RENEWAL: Duration = Duration::seconds(10);
/// Deliveries one claim takes at most.
pub const DELIVERY_BATCH: usize = 20;

/// The outbound webhook deliveries, as the job runner drives them.
#[derive(Clone)]
pub struct WebhookDeliveries(pub Services);

#[async_trait]
impl JobQueue for WebhookDeliveries {
    type Batch = Vec<(Delivery, Option<WebhookEndpoint>)>;

    fn name(&self) -> &'static str {
        "webhook_deliveries"
    }

    fn lease_terms(&self) -> LeaseTerms {
        LeaseTerms { duration: DELIVERY_LEASE, renew_every: DELIVERY_LEASE_RENEWAL }
    }

    fn batch_size(&self) -> usize {
        DELIVERY_BATCH
    }

    async fn claim(&self) -> Result<Option<(Self::Batch, Lease)>, DomainError> {
        let claimed = self.0.claim_deliveries(DELIVERY_BATCH).await?;
        if claimed.is_empty() {
            return Ok(None);
        }
        let lease = Lease::on(claimed.iter().map(|(d, _)| d.id.to_string()).collect());
        Ok(Some((claimed, lease)))
    }

    async fn process(&self, batch: Self::Batch, lease: &Lease) -> BatchReport {
        let report = self.0.send_deliveries(batch, lease).await;
        if report.endpoints_disabled > 0 {
            tracing::warn!(endpoints = report.endpoints_disabled, "disabled webhook endpoints after persistent failure");
        }
        BatchReport {
            claimed: report.claimed,
            done: report.delivered,
            retried: report.retrying,
            failed: report.failed,
            skipped: report.skipped,
            errors: report.errors,
            ..BatchReport::default()
        }
    }

    async fn renew(&self, lease: &Lease) -> Result<usize, DomainError> {
        let held: Vec<DeliveryId> = lease.held().iter().filter_map(|id| id.parse().ok()).collect();
        if held.is_empty() {
            return Ok(0);
        }
        let until = self.0.now() + DELIVERY_LEASE;
        self.0.tx(move |tx| Ok(tx.renew_delivery_leases(&held, until)?)).await
    }

    async fn depth(&self) -> Result<QueueDepth, DomainError> {
        let now = self.0.now();
        let (pending, oldest) = self.0.tx(move |tx| Ok(tx.delivery_depth(now)?)).await?;
        Ok(QueueDepth { pending, oldest_due_age: oldest.map(|due| now - due) })
    }
}

/// The audit log's view of an endpoint: never the secret, and the URL without its query
/// string, fragment or userinfo (they often carry tokens).
fn endpoint_snapshot(e: &WebhookEndpoint) -> Value {
    json!({
        "id": e.id.to_string(), "url": redacted_url(&e.url), "description": e.description, "events": e.events,
        "status": e.status.as_str(), "disabledReason": e.disabled_reason,
        "consecutiveFailures": e.consecutive_failures,
    })
}

/// Checks the URL's shape (the transport checks where it points).
fn validate_url_shape(raw: &str) -> Result<String, FieldError> {
    let url = raw.trim();
    if url.len() > MAX_WEBHOOK_URL_LEN {
        return Err(FieldError::invalid("url", format!("must be at most {MAX_WEBHOOK_URL_LEN} characters")));
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Err(FieldError::invalid("url", "must be an http or https URL"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldError::invalid("url", "must be an http or https URL with a host"));
    }
    if authority.contains('@') {
        return Err(FieldError::invalid("url", "must not carry credentials"));
    }
    Ok(url.to_owned())
}

/// Checks event filters: known types, `family.*` of a known family, or `*`. Duplicates are
/// dropped, order kept.
fn validate_events(events: Vec<String>) -> Result<Vec<String>, FieldError> {
    if events.len() > MAX_EVENT_FILTERS {
        return Err(FieldError::invalid("events", format!("at most {MAX_EVENT_FILTERS} filters")));
    }
    let mut out: Vec<String> = Vec::with_capacity(events.len());
    for raw in events {
        let filter = raw.trim().to_owned();
        let known = filter == "*"
            || WEBHOOK_EVENT_TYPES.contains(&filter.as_str())
            || filter
                .strip_suffix(".*")
                .is_some_and(|family| WEBHOOK_EVENT_TYPES.iter().any(|t| t.strip_prefix(family).is_some_and(|r| r.starts_with('.'))));
        if !known {
            return Err(FieldError::invalid(
                "events",
                format!(
                    "unknown event type {filter:?}; use one of {}, a family wildcard such as affiliate_coupon.*, or *",
                    WEBHOOK_EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !out.contains(&filter) {
            out.push(filter);
        }
    }
    Ok(out)
}

fn validate_description(raw: Option<String>) -> Result<Option<String>, FieldError> {
    crate::program::validate_text("description", raw, MAX_DESCRIPTION_LEN)
}

impl Services {
    fn new_webhook_secret(&self) -> String {
        let mut secret = String::with_capacity(SECRET_PREFIX.len() + SECRET_LEN);
        secret.push_str(SECRET_PREFIX);
        for _ in 0..SECRET_LEN {
            secret.push(char::from(BASE62[self.entropy.index(BASE62.len())]));
        }
        secret
    }

    /// Validates a URL and asks the transport whether it may receive webhooks (outside any
    /// transaction: it may resolve the host).
    async fn checked_url(&self, raw: &str) -> Result<String, DomainError> {
        let url = validate_url_shape(raw)?;
        self.webhooks.check_target(&url).await.map_err(|reason| FieldError::invalid("url", reason))?;
        Ok(url)
    }

    /// Registers a webhook endpoint (Starter+; Manager role). The returned endpoint carries its
    /// signing secret, which no later answer shows again (except a rotation's).
    ///
    /// # Errors
    /// Gates; `400 validation_failed` on `url` (shape, or a refused target with the reason) or
    /// `events` (an unknown type); storage.
    pub async fn create_webhook_endpoint(
        &self,
        ctx: &BrandContext,
        url: String,
        description: Option<String>,
        events: Vec<String>,
    ) -> Result<WebhookEndpoint, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        ctx.require_role(Role::Manager)?;
        let description = validate_description(description)?;
        let events = validate_events(events)?;
        let url = self.checked_url(&url).await?;
        let now = self.now();
        let org = ctx.org_id();
        let endpoint = WebhookEndpoint {
            id: WebhookEndpointId::from_uuid(self.new_uuid(now)),
            org_id: org,
            url,
            description,
            events,
            secret: self.new_webhook_secret(),
            status: EndpointStatus::Enabled,
            disabled_reason: None,
            consecutive_failures: 0,
            created_at: now,
            updated_at: now,
        };
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            tx.insert_endpoint(&endpoint)?;
            audit.record(
                tx,
                "webhook_endpoint.created",
                "webhook_endpoint",
                endpoint.id.to_string(),
                None,
                Some(endpoint_snapshot(&endpoint)),
            )?;
            Ok(endpoint)
        })
        .await
    }

    /// The organization's endpoints, newest first.
    ///
    /// # Errors
    /// Gates and storage.
    pub async fn list_webhook_endpoints(&self, ctx: &BrandContext, page: PageRequest) -> Result<Page<WebhookEndpoint>, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        let org = ctx.org_id();
        let mut rows = self.tx(move |tx| Ok(tx.endpoints(org)?)).await?;
        // An organization has few endpoints: the store returns them all and the page is cut
        // here, by id like every other list.
        rows.sort_by_key(|e| std::cmp::Reverse(e.id.as_uuid()));
        if let Some(after) = page.after() {
            rows.retain(|e| e.id.as_uuid() < after);
        }
        rows.truncate(usize::try_from(page.fetch_limit()).unwrap_or(usize::MAX));
        Ok(Page::from_rows(rows, &page, |e| e.id.as_uuid()))
    }

    /// One endpoint of the organization.
    ///
    /// # Errors
    /// `webhook_endpoint_not_found`.
    pub async fn get_webhook_endpoint(&self, ctx: &BrandContext, id: WebhookEndpointId) -> Result<WebhookEndpoint, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        let org = ctx.org_id();
        self.tx(move |tx| tx.endpoint(org, id)?.ok_or(DomainError::NotFound("webhook_endpoint_not_found"))).await
    }

    /// Changes an endpoint (Manager role). Re-enabling it resets its failure count.
    ///
    /// # Errors
    /// `webhook_endpoint_not_found`; validation as on creation.
    pub async fn update_webhook_endpoint(
        &self,
        ctx: &BrandContext,
        id: WebhookEndpointId,
        patch: WebhookEndpointPatch,
    ) -> Result<WebhookEndpoint, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        ctx.require_role(Role::Manager)?;
        let description = patch.description.map(validate_description).transpose()?;
        let events = patch.events.map(validate_events).transpose()?;
        let url = match &patch.url {
            Some(u) => Some(self.checked_url(u).await?),
            None => None,
        };
        let enabled = patch.enabled;
        let org = ctx.org_id();
        let now = self.now();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            // The current row, locked: the worker may have disabled the endpoint (or counted a
            // failure) since the patch was validated, and only the patched fields change.
            let mut endpoint = tx.endpoint_for_update(org, id)?.ok_or(DomainError::NotFound("webhook_endpoint_not_found"))?;
            let before = endpoint_snapshot(&endpoint);
            if let Some(url) = url {
                endpoint.url = url;
            }
            if let Some(description) = description {
                endpoint.description = description;
            }
            if let Some(events) = events {
                endpoint.events = events;
            }
            match enabled {
                Some(true) => {
                    endpoint.status = EndpointStatus::Enabled;
                    endpoint.disabled_reason = None;
                    endpoint.consecutive_failures = 0;
                }
                Some(false) if endpoint.status == EndpointStatus::Enabled => {
                    endpoint.status = EndpointStatus::Disabled;
                    endpoint.disabled_reason = Some("disabled through the API".to_owned());
                }
                _ => {}
            }
            endpoint.updated_at = now;
            tx.update_endpoint(&endpoint)?;
            audit.record(
                tx,
                "webhook_endpoint.updated",
                "webhook_endpoint",
                id.to_string(),
                Some(before),
                Some(endpoint_snapshot(&endpoint)),
            )?;
            Ok(endpoint)
        })
        .await
    }

    /// Deletes an endpoint and its delivery log (Manager role).
    ///
    /// # Errors
    /// `webhook_endpoint_not_found`.
    pub async fn delete_webhook_endpoint(&self, ctx: &BrandContext, id: WebhookEndpointId) -> Result<(), DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        ctx.require_role(Role::Manager)?;
        let org = ctx.org_id();
        let now = self.now();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            let endpoint = tx.endpoint_for_update(org, id)?.ok_or(DomainError::NotFound("webhook_endpoint_not_found"))?;
            if !tx.delete_endpoint(org, id)? {
                return Err(DomainError::NotFound("webhook_endpoint_not_found"));
            }
            audit.record(tx, "webhook_endpoint.deleted", "webhook_endpoint", id.to_string(), Some(endpoint_snapshot(&endpoint)), None)?;
            Ok(())
        })
        .await
    }

    /// Replaces an endpoint's signing secret (Manager role) and returns the endpoint with the
    /// new secret. Attempts from now on are signed with it, retries of older events included.
    ///
    /// # Errors
    /// `webhook_endpoint_not_found`.
    pub async fn rotate_webhook_secret(&self, ctx: &BrandContext, id: WebhookEndpointId) -> Result<WebhookEndpoint, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        ctx.require_role(Role::Manager)?;
        let org = ctx.org_id();
        let now = self.now();
        let secret = self.new_webhook_secret();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            // The current row, locked, so the worker's failure counting cannot write the old
            // secret back, nor this rotation undo a failure it counted.
            let mut endpoint = tx.endpoint_for_update(org, id)?.ok_or(DomainError::NotFound("webhook_endpoint_not_found"))?;
            endpoint.secret = secret;
            endpoint.updated_at = now;
            tx.update_endpoint(&endpoint)?;
            let snapshot = endpoint_snapshot(&endpoint);
            audit.record(
                tx,
                "webhook_endpoint.secret_rotated",
                "webhook_endpoint",
                id.to_string(),
                Some(snapshot.clone()),
                Some(snapshot),
            )?;
            Ok(endpoint)
        })
        .await
    }

    /// An endpoint's deliveries, newest first.
    ///
    /// # Errors
    /// `webhook_endpoint_not_found`.
    pub async fn list_deliveries(
        &self,
        ctx: &BrandContext,
        endpoint: WebhookEndpointId,
        page: PageRequest,
    ) -> Result<Page<Delivery>, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        let org = ctx.org_id();
        let rows = self
            .tx(move |tx| {
                tx.endpoint(org, endpoint)?.ok_or(DomainError::NotFound("webhook_endpoint_not_found"))?;
                Ok(tx.deliveries_of(org, endpoint, &page)?)
            })
            .await?;
        Ok(Page::from_rows(rows, &page, |d| d.id.as_uuid()))
    }

    /// Queues a delivery again (Manager role): Pending, due now, with a fresh retry schedule,
    /// the same body and the same id (so receivers that deduplicate on
    /// `X-Rekomi-Delivery-Id` recognize it).
    ///
    /// # Errors
    /// `webhook_endpoint_not_found`, `delivery_not_found`, `409 webhook_endpoint_disabled`.
    pub async fn redeliver(&self, ctx: &BrandContext, endpoint: WebhookEndpointId, delivery: DeliveryId) -> Result<Delivery, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        ctx.require_role(Role::Manager)?;
        let org = ctx.org_id();
        let now = self.now();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            let ep = tx.endpoint(org, endpoint)?.ok_or(DomainError::NotFound("webhook_endpoint_not_found"))?;
            // Locked: an outcome being recorded for it is seen (and then reset), not overwritten.
            let mut d = tx
                .delivery_for_update(org, delivery)?
                .filter(|d| d.endpoint_id == endpoint)
                .ok_or(DomainError::NotFound("delivery_not_found"))?;
            if ep.status != EndpointStatus::Enabled {
                return Err(DomainError::conflict("webhook_endpoint_disabled", "enable the endpoint before redelivering to it"));
            }
            let before = delivery_snapshot(&d);
            d.status = DeliveryStatus::Pending;
            d.attempts = 0;
            d.next_attempt_at = now;
            d.locked_until = None;
            tx.update_delivery(&d)?;
            audit.record(
                tx,
                "webhook_delivery.redelivered",
                "webhook_delivery",
                ulid_of(d.id.as_uuid()),
                Some(before),
                Some(delivery_snapshot(&d)),
            )?;
            Ok(d)
        })
        .await
    }

    /// One pass of the delivery worker without lease renewal (tests; the server runs
    /// [`WebhookDeliveries`] through the job runner): claims up to `limit` due deliveries,
    /// sends each, and records the outcomes (see the module docs).
    ///
    /// # Errors
    /// Storage failures while claiming. Failures recording one outcome are logged and leave
    /// that delivery to be retried when its lease ends.
    pub async fn deliver_due_webhooks(&self, limit: usize) -> Result<DeliveryReport, DomainError> {
        let claimed = self.claim_deliveries(limit).await?;
        let lease = Lease::on(claimed.iter().map(|(d, _)| d.id.to_string()).collect());
        Ok(self.send_deliveries(claimed, &lease).await)
    }

    /// Claims up to `limit` due deliveries under a [`DELIVERY_LEASE`] lease, each with its
    /// endpoint as it stands.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn claim_deliveries(&self, limit: usize) -> Result<Vec<(Delivery, Option<WebhookEndpoint>)>, DomainError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = self.now();
        let batch = i64::try_from(limit).unwrap_or(i64::MAX);
        self.tx(move |tx| {
            let deliveries = tx.claim_deliveries(now, now + DELIVERY_LEASE, batch)?;
            let mut out = Vec::with_capacity(deliveries.len());
            for d in deliveries {
                let endpoint = tx.endpoint_any_org(d.endpoint_id)?.filter(|e| e.org_id == d.org_id);
                out.push((d, endpoint));
            }
            Ok(out)
        })
        .await
    }

    /// Sends claimed deliveries one at a time and records each outcome, letting go of each in
    /// `lease` once recorded.
    pub async fn send_deliveries(&self, claimed: Vec<(Delivery, Option<WebhookEndpoint>)>, lease: &Lease) -> DeliveryReport {
        let mut report = DeliveryReport { claimed: claimed.len(), ..DeliveryReport::default() };
        for (delivery, endpoint) in claimed {
            let id = delivery.id.to_string();
            self.send_one(delivery, endpoint, &mut report).await;
            lease.finished(&id);
        }
        report
    }

    async fn send_one(&self, delivery: Delivery, endpoint: Option<WebhookEndpoint>, report: &mut DeliveryReport) {
        let Some(endpoint) = endpoint.filter(|e| e.status == EndpointStatus::Enabled) else {
            // Disabled or deleted since the claim: let the lease go; the claim query leaves
            // deliveries of disabled endpoints alone until they are enabled again.
            self.release(delivery).await;
            report.skipped += 1;
            return;
        };
        let sent_at = self.now();
        let request = OutboundRequest {
            url: endpoint.url.clone(),
            headers: vec![
                ("Content-Type".to_owned(), "application/json".to_owned()),
                ("X-Rekomi-Signature".to_owned(), signature::header(&endpoint.secret, sent_at.unix_timestamp(), delivery.body.as_bytes())),
                ("X-Rekomi-Event".to_owned(), delivery.event_type.clone()),
                ("X-Rekomi-Delivery-Id".to_owned(), ulid_of(delivery.id.as_uuid())),
            ],
            body: delivery.body.clone(),
        };
        let outcome = self.webhooks.send(&request).await;
        let delivery_id = ulid_of(delivery.id.as_uuid());
        match self.record_outcome(delivery, outcome).await {
            Ok(Recorded::Delivered) => report.delivered += 1,
            Ok(Recorded::Retrying) => report.retrying += 1,
            Ok(Recorded::Failed { endpoint_disabled }) => {
                report.failed += 1;
                report.endpoints_disabled += usize::from(endpoint_disabled);
            }
            Ok(Recorded::Skipped) => report.skipped += 1,
            Err(e) => {
                tracing::warn!(webhook.delivery_id = %delivery_id, error.cause = %e, "recording a webhook delivery outcome failed");
                report.errors += 1;
            }
        }
    }

    /// Lets go of a claimed delivery without an attempt.
    async fn release(&self, delivery: Delivery) {
        let id = delivery.id;
        let result = self
            .tx(move |tx| {
                if let Some(mut current) = tx.delivery_for_update(delivery.org_id, id)? {
                    if still_held(&current, &delivery) {
                        // The claim counted an attempt that was not made.
                        current.attempts = current.attempts.saturating_sub(1);
                        current.locked_until = None;
                        tx.update_delivery(&current)?;
                    }
                }
                Ok(())
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(webhook.delivery_id = %ulid_of(id.as_uuid()), error.cause = %e, "releasing a webhook delivery failed");
        }
    }

    /// Records one attempt's outcome on the delivery and its endpoint.
    async fn record_outcome(&self, claimed: Delivery, outcome: SendOutcome) -> Result<Recorded, DomainError> {
        let now = self.now();
        let next_attempt = DELIVERY_RETRY.next_attempt(claimed.attempts, now, &*self.entropy);
        let audit = self.audit(claimed.org_id, AuditActor::System, now);
        self.tx(move |tx| {
            let org = claimed.org_id;
            // Both rows locked, endpoint first (see the module docs), and both read afresh: the
            // endpoint may have been rotated, patched or counted by another worker while this
            // attempt was in flight, and only this outcome's change is applied to it.
            let Some(mut endpoint) = tx.endpoint_for_update(org, claimed.endpoint_id)? else { return Ok(Recorded::Skipped) };
            let Some(mut d) = tx.delivery_for_update(org, claimed.id)? else { return Ok(Recorded::Skipped) };
            // A redelivery (or a deletion) committed while this attempt was in flight wins: the
            // delivery is due again and the next attempt records its own outcome.
            if !still_held(&d, &claimed) || d.endpoint_id != endpoint.id {
                return Ok(Recorded::Skipped);
            }
            // The claim counted this attempt already (so an attempt that crashed the worker
            // counts too): `d.attempts` includes it.
            d.locked_until = None;
            match outcome {
                SendOutcome::Delivered { status } => {
                    d.status = DeliveryStatus::Succeeded;
                    d.delivered_at = Some(now);
                    d.last_status = Some(status);
                    d.last_error = None;
                    tx.update_delivery(&d)?;
                    if endpoint.consecutive_failures != 0 {
                        endpoint.consecutive_failures = 0;
                        endpoint.updated_at = now;
                        tx.update_endpoint(&endpoint)?;
                    }
                    Ok(Recorded::Delivered)
                }
                SendOutcome::Failed { status, error } => {
                    d.last_status = status;
                    d.last_error = Some(truncate(&error, 500));
                    if let Some(at) = next_attempt {
                        d.next_attempt_at = at;
                        tx.update_delivery(&d)?;
                        return Ok(Recorded::Retrying);
                    }
                    d.status = DeliveryStatus::Failed;
                    tx.update_delivery(&d)?;
                    let before = endpoint_snapshot(&endpoint);
                    endpoint.consecutive_failures = endpoint.consecutive_failures.saturating_add(1);
                    endpoint.updated_at = now;
                    let disable = endpoint.status == EndpointStatus::Enabled && endpoint.consecutive_failures >= DISABLE_AFTER_FAILURES;
                    if disable {
                        endpoint.status = EndpointStatus::Disabled;
                        endpoint.disabled_reason =
                            Some(format!("{} deliveries in a row failed after every retry", endpoint.consecutive_failures));
                    }
                    tx.update_endpoint(&endpoint)?;
                    if disable {
                        audit.record(
                            tx,
                            "webhook_endpoint.disabled",
                            "webhook_endpoint",
                            endpoint.id.to_string(),
                            Some(before),
                            Some(endpoint_snapshot(&endpoint)),
                        )?;
                    }
                    Ok(Recorded::Failed { endpoint_disabled: disable })
                }
            }
        })
        .await
    }
}

enum Recorded {
    Delivered,
    Retrying,
    Failed { endpoint_disabled: bool },
    Skipped,
}

/// Whether `current` is still the claim this worker made (`claimed`): pending, held, and with
/// no attempt counted since. A redelivery resets the attempts, and a claim by another worker
/// (after this one's lease ran out) counts one, so either makes this worker's outcome stale.
/// (The lease time itself is no fence: renewals move it.)
fn still_held(current: &Delivery, claimed: &Delivery) -> bool {
    current.status == DeliveryStatus::Pending && current.locked_until.is_some() && current.attempts == claimed.attempts
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// The audit log's view of a delivery (never its body).
fn delivery_snapshot(d: &Delivery) -> Value {
    json!({
        "id": ulid_of(d.id.as_uuid()), "endpointId": d.endpoint_id.to_string(), "eventType": d.event_type,
        "status": d.status.as_str(), "attempts": d.attempts, "lastStatus": d.last_status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_filters_accept_known_types_family_wildcards_and_star() {
        let ok = validate_events(vec!["affiliate_coupon.*".into(), "*".into(), "lead.created".into(), "lead.created".into()]);
        assert_eq!(ok.ok(), Some(vec!["affiliate_coupon.*".to_owned(), "*".to_owned(), "lead.created".to_owned()]));
        assert!(validate_events(vec!["affiliate.*".into(), "conversion.*".into()]).is_ok());
        for bad in ["payout.created", "affiliate_co.*", "conversion", "*.created", "", "affiliate.created.*"] {
            assert!(validate_events(vec![bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_must_be_http_or_https_with_a_host_and_at_most_2048_characters() {
        assert!(validate_url_shape("https://hooks.example.com/rekomi").is_ok());
        assert!(validate_url_shape("HTTP://hooks.example.com").is_ok());
        for bad in ["ftp://x", "https://", "https:///path", "hooks.example.com", "https://a b", "https://user:pw@example.com/"] {
            assert!(validate_url_shape(bad).is_err(), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(validate_url_shape(&long).is_err());
    }
}
