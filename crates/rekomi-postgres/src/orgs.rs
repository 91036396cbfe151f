//! Organizations and their API keys in PostgreSQL: the rows of `organizations` and
//! `api_keys`, and [`OrgRepo`] for [`PgTx`]. An outbound adapter of the hexagon, the
//! `orgs` capability's side of the storage port.

use diesel::dsl::count_star;
use diesel::prelude::*;
use rekomi_domain::kernel::ids::OrgId;
use rekomi_domain::kernel::plan::{PlanTier, SubscriptionStatus};
use rekomi_domain::kernel::stripe_ids::StripeAccountId;
use rekomi_domain::orgs::{ApiKey, ApiKeyScope, Handle, OrgRepo, OrgUsage, Organization};
use rekomi_domain::ports::store::StoreError;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::columns::{currency, stripe_id_opt, to_u16};
use crate::error::bad_row;
use crate::schema::{affiliates, api_keys, organizations, programs};
use crate::tx::{decode, PgTx};

// ---------------------------------------------------------------------------------------------
// organizations
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = organizations, check_for_backend(diesel::pg::Pg))]
struct OrganizationRow {
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
    minimum_payout_minor: i64,
    home_currency_changed_at: Option<OffsetDateTime>,
    stripe_account_id: Option<String>,
    created_at: OffsetDateTime,
}

impl OrganizationRow {
    fn into_domain(self) -> Result<Organization, StoreError> {
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
            minimum_payout_minor: self.minimum_payout_minor,
            home_currency_changed_at: self.home_currency_changed_at,
            stripe_account_id: stripe_id_opt(T, "stripe_account_id", self.stripe_account_id.as_deref())?,
            created_at: self.created_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = organizations)]
struct NewOrganizationRow<'a> {
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
    minimum_payout_minor: i64,
    home_currency_changed_at: Option<OffsetDateTime>,
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
            minimum_payout_minor: o.minimum_payout_minor,
            home_currency_changed_at: o.home_currency_changed_at,
            stripe_account_id: o.stripe_account_id.as_ref().map(StripeAccountId::as_str),
            created_at: o.created_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// api_keys
// ---------------------------------------------------------------------------------------------

#[derive(Queryable, Selectable)]
#[diesel(table_name = api_keys, check_for_backend(diesel::pg::Pg))]
struct ApiKeyRow {
    id: Uuid,
    org_id: Uuid,
    scope: String,
    prefix: String,
    hash: String,
    created_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
}

impl ApiKeyRow {
    fn into_domain(self) -> Result<ApiKey, StoreError> {
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
struct NewApiKeyRow<'a> {
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

impl OrgRepo for PgTx<'_> {
    fn insert_org(&mut self, org: &Organization) -> Result<(), StoreError> {
        let row = NewOrganizationRow::from(org);
        self.guarded_write(|c| diesel::insert_into(organizations::table).values(&row).execute(c))?;
        Ok(())
    }

    fn org(&mut self, id: OrgId) -> Result<Option<Organization>, StoreError> {
        let row = self.read(|c| organizations::table.find(id.as_uuid()).select(OrganizationRow::as_select()).first(c).optional())?;
        row.map(OrganizationRow::into_domain).transpose()
    }

    fn update_org_settings(&mut self, org: &Organization) -> Result<bool, StoreError> {
        let updated = self.write(|c| {
            diesel::update(organizations::table.find(org.id.as_uuid()))
                .set((
                    organizations::payout_grace_days.eq(i32::from(org.payout_grace_days)),
                    organizations::minimum_payout_minor.eq(org.minimum_payout_minor),
                    organizations::home_currency.eq(org.home_currency.code()),
                    organizations::home_currency_changed_at.eq(org.home_currency_changed_at),
                ))
                .execute(c)
        })?;
        Ok(updated == 1)
    }

    fn set_stripe_account(&mut self, id: OrgId, account: Option<&StripeAccountId>) -> Result<bool, StoreError> {
        let account = account.map(StripeAccountId::as_str);
        let updated = self.guarded_write(|c| {
            diesel::update(organizations::table.find(id.as_uuid())).set(organizations::stripe_account_id.eq(account)).execute(c)
        })?;
        Ok(updated == 1)
    }

    fn insert_api_key(&mut self, key: &ApiKey) -> Result<(), StoreError> {
        let row = NewApiKeyRow::from(key);
        self.write(|c| diesel::insert_into(api_keys::table).values(&row).execute(c))?;
        Ok(())
    }

    fn api_key_by_hash(&mut self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = self.read(|c| {
            api_keys::table
                .filter(api_keys::hash.eq(hash))
                .filter(api_keys::revoked_at.is_null())
                .select(ApiKeyRow::as_select())
                .first(c)
                .optional()
        })?;
        row.map(ApiKeyRow::into_domain).transpose()
    }

    fn org_by_stripe_account(&mut self, account: &StripeAccountId) -> Result<Option<Organization>, StoreError> {
        let account = account.as_str();
        let row = self.read(|c| {
            organizations::table
                .filter(organizations::stripe_account_id.eq(account))
                // Nothing makes an account unique to one organization; should two ever share
                // one, the answer is the oldest link rather than an arbitrary row.
                .order((organizations::created_at.asc(), organizations::id.asc()))
                .select(OrganizationRow::as_select())
                .first(c)
                .optional()
        })?;
        row.map(OrganizationRow::into_domain).transpose()
    }

    fn some_orgs(&mut self, limit: i64) -> Result<Vec<Organization>, StoreError> {
        let rows = self.read(|c| {
            organizations::table
                .order((organizations::created_at.asc(), organizations::id.asc()))
                .limit(limit.max(0))
                .select(OrganizationRow::as_select())
                .load(c)
        })?;
        decode(rows, OrganizationRow::into_domain)
    }

    fn org_usage(&mut self, org: OrgId) -> Result<OrgUsage, StoreError> {
        let org = org.as_uuid();
        let affiliates = self.read(|c| {
            affiliates::table
                .filter(affiliates::org_id.eq(org))
                .filter(affiliates::deleted_at.is_null())
                .select(count_star())
                .get_result::<i64>(c)
        })?;
        let campaigns = self.read(|c| {
            programs::table
                .filter(programs::org_id.eq(org))
                .filter(programs::archived_at.is_null())
                .select(count_star())
                .get_result::<i64>(c)
        })?;
        Ok(OrgUsage { affiliates, campaigns })
    }
}
