//! Conversion queries (list, detail with ledger, attribution trace, CSV export), the
//! sub-affiliate configuration, and the brand-side view of the Stripe event inbox.

use crate::audit::AuditAction;
use std::sync::Arc;

use serde_json::json;

use crate::conversions::StatusChange;
use crate::kernel::actor::AuditActor;
use crate::services::Audit;

use crate::affiliates::Affiliate;
use crate::conversions::ConversionFilter;
use crate::conversions::{Conversion, LedgerEvent, SubAffiliateConfig};
use crate::kernel::actor::Role;
use crate::kernel::error::{DomainError, FieldError};
use crate::kernel::ids::{AffiliateId, ConversionId, ProgramId};
use crate::kernel::page::{Page, PageRequest, MAX_TAKE};
use crate::kernel::plan::PlanTier;
use crate::programs::Hundredths;

use crate::services::{BrandContext, Services};

/// The most rows one CSV export returns.
pub const EXPORT_MAX_ROWS: usize = 50_000;

/// A recruit and what they brought their recruiter.
#[derive(Clone, Debug, PartialEq)]
pub struct RecruitSummary {
    /// The recruit.
    pub affiliate: Affiliate,
    /// The net commission of the recruit's own conversions.
    pub total_commission_minor: i64,
    /// The override the recruiter earned on them.
    pub override_earned_minor: i64,
    /// The currency of those sums (the organization's home currency when there are none).
    pub currency: crate::kernel::money::Currency,
}

impl Services {
    /// Conversions matching the filter, newest first.
    ///
    /// # Errors
    /// Gates.
    pub async fn list_conversions(
        &self,
        ctx: &BrandContext,
        filter: ConversionFilter,
        page: PageRequest,
    ) -> Result<Page<Conversion>, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        let org = ctx.org_id();
        let rows = self.tx(move |tx| Ok(tx.list_conversions(org, &filter, &page)?)).await?;
        Ok(Page::from_rows(rows, &page, |c| c.id.as_uuid()))
    }

    /// One conversion with its ledger (the event timeline).
    ///
    /// # Errors
    /// `conversion_not_found`.
    pub async fn get_conversion(&self, ctx: &BrandContext, id: ConversionId) -> Result<(Conversion, Vec<LedgerEvent>), DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        let org = ctx.org_id();
        self.tx(move |tx| {
            let c = tx.conversion(org, id)?.ok_or(DomainError::NotFound("conversion_not_found"))?;
            let ledger = tx.ledger_of(org, id)?;
            Ok((c, ledger))
        })
        .await
    }

    /// One page of a CSV export (the HTTP layer streams pages until [`EXPORT_MAX_ROWS`]). The
    /// first page is audit-logged as `conversions.exported`.
    ///
    /// # Errors
    /// Gates.
    pub async fn export_conversions_page(
        &self,
        ctx: &BrandContext,
        filter: ConversionFilter,
        after: Option<uuid::Uuid>,
    ) -> Result<Page<Conversion>, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        let org = ctx.org_id();
        let page = PageRequest::parse(Some(i64::from(MAX_TAKE)), after).map_err(|e| FieldError::invalid("take", e.to_string()))?;
        let first = after.is_none();
        let audit = self.audit(org, ctx.actor.audit_actor(), self.now());
        let rows = self
            .tx(move |tx| {
                if first {
                    let described = serde_json::json!({
                        "affiliateId": filter.affiliate_id.map(|a| a.to_string()),
                        "programId": filter.program_id.map(|p| p.to_string()),
                        "status": filter.status.map(|s| s.as_str()),
                        "since": filter.since.map(|t| t.unix_timestamp()),
                        "until": filter.until.map(|t| t.unix_timestamp()),
                    });
                    audit.record(tx, AuditAction::ConversionsExported, "conversion", "export".to_owned(), None, Some(described))?;
                }
                Ok(tx.list_conversions(org, &filter, &page)?)
            })
            .await?;
        Ok(Page::from_rows(rows, &page, |c| c.id.as_uuid()))
    }

    /// A program's sub-affiliate setting.
    ///
    /// # Errors
    /// `program_not_found`.
    pub async fn sub_affiliate_config(&self, ctx: &BrandContext, program: ProgramId) -> Result<SubAffiliateConfig, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        let org = ctx.org_id();
        self.tx(move |tx| {
            tx.program(org, program)?.ok_or(DomainError::NotFound("program_not_found"))?;
            Ok(tx.sub_affiliate_config(org, program)?)
        })
        .await
    }

    /// Sets a program's sub-affiliate setting (Owner; Pro plan unless trialing).
    ///
    /// # Errors
    /// `402 plan_tier_required`, `403 insufficient_role`, `400 unsupported_value` for a
    /// percent outside 0–100, `program_not_found`.
    pub async fn put_sub_affiliate_config(
        &self,
        ctx: &BrandContext,
        program: ProgramId,
        enabled: bool,
        percent: Hundredths,
    ) -> Result<SubAffiliateConfig, DomainError> {
        let trialing = ctx.org.status_at(ctx.now) == crate::kernel::plan::SubscriptionStatus::Trialing;
        if !trialing {
            crate::kernel::plan::check_plan(
                ctx.org.plan_tier,
                ctx.org.status_at(ctx.now),
                PlanTier::Pro,
                crate::kernel::plan::Channel::ApiKey,
            )?;
        }
        ctx.require_role(Role::Owner)?;
        if percent.get() > 10_000 {
            return Err(FieldError::coded("percent", "unsupported_value", "percent must be between 0 and 100").into());
        }
        let org = ctx.org_id();
        let config = SubAffiliateConfig { enabled, percent };
        let audit = self.audit(org, ctx.actor.audit_actor(), self.now());
        self.tx(move |tx| {
            tx.program(org, program)?.ok_or(DomainError::NotFound("program_not_found"))?;
            let before = tx.sub_affiliate_config(org, program)?;
            tx.put_sub_affiliate_config(org, program, &config)?;
            audit.record(
                tx,
                AuditAction::ProgramSubAffiliateConfigChanged,
                "program",
                program.to_string(),
                Some(serde_json::json!({"enabled": before.enabled, "percent": before.percent.to_decimal_string()})),
                Some(serde_json::json!({"enabled": enabled, "percent": percent.to_decimal_string()})),
            )?;
            Ok(config)
        })
        .await
    }

    /// An affiliate's recruits with their commission and the override earned on them.
    ///
    /// # Errors
    /// `affiliate_not_found`.
    pub async fn sub_affiliates(&self, ctx: &BrandContext, recruiter: AffiliateId) -> Result<Vec<RecruitSummary>, DomainError> {
        ctx.require_plan(PlanTier::Starter)?;
        let org = ctx.org_id();
        let home = ctx.org.home_currency;
        self.tx(move |tx| {
            tx.affiliate(org, recruiter)?.ok_or(DomainError::NotFound("affiliate_not_found"))?;
            let all = |tx: &mut dyn crate::ports::Tx, affiliate: AffiliateId| -> Result<Vec<Conversion>, DomainError> {
                let mut out = Vec::new();
                let mut after = None;
                loop {
                    let page =
                        PageRequest::parse(Some(i64::from(MAX_TAKE)), after).map_err(|e| FieldError::invalid("take", e.to_string()))?;
                    let filter = ConversionFilter { affiliate_id: Some(affiliate), ..ConversionFilter::default() };
                    let rows = tx.list_conversions(org, &filter, &page)?;
                    let page = Page::from_rows(rows, &page, |c| c.id.as_uuid());
                    out.extend(page.items);
                    match page.next_after {
                        Some(next) => after = Some(next),
                        None => return Ok(out),
                    }
                }
            };
            let overrides: Vec<Conversion> = all(tx, recruiter)?.into_iter().filter(|c| c.parent_conversion_id.is_some()).collect();
            let mut out = Vec::new();
            for recruit in tx.recruits_of(org, recruiter)? {
                let own: Vec<Conversion> = all(tx, recruit.id)?.into_iter().filter(|c| c.parent_conversion_id.is_none()).collect();
                let own_ids: Vec<ConversionId> = own.iter().map(|c| c.id).collect();
                let currency = own.first().map_or(home, |c| c.currency);
                let total = own.iter().map(|c| c.commission_minor).sum();
                let earned = overrides
                    .iter()
                    .filter(|o| o.parent_conversion_id.is_some_and(|p| own_ids.contains(&p)))
                    .map(|o| o.commission_minor)
                    .sum();
                out.push(RecruitSummary { affiliate: recruit, total_commission_minor: total, override_earned_minor: earned, currency });
            }
            Ok(out)
        })
        .await
    }

    /// Approves Pending conversions whose grace period has passed.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn approve_due_conversions(&self, limit: i64) -> Result<usize, DomainError> {
        let now = self.now();
        let entropy = Arc::clone(&self.entropy);
        self.tx(move |tx| {
            let mut approved = 0;
            for due in tx.conversions_due_for_approval(now, limit)? {
                let Some(mut c) = tx.conversion_for_update(due.org_id, due.id)? else { continue };
                if c.approve_if_due(now) == StatusChange::Unchanged {
                    continue;
                }
                tx.update_conversion(&c)?;
                let audit = Audit { org: c.org_id, actor: AuditActor::System, now, entropy: Arc::clone(&entropy) };
                audit.record(
                    tx,
                    AuditAction::ConversionApproved,
                    "conversion",
                    c.id.to_string(),
                    None,
                    Some(json!({"status": "Approved"})),
                )?;
                approved += 1;
            }
            Ok(approved)
        })
        .await
    }
}
