//! Outbound webhooks: brands' endpoints, the transactional outbox, and deliveries.

use crate::jobs::RetryPolicy;
use std::fmt;

use serde_json::Value;
use time::OffsetDateTime;

use crate::kernel::ids::{DeliveryId, OrgId, OutboxEventId, WebhookEndpointId};
use crate::kernel::text::api_enum;

api_enum!(/// Whether an endpoint receives deliveries.
    EndpointStatus { Enabled, Disabled });
api_enum!(/// Where a delivery stands.
    DeliveryStatus { Pending, Succeeded, Failed });

crate::kernel::text::dotted_names!(/// An event Rekomi announces to webhook endpoints (`X-Rekomi-Event`, the body's `type`).
EventType {
ConversionCreated => "conversion.created",
ConversionRefunded => "conversion.refunded",
LeadCreated => "lead.created",
AffiliateCouponCreated => "affiliate_coupon.created",
AffiliateCouponUpdated => "affiliate_coupon.updated",
AffiliateCouponDeactivated => "affiliate_coupon.deactivated",
AffiliateCouponDeleted => "affiliate_coupon.deleted",
AffiliateCreated => "affiliate.created",
AffiliateApproved => "affiliate.approved",
PayoutCreated => "payout.created",
PayoutPaid => "payout.paid",
PayoutFailed => "payout.failed",
});

/// A brand's webhook endpoint. Its `Debug` output never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// Id.
    pub id: WebhookEndpointId,
    /// Organization.
    pub org_id: OrgId,
    /// The https (or, when allowed, http) URL.
    pub url: String,
    /// A label.
    pub description: Option<String>,
    /// Event types or `family.*` wildcards; empty means every event.
    pub events: Vec<String>,
    /// The signing secret (`whsec_…`), shown to the brand once.
    pub secret: String,
    /// Status.
    pub status: EndpointStatus,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Deliveries that failed for good since the last success.
    pub consecutive_failures: u32,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Spelled out field by field (no `..`), so a new field is a compile error here rather
        // than a silent omission, and the secret never reaches a log line.
        // The URL as `scheme://host[:port]/path`: query strings often carry tokens too.
        let Self { id, org_id, url, description, events, secret: _, status, disabled_reason, consecutive_failures, created_at, updated_at } =
            self;
        f.debug_struct("WebhookEndpoint")
            .field("id", id)
            .field("org_id", org_id)
            .field("url", &redacted_url(url))
            .field("description", description)
            .field("events", events)
            .field("secret", &format_args!("<redacted>"))
            .field("status", status)
            .field("disabled_reason", disabled_reason)
            .field("consecutive_failures", consecutive_failures)
            .field("created_at", created_at)
            .field("updated_at", updated_at)
            .finish()
    }
}

impl WebhookEndpoint {
    /// Whether the endpoint subscribes to `event_type` (exact names or `family.*`).
    pub fn wants(&self, event_type: EventType) -> bool {
        let event_type = event_type.as_str();
        self.events.is_empty()
            || self.events.iter().any(|f| {
                f == "*"
                    || f == event_type
                    || f.strip_suffix(".*").is_some_and(|family| event_type.strip_prefix(family).is_some_and(|r| r.starts_with('.')))
            })
    }
}

/// `url` as `scheme://host[:port]/path`, for logs and the audit log: without the query
/// string, the fragment or any userinfo, which often carry tokens.
pub fn redacted_url(url: &str) -> String {
    let url = url.trim();
    let url = &url[..url.find(['?', '#']).unwrap_or(url.len())];
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    // Browsers and the URL standard end the authority at `\` as well as `/`.
    let (authority, path) = rest.split_at(rest.find(['/', '\\']).unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    match scheme {
        Some(scheme) => format!("{scheme}://{host}{path}"),
        None => format!("{host}{path}"),
    }
}

/// An event written in the same transaction as the change that caused it.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEvent {
    /// Id.
    pub id: OutboxEventId,
    /// Organization.
    pub org_id: OrgId,
    /// e.g. `conversion.created`.
    pub event_type: EventType,
    /// The `data` of the delivered body.
    pub data: Value,
    /// When it happened.
    pub created_at: OffsetDateTime,
}

/// One event to one endpoint, with its retry state.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// Id (rendered as a ULID in `X-Rekomi-Delivery-Id`).
    pub id: DeliveryId,
    /// Organization.
    pub org_id: OrgId,
    /// Endpoint.
    pub endpoint_id: WebhookEndpointId,
    /// Event.
    pub event_id: OutboxEventId,
    /// Event type.
    pub event_type: EventType,
    /// The exact body sent (the same bytes on every attempt, so signatures stay comparable).
    pub body: String,
    /// Status.
    pub status: DeliveryStatus,
    /// Attempts so far.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt_at: OffsetDateTime,
    /// While a worker holds it.
    pub locked_until: Option<OffsetDateTime>,
    /// The last HTTP status received.
    pub last_status: Option<u16>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// When it succeeded.
    pub delivered_at: Option<OffsetDateTime>,
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Renders a UUID v7 as a 26-character ULID (both are a 48-bit millisecond time then random
/// bits, so the rendering sorts by time like a ULID).
pub fn ulid_of(id: uuid::Uuid) -> String {
    let mut n = id.as_u128();
    let mut out = [b'0'; 26];
    for slot in out.iter_mut().rev() {
        *slot = CROCKFORD[(n & 31) as usize];
        n >>= 5;
    }
    out.iter().map(|b| char::from(*b)).collect()
}

/// When a failed delivery is tried again: about three days in all over 12 retries (13
/// attempts), each delay plus up to 20 % jitter.
pub const DELIVERY_RETRY: RetryPolicy =
    RetryPolicy::new(&[10, 60, 300, 1_800, 3_600, 7_200, 14_400, 28_800, 43_200, 43_200, 43_200, 43_200], 20);

/// Deliveries that fail for good in a row before the endpoint is disabled.
pub const DISABLE_AFTER_FAILURES: u32 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(events: &[&str]) -> WebhookEndpoint {
        WebhookEndpoint {
            id: WebhookEndpointId::from_uuid(uuid::Uuid::nil()),
            org_id: OrgId::from_uuid(uuid::Uuid::nil()),
            url: "https://x".into(),
            description: None,
            events: events.iter().map(|s| (*s).to_owned()).collect(),
            secret: "s".into(),
            status: EndpointStatus::Enabled,
            disabled_reason: None,
            consecutive_failures: 0,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn filters_match_exact_names_and_family_wildcards() {
        assert!(endpoint(&[]).wants(EventType::ConversionCreated));
        assert!(endpoint(&["affiliate_coupon.*"]).wants(EventType::AffiliateCouponCreated));
        assert!(!endpoint(&["affiliate_coupon.*"]).wants(EventType::AffiliateCreated));
        assert!(!endpoint(&["affiliate.*"]).wants(EventType::AffiliateCouponCreated));
        assert!(endpoint(&["conversion.refunded"]).wants(EventType::ConversionRefunded));
        assert!(!endpoint(&["conversion.refunded"]).wants(EventType::ConversionCreated));
    }

    #[test]
    fn debug_output_redacts_the_secret() {
        let mut e = endpoint(&["lead.created"]);
        e.secret = "whsec_TopSecret0123456789".into();
        let shown = format!("{e:?} {e:#?}");
        assert!(!shown.contains("TopSecret") && !shown.contains("whsec_"), "{shown}");
        assert!(shown.contains("secret: <redacted>") && shown.contains("https://x") && shown.contains("lead.created"), "{shown}");
    }

    #[test]
    fn redacted_urls_keep_scheme_host_port_and_path_only() {
        for (raw, shown) in [
            ("https://hooks.example.com/rekomi", "https://hooks.example.com/rekomi"),
            ("https://hooks.example.com:8443/a/b?token=s3cr3t&x=1", "https://hooks.example.com:8443/a/b"),
            ("https://hooks.example.com?token=s3cr3t", "https://hooks.example.com"),
            ("https://user:pa55@hooks.example.com/h#frag", "https://hooks.example.com/h"),
            ("http://[::1]:9/h?k=v", "http://[::1]:9/h"),
            ("https://a@b@hooks.example.com\\x?t=1", "https://hooks.example.com\\x"),
            ("  HTTPS://Hooks.Example.com/Path  ", "HTTPS://Hooks.Example.com/Path"),
            ("no-scheme@host/p?t=1", "host/p"),
        ] {
            assert_eq!(redacted_url(raw), shown, "{raw}");
        }
    }

    #[test]
    fn ulids_are_26_crockford_characters_sorting_by_time() {
        let a = ulid_of(uuid::Uuid::from_u128(1 << 80));
        let b = ulid_of(uuid::Uuid::from_u128(2 << 80));
        assert_eq!(a.len(), 26);
        assert!(a < b);
        assert!(a.bytes().all(|c| CROCKFORD.contains(&c)));
    }

    #[test]
    fn the_retry_schedule_spans_about_three_days() {
        let total: i64 = (1..=12).filter_map(|n| DELIVERY_RETRY.delay(n)).map(|d| d.whole_seconds()).sum();
        assert!((2 * 86_400..4 * 86_400).contains(&total), "{total}");
        assert_eq!(DELIVERY_RETRY.delay(13), None);
        assert_eq!(DELIVERY_RETRY.delay(0), None);
        assert_eq!(DELIVERY_RETRY.max_attempts(), 13);
    }
}
