//! The promotional-codes lookup: exactly one selector, one code or a list.

use crate::affiliates::Affiliate;
use crate::coupons::CouponSelector;
use crate::coupons::{AffiliateCoupon, CampaignCoupon};
use crate::kernel::error::{DomainError, FieldError};
use crate::kernel::ids::{AffiliateId, CampaignCouponId, OrgId};
use crate::kernel::page::{Page, PageRequest, MAX_TAKE};
use crate::kernel::plan::PlanTier;
use crate::ports::Tx;

use crate::services::{BrandContext, Services};

use super::usecases::*;

impl Services {
    /// The promotional-code lookup: exactly one selector.
    ///
    /// # Errors
    /// Gates, `promotional_code_not_found` for single lookups.
    pub async fn lookup_promotional_codes(&self, ctx: &BrandContext, query: PromoCodeQuery) -> Result<PromoCodeResult, DomainError> {
        ctx.require_plan(PlanTier::Growth)?;
        let org = ctx.org_id();
        self.tx(move |tx| {
            let selector = match query {
                PromoCodeQuery::Id(id) => {
                    let found = tx.affiliate_coupon(org, id)?;
                    return single_code(tx, org, found);
                }
                PromoCodeQuery::Code(code) => {
                    let found = tx.affiliate_coupon_by_code(org, &code)?;
                    return single_code(tx, org, found);
                }
                PromoCodeQuery::ExternalId(ext) => {
                    let found = tx.affiliate_coupon_by_stripe_id(org, &ext)?;
                    return single_code(tx, org, found);
                }
                PromoCodeQuery::CouponId(id) => CouponSelector::CampaignCoupon(id),
                PromoCodeQuery::AffiliateId(id) => CouponSelector::Affiliate(id),
                PromoCodeQuery::AffiliateEmail(email) => CouponSelector::AffiliateEmail(email),
            };
            let codes = all_codes(tx, org, &selector, LOOKUP_MAX)?;
            Ok(PromoCodeResult::Many(views(tx, org, codes)?))
        })
        .await
    }

    // ---- affiliate self-mint ----------------------------------------------------------
}

/// One provisioned code with its campaign coupon and owner, or `promotional_code_not_found`.
pub(super) fn single_code(tx: &mut dyn Tx, org: OrgId, found: Option<AffiliateCoupon>) -> Result<PromoCodeResult, DomainError> {
    let found = found.filter(|c| c.stripe_promotion_code_id.is_some());
    let view = match found {
        Some(c) => views(tx, org, vec![c])?.pop(),
        None => None,
    };
    view.map(|v| PromoCodeResult::One(Box::new(v))).ok_or(DomainError::NotFound("promotional_code_not_found"))
}

/// Every active, provisioned code matching the selector (all pages).
pub(crate) fn active_codes(tx: &mut dyn Tx, org: OrgId, selector: CouponSelector) -> Result<Vec<AffiliateCoupon>, DomainError> {
    let all = all_codes(tx, org, &selector, usize::MAX)?;
    Ok(all.into_iter().filter(|c| c.is_active).collect())
}

pub(super) fn all_codes(tx: &mut dyn Tx, org: OrgId, selector: &CouponSelector, max: usize) -> Result<Vec<AffiliateCoupon>, DomainError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = PageRequest::parse(Some(i64::from(MAX_TAKE)), after).map_err(|e| FieldError::invalid("take", e.to_string()))?;
        let rows = tx.list_affiliate_coupons(org, selector, &page)?;
        let page = Page::from_rows(rows, &page, |c| c.id.as_uuid());
        out.extend(page.items);
        if out.len() >= max || page.next_after.is_none() {
            out.truncate(max);
            return Ok(out);
        }
        after = page.next_after;
    }
}

/// Joins codes with their campaign coupons and owners; codes whose owner was deleted drop out.
pub(super) fn views(tx: &mut dyn Tx, org: OrgId, codes: Vec<AffiliateCoupon>) -> Result<Vec<CodeView>, DomainError> {
    let mut out = Vec::with_capacity(codes.len());
    let mut campaigns: std::collections::HashMap<CampaignCouponId, CampaignCoupon> = std::collections::HashMap::new();
    let mut affiliates: std::collections::HashMap<AffiliateId, Option<Affiliate>> = std::collections::HashMap::new();
    for coupon in codes {
        let campaign = match campaigns.get(&coupon.campaign_coupon_id) {
            Some(c) => c.clone(),
            None => {
                let Some(c) = tx.campaign_coupon(org, coupon.campaign_coupon_id)? else { continue };
                campaigns.insert(c.id, c.clone());
                c
            }
        };
        if let std::collections::hash_map::Entry::Vacant(slot) = affiliates.entry(coupon.affiliate_id) {
            slot.insert(tx.affiliate(org, coupon.affiliate_id)?);
        }
        if let Some(Some(affiliate)) = affiliates.get(&coupon.affiliate_id) {
            out.push(CodeView { coupon, campaign, affiliate: affiliate.clone() });
        }
    }
    Ok(out)
}
