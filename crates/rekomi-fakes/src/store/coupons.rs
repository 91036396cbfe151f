//! The fake store's slice for campaign coupons and affiliate codes: the domain's `CouponRepo`
//! over the `campaign_coupons` and `affiliate_coupons` tables of `State`, with the code key
//! and the foreign keys.

use rekomi_domain::coupons::{AffiliateCoupon, CampaignCoupon, CouponCode, CouponRepo, CouponSelector};
use rekomi_domain::kernel::ids::{AffiliateCouponId, CampaignCouponId, OrgId, ProgramId};
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::kernel::stripe_ids::{StripeCouponId, StripePromotionCodeId};
use rekomi_domain::ports::store::{constraints, StoreError};
use time::OffsetDateTime;

use super::affiliates::AffiliateRow;
use super::{conflict, limit_of, page_of, references, State};

/// Foreign-key names of these tables in the migrations.
mod foreign_keys {
    pub const CAMPAIGN_COUPON_ORG: &str = "campaign_coupons_org_id_fkey";
    pub const CAMPAIGN_COUPON_PROGRAM: &str = "campaign_coupons_program_fkey";
    pub const AFFILIATE_COUPON_ORG: &str = "affiliate_coupons_org_id_fkey";
    pub const AFFILIATE_COUPON_PROGRAM: &str = "affiliate_coupons_program_fkey";
    pub const AFFILIATE_COUPON_AFFILIATE: &str = "affiliate_coupons_affiliate_fkey";
    pub const AFFILIATE_COUPON_CAMPAIGN_COUPON: &str = "affiliate_coupons_campaign_coupon_fkey";
}

impl State {
    fn has_campaign_coupon(&self, org: OrgId, id: CampaignCouponId) -> bool {
        self.campaign_coupons.get(&id).is_some_and(|c| c.org_id == org)
    }

    pub(super) fn has_affiliate_coupon(&self, org: OrgId, id: AffiliateCouponId) -> bool {
        self.affiliate_coupons.get(&id).is_some_and(|c| c.org_id == org)
    }

    fn check_campaign_coupon_refs(&self, c: &CampaignCoupon) -> Result<(), StoreError> {
        references(&[
            (self.has_org(c.org_id), foreign_keys::CAMPAIGN_COUPON_ORG),
            (self.has_program(c.org_id, c.program_id), foreign_keys::CAMPAIGN_COUPON_PROGRAM),
        ])
    }

    fn check_affiliate_coupon_refs(&self, c: &AffiliateCoupon) -> Result<(), StoreError> {
        references(&[
            (self.has_org(c.org_id), foreign_keys::AFFILIATE_COUPON_ORG),
            (self.has_program(c.org_id, c.program_id), foreign_keys::AFFILIATE_COUPON_PROGRAM),
            (self.has_affiliate(c.org_id, c.affiliate_id), foreign_keys::AFFILIATE_COUPON_AFFILIATE),
            (self.has_campaign_coupon(c.org_id, c.campaign_coupon_id), foreign_keys::AFFILIATE_COUPON_CAMPAIGN_COUPON),
        ])
    }

    fn coupon_code_taken(&self, coupon: &AffiliateCoupon) -> bool {
        self.affiliate_coupons
            .values()
            .any(|c| c.id != coupon.id && c.org_id == coupon.org_id && c.code.as_str().eq_ignore_ascii_case(coupon.code.as_str()))
    }
}

impl CouponRepo for State {
    fn insert_campaign_coupon(&mut self, coupon: &CampaignCoupon) -> Result<(), StoreError> {
        if self.campaign_coupons.contains_key(&coupon.id) {
            return Err(conflict("campaign_coupons_pkey"));
        }
        self.check_campaign_coupon_refs(coupon)?;
        self.campaign_coupons.insert(coupon.id, coupon.clone());
        Ok(())
    }

    fn update_campaign_coupon(&mut self, coupon: &CampaignCoupon) -> Result<(), StoreError> {
        if !self.has_campaign_coupon(coupon.org_id, coupon.id) {
            return Ok(());
        }
        self.check_campaign_coupon_refs(coupon)?;
        self.campaign_coupons.insert(coupon.id, coupon.clone());
        Ok(())
    }

    fn delete_campaign_coupon(&mut self, org: OrgId, id: CampaignCouponId) -> Result<(), StoreError> {
        if !self.has_campaign_coupon(org, id) {
            return Ok(());
        }
        if self.campaign_coupon_has_codes(org, id)? {
            return Err(conflict(foreign_keys::AFFILIATE_COUPON_CAMPAIGN_COUPON));
        }
        self.campaign_coupons.remove(&id);
        Ok(())
    }

    fn campaign_coupon(&mut self, org: OrgId, id: CampaignCouponId) -> Result<Option<CampaignCoupon>, StoreError> {
        Ok(self.campaign_coupons.get(&id).filter(|c| c.org_id == org).cloned())
    }

    fn list_campaign_coupons(&mut self, org: OrgId, program: ProgramId, page: &PageRequest) -> Result<Vec<CampaignCoupon>, StoreError> {
        Ok(page_of(&self.campaign_coupons, page, CampaignCouponId::as_uuid, |c| {
            (c.org_id == org && c.program_id == program && c.stripe_coupon_id.is_some()).then(|| c.clone())
        }))
    }

    fn unprovisioned_campaign_coupons(&mut self, before: OffsetDateTime, limit: i64) -> Result<Vec<CampaignCoupon>, StoreError> {
        let mut rows: Vec<CampaignCoupon> =
            self.campaign_coupons.values().filter(|c| c.stripe_coupon_id.is_none() && c.created_at < before).cloned().collect();
        rows.sort_by_key(|c| (c.created_at, c.id));
        rows.truncate(limit_of(limit));
        Ok(rows)
    }

    fn insert_affiliate_coupon(&mut self, coupon: &AffiliateCoupon) -> Result<(), StoreError> {
        if self.affiliate_coupons.contains_key(&coupon.id) {
            return Err(conflict("affiliate_coupons_pkey"));
        }
        if self.coupon_code_taken(coupon) {
            return Err(conflict(constraints::COUPON_CODE));
        }
        self.check_affiliate_coupon_refs(coupon)?;
        self.affiliate_coupons.insert(coupon.id, coupon.clone());
        Ok(())
    }

    fn update_affiliate_coupon(&mut self, coupon: &AffiliateCoupon) -> Result<(), StoreError> {
        if self.affiliate_coupons.get(&coupon.id).is_none_or(|c| c.org_id != coupon.org_id) {
            return Ok(());
        }
        if self.coupon_code_taken(coupon) {
            return Err(conflict(constraints::COUPON_CODE));
        }
        self.check_affiliate_coupon_refs(coupon)?;
        self.affiliate_coupons.insert(coupon.id, coupon.clone());
        Ok(())
    }

    fn delete_affiliate_coupon(&mut self, org: OrgId, id: AffiliateCouponId) -> Result<(), StoreError> {
        if self.affiliate_coupons.get(&id).is_some_and(|c| c.org_id == org) {
            self.affiliate_coupons.remove(&id);
        }
        Ok(())
    }

    fn affiliate_coupon(&mut self, org: OrgId, id: AffiliateCouponId) -> Result<Option<AffiliateCoupon>, StoreError> {
        Ok(self.affiliate_coupons.get(&id).filter(|c| c.org_id == org).cloned())
    }

    fn affiliate_coupon_by_code(&mut self, org: OrgId, code: &CouponCode) -> Result<Option<AffiliateCoupon>, StoreError> {
        Ok(self.affiliate_coupons.values().find(|c| c.org_id == org && c.code.as_str().eq_ignore_ascii_case(code.as_str())).cloned())
    }

    fn affiliate_coupon_by_stripe_id(
        &mut self,
        org: OrgId,
        stripe_id: &StripePromotionCodeId,
    ) -> Result<Option<AffiliateCoupon>, StoreError> {
        // Newest first, like PgStore (Stripe ids are unique anyway).
        Ok(self
            .affiliate_coupons
            .values()
            .rev()
            .find(|c| c.org_id == org && c.stripe_promotion_code_id.as_ref() == Some(stripe_id))
            .cloned())
    }

    fn affiliate_coupon_by_stripe_id_any_org(&mut self, stripe_id: &StripePromotionCodeId) -> Result<Option<AffiliateCoupon>, StoreError> {
        Ok(self.affiliate_coupons.values().rev().find(|c| c.stripe_promotion_code_id.as_ref() == Some(stripe_id)).cloned())
    }

    fn campaign_coupons_by_stripe_id(&mut self, stripe_id: &StripeCouponId) -> Result<Vec<CampaignCoupon>, StoreError> {
        Ok(self.campaign_coupons.values().rev().filter(|c| c.stripe_coupon_id.as_ref() == Some(stripe_id)).cloned().collect())
    }

    fn add_redemption(&mut self, org: OrgId, id: AffiliateCouponId, delta: i64, at: OffsetDateTime) -> Result<(), StoreError> {
        if let Some(code) = self.affiliate_coupons.get_mut(&id).filter(|c| c.org_id == org) {
            code.times_redeemed = code.times_redeemed.saturating_add(delta).max(0);
            if delta > 0 {
                code.last_redeemed_at = Some(at);
            }
            code.updated_at = at;
        }
        Ok(())
    }

    fn list_affiliate_coupons(
        &mut self,
        org: OrgId,
        selector: &CouponSelector,
        page: &PageRequest,
    ) -> Result<Vec<AffiliateCoupon>, StoreError> {
        let affiliates = &self.affiliates;
        Ok(page_of(&self.affiliate_coupons, page, AffiliateCouponId::as_uuid, |c| {
            let selected = match selector {
                CouponSelector::Affiliate(id) => c.affiliate_id == *id,
                CouponSelector::CampaignCoupon(id) => c.campaign_coupon_id == *id,
                // One person across programs: the codes of the live affiliate rows with the
                // email (a deleted affiliate no longer appears anywhere).
                CouponSelector::AffiliateEmail(email) => {
                    affiliates.get(&c.affiliate_id).and_then(AffiliateRow::live).is_some_and(|a| a.email == *email)
                }
            };
            (selected && c.org_id == org && c.stripe_promotion_code_id.is_some()).then(|| c.clone())
        }))
    }

    fn campaign_coupon_has_codes(&mut self, org: OrgId, id: CampaignCouponId) -> Result<bool, StoreError> {
        Ok(self.affiliate_coupons.values().any(|c| c.org_id == org && c.campaign_coupon_id == id))
    }

    fn org_has_stripe_objects(&mut self, org: OrgId) -> Result<bool, StoreError> {
        Ok(self.campaign_coupons.values().any(|c| c.org_id == org && c.stripe_coupon_id.is_some()))
    }

    fn unprovisioned_affiliate_coupons(&mut self, before: OffsetDateTime, limit: i64) -> Result<Vec<AffiliateCoupon>, StoreError> {
        let mut rows: Vec<AffiliateCoupon> =
            self.affiliate_coupons.values().filter(|c| c.stripe_promotion_code_id.is_none() && c.created_at < before).cloned().collect();
        rows.sort_by_key(|c| (c.created_at, c.id));
        rows.truncate(limit_of(limit));
        Ok(rows)
    }
}
