//! Row types: `XxxRow` is what a `SELECT` decodes into, `NewXxxRow` borrows a domain entity
//! for an `INSERT` or a full-row `UPDATE`. Every value read back goes through the domain's
//! own `parse` functions, so a row the domain would refuse surfaces as
//! `StoreError::Unexpected` instead of a value that breaks an invariant later.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use diesel::prelude::*;
use rekomi_domain::actor::AuditActor;
use rekomi_domain::affiliate::{Affiliate, AffiliateLink, AffiliateSource, AffiliateStatus, Email, LinkFormat};
use rekomi_domain::audit::AuditEntry;
use rekomi_domain::conversion::{Conversion, ConversionStatus, ConversionType, LedgerEvent, LedgerKind};
use rekomi_domain::coupon::{AffiliateCoupon, CampaignCoupon, CodeRestrictions, CouponCode};
use rekomi_domain::inbox::{InboxEvent, InboxStatus};
use rekomi_domain::money::{Currency, Money};
use rekomi_domain::org::{ApiKey, ApiKeyScope, Handle, Organization};
use rekomi_domain::outbound::{Delivery, DeliveryStatus, EndpointStatus, OutboxEvent, WebhookEndpoint};
use rekomi_domain::plan::{PlanTier, SubscriptionStatus};
use rekomi_domain::ports::gateway::{CouponDuration, DiscountSpec};
use rekomi_domain::ports::StoreError;
use rekomi_domain::program::{
    AttributionModel, Commission, CommissionModel, CommissionType, Hundredths, NetworkVisibility, Program, ProgramSlug,
};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::bad_row;
use crate::schema::{
    affiliate_coupons, affiliate_links, affiliates, api_keys, audit_log, campaign_coupons, conversions, inbox_events, ledger_events,
    organizations, outbox_events, programs, webhook_deliveries, webhook_endpoints,
};

// ---------------------------------------------------------------------------------------------
// Column decoding helpers
// ---------------------------------------------------------------------------------------------

/// Decodes one of the domain's `api_enum!` values (`X::parse(&str) -> Option<X>`).
fn api_enum<T>(table: &str, column: &str, raw: &str, parse: fn(&str) -> Option<T>) -> Result<T, StoreError> {
    parse(raw).ok_or_else(|| bad_row(table, column, format!("unknown value {raw:?}")))
}

/// Narrows an `integer` column to the domain's `u16`.
fn to_u16(table: &str, column: &str, v: i32) -> Result<u16, StoreError> {
    u16::try_from(v).map_err(|_| bad_row(table, column, format!("{v} is outside 0..=65535")))
}

/// Narrows a `bigint` column to the domain's `u32`.
fn to_u32(table: &str, column: &str, v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| bad_row(table, column, format!("{v} is outside the u32 range")))
}

/// Narrows a column to the domain's `u8`.
fn to_u8(table: &str, column: &str, v: i64) -> Result<u8, StoreError> {
    u8::try_from(v).map_err(|_| bad_row(table, column, format!("{v} is outside 0..=255")))
}

fn currency(table: &str, column: &str, raw: &str) -> Result<Currency, StoreError> {
    Currency::parse(raw).map_err(|e| bad_row(table, column, e))
}

fn commission(table: &str, column: &str, kind: &str, value: i64) -> Result<Commission, StoreError> {
    let kind = api_enum(table, column, kind, CommissionType::parse)?;
    Commission::new(kind, Hundredths::new(value), column).map_err(|e| bad_row(table, column, e))
}

// ---------------------------------------------------------------------------------------------
// organizations
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = organizations, check_for_backend(diesel::pg::Pg))]
pub(crate) struct OrganizationRow {
    id: Uuid,
    name: String,
    handle: String,
    billing_email: Option<String>,
    timezone: String,
    plan_tier: String,
    subscription_status: String,
    trial_ends_at: Option<OffsetDateTime>,
    home_currency: String,
    payout_grace_days: i32,
    stripe_account_id: Option<String>,
    created_at: OffsetDateTime,
}

impl OrganizationRow {
    pub(crate) fn into_domain(self) -> Result<Organization, StoreError> {
        const T: &str = "organizations";
        Ok(Organization {
            id: self.id.into(),
            name: self.name,
            handle: Handle::parse(&self.handle).map_err(|e| bad_row(T, "handle", e))?,
            billing_email: self.billing_email,
            timezone: self.timezone,
            plan_tier: self.plan_tier.parse::<PlanTier>().map_err(|e| bad_row(T, "plan_tier", e))?,
            subscription_status: SubscriptionStatus::parse(&self.subscription_status)
                .map_err(|v| bad_row(T, "subscription_status", format!("unknown value {v:?}")))?,
            trial_ends_at: self.trial_ends_at,
            home_currency: currency(T, "home_currency", &self.home_currency)?,
            payout_grace_days: to_u16(T, "payout_grace_days", self.payout_grace_days)?,
            stripe_account_id: self.stripe_account_id,
            created_at: self.created_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = organizations)]
pub(crate) struct NewOrganizationRow<'a> {
    id: Uuid,
    name: &'a str,
    handle: &'a str,
    billing_email: Option<&'a str>,
    timezone: &'a str,
    plan_tier: &'static str,
    subscription_status: &'static str,
    trial_ends_at: Option<OffsetDateTime>,
    home_currency: &'static str,
    payout_grace_days: i32,
    stripe_account_id: Option<&'a str>,
    created_at: OffsetDateTime,
}

impl<'a> From<&'a Organization> for NewOrganizationRow<'a> {
    fn from(o: &'a Organization) -> Self {
        Self {
            id: o.id.as_uuid(),
            name: &o.name,
            handle: o.handle.as_str(),
            billing_email: o.billing_email.as_deref(),
            timezone: &o.timezone,
            plan_tier: o.plan_tier.as_str(),
            subscription_status: o.subscription_status.as_str(),
            trial_ends_at: o.trial_ends_at,
            home_currency: o.home_currency.code(),
            payout_grace_days: i32::from(o.payout_grace_days),
            stripe_account_id: o.stripe_account_id.as_deref(),
            created_at: o.created_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// api_keys
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = api_keys, check_for_backend(diesel::pg::Pg))]
pub(crate) struct ApiKeyRow {
    id: Uuid,
    org_id: Uuid,
    scope: String,
    prefix: String,
    hash: String,
    created_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
}

impl ApiKeyRow {
    pub(crate) fn into_domain(self) -> Result<ApiKey, StoreError> {
        Ok(ApiKey {
            id: self.id.into(),
            org_id: self.org_id.into(),
            scope: ApiKeyScope::parse(&self.scope).map_err(|e| bad_row("api_keys", "scope", e))?,
            prefix: self.prefix,
            hash: self.hash,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = api_keys)]
pub(crate) struct NewApiKeyRow<'a> {
    id: Uuid,
    org_id: Uuid,
    scope: &'static str,
    prefix: &'a str,
    hash: &'a str,
    created_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
}

impl<'a> From<&'a ApiKey> for NewApiKeyRow<'a> {
    fn from(k: &'a ApiKey) -> Self {
        Self {
            id: k.id.as_uuid(),
            org_id: k.org_id.as_uuid(),
            scope: k.scope.as_str(),
            prefix: &k.prefix,
            hash: &k.hash,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// programs
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = programs, check_for_backend(diesel::pg::Pg))]
pub(crate) struct ProgramRow {
    id: Uuid,
    org_id: Uuid,
    name: String,
    slug: String,
    description: Option<String>,
    terms_url: Option<String>,
    is_active: bool,
    default_commission_type: String,
    default_commission_value: i64,
    default_commission_model: String,
    cookie_window_days: i32,
    recurring_months: Option<i32>,
    recurring_delay_invoices: i32,
    attribution_model: String,
    auto_approve: bool,
    custom_domain: Option<String>,
    custom_domain_verified: bool,
    network_visibility: String,
    is_publicly_discoverable: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    archived_at: Option<OffsetDateTime>,
}

impl ProgramRow {
    pub(crate) fn into_domain(self) -> Result<Program, StoreError> {
        const T: &str = "programs";
        Ok(Program {
            id: self.id.into(),
            org_id: self.org_id.into(),
            name: self.name,
            slug: ProgramSlug::parse(&self.slug).map_err(|e| bad_row(T, "slug", e))?,
            description: self.description,
            terms_url: self.terms_url,
            is_active: self.is_active,
            default_commission: commission(T, "default_commission_value", &self.default_commission_type, self.default_commission_value)?,
            default_commission_model: api_enum(T, "default_commission_model", &self.default_commission_model, CommissionModel::parse)?,
            cookie_window_days: to_u16(T, "cookie_window_days", self.cookie_window_days)?,
            recurring_months: self.recurring_months.map(|m| to_u16(T, "recurring_months", m)).transpose()?,
            recurring_delay_invoices: to_u16(T, "recurring_delay_invoices", self.recurring_delay_invoices)?,
            attribution_model: api_enum(T, "attribution_model", &self.attribution_model, AttributionModel::parse)?,
            auto_approve: self.auto_approve,
            custom_domain: self.custom_domain,
            custom_domain_verified: self.custom_domain_verified,
            network_visibility: api_enum(T, "network_visibility", &self.network_visibility, NetworkVisibility::parse)?,
            is_publicly_discoverable: self.is_publicly_discoverable,
            created_at: self.created_at,
            updated_at: self.updated_at,
            archived_at: self.archived_at,
        })
    }
}

/// Used for both INSERT and the full-row UPDATE; `treat_none_as_null` makes an update clear a
/// field the entity cleared instead of silently keeping the old value.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = programs, treat_none_as_null = true)]
pub(crate) struct NewProgramRow<'a> {
    id: Uuid,
    org_id: Uuid,
    name: &'a str,
    slug: &'a str,
    description: Option<&'a str>,
    terms_url: Option<&'a str>,
    is_active: bool,
    default_commission_type: &'static str,
    default_commission_value: i64,
    default_commission_model: &'static str,
    cookie_window_days: i32,
    recurring_months: Option<i32>,
    recurring_delay_invoices: i32,
    attribution_model: &'static str,
    auto_approve: bool,
    custom_domain: Option<&'a str>,
    custom_domain_verified: bool,
    network_visibility: &'static str,
    is_publicly_discoverable: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    archived_at: Option<OffsetDateTime>,
}

impl<'a> From<&'a Program> for NewProgramRow<'a> {
    fn from(p: &'a Program) -> Self {
        Self {
            id: p.id.as_uuid(),
            org_id: p.org_id.as_uuid(),
            name: &p.name,
            slug: p.slug.as_str(),
            description: p.description.as_deref(),
            terms_url: p.terms_url.as_deref(),
            is_active: p.is_active,
            default_commission_type: p.default_commission.kind.as_str(),
            default_commission_value: p.default_commission.value.get(),
            default_commission_model: p.default_commission_model.as_str(),
            cookie_window_days: i32::from(p.cookie_window_days),
            recurring_months: p.recurring_months.map(i32::from),
            recurring_delay_invoices: i32::from(p.recurring_delay_invoices),
            attribution_model: p.attribution_model.as_str(),
            auto_approve: p.auto_approve,
            custom_domain: p.custom_domain.as_deref(),
            custom_domain_verified: p.custom_domain_verified,
            network_visibility: p.network_visibility.as_str(),
            is_publicly_discoverable: p.is_publicly_discoverable,
            created_at: p.created_at,
            updated_at: p.updated_at,
            archived_at: p.archived_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// affiliates
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = affiliates, check_for_backend(diesel::pg::Pg))]
pub(crate) struct AffiliateRow {
    id: Uuid,
    org_id: Uuid,
    program_id: Uuid,
    email: String,
    full_name: Option<String>,
    status: String,
    custom_commission_type: Option<String>,
    custom_commission_value: Option<i64>,
    tags: Vec<String>,
    notes: Option<String>,
    source: String,
    user_id: Option<String>,
    rejection_reason: Option<String>,
    applied_at: OffsetDateTime,
    approved_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl AffiliateRow {
    pub(crate) fn into_domain(self) -> Result<Affiliate, StoreError> {
        const T: &str = "affiliates";
        let custom_commission = match (self.custom_commission_type.as_deref(), self.custom_commission_value) {
            (None, None) => None,
            (Some(kind), Some(value)) => Some(commission(T, "custom_commission_value", kind, value)?),
            _ => return Err(bad_row(T, "custom_commission_type", "type and value must be set together")),
        };
        Ok(Affiliate {
            id: self.id.into(),
            org_id: self.org_id.into(),
            program_id: self.program_id.into(),
            email: Email::parse("email", &self.email).map_err(|e| bad_row(T, "email", e))?,
            full_name: self.full_name,
            status: api_enum(T, "status", &self.status, AffiliateStatus::parse)?,
            custom_commission,
            tags: self.tags,
            notes: self.notes,
            source: api_enum(T, "source", &self.source, AffiliateSource::parse)?,
            user_id: self.user_id,
            rejection_reason: self.rejection_reason,
            applied_at: self.applied_at,
            approved_at: self.approved_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// INSERT and full-row UPDATE. `deleted_at` is deliberately absent: only
/// `delete_affiliate` sets it, and an update never resurrects a deleted row.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = affiliates, treat_none_as_null = true)]
pub(crate) struct NewAffiliateRow<'a> {
    id: Uuid,
    org_id: Uuid,
    program_id: Uuid,
    email: &'a str,
    full_name: Option<&'a str>,
    status: &'static str,
    custom_commission_type: Option<&'static str>,
    custom_commission_value: Option<i64>,
    tags: &'a [String],
    notes: Option<&'a str>,
    source: &'static str,
    user_id: Option<&'a str>,
    rejection_reason: Option<&'a str>,
    applied_at: OffsetDateTime,
    approved_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl<'a> From<&'a Affiliate> for NewAffiliateRow<'a> {
    fn from(a: &'a Affiliate) -> Self {
        Self {
            id: a.id.as_uuid(),
            org_id: a.org_id.as_uuid(),
            program_id: a.program_id.as_uuid(),
            email: a.email.as_str(),
            full_name: a.full_name.as_deref(),
            status: a.status.as_str(),
            custom_commission_type: a.custom_commission.map(|c| c.kind.as_str()),
            custom_commission_value: a.custom_commission.map(|c| c.value.get()),
            tags: &a.tags,
            notes: a.notes.as_deref(),
            source: a.source.as_str(),
            user_id: a.user_id.as_deref(),
            rejection_reason: a.rejection_reason.as_deref(),
            applied_at: a.applied_at,
            approved_at: a.approved_at,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// affiliate_links
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = affiliate_links, check_for_backend(diesel::pg::Pg))]
pub(crate) struct AffiliateLinkRow {
    id: Uuid,
    org_id: Uuid,
    affiliate_id: Uuid,
    slug: String,
    custom_alias: Option<String>,
    is_default: bool,
    format: String,
    created_at: OffsetDateTime,
}

impl AffiliateLinkRow {
    pub(crate) fn into_domain(self) -> Result<AffiliateLink, StoreError> {
        Ok(AffiliateLink {
            id: self.id.into(),
            org_id: self.org_id.into(),
            affiliate_id: self.affiliate_id.into(),
            slug: self.slug,
            custom_alias: self.custom_alias,
            is_default: self.is_default,
            format: api_enum("affiliate_links", "format", &self.format, LinkFormat::parse)?,
            created_at: self.created_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = affiliate_links)]
pub(crate) struct NewAffiliateLinkRow<'a> {
    id: Uuid,
    org_id: Uuid,
    affiliate_id: Uuid,
    slug: &'a str,
    custom_alias: Option<&'a str>,
    is_default: bool,
    format: &'static str,
    created_at: OffsetDateTime,
}

impl<'a> From<&'a AffiliateLink> for NewAffiliateLinkRow<'a> {
    fn from(l: &'a AffiliateLink) -> Self {
        Self {
            id: l.id.as_uuid(),
            org_id: l.org_id.as_uuid(),
            affiliate_id: l.affiliate_id.as_uuid(),
            slug: &l.slug,
            custom_alias: l.custom_alias.as_deref(),
            is_default: l.is_default,
            format: l.format.as_str(),
            created_at: l.created_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// campaign_coupons
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = campaign_coupons, check_for_backend(diesel::pg::Pg))]
pub(crate) struct CampaignCouponRow {
    id: Uuid,
    org_id: Uuid,
    program_id: Uuid,
    name: String,
    discount_type: String,
    discount_value: i64,
    discount_currency: Option<String>,
    duration: String,
    duration_in_months: Option<i32>,
    max_redemptions_per_code: Option<i64>,
    expires_at: Option<OffsetDateTime>,
    allow_affiliate_self_mint: bool,
    overrides_click_attribution: bool,
    is_active: bool,
    stripe_coupon_id: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    archived_at: Option<OffsetDateTime>,
}

impl CampaignCouponRow {
    pub(crate) fn into_domain(self) -> Result<CampaignCoupon, StoreError> {
        const T: &str = "campaign_coupons";
        let discount = match (self.discount_type.as_str(), self.discount_currency.as_deref()) {
            ("PercentOff", None) => DiscountSpec::PercentOff(to_u8(T, "discount_value", self.discount_value)?),
            ("AmountOff", Some(code)) => DiscountSpec::AmountOff(Money::new(self.discount_value, currency(T, "discount_currency", code)?)),
            (kind, _) => return Err(bad_row(T, "discount_type", format!("{kind:?} with an inconsistent discount_currency"))),
        };
        let duration = match (self.duration.as_str(), self.duration_in_months) {
            ("Once", None) => CouponDuration::Once,
            ("Forever", None) => CouponDuration::Forever,
            ("Repeating", Some(m)) => CouponDuration::Repeating(to_u8(T, "duration_in_months", i64::from(m))?),
            (kind, _) => return Err(bad_row(T, "duration", format!("{kind:?} with an inconsistent duration_in_months"))),
        };
        Ok(CampaignCoupon {
            id: self.id.into(),
            org_id: self.org_id.into(),
            program_id: self.program_id.into(),
            name: self.name,
            discount,
            duration,
            max_redemptions_per_code: self.max_redemptions_per_code.map(|n| to_u32(T, "max_redemptions_per_code", n)).transpose()?,
            expires_at: self.expires_at,
            allow_affiliate_self_mint: self.allow_affiliate_self_mint,
            overrides_click_attribution: self.overrides_click_attribution,
            is_active: self.is_active,
            stripe_coupon_id: self.stripe_coupon_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
            archived_at: self.archived_at,
        })
    }
}

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = campaign_coupons, treat_none_as_null = true)]
pub(crate) struct NewCampaignCouponRow<'a> {
    id: Uuid,
    org_id: Uuid,
    program_id: Uuid,
    name: &'a str,
    discount_type: &'static str,
    discount_value: i64,
    discount_currency: Option<&'static str>,
    duration: &'static str,
    duration_in_months: Option<i32>,
    max_redemptions_per_code: Option<i64>,
    expires_at: Option<OffsetDateTime>,
    allow_affiliate_self_mint: bool,
    overrides_click_attribution: bool,
    is_active: bool,
    stripe_coupon_id: Option<&'a str>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    archived_at: Option<OffsetDateTime>,
}

impl<'a> From<&'a CampaignCoupon> for NewCampaignCouponRow<'a> {
    fn from(c: &'a CampaignCoupon) -> Self {
        let (discount_type, discount_value, discount_currency) = match c.discount {
            DiscountSpec::PercentOff(p) => ("PercentOff", i64::from(p), None),
            DiscountSpec::AmountOff(m) => ("AmountOff", m.minor(), Some(m.currency().code())),
        };
        let (duration, duration_in_months) = match c.duration {
            CouponDuration::Once => ("Once", None),
            CouponDuration::Repeating(m) => ("Repeating", Some(i32::from(m))),
            CouponDuration::Forever => ("Forever", None),
        };
        Self {
            id: c.id.as_uuid(),
            org_id: c.org_id.as_uuid(),
            program_id: c.program_id.as_uuid(),
            name: &c.name,
            discount_type,
            discount_value,
            discount_currency,
            duration,
            duration_in_months,
            max_redemptions_per_code: c.max_redemptions_per_code.map(i64::from),
            expires_at: c.expires_at,
            allow_affiliate_self_mint: c.allow_affiliate_self_mint,
            overrides_click_attribution: c.overrides_click_attribution,
            is_active: c.is_active,
            stripe_coupon_id: c.stripe_coupon_id.as_deref(),
            created_at: c.created_at,
            updated_at: c.updated_at,
            archived_at: c.archived_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// affiliate_coupons
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = affiliate_coupons, check_for_backend(diesel::pg::Pg))]
pub(crate) struct AffiliateCouponRow {
    id: Uuid,
    org_id: Uuid,
    program_id: Uuid,
    affiliate_id: Uuid,
    campaign_coupon_id: Uuid,
    code: String,
    stripe_promotion_code_id: Option<String>,
    is_active: bool,
    max_redemptions: Option<i64>,
    expires_at: Option<OffsetDateTime>,
    first_time_order: bool,
    minimum_amount: Option<i64>,
    minimum_amount_currency: Option<String>,
    limit_to_customers: bool,
    customer_id: Option<String>,
    limit_to_affiliate: bool,
    times_redeemed: i64,
    last_redeemed_at: Option<OffsetDateTime>,
    is_auto_generated: bool,
    self_minted: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
}

impl AffiliateCouponRow {
    pub(crate) fn into_domain(self) -> Result<AffiliateCoupon, StoreError> {
        const T: &str = "affiliate_coupons";
        let minimum_amount = match (self.minimum_amount, self.minimum_amount_currency.as_deref()) {
            (None, None) => None,
            (Some(amount), Some(code)) => Some(Money::new(amount, currency(T, "minimum_amount_currency", code)?)),
            _ => return Err(bad_row(T, "minimum_amount", "amount and currency must be set together")),
        };
        Ok(AffiliateCoupon {
            id: self.id.into(),
            org_id: self.org_id.into(),
            program_id: self.program_id.into(),
            affiliate_id: self.affiliate_id.into(),
            campaign_coupon_id: self.campaign_coupon_id.into(),
            code: CouponCode::parse(&self.code).map_err(|e| bad_row(T, "code", e))?,
            stripe_promotion_code_id: self.stripe_promotion_code_id,
            is_active: self.is_active,
            max_redemptions: self.max_redemptions.map(|n| to_u32(T, "max_redemptions", n)).transpose()?,
            expires_at: self.expires_at,
            restrictions: CodeRestrictions {
                first_time_order: self.first_time_order,
                minimum_amount,
                limit_to_customers: self.limit_to_customers,
                customer_id: self.customer_id,
                limit_to_affiliate: self.limit_to_affiliate,
            },
            times_redeemed: self.times_redeemed,
            last_redeemed_at: self.last_redeemed_at,
            is_auto_generated: self.is_auto_generated,
            self_minted: self.self_minted,
            created_at: self.created_at,
            updated_at: self.updated_at,
            revoked_at: self.revoked_at,
        })
    }
}

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = affiliate_coupons, treat_none_as_null = true)]
pub(crate) struct NewAffiliateCouponRow<'a> {
    id: Uuid,
    org_id: Uuid,
    program_id: Uuid,
    affiliate_id: Uuid,
    campaign_coupon_id: Uuid,
    code: &'a str,
    stripe_promotion_code_id: Option<&'a str>,
    is_active: bool,
    max_redemptions: Option<i64>,
    expires_at: Option<OffsetDateTime>,
    first_time_order: bool,
    minimum_amount: Option<i64>,
    minimum_amount_currency: Option<&'static str>,
    limit_to_customers: bool,
    customer_id: Option<&'a str>,
    limit_to_affiliate: bool,
    times_redeemed: i64,
    last_redeemed_at: Option<OffsetDateTime>,
    is_auto_generated: bool,
    self_minted: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
}

impl<'a> From<&'a AffiliateCoupon> for NewAffiliateCouponRow<'a> {
    fn from(c: &'a AffiliateCoupon) -> Self {
        let r = &c.restrictions;
        Self {
            id: c.id.as_uuid(),
            org_id: c.org_id.as_uuid(),
            program_id: c.program_id.as_uuid(),
            affiliate_id: c.affiliate_id.as_uuid(),
            campaign_coupon_id: c.campaign_coupon_id.as_uuid(),
            code: c.code.as_str(),
            stripe_promotion_code_id: c.stripe_promotion_code_id.as_deref(),
            is_active: c.is_active,
            max_redemptions: c.max_redemptions.map(i64::from),
            expires_at: c.expires_at,
            first_time_order: r.first_time_order,
            minimum_amount: r.minimum_amount.map(|m| m.minor()),
            minimum_amount_currency: r.minimum_amount.map(|m| m.currency().code()),
            limit_to_customers: r.limit_to_customers,
            customer_id: r.customer_id.as_deref(),
            limit_to_affiliate: r.limit_to_affiliate,
            times_redeemed: c.times_redeemed,
            last_redeemed_at: c.last_redeemed_at,
            is_auto_generated: c.is_auto_generated,
            self_minted: c.self_minted,
            created_at: c.created_at,
            updated_at: c.updated_at,
            revoked_at: c.revoked_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// conversions
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = conversions, check_for_backend(diesel::pg::Pg))]
pub(crate) struct ConversionRow {
    id: Uuid,
    org_id: Uuid,
    program_id: Uuid,
    affiliate_id: Uuid,
    kind: String,
    status: String,
    amount_minor: i64,
    currency: String,
    commission_minor: i64,
    attribution_method: Option<String>,
    coupon_code: Option<String>,
    affiliate_coupon_id: Option<Uuid>,
    stripe_customer_id: Option<String>,
    stripe_subscription_id: Option<String>,
    external_event_id: Option<String>,
    customer_email: Option<String>,
    denial_reason: Option<String>,
    parent_conversion_id: Option<Uuid>,
    attribution_trace: Value,
    paid_invoices: i64,
    approve_after: OffsetDateTime,
    approved_at: Option<OffsetDateTime>,
    refunded_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl ConversionRow {
    pub(crate) fn into_domain(self) -> Result<Conversion, StoreError> {
        const T: &str = "conversions";
        Ok(Conversion {
            id: self.id.into(),
            org_id: self.org_id.into(),
            program_id: self.program_id.into(),
            affiliate_id: self.affiliate_id.into(),
            kind: api_enum(T, "kind", &self.kind, ConversionType::parse)?,
            status: api_enum(T, "status", &self.status, ConversionStatus::parse)?,
            amount_minor: self.amount_minor,
            currency: currency(T, "currency", &self.currency)?,
            commission_minor: self.commission_minor,
            attribution_method: self.attribution_method,
            coupon_code: self.coupon_code,
            affiliate_coupon_id: self.affiliate_coupon_id.map(Into::into),
            stripe_customer_id: self.stripe_customer_id,
            stripe_subscription_id: self.stripe_subscription_id,
            external_event_id: self.external_event_id,
            customer_email: self.customer_email,
            denial_reason: self.denial_reason,
            parent_conversion_id: self.parent_conversion_id.map(Into::into),
            attribution_trace: self.attribution_trace,
            paid_invoices: to_u32(T, "paid_invoices", self.paid_invoices)?,
            approve_after: self.approve_after,
            approved_at: self.approved_at,
            refunded_at: self.refunded_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// INSERT and full-row UPDATE.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = conversions, treat_none_as_null = true)]
pub(crate) struct NewConversionRow<'a> {
    id: Uuid,
    org_id: Uuid,
    program_id: Uuid,
    affiliate_id: Uuid,
    kind: &'static str,
    status: &'static str,
    amount_minor: i64,
    currency: &'static str,
    commission_minor: i64,
    attribution_method: Option<&'a str>,
    coupon_code: Option<&'a str>,
    affiliate_coupon_id: Option<Uuid>,
    stripe_customer_id: Option<&'a str>,
    stripe_subscription_id: Option<&'a str>,
    external_event_id: Option<&'a str>,
    customer_email: Option<&'a str>,
    denial_reason: Option<&'a str>,
    parent_conversion_id: Option<Uuid>,
    attribution_trace: &'a Value,
    paid_invoices: i64,
    approve_after: OffsetDateTime,
    approved_at: Option<OffsetDateTime>,
    refunded_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl<'a> From<&'a Conversion> for NewConversionRow<'a> {
    fn from(c: &'a Conversion) -> Self {
        Self {
            id: c.id.as_uuid(),
            org_id: c.org_id.as_uuid(),
            program_id: c.program_id.as_uuid(),
            affiliate_id: c.affiliate_id.as_uuid(),
            kind: c.kind.as_str(),
            status: c.status.as_str(),
            amount_minor: c.amount_minor,
            currency: c.currency.code(),
            commission_minor: c.commission_minor,
            attribution_method: c.attribution_method.as_deref(),
            coupon_code: c.coupon_code.as_deref(),
            affiliate_coupon_id: c.affiliate_coupon_id.map(|id| id.as_uuid()),
            stripe_customer_id: c.stripe_customer_id.as_deref(),
            stripe_subscription_id: c.stripe_subscription_id.as_deref(),
            external_event_id: c.external_event_id.as_deref(),
            customer_email: c.customer_email.as_deref(),
            denial_reason: c.denial_reason.as_deref(),
            parent_conversion_id: c.parent_conversion_id.map(|id| id.as_uuid()),
            attribution_trace: &c.attribution_trace,
            paid_invoices: i64::from(c.paid_invoices),
            approve_after: c.approve_after,
            approved_at: c.approved_at,
            refunded_at: c.refunded_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ledger_events
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = ledger_events, check_for_backend(diesel::pg::Pg))]
pub(crate) struct LedgerEventRow {
    id: Uuid,
    org_id: Uuid,
    conversion_id: Uuid,
    kind: String,
    amount_minor: i64,
    commission_minor: i64,
    stripe_invoice_id: Option<String>,
    refunded_total: Option<i64>,
    occurred_at: OffsetDateTime,
    created_at: OffsetDateTime,
}

impl LedgerEventRow {
    pub(crate) fn into_domain(self) -> Result<LedgerEvent, StoreError> {
        Ok(LedgerEvent {
            id: self.id.into(),
            org_id: self.org_id.into(),
            conversion_id: self.conversion_id.into(),
            kind: api_enum("ledger_events", "kind", &self.kind, LedgerKind::parse)?,
            amount_minor: self.amount_minor,
            commission_minor: self.commission_minor,
            stripe_invoice_id: self.stripe_invoice_id,
            refunded_total: self.refunded_total,
            occurred_at: self.occurred_at,
            created_at: self.created_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = ledger_events)]
pub(crate) struct NewLedgerEventRow<'a> {
    id: Uuid,
    org_id: Uuid,
    conversion_id: Uuid,
    kind: &'static str,
    amount_minor: i64,
    commission_minor: i64,
    stripe_invoice_id: Option<&'a str>,
    refunded_total: Option<i64>,
    occurred_at: OffsetDateTime,
    created_at: OffsetDateTime,
}

impl<'a> From<&'a LedgerEvent> for NewLedgerEventRow<'a> {
    fn from(e: &'a LedgerEvent) -> Self {
        Self {
            id: e.id.as_uuid(),
            org_id: e.org_id.as_uuid(),
            conversion_id: e.conversion_id.as_uuid(),
            kind: e.kind.as_str(),
            amount_minor: e.amount_minor,
            commission_minor: e.commission_minor,
            stripe_invoice_id: e.stripe_invoice_id.as_deref(),
            refunded_total: e.refunded_total,
            occurred_at: e.occurred_at,
            created_at: e.created_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// inbox_events
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = inbox_events, check_for_backend(diesel::pg::Pg))]
pub(crate) struct InboxEventRow {
    id: String,
    org_id: Option<Uuid>,
    account: Option<String>,
    event_type: String,
    payload: String,
    status: String,
    attempts: i64,
    next_attempt_at: OffsetDateTime,
    locked_until: Option<OffsetDateTime>,
    last_error: Option<String>,
    received_at: OffsetDateTime,
    processed_at: Option<OffsetDateTime>,
    waiting_for: Option<String>,
    replays: i64,
}

impl InboxEventRow {
    pub(crate) fn into_domain(self) -> Result<InboxEvent, StoreError> {
        const T: &str = "inbox_events";
        Ok(InboxEvent {
            id: self.id,
            org_id: self.org_id.map(Into::into),
            account: self.account,
            event_type: self.event_type,
            payload: self.payload,
            status: api_enum(T, "status", &self.status, InboxStatus::parse)?,
            attempts: to_u32(T, "attempts", self.attempts)?,
            next_attempt_at: self.next_attempt_at,
            locked_until: self.locked_until,
            last_error: self.last_error,
            received_at: self.received_at,
            processed_at: self.processed_at,
            waiting_for: self.waiting_for,
            replays: to_u32(T, "replays", self.replays)?,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = inbox_events)]
pub(crate) struct NewInboxEventRow<'a> {
    id: &'a str,
    org_id: Option<Uuid>,
    account: Option<&'a str>,
    event_type: &'a str,
    payload: &'a str,
    status: &'static str,
    attempts: i64,
    next_attempt_at: OffsetDateTime,
    locked_until: Option<OffsetDateTime>,
    last_error: Option<&'a str>,
    received_at: OffsetDateTime,
    processed_at: Option<OffsetDateTime>,
    waiting_for: Option<&'a str>,
    replays: i64,
}

impl<'a> From<&'a InboxEvent> for NewInboxEventRow<'a> {
    fn from(e: &'a InboxEvent) -> Self {
        Self {
            id: &e.id,
            org_id: e.org_id.map(|id| id.as_uuid()),
            account: e.account.as_deref(),
            event_type: &e.event_type,
            payload: &e.payload,
            status: e.status.as_str(),
            attempts: i64::from(e.attempts),
            next_attempt_at: e.next_attempt_at,
            locked_until: e.locked_until,
            last_error: e.last_error.as_deref(),
            received_at: e.received_at,
            processed_at: e.processed_at,
            waiting_for: e.waiting_for.as_deref(),
            replays: i64::from(e.replays),
        }
    }
}

/// The processing state `update_inbox_event` replaces; what arrived (id, account, type,
/// payload, arrival time) never changes.
#[derive(AsChangeset)]
#[diesel(table_name = inbox_events, treat_none_as_null = true)]
pub(crate) struct InboxStateChange<'a> {
    org_id: Option<Uuid>,
    status: &'static str,
    attempts: i64,
    next_attempt_at: OffsetDateTime,
    locked_until: Option<OffsetDateTime>,
    last_error: Option<&'a str>,
    processed_at: Option<OffsetDateTime>,
    waiting_for: Option<&'a str>,
    replays: i64,
}

impl<'a> From<&'a InboxEvent> for InboxStateChange<'a> {
    fn from(e: &'a InboxEvent) -> Self {
        Self {
            org_id: e.org_id.map(|id| id.as_uuid()),
            status: e.status.as_str(),
            attempts: i64::from(e.attempts),
            next_attempt_at: e.next_attempt_at,
            locked_until: e.locked_until,
            last_error: e.last_error.as_deref(),
            processed_at: e.processed_at,
            waiting_for: e.waiting_for.as_deref(),
            replays: i64::from(e.replays),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// webhook_endpoints
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhook_endpoints, check_for_backend(diesel::pg::Pg))]
pub(crate) struct WebhookEndpointRow {
    id: Uuid,
    org_id: Uuid,
    url: String,
    description: Option<String>,
    events: Vec<String>,
    secret: String,
    status: String,
    disabled_reason: Option<String>,
    consecutive_failures: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl WebhookEndpointRow {
    pub(crate) fn into_domain(self) -> Result<WebhookEndpoint, StoreError> {
        const T: &str = "webhook_endpoints";
        Ok(WebhookEndpoint {
            id: self.id.into(),
            org_id: self.org_id.into(),
            url: self.url,
            description: self.description,
            events: self.events,
            secret: self.secret,
            status: api_enum(T, "status", &self.status, EndpointStatus::parse)?,
            disabled_reason: self.disabled_reason,
            consecutive_failures: to_u32(T, "consecutive_failures", self.consecutive_failures)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// INSERT and full-row UPDATE.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = webhook_endpoints, treat_none_as_null = true)]
pub(crate) struct NewWebhookEndpointRow<'a> {
    id: Uuid,
    org_id: Uuid,
    url: &'a str,
    description: Option<&'a str>,
    events: &'a [String],
    secret: &'a str,
    status: &'static str,
    disabled_reason: Option<&'a str>,
    consecutive_failures: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl<'a> From<&'a WebhookEndpoint> for NewWebhookEndpointRow<'a> {
    fn from(e: &'a WebhookEndpoint) -> Self {
        Self {
            id: e.id.as_uuid(),
            org_id: e.org_id.as_uuid(),
            url: &e.url,
            description: e.description.as_deref(),
            events: &e.events,
            secret: &e.secret,
            status: e.status.as_str(),
            disabled_reason: e.disabled_reason.as_deref(),
            consecutive_failures: i64::from(e.consecutive_failures),
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// outbox_events
// ---------------------------------------------------------------------------------------------

#[derive(Insertable)]
#[diesel(table_name = outbox_events)]
pub(crate) struct NewOutboxEventRow<'a> {
    id: Uuid,
    org_id: Uuid,
    event_type: &'a str,
    data: &'a Value,
    created_at: OffsetDateTime,
}

impl<'a> From<&'a OutboxEvent> for NewOutboxEventRow<'a> {
    fn from(e: &'a OutboxEvent) -> Self {
        Self { id: e.id.as_uuid(), org_id: e.org_id.as_uuid(), event_type: &e.event_type, data: &e.data, created_at: e.created_at }
    }
}

// ---------------------------------------------------------------------------------------------
// webhook_deliveries
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries, check_for_backend(diesel::pg::Pg))]
pub(crate) struct DeliveryRow {
    id: Uuid,
    org_id: Uuid,
    endpoint_id: Uuid,
    event_id: Uuid,
    event_type: String,
    body: String,
    status: String,
    attempts: i64,
    next_attempt_at: OffsetDateTime,
    locked_until: Option<OffsetDateTime>,
    last_status: Option<i32>,
    last_error: Option<String>,
    created_at: OffsetDateTime,
    delivered_at: Option<OffsetDateTime>,
}

impl DeliveryRow {
    pub(crate) fn into_domain(self) -> Result<Delivery, StoreError> {
        const T: &str = "webhook_deliveries";
        Ok(Delivery {
            id: self.id.into(),
            org_id: self.org_id.into(),
            endpoint_id: self.endpoint_id.into(),
            event_id: self.event_id.into(),
            event_type: self.event_type,
            body: self.body,
            status: api_enum(T, "status", &self.status, DeliveryStatus::parse)?,
            attempts: to_u32(T, "attempts", self.attempts)?,
            next_attempt_at: self.next_attempt_at,
            locked_until: self.locked_until,
            last_status: self.last_status.map(|s| to_u16(T, "last_status", s)).transpose()?,
            last_error: self.last_error,
            created_at: self.created_at,
            delivered_at: self.delivered_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = webhook_deliveries)]
pub(crate) struct NewDeliveryRow<'a> {
    id: Uuid,
    org_id: Uuid,
    endpoint_id: Uuid,
    event_id: Uuid,
    event_type: &'a str,
    body: &'a str,
    status: &'static str,
    attempts: i64,
    next_attempt_at: OffsetDateTime,
    locked_until: Option<OffsetDateTime>,
    last_status: Option<i32>,
    last_error: Option<&'a str>,
    created_at: OffsetDateTime,
    delivered_at: Option<OffsetDateTime>,
}

impl<'a> From<&'a Delivery> for NewDeliveryRow<'a> {
    fn from(d: &'a Delivery) -> Self {
        Self {
            id: d.id.as_uuid(),
            org_id: d.org_id.as_uuid(),
            endpoint_id: d.endpoint_id.as_uuid(),
            event_id: d.event_id.as_uuid(),
            event_type: &d.event_type,
            body: &d.body,
            status: d.status.as_str(),
            attempts: i64::from(d.attempts),
            next_attempt_at: d.next_attempt_at,
            locked_until: d.locked_until,
            last_status: d.last_status.map(i32::from),
            last_error: d.last_error.as_deref(),
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// The retry state `update_delivery` replaces; what is delivered (endpoint, event, body) and
/// when it was created never change.
#[derive(AsChangeset)]
#[diesel(table_name = webhook_deliveries, treat_none_as_null = true)]
pub(crate) struct DeliveryStateChange<'a> {
    status: &'static str,
    attempts: i64,
    next_attempt_at: OffsetDateTime,
    locked_until: Option<OffsetDateTime>,
    last_status: Option<i32>,
    last_error: Option<&'a str>,
    delivered_at: Option<OffsetDateTime>,
}

impl<'a> From<&'a Delivery> for DeliveryStateChange<'a> {
    fn from(d: &'a Delivery) -> Self {
        Self {
            status: d.status.as_str(),
            attempts: i64::from(d.attempts),
            next_attempt_at: d.next_attempt_at,
            locked_until: d.locked_until,
            last_status: d.last_status.map(i32::from),
            last_error: d.last_error.as_deref(),
            delivered_at: d.delivered_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// audit_log
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_log, check_for_backend(diesel::pg::Pg))]
pub(crate) struct AuditRow {
    id: Uuid,
    org_id: Uuid,
    actor_type: String,
    actor_id: Option<String>,
    action: String,
    entity_type: String,
    entity_id: String,
    before: Option<Value>,
    after: Option<Value>,
    created_at: OffsetDateTime,
}

impl AuditRow {
    pub(crate) fn into_domain(self) -> Result<AuditEntry, StoreError> {
        const T: &str = "audit_log";
        let actor = match (self.actor_type.as_str(), self.actor_id) {
            ("api_key", Some(id)) => AuditActor::ApiKey(id),
            ("user", Some(id)) => AuditActor::User(id),
            ("system", _) => AuditActor::System,
            // `mcp` and `admin` are allowed by the schema for writers to come, but the domain
            // has no variant for them yet: refuse rather than misattribute the entry.
            (kind, id) => {
                return Err(bad_row(
                    T,
                    "actor_type",
                    format!("{kind:?} (actor_id {}) has no domain actor", if id.is_some() { "set" } else { "missing" }),
                ))
            }
        };
        Ok(AuditEntry {
            id: self.id.into(),
            org_id: self.org_id.into(),
            actor,
            action: self.action,
            entity_type: intern_entity_type(&self.entity_type),
            entity_id: self.entity_id,
            before: self.before,
            after: self.after,
            created_at: self.created_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = audit_log)]
pub(crate) struct NewAuditRow<'a> {
    id: Uuid,
    org_id: Uuid,
    actor_type: &'static str,
    actor_id: Option<&'a str>,
    action: &'a str,
    entity_type: &'static str,
    entity_id: &'a str,
    before: Option<&'a Value>,
    after: Option<&'a Value>,
    created_at: OffsetDateTime,
}

impl<'a> From<&'a AuditEntry> for NewAuditRow<'a> {
    fn from(e: &'a AuditEntry) -> Self {
        Self {
            id: e.id.as_uuid(),
            org_id: e.org_id.as_uuid(),
            actor_type: e.actor.kind(),
            actor_id: e.actor.id(),
            action: &e.action,
            entity_type: e.entity_type,
            entity_id: &e.entity_id,
            before: e.before.as_ref(),
            after: e.after.as_ref(),
            created_at: e.created_at,
        }
    }
}

/// The entity types the domain writes today, so reading them back allocates nothing.
const KNOWN_ENTITY_TYPES: &[&str] = &[
    "organization",
    "api_key",
    "program",
    "affiliate",
    "affiliate_link",
    "link",
    "campaign_coupon",
    "affiliate_coupon",
    "conversion",
    "subscription_event",
    "payout",
    "webhook_endpoint",
];

/// `AuditEntry::entity_type` is a `&'static str` (the domain only ever writes literals), so a
/// value read back must become one. Known names map to the table above; a name written by a
/// newer build is leaked once and reused, which bounds the leak by the number of distinct
/// entity types rather than the number of reads.
fn intern_entity_type(raw: &str) -> &'static str {
    if let Some(known) = KNOWN_ENTITY_TYPES.iter().find(|k| **k == raw) {
        return known;
    }
    static EXTRA: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    // A poisoned lock only means another thread panicked while inserting; the set is still
    // a valid set of leaked strings.
    let mut extra = EXTRA.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = extra.get(raw) {
        return found;
    }
    let leaked: &'static str = Box::leak(raw.to_owned().into_boxed_str());
    extra.insert(leaked);
    leaked
}
