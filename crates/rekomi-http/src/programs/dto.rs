//! The programs capability's bodies: a program as answers show it, its create and PATCH
//! requests, and the value sets of its enum fields (commission type and model, attribution,
//! network visibility). Inbound adapter side of `rekomi_domain::programs`.

use rekomi_domain::programs::{AttributionModel, CommissionModel, CommissionType, NetworkVisibility, Program};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::dto::{decimal_out, nullable, present, ts, ts_opt, value_set, Decimal};

value_set!(/// `Percentage` | `Fixed`.
    CommissionTypeValue = "CommissionType", "How a commission is expressed.",
    CommissionType::ALL.iter().map(CommissionType::as_str));
value_set!(/// Every commission model, the legacy ones included.
    CommissionModelValue = "CommissionModel", "What earns a commission (`Cpa`, `RevShare` and `Hybrid` are legacy and behave like `Cps`).",
    CommissionModel::ALL.iter().map(CommissionModel::as_str));
value_set!(/// The commission models a new program may choose.
    OfferedCommissionModelValue = "OfferedCommissionModel", "What earns a commission; new programs may not choose the legacy models.",
    CommissionModel::ALL.iter().filter(|m| m.is_offered()).map(CommissionModel::as_str));
value_set!(/// `FirstTouch` | `LastTouch`.
    AttributionModelValue = "AttributionModel", "Which touch wins when several links were clicked.",
    AttributionModel::ALL.iter().map(AttributionModel::as_str));
value_set!(/// `Private` | `Networked` | `InviteOnly`.
    NetworkVisibilityValue = "NetworkVisibility", "Whether the program is listed in the affiliate network.",
    NetworkVisibility::ALL.iter().map(NetworkVisibility::as_str));

/// A program.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgramResponse {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub terms_url: Option<String>,
    pub is_active: bool,
    #[schema(value_type = CommissionTypeValue)]
    pub default_commission_type: &'static str,
    pub default_commission_value: f64,
    #[schema(value_type = CommissionModelValue)]
    pub default_commission_model: &'static str,
    pub cookie_window_days: u16,
    /// null = lifetime, 0 = first invoice only, N = first N renewals
    pub recurring_months: Option<u16>,
    pub recurring_delay_invoices: u16,
    #[schema(value_type = AttributionModelValue)]
    pub attribution_model: &'static str,
    pub auto_approve: bool,
    pub custom_domain: Option<String>,
    pub custom_domain_verified: bool,
    #[schema(value_type = NetworkVisibilityValue)]
    pub network_visibility: &'static str,
    pub is_publicly_discoverable: bool,
    pub created_at: String,
    pub updated_at: String,
    pub archived_at: Option<String>,
    /// Where Short links (`/r/{slug}`) redirect, with `via` and `rk_click` appended.
    pub landing_url: Option<String>,
}

impl From<Program> for ProgramResponse {
    fn from(p: Program) -> Self {
        Self {
            id: p.id.as_uuid(),
            name: p.name,
            slug: p.slug.as_str().to_owned(),
            description: p.description,
            terms_url: p.terms_url,
            is_active: p.is_active,
            default_commission_type: p.default_commission.kind.as_str(),
            default_commission_value: decimal_out(p.default_commission.value),
            default_commission_model: p.default_commission_model.as_str(),
            cookie_window_days: p.cookie_window_days,
            recurring_months: p.recurring_months,
            recurring_delay_invoices: p.recurring_delay_invoices,
            attribution_model: p.attribution_model.as_str(),
            auto_approve: p.auto_approve,
            custom_domain: p.custom_domain,
            custom_domain_verified: p.custom_domain_verified,
            network_visibility: p.network_visibility.as_str(),
            is_publicly_discoverable: p.is_publicly_discoverable,
            created_at: ts(p.created_at),
            updated_at: ts(p.updated_at),
            archived_at: ts_opt(p.archived_at),
            landing_url: p.landing_url.map(|u| u.as_str().to_owned()),
        }
    }
}

/// `POST /api/v1/programs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateProgramRequest {
    /// 1-200 characters.
    #[schema(max_length = 200)]
    pub name: String,
    /// `[a-z0-9-]`, 1-64 characters; derived from the name when omitted.
    pub slug: Option<String>,
    /// At most 2,000 characters.
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// An http(s) URL of at most 2,048 characters.
    #[schema(format = "uri", max_length = 2048)]
    pub terms_url: Option<String>,
    #[schema(value_type = CommissionTypeValue)]
    pub default_commission_type: String,
    /// At most two decimals: a percentage 0-100, or a fixed amount 0-1,000,000.
    #[schema(value_type = f64, minimum = 0, maximum = 1000000)]
    pub default_commission_value: Decimal,
    /// Default `Cps`.
    #[schema(value_type = Option<OfferedCommissionModelValue>)]
    pub default_commission_model: Option<String>,
    /// Default 30.
    #[schema(minimum = 1, maximum = 365)]
    pub cookie_window_days: Option<i64>,
    /// null or omitted = lifetime, 0 = first invoice only, N = the first N renewals.
    #[schema(minimum = 0, maximum = 120)]
    pub recurring_months: Option<i64>,
    /// Default 0.
    #[schema(minimum = 0, maximum = 120)]
    pub recurring_delay_invoices: Option<i64>,
    /// Default `LastTouch`.
    #[schema(value_type = Option<AttributionModelValue>)]
    pub attribution_model: Option<String>,
    pub auto_approve: Option<bool>,
    /// Default `Private`.
    #[schema(value_type = Option<NetworkVisibilityValue>)]
    pub network_visibility: Option<String>,
    pub is_publicly_discoverable: Option<bool>,
    /// The https page Short links redirect to; without one they answer
    /// `404 landing_url_not_set`.
    #[schema(format = "uri", max_length = 2048)]
    pub landing_url: Option<String>,
}

/// `PATCH /api/v1/programs/{id}`: only the keys sent change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchProgramRequest {
    /// 1-200 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, max_length = 200)]
    pub name: Option<String>,
    /// `[a-z0-9-]`, 1-64 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub slug: Option<String>,
    /// At most 2,000 characters; null clears.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub description: Option<Option<String>>,
    /// null clears.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = "uri", max_length = 2048)]
    pub terms_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub is_active: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = CommissionTypeValue)]
    pub default_commission_type: Option<String>,
    /// At most two decimals: a percentage 0-100, or a fixed amount 0-1,000,000.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = f64, minimum = 0, maximum = 1000000)]
    pub default_commission_value: Option<Decimal>,
    /// The legacy models are accepted here.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = CommissionModelValue)]
    pub default_commission_model: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = i64, minimum = 1, maximum = 365)]
    pub cookie_window_days: Option<i64>,
    /// 0 = first invoice only, N = the first N renewals; -1 or null clears the cap back to
    /// lifetime.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, minimum = -1, maximum = 120)]
    pub recurring_months: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = i64, minimum = 0, maximum = 120)]
    pub recurring_delay_invoices: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = AttributionModelValue)]
    pub attribution_model: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub auto_approve: Option<bool>,
    /// A lower-case host name such as `go.yourbrand.com`; null clears.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 253)]
    pub custom_domain: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = NetworkVisibilityValue)]
    pub network_visibility: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub is_publicly_discoverable: Option<bool>,
    /// The https page Short links redirect to; null clears.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = "uri", max_length = 2048)]
    pub landing_url: Option<Option<String>>,
}
