//! Organization, API key and authentication use cases.

use crate::audit::AuditAction;
use time::{Duration, OffsetDateTime};

use crate::kernel::actor::{AuditActor, BrandActor};
use crate::kernel::error::DomainError;
use crate::kernel::ids::{ApiKeyId, OrgId};
use crate::kernel::money::Currency;
use crate::kernel::plan::{PlanTier, SubscriptionStatus};
use crate::kernel::stripe_ids::StripeAccountId;
use crate::orgs::{hash_api_key, ApiKey, ApiKeyScope, ApiKeySecret, Handle, OrgUsage, Organization, API_KEY_PREFIX};
use crate::ports::store::constraints;

use crate::services::{BrandContext, Services};

/// The trial length of a new Trial organization.
const TRIAL_DAYS: i64 = 14;

/// An organization to create (admin command).
#[derive(Clone, Debug)]
pub struct NewOrganization {
    /// Display name.
    pub name: String,
    /// Subdomain handle.
    pub handle: Handle,
    /// Plan.
    pub plan: PlanTier,
}

/// The billing state and plan-limits snapshot.
#[derive(Clone, Debug)]
pub struct BillingState {
    /// The organization.
    pub org: Organization,
    /// Current usage.
    pub usage: OrgUsage,
    /// Payouts paid since the start of the month (UTC) in the home currency, minor units.
    pub paid_out_this_month: i64,
}

impl Services {
    /// Creates an organization with a `read_write` API key (admin command, actor `system`).
    /// A Trial organization starts trialing for 14 days; paid tiers start Active.
    ///
    /// # Errors
    /// `handle_already_taken`, validation.
    pub async fn create_organization(&self, new: NewOrganization) -> Result<(Organization, ApiKeySecret), DomainError> {
        let now = self.now();
        let name = crate::kernel::text::validate_name("name", &new.name, 200)?;
        let (status, trial_ends_at) = if new.plan == PlanTier::Trial {
            (SubscriptionStatus::Trialing, Some(now + Duration::days(TRIAL_DAYS)))
        } else {
            (SubscriptionStatus::Active, None)
        };
        let org = Organization {
            id: OrgId::from_uuid(self.new_uuid(now)),
            name,
            handle: new.handle,
            billing_email: None,
            timezone: "UTC".to_owned(),
            plan_tier: new.plan,
            subscription_status: status,
            trial_ends_at,
            home_currency: Currency::USD,
            payout_grace_days: new.plan.payout_grace_days_max().min(30),
            minimum_payout_minor: 0,
            home_currency_changed_at: None,
            stripe_account_id: None,
            created_at: now,
        };
        let (key, secret) = self.new_api_key(org.id, ApiKeyScope::ReadWrite, now);
        let audit = self.audit(org.id, AuditActor::System, now);
        let created = org.clone();
        self.tx(move |tx| {
            tx.insert_org(&org).map_err(|e| {
                if e.is_conflict_on(constraints::ORG_HANDLE) {
                    DomainError::conflict("handle_already_taken", "another organization uses this handle")
                } else {
                    e.into()
                }
            })?;
            tx.insert_api_key(&key)?;
            audit.record(
                tx,
                AuditAction::OrganizationCreated,
                "organization",
                org.id.to_string(),
                None,
                Some(serde_json::json!({"name": org.name, "handle": org.handle.as_str(), "planTier": org.plan_tier.as_str()})),
            )?;
            audit.record(
                tx,
                AuditAction::ApiKeyCreated,
                "api_key",
                key.id.to_string(),
                None,
                Some(serde_json::json!({"prefix": key.prefix, "scope": key.scope.as_str()})),
            )?;
            Ok(())
        })
        .await?;
        Ok((created, secret))
    }

    /// Creates an API key for an organization (admin command).
    ///
    /// # Errors
    /// `organization_not_found`.
    pub async fn create_api_key(&self, org_id: OrgId, scope: ApiKeyScope) -> Result<ApiKeySecret, DomainError> {
        let now = self.now();
        let (key, secret) = self.new_api_key(org_id, scope, now);
        let audit = self.audit(org_id, AuditActor::System, now);
        self.tx(move |tx| {
            tx.org(org_id)?.ok_or(DomainError::NotFound("organization_not_found"))?;
            tx.insert_api_key(&key)?;
            audit.record(
                tx,
                AuditAction::ApiKeyCreated,
                "api_key",
                key.id.to_string(),
                None,
                Some(serde_json::json!({"prefix": key.prefix, "scope": key.scope.as_str()})),
            )?;
            Ok(())
        })
        .await?;
        Ok(secret)
    }

    /// Links an organization to its Stripe Connect account (`acct_…`), or unlinks it with
    /// `None` (admin command). Stripe calls for a linked organization carry `Stripe-Account`.
    ///
    /// # Errors
    /// `organization_not_found`; `stripe_objects_exist`; `stripe_account_already_linked`.
    pub async fn link_stripe_account(&self, org_id: OrgId, account: Option<StripeAccountId>) -> Result<(), DomainError> {
        let now = self.now();
        let audit = self.audit(org_id, AuditActor::System, now);
        self.tx(move |tx| {
            let before = tx.org(org_id)?.ok_or(DomainError::NotFound("organization_not_found"))?.stripe_account_id;
            // Coupons and codes live on the account they were created on; moving the
            // organization would leave them unreachable (deactivations would 404 elsewhere).
            if before != account && tx.org_has_stripe_objects(org_id)? {
                return Err(DomainError::conflict(
                    "stripe_objects_exist",
                    "this organization already has coupons on its current Stripe account; it cannot be moved to another",
                ));
            }
            tx.set_stripe_account(org_id, account.as_ref()).map_err(|e| {
                if e.is_conflict_on(constraints::ORG_STRIPE_ACCOUNT) {
                    DomainError::conflict("stripe_account_already_linked", "another organization is linked to this Stripe account")
                } else {
                    e.into()
                }
            })?;
            audit.record(
                tx,
                AuditAction::OrganizationStripeAccountLinked,
                "organization",
                org_id.to_string(),
                Some(serde_json::json!({ "stripeAccountId": before.as_ref().map(StripeAccountId::as_str) })),
                Some(serde_json::json!({ "stripeAccountId": account.as_ref().map(StripeAccountId::as_str) })),
            )?;
            Ok(())
        })
        .await
    }

    fn new_api_key(&self, org_id: OrgId, scope: ApiKeyScope, now: OffsetDateTime) -> (ApiKey, ApiKeySecret) {
        let secret = ApiKeySecret::generate(self.entropy.as_ref());
        let key = ApiKey {
            id: ApiKeyId::from_uuid(self.new_uuid(now)),
            org_id,
            scope,
            prefix: secret.display_prefix(),
            hash: hash_api_key(secret.expose()),
            created_at: now,
            revoked_at: None,
        };
        (key, secret)
    }

    /// Resolves an `rk_live_…` secret to its caller and scope. `None` when the key is unknown,
    /// revoked or malformed.
    ///
    /// # Errors
    /// Storage only.
    pub async fn authenticate_api_key(&self, secret: &str) -> Result<Option<(BrandContext, ApiKeyScope)>, DomainError> {
        if !secret.starts_with(API_KEY_PREFIX) || secret.len() > 128 {
            return Ok(None);
        }
        let hash = hash_api_key(secret);
        let now = self.now();
        self.tx(move |tx| {
            let Some(key) = tx.api_key_by_hash(&hash)? else { return Ok(None) };
            let Some(org) = tx.org(key.org_id)? else { return Ok(None) };
            let actor = BrandActor::ApiKey { org: org.id, key: key.id };
            Ok(Some((BrandContext { actor, org, now }, key.scope)))
        })
        .await
    }

    /// Loads the organization of a dashboard user. `None` when it does not exist.
    ///
    /// # Errors
    /// Storage only.
    pub async fn brand_context_for_user(&self, actor: BrandActor) -> Result<Option<BrandContext>, DomainError> {
        let org_id = actor.org();
        let org = self.tx(move |tx| Ok(tx.org(org_id)?)).await?;
        let now = self.now();
        Ok(org.map(|org| BrandContext { actor, org, now }))
    }

    /// The caller's organization profile.
    pub fn organization_profile(&self, ctx: &BrandContext) -> Organization {
        ctx.org.clone()
    }

    /// The billing state with current usage.
    ///
    /// # Errors
    /// Storage only.
    pub async fn billing_state(&self, ctx: &BrandContext) -> Result<BillingState, DomainError> {
        let org = ctx.org.clone();
        let id = org.id;
        let home = org.home_currency;
        let now = self.now();
        let month_start = now.replace_day(1).unwrap_or(now).replace_time(time::Time::MIDNIGHT);
        let (usage, paid_out_this_month) = self.tx(move |tx| Ok((tx.org_usage(id)?, tx.paid_out_since(id, home, month_start)?))).await?;
        Ok(BillingState { org, usage, paid_out_this_month })
    }

    /// Whether the store answers.
    ///
    /// # Errors
    /// `Store(Unavailable)` when it does not.
    pub async fn readiness(&self) -> Result<(), DomainError> {
        Ok(self.store.ping().await?)
    }
}
