//! Program use cases.

use crate::audit::program_snapshot;
use crate::audit::AuditAction;
use crate::kernel::actor::Role;
use crate::kernel::error::DomainError;
use crate::kernel::error::FieldError;
use crate::kernel::ids::ProgramId;
use crate::kernel::page::{Page, PageRequest};
use crate::kernel::plan::PlanTier;
use crate::ports::store::constraints;
use crate::ports::StoreError;
use crate::programs::{NewProgram, Program, ProgramPatch, ProgramSlug};

use crate::services::{BrandContext, Services};

fn slug_conflict(e: StoreError) -> DomainError {
    if e.is_conflict_on(constraints::PROGRAM_SLUG) {
        DomainError::conflict("slug_already_taken", "another program of this organization uses this slug")
    } else {
        e.into()
    }
}

impl Services {
    /// Creates a program (Starter+ for API keys; Manager role).
    ///
    /// # Errors
    /// 402/403 gates; `slug` validation; `slug_already_taken`.
    pub async fn create_program(&self, ctx: &BrandContext, new: NewProgram) -> Result<Program, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        ctx.require_role(Role::Manager)?;
        let now = self.now();
        let chosen = new.slug.clone();
        let derived = match &chosen {
            Some(_) => None,
            None => Some(
                ProgramSlug::from_name(&new.name)
                    .ok_or_else(|| FieldError::invalid("slug", "could not be derived from the name; send a slug"))?,
            ),
        };
        // A derived slug that is taken gets a short suffix instead of failing on a field the
        // caller never sent; a slug the caller chose is never altered.
        let candidates: Vec<ProgramSlug> = match (chosen, derived) {
            (Some(s), _) => vec![s],
            (None, Some(base)) => {
                std::iter::once(base.clone()).chain((0..4).filter_map(|_| base.with_suffix(self.entropy.as_ref()))).collect()
            }
            (None, None) => Vec::new(),
        };
        let id = ProgramId::from_uuid(self.new_uuid(now));
        let org = ctx.org_id();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            let mut last = None;
            for slug in candidates {
                let program = Program::create(id, org, new.clone(), slug, now)?;
                match tx.insert_program(&program) {
                    Ok(()) => {
                        audit.record(
                            tx,
                            AuditAction::ProgramCreated,
                            "program",
                            program.id.to_string(),
                            None,
                            Some(program_snapshot(&program)),
                        )?;
                        return Ok(program);
                    }
                    Err(e) => last = Some(slug_conflict(e)),
                }
            }
            Err(last.unwrap_or_else(|| DomainError::conflict("slug_already_taken", "another program of this organization uses this slug")))
        })
        .await
    }

    /// A program of the caller's organization (archived ones included).
    ///
    /// # Errors
    /// `program_not_found`.
    pub async fn get_program(&self, ctx: &BrandContext, id: ProgramId) -> Result<Program, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        let org = ctx.org_id();
        self.tx(move |tx| tx.program(org, id)?.ok_or(DomainError::NotFound("program_not_found"))).await
    }

    /// Unarchived programs, newest first.
    ///
    /// # Errors
    /// Gates and storage.
    pub async fn list_programs(&self, ctx: &BrandContext, page: PageRequest) -> Result<Page<Program>, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        let org = ctx.org_id();
        let rows = self.tx(move |tx| Ok(tx.list_programs(org, &page)?)).await?;
        Ok(Page::from_rows(rows, &page, |p| p.id.as_uuid()))
    }

    /// Updates the fields present in `patch` (Manager role).
    ///
    /// # Errors
    /// `program_not_found`, validation, `slug_already_taken`.
    pub async fn update_program(&self, ctx: &BrandContext, id: ProgramId, patch: ProgramPatch) -> Result<Program, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        ctx.require_role(Role::Manager)?;
        let org = ctx.org_id();
        let now = self.now();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            let mut program = tx.program_for_update(org, id)?.ok_or(DomainError::NotFound("program_not_found"))?;
            if program.is_archived() {
                return Err(DomainError::conflict("program_archived", "the program is archived"));
            }
            let before = program_snapshot(&program);
            program.apply(patch, now)?;
            tx.update_program(&program).map_err(slug_conflict)?;
            audit.record(tx, AuditAction::ProgramUpdated, "program", id.to_string(), Some(before), Some(program_snapshot(&program)))?;
            Ok(program)
        })
        .await
    }

    /// Soft-deletes (archives) a program (Owner role), then archives its campaign coupons so
    /// none of their codes stays redeemable at Stripe. Archiving again finishes what a Stripe
    /// outage interrupted.
    ///
    /// # Errors
    /// `program_not_found`, gateway failures while closing the coupons.
    pub async fn archive_program(&self, ctx: &BrandContext, id: ProgramId) -> Result<(), DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        ctx.require_role(Role::Owner)?;
        let org = ctx.org_id();
        let now = self.now();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        let coupons = self
            .tx(move |tx| {
                let mut program = tx.program_for_update(org, id)?.ok_or(DomainError::NotFound("program_not_found"))?;
                if !program.is_archived() {
                    let before = program_snapshot(&program);
                    program.archived_at = Some(now);
                    program.is_active = false;
                    program.updated_at = now;
                    tx.update_program(&program)?;
                    audit.record(
                        tx,
                        AuditAction::ProgramDeleted,
                        "program",
                        id.to_string(),
                        Some(before),
                        Some(program_snapshot(&program)),
                    )?;
                }
                crate::coupons::all_campaign_coupons(tx, org, id)
            })
            .await?;
        for coupon in coupons {
            self.close_campaign_coupon(ctx.org.stripe_account_id.clone(), ctx.actor.audit_actor(), org, id, coupon).await?;
        }
        Ok(())
    }
}
