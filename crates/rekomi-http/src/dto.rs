//! Request and response bodies: the API's camelCase JSON shapes, and their conversion into
//! domain requests and out of domain entities. Requests refuse unknown fields so a misspelled
//! key is reported instead of ignored. Enum fields are decoded as text and parsed here so an
//! unknown value answers 400 naming the field and listing the accepted values.

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rekomi_domain::affiliate::{Affiliate, AffiliateLink, AffiliateSource, AffiliateStatus, LinkFormat};
use rekomi_domain::conversion::{ConversionStatus, ConversionType, LedgerKind};
use rekomi_domain::coupon::{AffiliateCoupon, CampaignCoupon, DiscountType, DurationKind};
use rekomi_domain::inbox::InboxStatus;
use rekomi_domain::money::SUPPORTED_CURRENCIES;
use rekomi_domain::outbound::{DeliveryStatus, EndpointStatus};
use rekomi_domain::page::{Page, PageRequest};
use rekomi_domain::plan::{PlanTier, SubscriptionStatus};
use rekomi_domain::ports::gateway::{CouponDuration, DiscountSpec};
use rekomi_domain::program::{AttributionModel, Commission, CommissionModel, CommissionType, Hundredths, NetworkVisibility, Program};
use rekomi_domain::usecases::{AffiliateView, BulkAction, CodeView};
use serde::{Deserialize, Deserializer, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

// ---- shared -----------------------------------------------------------------------------

/// Formats a timestamp as RFC 3339 in UTC with whole seconds (`2026-05-01T12:00:00Z`).
pub fn ts(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())
}

/// [`ts`] for optional timestamps.
pub fn ts_opt(t: Option<OffsetDateTime>) -> Option<String> {
    t.map(ts)
}

/// Parses an RFC 3339 timestamp request field.
///
/// # Errors
/// 400 naming `field`.
pub fn parse_ts(field: &str, raw: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    raw.map(|s| {
        OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|_| ApiError::invalid(field, format!("{field} must be an RFC 3339 timestamp such as 2026-12-31T23:59:59Z")))
    })
    .transpose()
}

/// Deserializes an optional field that must not be `null` when present (PATCH fields that
/// cannot be cleared): absent is `None`, `null` is a type error naming the field.
pub fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Deserializes a field that distinguishes "absent" (`None`) from "null" (`Some(None)`).
pub fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Parses an enum field from its exact API name.
///
/// # Errors
/// 400 naming `field` and listing the accepted values.
pub fn enum_field<T: Copy>(
    field: &str,
    raw: &str,
    parse: fn(&str) -> Option<T>,
    all: &[T],
    name: fn(&T) -> &'static str,
) -> Result<T, ApiError> {
    parse(raw).ok_or_else(|| {
        let accepted: Vec<&str> = all.iter().map(name).collect();
        ApiError::invalid(field, format!("{field} must be one of {}", accepted.join(", ")))
    })
}

// ---- value sets of the OpenAPI document -------------------------------------------------

/// A string schema accepting exactly `values`.
fn string_enum(description: &str, values: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values)).description(Some(description)).into()
}

/// Declares a schema type for a text field that takes one of a fixed set of values. Enum fields
/// are decoded as text and parsed (so an unknown value answers 400 naming the field); these
/// types only give the document their values, taken from the domain so the two cannot drift.
macro_rules! value_set {
    ($(#[$doc:meta])* $ty:ident = $name:literal, $description:literal, $values:expr) => {
        $(#[$doc])*
        pub struct $ty;

        impl utoipa::PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                string_enum($description, $values)
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

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
value_set!(/// `PercentOff` | `AmountOff`.
    DiscountTypeValue = "DiscountType", "The kind of discount.",
    DiscountType::ALL.iter().map(DiscountType::as_str));
value_set!(/// `Once` | `Repeating` | `Forever`.
    DurationValue = "CouponDuration", "How long the discount applies.",
    DurationKind::ALL.iter().map(DurationKind::as_str));
value_set!(/// A supported ISO 4217 code, as answers show it.
    CurrencyValue = "Currency", "An ISO 4217 currency code from the supported list.",
    SUPPORTED_CURRENCIES.iter().copied());
value_set!(/// A conversion's status.
    ConversionStatusValue = "ConversionStatus", "Where a conversion stands.",
    ConversionStatus::ALL.iter().map(ConversionStatus::as_str));
value_set!(/// What a conversion credits.
    ConversionTypeValue = "ConversionType", "What was credited.",
    ConversionType::ALL.iter().map(ConversionType::as_str));
value_set!(/// A ledger entry's kind.
    LedgerKindValue = "LedgerEventType", "What a ledger entry records.",
    [LedgerKind::Initial, LedgerKind::Renewal, LedgerKind::Refund, LedgerKind::Adjustment].iter().map(LedgerKind::as_str));
value_set!(/// An inbound Stripe event's status.
    InboxStatusValue = "StripeEventStatus", "Where an inbound Stripe event stands.",
    InboxStatus::ALL.iter().map(InboxStatus::as_str));
value_set!(/// A webhook endpoint's status.
    EndpointStatusValue = "WebhookEndpointStatus", "Whether an endpoint receives deliveries.",
    EndpointStatus::ALL.iter().map(EndpointStatus::as_str));
value_set!(/// A delivery's status.
    DeliveryStatusValue = "DeliveryStatus", "Where a delivery stands.",
    DeliveryStatus::ALL.iter().map(DeliveryStatus::as_str));
value_set!(/// A plan tier.
    PlanTierValue = "PlanTier", "A plan tier, lowest first.",
    [PlanTier::Trial, PlanTier::Starter, PlanTier::Growth, PlanTier::Pro].iter().map(PlanTier::as_str));
value_set!(/// A subscription status.
    SubscriptionStatusValue = "SubscriptionStatus", "The state of the organization's Rekomi subscription.",
    [
        SubscriptionStatus::None,
        SubscriptionStatus::Trialing,
        SubscriptionStatus::Active,
        SubscriptionStatus::PastDue,
        SubscriptionStatus::Canceled
    ]
    .iter()
    .map(SubscriptionStatus::as_str));

/// A JSON number kept as the exact text the client sent, for two-place values such as 20.5:
/// it never passes through a float, and `1e1` or `"20"` are refused as what they are.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(value_type = f64)]
pub struct Decimal(Box<serde_json::value::RawValue>);

impl Decimal {
    /// The value in hundredths.
    ///
    /// # Errors
    /// 400 naming `field` for anything but a non-negative number with at most two decimals.
    pub fn hundredths(&self, field: &str) -> Result<Hundredths, ApiError> {
        Ok(Hundredths::parse_decimal(field, self.0.get().trim())?)
    }
}

fn decimal_out(h: Hundredths) -> f64 {
    h.get() as f64 / 100.0
}

/// A cursor-paginated list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// Whether another page exists.
    pub has_more: bool,
}

impl<T> ListResponse<T> {
    /// Builds the envelope from a domain page.
    pub fn from_page<U>(page: Page<U>, f: impl FnMut(U) -> T) -> Self {
        let next_cursor = page.next_after.map(encode_cursor);
        let has_more = next_cursor.is_some();
        Self { items: page.items.into_iter().map(f).collect(), next_cursor, has_more }
    }
}

#[derive(Serialize, Deserialize)]
struct CursorBody {
    id: Uuid,
}

/// Encodes an opaque cursor (`base64url({"id":"…"})`).
pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&CursorBody { id }).unwrap_or_default())
}

/// Builds a page request from `take` and `cursor` query values.
///
/// # Errors
/// 400 naming `take` or `cursor`.
pub fn page_request(take: Option<i64>, cursor: Option<&str>) -> Result<PageRequest, ApiError> {
    let after = cursor
        .filter(|c| !c.is_empty())
        .map(|c| {
            URL_SAFE_NO_PAD
                .decode(c.trim_end_matches('='))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<CursorBody>(&bytes).ok())
                .map(|b| b.id)
                .ok_or_else(|| ApiError::invalid("cursor", "cursor is not a value returned as nextCursor"))
        })
        .transpose()?;
    PageRequest::parse(take, after).map_err(|e| ApiError::invalid("take", e.to_string()))
}

/// `take` and `cursor`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub take: Option<i64>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

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

// ---- programs ---------------------------------------------------------------------------

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
}

// ---- affiliates -------------------------------------------------------------------------

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

/// `POST /api/v1/affiliates/{id}/approve` takes `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

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

// ---- coupons ----------------------------------------------------------------------------

/// A campaign coupon.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignCouponResponse {
    pub id: Uuid,
    pub program_id: Uuid,
    pub name: String,
    #[schema(value_type = DiscountTypeValue)]
    pub discount_type: &'static str,
    /// A percentage (1-100) or an amount in cents.
    pub discount_value: i64,
    #[schema(value_type = Option<CurrencyValue>)]
    pub discount_currency: Option<&'static str>,
    #[schema(value_type = DurationValue)]
    pub duration: &'static str,
    pub duration_in_months: Option<u8>,
    pub max_redemptions_per_code: Option<u32>,
    pub expires_at: Option<String>,
    pub allow_affiliate_self_mint: bool,
    pub overrides_click_attribution: bool,
    pub is_active: bool,
    pub stripe_coupon_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub archived_at: Option<String>,
}

impl From<CampaignCoupon> for CampaignCouponResponse {
    fn from(c: CampaignCoupon) -> Self {
        let (discount_type, discount_value, discount_currency) = match c.discount {
            DiscountSpec::PercentOff(p) => ("PercentOff", i64::from(p), None),
            DiscountSpec::AmountOff(m) => ("AmountOff", m.minor(), Some(m.currency().code())),
        };
        let (duration, duration_in_months) = match c.duration {
            CouponDuration::Once => ("Once", None),
            CouponDuration::Repeating(m) => ("Repeating", Some(m)),
            CouponDuration::Forever => ("Forever", None),
        };
        Self {
            id: c.id.as_uuid(),
            program_id: c.program_id.as_uuid(),
            name: c.name,
            discount_type,
            discount_value,
            discount_currency,
            duration,
            duration_in_months,
            max_redemptions_per_code: c.max_redemptions_per_code,
            expires_at: ts_opt(c.expires_at),
            allow_affiliate_self_mint: c.allow_affiliate_self_mint,
            overrides_click_attribution: c.overrides_click_attribution,
            is_active: c.is_active,
            stripe_coupon_id: c.stripe_coupon_id,
            created_at: ts(c.created_at),
            updated_at: ts(c.updated_at),
            archived_at: ts_opt(c.archived_at),
        }
    }
}

/// `POST /api/v1/campaigns/{programId}/coupons`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCampaignCouponRequest {
    /// 1-200 characters (Stripe gets the first 40).
    #[schema(max_length = 200)]
    pub name: String,
    #[schema(value_type = DiscountTypeValue)]
    pub discount_type: String,
    /// `PercentOff`: a whole percentage 1-100; `AmountOff`: an amount in minor units.
    #[schema(minimum = 1, maximum = 99999999)]
    pub discount_value: i64,
    /// Required for `AmountOff`, null for `PercentOff`: an ISO 4217 code from the supported
    /// list (case-insensitive).
    pub discount_currency: Option<String>,
    #[schema(value_type = DurationValue)]
    pub duration: String,
    /// Only, and required, for `Repeating`.
    #[schema(minimum = 1, maximum = 94)]
    pub duration_in_months: Option<i64>,
    #[schema(minimum = 1, maximum = 4294967295_i64)]
    pub max_redemptions_per_code: Option<i64>,
    /// In the future (RFC 3339).
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    pub allow_affiliate_self_mint: Option<bool>,
    /// Default true.
    pub overrides_click_attribution: Option<bool>,
}

/// `PATCH /api/v1/campaigns/{programId}/coupons/{id}`: only these three fields; the discount
/// is immutable.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchCampaignCouponRequest {
    /// 1-200 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, max_length = 200)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub allow_affiliate_self_mint: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub overrides_click_attribution: Option<bool>,
}

/// `POST /api/v1/affiliates/{affiliateId}/coupons`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAffiliateCouponRequest {
    pub campaign_coupon_id: Uuid,
    /// `^[A-Z0-9_-]{3,32}$` after upper-casing; generated (8 characters) when null.
    #[schema(pattern = "^[A-Za-z0-9_-]{3,32}$")]
    pub code: Option<String>,
    /// At most the campaign coupon's `maxRedemptionsPerCode` (its default).
    #[schema(minimum = 1, maximum = 4294967295_i64)]
    pub max_redemptions: Option<i64>,
    /// In the future and not after the campaign coupon's `expiresAt` (its default).
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    pub first_time_order: Option<bool>,
    /// In minor units; send with `minimumAmountCurrency`.
    #[schema(minimum = 1, maximum = 99999999)]
    pub minimum_amount: Option<i64>,
    /// An ISO 4217 code from the supported list (case-insensitive).
    pub minimum_amount_currency: Option<String>,
    pub limit_to_customers: Option<bool>,
    pub customer_id: Option<String>,
    pub limit_to_affiliate: Option<bool>,
}

/// `POST /api/me/coupons/mint`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SelfMintRequest {
    pub campaign_coupon_id: Uuid,
    /// `^[A-Z0-9_-]{3,32}$` after upper-casing.
    #[schema(pattern = "^[A-Za-z0-9_-]{3,32}$")]
    pub code: String,
}

/// The owner of a code, as embedded in code responses.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AffiliateSummary {
    pub id: Uuid,
    pub program_id: Uuid,
    pub email: String,
    pub full_name: Option<String>,
    #[schema(value_type = AffiliateStatusValue)]
    pub status: &'static str,
}

impl From<&Affiliate> for AffiliateSummary {
    fn from(a: &Affiliate) -> Self {
        Self {
            id: a.id.as_uuid(),
            program_id: a.program_id.as_uuid(),
            email: a.email.as_str().to_owned(),
            full_name: a.full_name.clone(),
            status: a.status.as_str(),
        }
    }
}

/// An affiliate coupon (promotional code), with the promotional-codes document's field
/// names and the coupon-tracking names (`stripePromotionCodeId`, `redemptionCount`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AffiliateCouponResponse {
    pub id: Uuid,
    pub code: String,
    /// The parent campaign coupon.
    pub coupon_id: Uuid,
    pub campaign_coupon_id: Uuid,
    pub program_id: Uuid,
    pub affiliate_id: Uuid,
    /// The Stripe promotion code id.
    pub external_id: Option<String>,
    pub stripe_promotion_code_id: Option<String>,
    pub is_active: bool,
    pub expires_at: Option<String>,
    pub max_redemptions: Option<u32>,
    pub times_redeemed: i64,
    pub redemption_count: i64,
    pub last_redeemed_at: Option<String>,
    pub first_time_order: bool,
    pub minimum_amount: Option<i64>,
    #[schema(value_type = Option<CurrencyValue>)]
    pub minimum_amount_currency: Option<&'static str>,
    pub limit_to_customers: bool,
    pub customer_id: Option<String>,
    pub limit_to_affiliate: bool,
    pub is_auto_generated: bool,
    pub created_at: String,
    pub updated_at: String,
    pub revoked_at: Option<String>,
    pub coupon: CampaignCouponResponse,
    pub affiliate: AffiliateSummary,
}

impl From<CodeView> for AffiliateCouponResponse {
    fn from(v: CodeView) -> Self {
        let AffiliateCoupon {
            id,
            code,
            campaign_coupon_id,
            program_id,
            affiliate_id,
            stripe_promotion_code_id,
            is_active,
            expires_at,
            max_redemptions,
            restrictions,
            times_redeemed,
            last_redeemed_at,
            is_auto_generated,
            created_at,
            updated_at,
            revoked_at,
            ..
        } = v.coupon;
        Self {
            id: id.as_uuid(),
            code: code.as_str().to_owned(),
            coupon_id: campaign_coupon_id.as_uuid(),
            campaign_coupon_id: campaign_coupon_id.as_uuid(),
            program_id: program_id.as_uuid(),
            affiliate_id: affiliate_id.as_uuid(),
            external_id: stripe_promotion_code_id.clone(),
            stripe_promotion_code_id,
            is_active,
            expires_at: ts_opt(expires_at),
            max_redemptions,
            times_redeemed,
            redemption_count: times_redeemed,
            last_redeemed_at: ts_opt(last_redeemed_at),
            first_time_order: restrictions.first_time_order,
            minimum_amount: restrictions.minimum_amount.map(|m| m.minor()),
            minimum_amount_currency: restrictions.minimum_amount.map(|m| m.currency().code()),
            limit_to_customers: restrictions.limit_to_customers,
            customer_id: restrictions.customer_id,
            limit_to_affiliate: restrictions.limit_to_affiliate,
            is_auto_generated,
            created_at: ts(created_at),
            updated_at: ts(updated_at),
            revoked_at: ts_opt(revoked_at),
            affiliate: AffiliateSummary::from(&v.affiliate),
            coupon: v.campaign.into(),
        }
    }
}

/// The answer of `GET /api/v1/promotional-codes`: one code for `id`, `code` and `externalId`,
/// a list for the other selectors.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum PromoCodeLookupResponse {
    One(Box<AffiliateCouponResponse>),
    Many(Vec<AffiliateCouponResponse>),
}

/// `GET /api/v1/promotional-codes`: exactly one selector.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PromoCodeQueryParams {
    /// An affiliate coupon id (one object).
    #[param(value_type = Option<Uuid>)]
    pub id: Option<String>,
    /// The code, case-insensitive (one object).
    #[param(pattern = "^[A-Za-z0-9_-]{3,32}$")]
    pub code: Option<String>,
    /// The Stripe promotion code id, 1-255 characters (one object).
    #[param(min_length = 1, max_length = 255)]
    pub external_id: Option<String>,
    /// A campaign coupon id (an array).
    #[param(value_type = Option<Uuid>)]
    pub coupon_id: Option<String>,
    /// An affiliate id (an array).
    #[param(value_type = Option<Uuid>)]
    pub affiliate_id: Option<String>,
    /// An affiliate's email (an array).
    #[param(format = Email)]
    pub affiliate_email: Option<String>,
}

// ---- organization -----------------------------------------------------------------------

/// `GET /api/organizations/me`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationResponse {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub billing_email: Option<String>,
    pub timezone: String,
    pub primary_brand_color: Option<String>,
    pub logo_url: Option<String>,
    pub description: Option<String>,
    pub white_label_enabled: bool,
    #[schema(value_type = PlanTierValue)]
    pub plan_tier: &'static str,
    #[schema(value_type = SubscriptionStatusValue)]
    pub subscription_status: &'static str,
    pub trial_ends_at: Option<String>,
    pub payout_grace_days: u16,
    pub payout_grace_days_max: u16,
}

/// One usage counter.
#[derive(Debug, Serialize, ToSchema)]
pub struct Limit {
    pub current: i64,
    pub max: Option<i64>,
}

/// The plan-limits snapshot.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub affiliates: Limit,
    pub campaigns: Limit,
}

/// `GET /api/billing/state`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingStateResponse {
    #[schema(value_type = PlanTierValue)]
    pub plan_tier: &'static str,
    #[schema(value_type = SubscriptionStatusValue)]
    pub subscription_status: &'static str,
    pub trial_ends_at: Option<String>,
    pub interval: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub stripe_customer_linked: bool,
    pub stripe_connect_linked: bool,
    pub limits: Limits,
}

/// The answer to a stored Stripe event.
#[derive(Debug, Serialize, ToSchema)]
pub struct StripeReceiptResponse {
    /// Always true.
    pub received: bool,
    /// The Stripe event id (`evt_…`).
    pub id: String,
    /// Whether the event had been stored before.
    pub duplicate: bool,
}

/// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok` (liveness) or `ready` (readiness).
    pub status: String,
}

/// The error envelope of every 4xx and 5xx answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable error code, e.g. `validation_failed`, `code_already_taken`.
    pub error: String,
    /// A human-readable explanation.
    pub message: String,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub field: Option<String>,
}

/// The envelope of `402 plan_tier_required`: the error envelope with the plan that passes the
/// gate and the organization's own.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanRequiredBody {
    /// `plan_tier_required`.
    pub error: String,
    /// A human-readable explanation.
    pub message: String,
    /// The lowest plan that passes the gate.
    #[schema(value_type = PlanTierValue)]
    pub required: &'static str,
    /// The organization's plan.
    #[schema(value_type = PlanTierValue)]
    pub current: &'static str,
    /// Whether the organization is in a trial.
    pub trialing: bool,
}
