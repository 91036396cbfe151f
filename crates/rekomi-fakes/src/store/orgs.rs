//! The fake store's slice for organizations and API keys: the domain's `OrgRepo` over the
//! `orgs` and `api_keys` tables of `State`, with the migrations' unique keys and foreign keys.

use rekomi_domain::kernel::ids::OrgId;
use rekomi_domain::kernel::stripe_ids::StripeAccountId;
use rekomi_domain::orgs::{ApiKey, OrgRepo, OrgUsage, Organization};
use rekomi_domain::ports::store::{constraints, StoreError};

use super::affiliates::AffiliateRow;
use super::{conflict, limit_of, references, State};

/// Foreign-key names of these tables in the migrations.
mod foreign_keys {
    pub const API_KEY_ORG: &str = "api_keys_org_id_fkey";
}

impl State {
    pub(super) fn has_org(&self, org: OrgId) -> bool {
        self.orgs.contains_key(&org)
    }
}

impl OrgRepo for State {
    fn insert_org(&mut self, org: &Organization) -> Result<(), StoreError> {
        if self.orgs.contains_key(&org.id) {
            return Err(conflict("organizations_pkey"));
        }
        if self.orgs.values().any(|o| o.handle == org.handle) {
            return Err(conflict(constraints::ORG_HANDLE));
        }
        self.orgs.insert(org.id, org.clone());
        Ok(())
    }

    fn org(&mut self, id: OrgId) -> Result<Option<Organization>, StoreError> {
        Ok(self.orgs.get(&id).cloned())
    }

    fn update_org_settings(&mut self, org: &Organization) -> Result<bool, StoreError> {
        Ok(match self.orgs.get_mut(&org.id) {
            Some(stored) => {
                stored.payout_grace_days = org.payout_grace_days;
                stored.minimum_payout_minor = org.minimum_payout_minor;
                stored.home_currency = org.home_currency;
                stored.home_currency_changed_at = org.home_currency_changed_at;
                true
            }
            None => false,
        })
    }

    fn set_stripe_account(&mut self, id: OrgId, account: Option<&StripeAccountId>) -> Result<bool, StoreError> {
        if account.is_some() && self.orgs.values().any(|o| o.id != id && o.stripe_account_id.as_ref() == account) {
            return Err(conflict(constraints::ORG_STRIPE_ACCOUNT));
        }
        Ok(match self.orgs.get_mut(&id) {
            Some(org) => {
                org.stripe_account_id = account.cloned();
                true
            }
            None => false,
        })
    }

    fn insert_api_key(&mut self, key: &ApiKey) -> Result<(), StoreError> {
        if self.api_keys.contains_key(&key.id) {
            return Err(conflict("api_keys_pkey"));
        }
        if self.api_keys.values().any(|k| k.hash == key.hash) {
            return Err(conflict("api_keys_hash_key"));
        }
        references(&[(self.has_org(key.org_id), foreign_keys::API_KEY_ORG)])?;
        self.api_keys.insert(key.id, key.clone());
        Ok(())
    }

    fn api_key_by_hash(&mut self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.api_keys.values().find(|k| k.revoked_at.is_none() && k.hash == hash).cloned())
    }

    fn org_by_stripe_account(&mut self, account: &StripeAccountId) -> Result<Option<Organization>, StoreError> {
        Ok(self.orgs.values().filter(|o| o.stripe_account_id.as_ref() == Some(account)).min_by_key(|o| (o.created_at, o.id)).cloned())
    }

    fn some_orgs(&mut self, limit: i64) -> Result<Vec<Organization>, StoreError> {
        let mut orgs: Vec<Organization> = self.orgs.values().cloned().collect();
        orgs.sort_by_key(|o| (o.created_at, o.id));
        orgs.truncate(limit_of(limit));
        Ok(orgs)
    }

    fn org_usage(&mut self, org: OrgId) -> Result<OrgUsage, StoreError> {
        let affiliates = self.affiliates.values().filter_map(AffiliateRow::live).filter(|a| a.org_id == org).count();
        let campaigns = self.programs.values().filter(|p| p.org_id == org && p.archived_at.is_none()).count();
        Ok(OrgUsage { affiliates: i64::try_from(affiliates).unwrap_or(i64::MAX), campaigns: i64::try_from(campaigns).unwrap_or(i64::MAX) })
    }
}
