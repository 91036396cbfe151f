//! The bodies of the traffic endpoints.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::dto::nullable;

/// `GET /api/v1/settings/attribution-params/defaults`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttributionDefaultsResponse {
    /// The 16 canonical parameters, in priority order.
    pub defaults: Vec<&'static str>,
    pub max_custom_entries: usize,
    pub max_total_chars: usize,
    pub min_param_length: usize,
    pub max_param_length: usize,
}

/// `GET`/`PATCH /api/v1/settings/attribution-params`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttributionParamsResponse {
    /// The custom list (`a,b`), or null for defaults only.
    pub custom: Option<String>,
    pub defaults: Vec<&'static str>,
    /// Custom parameters not already defaults, then the defaults: the loader's order.
    pub effective_order: Vec<String>,
    pub max_custom_entries: usize,
    pub max_total_chars: usize,
}

/// `PATCH /api/v1/settings/attribution-params`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchAttributionParamsRequest {
    /// Comma-separated custom parameters; null or `""` clears them.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 256)]
    pub custom: Option<Option<String>>,
}

/// `GET`/`POST /api/v1/settings/pixel-key`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PixelKeyResponse {
    /// `rkp_…`, or null until provisioned. Public: it is pasted into the brand's pages.
    pub pixel_public_key: Option<String>,
}

/// `GET /api/v1/r/install-snippet` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SnippetQuery {
    /// Default: the organization's newest active program.
    pub program_id: Option<Uuid>,
    /// Include `data-rekomi-org` (the pixel key).
    pub with_pixel: Option<bool>,
}

/// `GET /api/v1/r/install-snippet`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnippetResponse {
    /// The HTML to paste before `</head>`.
    pub snippet: String,
    pub program_id: Uuid,
    pub program_slug: String,
    pub with_pixel: bool,
    pub has_custom_attribution_params: bool,
    pub custom_attribution_params: Option<String>,
}

/// `POST /api/v1/r/click`: what the loader saw.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PageClickRequest {
    /// The script tag's `data-program-id`.
    pub program_id: String,
    /// The page's `location.href`.
    #[schema(max_length = 2048)]
    pub url: String,
    /// `document.referrer`.
    #[schema(max_length = 2048)]
    pub referrer: Option<String>,
}

/// `POST /api/v1/r/click` when a click was recorded.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageClickResponse {
    /// `rkc_…`: `window.Rekomi.referral`.
    pub click_id: String,
    pub slug: String,
    pub program_id: Uuid,
    pub cookie_window_days: u16,
    /// `FirstTouch` keeps an existing cookie; `LastTouch` replaces it.
    pub attribution_model: &'static str,
}

/// `POST /api/v1/r/lead/signup`: what `Rekomi.convert()` sends.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeadSignupRequest {
    /// The referral's link slug (the loader's cookie).
    pub slug: String,
    pub email: String,
    pub name: Option<String>,
    /// Scopes the lead to one program (the loader sends its `data-program-id`).
    pub program_id: Option<String>,
    /// The referral's click (`rkc_…`, the loader's `Rekomi.referral`): a lead counts only for
    /// a stored click of the slug's affiliate inside its cookie window.
    pub click_id: Option<String>,
}

/// `POST /api/v1/r/lead/signup`: always the same, recorded or not.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpaqueOk {
    /// Always true.
    pub ok: bool,
}
