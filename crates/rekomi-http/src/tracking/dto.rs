//! The tracking capability's bodies: a reported conversion and its answers, and the issued
//! signing secret. Inbound adapter side of `rekomi_domain::tracking`.

use rekomi_domain::kernel::error::FieldError;
use rekomi_domain::tracking::{IssuedTrackingSecret, S2sConversion};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::dto::{ts, ts_opt};

/// A conversion reported by the brand's server. The signature covers these exact bytes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct S2sConversionRequest {
    /// The sender's id of the sale, 1–255 bytes; a repeat for the organization is deduplicated.
    #[schema(min_length = 1, max_length = 255, example = "purchase_abc123")]
    pub external_event_id: String,
    /// The credited affiliate's link slug (any case).
    #[schema(example = "jane-recommends")]
    pub affiliate_slug: String,
    /// The sale amount in minor units (cents; yen for JPY).
    #[schema(minimum = 1, maximum = 999_999_999_999_i64, example = 9900)]
    pub amount_cents: i64,
    /// An ISO 4217 code from the supported list, any case.
    #[schema(value_type = crate::dto::CurrencyValue)]
    pub currency: String,
    /// The sender's customer id, 1–255 bytes; kept in the conversion's attribution trace.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255, example = "cus_external_xyz")]
    pub customer_id: Option<String>,
}

impl S2sConversionRequest {
    /// The domain's validated conversion.
    ///
    /// # Errors
    /// The first field at fault.
    pub fn into_domain(self) -> Result<S2sConversion, FieldError> {
        S2sConversion::parse(&self.external_event_id, &self.affiliate_slug, self.amount_cents, &self.currency, self.customer_id.as_deref())
    }
}

/// A conversion was recorded.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct S2sRecordedResponse {
    /// Always true.
    pub ok: bool,
    /// The new conversion.
    pub conversion_id: Uuid,
}

/// The `externalEventId` was already recorded for the organization; nothing was written.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct S2sDedupedResponse {
    /// Always true.
    pub ok: bool,
    /// Always true.
    pub deduped: bool,
}

/// What `POST /api/tracking/s2s` answers: a new conversion, or a deduplicated repeat.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum S2sResponse {
    /// A new conversion.
    Recorded(S2sRecordedResponse),
    /// Already recorded.
    Deduped(S2sDedupedResponse),
}

/// `POST /api/tracking/lead`: an identified signup (a lead) reported by the brand's server.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeadRequest {
    /// The credited affiliate's link slug (any case).
    #[schema(example = "jane-recommends")]
    pub affiliate_slug: String,
    /// The email a later sale is matched against.
    #[schema(example = "user@example.com")]
    pub email: String,
    pub name: Option<String>,
    /// The sender's id of the signup, 1–255 bytes; a repeat is deduplicated (without one, the
    /// same email for the same affiliate is).
    #[schema(min_length = 1, max_length = 255)]
    pub external_event_id: Option<String>,
}

/// A new lead.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeadRecordedResponse {
    /// Always true.
    pub ok: bool,
    /// The lead's conversion (`LeadReward`).
    pub lead_id: Uuid,
}

/// What `POST /api/tracking/lead` answers: a new lead, or a deduplicated repeat.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LeadResponse {
    /// A new lead.
    Recorded(LeadRecordedResponse),
    /// Already recorded.
    Deduped(S2sDedupedResponse),
}

/// A newly issued signing secret: the only answer that shows it in full.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackingSecretResponse {
    /// Its id.
    pub id: Uuid,
    /// The secret (`rks_…`). Store it now: it is never shown again.
    #[schema(example = "rks_3kT9xQ2mN8vB4cR7yH1wL5pZ0aS6dF2gJ8kE4uI")]
    pub secret: String,
    /// Its first characters, as the audit log shows it.
    #[schema(example = "rks_3kT9")]
    pub prefix: String,
    /// When it was issued.
    pub created_at: String,
    /// The prefix of the secret it replaced, null for a first secret.
    pub previous_prefix: Option<String>,
    /// Until when the replaced secret keeps verifying (24 hours from now), null for a first
    /// secret.
    pub previous_expires_at: Option<String>,
}

impl From<IssuedTrackingSecret> for TrackingSecretResponse {
    fn from(issued: IssuedTrackingSecret) -> Self {
        let record = issued.record;
        Self {
            id: record.id.as_uuid(),
            secret: record.secret.expose().to_owned(),
            prefix: record.secret.display_prefix(),
            created_at: ts(record.created_at),
            previous_prefix: issued.previous.as_ref().map(|p| p.secret.display_prefix()),
            previous_expires_at: ts_opt(issued.previous.and_then(|p| p.expires_at)),
        }
    }
}
