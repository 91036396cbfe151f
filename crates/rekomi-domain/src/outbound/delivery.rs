//! The delivery worker: sends what the transactional outbox ([`crate::outbound::outbox`])
//! queued, as a job queue of the runner.
//!
//! The worker never holds a transaction across a send: it claims due deliveries under a lease
//! (`FOR UPDATE SKIP LOCKED`, so several server processes share the work; the claim counts the
//! attempt, so one that crashes the worker counts too), commits, sends each one through the
//! [`WebhookSender`](crate::outbound::WebhookSender) port, and records each outcome in a
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
//!
//! Locks are taken endpoint first, then delivery (see `endpoints.rs`).

use crate::audit::AuditAction;
use async_trait::async_trait;
use time::Duration;

use crate::jobs::{BatchReport, JobQueue, Lease, LeaseTerms, QueueDepth};
use crate::kernel::actor::AuditActor;
use crate::kernel::error::DomainError;
use crate::kernel::ids::DeliveryId;
use crate::kernel::signature;
use crate::outbound::{ulid_of, Delivery, DeliveryStatus, EndpointStatus, WebhookEndpoint, DELIVERY_RETRY, DISABLE_AFTER_FAILURES};
use crate::outbound::{OutboundRequest, SendOutcome};

use crate::services::Services;

use super::endpoints::{endpoint_snapshot, SEND_BUDGET_SECS};

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

impl Services {
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
                ("X-Rekomi-Event".to_owned(), delivery.event_type.as_str().to_owned()),
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
                            AuditAction::WebhookEndpointDisabled,
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
