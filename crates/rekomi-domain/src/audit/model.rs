//! The append-only audit log: one entry per mutation, written in the mutation's transaction.

use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::affiliates::Affiliate;
use crate::coupons::{AffiliateCoupon, CampaignCoupon};
use crate::coupons::{CouponDuration, DiscountSpec};
use crate::kernel::actor::AuditActor;
use crate::kernel::ids::{AuditId, OrgId};
use crate::kernel::stripe_ids::{StripeCouponId, StripePromotionCodeId};
use crate::programs::Program;

crate::kernel::text::dotted_names!(/// What an audit entry records: `<entity>.<what happened>`.
AuditAction {
AffiliateApproved => "affiliate.approved",
AffiliateCreated => "affiliate.created",
AffiliateDeleted => "affiliate.deleted",
AffiliatePaused => "affiliate.paused",
AffiliateRejected => "affiliate.rejected",
AffiliateUpdated => "affiliate.updated",
AffiliateUserLinked => "affiliate.user_linked",
AffiliateCouponCreated => "affiliate_coupon.created",
AffiliateCouponDeactivated => "affiliate_coupon.deactivated",
AffiliateCouponSynced => "affiliate_coupon.synced",
AffiliateCouponUpdated => "affiliate_coupon.updated",
ApiKeyCreated => "api_key.created",
CampaignCouponArchived => "campaign_coupon.archived",
CampaignCouponCreated => "campaign_coupon.created",
CampaignCouponDeleted => "campaign_coupon.deleted",
CampaignCouponDeletedAtStripe => "campaign_coupon.deleted_at_stripe",
CampaignCouponUpdated => "campaign_coupon.updated",
ConversionApproved => "conversion.approved",
ConversionCreated => "conversion.created",
ConversionRefunded => "conversion.refunded",
ConversionRenewed => "conversion.renewed",
ConversionsExported => "conversions.exported",
LeadCreated => "lead.created",
OrgAttributionParamsChanged => "org.attribution_params_changed",
OrgPixelKeyProvisioned => "org.pixel_key_provisioned",
OrganizationCreated => "organization.created",
OrganizationStripeAccountLinked => "organization.stripe_account_linked",
OrgHomeCurrencyChanged => "org.home_currency_changed",
OrgPayoutSettingsChanged => "org.payout_settings_changed",
PayoutAccountRecorded => "payout_account.recorded",
PayoutAccountStripeCreated => "payout_account.stripe_created",
PayoutAccountUpdated => "payout_account.updated",
PayoutCreated => "payout.created",
PayoutFailed => "payout.failed",
PayoutMarkedPaid => "payout.marked_paid",
PayoutPaid => "payout.paid",
PayoutRetried => "payout.retried",
PayoutReversed => "payout.reversed",
PayoutsExported => "payouts.exported",
ProgramCreated => "program.created",
ProgramDeleted => "program.deleted",
ProgramSubAffiliateConfigChanged => "program.sub_affiliate_config_changed",
ProgramUpdated => "program.updated",
StripeEventReplayed => "stripe_event.replayed",
TrackingSecretCreated => "tracking_secret.created",
TrackingSecretRotated => "tracking_secret.rotated",
WebhookDeliveryRedelivered => "webhook_delivery.redelivered",
WebhookEndpointCreated => "webhook_endpoint.created",
WebhookEndpointDeleted => "webhook_endpoint.deleted",
WebhookEndpointDisabled => "webhook_endpoint.disabled",
WebhookEndpointSecretRotated => "webhook_endpoint.secret_rotated",
WebhookEndpointUpdated => "webhook_endpoint.updated",
});

/// One audit-log entry.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    /// Id.
    pub id: AuditId,
    /// Organization.
    pub org_id: OrgId,
    /// Who did it.
    pub actor: AuditActor,
    /// What happened, e.g. `program.created`.
    pub action: AuditAction,
    /// Entity type, e.g. `program`.
    pub entity_type: &'static str,
    /// Entity id.
    pub entity_id: String,
    /// State before (None for creations).
    pub before: Option<Value>,
    /// State after (None for deletions).
    pub after: Option<Value>,
    /// When.
    pub created_at: OffsetDateTime,
}

fn ts(t: Option<OffsetDateTime>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.unix_timestamp().to_string()))
}

/// What an audit entry records of a program.
pub fn program_snapshot(p: &Program) -> Value {
    json!({
        "id": p.id.to_string(), "name": p.name, "slug": p.slug.as_str(), "isActive": p.is_active,
        "defaultCommissionType": p.default_commission.kind.as_str(),
        "defaultCommissionValue": p.default_commission.value.to_decimal_string(),
        "defaultCommissionModel": p.default_commission_model.as_str(),
        "cookieWindowDays": p.cookie_window_days, "recurringMonths": p.recurring_months,
        "recurringDelayInvoices": p.recurring_delay_invoices, "autoApprove": p.auto_approve,
        "customDomain": p.custom_domain, "archivedAt": ts(p.archived_at),
    })
}

/// What an audit entry records of an affiliate.
pub fn affiliate_snapshot(a: &Affiliate) -> Value {
    json!({
        "id": a.id.to_string(), "programId": a.program_id.to_string(), "email": a.email.as_str(),
        "fullName": a.full_name, "status": a.status.as_str(),
        "customCommissionType": a.custom_commission.map(|c| c.kind.as_str()),
        "customCommissionValue": a.custom_commission.map(|c| c.value.to_decimal_string()),
        "tags": a.tags,
    })
}

/// What an audit entry records of a campaign coupon.
pub fn campaign_coupon_snapshot(c: &CampaignCoupon) -> Value {
    let (kind, value, currency) = match c.discount {
        DiscountSpec::PercentOff(p) => ("PercentOff", i64::from(p), None),
        DiscountSpec::AmountOff(m) => ("AmountOff", m.minor(), Some(m.currency().code())),
    };
    let (duration, months) = match c.duration {
        CouponDuration::Once => ("Once", None),
        CouponDuration::Repeating(m) => ("Repeating", Some(m)),
        CouponDuration::Forever => ("Forever", None),
    };
    json!({
        "id": c.id.to_string(), "programId": c.program_id.to_string(), "name": c.name,
        "discountType": kind, "discountValue": value, "discountCurrency": currency,
        "duration": duration, "durationInMonths": months,
        "maxRedemptionsPerCode": c.max_redemptions_per_code, "expiresAt": ts(c.expires_at),
        "allowAffiliateSelfMint": c.allow_affiliate_self_mint,
        "overridesClickAttribution": c.overrides_click_attribution, "isActive": c.is_active,
        "stripeCouponId": c.stripe_coupon_id.as_ref().map(StripeCouponId::as_str),
    })
}

/// What an audit entry records of an affiliate coupon.
pub fn affiliate_coupon_snapshot(c: &AffiliateCoupon) -> Value {
    json!({
        "id": c.id.to_string(), "affiliateId": c.affiliate_id.to_string(),
        "campaignCouponId": c.campaign_coupon_id.to_string(), "code": c.code.as_str(),
        "stripePromotionCodeId": c.stripe_promotion_code_id.as_ref().map(StripePromotionCodeId::as_str), "isActive": c.is_active,
        "maxRedemptions": c.max_redemptions, "expiresAt": ts(c.expires_at),
        "isAutoGenerated": c.is_auto_generated, "selfMinted": c.self_minted,
    })
}
