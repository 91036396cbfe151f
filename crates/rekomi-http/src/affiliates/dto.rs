//! The affiliates capability's bodies: an affiliate with its links, its create, PATCH, reject
//! and bulk-action requests, the list query, and the value sets of its enum fields. Inbound
//! adapter side of `rekomi_domain::affiliates`.

use rekomi_domain::affiliates::{AffiliateLink, AffiliateSource, AffiliateStatus, AffiliateView, BulkAction, LinkFormat};
use rekomi_domain::programs::{Commission, CommissionType};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::dto::{decimal_out, enum_field, nullable, present, ts, ts_opt, value_set, Decimal};
use crate::error::ApiError;
use crate::programs::dto::CommissionTypeValue;

value_set!(/// An affiliate's status.
    AffiliateStatusValue = "AffiliateStatus", "An affiliate's standing in its program.",
    AffiliateStatus::ALL.iter().map(AffiliateStatus::as_str));
value_set!(/// The statuses a new affiliate may start in.
    NewAffiliateStatusValue = "NewAffiliateStatus", "The status of a new affiliate (default `Approved`).",
    [AffiliateStatus::Approved, AffiliateStatus::Pending].iter().map(AffiliateStatus::as_str));
value_set!(/// How an affiliate joined.
    AffiliateSourceValue = "AffiliateSource", "How the affiliate joined.",
    AffiliateSource::ALL.iter().map(AffiliateSource::as_str));
value_set!(/// How a link is rendered.
    LinkFormatValue = "LinkFormat", "How a link is rendered.",
    LinkFormat::ALL.iter().map(LinkFormat::as_str));
value_set!(/// A bulk action.
    BulkActionValue = "BulkAction", "`approve` needs Pending, `pause` needs Approved, `delete` takes any status.",
    [BulkAction::Approve, BulkAction::Pause, BulkAction::Delete].iter().map(BulkAction::as_str));

/// A commission from optional type and value fields that must come together.
///
/// # Errors
/// 400 when only one of the pair is set or the value is out of range.
pub fn commission_pair(
    kind: Option<&str>,
    value: Option<&Decimal>,
    type_field: &str,
    value_field: &str,
) -> Result<Option<Commission>, ApiError> {
    match (kind, value) {
        (None, None) => Ok(None),
        (Some(k), Some(v)) => {
            let kind = enum_field(type_field, k, CommissionType::parse, CommissionType::ALL, CommissionType::as_str)?;
            Ok(Some(Commission::new(kind, v.hundredths(value_field)?, value_field)?))
        }
        (Some(_), None) => Err(ApiError::invalid(value_field, format!("{value_field} is required with {type_field}"))),
        (None, Some(_)) => Err(ApiError::invalid(type_field, format!("{type_field} is required with {value_field}"))),
    }
}

/// A tracking link.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkResponse {
    pub id: Uuid,
    pub affiliate_id: Uuid,
    pub slug: String,
    pub custom_alias: Option<String>,
    pub is_default: bool,
    #[schema(value_type = LinkFormatValue)]
    pub format: &'static str,
    pub created_at: String,
}

impl From<AffiliateLink> for LinkResponse {
    fn from(l: AffiliateLink) -> Self {
        Self {
            id: l.id.as_uuid(),
            affiliate_id: l.affiliate_id.as_uuid(),
            slug: l.slug,
            custom_alias: l.custom_alias,
            is_default: l.is_default,
            format: l.format.as_str(),
            created_at: ts(l.created_at),
        }
    }
}

/// An affiliate.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AffiliateResponse {
    pub id: Uuid,
    pub program_id: Uuid,
    pub email: String,
    pub full_name: Option<String>,
    #[schema(value_type = AffiliateStatusValue)]
    pub status: &'static str,
    #[schema(value_type = Option<CommissionTypeValue>)]
    pub custom_commission_type: Option<&'static str>,
    pub custom_commission_value: Option<f64>,
    pub tags: Vec<String>,
    pub notes: Option<String>,
    #[schema(value_type = AffiliateSourceValue)]
    pub source: &'static str,
    pub applied_at: String,
    pub approved_at: Option<String>,
    pub created_at: String,
    pub links: Vec<LinkResponse>,
}

impl From<AffiliateView> for AffiliateResponse {
    fn from(v: AffiliateView) -> Self {
        let a = v.affiliate;
        Self {
            id: a.id.as_uuid(),
            program_id: a.program_id.as_uuid(),
            email: a.email.as_str().to_owned(),
            full_name: a.full_name,
            status: a.status.as_str(),
            custom_commission_type: a.custom_commission.map(|c| c.kind.as_str()),
            custom_commission_value: a.custom_commission.map(|c| decimal_out(c.value)),
            tags: a.tags,
            notes: a.notes,
            source: a.source.as_str(),
            applied_at: ts(a.applied_at),
            approved_at: ts_opt(a.approved_at),
            created_at: ts(a.created_at),
            links: v.links.into_iter().map(LinkResponse::from).collect(),
        }
    }
}

/// `POST /api/v1/affiliates`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAffiliateRequest {
    pub program_id: Uuid,
    /// Unique within the program.
    #[schema(format = Email)]
    pub email: String,
    /// At most 200 characters.
    #[schema(max_length = 200)]
    pub full_name: Option<String>,
    /// `Approved` (default) or `Pending`.
    #[schema(value_type = Option<NewAffiliateStatusValue>)]
    pub status: Option<String>,
    /// Send with `customCommissionValue`.
    #[schema(value_type = Option<CommissionTypeValue>)]
    pub custom_commission_type: Option<String>,
    /// At most two decimals: a percentage 0-100, or a fixed amount 0-1,000,000.
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 1000000)]
    pub custom_commission_value: Option<Decimal>,
    /// Becomes the default link's slug (`[a-z0-9-]{3,64}`).
    pub custom_alias: Option<String>,
    /// The recruiting affiliate (sub-affiliate overrides): an Approved affiliate of your
    /// organization.
    pub recruited_by_affiliate_id: Option<Uuid>,
}

/// `PATCH /api/v1/affiliates/{id}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchAffiliateRequest {
    /// At most 200 characters; null clears.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub full_name: Option<Option<String>>,
    /// Allowed transitions: Pending to Approved, Rejected or Banned; Approved to Paused or
    /// Banned; Paused to Approved or Banned; Rejected to Approved or Banned.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = AffiliateStatusValue)]
    pub status: Option<String>,
    /// Send with `customCommissionValue`; both null clears the override.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<CommissionTypeValue>)]
    pub custom_commission_type: Option<Option<String>>,
    /// At most two decimals: a percentage 0-100, or a fixed amount 0-1,000,000.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 1000000)]
    pub custom_commission_value: Option<Option<Decimal>>,
    /// At most 5,000 characters; null clears.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 5000)]
    pub notes: Option<Option<String>>,
    /// At most 20 tags of 1-50 characters; duplicates are dropped.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<String>, max_items = 20)]
    pub tags: Option<Vec<String>>,
}

/// `POST /api/v1/affiliates/{id}/reject`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RejectRequest {
    /// At most 1,000 characters.
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
}

/// `POST /api/v1/affiliates/bulk-action`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkActionRequest {
    /// 1-200 distinct affiliate ids.
    #[schema(min_items = 1, max_items = 200)]
    pub affiliate_ids: Vec<Uuid>,
    #[schema(value_type = BulkActionValue)]
    pub action: String,
}

/// The answer of a bulk action.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkActionResponse {
    pub affected: usize,
    pub total: usize,
    #[schema(value_type = BulkActionValue)]
    pub action: &'static str,
}

/// `GET /api/v1/affiliates` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AffiliateListQuery {
    /// Page size, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub take: Option<i64>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    pub program_id: Option<Uuid>,
    #[param(value_type = Option<AffiliateStatusValue>, inline)]
    pub status: Option<String>,
    /// Case-insensitive search across email and full name (at most 200 characters).
    #[param(max_length = 200)]
    pub q: Option<String>,
}
