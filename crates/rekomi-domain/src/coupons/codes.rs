//! Affiliate codes (Stripe promotion codes): create for an affiliate or self-minted by one,
//! list, revoke.

use crate::affiliates::{AffiliateStatus, Email};
use crate::audit::affiliate_coupon_snapshot;
use crate::audit::AuditAction;
use crate::coupons::CouponSelector;
use crate::coupons::{AffiliateCouponInput, CodeSettings, CouponCode};
use crate::kernel::actor::{AffiliateActor, AuditActor, Role};
use crate::kernel::error::DomainError;
use crate::kernel::ids::{AffiliateCouponId, AffiliateId, CampaignCouponId};
use crate::kernel::page::{Page, PageRequest};
use crate::kernel::plan::{check_plan, Channel, PlanTier};
use crate::outbound::EventType;
use crate::ports::{CreatePromotionCode, GatewayError};

use crate::outbound::outbox::affiliate_coupon_data;
use crate::services::{BrandContext, Services};

use super::lookup::views;
use super::usecases::*;

impl Services {
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

    pub(super) async fn provision_affiliate_coupon(&self, r: Reserved, actor: AuditActor) -> Result<CodeView, DomainError> {
        let Reserved { coupon, campaign, affiliate, stripe_account } = r;
        // Codes are reserved only under a provisioned campaign coupon (one that accepts new
        // codes; the reconciler skips the others).
        let Some(coupon_id) = campaign.stripe_coupon_id.clone() else {
            return Err(DomainError::conflict("campaign_coupon_inactive", "the campaign coupon is not provisioned at Stripe yet"));
        };
        let request = CreatePromotionCode {
            idempotency_key: coupon.creation_key(),
            coupon_id,
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
                                AuditAction::AffiliateCouponCreated,
                                "affiliate_coupon",
                                id.to_string(),
                                None,
                                Some(affiliate_coupon_snapshot(&c)),
                            )?;
                            audit.emit(tx, EventType::AffiliateCouponCreated, affiliate_coupon_data(&c))?;
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
                    audit.record(tx, AuditAction::AffiliateUserLinked, "affiliate", affiliate.id.to_string(), None, None)?;
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
}
