//! Affiliate use cases.

use crate::audit::AuditAction;
use crate::outbound::EventType;
use std::collections::HashMap;

use crate::affiliates::AffiliateFilter;
use crate::affiliates::{
    generate_link_slug, validate_alias, Affiliate, AffiliateLink, AffiliateSource, AffiliateStatus, Email, LinkFormat,
};
use crate::audit::affiliate_snapshot;
use crate::kernel::actor::Role;
use crate::kernel::error::{DomainError, FieldError};
use crate::kernel::ids::{AffiliateId, LinkId, OrgId, ProgramId};
use crate::kernel::page::{Page, PageRequest};
use crate::kernel::plan::PlanTier;
use crate::ports::store::constraints;
use crate::ports::{StoreError, Tx};
use crate::programs::Commission;

use crate::outbound::outbox::affiliate_data;
use crate::services::{BrandContext, Services};

/// An affiliate with its links, as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffiliateView {
    /// The affiliate.
    pub affiliate: Affiliate,
    /// Its links, default first.
    pub links: Vec<AffiliateLink>,
}

/// A validated admin-path affiliate creation.
#[derive(Clone, Debug)]
pub struct NewAffiliate {
    /// Program.
    pub program_id: ProgramId,
    /// Email.
    pub email: Email,
    /// Full name.
    pub full_name: Option<String>,
    /// Initial status: `Approved` (the default, as the admin path skips the application) or
    /// `Pending`.
    pub status: Option<AffiliateStatus>,
    /// Custom commission.
    pub custom_commission: Option<Commission>,
    /// Custom alias, used as the default link's slug.
    pub custom_alias: Option<String>,
    /// The affiliate who recruited this one (sub-affiliate overrides): an Approved affiliate of
    /// the same organization. (The public apply form, unlike this admin path, ignores a
    /// mismatch silently, as the spec says.)
    pub recruited_by: Option<AffiliateId>,
}

/// A validated PATCH: `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct AffiliatePatch {
    /// Full name (`Some(None)` clears).
    pub full_name: Option<Option<String>>,
    /// Status (checked against the transition table).
    pub status: Option<AffiliateStatus>,
    /// Custom commission (`Some(None)` clears).
    pub custom_commission: Option<Option<Commission>>,
    /// Notes (`Some(None)` clears).
    pub notes: Option<Option<String>>,
    /// Tags (replaces the list).
    pub tags: Option<Vec<String>>,
}

/// A bulk action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkAction {
    /// Pending → Approved.
    Approve,
    /// Approved → Paused.
    Pause,
    /// Delete (any status).
    Delete,
}

impl BulkAction {
    /// The API name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Pause => "pause",
            Self::Delete => "delete",
        }
    }
}

/// The answer of a bulk action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BulkOutcome {
    /// Rows changed.
    pub affected: usize,
    /// Ids received (after removing duplicates).
    pub total: usize,
    /// The action.
    pub action: BulkAction,
}

/// The most ids one bulk action takes.
pub const BULK_MAX: usize = 200;

fn illegal(e: crate::affiliates::IllegalTransition) -> DomainError {
    DomainError::conflict("invalid_status_transition", e.to_string())
}

pub(crate) fn view_of(tx: &mut dyn Tx, org: OrgId, affiliate: Affiliate) -> Result<AffiliateView, StoreError> {
    let links = tx.links_of(org, &[affiliate.id])?;
    Ok(AffiliateView { affiliate, links })
}

fn views_of(tx: &mut dyn Tx, org: OrgId, affiliates: Vec<Affiliate>) -> Result<Vec<AffiliateView>, StoreError> {
    let ids: Vec<AffiliateId> = affiliates.iter().map(|a| a.id).collect();
    let mut by_affiliate: HashMap<AffiliateId, Vec<AffiliateLink>> = HashMap::new();
    for link in tx.links_of(org, &ids)? {
        by_affiliate.entry(link.affiliate_id).or_default().push(link);
    }
    Ok(affiliates
        .into_iter()
        .map(|a| {
            let links = by_affiliate.remove(&a.id).unwrap_or_default();
            AffiliateView { affiliate: a, links }
        })
        .collect())
}

impl Services {
    /// Creates an affiliate and its default link (admin path).
    ///
    /// # Errors
    /// `program_not_found`, `program_archived`, `affiliate_already_exists`,
    /// `alias_already_taken`, validation.
    pub async fn create_affiliate(&self, ctx: &BrandContext, new: NewAffiliate) -> Result<AffiliateView, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        ctx.require_role(Role::Manager)?;
        let status = new.status.unwrap_or(AffiliateStatus::Approved);
        if !matches!(status, AffiliateStatus::Approved | AffiliateStatus::Pending) {
            return Err(FieldError::coded("status", "unsupported_value", "a new affiliate is Approved or Pending").into());
        }
        let alias = new.custom_alias.as_deref().map(validate_alias).transpose()?;
        let org = ctx.org_id();
        let now = self.now();
        let affiliate = Affiliate {
            id: AffiliateId::from_uuid(self.new_uuid(now)),
            org_id: org,
            program_id: new.program_id,
            email: new.email,
            full_name: new.full_name,
            status,
            custom_commission: new.custom_commission,
            tags: Vec::new(),
            notes: None,
            source: AffiliateSource::Direct,
            user_id: None,
            rejection_reason: None,
            applied_at: now,
            approved_at: (status == AffiliateStatus::Approved).then_some(now),
            created_at: now,
            updated_at: now,
        };
        // Several random slugs are drawn up front so the transaction can skip taken ones
        // without reaching back for entropy.
        let candidates: Vec<String> = match &alias {
            Some(a) => vec![a.clone()],
            None => (0..5).map(|_| generate_link_slug(affiliate.full_name.as_deref(), &affiliate.email, self.entropy.as_ref())).collect(),
        };
        let link_id = LinkId::from_uuid(self.new_uuid(now));
        let recruited_by = new.recruited_by;
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            let program = tx.program(org, affiliate.program_id)?.ok_or(DomainError::NotFound("program_not_found"))?;
            if program.is_archived() {
                return Err(DomainError::conflict("program_archived", "the program is archived"));
            }
            if let Some(recruiter) = recruited_by {
                // Another organization's id is as unknown as one that never existed.
                let recruiter = tx.affiliate(org, recruiter)?.ok_or(DomainError::NotFound("affiliate_not_found"))?;
                if recruiter.status != AffiliateStatus::Approved {
                    return Err(DomainError::Unprocessable {
                        code: "recruiter_not_approved",
                        message: format!(
                            "the recruiting affiliate is {}; only an Approved affiliate can recruit",
                            recruiter.status.as_str()
                        ),
                        field: Some("recruitedByAffiliateId".to_owned()),
                    });
                }
            }
            tx.insert_affiliate(&affiliate).map_err(|e| {
                if e.is_conflict_on(constraints::AFFILIATE_EMAIL) {
                    DomainError::conflict("affiliate_already_exists", "an affiliate with this email already exists in the program")
                } else {
                    e.into()
                }
            })?;
            let mut slug = None;
            for candidate in candidates {
                if !tx.link_slug_taken(org, &candidate)? {
                    slug = Some(candidate);
                    break;
                }
            }
            let slug = slug.ok_or_else(|| {
                if alias.is_some() {
                    DomainError::conflict("alias_already_taken", "this alias is already used by another link")
                } else {
                    DomainError::conflict("slug_generation_failed", "could not find a free link slug; try again")
                }
            })?;
            let link = AffiliateLink {
                id: link_id,
                org_id: org,
                affiliate_id: affiliate.id,
                slug,
                custom_alias: alias,
                is_default: true,
                format: LinkFormat::Query,
                created_at: now,
            };
            tx.insert_link(&link).map_err(|e| {
                if e.is_conflict_on(constraints::LINK_SLUG) {
                    DomainError::conflict("alias_already_taken", "this alias is already used by another link")
                } else {
                    e.into()
                }
            })?;
            audit.record(
                tx,
                AuditAction::AffiliateCreated,
                "affiliate",
                affiliate.id.to_string(),
                None,
                Some(affiliate_snapshot(&affiliate)),
            )?;
            if let Some(recruiter) = recruited_by {
                // Checked above; a new affiliate cannot have recruited itself.
                tx.set_recruiter(org, affiliate.id, recruiter)?;
            }
            audit.emit(tx, EventType::AffiliateCreated, affiliate_data(&affiliate))?;
            if affiliate.status == AffiliateStatus::Approved {
                audit.emit(tx, EventType::AffiliateApproved, affiliate_data(&affiliate))?;
            }
            Ok(AffiliateView { affiliate, links: vec![link] })
        })
        .await
    }

    /// One affiliate of the caller's organization.
    ///
    /// # Errors
    /// `affiliate_not_found`.
    pub async fn get_affiliate(&self, ctx: &BrandContext, id: AffiliateId) -> Result<AffiliateView, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        let org = ctx.org_id();
        self.tx(move |tx| {
            let a = tx.affiliate(org, id)?.ok_or(DomainError::NotFound("affiliate_not_found"))?;
            Ok(view_of(tx, org, a)?)
        })
        .await
    }

    /// Affiliates matching the filter, newest first.
    ///
    /// # Errors
    /// Gates and storage.
    pub async fn list_affiliates(
        &self,
        ctx: &BrandContext,
        filter: AffiliateFilter,
        page: PageRequest,
    ) -> Result<Page<AffiliateView>, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        let org = ctx.org_id();
        let (items, next_after) = self
            .tx(move |tx| {
                let rows = tx.list_affiliates(org, &filter, &page)?;
                let page = Page::from_rows(rows, &page, |a| a.id.as_uuid());
                let next = page.next_after;
                Ok((views_of(tx, org, page.items)?, next))
            })
            .await?;
        Ok(Page { items, next_after })
    }

    /// Updates the fields present in `patch`.
    ///
    /// # Errors
    /// `affiliate_not_found`, `invalid_status_transition`, validation.
    pub async fn update_affiliate(&self, ctx: &BrandContext, id: AffiliateId, patch: AffiliatePatch) -> Result<AffiliateView, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        ctx.require_role(Role::Manager)?;
        let org = ctx.org_id();
        let now = self.now();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        let banning = patch.status == Some(AffiliateStatus::Banned);
        let view = self
            .tx(move |tx| {
                let mut a = tx.affiliate_for_update(org, id)?.ok_or(DomainError::NotFound("affiliate_not_found"))?;
                let before = affiliate_snapshot(&a);
                if let Some(status) = patch.status {
                    a.transition(status, now).map_err(illegal)?;
                }
                if let Some(v) = patch.full_name {
                    a.full_name = v;
                }
                if let Some(v) = patch.custom_commission {
                    a.custom_commission = v;
                }
                if let Some(v) = patch.notes {
                    a.notes = v;
                }
                if let Some(v) = patch.tags {
                    a.tags = v;
                }
                a.updated_at = now;
                tx.update_affiliate(&a)?;
                audit.record(tx, AuditAction::AffiliateUpdated, "affiliate", id.to_string(), Some(before), Some(affiliate_snapshot(&a)))?;
                Ok(view_of(tx, org, a)?)
            })
            .await?;
        // A banned affiliate's codes must stop working at Stripe. Banning again (Banned to
        // Banned is allowed) retries this if Stripe was unavailable.
        if banning {
            self.revoke_codes_of(ctx, vec![id]).await?;
        }
        Ok(view)
    }

    /// Approves a pending (or previously rejected) application.
    ///
    /// # Errors
    /// `affiliate_not_found`, `invalid_status_transition`.
    pub async fn approve_affiliate(&self, ctx: &BrandContext, id: AffiliateId) -> Result<AffiliateView, DomainError> {
        self.decide(ctx, id, AffiliateStatus::Approved, None).await
    }

    /// Rejects a pending application with an optional reason.
    ///
    /// # Errors
    /// `affiliate_not_found`, `invalid_status_transition`.
    pub async fn reject_affiliate(
        &self,
        ctx: &BrandContext,
        id: AffiliateId,
        reason: Option<String>,
    ) -> Result<AffiliateView, DomainError> {
        self.decide(ctx, id, AffiliateStatus::Rejected, reason).await
    }

    async fn decide(
        &self,
        ctx: &BrandContext,
        id: AffiliateId,
        to: AffiliateStatus,
        reason: Option<String>,
    ) -> Result<AffiliateView, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        ctx.require_role(Role::Manager)?;
        let org = ctx.org_id();
        let now = self.now();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            let mut a = tx.affiliate_for_update(org, id)?.ok_or(DomainError::NotFound("affiliate_not_found"))?;
            if !matches!(a.status, AffiliateStatus::Pending | AffiliateStatus::Rejected) || a.status == to {
                return Err(DomainError::conflict(
                    "invalid_status_transition",
                    format!("only a pending application can be {}; this affiliate is {}", to.as_str().to_lowercase(), a.status.as_str()),
                ));
            }
            let before = affiliate_snapshot(&a);
            a.transition(to, now).map_err(illegal)?;
            if to == AffiliateStatus::Rejected {
                a.rejection_reason = reason;
            }
            tx.update_affiliate(&a)?;
            let action = if to == AffiliateStatus::Approved { AuditAction::AffiliateApproved } else { AuditAction::AffiliateRejected };
            audit.record(tx, action, "affiliate", id.to_string(), Some(before), Some(affiliate_snapshot(&a)))?;
            if to == AffiliateStatus::Approved {
                audit.emit(tx, EventType::AffiliateApproved, affiliate_data(&a))?;
            }
            Ok(view_of(tx, org, a)?)
        })
        .await
    }

    /// Applies one action to up to 200 affiliates (Owner role). Ids outside the organization or
    /// not matching the action's precondition are counted in `total` but not `affected`.
    ///
    /// # Errors
    /// `affiliateIds` validation (empty or more than 200).
    pub async fn bulk_affiliate_action(
        &self,
        ctx: &BrandContext,
        ids: Vec<AffiliateId>,
        action: BulkAction,
    ) -> Result<BulkOutcome, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        ctx.require_role(Role::Owner)?;
        let mut ids = ids;
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() || ids.len() > BULK_MAX {
            return Err(FieldError::invalid("affiliateIds", format!("must hold between 1 and {BULK_MAX} ids")).into());
        }
        let total = ids.len();
        let org = ctx.org_id();
        let now = self.now();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        let (affected, deleted) = self
            .tx(move |tx| {
                let mut affected = 0;
                let mut deleted = Vec::new();
                for id in ids {
                    let Some(mut a) = tx.affiliate_for_update(org, id)? else { continue };
                    let before = affiliate_snapshot(&a);
                    let name = match action {
                        BulkAction::Approve if a.status == AffiliateStatus::Pending => {
                            a.transition(AffiliateStatus::Approved, now).map_err(illegal)?;
                            tx.update_affiliate(&a)?;
                            audit.emit(tx, EventType::AffiliateApproved, affiliate_data(&a))?;
                            AuditAction::AffiliateApproved
                        }
                        BulkAction::Pause if a.status == AffiliateStatus::Approved => {
                            a.transition(AffiliateStatus::Paused, now).map_err(illegal)?;
                            tx.update_affiliate(&a)?;
                            AuditAction::AffiliatePaused
                        }
                        BulkAction::Delete => {
                            tx.delete_affiliate(org, id, now)?;
                            audit.record(tx, AuditAction::AffiliateDeleted, "affiliate", id.to_string(), Some(before), None)?;
                            affected += 1;
                            deleted.push(id);
                            continue;
                        }
                        _ => continue,
                    };
                    audit.record(tx, name, "affiliate", id.to_string(), Some(before), Some(affiliate_snapshot(&a)))?;
                    affected += 1;
                }
                Ok((affected, deleted))
            })
            .await?;
        // Deleted affiliates' codes must stop working at Stripe. The deletion has committed,
        // so a Stripe outage here is logged and left to the operator rather than reported as
        // a failed deletion.
        if let Err(e) = self.revoke_codes_of(ctx, deleted).await {
            tracing::warn!(error.cause = %e, "codes of deleted affiliates could not all be deactivated at Stripe");
        }
        Ok(BulkOutcome { affected, total, action })
    }
}
