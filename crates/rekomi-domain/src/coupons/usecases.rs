//! Coupon use cases: campaign coupons (Stripe coupons) and affiliate coupons (Stripe
//! promotion codes).
//!
//! Every Stripe call happens between two transactions, never inside one: a reservation
//! transaction fixes the record's id (and claims the code), the gateway call carries an
//! idempotency key derived from that id, and a finalizing transaction records the Stripe id.
//! A reservation whose Stripe call failed transiently stays behind for
//! [`Services::reconcile_provisioning`], which repeats the call with the same key.

use time::{Duration, OffsetDateTime};

use crate::actor::{AffiliateActor, AuditActor, Role};
use crate::affiliate::{Affiliate, AffiliateStatus, Email};
use crate::audit::{affiliate_coupon_snapshot, campaign_coupon_snapshot};
use crate::coupon::{
    AffiliateCoupon, AffiliateCouponInput, CampaignCoupon, CampaignCouponInput, CampaignCouponPatch, CodeSettings, CouponCode,
    NewCampaignCoupon,
};
use crate::error::{DomainError, FieldError};
use crate::ids::{AffiliateCouponId, AffiliateId, CampaignCouponId, OrgId, ProgramId};
use crate::page::{Page, PageRequest, MAX_TAKE};
use crate::plan::{check_plan, Channel, PlanTier};
use crate::ports::store::{constraints, CouponSelector};
use crate::ports::{CreateCoupon, CreatePromotionCode, GatewayContext, GatewayError, Tx};

use crate::outbound::outbox::affiliate_coupon_data;
use crate::services::{BrandContext, Services};

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
    ExternalId(String),
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

fn gateway_context(stripe_account: Option<String>) -> GatewayContext {
    GatewayContext { stripe_account }
}

fn has_codes() -> DomainError {
    DomainError::conflict("coupon_has_codes", "this campaign coupon has affiliate codes; archive it instead of deleting it")
}

fn code_taken() -> DomainError {
    DomainError::Unprocessable {
        code: "code_already_taken",
        message: "this code is already used in your organization".to_owned(),
        field: Some("code".to_owned()),
    }
}

fn load_campaign(tx: &mut dyn Tx, org: OrgId, program: Option<ProgramId>, id: CampaignCouponId) -> Result<CampaignCoupon, DomainError> {
    tx.campaign_coupon(org, id)?
        .filter(|c| c.stripe_coupon_id.is_some() && program.is_none_or(|p| p == c.program_id))
        .ok_or(DomainError::NotFound("campaign_coupon_not_found"))
}

/// [`load_campaign`] with the row locked for the rest of the transaction.
fn lock_campaign(tx: &mut dyn Tx, org: OrgId, program: Option<ProgramId>, id: CampaignCouponId) -> Result<CampaignCoupon, DomainError> {
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

fn check_program_open(tx: &mut dyn Tx, org: OrgId, program: ProgramId) -> Result<(), DomainError> {
    match tx.program(org, program)? {
        Some(p) if !p.is_archived() => Ok(()),
        Some(_) => Err(DomainError::conflict("program_archived", "the program is archived")),
        None => Err(DomainError::NotFound("program_not_found")),
    }
}

/// A reserved affiliate coupon and what its provisioning needs.
struct Reserved {
    coupon: AffiliateCoupon,
    campaign: CampaignCoupon,
    affiliate: Affiliate,
    stripe_account: Option<String>,
}

/// Claims a code for `affiliate` under `campaign` inside the caller's transaction. A vanity
/// code already reserved (not yet provisioned) for the same affiliate and campaign coupon is
/// resumed, so a client retry after a timeout finishes the first attempt with the same
/// idempotency key instead of failing on its own reservation.
#[allow(clippy::too_many_arguments)]
fn reserve_code(
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

fn check_affiliate_may_hold_codes(affiliate: &Affiliate) -> Result<(), DomainError> {
    if matches!(affiliate.status, AffiliateStatus::Rejected | AffiliateStatus::Banned) {
        return Err(DomainError::conflict(
            "affiliate_not_eligible",
            format!("a {} affiliate cannot receive codes", affiliate.status.as_str()),
        ));
    }
    Ok(())
}

fn check_campaign_open(campaign: &CampaignCoupon, affiliate: &Affiliate, now: OffsetDateTime) -> Result<(), DomainError> {
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

impl Services {
    // ---- campaign coupons -------------------------------------------------------------

    /// Creates a campaign coupon and its Stripe coupon (Growth+ for API keys; Manager role).
    ///
    /// # Errors
    /// Gates, `program_not_found`, `program_archived`, validation, gateway failures.
    pub async fn create_campaign_coupon(
        &self,
        ctx: &BrandContext,
        program_id: ProgramId,
        input: CampaignCouponInput,
    ) -> Result<CampaignCoupon, DomainError> {
        ctx.require_plan(PlanTier::Growth)?;
        ctx.require_role(Role::Manager)?;
        let now = self.now();
        let new = NewCampaignCoupon::parse(input, now)?;
        let org = ctx.org_id();
        let coupon = CampaignCoupon::reserve(CampaignCouponId::from_uuid(self.new_uuid(now)), org, program_id, new, now);
        let reserved = coupon.clone();
        self.tx(move |tx| {
            let program = tx.program(org, program_id)?.ok_or(DomainError::NotFound("program_not_found"))?;
            if program.is_archived() {
                return Err(DomainError::conflict("program_archived", "the program is archived"));
            }
            tx.insert_campaign_coupon(&reserved)?;
            Ok(())
        })
        .await?;
        self.provision_campaign_coupon(coupon, ctx.org.stripe_account_id.clone(), ctx.actor.audit_actor()).await
    }

    async fn provision_campaign_coupon(
        &self,
        coupon: CampaignCoupon,
        stripe_account: Option<String>,
        actor: AuditActor,
    ) -> Result<CampaignCoupon, DomainError> {
        let request = CreateCoupon {
            idempotency_key: coupon.creation_key(),
            name: coupon.stripe_name(),
            discount: coupon.discount.clone(),
            duration: coupon.duration,
            redeem_by: coupon.expires_at,
            metadata: vec![
                ("rekomi_id".to_owned(), coupon.id.to_string()),
                ("rekomi_org_id".to_owned(), coupon.org_id.to_string()),
                ("rekomi_program_id".to_owned(), coupon.program_id.to_string()),
            ],
        };
        let (org, id) = (coupon.org_id, coupon.id);
        match self.gateway.create_coupon(&gateway_context(stripe_account), &request).await {
            Ok(stripe_id) => {
                let now = self.now();
                let audit = self.audit(org, actor, now);
                self.tx(move |tx| {
                    let mut c = tx.campaign_coupon_for_update(org, id)?.ok_or(DomainError::NotFound("campaign_coupon_not_found"))?;
                    if c.stripe_coupon_id.is_some() {
                        return Ok(c);
                    }
                    c.stripe_coupon_id = Some(stripe_id);
                    c.updated_at = now;
                    tx.update_campaign_coupon(&c)?;
                    audit.record(
                        tx,
                        "campaign_coupon.created",
                        "campaign_coupon",
                        id.to_string(),
                        None,
                        Some(campaign_coupon_snapshot(&c)),
                    )?;
                    Ok(c)
                })
                .await
            }
            Err(e @ GatewayError::Rejected { .. }) => {
                self.tx(move |tx| Ok(tx.delete_campaign_coupon(org, id)?)).await?;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The provisioned campaign coupons of a program.
    ///
    /// # Errors
    /// Gates, `program_not_found`.
    pub async fn list_campaign_coupons(
        &self,
        ctx: &BrandContext,
        program_id: ProgramId,
        page: PageRequest,
    ) -> Result<Page<CampaignCoupon>, DomainError> {
        ctx.require_plan(PlanTier::Growth)?;
        let org = ctx.org_id();
        let rows = self
            .tx(move |tx| {
                tx.program(org, program_id)?.ok_or(DomainError::NotFound("program_not_found"))?;
                Ok(tx.list_campaign_coupons(org, program_id, &page)?)
            })
            .await?;
        Ok(Page::from_rows(rows, &page, |c| c.id.as_uuid()))
    }

    /// One campaign coupon of a program.
    ///
    /// # Errors
    /// Gates, `campaign_coupon_not_found`.
    pub async fn get_campaign_coupon(
        &self,
        ctx: &BrandContext,
        program_id: ProgramId,
        id: CampaignCouponId,
    ) -> Result<CampaignCoupon, DomainError> {
        ctx.require_plan(PlanTier::Growth)?;
        let org = ctx.org_id();
        self.tx(move |tx| load_campaign(tx, org, Some(program_id), id)).await
    }

    /// Changes the name or the toggles of a campaign coupon.
    ///
    /// # Errors
    /// Gates, `campaign_coupon_not_found`, validation.
    pub async fn update_campaign_coupon(
        &self,
        ctx: &BrandContext,
        program_id: ProgramId,
        id: CampaignCouponId,
        patch: CampaignCouponPatch,
    ) -> Result<CampaignCoupon, DomainError> {
        ctx.require_plan(PlanTier::Growth)?;
        ctx.require_role(Role::Manager)?;
        let org = ctx.org_id();
        let now = self.now();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            let mut c = lock_campaign(tx, org, Some(program_id), id)?;
            let before = campaign_coupon_snapshot(&c);
            c.apply(patch, now)?;
            tx.update_campaign_coupon(&c)?;
            audit.record(
                tx,
                "campaign_coupon.updated",
                "campaign_coupon",
                id.to_string(),
                Some(before),
                Some(campaign_coupon_snapshot(&c)),
            )?;
            Ok(c)
        })
        .await
    }

    /// Archives a campaign coupon: marks it inactive (so no new codes can be minted), then
    /// deactivates every active child promotion code at Stripe and marks it revoked. If Stripe
    /// fails part-way, calling archive again finishes the remaining codes.
    ///
    /// # Errors
    /// Gates, `campaign_coupon_not_found`, gateway failures.
    pub async fn archive_campaign_coupon(
        &self,
        ctx: &BrandContext,
        program_id: ProgramId,
        id: CampaignCouponId,
    ) -> Result<CampaignCoupon, DomainError> {
        ctx.require_plan(PlanTier::Growth)?;
        ctx.require_role(Role::Manager)?;
        let org = ctx.org_id();
        let coupon = self.tx(move |tx| load_campaign(tx, org, Some(program_id), id)).await?;
        self.close_campaign_coupon(ctx.org.stripe_account_id.clone(), ctx.actor.audit_actor(), org, program_id, coupon).await?;
        self.tx(move |tx| load_campaign(tx, org, Some(program_id), id)).await
    }

    /// The archive itself, without the caller's gates (a program archive reuses it).
    pub(crate) async fn close_campaign_coupon(
        &self,
        stripe_account: Option<String>,
        actor: AuditActor,
        org: OrgId,
        program_id: ProgramId,
        coupon: CampaignCoupon,
    ) -> Result<(), DomainError> {
        let id = coupon.id;
        let now = self.now();
        let audit = self.audit(org, actor.clone(), now);
        let codes = self
            .tx(move |tx| {
                let mut c = lock_campaign(tx, org, Some(program_id), id)?;
                let before = campaign_coupon_snapshot(&c);
                if c.archive(now) {
                    tx.update_campaign_coupon(&c)?;
                    audit.record(
                        tx,
                        "campaign_coupon.archived",
                        "campaign_coupon",
                        id.to_string(),
                        Some(before),
                        Some(campaign_coupon_snapshot(&c)),
                    )?;
                }
                active_codes(tx, org, CouponSelector::CampaignCoupon(id))
            })
            .await?;
        let gw = gateway_context(stripe_account);
        for code in codes {
            self.deactivate_code(&gw, code, actor.clone()).await?;
        }
        Ok(())
    }

    /// Deactivates every active code of these affiliates (after a ban or a deletion), so none
    /// stays redeemable at Stripe.
    pub(crate) async fn revoke_codes_of(&self, ctx: &BrandContext, affiliates: Vec<AffiliateId>) -> Result<(), DomainError> {
        let org = ctx.org_id();
        let codes = self
            .tx(move |tx| {
                let mut out = Vec::new();
                for a in affiliates {
                    out.extend(active_codes(tx, org, CouponSelector::Affiliate(a))?);
                }
                Ok(out)
            })
            .await?;
        let gw = gateway_context(ctx.org.stripe_account_id.clone());
        for code in codes {
            self.deactivate_code(&gw, code, ctx.actor.audit_actor()).await?;
        }
        Ok(())
    }

    /// Deactivates one code at Stripe, then marks it revoked.
    async fn deactivate_code(&self, gw: &GatewayContext, code: AffiliateCoupon, actor: AuditActor) -> Result<(), DomainError> {
        if let Some(stripe_id) = &code.stripe_promotion_code_id {
            match self.gateway.deactivate_promotion_code(gw, stripe_id, &code.deactivation_key()).await {
                Ok(()) | Err(GatewayError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let now = self.now();
        let (org, id) = (code.org_id, code.id);
        let audit = self.audit(org, actor, now);
        self.tx(move |tx| {
            let Some(mut c) = tx.affiliate_coupon_for_update(org, id)? else { return Ok(()) };
            let before = affiliate_coupon_snapshot(&c);
            if !c.revoke(now) {
                return Ok(());
            }
            tx.update_affiliate_coupon(&c)?;
            audit.record(
                tx,
                "affiliate_coupon.deactivated",
                "affiliate_coupon",
                id.to_string(),
                Some(before),
                Some(affiliate_coupon_snapshot(&c)),
            )?;
            audit.emit(tx, "affiliate_coupon.deactivated", affiliate_coupon_data(&c))?;
            Ok(())
        })
        .await
    }

    /// Deletes a campaign coupon that never had codes: its Stripe coupon is deleted, then the
    /// row. With codes (active or revoked) it is refused; archive it instead.
    ///
    /// # Errors
    /// Gates, `campaign_coupon_not_found`, `coupon_has_codes`, gateway failures.
    pub async fn delete_campaign_coupon(&self, ctx: &BrandContext, program_id: ProgramId, id: CampaignCouponId) -> Result<(), DomainError> {
        ctx.require_plan(PlanTier::Growth)?;
        ctx.require_role(Role::Manager)?;
        let org = ctx.org_id();
        let now = self.now();
        // Closing the coupon first (under its row lock, which code reservations also take) means
        // no code can be minted while Stripe deletes it.
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        let coupon = self
            .tx(move |tx| {
                let mut c = lock_campaign(tx, org, Some(program_id), id)?;
                if tx.campaign_coupon_has_codes(org, id)? {
                    return Err(has_codes());
                }
                let before = campaign_coupon_snapshot(&c);
                if c.archive(now) {
                    tx.update_campaign_coupon(&c)?;
                    audit.record(
                        tx,
                        "campaign_coupon.archived",
                        "campaign_coupon",
                        id.to_string(),
                        Some(before),
                        Some(campaign_coupon_snapshot(&c)),
                    )?;
                }
                Ok(c)
            })
            .await?;
        if let Some(stripe_id) = &coupon.stripe_coupon_id {
            match self.gateway.delete_coupon(&gateway_context(ctx.org.stripe_account_id.clone()), stripe_id, &coupon.deletion_key()).await {
                Ok(()) | Err(GatewayError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            tx.delete_campaign_coupon(org, id)?;
            audit.record(
                tx,
                "campaign_coupon.deleted",
                "campaign_coupon",
                id.to_string(),
                Some(campaign_coupon_snapshot(&coupon)),
                None,
            )?;
            Ok(())
        })
        .await
    }

    // ---- affiliate coupons ------------------------------------------------------------

    /// Creates a code for an affiliate under a campaign coupon of the affiliate's program, as a
    /// Stripe promotion code (Growth+ for API keys; Manager role).
    ///
    /// # Errors
    /// Gates, `affiliate_not_found`, `campaign_coupon_not_found`, `program_mismatch`,
    /// `campaign_coupon_inactive`, `affiliate_not_eligible`, validation, `code_already_taken`,
    /// gateway failures.
    pub async fn create_affiliate_coupon(
        &self,
        ctx: &BrandContext,
        affiliate_id: AffiliateId,
        campaign_coupon_id: CampaignCouponId,
        input: AffiliateCouponInput,
    ) -> Result<CodeView, DomainError> {
        ctx.require_plan(PlanTier::Growth)?;
        ctx.require_role(Role::Manager)?;
        let org = ctx.org_id();
        let now = self.now();
        let id = AffiliateCouponId::from_uuid(self.new_uuid(now));
        let generated = self.candidate_codes();
        let stripe_account = ctx.org.stripe_account_id.clone();
        let reserved = self
            .tx(move |tx| {
                let affiliate = tx.affiliate_for_update(org, affiliate_id)?.ok_or(DomainError::NotFound("affiliate_not_found"))?;
                check_affiliate_may_hold_codes(&affiliate)?;
                let campaign = lock_campaign(tx, org, None, campaign_coupon_id)?;
                check_campaign_open(&campaign, &affiliate, now)?;
                check_program_open(tx, org, affiliate.program_id)?;
                let settings = CodeSettings::parse(input, &campaign, now)?;
                let (coupon, campaign, affiliate) = reserve_code(tx, id, affiliate, campaign, settings, generated, false, now)?;
                Ok(Reserved { coupon, campaign, affiliate, stripe_account })
            })
            .await?;
        self.provision_affiliate_coupon(reserved, ctx.actor.audit_actor()).await
    }

    fn candidate_codes(&self) -> Vec<CouponCode> {
        (0..5).map(|_| CouponCode::generate(self.entropy.as_ref())).collect()
    }

    async fn provision_affiliate_coupon(&self, r: Reserved, actor: AuditActor) -> Result<CodeView, DomainError> {
        let Reserved { coupon, campaign, affiliate, stripe_account } = r;
        let request = CreatePromotionCode {
            idempotency_key: coupon.creation_key(),
            coupon_id: campaign.stripe_coupon_id.clone().unwrap_or_default(),
            code: coupon.code.as_str().to_owned(),
            max_redemptions: coupon.max_redemptions,
            expires_at: coupon.expires_at,
            first_time_transaction: coupon.restrictions.first_time_order,
            minimum_amount: coupon.restrictions.minimum_amount,
            customer: coupon.restrictions.customer_id.clone(),
            metadata: vec![
                ("rekomi_id".to_owned(), coupon.id.to_string()),
                ("rekomi_org_id".to_owned(), coupon.org_id.to_string()),
                ("rekomi_affiliate_id".to_owned(), coupon.affiliate_id.to_string()),
                ("rekomi_campaign_coupon_id".to_owned(), coupon.campaign_coupon_id.to_string()),
            ],
        };
        let gw = gateway_context(stripe_account);
        let (org, id) = (coupon.org_id, coupon.id);
        match self.gateway.create_promotion_code(&gw, &request).await {
            Ok(stripe_id) => {
                let now = self.now();
                let audit = self.audit(org, actor.clone(), now);
                let (view, campaign_closed) = self
                    .tx(move |tx| {
                        // Campaign first, then code: the order every transaction here takes.
                        let campaign = tx.campaign_coupon_for_update(org, campaign.id)?.unwrap_or(campaign);
                        let mut c = tx.affiliate_coupon_for_update(org, id)?.ok_or(DomainError::NotFound("promotional_code_not_found"))?;
                        if c.stripe_promotion_code_id.is_none() {
                            c.stripe_promotion_code_id = Some(stripe_id);
                            c.updated_at = now;
                            tx.update_affiliate_coupon(&c)?;
                            audit.record(
                                tx,
                                "affiliate_coupon.created",
                                "affiliate_coupon",
                                id.to_string(),
                                None,
                                Some(affiliate_coupon_snapshot(&c)),
                            )?;
                            audit.emit(tx, "affiliate_coupon.created", affiliate_coupon_data(&c))?;
                        }
                        let closed = !campaign.is_active && c.is_active;
                        Ok((CodeView { coupon: c, campaign, affiliate }, closed))
                    })
                    .await?;
                // The campaign coupon was archived while this code was being provisioned:
                // the archive could not see it, so it is deactivated here.
                if campaign_closed {
                    self.deactivate_code(&gw, view.coupon.clone(), actor).await?;
                }
                Ok(view)
            }
            Err(e) if e.is_code_taken() => {
                self.tx(move |tx| Ok(tx.delete_affiliate_coupon(org, id)?)).await?;
                // Stripe keeps promotion code texts unique per Stripe account, which several
                // organizations may share when none of them is linked through Connect.
                Err(DomainError::Unprocessable {
                    code: "code_already_taken",
                    message: "this code is already active on the Stripe account".to_owned(),
                    field: Some("code".to_owned()),
                })
            }
            Err(e @ GatewayError::Rejected { .. }) => {
                self.tx(move |tx| Ok(tx.delete_affiliate_coupon(org, id)?)).await?;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The codes of one affiliate, newest first.
    ///
    /// # Errors
    /// Gates, `affiliate_not_found`.
    pub async fn list_affiliate_coupons(
        &self,
        ctx: &BrandContext,
        affiliate_id: AffiliateId,
        page: PageRequest,
    ) -> Result<Page<CodeView>, DomainError> {
        ctx.require_plan(PlanTier::Growth)?;
        let org = ctx.org_id();
        self.tx(move |tx| {
            tx.affiliate(org, affiliate_id)?.ok_or(DomainError::NotFound("affiliate_not_found"))?;
            let rows = tx.list_affiliate_coupons(org, &CouponSelector::Affiliate(affiliate_id), &page)?;
            let page = Page::from_rows(rows, &page, |c| c.id.as_uuid());
            let next = page.next_after;
            Ok(Page { items: views(tx, org, page.items)?, next_after: next })
        })
        .await
    }

    /// Revokes a code: deactivates it at Stripe and marks it inactive. Revoking a revoked code
    /// changes nothing.
    ///
    /// # Errors
    /// Gates, `promotional_code_not_found`, gateway failures.
    pub async fn revoke_affiliate_coupon(
        &self,
        ctx: &BrandContext,
        affiliate_id: AffiliateId,
        id: AffiliateCouponId,
    ) -> Result<(), DomainError> {
        ctx.require_plan(PlanTier::Growth)?;
        ctx.require_role(Role::Manager)?;
        let org = ctx.org_id();
        let code = self
            .tx(move |tx| {
                tx.affiliate_coupon(org, id)?
                    .filter(|c| c.affiliate_id == affiliate_id && c.stripe_promotion_code_id.is_some())
                    .ok_or(DomainError::NotFound("promotional_code_not_found"))
            })
            .await?;
        if !code.is_active {
            return Ok(());
        }
        self.deactivate_code(&gateway_context(ctx.org.stripe_account_id.clone()), code, ctx.actor.audit_actor()).await
    }

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

    /// Mints a code for the calling affiliate under a campaign coupon that allows it. The
    /// caller must own an Approved affiliate row in the coupon's program. The first call with
    /// an unlinked row (matched by email) links it to the caller's user id.
    ///
    /// # Errors
    /// `campaign_coupon_not_found`, `affiliate_not_approved`, `self_mint_not_allowed`,
    /// `code_already_taken`, validation, gateway failures.
    pub async fn self_mint_coupon(
        &self,
        caller: &AffiliateActor,
        campaign_coupon_id: CampaignCouponId,
        code: CouponCode,
    ) -> Result<CodeView, DomainError> {
        let now = self.now();
        let id = AffiliateCouponId::from_uuid(self.new_uuid(now));
        let caller = caller.clone();
        let user_id = caller.user_id.clone();
        let email = Email::parse("email", &caller.email).map_err(|_| DomainError::Forbidden {
            code: "invalid_affiliate_token",
            message: "the affiliate token carries no valid email".to_owned(),
        })?;
        // The first call links unlinked rows matched by email to the caller, whatever becomes of
        // the mint itself.
        let (link_caller, link_email) = (caller.clone(), email.clone());
        let link_audit_entropy = std::sync::Arc::clone(&self.entropy);
        self.tx(move |tx| {
            for mut affiliate in tx.affiliates_of_user(&link_caller.user_id, &link_email)? {
                if affiliate.user_id.is_none() {
                    let audit = crate::services::Audit {
                        org: affiliate.org_id,
                        actor: AuditActor::User(link_caller.user_id.clone()),
                        now,
                        entropy: std::sync::Arc::clone(&link_audit_entropy),
                    };
                    affiliate.user_id = Some(link_caller.user_id.clone());
                    affiliate.updated_at = now;
                    tx.update_affiliate(&affiliate)?;
                    audit.record(tx, "affiliate.user_linked", "affiliate", affiliate.id.to_string(), None, None)?;
                }
            }
            Ok(())
        })
        .await?;
        let reserved = self
            .tx(move |tx| {
                let mut found = None;
                for affiliate in tx.affiliates_of_user(&caller.user_id, &email)? {
                    if let Some(c) = tx.campaign_coupon_for_update(affiliate.org_id, campaign_coupon_id)? {
                        if c.program_id == affiliate.program_id && c.stripe_coupon_id.is_some() {
                            found = Some((affiliate, c));
                            break;
                        }
                    }
                }
                let (affiliate, campaign) = found.ok_or(DomainError::NotFound("campaign_coupon_not_found"))?;
                let org = tx.org(affiliate.org_id)?.ok_or(DomainError::NotFound("campaign_coupon_not_found"))?;
                check_plan(org.plan_tier, org.status_at(now), PlanTier::Starter, Channel::Dashboard)?;
                if affiliate.status != AffiliateStatus::Approved {
                    return Err(DomainError::Forbidden {
                        code: "affiliate_not_approved",
                        message: "only approved affiliates can mint codes".to_owned(),
                    });
                }
                if !campaign.allow_affiliate_self_mint {
                    return Err(DomainError::Forbidden {
                        code: "self_mint_not_allowed",
                        message: "this campaign coupon does not allow affiliates to mint codes".to_owned(),
                    });
                }
                check_campaign_open(&campaign, &affiliate, now)?;
                check_program_open(tx, org.id, affiliate.program_id)?;
                let input = AffiliateCouponInput { code: Some(code.as_str().to_owned()), ..Default::default() };
                let settings = CodeSettings::parse(input, &campaign, now)?;
                let (coupon, campaign, affiliate) = reserve_code(tx, id, affiliate, campaign, settings, Vec::new(), true, now)?;
                Ok(Reserved { coupon, campaign, affiliate, stripe_account: org.stripe_account_id })
            })
            .await?;
        self.provision_affiliate_coupon(reserved, AuditActor::User(user_id)).await
    }

    // ---- reconciler -------------------------------------------------------------------

    /// Finishes reservations whose Stripe call did not complete (a crash, a timeout, Stripe
    /// down) more than `RECONCILE_AFTER` (5 minutes) ago, with the same idempotency keys, so Stripe
    /// returns the objects it may already have created.
    ///
    /// # Errors
    /// Storage failures; gateway failures are counted as `pending` and retried next pass.
    pub async fn reconcile_provisioning(&self) -> Result<ReconcileReport, DomainError> {
        let before = self.now() - RECONCILE_AFTER;
        let mut report = ReconcileReport::default();
        let campaigns = self
            .tx(move |tx| {
                let mut out = Vec::new();
                for c in tx.unprovisioned_campaign_coupons(before, 50)? {
                    let account = tx.org(c.org_id)?.and_then(|o| o.stripe_account_id);
                    out.push((c, account));
                }
                Ok(out)
            })
            .await?;
        for (coupon, account) in campaigns {
            let outcome = self.provision_campaign_coupon(coupon, account, AuditActor::System).await.map(|_| ());
            tally(&mut report, outcome);
        }
        let codes = self
            .tx(move |tx| {
                let mut out = Vec::new();
                for c in tx.unprovisioned_affiliate_coupons(before, 50)? {
                    let org = c.org_id;
                    let campaign = tx.campaign_coupon(org, c.campaign_coupon_id)?;
                    let affiliate = tx.affiliate(org, c.affiliate_id)?;
                    let account = tx.org(org)?.and_then(|o| o.stripe_account_id);
                    match (campaign, affiliate) {
                        (Some(campaign), Some(affiliate)) if campaign.stripe_coupon_id.is_some() => {
                            out.push(Reserved { coupon: c, campaign, affiliate, stripe_account: account });
                        }
                        // Its parent is gone or was never provisioned: nothing to finish.
                        _ => tx.delete_affiliate_coupon(org, c.id)?,
                    }
                }
                Ok(out)
            })
            .await?;
        for reserved in codes {
            let outcome = self.provision_affiliate_coupon(reserved, AuditActor::System).await.map(|_| ());
            tally(&mut report, outcome);
        }
        Ok(report)
    }
}

/// Counts one reconciled reservation. One failing reservation never stops the pass: it is
/// logged and retried on the next one.
fn tally(report: &mut ReconcileReport, outcome: Result<(), DomainError>) {
    match outcome {
        Ok(()) => report.provisioned += 1,
        Err(DomainError::Gateway(GatewayError::Rejected { .. })) | Err(DomainError::Unprocessable { .. }) => report.released += 1,
        Err(e) => {
            tracing::warn!(error.cause = %e, "a reservation could not be reconciled; retrying next pass");
            report.pending += 1;
        }
    }
}

/// One provisioned code with its campaign coupon and owner, or `promotional_code_not_found`.
fn single_code(tx: &mut dyn Tx, org: OrgId, found: Option<AffiliateCoupon>) -> Result<PromoCodeResult, DomainError> {
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

fn all_codes(tx: &mut dyn Tx, org: OrgId, selector: &CouponSelector, max: usize) -> Result<Vec<AffiliateCoupon>, DomainError> {
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
fn views(tx: &mut dyn Tx, org: OrgId, codes: Vec<AffiliateCoupon>) -> Result<Vec<CodeView>, DomainError> {
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
