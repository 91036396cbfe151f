//! The organizations capability's bodies: the profile and the billing state with its usage
//! limits. Inbound adapter side of `rekomi_domain::orgs`.

use rekomi_domain::kernel::plan::SubscriptionStatus;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::dto::{value_set, PlanTierValue};

value_set!(/// A subscription status.
    SubscriptionStatusValue = "SubscriptionStatus", "The state of the organization's Rekomi subscription.",
    [
        SubscriptionStatus::None,
        SubscriptionStatus::Trialing,
        SubscriptionStatus::Active,
        SubscriptionStatus::PastDue,
        SubscriptionStatus::Canceled
    ]
    .iter()
    .map(SubscriptionStatus::as_str));

/// `GET /api/organizations/me`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationResponse {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub billing_email: Option<String>,
    pub timezone: String,
    pub primary_brand_color: Option<String>,
    pub logo_url: Option<String>,
    pub description: Option<String>,
    pub white_label_enabled: bool,
    #[schema(value_type = PlanTierValue)]
    pub plan_tier: &'static str,
    #[schema(value_type = SubscriptionStatusValue)]
    pub subscription_status: &'static str,
    pub trial_ends_at: Option<String>,
    pub payout_grace_days: u16,
    pub payout_grace_days_max: u16,
    /// The smallest payout, minor units (Rekomi's addition).
    pub minimum_payout_cents: i64,
}

/// One usage counter.
#[derive(Debug, Serialize, ToSchema)]
pub struct Limit {
    pub current: i64,
    pub max: Option<i64>,
}

/// The plan-limits snapshot.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub affiliates: Limit,
    pub campaigns: Limit,
    /// Paid out since the start of the month (UTC), in the home currency's minor units.
    pub partner_payouts_this_month_cents: Limit,
}

/// `PATCH /api/organizations/me` (dashboard Owners): the fields not sent stay as they are.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganizationPatch {
    /// Days a sale's commission waits before it is payable, 0 up to `payoutGraceDaysMax`.
    #[serde(default, deserialize_with = "crate::dto::present")]
    pub payout_grace_days: Option<u16>,
    /// The smallest payout in minor units (default 0): smaller balances wait for the next run.
    #[serde(default, deserialize_with = "crate::dto::present")]
    pub minimum_payout_cents: Option<i64>,
}

/// `GET /api/v1/settings/home-currency`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HomeCurrencyResponse {
    #[schema(value_type = crate::dto::CurrencyValue)]
    pub home_currency: &'static str,
    pub changed_at: Option<String>,
    pub supported_currencies: Vec<&'static str>,
    /// Whether the caller's plan lets it change (Pro).
    pub can_change: bool,
}

/// `PUT /api/v1/settings/home-currency` body.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HomeCurrencyRequest {
    #[schema(value_type = crate::dto::CurrencyValue)]
    pub home_currency: String,
}

/// `PUT /api/v1/settings/home-currency` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HomeCurrencyChangeResponse {
    #[schema(value_type = crate::dto::CurrencyValue)]
    pub home_currency: &'static str,
    pub changed: bool,
    pub changed_at: Option<String>,
}

/// `GET /api/billing/state`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingStateResponse {
    #[schema(value_type = PlanTierValue)]
    pub plan_tier: &'static str,
    #[schema(value_type = SubscriptionStatusValue)]
    pub subscription_status: &'static str,
    pub trial_ends_at: Option<String>,
    pub interval: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub stripe_customer_linked: bool,
    pub stripe_connect_linked: bool,
    pub limits: Limits,
}
