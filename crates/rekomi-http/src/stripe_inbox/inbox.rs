//! The Owner's view of the Stripe inbox: `GET /api/v1/webhooks/stripe/events` lists the
//! organization's inbound events, `POST …/{id}/replay` queues one for processing again.

use actix_web::{web, HttpResponse};
use rekomi_domain::kernel::stripe_ids::StripeEventId;
use rekomi_domain::stripe_inbox::InboxStatus;
use time::OffsetDateTime;

use super::dto::{event_response, StripeEventQuery, StripeEventResponse};
use crate::auth::Brand;
use crate::dto::{enum_field, parse_time_param};
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::AppState;

/// The organization's inbound Stripe events, newest first (Owner).
#[utoipa::path(get, path = "/api/v1/webhooks/stripe/events", tag = "Stripe events", params(StripeEventQuery),
    responses((status = 200, body = Vec<StripeEventResponse>),
        (status = 403, description = "`insufficient_role`: Owner only")),
    security(("bearer" = [])))]
pub async fn list_events(state: web::Data<AppState>, Brand(ctx): Brand, Query(q): Query<StripeEventQuery>) -> ApiResult<HttpResponse> {
    let q = q?;
    let status =
        q.status.as_deref().map(|s| enum_field("status", s, InboxStatus::parse, InboxStatus::ALL, InboxStatus::as_str)).transpose()?;
    let before: Option<OffsetDateTime> = parse_time_param("before", q.before.as_deref())?;
    let take = match q.take {
        None => 50,
        Some(t @ 1..=200) => t,
        Some(_) => return Err(ApiError::invalid("take", "take must be between 1 and 200")),
    };
    let events = state.services.list_stripe_events(&ctx, status, before, take).await?;
    Ok(HttpResponse::Ok().json(events.iter().map(event_response).collect::<Vec<_>>()))
}

/// Queue one inbound event for processing again (Owner).
#[utoipa::path(post, path = "/api/v1/webhooks/stripe/events/{id}/replay", tag = "Stripe events",
    params(("id" = String, Path, description = "The Stripe event id (`evt_…`)", pattern = "^[A-Za-z0-9_]{1,255}$")),
    responses((status = 200, body = StripeEventResponse),
        (status = 404, description = "`stripe_event_not_found`"),
        (status = 409, description = "`stripe_event_in_progress`: a worker holds it; `replay_limit_reached`: replayed 5 times already")),
    security(("bearer" = [])))]
pub async fn replay_event(state: web::Data<AppState>, Brand(ctx): Brand, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let id = match StripeEventId::parse(&id) {
        // Stripe's own alphabet, as the path's pattern says.
        Ok(id) if id.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => id,
        _ => return Err(ApiError::invalid("id", "id must be a Stripe event id (evt_…)")),
    };
    Ok(HttpResponse::Ok().json(event_response(&state.services.replay_stripe_event(&ctx, id).await?)))
}
