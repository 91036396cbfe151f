//! Webhook endpoints: brands register endpoints (each with its own signing secret and event
//! filter), change, rotate and delete them, read their delivery log and redeliver. The
//! delivery worker (`delivery.rs`) sends what the transactional outbox
//! ([`crate::outbound::outbox`]) queued.
//!
//! Every transaction that changes an endpoint (the worker's failure counting, a PATCH, a
//! rotation, a deletion) reads it with [`OutboundRepo::endpoint_for_update`] and writes back
//! only its own change applied to that locked, current row, so none of them undoes another's
//! (a rotation is never reverted to the old secret, a PATCH never re-enables an endpoint the
//! worker just disabled, two workers never lose a failure). Locks are taken endpoint first,
//! then delivery: the order of a deletion (the endpoint, then its deliveries by cascade).
//!
//! [`OutboundRepo::endpoint_for_update`]: crate::outbound::OutboundRepo::endpoint_for_update

use crate::audit::AuditAction;
use crate::outbound::EventType;
use serde_json::{json, Value};

use crate::kernel::actor::Role;
use crate::kernel::error::{DomainError, FieldError};
use crate::kernel::ids::{DeliveryId, WebhookEndpointId};
use crate::kernel::page::{Page, PageRequest};
use crate::kernel::plan::PlanTier;
use crate::outbound::{redacted_url, ulid_of, Delivery, DeliveryStatus, EndpointStatus, WebhookEndpoint};

use crate::services::{BrandContext, Services};

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

/// The audit log's view of an endpoint: never the secret, and the URL without its query
/// string, fragment or userinfo (they often carry tokens).
pub(super) fn endpoint_snapshot(e: &WebhookEndpoint) -> Value {
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
            || EventType::parse(&filter).is_some()
            || filter
                .strip_suffix(".*")
                .is_some_and(|family| EventType::ALL.iter().any(|t| t.as_str().strip_prefix(family).is_some_and(|r| r.starts_with('.'))));
        if !known {
            return Err(FieldError::invalid(
                "events",
                format!(
                    "unknown event type {filter:?}; use one of {}, a family wildcard such as affiliate_coupon.*, or *",
                    EventType::ALL.iter().map(EventType::as_str).collect::<Vec<_>>().join(", ")
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
    crate::kernel::text::validate_text("description", raw, MAX_DESCRIPTION_LEN)
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
                AuditAction::WebhookEndpointCreated,
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
                AuditAction::WebhookEndpointUpdated,
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
            audit.record(
                tx,
                AuditAction::WebhookEndpointDeleted,
                "webhook_endpoint",
                id.to_string(),
                Some(endpoint_snapshot(&endpoint)),
                None,
            )?;
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
                AuditAction::WebhookEndpointSecretRotated,
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
                AuditAction::WebhookDeliveryRedelivered,
                "webhook_delivery",
                ulid_of(d.id.as_uuid()),
                Some(before),
                Some(delivery_snapshot(&d)),
            )?;
            Ok(d)
        })
        .await
    }
}

/// The audit log's view of a delivery (never its body).
fn delivery_snapshot(d: &Delivery) -> Value {
    json!({
        "id": ulid_of(d.id.as_uuid()), "endpointId": d.endpoint_id.to_string(), "eventType": d.event_type.as_str(),
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
        assert!(validate_events(vec!["affiliate.*".into(), "conversion.*".into(), "payout.*".into(), "payout.paid".into()]).is_ok());
        for bad in ["payout.sent", "affiliate_co.*", "conversion", "*.created", "", "affiliate.created.*"] {
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
