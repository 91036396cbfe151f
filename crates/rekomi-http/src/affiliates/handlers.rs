//! The `/api/v1/affiliates` handlers.

use actix_web::{web, HttpResponse};
use rekomi_domain::affiliates::{validate_tags, AffiliateFilter, AffiliatePatch, AffiliateStatus, BulkAction, Email, NewAffiliate};
use rekomi_domain::kernel::ids::{AffiliateId, ProgramId};
use rekomi_domain::kernel::text::{has_control, validate_optional_name, validate_text};

use super::dto::{
    commission_pair, AffiliateListQuery, AffiliateResponse, BulkActionRequest, BulkActionResponse, CreateAffiliateRequest,
    PatchAffiliateRequest, RejectRequest,
};
use crate::auth::Brand;
use crate::dto::{enum_field, page_request, EmptyRequest, ListResponse, PageQuery};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Json, OptionalJson, Query};
use crate::AppState;

fn status(raw: &str) -> Result<AffiliateStatus, ApiError> {
    enum_field("status", raw, AffiliateStatus::parse, AffiliateStatus::ALL, AffiliateStatus::as_str)
}

fn full_name(raw: Option<String>) -> Result<Option<String>, ApiError> {
    Ok(validate_optional_name("fullName", raw, 200)?)
}

/// List affiliates.
#[utoipa::path(get, path = "/api/v1/affiliates", tag = "Affiliates", params(AffiliateListQuery),
    responses((status = 200, body = ListResponse<AffiliateResponse>),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+")),
    security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, Brand(ctx): Brand, Query(q): Query<AffiliateListQuery>) -> ApiResult<HttpResponse> {
    let q = q?;
    let page = page_request(q.take, q.cursor.as_deref())?;
    let q_text = q.q.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    if q_text.as_ref().is_some_and(|s| s.chars().count() > 200 || has_control(s, false)) {
        return Err(ApiError::invalid("q", "q must be at most 200 characters without control characters"));
    }
    let filter = AffiliateFilter {
        program_id: q.program_id.map(ProgramId::from_uuid),
        status: q.status.as_deref().map(status).transpose()?,
        q: q_text,
    };
    let affiliates = state.services.list_affiliates(&ctx, filter, page).await?;
    Ok(HttpResponse::Ok().json(ListResponse::from_page(affiliates, AffiliateResponse::from)))
}

/// List pending applications.
#[utoipa::path(get, path = "/api/v1/affiliates/applications", tag = "Affiliates", params(PageQuery),
    responses((status = 200, body = ListResponse<AffiliateResponse>),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+")),
    security(("bearer" = [])))]
pub async fn applications(state: web::Data<AppState>, Brand(ctx): Brand, Query(q): Query<PageQuery>) -> ApiResult<HttpResponse> {
    let q = q?;
    let page = page_request(q.take, q.cursor.as_deref())?;
    let filter = AffiliateFilter { status: Some(AffiliateStatus::Pending), ..Default::default() };
    let affiliates = state.services.list_affiliates(&ctx, filter, page).await?;
    Ok(HttpResponse::Ok().json(ListResponse::from_page(affiliates, AffiliateResponse::from)))
}

/// Create an affiliate (admin path).
#[utoipa::path(post, path = "/api/v1/affiliates", tag = "Affiliates", request_body = CreateAffiliateRequest,
    responses((status = 201, body = AffiliateResponse),
        (status = 400, description = "`unsupported_value`: a `status` other than Approved or Pending"),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`program_not_found`; `affiliate_not_found`: `recruitedByAffiliateId` names no affiliate of the organization"),
        (status = 409, description = "`program_archived`; `affiliate_already_exists`; `alias_already_taken`; `slug_generation_failed`"),
        (status = 422, description = "`recruiter_not_approved`: the recruiting affiliate is not Approved")),
    security(("bearer" = [])))]
pub async fn create(state: web::Data<AppState>, Brand(ctx): Brand, Json(body): Json<CreateAffiliateRequest>) -> ApiResult<HttpResponse> {
    let body = body?;
    let new = NewAffiliate {
        program_id: ProgramId::from_uuid(body.program_id),
        email: Email::parse("email", &body.email)?,
        full_name: full_name(body.full_name)?,
        status: body.status.as_deref().map(status).transpose()?,
        custom_commission: commission_pair(
            body.custom_commission_type.as_deref(),
            body.custom_commission_value.as_ref(),
            "customCommissionType",
            "customCommissionValue",
        )?,
        custom_alias: body.custom_alias,
        recruited_by: body.recruited_by_affiliate_id.map(AffiliateId::from_uuid),
    };
    let view = state.services.create_affiliate(&ctx, new).await?;
    Ok(HttpResponse::Created().json(AffiliateResponse::from(view)))
}

/// Get an affiliate.
#[utoipa::path(get, path = "/api/v1/affiliates/{id}", tag = "Affiliates", params(("id" = Uuid, Path, description = "The affiliate id")),
    responses((status = 200, body = AffiliateResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`affiliate_not_found`")),
    security(("bearer" = [])))]
pub async fn get(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id: AffiliateId = parse_id(&path, "id")?;
    Ok(HttpResponse::Ok().json(AffiliateResponse::from(state.services.get_affiliate(&ctx, id).await?)))
}

/// Update an affiliate.
#[utoipa::path(patch, path = "/api/v1/affiliates/{id}", tag = "Affiliates", request_body = PatchAffiliateRequest,
    params(("id" = Uuid, Path, description = "The affiliate id")),
    responses((status = 200, body = AffiliateResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`affiliate_not_found`"),
        (status = 409, description = "`invalid_status_transition`"),
        (status = 422, description = "`payment_provider_rejected`: banning, Stripe refused to deactivate a code"),
        (status = 503, description = "`stripe_unavailable`: banned, but some codes are still active at Stripe; send `Banned` again")),
    security(("bearer" = [])))]
pub async fn update(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<String>,
    Json(body): Json<PatchAffiliateRequest>,
) -> ApiResult<HttpResponse> {
    let body = body?;
    let id: AffiliateId = parse_id(&path, "id")?;
    let custom_commission = match (body.custom_commission_type, body.custom_commission_value) {
        (None, None) => None,
        (Some(None), Some(None)) => Some(None),
        (Some(Some(k)), Some(Some(v))) => Some(commission_pair(Some(&k), Some(&v), "customCommissionType", "customCommissionValue")?),
        (Some(_), _) => {
            return Err(ApiError::invalid(
                "customCommissionValue",
                "send customCommissionType and customCommissionValue together (both null clears)",
            ))
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                "customCommissionType",
                "send customCommissionType and customCommissionValue together (both null clears)",
            ))
        }
    };
    let patch = AffiliatePatch {
        full_name: body.full_name.map(full_name).transpose()?,
        status: body.status.as_deref().map(status).transpose()?,
        custom_commission,
        notes: body.notes.map(|n| validate_text("notes", n, 5000)).transpose()?,
        tags: body.tags.map(validate_tags).transpose()?,
    };
    Ok(HttpResponse::Ok().json(AffiliateResponse::from(state.services.update_affiliate(&ctx, id, patch).await?)))
}

/// Approve a pending application.
#[utoipa::path(post, path = "/api/v1/affiliates/{id}/approve", tag = "Affiliates", request_body(content = Option<EmptyRequest>, description = "`{}` or nothing"),
    params(("id" = Uuid, Path, description = "The affiliate id")),
    responses((status = 200, body = AffiliateResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`affiliate_not_found`"),
        (status = 409, description = "`invalid_status_transition`: the affiliate is not Pending or Rejected")),
    security(("bearer" = [])))]
pub async fn approve(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<String>,
    _body: OptionalJson<EmptyRequest>,
) -> ApiResult<HttpResponse> {
    _body.0?;
    let id: AffiliateId = parse_id(&path, "id")?;
    Ok(HttpResponse::Ok().json(AffiliateResponse::from(state.services.approve_affiliate(&ctx, id).await?)))
}

/// Reject a pending application.
#[utoipa::path(post, path = "/api/v1/affiliates/{id}/reject", tag = "Affiliates", request_body(content = Option<RejectRequest>, description = "Optional"),
    params(("id" = Uuid, Path, description = "The affiliate id")),
    responses((status = 200, body = AffiliateResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`affiliate_not_found`"),
        (status = 409, description = "`invalid_status_transition`: the affiliate is not Pending")),
    security(("bearer" = [])))]
pub async fn reject(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<String>,
    body: OptionalJson<RejectRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.0?;
    let id: AffiliateId = parse_id(&path, "id")?;
    let reason = validate_text("reason", body.and_then(|b| b.reason), 1000)?;
    Ok(HttpResponse::Ok().json(AffiliateResponse::from(state.services.reject_affiliate(&ctx, id, reason).await?)))
}

/// Apply one action to up to 200 affiliates.
#[utoipa::path(post, path = "/api/v1/affiliates/bulk-action", tag = "Affiliates", request_body = BulkActionRequest,
    responses((status = 200, body = BulkActionResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+")),
    security(("bearer" = [])))]
pub async fn bulk(state: web::Data<AppState>, Brand(ctx): Brand, Json(body): Json<BulkActionRequest>) -> ApiResult<HttpResponse> {
    let body = body?;
    let action = match body.action.as_str() {
        "approve" => BulkAction::Approve,
        "pause" => BulkAction::Pause,
        "delete" => BulkAction::Delete,
        _ => return Err(ApiError::invalid("action", "action must be one of approve, pause, delete")),
    };
    let ids = body.affiliate_ids.into_iter().map(AffiliateId::from_uuid).collect();
    let outcome = state.services.bulk_affiliate_action(&ctx, ids, action).await?;
    Ok(HttpResponse::Ok().json(BulkActionResponse { affected: outcome.affected, total: outcome.total, action: outcome.action.as_str() }))
}
