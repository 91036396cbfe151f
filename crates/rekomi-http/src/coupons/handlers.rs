//! The coupon handlers: campaign coupons, affiliate coupons, the promotional-code lookup (and
//! the conversion of its selectors into the domain's query) and affiliate self-mint.

use actix_web::{web, HttpResponse};
use rekomi_domain::affiliates::Email;
use rekomi_domain::coupons::{
    AffiliateCouponInput, CampaignCouponInput, CampaignCouponPatch, CouponCode, DiscountType, DurationKind, PromoCodeQuery, PromoCodeResult,
};
use rekomi_domain::kernel::ids::{AffiliateCouponId, AffiliateId, CampaignCouponId, ProgramId};
use rekomi_domain::kernel::stripe_ids::StripePromotionCodeId;

use super::dto::{
    AffiliateCouponResponse, CampaignCouponResponse, CreateAffiliateCouponRequest, CreateCampaignCouponRequest, PatchCampaignCouponRequest,
    PromoCodeLookupResponse, PromoCodeQueryParams, SelfMintRequest,
};
use crate::auth::{AffiliateAuth, Brand};
use crate::dto::{enum_field, page_request, parse_ts, EmptyRequest, ListResponse, PageQuery};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Json, OptionalJson, Query};
use crate::AppState;

fn campaign_path(path: &(String, String)) -> Result<(ProgramId, CampaignCouponId), ApiError> {
    Ok((parse_id(&path.0, "programId")?, parse_id(&path.1, "id")?))
}

/// Create a campaign coupon (and its Stripe coupon).
#[utoipa::path(post, path = "/api/v1/campaigns/{programId}/coupons", tag = "Coupons", request_body = CreateCampaignCouponRequest,
    params(("programId" = Uuid, Path, description = "The program id")),
    responses((status = 201, body = CampaignCouponResponse),
        (status = 400, description = "`unsupported_currency`: a `discountCurrency` off the supported list"),
        (status = 402, description = "`plan_tier_required`: API keys need Growth+"),
        (status = 404, description = "`program_not_found`"),
        (status = 409, description = "`program_archived`"),
        (status = 422, description = "`payment_provider_rejected`: Stripe refused the request"),
        (status = 502, description = "`stripe_request_failed`: Stripe does not know the referenced object"),
        (status = 503, description = "`stripe_unavailable`: Stripe is unreachable; retrying the same request finishes it")),
    security(("bearer" = [])))]
pub async fn create_campaign(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<String>,
    Json(body): Json<CreateCampaignCouponRequest>,
) -> ApiResult<HttpResponse> {
    let body = body?;
    let program_id: ProgramId = parse_id(&path, "programId")?;
    let input = CampaignCouponInput {
        name: body.name,
        discount_type: enum_field("discountType", &body.discount_type, DiscountType::parse, DiscountType::ALL, DiscountType::as_str)?,
        discount_value: body.discount_value,
        discount_currency: body.discount_currency,
        duration: enum_field("duration", &body.duration, DurationKind::parse, DurationKind::ALL, DurationKind::as_str)?,
        duration_in_months: body.duration_in_months,
        max_redemptions_per_code: body.max_redemptions_per_code,
        expires_at: parse_ts("expiresAt", body.expires_at.as_deref())?,
        allow_affiliate_self_mint: body.allow_affiliate_self_mint,
        overrides_click_attribution: body.overrides_click_attribution,
    };
    let coupon = state.services.create_campaign_coupon(&ctx, program_id, input).await?;
    Ok(HttpResponse::Created().json(CampaignCouponResponse::from(coupon)))
}

/// List a program's campaign coupons.
#[utoipa::path(get, path = "/api/v1/campaigns/{programId}/coupons", tag = "Coupons",
    params(("programId" = Uuid, Path, description = "The program id"), PageQuery),
    responses((status = 200, body = ListResponse<CampaignCouponResponse>),
        (status = 402, description = "`plan_tier_required`: API keys need Growth+"),
        (status = 404, description = "`program_not_found`")),
    security(("bearer" = [])))]
pub async fn list_campaign(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let q = q?;
    let program_id: ProgramId = parse_id(&path, "programId")?;
    let page = page_request(q.take, q.cursor.as_deref())?;
    let coupons = state.services.list_campaign_coupons(&ctx, program_id, page).await?;
    Ok(HttpResponse::Ok().json(ListResponse::from_page(coupons, CampaignCouponResponse::from)))
}

/// Get a campaign coupon.
#[utoipa::path(get, path = "/api/v1/campaigns/{programId}/coupons/{id}", tag = "Coupons",
    params(("programId" = Uuid, Path, description = "The program id"), ("id" = Uuid, Path, description = "The campaign coupon id")),
    responses((status = 200, body = CampaignCouponResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Growth+"),
        (status = 404, description = "`campaign_coupon_not_found`")),
    security(("bearer" = [])))]
pub async fn get_campaign(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<(String, String)>) -> ApiResult<HttpResponse> {
    let (program_id, id) = campaign_path(&path)?;
    Ok(HttpResponse::Ok().json(CampaignCouponResponse::from(state.services.get_campaign_coupon(&ctx, program_id, id).await?)))
}

/// Rename a campaign coupon or flip its toggles (the discount is immutable).
#[utoipa::path(patch, path = "/api/v1/campaigns/{programId}/coupons/{id}", tag = "Coupons", request_body = PatchCampaignCouponRequest,
    params(("programId" = Uuid, Path, description = "The program id"), ("id" = Uuid, Path, description = "The campaign coupon id")),
    responses((status = 200, body = CampaignCouponResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Growth+"),
        (status = 404, description = "`campaign_coupon_not_found`")),
    security(("bearer" = [])))]
pub async fn update_campaign(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<(String, String)>,
    Json(body): Json<PatchCampaignCouponRequest>,
) -> ApiResult<HttpResponse> {
    let body = body?;
    let (program_id, id) = campaign_path(&path)?;
    let patch = CampaignCouponPatch {
        name: body.name,
        allow_affiliate_self_mint: body.allow_affiliate_self_mint,
        overrides_click_attribution: body.overrides_click_attribution,
    };
    Ok(HttpResponse::Ok().json(CampaignCouponResponse::from(state.services.update_campaign_coupon(&ctx, program_id, id, patch).await?)))
}

/// Archive a campaign coupon: deactivates every child promotion code in Stripe.
#[utoipa::path(post, path = "/api/v1/campaigns/{programId}/coupons/{id}/archive", tag = "Coupons",
    request_body(content = Option<EmptyRequest>, description = "`{}` or nothing"),
    params(("programId" = Uuid, Path, description = "The program id"), ("id" = Uuid, Path, description = "The campaign coupon id")),
    responses((status = 200, body = CampaignCouponResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Growth+"),
        (status = 404, description = "`campaign_coupon_not_found`"),
        (status = 422, description = "`payment_provider_rejected`: Stripe refused to deactivate a code"),
        (status = 503, description = "`stripe_unavailable`: archived, but some codes are still active at Stripe; archive again")),
    security(("bearer" = [])))]
pub async fn archive_campaign(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<(String, String)>,
    _body: OptionalJson<EmptyRequest>,
) -> ApiResult<HttpResponse> {
    _body.0?;
    let (program_id, id) = campaign_path(&path)?;
    Ok(HttpResponse::Ok().json(CampaignCouponResponse::from(state.services.archive_campaign_coupon(&ctx, program_id, id).await?)))
}

/// Delete a campaign coupon that has no affiliate codes.
#[utoipa::path(delete, path = "/api/v1/campaigns/{programId}/coupons/{id}", tag = "Coupons",
    params(("programId" = Uuid, Path, description = "The program id"), ("id" = Uuid, Path, description = "The campaign coupon id")),
    responses((status = 204, description = "Deleted, with its Stripe coupon"),
        (status = 402, description = "`plan_tier_required`: API keys need Growth+"),
        (status = 404, description = "`campaign_coupon_not_found`"),
        (status = 409, description = "`coupon_has_codes`: archive it instead"),
        (status = 422, description = "`payment_provider_rejected`: Stripe refused to delete the coupon"),
        (status = 503, description = "`stripe_unavailable`: deactivated, but the Stripe coupon still exists; delete again")),
    security(("bearer" = [])))]
pub async fn delete_campaign(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<(String, String)>) -> ApiResult<HttpResponse> {
    let (program_id, id) = campaign_path(&path)?;
    state.services.delete_campaign_coupon(&ctx, program_id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Create an affiliate coupon (a Stripe promotion code).
#[utoipa::path(post, path = "/api/v1/affiliates/{affiliateId}/coupons", tag = "Coupons", request_body = CreateAffiliateCouponRequest,
    params(("affiliateId" = Uuid, Path, description = "The affiliate id")),
    responses((status = 201, body = AffiliateCouponResponse),
        (status = 400, description = "`unsupported_currency`: a `minimumAmountCurrency` off the supported list"),
        (status = 402, description = "`plan_tier_required`: API keys need Growth+"),
        (status = 404, description = "`affiliate_not_found`; `campaign_coupon_not_found`"),
        (status = 409, description = "`affiliate_not_eligible`; `campaign_coupon_inactive`; `program_archived`; `code_generation_failed`"),
        (status = 422, description = "`code_already_taken`; `program_mismatch`; `payment_provider_rejected`: Stripe refused the request"),
        (status = 502, description = "`stripe_request_failed`: Stripe does not know the referenced object"),
        (status = 503, description = "`stripe_unavailable`: Stripe is unreachable; retrying the same code finishes it")),
    security(("bearer" = [])))]
pub async fn create_affiliate(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<String>,
    Json(body): Json<CreateAffiliateCouponRequest>,
) -> ApiResult<HttpResponse> {
    let body = body?;
    let affiliate_id: AffiliateId = parse_id(&path, "affiliateId")?;
    let input = AffiliateCouponInput {
        code: body.code,
        max_redemptions: body.max_redemptions,
        expires_at: parse_ts("expiresAt", body.expires_at.as_deref())?,
        first_time_order: body.first_time_order,
        minimum_amount: body.minimum_amount,
        minimum_amount_currency: body.minimum_amount_currency,
        limit_to_customers: body.limit_to_customers,
        customer_id: body.customer_id,
        limit_to_affiliate: body.limit_to_affiliate,
    };
    let view =
        state.services.create_affiliate_coupon(&ctx, affiliate_id, CampaignCouponId::from_uuid(body.campaign_coupon_id), input).await?;
    Ok(HttpResponse::Created().json(AffiliateCouponResponse::from(view)))
}

/// List an affiliate's coupons.
#[utoipa::path(get, path = "/api/v1/affiliates/{affiliateId}/coupons", tag = "Coupons",
    params(("affiliateId" = Uuid, Path, description = "The affiliate id"), PageQuery),
    responses((status = 200, body = ListResponse<AffiliateCouponResponse>),
        (status = 402, description = "`plan_tier_required`: API keys need Growth+"),
        (status = 404, description = "`affiliate_not_found`")),
    security(("bearer" = [])))]
pub async fn list_affiliate(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let q = q?;
    let affiliate_id: AffiliateId = parse_id(&path, "affiliateId")?;
    let page = page_request(q.take, q.cursor.as_deref())?;
    let codes = state.services.list_affiliate_coupons(&ctx, affiliate_id, page).await?;
    Ok(HttpResponse::Ok().json(ListResponse::from_page(codes, AffiliateCouponResponse::from)))
}

/// Revoke an affiliate coupon (deactivates it in Stripe).
#[utoipa::path(delete, path = "/api/v1/affiliates/{affiliateId}/coupons/{id}", tag = "Coupons",
    params(("affiliateId" = Uuid, Path, description = "The affiliate id"), ("id" = Uuid, Path, description = "The affiliate coupon id")),
    responses((status = 204, description = "Revoked (or already revoked)"),
        (status = 402, description = "`plan_tier_required`: API keys need Growth+"),
        (status = 404, description = "`promotional_code_not_found`"),
        (status = 422, description = "`payment_provider_rejected`: Stripe refused to deactivate the code"),
        (status = 503, description = "`stripe_unavailable`: the code is still active at Stripe; revoke again")),
    security(("bearer" = [])))]
pub async fn revoke_affiliate(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<(String, String)>) -> ApiResult<HttpResponse> {
    let affiliate_id: AffiliateId = parse_id(&path.0, "affiliateId")?;
    let id: AffiliateCouponId = parse_id(&path.1, "id")?;
    state.services.revoke_affiliate_coupon(&ctx, affiliate_id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

impl PromoCodeQueryParams {
    fn into_domain(self) -> Result<PromoCodeQuery, ApiError> {
        let given: Vec<(&str, String)> = [
            ("id", self.id),
            ("code", self.code),
            ("externalId", self.external_id),
            ("couponId", self.coupon_id),
            ("affiliateId", self.affiliate_id),
            ("affiliateEmail", self.affiliate_email),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        let [(field, value)] = given.as_slice() else {
            return Err(ApiError::invalid(
                given.get(1).map_or("", |g| g.0),
                "pass exactly one of id, code, externalId, couponId, affiliateId, affiliateEmail",
            ));
        };
        Ok(match *field {
            "id" => PromoCodeQuery::Id(parse_id(value, "id")?),
            "code" => PromoCodeQuery::Code(CouponCode::parse(value)?),
            "externalId" => PromoCodeQuery::ExternalId(
                StripePromotionCodeId::parse(value)
                    .map_err(|e| ApiError::invalid("externalId", format!("externalId must be a Stripe promotion code id: {e}")))?,
            ),
            "couponId" => PromoCodeQuery::CouponId(parse_id(value, "couponId")?),
            "affiliateId" => PromoCodeQuery::AffiliateId(parse_id(value, "affiliateId")?),
            _ => PromoCodeQuery::AffiliateEmail(Email::parse("affiliateEmail", value)?),
        })
    }
}

/// Look up promotional codes by exactly one selector.
#[utoipa::path(get, path = "/api/v1/promotional-codes", tag = "Coupons", params(PromoCodeQueryParams),
    responses((status = 200, description = "One object for `id`, `code` and `externalId`, an array otherwise", body = PromoCodeLookupResponse),
        (status = 400, description = "`validation_failed`: not exactly one selector"),
        (status = 402, description = "`plan_tier_required`: API keys need Growth+"),
        (status = 404, description = "`promotional_code_not_found` (`id`, `code` and `externalId` only)")),
    security(("bearer" = [])))]
pub async fn lookup(state: web::Data<AppState>, Brand(ctx): Brand, Query(q): Query<PromoCodeQueryParams>) -> ApiResult<HttpResponse> {
    let q = q?;
    let query = q.into_domain()?;
    Ok(match state.services.lookup_promotional_codes(&ctx, query).await? {
        PromoCodeResult::One(view) => HttpResponse::Ok().json(AffiliateCouponResponse::from(*view)),
        PromoCodeResult::Many(views) => HttpResponse::Ok().json(views.into_iter().map(AffiliateCouponResponse::from).collect::<Vec<_>>()),
    })
}

/// Mint a vanity code as the calling affiliate (affiliate JWT).
#[utoipa::path(post, path = "/api/me/coupons/mint", tag = "Affiliate self-service", request_body = SelfMintRequest,
    responses((status = 201, body = AffiliateCouponResponse),
        (status = 402, description = "`plan_tier_required`: the brand's subscription has lapsed"),
        (status = 403, description = "`affiliate_not_approved`; `self_mint_not_allowed`; `invalid_affiliate_token`"),
        (status = 404, description = "`campaign_coupon_not_found`"),
        (status = 409, description = "`campaign_coupon_inactive`; `program_archived`"),
        (status = 422, description = "`code_already_taken`; `program_mismatch`; `payment_provider_rejected`: Stripe refused the request"),
        (status = 502, description = "`stripe_request_failed`: Stripe does not know the referenced object"),
        (status = 503, description = "`stripe_unavailable`: Stripe is unreachable; retrying the same code finishes it")),
    security(("affiliate_jwt" = [])))]
pub async fn self_mint(
    state: web::Data<AppState>,
    AffiliateAuth(caller): AffiliateAuth,
    Json(body): Json<SelfMintRequest>,
) -> ApiResult<HttpResponse> {
    let body = body?;
    let code = CouponCode::parse(&body.code)?;
    let view = state.services.self_mint_coupon(&caller, CampaignCouponId::from_uuid(body.campaign_coupon_id), code).await?;
    Ok(HttpResponse::Created().json(AffiliateCouponResponse::from(view)))
}
