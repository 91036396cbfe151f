//! The conversions capability's bodies: a conversion with its ledger and attribution trace, the
//! list and export query, the sub-affiliate setting and recruits, and the value sets of their
//! enum fields. Inbound adapter side of `rekomi_domain::conversions`.

use rekomi_domain::conversions::{
    Conversion, ConversionFilter, ConversionStatus, ConversionType, LedgerEvent, LedgerKind, SubAffiliateConfig,
};
use rekomi_domain::kernel::ids::{AffiliateId, ProgramId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::affiliates::dto::AffiliateStatusValue;
use crate::dto::{enum_field, parse_time_param, ts, ts_opt, value_set, CurrencyValue, Decimal, TimeParam};
use crate::error::ApiError;

value_set!(/// A conversion's status.
    ConversionStatusValue = "ConversionStatus", "Where a conversion stands.",
    ConversionStatus::ALL.iter().map(ConversionStatus::as_str));
value_set!(/// What a conversion credits.
    ConversionTypeValue = "ConversionType", "What was credited.",
    ConversionType::ALL.iter().map(ConversionType::as_str));
value_set!(/// A ledger entry's kind.
    LedgerKindValue = "LedgerEventType", "What a ledger entry records.",
    [LedgerKind::Initial, LedgerKind::Renewal, LedgerKind::Refund, LedgerKind::Adjustment].iter().map(LedgerKind::as_str));

/// A conversion.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversionResponse {
    pub id: Uuid,
    pub affiliate_id: Uuid,
    pub program_id: Uuid,
    /// The first paid amount (0 for leads and overrides).
    pub amount_cents: i64,
    #[schema(value_type = CurrencyValue)]
    pub currency: &'static str,
    /// The net commission: every ledger entry, clawbacks included.
    pub commission_cents: i64,
    #[schema(value_type = ConversionStatusValue)]
    pub status: &'static str,
    #[serde(rename = "type")]
    #[schema(value_type = ConversionTypeValue)]
    pub kind: &'static str,
    pub stripe_subscription_id: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub external_event_id: Option<String>,
    pub created_at: String,
    pub refunded_at: Option<String>,
    /// `coupon` | `coupon_with_metadata` | `metadata_or_customer` | `sub_affiliate_override`
    pub attribution_method: Option<String>,
    /// The redeemed code, only when a coupon decided.
    pub coupon_code: Option<String>,
    pub denial_reason: Option<String>,
    pub parent_affiliate_conversion_id: Option<Uuid>,
    /// The click (`rkc_…`) the sale came from, when a click id attributed it.
    pub click_id: Option<String>,
}

impl From<&Conversion> for ConversionResponse {
    fn from(c: &Conversion) -> Self {
        Self {
            id: c.id.as_uuid(),
            affiliate_id: c.affiliate_id.as_uuid(),
            program_id: c.program_id.as_uuid(),
            amount_cents: c.amount_minor,
            currency: c.currency.code(),
            commission_cents: c.commission_minor,
            status: c.status.as_str(),
            kind: c.kind.as_str(),
            stripe_subscription_id: c.stripe_subscription_id.as_ref().map(|id| id.as_str().to_owned()),
            stripe_customer_id: c.stripe_customer_id.as_ref().map(|id| id.as_str().to_owned()),
            external_event_id: c.external_event_id.clone(),
            created_at: ts(c.created_at),
            refunded_at: ts_opt(c.refunded_at),
            attribution_method: c.attribution_method.clone(),
            coupon_code: c.coupon_code.clone(),
            denial_reason: c.denial_reason.clone(),
            parent_affiliate_conversion_id: c.parent_conversion_id.map(|p| p.as_uuid()),
            click_id: c.click_id.map(|id| id.to_string()),
        }
    }
}

/// One ledger entry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEventResponse {
    pub id: Uuid,
    #[schema(value_type = LedgerKindValue)]
    pub event_type: &'static str,
    pub amount_cents: i64,
    pub commission_cents: i64,
    /// The invoice (or payment) the entry is about.
    pub stripe_invoice_id: Option<String>,
    pub occurred_at: String,
}

impl From<&LedgerEvent> for LedgerEventResponse {
    fn from(e: &LedgerEvent) -> Self {
        Self {
            id: e.id.as_uuid(),
            event_type: e.kind.as_str(),
            amount_cents: e.amount_minor,
            commission_cents: e.commission_minor,
            stripe_invoice_id: e.stripe_invoice_id.as_ref().map(|payment| payment.as_str().to_owned()),
            occurred_at: ts(e.occurred_at),
        }
    }
}

/// A conversion with its event timeline.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversionDetailResponse {
    #[serde(flatten)]
    pub conversion: ConversionResponse,
    pub events: Vec<LedgerEventResponse>,
}

/// How a conversion was attributed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttributionResponse {
    pub conversion_id: Uuid,
    pub attribution_method: Option<String>,
    pub coupon_code: Option<String>,
    /// The signals seen (promotion codes, referral metadata, customer history) and the rule
    /// that decided.
    #[schema(value_type = Object)]
    pub trace: serde_json::Value,
}

/// `GET /api/v1/conversions` (and the export's) query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConversionQuery {
    /// Page size, 1-200 (default 50; not accepted by the export).
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub take: Option<i64>,
    /// The `nextCursor` of the previous page (not accepted by the export).
    pub cursor: Option<String>,
    pub affiliate_id: Option<Uuid>,
    pub program_id: Option<Uuid>,
    #[param(value_type = Option<ConversionStatusValue>, inline)]
    pub status: Option<String>,
    /// Created at or after this instant: an RFC 3339 timestamp, or a date (`2026-04-01`) meaning
    /// that day's start in UTC.
    #[param(value_type = Option<TimeParam>, inline)]
    pub since: Option<String>,
    /// Created before this instant (export only): an RFC 3339 timestamp, or a date
    /// (`2026-04-01`) meaning that day's start in UTC, so `until=2026-05-01` ends with April.
    #[param(value_type = Option<TimeParam>, inline)]
    pub until: Option<String>,
}

impl ConversionQuery {
    pub(crate) fn filter(&self, allow_until: bool) -> Result<ConversionFilter, ApiError> {
        if self.until.is_some() && !allow_until {
            return Err(ApiError::invalid("until", "until is only accepted by the CSV export"));
        }
        Ok(ConversionFilter {
            affiliate_id: self.affiliate_id.map(AffiliateId::from_uuid),
            program_id: self.program_id.map(ProgramId::from_uuid),
            status: self
                .status
                .as_deref()
                .map(|s| enum_field("status", s, ConversionStatus::parse, ConversionStatus::ALL, ConversionStatus::as_str))
                .transpose()?,
            since: parse_time_param("since", self.since.as_deref())?,
            until: parse_time_param("until", self.until.as_deref())?,
        })
    }
}

// ---- sub-affiliates ---------------------------------------------------------------------

/// The sub-affiliate setting of a program.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubAffiliateConfigBody {
    pub enabled: bool,
    /// The override percentage, 0-100 with at most two decimals.
    #[schema(value_type = f64, minimum = 0, maximum = 100)]
    pub percent: Decimal,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubAffiliateConfigResponse {
    pub enabled: bool,
    pub percent: f64,
}

pub(crate) fn config_response(c: SubAffiliateConfig) -> SubAffiliateConfigResponse {
    SubAffiliateConfigResponse { enabled: c.enabled, percent: c.percent.get() as f64 / 100.0 }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecruitResponse {
    pub id: Uuid,
    pub email: String,
    pub full_name: Option<String>,
    #[schema(value_type = AffiliateStatusValue)]
    pub status: &'static str,
    pub total_commission_cents: i64,
    pub override_earned_cents: i64,
    #[schema(value_type = CurrencyValue)]
    pub currency: &'static str,
}
