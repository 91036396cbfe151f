//! The coupons capability's bodies: campaign coupons, affiliate coupons (promotion codes) with
//! their owner, the promotional-code lookup's query and answer, self-mint, and the value sets
//! of the discount fields. Inbound adapter side of `rekomi_domain::coupons`.

use rekomi_domain::affiliates::Affiliate;
use rekomi_domain::coupons::{AffiliateCoupon, CampaignCoupon, CodeView, CouponDuration, DiscountSpec, DiscountType, DurationKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::affiliates::dto::AffiliateStatusValue;
use crate::dto::{present, ts, ts_opt, value_set, CurrencyValue};

value_set!(/// `PercentOff` | `AmountOff`.
    DiscountTypeValue = "DiscountType", "The kind of discount.",
    DiscountType::ALL.iter().map(DiscountType::as_str));
value_set!(/// `Once` | `Repeating` | `Forever`.
    DurationValue = "CouponDuration", "How long the discount applies.",
    DurationKind::ALL.iter().map(DurationKind::as_str));

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
            stripe_coupon_id: c.stripe_coupon_id.map(|id| id.as_str().to_owned()),
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
            external_id: stripe_promotion_code_id.as_ref().map(|id| id.as_str().to_owned()),
            stripe_promotion_code_id: stripe_promotion_code_id.map(|id| id.as_str().to_owned()),
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
            customer_id: restrictions.customer_id.map(|id| id.as_str().to_owned()),
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
