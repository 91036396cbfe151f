//! The `/api/v1/webhook-endpoints` handlers, and the delivery ids of their paths.

use actix_web::{web, HttpResponse};
use rekomi_domain::kernel::ids::{DeliveryId, WebhookEndpointId};
use uuid::Uuid;

use super::dto::{CreateWebhookEndpointRequest, DeliveryResponse, PatchWebhookEndpointRequest, WebhookEndpointResponse};
use crate::auth::Brand;
use crate::dto::{page_request, EmptyRequest, ListResponse, PageQuery};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, Json, OptionalJson, Query};
use crate::AppState;

// ---- path ids ---------------------------------------------------------------------------

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Decodes a 26-character Crockford ULID (case-insensitive; `I`/`L` read as 1, `O` as 0).
fn uuid_of_ulid(raw: &str) -> Option<Uuid> {
    if raw.len() != 26 || raw.as_bytes()[0] > b'7' {
        return None;
    }
    let mut n: u128 = 0;
    for c in raw.bytes() {
        let c = match c.to_ascii_uppercase() {
            b'I' | b'L' => b'1',
            b'O' => b'0',
            other => other,
        };
        let digit = CROCKFORD.iter().position(|d| *d == c)?;
        n = (n << 5) | digit as u128;
    }
    Some(Uuid::from_u128(n))
}

/// A delivery id from the path: the ULID the API shows (a UUID is accepted too).
fn parse_delivery_id(raw: &str) -> Result<DeliveryId, ApiError> {
    uuid_of_ulid(raw)
        .or_else(|| Uuid::parse_str(raw).ok())
        .map(DeliveryId::from_uuid)
        .ok_or_else(|| ApiError::invalid("deliveryId", "deliveryId must be a delivery id (a 26-character ULID)"))
}

// ---- handlers ---------------------------------------------------------------------------

/// List webhook endpoints.
#[utoipa::path(get, path = "/api/v1/webhook-endpoints", tag = "Webhook endpoints", params(PageQuery),
    responses((status = 200, body = ListResponse<WebhookEndpointResponse>),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+")),
    security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, Brand(ctx): Brand, Query(q): Query<PageQuery>) -> ApiResult<HttpResponse> {
    let q = q?;
    let page = page_request(q.take, q.cursor.as_deref())?;
    let endpoints = state.services.list_webhook_endpoints(&ctx, page).await?;
    Ok(HttpResponse::Ok().json(ListResponse::from_page(endpoints, WebhookEndpointResponse::without_secret)))
}

/// Register a webhook endpoint. The answer carries the signing secret, shown only here and on
/// rotation.
#[utoipa::path(post, path = "/api/v1/webhook-endpoints", tag = "Webhook endpoints", request_body = CreateWebhookEndpointRequest,
    responses((status = 201, body = WebhookEndpointResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+")),
    security(("bearer" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    Json(body): Json<CreateWebhookEndpointRequest>,
) -> ApiResult<HttpResponse> {
    let body = body?;
    let endpoint = state.services.create_webhook_endpoint(&ctx, body.url, body.description, body.events.unwrap_or_default()).await?;
    Ok(HttpResponse::Created().json(WebhookEndpointResponse::with_secret(endpoint)))
}

/// Get a webhook endpoint.
#[utoipa::path(get, path = "/api/v1/webhook-endpoints/{id}", tag = "Webhook endpoints", params(("id" = Uuid, Path, description = "The webhook endpoint id")),
    responses((status = 200, body = WebhookEndpointResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`webhook_endpoint_not_found`")),
    security(("bearer" = [])))]
pub async fn get(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id: WebhookEndpointId = parse_id(&path, "id")?;
    let endpoint = state.services.get_webhook_endpoint(&ctx, id).await?;
    Ok(HttpResponse::Ok().json(WebhookEndpointResponse::without_secret(endpoint)))
}

/// Update a webhook endpoint (`enabled: true` re-enables a disabled one).
#[utoipa::path(patch, path = "/api/v1/webhook-endpoints/{id}", tag = "Webhook endpoints", request_body = PatchWebhookEndpointRequest,
    params(("id" = Uuid, Path, description = "The webhook endpoint id")),
    responses((status = 200, body = WebhookEndpointResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`webhook_endpoint_not_found`")),
    security(("bearer" = [])))]
pub async fn update(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<String>,
    Json(body): Json<PatchWebhookEndpointRequest>,
) -> ApiResult<HttpResponse> {
    let body = body?;
    let id: WebhookEndpointId = parse_id(&path, "id")?;
    let endpoint = state.services.update_webhook_endpoint(&ctx, id, body.into_domain()).await?;
    Ok(HttpResponse::Ok().json(WebhookEndpointResponse::without_secret(endpoint)))
}

/// Delete a webhook endpoint and its delivery log.
#[utoipa::path(delete, path = "/api/v1/webhook-endpoints/{id}", tag = "Webhook endpoints", params(("id" = Uuid, Path, description = "The webhook endpoint id")),
    responses((status = 204, description = "Deleted, with its delivery log"),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`webhook_endpoint_not_found`")),
    security(("bearer" = [])))]
pub async fn delete(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id: WebhookEndpointId = parse_id(&path, "id")?;
    state.services.delete_webhook_endpoint(&ctx, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Replace the signing secret; the answer carries the new one.
#[utoipa::path(post, path = "/api/v1/webhook-endpoints/{id}/rotate-secret", tag = "Webhook endpoints",
    request_body(content = Option<EmptyRequest>, description = "`{}` or nothing"), params(("id" = Uuid, Path, description = "The webhook endpoint id")),
    responses((status = 200, body = WebhookEndpointResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`webhook_endpoint_not_found`")),
    security(("bearer" = [])))]
pub async fn rotate_secret(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<String>,
    body: OptionalJson<EmptyRequest>,
) -> ApiResult<HttpResponse> {
    body.0?;
    let id: WebhookEndpointId = parse_id(&path, "id")?;
    let endpoint = state.services.rotate_webhook_secret(&ctx, id).await?;
    Ok(HttpResponse::Ok().json(WebhookEndpointResponse::with_secret(endpoint)))
}

/// An endpoint's deliveries, newest first.
#[utoipa::path(get, path = "/api/v1/webhook-endpoints/{id}/deliveries", tag = "Webhook endpoints",
    params(("id" = Uuid, Path, description = "The webhook endpoint id"), PageQuery),
    responses((status = 200, body = ListResponse<DeliveryResponse>),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`webhook_endpoint_not_found`")),
    security(("bearer" = [])))]
pub async fn deliveries(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let q = q?;
    let id: WebhookEndpointId = parse_id(&path, "id")?;
    let page = page_request(q.take, q.cursor.as_deref())?;
    let deliveries = state.services.list_deliveries(&ctx, id, page).await?;
    Ok(HttpResponse::Ok().json(ListResponse::from_page(deliveries, DeliveryResponse::from)))
}

/// Send a delivery again: due now, same body, same `X-Rekomi-Delivery-Id`, a fresh retry
/// schedule.
#[utoipa::path(post, path = "/api/v1/webhook-endpoints/{id}/deliveries/{deliveryId}/redeliver", tag = "Webhook endpoints",
    request_body(content = Option<EmptyRequest>, description = "`{}` or nothing"),
    params(("id" = Uuid, Path, description = "The webhook endpoint id"),
        ("deliveryId" = String, Path, description = "The delivery id: the 26-character ULID sent as `X-Rekomi-Delivery-Id` (its UUID form is accepted too)")),
    responses((status = 202, body = DeliveryResponse),
        (status = 402, description = "`plan_tier_required`: API keys need Starter+"),
        (status = 404, description = "`webhook_endpoint_not_found`; `delivery_not_found`"),
        (status = 409, description = "`webhook_endpoint_disabled`: enable the endpoint first")),
    security(("bearer" = [])))]
pub async fn redeliver(
    state: web::Data<AppState>,
    Brand(ctx): Brand,
    path: web::Path<(String, String)>,
    body: OptionalJson<EmptyRequest>,
) -> ApiResult<HttpResponse> {
    body.0?;
    let (id, delivery) = path.into_inner();
    let id: WebhookEndpointId = parse_id(&id, "id")?;
    let delivery = parse_delivery_id(&delivery)?;
    let delivery = state.services.redeliver(&ctx, id, delivery).await?;
    Ok(HttpResponse::Accepted().json(DeliveryResponse::from(delivery)))
}

#[cfg(test)]
mod tests {
    use rekomi_domain::outbound::ulid_of;

    use super::*;

    #[test]
    fn ulids_shown_by_the_api_decode_back_to_the_delivery_uuid() {
        let id = Uuid::from_u128(0x0190_a2b3_c4d5_7e6f_8091_a2b3_c4d5_e6f7);
        let ulid = ulid_of(id);
        assert_eq!(uuid_of_ulid(&ulid), Some(id));
        assert_eq!(uuid_of_ulid(&ulid.to_ascii_lowercase()), Some(id));
        assert_eq!(uuid_of_ulid(&"Z".repeat(26)), None, "more than 128 bits");
        assert_eq!(uuid_of_ulid("01J0"), None);
        assert_eq!(uuid_of_ulid("01J0000000000000000000000U"), None, "U is not Crockford");
        assert!(parse_delivery_id(&id.to_string()).is_ok());
        assert!(parse_delivery_id("nope").is_err());
    }
}
