//! The web-tracking settings of an organization: its custom attribution parameters, the
//! browser pixel's public key, and what the install snippet embeds.

use serde_json::json;

use crate::audit::AuditAction;
use crate::kernel::actor::Role;
use crate::kernel::error::DomainError;
use crate::kernel::ids::{OrgId, ProgramId};
use crate::kernel::page::PageRequest;
use crate::kernel::plan::PlanTier;
use crate::ports::Tx;
use crate::programs::Program;
use crate::services::{BrandContext, Services};
use crate::traffic::params::CustomParams;

/// Prefix of pixel public keys.
pub const PIXEL_KEY_PREFIX: &str = "rkp_";

/// What the install snippet of a program embeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnippetParts {
    /// The program named by `data-program-id`.
    pub program: Program,
    /// `data-rkmi-params`, when the organization has custom parameters.
    pub custom_params: Option<CustomParams>,
    /// `data-rekomi-org`, when the pixel path was asked for.
    pub pixel_public_key: Option<String>,
}

impl Services {
    /// The organization's custom attribution parameters (`None`: defaults only).
    ///
    /// # Errors
    /// The plan gate (Starter+ for API keys); storage failures.
    pub async fn attribution_params(&self, ctx: &BrandContext) -> Result<Option<CustomParams>, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        let org = ctx.org_id();
        self.tx(move |tx| Ok(tx.web_tracking_settings(org)?.and_then(|s| s.custom_params))).await
    }

    /// Replaces the custom attribution parameters (Owner); `None` clears them. A change writes
    /// one `org.attribution_params_changed` audit row with the list before and after; setting
    /// the same list again writes nothing.
    ///
    /// # Errors
    /// The plan gate; `insufficient_role`; storage failures.
    pub async fn set_attribution_params(
        &self,
        ctx: &BrandContext,
        custom: Option<CustomParams>,
    ) -> Result<Option<CustomParams>, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        ctx.require_role(Role::Owner)?;
        let org = ctx.org_id();
        let now = self.now();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            let current = tx.web_tracking_settings(org)?.and_then(|s| s.custom_params);
            if current == custom {
                return Ok(custom);
            }
            let before = json!({ "custom": current.as_ref().map(CustomParams::to_csv) });
            tx.set_attribution_params(org, custom.as_ref(), now)?;
            let after = json!({ "custom": custom.as_ref().map(CustomParams::to_csv) });
            audit.record(tx, AuditAction::OrgAttributionParamsChanged, "organization", org.to_string(), Some(before), Some(after))?;
            Ok(custom)
        })
        .await
    }

    /// The browser pixel's public key, once provisioned.
    ///
    /// # Errors
    /// The plan gate; storage failures.
    pub async fn pixel_public_key(&self, ctx: &BrandContext) -> Result<Option<String>, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        let org = ctx.org_id();
        self.tx(move |tx| Ok(tx.web_tracking_settings(org)?.and_then(|s| s.pixel_public_key))).await
    }

    /// Provisions the browser pixel's public key (Owner), once: asking again returns the same
    /// key. Returns the key and whether it was created now. The key is public (it is pasted
    /// into the brand's pages), so it is shown every time.
    ///
    /// # Errors
    /// The plan gate; `insufficient_role`; storage failures.
    pub async fn provision_pixel_key(&self, ctx: &BrandContext) -> Result<(String, bool), DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        ctx.require_role(Role::Owner)?;
        let org = ctx.org_id();
        let now = self.now();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        let mut bytes = [0u8; 16];
        self.entropy.fill(&mut bytes);
        let candidate = format!("{PIXEL_KEY_PREFIX}{}", hex::encode(bytes));
        self.tx(move |tx| {
            let key = tx.claim_pixel_key(org, &candidate, now)?;
            if key != candidate {
                return Ok((key, false));
            }
            audit.record(
                tx,
                AuditAction::OrgPixelKeyProvisioned,
                "organization",
                org.to_string(),
                None,
                Some(json!({ "pixelPublicKey": candidate })),
            )?;
            Ok((candidate, true))
        })
        .await
    }

    /// What the install snippet embeds: `program` (default: the newest active program), the
    /// custom parameters, and with `with_pixel` the pixel key.
    ///
    /// # Errors
    /// The plan gate; `no_program_found` (no such active program in the organization);
    /// `pixel_not_provisioned` (409) when `with_pixel` and no key exists; storage failures.
    pub async fn install_snippet(
        &self,
        ctx: &BrandContext,
        program: Option<ProgramId>,
        with_pixel: bool,
    ) -> Result<SnippetParts, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        let org = ctx.org_id();
        self.tx(move |tx| {
            let program = match program {
                Some(id) => tx.program(org, id)?.filter(|p| p.is_active && !p.is_archived()),
                None => newest_active_program(tx, org)?,
            }
            .ok_or(DomainError::NotFound("no_program_found"))?;
            let settings = tx.web_tracking_settings(org)?;
            let (custom_params, key) = settings.map_or((None, None), |s| (s.custom_params, s.pixel_public_key));
            let pixel_public_key = match (with_pixel, key) {
                (false, _) => None,
                (true, Some(key)) => Some(key),
                (true, None) => {
                    return Err(DomainError::conflict(
                        "pixel_not_provisioned",
                        "provision a pixel key first: POST /api/v1/settings/pixel-key",
                    ))
                }
            };
            Ok(SnippetParts { program, custom_params, pixel_public_key })
        })
        .await
    }
}

/// The newest program of `org` that is active (programs list newest first, archived left out).
fn newest_active_program(tx: &mut dyn Tx, org: OrgId) -> Result<Option<Program>, DomainError> {
    let mut page = PageRequest::first();
    loop {
        let take = usize::from(page.take());
        let mut rows = tx.list_programs(org, &page)?;
        let more = rows.len() > take;
        rows.truncate(take);
        let last = rows.last().map(|p| p.id.as_uuid());
        if let Some(found) = rows.into_iter().find(|p| p.is_active) {
            return Ok(Some(found));
        }
        let next = last.filter(|_| more).and_then(|after| PageRequest::parse(Some(i64::from(page.take())), Some(after)).ok());
        match next {
            Some(next) => page = next,
            None => return Ok(None),
        }
    }
}
