//! What the coupon use cases share (`campaigns.rs`, `codes.rs`, `lookup.rs`, `reconcile.rs`):
//! their public value types, the reservation of a code, and the checks both kinds of coupon
//! make.
//!
//! Every Stripe call happens between two transactions, never inside one: a reservation
//! transaction fixes the record's id (and claims the code), the gateway call carries an
//! idempotency key derived from that id, and a finalizing transaction records the Stripe id.
//! A reservation whose Stripe call failed transiently stays behind for
//! [`Services::reconcile_provisioning`], which repeats the call with the same key.

use time::{Duration, OffsetDateTime};

use crate::affiliates::{Affiliate, AffiliateStatus, Email};
use crate::coupons::{AffiliateCoupon, CampaignCoupon, CodeSettings, CouponCode};
use crate::kernel::error::{DomainError, FieldError};
use crate::kernel::ids::{AffiliateCouponId, AffiliateId, CampaignCouponId, OrgId, ProgramId};
use crate::kernel::page::{Page, PageRequest, MAX_TAKE};
use crate::kernel::stripe_ids::{StripeAccountId, StripePromotionCodeId};
use crate::ports::store::constraints;
use crate::ports::{GatewayContext, Tx};

/// An affiliate coupon with its campaign coupon and owner, as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeView {
    /// The code.
    pub coupon: AffiliateCoupon,
    /// Its campaign coupon.
    pub campaign: CampaignCoupon,
    /// Its owner.
    pub affiliate: Affiliate,
}

/// The one selector of a promotional-code lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromoCodeQuery {
    /// `id`.
    Id(AffiliateCouponId),
    /// `code`.
    Code(CouponCode),
    /// `externalId` (the Stripe promotion code id).
    ExternalId(StripePromotionCodeId),
    /// `couponId` (a campaign coupon).
    CouponId(CampaignCouponId),
    /// `affiliateId`.
    AffiliateId(AffiliateId),
    /// `affiliateEmail`.
    AffiliateEmail(Email),
}

/// One code for `id`/`code`/`externalId`, a list otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromoCodeResult {
    /// A single code.
    One(Box<CodeView>),
    /// Several codes, newest first.
    Many(Vec<CodeView>),
}

/// What a reconciler pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Reservations completed at Stripe.
    pub provisioned: usize,
    /// Reservations Stripe refused, released.
    pub released: usize,
    /// Reservations still failing transiently.
    pub pending: usize,
}

/// The most codes a list-style lookup returns.
pub const LOOKUP_MAX: usize = 1000;

/// How long a reservation may wait before the reconciler takes it over. It is longer than a
/// request's whole Stripe retry budget (4 attempts of up to 30 s plus backoff), so the
/// reconciler does not race the request that made the reservation; should they meet anyway,
/// both use the same idempotency key and the locked finalizing transaction records once.
pub const RECONCILE_AFTER: Duration = Duration::minutes(5);

pub(super) fn gateway_context(stripe_account: Option<StripeAccountId>) -> GatewayContext {
    GatewayContext { stripe_account }
}

pub(super) fn has_codes() -> DomainError {
    DomainError::conflict("coupon_has_codes", "this campaign coupon has affiliate codes; archive it instead of deleting it")
}

pub(super) fn code_taken() -> DomainError {
    DomainError::Unprocessable {
        code: "code_already_taken",
        message: "this code is already used in your organization".to_owned(),
        field: Some("code".to_owned()),
    }
}

pub(super) fn load_campaign(
    tx: &mut dyn Tx,
    org: OrgId,
    program: Option<ProgramId>,
    id: CampaignCouponId,
) -> Result<CampaignCoupon, DomainError> {
    tx.campaign_coupon(org, id)?
        .filter(|c| c.stripe_coupon_id.is_some() && program.is_none_or(|p| p == c.program_id))
        .ok_or(DomainError::NotFound("campaign_coupon_not_found"))
}

/// [`load_campaign`] with the row locked for the rest of the transaction.
pub(super) fn lock_campaign(
    tx: &mut dyn Tx,
    org: OrgId,
    program: Option<ProgramId>,
    id: CampaignCouponId,
) -> Result<CampaignCoupon, DomainError> {
    tx.campaign_coupon_for_update(org, id)?
        .filter(|c| c.stripe_coupon_id.is_some() && program.is_none_or(|p| p == c.program_id))
        .ok_or(DomainError::NotFound("campaign_coupon_not_found"))
}

/// Every provisioned campaign coupon of a program (all pages).
pub(crate) fn all_campaign_coupons(tx: &mut dyn Tx, org: OrgId, program: ProgramId) -> Result<Vec<CampaignCoupon>, DomainError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = PageRequest::parse(Some(i64::from(MAX_TAKE)), after).map_err(|e| FieldError::invalid("take", e.to_string()))?;
        let rows = tx.list_campaign_coupons(org, program, &page)?;
        let page = Page::from_rows(rows, &page, |c| c.id.as_uuid());
        out.extend(page.items);
        match page.next_after {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

pub(super) fn check_program_open(tx: &mut dyn Tx, org: OrgId, program: ProgramId) -> Result<(), DomainError> {
    match tx.program(org, program)? {
        Some(p) if !p.is_archived() => Ok(()),
        Some(_) => Err(DomainError::conflict("program_archived", "the program is archived")),
        None => Err(DomainError::NotFound("program_not_found")),
    }
}

/// A reserved affiliate coupon and what its provisioning needs.
pub(super) struct Reserved {
    pub(super) coupon: AffiliateCoupon,
    pub(super) campaign: CampaignCoupon,
    pub(super) affiliate: Affiliate,
    pub(super) stripe_account: Option<StripeAccountId>,
}

/// Claims a code for `affiliate` under `campaign` inside the caller's transaction. A vanity
/// code already reserved (not yet provisioned) for the same affiliate and campaign coupon is
/// resumed, so a client retry after a timeout finishes the first attempt with the same
/// idempotency key instead of failing on its own reservation.
#[allow(clippy::too_many_arguments)]
pub(super) fn reserve_code(
    tx: &mut dyn Tx,
    id: AffiliateCouponId,
    affiliate: Affiliate,
    campaign: CampaignCoupon,
    settings: CodeSettings,
    generated: Vec<CouponCode>,
    self_minted: bool,
    now: OffsetDateTime,
) -> Result<(AffiliateCoupon, CampaignCoupon, Affiliate), DomainError> {
    let org = affiliate.org_id;
    let vanity = settings.code.clone();
    let candidates = match &vanity {
        Some(code) => vec![code.clone()],
        None => generated,
    };
    for code in candidates {
        if let Some(existing) = tx.affiliate_coupon_by_code(org, &code)? {
            let resumable = vanity.is_some()
                && existing.stripe_promotion_code_id.is_none()
                && existing.affiliate_id == affiliate.id
                && existing.campaign_coupon_id == campaign.id
                && existing.max_redemptions == settings.max_redemptions
                && existing.expires_at == settings.expires_at
                && existing.restrictions == settings.restrictions;
            if resumable {
                return Ok((existing, campaign, affiliate));
            }
            if vanity.is_some() {
                return Err(code_taken());
            }
            continue;
        }
        let coupon = AffiliateCoupon {
            id,
            org_id: org,
            program_id: affiliate.program_id,
            affiliate_id: affiliate.id,
            campaign_coupon_id: campaign.id,
            code,
            stripe_promotion_code_id: None,
            is_active: true,
            max_redemptions: settings.max_redemptions,
            expires_at: settings.expires_at,
            restrictions: settings.restrictions,
            times_redeemed: 0,
            last_redeemed_at: None,
            is_auto_generated: vanity.is_none(),
            self_minted,
            created_at: now,
            updated_at: now,
            revoked_at: None,
        };
        tx.insert_affiliate_coupon(&coupon).map_err(
            |e| {
                if e.is_conflict_on(constraints::COUPON_CODE) {
                    code_taken()
                } else {
                    e.into()
                }
            },
        )?;
        return Ok((coupon, campaign, affiliate));
    }
    Err(DomainError::conflict("code_generation_failed", "could not find a free code; try again"))
}

pub(super) fn check_affiliate_may_hold_codes(affiliate: &Affiliate) -> Result<(), DomainError> {
    if matches!(affiliate.status, AffiliateStatus::Rejected | AffiliateStatus::Banned) {
        return Err(DomainError::conflict(
            "affiliate_not_eligible",
            format!("a {} affiliate cannot receive codes", affiliate.status.as_str()),
        ));
    }
    Ok(())
}

pub(super) fn check_campaign_open(campaign: &CampaignCoupon, affiliate: &Affiliate, now: OffsetDateTime) -> Result<(), DomainError> {
    if campaign.program_id != affiliate.program_id {
        return Err(DomainError::Unprocessable {
            code: "program_mismatch",
            message: "the campaign coupon belongs to another program than the affiliate".to_owned(),
            field: Some("campaignCouponId".to_owned()),
        });
    }
    if !campaign.accepts_new_codes(now) {
        return Err(DomainError::conflict("campaign_coupon_inactive", "the campaign coupon is archived or expired"));
    }
    Ok(())
}
