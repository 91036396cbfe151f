//! The storage port's slice for Organizations and API keys: the repository its use cases need. Every store
//! implements it; [`crate::ports::Tx`] composes all the slices into one transaction.

use crate::kernel::ids::OrgId;
use crate::kernel::stripe_ids::StripeAccountId;
use crate::orgs::{ApiKey, OrgUsage, Organization};
use crate::ports::store::StoreError;

/// Organizations and API keys.
pub trait OrgRepo {
    /// Inserts an organization.
    ///
    /// # Errors
    /// `Conflict` on [`constraints::ORG_HANDLE`](crate::ports::store::constraints::ORG_HANDLE).
    fn insert_org(&mut self, org: &Organization) -> Result<(), StoreError>;
    /// An organization by id.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn org(&mut self, id: OrgId) -> Result<Option<Organization>, StoreError>;
    /// Links the organization to a Stripe Connect account (`None` unlinks). Returns whether
    /// the organization exists.
    ///
    /// # Errors
    /// `Conflict` on [`constraints::ORG_STRIPE_ACCOUNT`](crate::ports::store::constraints::ORG_STRIPE_ACCOUNT) when another organization holds the
    /// account.
    fn set_stripe_account(&mut self, id: OrgId, account: Option<&StripeAccountId>) -> Result<bool, StoreError>;
    /// Writes an organization's settings: payout grace days, minimum payout, home currency and
    /// when it changed. Returns whether the organization exists.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn update_org_settings(&mut self, org: &Organization) -> Result<bool, StoreError>;
    /// Inserts an API key.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_api_key(&mut self, key: &ApiKey) -> Result<(), StoreError>;
    /// The unrevoked API key with this hash.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn api_key_by_hash(&mut self, hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// The organization linked to a Stripe Connect account.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn org_by_stripe_account(&mut self, account: &StripeAccountId) -> Result<Option<Organization>, StoreError>;
    /// Up to `limit` organizations, oldest first (to tell a single-brand installation).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn some_orgs(&mut self, limit: i64) -> Result<Vec<Organization>, StoreError>;
    /// Usage counts for the billing snapshot.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn org_usage(&mut self, org: OrgId) -> Result<OrgUsage, StoreError>;
}
