//! The traffic capability's ports: its slice of the storage port ([`TrafficRepo`]) and the
//! [`ClickSink`] clicks are written through, outside any use-case transaction.

use time::{Date, OffsetDateTime};

use crate::kernel::ids::{AffiliateId, OrgId, ProgramId};
use crate::ports::store::StoreError;
use crate::traffic::model::{Click, ClickId, LinkTarget, PageScope, WebTrackingSettings};
use crate::traffic::params::CustomParams;

/// One affiliate's paid clicks of a day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpcClicks {
    /// The organization.
    pub org_id: OrgId,
    /// The program (a `Cpc` one).
    pub program_id: ProgramId,
    /// The affiliate.
    pub affiliate_id: AffiliateId,
    /// Unique, non-bot clicks.
    pub clicks: i64,
}

/// Links as clicks see them, clicks, and the daily visitor salts.
pub trait TrafficRepo {
    /// Every link with this slug in any organization, oldest first. Short links carry no
    /// organization, so a slug is looked up across all of them, and the oldest link wins when
    /// two organizations hold the same slug (slugs are unique per organization only, for now:
    /// see docs/traffic.md).
    ///
    /// # Errors
    /// Storage failures.
    fn link_targets_by_slug(&mut self, slug: &str) -> Result<Vec<LinkTarget>, StoreError>;

    /// Writes clicks; a click whose id is already stored is skipped (a retried batch). Returns
    /// how many were written.
    ///
    /// # Errors
    /// Storage failures.
    fn insert_clicks(&mut self, clicks: &[Click]) -> Result<u64, StoreError>;

    /// The click with this id in `org`.
    ///
    /// # Errors
    /// Storage failures.
    fn click(&mut self, org: OrgId, id: ClickId) -> Result<Option<Click>, StoreError>;

    /// The salt of `day`'s visitor hashes: `candidate` when the day has none yet, else the one
    /// stored first (every process agrees on it).
    ///
    /// # Errors
    /// Storage failures.
    fn visitor_salt(&mut self, day: Date, candidate: &str) -> Result<String, StoreError>;

    /// The stored tracking settings of `org`, if it ever changed them.
    ///
    /// # Errors
    /// Storage failures.
    fn web_tracking_settings(&mut self, org: OrgId) -> Result<Option<WebTrackingSettings>, StoreError>;

    /// Sets `org`'s custom attribution parameters (creating its row), leaving its other
    /// settings as they are.
    ///
    /// # Errors
    /// Storage failures.
    fn set_attribution_params(&mut self, org: OrgId, custom: Option<&CustomParams>, now: OffsetDateTime) -> Result<(), StoreError>;

    /// `org`'s pixel key: `candidate` stored now when it has none, else the key stored first
    /// (of concurrent callers, one wins and the others get its key).
    ///
    /// # Errors
    /// Storage failures.
    fn claim_pixel_key(&mut self, org: OrgId, candidate: &str, now: OffsetDateTime) -> Result<String, StoreError>;

    /// The organization and custom parameters of the program `id`, in any organization, unless
    /// it is archived. Browser tracking names only the program.
    ///
    /// # Errors
    /// Storage failures.
    fn page_scope(&mut self, program: ProgramId) -> Result<Option<PageScope>, StoreError>;

    /// Unique, non-bot clicks of `day` (UTC) per affiliate, for the programs that pay per click
    /// (`Cpc`), in every organization: what the daily click rewards pay.
    ///
    /// # Errors
    /// Storage failures.
    fn cpc_click_counts(&mut self, day: Date) -> Result<Vec<CpcClicks>, StoreError>;

    /// Deletes the salts of days before `day`; returns how many.
    ///
    /// # Errors
    /// Storage failures.
    fn forget_visitor_salts_before(&mut self, day: Date) -> Result<u64, StoreError>;
}

/// The buffer was full and the click was dropped (the adapter counts and logs it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the click buffer is full")]
pub struct SinkFull;

/// Where clicks go. `submit` never blocks and never waits for storage: the adapter writes
/// clicks in batches (see the PostgreSQL adapter's sink for its flush interval and the
/// crash-loss window) and sheds load when its bounded buffer is full.
pub trait ClickSink: Send + Sync + 'static {
    /// Queues a click for writing.
    ///
    /// # Errors
    /// [`SinkFull`] when the click was dropped.
    fn submit(&self, click: Click) -> Result<(), SinkFull>;
}
