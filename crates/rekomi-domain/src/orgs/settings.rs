//! An organization's money settings: payout grace days and minimum payout (the profile's
//! `PATCH /api/organizations/me`, JWT Owner only) and the home currency (Pro only to change).

use serde_json::json;
use time::OffsetDateTime;

use crate::audit::AuditAction;
use crate::kernel::actor::{BrandActor, Role};
use crate::kernel::error::{DomainError, FieldError};
use crate::kernel::money::Currency;
use crate::kernel::plan::{PlanRequired, PlanTier, SubscriptionStatus};
use crate::orgs::Organization;
use crate::services::{BrandContext, Services};

/// What a profile update changes (`None`: unchanged).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrgSettingsPatch {
    /// Days a sale's commission waits before it is payable: `0..=payoutGraceDaysMax` of the plan.
    pub payout_grace_days: Option<u16>,
    /// The smallest payout, minor units (zero or more).
    pub minimum_payout_minor: Option<i64>,
}

/// The home currency as `GET /api/v1/settings/home-currency` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HomeCurrencyView {
    /// The currency.
    pub home_currency: Currency,
    /// When it last changed.
    pub changed_at: Option<OffsetDateTime>,
    /// Whether the caller's plan lets it change (Pro).
    pub can_change: bool,
}

/// What a change of the home currency did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HomeCurrencyChange {
    /// The currency now.
    pub home_currency: Currency,
    /// Whether it changed (false for the same currency again).
    pub changed: bool,
    /// When it last changed.
    pub changed_at: Option<OffsetDateTime>,
}

/// The plan that may change the home currency.
pub const HOME_CURRENCY_PLAN: PlanTier = PlanTier::Pro;

fn settings_json(o: &Organization) -> serde_json::Value {
    json!({"payoutGraceDays": o.payout_grace_days, "minimumPayoutCents": o.minimum_payout_minor})
}

impl Services {
    /// Changes the organization's payout settings. Dashboard Owners only: API keys cannot
    /// change the profile. Entries already recorded keep their payable time.
    ///
    /// # Errors
    /// `jwt_required` or `insufficient_role` (403); `validation_failed` on `payoutGraceDays` above
    /// the plan's maximum or a negative `minimumPayoutCents`; storage.
    pub async fn update_org_settings(&self, ctx: &BrandContext, patch: OrgSettingsPatch) -> Result<Organization, DomainError> {
        if matches!(ctx.actor, BrandActor::ApiKey { .. }) {
            return Err(DomainError::Forbidden {
                code: "jwt_required",
                message: "the organization profile changes only from the dashboard".to_owned(),
            });
        }
        ctx.require_role(Role::Owner)?;
        let max = ctx.org.plan_tier.payout_grace_days_max();
        if patch.payout_grace_days.is_some_and(|d| d > max) {
            return Err(FieldError::invalid(
                "payoutGraceDays",
                format!("payoutGraceDays must be between 0 and {max} on the {} plan", ctx.org.plan_tier),
            )
            .into());
        }
        if patch.minimum_payout_minor.is_some_and(|m| m < 0) {
            return Err(FieldError::invalid("minimumPayoutCents", "minimumPayoutCents must not be negative").into());
        }
        let now = self.now();
        let org_id = ctx.org_id();
        let audit = self.audit(org_id, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            let before = tx.org(org_id)?.ok_or(DomainError::NotFound("organization_not_found"))?;
            let mut after = before.clone();
            after.payout_grace_days = patch.payout_grace_days.unwrap_or(before.payout_grace_days);
            after.minimum_payout_minor = patch.minimum_payout_minor.unwrap_or(before.minimum_payout_minor);
            if after != before {
                tx.update_org_settings(&after)?;
                audit.record(
                    tx,
                    AuditAction::OrgPayoutSettingsChanged,
                    "organization",
                    org_id.to_string(),
                    Some(settings_json(&before)),
                    Some(settings_json(&after)),
                )?;
            }
            Ok(after)
        })
        .await
    }

    /// The organization's home currency.
    pub fn home_currency(&self, ctx: &BrandContext) -> HomeCurrencyView {
        HomeCurrencyView {
            home_currency: ctx.org.home_currency,
            changed_at: ctx.org.home_currency_changed_at,
            can_change: ctx.org.plan_tier >= HOME_CURRENCY_PLAN,
        }
    }

    /// Changes the home currency (Pro plan, Owner). The same currency again changes nothing.
    /// Recorded entries keep their stored rates; dashboards normalize on read.
    ///
    /// # Errors
    /// `plan_tier_required` (402) below Pro, `insufficient_role` (403), storage.
    pub async fn set_home_currency(&self, ctx: &BrandContext, currency: Currency) -> Result<HomeCurrencyChange, DomainError> {
        ctx.require_role(Role::Owner)?;
        if ctx.org.plan_tier < HOME_CURRENCY_PLAN {
            let trialing = ctx.org.status_at(ctx.now) == SubscriptionStatus::Trialing;
            return Err(PlanRequired { required: HOME_CURRENCY_PLAN, current: ctx.org.plan_tier, trialing }.into());
        }
        let now = self.now();
        let org_id = ctx.org_id();
        let audit = self.audit(org_id, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            let mut org = tx.org(org_id)?.ok_or(DomainError::NotFound("organization_not_found"))?;
            if org.home_currency == currency {
                return Ok(HomeCurrencyChange { home_currency: currency, changed: false, changed_at: org.home_currency_changed_at });
            }
            let before = org.home_currency;
            org.home_currency = currency;
            org.home_currency_changed_at = Some(now);
            tx.update_org_settings(&org)?;
            audit.record(
                tx,
                AuditAction::OrgHomeCurrencyChanged,
                "organization",
                org_id.to_string(),
                Some(json!({"homeCurrency": before.code()})),
                Some(json!({"homeCurrency": currency.code()})),
            )?;
            Ok(HomeCurrencyChange { home_currency: currency, changed: true, changed_at: Some(now) })
        })
        .await
    }
}
