//! The storage port's slice for campaign coupons and affiliate codes: the repository its use cases need. Every store
//! implements it; [`crate::ports::Tx`] composes all the slices into one transaction.

use time::OffsetDateTime;

use crate::coupons::{AffiliateCoupon, CampaignCoupon, CouponCode, CouponSelector};
use crate::kernel::ids::{AffiliateCouponId, CampaignCouponId, OrgId, ProgramId};
use crate::kernel::page::PageRequest;
use crate::kernel::stripe_ids::{StripeCouponId, StripePromotionCodeId};
use crate::ports::store::StoreError;

/// Campaign and affiliate coupons.
pub trait CouponRepo {
    /// Inserts a campaign coupon.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn insert_campaign_coupon(&mut self, coupon: &CampaignCoupon) -> Result<(), StoreError>;
    /// Replaces a campaign coupon's fields.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn update_campaign_coupon(&mut self, coupon: &CampaignCoupon) -> Result<(), StoreError>;
    /// Deletes a campaign coupon.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn delete_campaign_coupon(&mut self, org: OrgId, id: CampaignCouponId) -> Result<(), StoreError>;
    /// A campaign coupon of the organization (provisioning ones included).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn campaign_coupon(&mut self, org: OrgId, id: CampaignCouponId) -> Result<Option<CampaignCoupon>, StoreError>;
    /// [`CouponRepo::campaign_coupon`] holding the row locked (see
    /// [`ProgramRepo::program_for_update`](crate::programs::ProgramRepo::program_for_update)). Archive, delete, code reservation and code
    /// provisioning all take this lock, so none of them acts on a stale view of the others.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn campaign_coupon_for_update(&mut self, org: OrgId, id: CampaignCouponId) -> Result<Option<CampaignCoupon>, StoreError> {
        self.campaign_coupon(org, id)
    }
    /// Provisioned campaign coupons of a program, newest first.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn list_campaign_coupons(&mut self, org: OrgId, program: ProgramId, page: &PageRequest) -> Result<Vec<CampaignCoupon>, StoreError>;
    /// Campaign coupons of every organization still without a Stripe id and created before
    /// `before` (for the reconciler).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn unprovisioned_campaign_coupons(&mut self, before: OffsetDateTime, limit: i64) -> Result<Vec<CampaignCoupon>, StoreError>;

    /// Inserts an affiliate coupon.
    ///
    /// # Errors
    /// `Conflict` on [`constraints::COUPON_CODE`](crate::ports::store::constraints::COUPON_CODE).
    fn insert_affiliate_coupon(&mut self, coupon: &AffiliateCoupon) -> Result<(), StoreError>;
    /// Replaces an affiliate coupon's fields.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn update_affiliate_coupon(&mut self, coupon: &AffiliateCoupon) -> Result<(), StoreError>;
    /// Deletes an affiliate coupon (only used to release a reservation Stripe refused).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn delete_affiliate_coupon(&mut self, org: OrgId, id: AffiliateCouponId) -> Result<(), StoreError>;
    /// An affiliate coupon of the organization (provisioning ones included).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate_coupon(&mut self, org: OrgId, id: AffiliateCouponId) -> Result<Option<AffiliateCoupon>, StoreError>;
    /// [`CouponRepo::affiliate_coupon`] holding the row locked (see
    /// [`ProgramRepo::program_for_update`](crate::programs::ProgramRepo::program_for_update)).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate_coupon_for_update(&mut self, org: OrgId, id: AffiliateCouponId) -> Result<Option<AffiliateCoupon>, StoreError> {
        self.affiliate_coupon(org, id)
    }
    /// The affiliate coupon with this code (case-insensitive), provisioning ones included.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate_coupon_by_code(&mut self, org: OrgId, code: &CouponCode) -> Result<Option<AffiliateCoupon>, StoreError>;
    /// The affiliate coupon with this Stripe promotion code id.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate_coupon_by_stripe_id(
        &mut self,
        org: OrgId,
        stripe_id: &StripePromotionCodeId,
    ) -> Result<Option<AffiliateCoupon>, StoreError>;
    /// The affiliate coupon with this Stripe promotion code id, in whichever organization (ids
    /// are Stripe's, unique across accounts): resolves the organization of platform events.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn affiliate_coupon_by_stripe_id_any_org(&mut self, stripe_id: &StripePromotionCodeId) -> Result<Option<AffiliateCoupon>, StoreError>;
    /// Campaign coupons with this Stripe coupon id, in whichever organization.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn campaign_coupons_by_stripe_id(&mut self, stripe_id: &StripeCouponId) -> Result<Vec<CampaignCoupon>, StoreError>;
    /// Adds `delta` (+1 or -1) to a code's redemption count, never below zero, and sets
    /// `last_redeemed_at` when `delta` is positive: a targeted update, so it never overwrites
    /// a concurrent change to the rest of the row.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn add_redemption(&mut self, org: OrgId, id: AffiliateCouponId, delta: i64, at: OffsetDateTime) -> Result<(), StoreError>;
    /// Provisioned affiliate coupons matching the selector, newest first, at most
    /// `page.fetch_limit()` rows.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn list_affiliate_coupons(
        &mut self,
        org: OrgId,
        selector: &CouponSelector,
        page: &PageRequest,
    ) -> Result<Vec<AffiliateCoupon>, StoreError>;
    /// Whether any affiliate coupon (in any state) exists under a campaign coupon.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn campaign_coupon_has_codes(&mut self, org: OrgId, id: CampaignCouponId) -> Result<bool, StoreError>;
    /// Whether the organization holds any provisioned campaign coupon (its Stripe objects live
    /// on the linked Stripe account).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn org_has_stripe_objects(&mut self, org: OrgId) -> Result<bool, StoreError>;
    /// Affiliate coupons of every organization still without a Stripe id and created before
    /// `before` (for the reconciler).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn unprovisioned_affiliate_coupons(&mut self, before: OffsetDateTime, limit: i64) -> Result<Vec<AffiliateCoupon>, StoreError>;
}
