//! Request and response bodies: the API's camelCase JSON shapes, and their conversion into
//! domain requests and out of domain entities. Requests refuse unknown fields so a misspelled
//! key is reported instead of ignored. Enum fields are decoded as text and parsed here so an
//! unknown value answers 400 naming the field and listing the accepted values.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rekomi_domain::affiliate::{Affiliate, AffiliateLink};
use rekomi_domain::coupon::{AffiliateCoupon, CampaignCoupon};
use rekomi_domain::page::{Page, PageRequest};
use rekomi_domain::ports::gateway::{CouponDuration, DiscountSpec};
use rekomi_domain::program::{Commission, CommissionType, Hundredths, Program};
use rekomi_domain::usecases::{AffiliateView, CodeView};
use serde::{Deserialize, Deserializer, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
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
pub struct PageQuery {
    /// Page size, 1-200 (default 50).
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
    /// `Percentage` | `Fixed`
    pub default_commission_type: &'static str,
    pub default_commission_value: f64,
    /// `Cps` | `Cpc` | `Cpl` (legacy: `Cpa`, `RevShare`, `Hybrid`)
    pub default_commission_model: &'static str,
    pub cookie_window_days: u16,
    /// null = lifetime, 0 = first invoice only, N = first N renewals
    pub recurring_months: Option<u16>,
    pub recurring_delay_invoices: u16,
    /// `FirstTouch` | `LastTouch`
    pub attribution_model: &'static str,
    pub auto_approve: bool,
    pub custom_domain: Option<String>,
    pub custom_domain_verified: bool,
    /// `Private` | `Networked` | `InviteOnly`
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
    pub name: String,
    /// Derived from the name when omitted.
    pub slug: Option<String>,
    pub description: Option<String>,
    pub terms_url: Option<String>,
    pub default_commission_type: String,
    pub default_commission_value: Decimal,
    pub default_commission_model: Option<String>,
    pub cookie_window_days: Option<i64>,
    pub recurring_months: Option<i64>,
    pub recurring_delay_invoices: Option<i64>,
    pub attribution_model: Option<String>,
    pub auto_approve: Option<bool>,
    pub network_visibility: Option<String>,
    pub is_publicly_discoverable: Option<bool>,
}

/// `PATCH /api/v1/programs/{id}`: only the keys sent change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchProgramRequest {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub slug: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub terms_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub is_active: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub default_commission_type: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub default_commission_value: Option<Decimal>,
    #[serde(default, deserialize_with = "present")]
    pub default_commission_model: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub cookie_window_days: Option<i64>,
    /// -1 clears the cap back to lifetime.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub recurring_months: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub recurring_delay_invoices: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    pub attribution_model: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub auto_approve: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub custom_domain: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub network_visibility: Option<String>,
    #[serde(default, deserialize_with = "present")]
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
    /// `Short` | `Query` | `Path` | `Hash`
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
    /// `Pending` | `Approved` | `Rejected` | `Paused` | `Banned`
    pub status: &'static str,
    pub custom_commission_type: Option<&'static str>,
    pub custom_commission_value: Option<f64>,
    pub tags: Vec<String>,
    pub notes: Option<String>,
    /// `Direct` | `Public` | `Invite` | `Network`
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
    pub email: String,
    pub full_name: Option<String>,
    /// `Approved` (default) or `Pending`.
    pub status: Option<String>,
    pub custom_commission_type: Option<String>,
    pub custom_commission_value: Option<Decimal>,
    /// Becomes the default link's slug (`[a-z0-9-]{3,64}`).
    pub custom_alias: Option<String>,
    /// The recruiting affiliate (sub-affiliate overrides); ignored unless an Approved affiliate
    /// of your organization.
    pub recruited_by_affiliate_id: Option<Uuid>,
}

/// `PATCH /api/v1/affiliates/{id}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchAffiliateRequest {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub full_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub status: Option<String>,
    /// Send with `customCommissionValue`; both null clears the override.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub custom_commission_type: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>)]
    pub custom_commission_value: Option<Option<Decimal>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub tags: Option<Vec<String>>,
}

/// `POST /api/v1/affiliates/{id}/reject`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RejectRequest {
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
    /// 1-200 affiliate ids.
    pub affiliate_ids: Vec<Uuid>,
    /// `approve` | `pause` | `delete`
    pub action: String,
}

/// The answer of a bulk action.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkActionResponse {
    pub affected: usize,
    pub total: usize,
    pub action: &'static str,
}

/// `GET /api/v1/affiliates` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AffiliateListQuery {
    pub take: Option<i64>,
    pub cursor: Option<String>,
    pub program_id: Option<Uuid>,
    /// `Pending` | `Approved` | `Rejected` | `Paused` | `Banned`
    pub status: Option<String>,
    /// Case-insensitive search across email and full name.
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
    /// `PercentOff` | `AmountOff`
    pub discount_type: &'static str,
    /// A percentage (1-100) or an amount in cents.
    pub discount_value: i64,
    pub discount_currency: Option<&'static str>,
    /// `Once` | `Repeating` | `Forever`
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
    pub name: String,
    /// `PercentOff` | `AmountOff`
    pub discount_type: String,
    pub discount_value: i64,
    pub discount_currency: Option<String>,
    /// `Once` | `Repeating` | `Forever`
    pub duration: String,
    pub duration_in_months: Option<i64>,
    pub max_redemptions_per_code: Option<i64>,
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
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub allow_affiliate_self_mint: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub overrides_click_attribution: Option<bool>,
}

/// `POST /api/v1/affiliates/{affiliateId}/coupons`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAffiliateCouponRequest {
    pub campaign_coupon_id: Uuid,
    /// `^[A-Z0-9_-]{3,32}$` after upper-casing; generated (8 characters) when null.
    pub code: Option<String>,
    pub max_redemptions: Option<i64>,
    pub expires_at: Option<String>,
    pub first_time_order: Option<bool>,
    pub minimum_amount: Option<i64>,
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

/// `GET /api/v1/promotional-codes`: exactly one selector.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromoCodeQueryParams {
    pub id: Option<String>,
    pub code: Option<String>,
    pub external_id: Option<String>,
    pub coupon_id: Option<String>,
    pub affiliate_id: Option<String>,
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
    pub plan_tier: &'static str,
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
    pub plan_tier: &'static str,
    pub subscription_status: &'static str,
    pub trial_ends_at: Option<String>,
    pub interval: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub stripe_customer_linked: bool,
    pub stripe_connect_linked: bool,
    pub limits: Limits,
}

/// The error envelope of every 4xx and 5xx answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable error code, e.g. `validation_failed`, `code_already_taken`.
    pub error: String,
    /// A human-readable explanation.
    pub message: String,
    /// The request field at fault, when one is.
    pub field: Option<String>,
}
