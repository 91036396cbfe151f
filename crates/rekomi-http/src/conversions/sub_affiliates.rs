//! The sub-affiliate endpoints: a program's override setting
//! (`/api/v1/programs/{id}/sub-affiliate-config`) and an affiliate's recruits
//! (`/api/v1/affiliates/{id}/sub-affiliates`). They live with conversions because the override
//! is a conversion credited to the recruiter.

use actix_web::{web, HttpResponse};
use rekomi_domain::kernel::ids::{AffiliateId, ProgramId};

use super::dto::{config_response, RecruitResponse, SubAffiliateConfigBody};
use crate::auth::Brand;
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Json};
use crate::AppState;

/// A program's sub-affiliate setting.
#[utoipa::path(get, path = "/api/v1/programs/{id}/sub-affiliate-config", tag = "Sub-affiliates",
    params(("id" = Uuid, Path, description = "The program id")),
    responses((status = 200, body = SubAffiliateConfigBody),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`program_not_found`")),
    security(("bearer" = [])))]
pub async fn get_sub_config(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id: ProgramId = parse_id(&path, "id")?;
    Ok(HttpResponse::Ok().json(config_response(state.services.sub_affiliate_config(&ctx, id).await?)))
}

/// Set a program's sub-affiliate setting (Owner, Pro plan).
#[utoipa::path(put, path = "/api/v1/programs/{id}/sub-affiliate-config", tag = "Sub-affiliates", request_body = SubAffiliateConfigBody,
    params(("id" = Uuid, Path, description = "The program id")),
    responses((status = 200, body = SubAffiliateConfigBody),
        (status = 400, description = "`unsupported_value`: `percent` outside 0-100 or with more than two decimals"),
        (status = 402, description = "`plan_tier_required`: Pro, unless trialing (dashboard JWTs too)"),
        (status = 404, description = "`program_not_found`")),
    security(("bearer" = [])))]
pub async fn put_sub_config(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<String>,
    Json(body): Json<SubAffiliateConfigBody>,
) -> ApiResult<HttpResponse> {
    let body = body?;
    let id: ProgramId = parse_id(&path, "id")?;
    let percent = body.percent.hundredths("percent").map_err(|_| {
        ApiError::new(actix_web::http::StatusCode::BAD_REQUEST, "unsupported_value", "percent must be between 0 and 100")
            .with_field("percent")
    })?;
    Ok(HttpResponse::Ok().json(config_response(state.services.put_sub_affiliate_config(&ctx, id, body.enabled, percent).await?)))
}

/// An affiliate's recruits (flat array).
#[utoipa::path(get, path = "/api/v1/affiliates/{id}/sub-affiliates", tag = "Sub-affiliates",
    params(("id" = Uuid, Path, description = "The recruiting affiliate's id")),
    responses((status = 200, body = Vec<RecruitResponse>),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`affiliate_not_found`")),
    security(("bearer" = [])))]
pub async fn sub_affiliates(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id: AffiliateId = parse_id(&path, "id")?;
    let recruits = state.services.sub_affiliates(&ctx, id).await?;
    let body: Vec<RecruitResponse> = recruits
        .into_iter()
        .map(|r| RecruitResponse {
            id: r.affiliate.id.as_uuid(),
            email: r.affiliate.email.as_str().to_owned(),
            full_name: r.affiliate.full_name.clone(),
            status: r.affiliate.status.as_str(),
            total_commission_cents: r.total_commission_minor,
            override_earned_cents: r.override_earned_minor,
            currency: r.currency.code(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(body))
}
