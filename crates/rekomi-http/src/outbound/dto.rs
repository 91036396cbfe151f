//! The outbound-webhooks capability's bodies: an endpoint (its signing secret only in the
//! answers of create and rotate-secret), a delivery, the create and PATCH requests, and the
//! value sets of their statuses. Inbound adapter side of `rekomi_domain::outbound`.

use rekomi_domain::outbound::{ulid_of, Delivery, DeliveryStatus, EndpointStatus, WebhookEndpoint, WebhookEndpointPatch};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::dto::{nullable, present, ts, ts_opt, value_set};

value_set!(/// A webhook endpoint's status.
    EndpointStatusValue = "WebhookEndpointStatus", "Whether an endpoint receives deliveries.",
    EndpointStatus::ALL.iter().map(EndpointStatus::as_str));
value_set!(/// A delivery's status.
    DeliveryStatusValue = "DeliveryStatus", "Where a delivery stands.",
    DeliveryStatus::ALL.iter().map(DeliveryStatus::as_str));

/// A webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpointResponse {
    pub id: Uuid,
    pub url: String,
    pub description: Option<String>,
    /// Event types, `family.*` wildcards or `*`; empty = every event.
    pub events: Vec<String>,
    #[schema(value_type = EndpointStatusValue)]
    pub status: &'static str,
    pub disabled_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The signing secret (`whsec_…`): only in the answers of create and rotate-secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WebhookEndpointResponse {
    pub(crate) fn without_secret(e: WebhookEndpoint) -> Self {
        Self::build(e, false)
    }

    pub(crate) fn with_secret(e: WebhookEndpoint) -> Self {
        Self::build(e, true)
    }

    fn build(e: WebhookEndpoint, show_secret: bool) -> Self {
        Self {
            id: e.id.as_uuid(),
            url: e.url,
            description: e.description,
            events: e.events,
            status: e.status.as_str(),
            disabled_reason: e.disabled_reason,
            created_at: ts(e.created_at),
            updated_at: ts(e.updated_at),
            secret: show_secret.then_some(e.secret),
        }
    }
}

/// One delivery of an event to an endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryResponse {
    /// The ULID sent as `X-Rekomi-Delivery-Id`.
    pub id: String,
    pub event_type: String,
    #[schema(value_type = DeliveryStatusValue)]
    pub status: &'static str,
    pub attempts: u32,
    /// The HTTP status of the last attempt, when an answer came.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    /// When the next attempt is due (Pending deliveries only).
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

impl From<Delivery> for DeliveryResponse {
    fn from(d: Delivery) -> Self {
        Self {
            id: ulid_of(d.id.as_uuid()),
            event_type: d.event_type.as_str().to_owned(),
            status: d.status.as_str(),
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            next_attempt_at: (d.status == DeliveryStatus::Pending).then(|| ts(d.next_attempt_at)),
            created_at: ts(d.created_at),
            delivered_at: ts_opt(d.delivered_at),
        }
    }
}

/// `POST /api/v1/webhook-endpoints`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhookEndpointRequest {
    /// http(s), at most 2048 characters, not a private, loopback or link-local address.
    #[schema(format = "uri", max_length = 2048)]
    pub url: String,
    /// At most 500 characters.
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Event types (`affiliate.created`), family wildcards (`affiliate_coupon.*`) or `*`;
    /// omitted or empty = every event. At most 50.
    #[schema(max_items = 50)]
    pub events: Option<Vec<String>>,
}

/// `PATCH /api/v1/webhook-endpoints/{id}`: only the keys sent change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchWebhookEndpointRequest {
    /// http(s), at most 2048 characters, not a private, loopback or link-local address.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, format = "uri", max_length = 2048)]
    pub url: Option<String>,
    /// At most 500 characters; null clears.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 500)]
    pub description: Option<Option<String>>,
    /// At most 50 filters; empty = every event.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<String>, max_items = 50)]
    pub events: Option<Vec<String>>,
    /// `true` re-enables a disabled endpoint (and resets its failure count); `false` disables it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub enabled: Option<bool>,
}

impl PatchWebhookEndpointRequest {
    pub(crate) fn into_domain(self) -> WebhookEndpointPatch {
        WebhookEndpointPatch { url: self.url, description: self.description, events: self.events, enabled: self.enabled }
    }
}
