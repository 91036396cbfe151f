//! The storage port's slice for affiliates and their links: the repository its use cases need. Every store
//! implements it; [`crate::ports::Tx`] composes all the slices into one transaction.

use time::OffsetDateTime;

use crate::affiliates::{Affiliate, AffiliateFilter, AffiliateLink, Email};
use crate::kernel::ids::{AffiliateId, OrgId};
use crate::kernel::page::PageRequest;
use crate::ports::store::StoreError;

/// Affiliates and their links.
pub trait AffiliateRepo {
    /// Inserts an affiliate.
    ///
    /// # Errors
    /// `Conflict` on [`constraints::AFFILIATE_EMAIL`](crate::ports::store::constraints::AFFILIATE_EMAIL).
    fn insert_affiliate(&mut self, affiliate: &Affiliate) -> Result<(), StoreError>;
    /// Replaces an affiliate's fields.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn update_affiliate(&mut self, affiliate: &Affiliate) -> Result<(), StoreError>;
    /// Deletes an affiliate whose id is in the organization (its links and codes stay for
    /// history but the affiliate no longer appears anywhere). Returns whether a row went.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn delete_affiliate(&mut self, org: OrgId, id: AffiliateId, now: OffsetDateTime) -> Result<bool, StoreError>;
    /// An affiliate of the organization (deleted ones excluded).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate(&mut self, org: OrgId, id: AffiliateId) -> Result<Option<Affiliate>, StoreError>;
    /// [`AffiliateRepo::affiliate`] holding the row locked (see
    /// [`ProgramRepo::program_for_update`](crate::programs::ProgramRepo::program_for_update)).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate_for_update(&mut self, org: OrgId, id: AffiliateId) -> Result<Option<Affiliate>, StoreError> {
        self.affiliate(org, id)
    }
    /// Affiliates matching the filter, newest first, at most `page.fetch_limit()` rows.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn list_affiliates(&mut self, org: OrgId, filter: &AffiliateFilter, page: &PageRequest) -> Result<Vec<Affiliate>, StoreError>;
    /// Every affiliate row (in any organization) an affiliate-side caller owns: linked to
    /// `user_id`, or unlinked with `email`.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliates_of_user(&mut self, user_id: &str, email: &Email) -> Result<Vec<Affiliate>, StoreError>;
    /// Inserts a link.
    ///
    /// # Errors
    /// `Conflict` on [`constraints::LINK_SLUG`](crate::ports::store::constraints::LINK_SLUG).
    fn insert_link(&mut self, link: &AffiliateLink) -> Result<(), StoreError>;
    /// The links of these affiliates, default first.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn links_of(&mut self, org: OrgId, affiliates: &[AffiliateId]) -> Result<Vec<AffiliateLink>, StoreError>;
    /// The (not deleted) affiliate owning a link slug, case-insensitively.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate_by_link_slug(&mut self, org: OrgId, slug: &str) -> Result<Option<Affiliate>, StoreError>;
    /// The affiliate who recruited `affiliate`, if any.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn recruiter_of(&mut self, org: OrgId, affiliate: AffiliateId) -> Result<Option<AffiliateId>, StoreError>;
    /// Records that `recruiter` recruited `affiliate` (replacing any earlier record).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn set_recruiter(&mut self, org: OrgId, affiliate: AffiliateId, recruiter: AffiliateId) -> Result<(), StoreError>;
    /// The affiliates `recruiter` recruited (not deleted).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn recruits_of(&mut self, org: OrgId, recruiter: AffiliateId) -> Result<Vec<Affiliate>, StoreError>;
    /// Whether a link slug is taken in the organization.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn link_slug_taken(&mut self, org: OrgId, slug: &str) -> Result<bool, StoreError>;
}
