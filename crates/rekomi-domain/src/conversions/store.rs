//! The storage port's slice for conversions, their ledger and processed sources: the repository its use cases need. Every store
//! implements it; [`crate::ports::Tx`] composes all the slices into one transaction.

use time::OffsetDateTime;

use crate::conversions::{Conversion, ConversionFilter, LedgerEvent};
use crate::kernel::ids::{AffiliateId, ConversionId, OrgId};
use crate::kernel::page::PageRequest;
use crate::kernel::stripe_ids::{StripeCustomerId, StripePaymentRef, StripeSubscriptionId};
use crate::ports::store::StoreError;

/// Conversions, their ledger, and processed sources.
pub trait ConversionRepo {
    /// Claims a source (`invoice:in_…`, `checkout:cs_…`, `lead:sub_…`) for the organization.
    /// Returns false when it was already claimed: the fact was processed before.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn claim_source(&mut self, org: OrgId, source: &str, at: OffsetDateTime) -> Result<bool, StoreError>;
    /// Whether a source was claimed for the organization (read-only).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn source_seen(&mut self, org: OrgId, source: &str) -> Result<bool, StoreError>;
    /// Inserts a conversion.
    ///
    /// # Errors
    /// `Conflict` on [`constraints::SUBSCRIPTION_SALE`](crate::ports::store::constraints::SUBSCRIPTION_SALE) for a second sale conversion of a
    /// subscription.
    fn insert_conversion(&mut self, conversion: &Conversion) -> Result<(), StoreError>;
    /// Replaces a conversion's fields.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn update_conversion(&mut self, conversion: &Conversion) -> Result<(), StoreError>;
    /// A conversion of the organization.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn conversion(&mut self, org: OrgId, id: ConversionId) -> Result<Option<Conversion>, StoreError>;
    /// [`ConversionRepo::conversion`] holding the row locked until the transaction ends.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn conversion_for_update(&mut self, org: OrgId, id: ConversionId) -> Result<Option<Conversion>, StoreError> {
        self.conversion(org, id)
    }
    /// The sale conversion (not an override, not a lead) of a subscription, locked.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn sale_conversion_of_subscription(
        &mut self,
        org: OrgId,
        subscription_id: &StripeSubscriptionId,
    ) -> Result<Option<Conversion>, StoreError>;
    /// The conversion (not an override) whose ledger holds this payment (or whose first invoice
    /// or checkout session it is), locked.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn conversion_of_invoice(&mut self, org: OrgId, payment: &StripePaymentRef) -> Result<Option<Conversion>, StoreError>;
    /// The overrides earned on a conversion.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn overrides_of(&mut self, org: OrgId, parent: ConversionId) -> Result<Vec<Conversion>, StoreError>;
    /// The affiliate most recently credited (sale or lead, not denied, not an override) for a
    /// Stripe customer or a customer email. Identified signups (leads with no Stripe customer,
    /// recorded by the loader or a brand's server) are left out: they count through
    /// [`lead_signup_by_email`](Self::lead_signup_by_email), inside their cookie window.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate_of_customer(
        &mut self,
        org: OrgId,
        customer_id: Option<&StripeCustomerId>,
        email: Option<&str>,
    ) -> Result<Option<AffiliateId>, StoreError>;
    /// The latest identified signup with this customer email (any case): a `LeadReward` with
    /// no Stripe customer, not denied, not an override.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn lead_signup_by_email(&mut self, org: OrgId, email: &str) -> Result<Option<Conversion>, StoreError>;
    /// The organizations holding a conversion of this Stripe customer (at most two, most
    /// recent first): resolves the organization of platform-account events that carry no
    /// Rekomi code, such as refunds and renewals.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn orgs_of_stripe_customer(&mut self, customer_id: &StripeCustomerId) -> Result<Vec<OrgId>, StoreError>;
    /// The organizations (at most two) whose ledger records a sale of `payment`: how a refund
    /// that names no code finds its organization.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn orgs_of_payment(&mut self, payment: &StripePaymentRef) -> Result<Vec<OrgId>, StoreError>;
    /// Conversions matching the filter, newest first, at most `page.fetch_limit()` rows.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn list_conversions(&mut self, org: OrgId, filter: &ConversionFilter, page: &PageRequest) -> Result<Vec<Conversion>, StoreError>;
    /// Pending conversions of every organization whose `approve_after` has passed.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn conversions_due_for_approval(&mut self, now: OffsetDateTime, limit: i64) -> Result<Vec<Conversion>, StoreError>;
    /// Appends a ledger entry.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_ledger_event(&mut self, event: &LedgerEvent) -> Result<(), StoreError>;
    /// A conversion's ledger, oldest first.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn ledger_of(&mut self, org: OrgId, conversion: ConversionId) -> Result<Vec<LedgerEvent>, StoreError>;
}
