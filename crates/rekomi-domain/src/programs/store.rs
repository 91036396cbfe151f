//! The storage port's slice for programs: the repository its use cases need. Every store
//! implements it; [`crate::ports::Tx`] composes all the slices into one transaction.

use crate::conversions::SubAffiliateConfig;
use crate::kernel::ids::{OrgId, ProgramId};
use crate::kernel::page::PageRequest;
use crate::ports::store::StoreError;
use crate::programs::Program;

/// Programs.
pub trait ProgramRepo {
    /// Inserts a program.
    ///
    /// # Errors
    /// `Conflict` on [`constraints::PROGRAM_SLUG`](crate::ports::store::constraints::PROGRAM_SLUG).
    fn insert_program(&mut self, program: &Program) -> Result<(), StoreError>;
    /// Replaces a program's fields.
    ///
    /// # Errors
    /// `Conflict` on [`constraints::PROGRAM_SLUG`](crate::ports::store::constraints::PROGRAM_SLUG).
    fn update_program(&mut self, program: &Program) -> Result<(), StoreError>;
    /// A program of the organization (archived ones included).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn program(&mut self, org: OrgId, id: ProgramId) -> Result<Option<Program>, StoreError>;
    /// [`ProgramRepo::program`] holding the row locked until the transaction ends, for
    /// read-modify-write use cases, so concurrent changes serialize instead of overwriting each
    /// other. Stores whose transactions already run one at a time keep this default.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn program_for_update(&mut self, org: OrgId, id: ProgramId) -> Result<Option<Program>, StoreError> {
        self.program(org, id)
    }
    /// A program's sub-affiliate setting (the default, disabled, when never set).
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn sub_affiliate_config(&mut self, org: OrgId, program: ProgramId) -> Result<SubAffiliateConfig, StoreError>;
    /// Stores a program's sub-affiliate setting.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn put_sub_affiliate_config(&mut self, org: OrgId, program: ProgramId, config: &SubAffiliateConfig) -> Result<(), StoreError>;
    /// Unarchived programs, newest first, at most `page.fetch_limit()` rows after the cursor.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn list_programs(&mut self, org: OrgId, page: &PageRequest) -> Result<Vec<Program>, StoreError>;
}
