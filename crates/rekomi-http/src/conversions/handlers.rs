//! The conversion handlers: the list, one conversion with its ledger, and its attribution
//! trace. The CSV export is in `export`, the sub-affiliate endpoints in `sub_affiliates`.

use actix_web::{web, HttpResponse};
use rekomi_domain::kernel::ids::ConversionId;

use super::dto::{AttributionResponse, ConversionDetailResponse, ConversionQuery, ConversionResponse, LedgerEventResponse};
use crate::auth::Brand;
use crate::dto::{page_request, ListResponse};
use crate::error::ApiResult;
use crate::extract::{parse_id, Query};
use crate::AppState;

/// List conversions.
#[utoipa::path(get, path = "/api/v1/conversions", tag = "Conversions", params(ConversionQuery),
    responses((status = 200, body = ListResponse<ConversionResponse>),
        (status = 400, description = "`validation_failed`: `until` (export only)"),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+")),
    security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, Brand(ctx): Brand, Query(q): Query<ConversionQuery>) -> ApiResult<HttpResponse> {
    let q = q?;
    let filter = q.filter(false)?;
    let page = page_request(q.take, q.cursor.as_deref())?;
    let conversions = state.services.list_conversions(&ctx, filter, page).await?;
    Ok(HttpResponse::Ok().json(ListResponse::from_page(conversions, |c| ConversionResponse::from(&c))))
}

/// One conversion with its event timeline.
#[utoipa::path(get, path = "/api/v1/conversions/{id}", tag = "Conversions", params(("id" = Uuid, Path, description = "The conversion id")),
    responses((status = 200, body = ConversionDetailResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`conversion_not_found`")),
    security(("bearer" = [])))]
pub async fn get(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id: ConversionId = parse_id(&path, "id")?;
    let (conversion, ledger) = state.services.get_conversion(&ctx, id).await?;
    Ok(HttpResponse::Ok().json(ConversionDetailResponse {
        conversion: (&conversion).into(),
        events: ledger.iter().map(LedgerEventResponse::from).collect(),
    }))
}

/// How a conversion was attributed.
#[utoipa::path(get, path = "/api/v1/conversions/{id}/attribution", tag = "Conversions",
    params(("id" = Uuid, Path, description = "The conversion id")),
    responses((status = 200, body = AttributionResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`conversion_not_found`")),
    security(("bearer" = [])))]
pub async fn attribution(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id: ConversionId = parse_id(&path, "id")?;
    let (c, _) = state.services.get_conversion(&ctx, id).await?;
    Ok(HttpResponse::Ok().json(AttributionResponse {
        conversion_id: c.id.as_uuid(),
        attribution_method: c.attribution_method.clone(),
        coupon_code: c.coupon_code.clone(),
        trace: c.attribution_trace.clone(),
    }))
}
