//! Changes Stripe reports about Rekomi's coupons and codes: a code deactivated at Stripe, a
//! coupon deleted there.

use crate::audit::AuditAction;
use crate::kernel::error::DomainError;
use crate::kernel::stripe_ids::{StripeCouponId, StripePromotionCodeId};
use crate::outbound::outbox::affiliate_coupon_data;
use crate::outbound::EventType;
use crate::ports::Tx;
use crate::stripe_inbox::apply::{done, Applied, ApplyCtx};

pub(crate) fn sync_promotion_code(
    tx: &mut dyn Tx,
    ctx: &ApplyCtx<'_>,
    stripe_id: &StripePromotionCodeId,
    active: bool,
) -> Result<Applied, DomainError> {
    let org = ctx.org.id;
    if active {
        // Rekomi decides which codes are live; a late or replayed event (or `.created`) must not
        // bring back a code revoked here.
        return done("activations at Stripe are not synced");
    }
    let Some(found) = tx.affiliate_coupon_by_stripe_id(org, stripe_id)? else {
        return done("not a Rekomi code");
    };
    let Some(mut code) = tx.affiliate_coupon_for_update(org, found.id)? else {
        return done("not a Rekomi code");
    };
    if !code.revoke(ctx.now) {
        return done("already inactive");
    }
    tx.update_affiliate_coupon(&code)?;
    ctx.forget_lookups();
    ctx.record(AuditAction::AffiliateCouponSynced, "affiliate_coupon", code.id.to_string(), Some(affiliate_coupon_data(&code)));
    ctx.emit(tx, EventType::AffiliateCouponUpdated, affiliate_coupon_data(&code))?;
    ctx.emit(tx, EventType::AffiliateCouponDeactivated, affiliate_coupon_data(&code))?;
    done("code synced")
}

pub(crate) fn sync_deleted_coupon(tx: &mut dyn Tx, ctx: &ApplyCtx<'_>, stripe_id: &StripeCouponId) -> Result<Applied, DomainError> {
    let org = ctx.org.id;
    ctx.forget_lookups();
    let mut touched = false;
    for coupon in tx.campaign_coupons_by_stripe_id(stripe_id)?.into_iter().filter(|c| c.org_id == org) {
        let Some(mut c) = tx.campaign_coupon_for_update(org, coupon.id)? else { continue };
        if c.archive(ctx.now) {
            tx.update_campaign_coupon(&c)?;
            ctx.record(AuditAction::CampaignCouponDeletedAtStripe, "campaign_coupon", c.id.to_string(), None);
        }
        for code in crate::coupons::active_codes(tx, org, crate::coupons::CouponSelector::CampaignCoupon(c.id))? {
            let Some(mut code) = tx.affiliate_coupon_for_update(org, code.id)? else { continue };
            code.revoke(ctx.now);
            tx.update_affiliate_coupon(&code)?;
            ctx.emit(tx, EventType::AffiliateCouponDeleted, affiliate_coupon_data(&code))?;
        }
        touched = true;
    }
    if touched {
        done("coupon closed")
    } else {
        done("not a Rekomi coupon")
    }
}
