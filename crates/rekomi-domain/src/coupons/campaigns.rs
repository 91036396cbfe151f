//! Campaign coupons (Stripe coupons): create (reserve, call Stripe, record), list, read,
//! rename and toggle, archive (with their codes), delete.

use crate::audit::AuditAction;
use crate::audit::{affiliate_coupon_snapshot, campaign_coupon_snapshot};
use crate::coupons::CouponSelector;
use crate::coupons::{AffiliateCoupon, CampaignCoupon, CampaignCouponInput, CampaignCouponPatch, NewCampaignCoupon};
use crate::kernel::actor::{AuditActor, Role};
use crate::kernel::error::DomainError;
use crate::kernel::ids::{AffiliateId, CampaignCouponId, OrgId, ProgramId};
use crate::kernel::page::{Page, PageRequest};
use crate::kernel::plan::PlanTier;
use crate::kernel::stripe_ids::StripeAccountId;
use crate::outbound::EventType;
use crate::ports::{CreateCoupon, GatewayContext, GatewayError};

use crate::outbound::outbox::affiliate_coupon_data;
use crate::services::{BrandContext, Services};

use super::lookup::active_codes;
use super::usecases::*;

impl Services {
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

    pub(super) async fn provision_campaign_coupon(
        &self,
        coupon: CampaignCoupon,
        stripe_account: Option<StripeAccountId>,
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
                        AuditAction::CampaignCouponCreated,
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
                AuditAction::CampaignCouponUpdated,
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
        stripe_account: Option<StripeAccountId>,
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
                        AuditAction::CampaignCouponArchived,
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
    pub(super) async fn deactivate_code(&self, gw: &GatewayContext, code: AffiliateCoupon, actor: AuditActor) -> Result<(), DomainError> {
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
                AuditAction::AffiliateCouponDeactivated,
                "affiliate_coupon",
                id.to_string(),
                Some(before),
                Some(affiliate_coupon_snapshot(&c)),
            )?;
            audit.emit(tx, EventType::AffiliateCouponDeactivated, affiliate_coupon_data(&c))?;
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
                        AuditAction::CampaignCouponArchived,
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
                AuditAction::CampaignCouponDeleted,
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
}
