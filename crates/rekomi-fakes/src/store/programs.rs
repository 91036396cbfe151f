//! The fake store's slice for programs: the domain's `ProgramRepo` over the `programs` and
//! `sub_affiliate_configs` tables of `State`, with the slug key and the foreign keys.

use rekomi_domain::conversions::SubAffiliateConfig;
use rekomi_domain::kernel::ids::{OrgId, ProgramId};
use rekomi_domain::kernel::page::PageRequest;
use rekomi_domain::ports::store::{constraints, StoreError};
use rekomi_domain::programs::{Program, ProgramRepo};

use super::{conflict, page_of, references, State};

/// Foreign-key names of these tables in the migrations.
mod foreign_keys {
    pub const PROGRAM_ORG: &str = "programs_org_id_fkey";
    pub const SUB_AFFILIATE_CONFIG_ORG: &str = "program_sub_affiliate_configs_org_id_fkey";
    pub const SUB_AFFILIATE_CONFIG_PROGRAM: &str = "program_sub_affiliate_configs_program_fkey";
}

impl State {
    pub(super) fn has_program(&self, org: OrgId, id: ProgramId) -> bool {
        self.programs.get(&id).is_some_and(|p| p.org_id == org)
    }

    fn check_program_refs(&self, p: &Program) -> Result<(), StoreError> {
        references(&[(self.has_org(p.org_id), foreign_keys::PROGRAM_ORG)])
    }

    fn program_slug_taken(&self, program: &Program) -> bool {
        self.programs.values().any(|p| p.id != program.id && p.org_id == program.org_id && p.slug.as_str() == program.slug.as_str())
    }
}

impl ProgramRepo for State {
    fn insert_program(&mut self, program: &Program) -> Result<(), StoreError> {
        if self.programs.contains_key(&program.id) {
            return Err(conflict("programs_pkey"));
        }
        if self.program_slug_taken(program) {
            return Err(conflict(constraints::PROGRAM_SLUG));
        }
        self.check_program_refs(program)?;
        self.programs.insert(program.id, program.clone());
        Ok(())
    }

    fn update_program(&mut self, program: &Program) -> Result<(), StoreError> {
        if self.programs.get(&program.id).is_none_or(|p| p.org_id != program.org_id) {
            return Ok(());
        }
        if self.program_slug_taken(program) {
            return Err(conflict(constraints::PROGRAM_SLUG));
        }
        self.programs.insert(program.id, program.clone());
        Ok(())
    }

    fn program(&mut self, org: OrgId, id: ProgramId) -> Result<Option<Program>, StoreError> {
        Ok(self.programs.get(&id).filter(|p| p.org_id == org).cloned())
    }

    fn sub_affiliate_config(&mut self, org: OrgId, program: ProgramId) -> Result<SubAffiliateConfig, StoreError> {
        Ok(self.sub_affiliate_configs.get(&program).filter(|(o, _)| *o == org).map(|(_, c)| *c).unwrap_or_default())
    }

    fn put_sub_affiliate_config(&mut self, org: OrgId, program: ProgramId, config: &SubAffiliateConfig) -> Result<(), StoreError> {
        references(&[
            (self.has_org(org), foreign_keys::SUB_AFFILIATE_CONFIG_ORG),
            (self.has_program(org, program), foreign_keys::SUB_AFFILIATE_CONFIG_PROGRAM),
        ])?;
        self.sub_affiliate_configs.insert(program, (org, *config));
        Ok(())
    }

    fn list_programs(&mut self, org: OrgId, page: &PageRequest) -> Result<Vec<Program>, StoreError> {
        Ok(page_of(&self.programs, page, ProgramId::as_uuid, |p| (p.org_id == org && p.archived_at.is_none()).then(|| p.clone())))
    }
}
