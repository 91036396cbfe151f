//! Tracking use cases: issuing and rotating an organization's signing secret, verifying a
//! request's signature, and recording the conversion it reports.

use std::cell::RefCell;
use std::sync::Arc;

use serde_json::json;
use time::OffsetDateTime;

use crate::audit::AuditAction;
use crate::conversions::s2s::record_s2s_sale;
use crate::kernel::actor::{AuditActor, Role};
use crate::kernel::error::DomainError;
use crate::kernel::ids::{ConversionId, OrgId, TrackingSecretId};
use crate::kernel::plan::PlanTier;
use crate::ports::store::constraints;
use crate::ports::Tx;
use crate::services::{Audit, BrandContext, Services};
use crate::stripe_inbox::apply::{ApplyCtx, Lookups};
use crate::tracking::cache::SecretCache;
use crate::tracking::model::{IssuedTrackingSecret, S2sConversion, SigningSecret, TrackingSecret};
use crate::tracking::signature::{self, SignatureRefusal};

/// The plan gate of server-to-server tracking (trialing organizations pass; none without a live
/// subscription).
pub const S2S_PLAN: PlanTier = PlanTier::Starter;

/// Why a server-to-server request failed.
#[derive(Debug, thiserror::Error)]
pub enum S2sError {
    /// The signature was refused (401).
    #[error(transparent)]
    Signature(#[from] SignatureRefusal),
    /// Anything else, as every use case reports it.
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl From<crate::ports::StoreError> for S2sError {
    fn from(e: crate::ports::StoreError) -> Self {
        Self::Domain(e.into())
    }
}

/// What recording a reported conversion did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S2sOutcome {
    /// A new conversion.
    Recorded(ConversionId),
    /// The `externalEventId` was already recorded for the organization; nothing was written.
    Deduplicated,
}

impl Services {
    /// Issues the caller's organization a signing secret, or rotates it: the previous secret
    /// keeps verifying for 24 hours, then stops. Owner role (API keys pass); the S2S plan gate.
    ///
    /// # Errors
    /// `insufficient_role`, `plan_tier_required`, `secret_rotation_conflict` when another rotation
    /// committed at the same moment; storage.
    pub async fn rotate_tracking_secret(&self, ctx: &BrandContext) -> Result<IssuedTrackingSecret, DomainError> {
        ctx.require_role(Role::Owner)?;
        ctx.require_plan(S2S_PLAN)?;
        let now = self.now();
        self.issue_tracking_secret(ctx.org_id(), ctx.actor.audit_actor(), now, false).await
    }

    /// Issues or rotates an organization's signing secret (admin command, actor `system`).
    ///
    /// # Errors
    /// `organization_not_found`; as [`Services::rotate_tracking_secret`].
    pub async fn create_tracking_secret(&self, org: OrgId) -> Result<IssuedTrackingSecret, DomainError> {
        let now = self.now();
        self.issue_tracking_secret(org, AuditActor::System, now, true).await
    }

    async fn issue_tracking_secret(
        &self,
        org: OrgId,
        actor: AuditActor,
        now: OffsetDateTime,
        check_org: bool,
    ) -> Result<IssuedTrackingSecret, DomainError> {
        let record = TrackingSecret {
            id: TrackingSecretId::from_uuid(self.new_uuid(now)),
            org_id: org,
            secret: SigningSecret::generate(self.entropy.as_ref()),
            created_at: now,
            expires_at: None,
        };
        let audit = self.audit(org, actor, now);
        self.tx(move |tx| {
            if check_org {
                tx.org(org)?.ok_or(DomainError::NotFound("organization_not_found"))?;
            }
            let previous = tx.expire_current_tracking_secret(org, TrackingSecret::overlap_end(now))?;
            tx.insert_tracking_secret(&record).map_err(|e| {
                if e.is_conflict_on(constraints::TRACKING_SECRET_CURRENT) {
                    DomainError::conflict("secret_rotation_conflict", "the signing secret was rotated at the same moment; retry")
                } else {
                    e.into()
                }
            })?;
            let previous = previous.map(|p| TrackingSecret { expires_at: Some(TrackingSecret::overlap_end(now)), ..p });
            record_issue(tx, &audit, &record, previous.as_ref())?;
            Ok(IssuedTrackingSecret { record, previous })
        })
        .await
    }

    /// Checks a server-to-server request's `X-Rekomi-Signature` (`header`, `None` when absent)
    /// over its raw `body` against the caller's live signing secrets, after the S2S plan gate.
    /// The secrets come from `cache` when one of them verifies, else from the store (and the
    /// cache is refreshed).
    ///
    /// # Errors
    /// [`S2sError::Signature`] for a refused signature; `plan_tier_required`; storage.
    pub async fn verify_s2s_signature(
        &self,
        cache: &SecretCache,
        ctx: &BrandContext,
        header: Option<&str>,
        body: &[u8],
    ) -> Result<(), S2sError> {
        ctx.require_plan(S2S_PLAN)?;
        // Refused before the database is asked: a request without a well-formed header costs
        // nothing.
        let header = header.ok_or(SignatureRefusal::Missing)?;
        signature::S2sSignature::parse(header)?;
        let (org, now) = (ctx.org_id(), self.now());
        if let Some(cached) = cache.get(org, now) {
            if signature::verify(Some(header), body, &cached, now).is_ok() {
                return Ok(());
            }
        }
        let secrets = self.tx(move |tx| Ok(tx.live_tracking_secrets(org, now)?)).await?;
        let verified = signature::verify(Some(header), body, &secrets, now);
        cache.put(org, secrets, now);
        verified?;
        Ok(())
    }

    /// Records a conversion reported by the caller's server for the affiliate whose link slug
    /// it names, by that affiliate's program rules, once per `externalEventId`: a repeat (or a
    /// concurrent retry) is [`S2sOutcome::Deduplicated`] and writes nothing. Fires
    /// `conversion.created` like a Stripe sale.
    ///
    /// # Errors
    /// `plan_tier_required`; `affiliate_not_found` when no affiliate of the organization has
    /// the slug; storage.
    pub async fn record_s2s_conversion(&self, ctx: &BrandContext, sale: S2sConversion) -> Result<S2sOutcome, DomainError> {
        ctx.require_plan(S2S_PLAN)?;
        let (org, now, entropy) = (ctx.org.clone(), self.now(), Arc::clone(&self.entropy));
        let actor = ctx.actor.audit_actor();
        self.tx(move |tx| {
            let affiliate =
                tx.affiliate_by_link_slug(org.id, sale.affiliate_slug())?.ok_or(DomainError::NotFound("affiliate_not_found"))?;
            let lookups = RefCell::new(Lookups::default());
            let apply = ApplyCtx::new(org, now, entropy, &lookups);
            let recorded = record_s2s_sale(tx, &apply, &sale, &affiliate)?;
            let mut effects = apply.into_effects();
            for entry in &mut effects.audit {
                entry.actor = actor.clone();
            }
            effects.commit(tx, now)?;
            Ok(match recorded {
                Some(conversion) => S2sOutcome::Recorded(conversion.id),
                None => S2sOutcome::Deduplicated,
            })
        })
        .await
    }
}

fn record_issue(tx: &mut dyn Tx, audit: &Audit, record: &TrackingSecret, previous: Option<&TrackingSecret>) -> Result<(), DomainError> {
    let describe = |s: &TrackingSecret| {
        json!({
            "id": s.id.to_string(),
            "prefix": s.secret.display_prefix(),
            "expiresAt": s.expires_at.map(|t| t.unix_timestamp()),
        })
    };
    let (action, before) = match previous {
        Some(p) => (AuditAction::TrackingSecretRotated, Some(describe(p))),
        None => (AuditAction::TrackingSecretCreated, None),
    };
    audit.record(tx, action, "tracking_secret", record.id.to_string(), before, Some(describe(record)))?;
    Ok(())
}
