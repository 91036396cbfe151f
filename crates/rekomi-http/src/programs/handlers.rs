//! The `/api/v1/programs` handlers, and the conversion of their requests into the domain's.

use actix_web::{web, HttpResponse};
use rekomi_domain::kernel::ids::ProgramId;
use rekomi_domain::kernel::text::{validate_name, validate_text, validate_url};
use rekomi_domain::programs::{
    validate_cookie_window, validate_delay_invoices, validate_domain, validate_recurring_months, AttributionModel, CommissionModel,
    CommissionType, LandingUrl, NetworkVisibility, NewProgram, ProgramInput, ProgramPatch, ProgramSlug,
};

use super::dto::{CreateProgramRequest, PatchProgramRequest, ProgramResponse};
use crate::auth::Brand;
use crate::dto::{enum_field, page_request, ListResponse, PageQuery};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Json, Query};
use crate::AppState;

fn commission_type(raw: &str) -> Result<CommissionType, ApiError> {
    enum_field("defaultCommissionType", raw, CommissionType::parse, CommissionType::ALL, CommissionType::as_str)
}
fn commission_model(raw: &str) -> Result<CommissionModel, ApiError> {
    enum_field("defaultCommissionModel", raw, CommissionModel::parse, CommissionModel::ALL, CommissionModel::as_str)
}
fn attribution_model(raw: &str) -> Result<AttributionModel, ApiError> {
    enum_field("attributionModel", raw, AttributionModel::parse, AttributionModel::ALL, AttributionModel::as_str)
}
fn visibility(raw: &str) -> Result<NetworkVisibility, ApiError> {
    enum_field("networkVisibility", raw, NetworkVisibility::parse, NetworkVisibility::ALL, NetworkVisibility::as_str)
}

impl CreateProgramRequest {
    fn into_domain(self) -> Result<NewProgram, ApiError> {
        Ok(NewProgram::parse(ProgramInput {
            name: self.name,
            slug: self.slug,
            description: self.description,
            terms_url: self.terms_url,
            default_commission_type: commission_type(&self.default_commission_type)?,
            default_commission_value: self.default_commission_value.hundredths("defaultCommissionValue")?,
            default_commission_model: self.default_commission_model.as_deref().map(commission_model).transpose()?,
            cookie_window_days: self.cookie_window_days,
            recurring_months: self.recurring_months,
            recurring_delay_invoices: self.recurring_delay_invoices,
            attribution_model: self.attribution_model.as_deref().map(attribution_model).transpose()?,
            auto_approve: self.auto_approve,
            network_visibility: self.network_visibility.as_deref().map(visibility).transpose()?,
            is_publicly_discoverable: self.is_publicly_discoverable,
            landing_url: self.landing_url,
        })?)
    }
}

impl PatchProgramRequest {
    fn into_domain(self) -> Result<ProgramPatch, ApiError> {
        Ok(ProgramPatch {
            name: self.name.map(|n| validate_name("name", &n, 200)).transpose()?,
            slug: self.slug.as_deref().map(ProgramSlug::parse).transpose()?,
            description: self.description.map(|d| validate_text("description", d, 2000)).transpose()?,
            terms_url: self.terms_url.map(|u| validate_url("termsUrl", u)).transpose()?,
            is_active: self.is_active,
            default_commission_type: self.default_commission_type.as_deref().map(commission_type).transpose()?,
            default_commission_value: self.default_commission_value.map(|v| v.hundredths("defaultCommissionValue")).transpose()?,
            default_commission_model: self.default_commission_model.as_deref().map(commission_model).transpose()?,
            cookie_window_days: self.cookie_window_days.map(validate_cookie_window).transpose()?,
            recurring_months: self.recurring_months.map(|m| validate_recurring_months(m, true)).transpose()?,
            recurring_delay_invoices: self.recurring_delay_invoices.map(validate_delay_invoices).transpose()?,
            attribution_model: self.attribution_model.as_deref().map(attribution_model).transpose()?,
            auto_approve: self.auto_approve,
            custom_domain: self.custom_domain.map(validate_domain).transpose()?,
            network_visibility: self.network_visibility.as_deref().map(visibility).transpose()?,
            is_publicly_discoverable: self.is_publicly_discoverable,
            landing_url: self.landing_url.map(|u| u.as_deref().map(LandingUrl::parse).transpose()).transpose()?,
        })
    }
}

/// List programs.
#[utoipa::path(get, path = "/api/v1/programs", tag = "Programs", params(PageQuery),
    responses((status = 200, body = ListResponse<ProgramResponse>),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+")),
    security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, Brand(ctx): Brand, Query(q): Query<PageQuery>) -> ApiResult<HttpResponse> {
    let q = q?;
    let page = page_request(q.take, q.cursor.as_deref())?;
    let programs = state.services.list_programs(&ctx, page).await?;
    Ok(HttpResponse::Ok().json(ListResponse::from_page(programs, ProgramResponse::from)))
}

/// Create a program.
#[utoipa::path(post, path = "/api/v1/programs", tag = "Programs", request_body = CreateProgramRequest,
    responses((status = 201, body = ProgramResponse),
        (status = 400, description = "`unsupported_value`: a legacy `defaultCommissionModel`"),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 409, description = "`slug_already_taken`")),
    security(("bearer" = [])))]
pub async fn create(state: web::Data<AppState>, Brand(ctx): Brand, Json(body): Json<CreateProgramRequest>) -> ApiResult<HttpResponse> {
    let body = body?;
    let program = state.services.create_program(&ctx, body.into_domain()?).await?;
    Ok(HttpResponse::Created().json(ProgramResponse::from(program)))
}

/// Get a program.
#[utoipa::path(get, path = "/api/v1/programs/{id}", tag = "Programs", params(("id" = Uuid, Path, description = "The program id")),
    responses((status = 200, body = ProgramResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`program_not_found`")),
    security(("bearer" = [])))]
pub async fn get(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id: ProgramId = parse_id(&path, "id")?;
    let program = state.services.get_program(&ctx, id).await?;
    Ok(HttpResponse::Ok().json(ProgramResponse::from(program)))
}

/// Update a program.
#[utoipa::path(patch, path = "/api/v1/programs/{id}", tag = "Programs", request_body = PatchProgramRequest,
    params(("id" = Uuid, Path, description = "The program id")),
    responses((status = 200, body = ProgramResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`program_not_found`"),
        (status = 409, description = "`slug_already_taken`; `program_archived`")),
    security(("bearer" = [])))]
pub async fn update(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<String>,
    Json(body): Json<PatchProgramRequest>,
) -> ApiResult<HttpResponse> {
    let body = body?;
    let id: ProgramId = parse_id(&path, "id")?;
    let program = state.services.update_program(&ctx, id, body.into_domain()?).await?;
    Ok(HttpResponse::Ok().json(ProgramResponse::from(program)))
}

/// Archive (soft-delete) a program.
#[utoipa::path(delete, path = "/api/v1/programs/{id}", tag = "Programs", params(("id" = Uuid, Path, description = "The program id")),
    responses((status = 204, description = "Archived (again: finishes closing its coupons at Stripe)"),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`program_not_found`"),
        (status = 422, description = "`payment_provider_rejected`: Stripe refused to deactivate a code"),
        (status = 503, description = "`stripe_unavailable`: archived, but some codes are still active at Stripe; delete again")),
    security(("bearer" = [])))]
pub async fn delete(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id: ProgramId = parse_id(&path, "id")?;
    state.services.archive_program(&ctx, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
