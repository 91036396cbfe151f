//! Identified signups (leads): a visitor who gave an email, recorded by the loader's
//! `Rekomi.convert()` (`POST /api/v1/r/lead/signup`) or by a brand's server
//! (`POST /api/tracking/lead`), for the affiliate of the referral. A lead is a `LeadReward`
//! conversion without a Stripe customer; it earns nothing unless its program pays per lead
//! (`Cpl`: the program's fixed value, for the first lead of an email in the program), and a
//! later Stripe sale with the same customer email inside the program's cookie window is
//! credited to its affiliate (`email_match`).

use std::cell::RefCell;
use std::sync::Arc;

use serde_json::json;

use crate::affiliates::{Affiliate, Email};
use crate::audit::AuditAction;
use crate::conversions::attribution::{Decision, Method, Signals};
use crate::conversions::commission;
use crate::conversions::record::{annotate, credited_conversion, denial, insert_ledger, Credit, SaleInput};
use crate::conversions::{Conversion, ConversionType, LedgerKind};
use crate::kernel::error::{DomainError, FieldError};
use crate::kernel::ids::{ConversionId, ProgramId};
use crate::kernel::money::Money;
use crate::kernel::text::{has_control, validate_name};
use crate::orgs::Organization;
use crate::outbound::outbox::conversion_data;
use crate::outbound::EventType;
use crate::ports::Tx;
use crate::programs::CommissionModel;
use crate::services::{BrandContext, Services};
use crate::stripe_inbox::apply::{ApplyCtx, Lookups};
use crate::tracking::usecases::S2S_PLAN;
use crate::traffic::ClickId;

/// Longest `externalEventId` of a server lead.
const MAX_EXTERNAL_ID: usize = 255;

/// A validated lead: who referred it (a link slug), the email and name given, and the sender's
/// id of the signup (server leads; their dedupe key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeadSignup {
    slug: String,
    email: Email,
    name: Option<String>,
    external_event_id: Option<String>,
}

impl LeadSignup {
    /// Validates a lead; `slug_field` names the slug as the endpoint does (`slug` or
    /// `affiliateSlug`).
    ///
    /// # Errors
    /// `validation_failed` naming the field.
    pub fn parse(
        slug_field: &str,
        slug: &str,
        email: &str,
        name: Option<&str>,
        external_event_id: Option<&str>,
    ) -> Result<Self, FieldError> {
        let slug = slug.trim();
        if slug.is_empty() || slug.len() > 64 || has_control(slug, false) {
            return Err(FieldError::invalid(slug_field, "must be a link slug of 1-64 characters"));
        }
        let email = Email::parse("email", email)?;
        let name = name.map(|n| validate_name("name", n, 200)).transpose()?;
        let external_event_id = external_event_id
            .map(|id| {
                if id.is_empty() || id.len() > MAX_EXTERNAL_ID || id.trim() != id || has_control(id, false) {
                    Err(FieldError::invalid("externalEventId", format!("must be 1-{MAX_EXTERNAL_ID} bytes without surrounding whitespace")))
                } else {
                    Ok(id.to_owned())
                }
            })
            .transpose()?;
        Ok(Self { slug: slug.to_ascii_lowercase(), email, name, external_event_id })
    }

    /// The referring link's slug (lower-case).
    pub fn slug(&self) -> &str {
        &self.slug
    }

    /// The source claimed once per organization: the sender's id, else the email for this
    /// affiliate (a visitor who signs up twice is one lead).
    fn source(&self, affiliate: &Affiliate) -> String {
        match &self.external_event_id {
            Some(id) => format!("lead:ext:{id}"),
            None => format!("lead:email:{}:{}", affiliate.id, self.email.as_str()),
        }
    }
}

/// What recording a lead did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeadOutcome {
    /// A new lead.
    Recorded(ConversionId),
    /// The same lead was recorded before; nothing was written.
    Deduplicated,
}

/// Records `lead` for `affiliate`: `None` when it was recorded before.
fn record_lead_signup(
    tx: &mut dyn Tx,
    ctx: &ApplyCtx<'_>,
    lead: &LeadSignup,
    affiliate: &Affiliate,
) -> Result<Option<Conversion>, DomainError> {
    let org = ctx.org.id;
    let source = lead.source(affiliate);
    if !tx.claim_source(org, &source, ctx.now)? {
        return Ok(None);
    }
    let program = ctx.program(tx, affiliate.program_id)?.ok_or(DomainError::NotFound("affiliate_not_found"))?;
    let currency = ctx.org.home_currency;
    let email = lead.email.as_str();
    let input =
        SaleInput::from_lead(source, lead.external_event_id.clone().unwrap_or_else(|| format!("lead:{email}")), email, currency, ctx.now);
    // An affiliate's own email is a self-referral, as for sales.
    let denied = denial(affiliate, &program, Some(email));
    // A Cpl program pays once per email: the first lead of it in the program.
    let pays = program.default_commission_model == CommissionModel::Cpl
        && denied.is_none()
        && tx.claim_source(org, &format!("cpl:{}:{email}", program.id), ctx.now)?;
    let rate = affiliate.custom_commission.unwrap_or(program.default_commission);
    let earned = if pays { commission::commission_for(Money::new(0, currency), rate).minor() } else { 0 };
    let decision = Decision { affiliate: affiliate.id, method: Method::MetadataOrCustomer, coupon: None, rule: "lead_signup", click: None };
    let signals = Signals::default();
    let mut trace = json!({ "source": "lead_signup", "slug": lead.slug, "name": lead.name, "externalEventId": lead.external_event_id });
    annotate(&mut trace, &decision, denied, pays.then(|| (rate.kind.as_str(), rate.value.to_decimal_string(), true)));
    let credit = Credit { affiliate, program: &program, decision: &decision, signals: &signals, denied };
    let conversion = credited_conversion(ctx, &input, &credit, ConversionType::LeadReward, currency, 0, earned, 0, trace);
    tx.insert_conversion(&conversion)?;
    if earned != 0 {
        insert_ledger(
            tx,
            ctx,
            &conversion,
            LedgerKind::Initial,
            0,
            earned,
            None,
            None,
            input.occurred_at(),
            ctx.payable_after(input.occurred_at()),
            None,
        )?;
    }
    ctx.record(AuditAction::LeadCreated, "conversion", conversion.id.to_string(), Some(conversion_data(&conversion)));
    ctx.emit(tx, EventType::LeadCreated, conversion_data(&conversion))?;
    Ok(Some(conversion))
}

impl Services {
    /// `POST /api/tracking/lead`: a lead reported by the brand's server for the affiliate of
    /// `lead`'s slug (S2S plan gate).
    ///
    /// # Errors
    /// The plan gate; `affiliate_not_found`; storage failures.
    pub async fn record_server_lead(&self, ctx: &BrandContext, lead: LeadSignup) -> Result<LeadOutcome, DomainError> {
        ctx.require_plan(S2S_PLAN)?;
        let actor = ctx.actor.audit_actor();
        let outcome = self.record_lead_in(ctx.org.clone(), lead, None, None, Some(actor)).await?;
        outcome.ok_or(DomainError::NotFound("affiliate_not_found"))
    }

    /// `POST /api/v1/r/lead/signup`: a lead from the loader, for the link `lead`'s slug names
    /// (in `program`'s organization and program when given, else the oldest link anywhere, as
    /// for Short links). Anyone can call the endpoint, so a lead counts only with the visit
    /// behind it: `click` must be a stored click of that affiliate, inside its program's cookie
    /// window. `None` when there is no such link or click; nothing is written then.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn record_browser_lead(
        &self,
        program: Option<ProgramId>,
        click: Option<ClickId>,
        lead: LeadSignup,
    ) -> Result<Option<LeadOutcome>, DomainError> {
        let Some(click) = click else { return Ok(None) };
        let slug = lead.slug.clone();
        let org = self
            .tx(move |tx| {
                let org = match program {
                    Some(p) => tx.page_scope(p)?.map(|scope| scope.org_id),
                    None => tx.link_targets_by_slug(&slug)?.first().map(|t| t.org_id),
                };
                Ok(match org {
                    Some(org) => tx.org(org)?,
                    None => None,
                })
            })
            .await?;
        match org {
            Some(org) => self.record_lead_in(org, lead, program, Some(click), None).await,
            None => Ok(None),
        }
    }

    /// Records `lead` in `org`; `None` when its slug names no affiliate of `org` (of `program`,
    /// when given), or `click` (when required) is not that affiliate's live click. The audit
    /// entries name `actor` (the system when `None`).
    async fn record_lead_in(
        &self,
        org: Organization,
        lead: LeadSignup,
        program: Option<ProgramId>,
        click: Option<ClickId>,
        actor: Option<crate::kernel::actor::AuditActor>,
    ) -> Result<Option<LeadOutcome>, DomainError> {
        let (now, entropy) = (self.now(), Arc::clone(&self.entropy));
        self.tx(move |tx| {
            let Some(affiliate) = tx.affiliate_by_link_slug(org.id, &lead.slug)?.filter(|a| program.is_none_or(|p| a.program_id == p))
            else {
                return Ok(None);
            };
            if let Some(id) = click {
                let window = tx.program(org.id, affiliate.program_id)?.map_or(0, |p| p.cookie_window_days);
                let live = tx.click(org.id, id)?.is_some_and(|c| c.affiliate_id == affiliate.id && c.is_within_cookie_window(window, now));
                if !live {
                    return Ok(None);
                }
            }
            let lookups = RefCell::new(Lookups::default());
            let apply = ApplyCtx::new(org, now, entropy, &lookups);
            let recorded = record_lead_signup(tx, &apply, &lead, &affiliate)?;
            let mut effects = apply.into_effects();
            if let Some(actor) = actor {
                for entry in &mut effects.audit {
                    entry.actor = actor.clone();
                }
            }
            effects.commit(tx, now)?;
            Ok(Some(match recorded {
                Some(conversion) => LeadOutcome::Recorded(conversion.id),
                None => LeadOutcome::Deduplicated,
            }))
        })
        .await
    }
}
