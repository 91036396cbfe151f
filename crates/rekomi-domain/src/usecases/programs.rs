//! Program use cases.

use crate::actor::Role;
use crate::audit::program_snapshot;
use crate::error::DomainError;
use crate::error::FieldError;
use crate::ids::ProgramId;
use crate::page::{Page, PageRequest};
use crate::plan::PlanTier;
use crate::ports::store::constraints;
use crate::ports::StoreError;
use crate::program::{NewProgram, Program, ProgramPatch, ProgramSlug};

use super::{BrandContext, Services};

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
        let slug = match new.slug.clone() {
            Some(s) => s,
            None => ProgramSlug::from_name(&new.name)
                .ok_or_else(|| FieldError::invalid("slug", "could not be derived from the name; send a slug"))?,
        };
        let program = Program::create(ProgramId::from_uuid(self.new_uuid(now)), ctx.org_id(), new, slug, now)?;
        let audit = self.audit(ctx.org_id(), ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            tx.insert_program(&program).map_err(slug_conflict)?;
            audit.record(tx, "program.created", "program", program.id.to_string(), None, Some(program_snapshot(&program)))?;
            Ok(program)
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
            let mut program = tx.program(org, id)?.ok_or(DomainError::NotFound("program_not_found"))?;
            let before = program_snapshot(&program);
            program.apply(patch, now)?;
            tx.update_program(&program).map_err(slug_conflict)?;
            audit.record(tx, "program.updated", "program", id.to_string(), Some(before), Some(program_snapshot(&program)))?;
            Ok(program)
        })
        .await
    }

    /// Soft-deletes (archives) a program (Owner role). Archiving an archived program changes
    /// nothing.
    ///
    /// # Errors
    /// `program_not_found`.
    pub async fn archive_program(&self, ctx: &BrandContext, id: ProgramId) -> Result<(), DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        ctx.require_role(Role::Owner)?;
        let org = ctx.org_id();
        let now = self.now();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            let mut program = tx.program(org, id)?.ok_or(DomainError::NotFound("program_not_found"))?;
            if program.is_archived() {
                return Ok(());
            }
            let before = program_snapshot(&program);
            program.archived_at = Some(now);
            program.is_active = false;
            program.updated_at = now;
            tx.update_program(&program)?;
            audit.record(tx, "program.deleted", "program", id.to_string(), Some(before), Some(program_snapshot(&program)))?;
            Ok(())
        })
        .await
    }
}
