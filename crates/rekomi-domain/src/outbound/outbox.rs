//! The transactional outbox: an outbound event is written in the same transaction as the
//! change that caused it, with one delivery per enabled endpoint that subscribes to it. The
//! delivery worker sends them later; a rolled-back change never announces anything.

use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::kernel::entropy::Entropy;
use crate::kernel::ids::{DeliveryId, OrgId, OutboxEventId};
use crate::outbound::{ulid_of, Delivery, DeliveryStatus, EndpointStatus, EventType, OutboxEvent, WebhookEndpoint};
use crate::ports::{StoreError, Tx};

/// Writes `event_type` with `data` for `org`, fanned out to the subscribed endpoints. The body
/// is fixed here, so every attempt sends the same bytes: `{"id","type","created","data"}`.
///
/// # Errors
/// Storage failures.
pub fn emit(
    tx: &mut dyn Tx,
    org: OrgId,
    event_type: EventType,
    data: Value,
    now: OffsetDateTime,
    entropy: &dyn Entropy,
) -> Result<(), StoreError> {
    let endpoints = tx.endpoints(org)?;
    let (event, deliveries) = fan_out(org, event_type, data, &endpoints, now, entropy);
    tx.insert_outbox_event(&event)?;
    tx.insert_deliveries(&deliveries)
}

/// The outbox event of `event_type` with `data`, and one delivery of it per endpoint of
/// `endpoints` (the organization's) that is enabled and subscribes to it.
pub fn fan_out(
    org: OrgId,
    event_type: EventType,
    data: Value,
    endpoints: &[WebhookEndpoint],
    now: OffsetDateTime,
    entropy: &dyn Entropy,
) -> (OutboxEvent, Vec<Delivery>) {
    let event = OutboxEvent { id: OutboxEventId::from_uuid(entropy.uuid_v7(now)), org_id: org, event_type, data, created_at: now };
    let body = json!({
        "id": ulid_of(event.id.as_uuid()),
        "type": event.event_type.as_str(),
        "created": now.unix_timestamp(),
        "data": event.data,
    })
    .to_string();
    let deliveries = endpoints
        .iter()
        .filter(|endpoint| endpoint.status == EndpointStatus::Enabled && endpoint.wants(event_type))
        .map(|endpoint| Delivery {
            id: DeliveryId::from_uuid(entropy.uuid_v7(now)),
            org_id: org,
            endpoint_id: endpoint.id,
            event_id: event.id,
            event_type,
            body: body.clone(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            locked_until: None,
            last_status: None,
            last_error: None,
            created_at: now,
            delivered_at: None,
        })
        .collect();
    (event, deliveries)
}

/// The `data` of `affiliate.*` events.
pub fn affiliate_data(a: &crate::affiliates::Affiliate) -> Value {
    json!({
        "id": a.id.to_string(), "programId": a.program_id.to_string(), "email": a.email.as_str(),
        "fullName": a.full_name, "status": a.status.as_str(), "createdAt": a.created_at.unix_timestamp(),
    })
}

/// The `data` of `affiliate_coupon.*` events.
pub fn affiliate_coupon_data(c: &crate::coupons::AffiliateCoupon) -> Value {
    json!({
        "id": c.id.to_string(), "code": c.code.as_str(), "affiliateId": c.affiliate_id.to_string(),
        "campaignCouponId": c.campaign_coupon_id.to_string(), "programId": c.program_id.to_string(),
        "stripePromotionCodeId": c.stripe_promotion_code_id.as_ref().map(|id| id.as_str()), "isActive": c.is_active,
        "timesRedeemed": c.times_redeemed,
    })
}

/// The `data` of `conversion.*` and `lead.created` events.
pub fn conversion_data(c: &crate::conversions::Conversion) -> Value {
    json!({
        "id": c.id.to_string(), "affiliateId": c.affiliate_id.to_string(), "programId": c.program_id.to_string(),
        "type": c.kind.as_str(), "status": c.status.as_str(), "amountCents": c.amount_minor,
        "currency": c.currency.code(), "commissionCents": c.commission_minor,
        "attributionMethod": c.attribution_method, "couponCode": c.coupon_code, "clickId": c.click_id.map(|id| id.to_string()),
        "stripeCustomerId": c.stripe_customer_id.as_ref().map(|id| id.as_str()),
        "stripeSubscriptionId": c.stripe_subscription_id.as_ref().map(|id| id.as_str()),
        "externalEventId": c.external_event_id, "parentConversionId": c.parent_conversion_id.map(|p| p.to_string()),
        "createdAt": c.created_at.unix_timestamp(), "refundedAt": c.refunded_at.map(|t| t.unix_timestamp()),
    })
}
