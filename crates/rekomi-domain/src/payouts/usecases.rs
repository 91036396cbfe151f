//! Payout use cases: preview, run, retry, mark paid, read; and settling a transfer's outcome.
//!
//! A run computes its candidates and writes every payout with its line items in one
//! transaction (holding the organization's payout lock, so a concurrent run waits and then
//! finds the entries taken). Only then are Stripe transfers asked for, one per payout, each
//! with an idempotency key from the payout id and its attempt; each outcome is settled in a
//! transaction of its own. An unknown outcome leaves the payout `Processing` for the
//! reconciler (`reconcile.rs`), which asks again with the same key.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

use crate::affiliates::AffiliateStatus;
use crate::audit::AuditAction;
use crate::kernel::actor::{AuditActor, Role};
use crate::kernel::error::{DomainError, FieldError};
use crate::kernel::ids::{AffiliateId, OrgId, PayoutId, PayoutLineItemId};
use crate::kernel::money::{Currency, Money};
use crate::kernel::page::{Page, PageRequest};
use crate::kernel::plan::PlanTier;
use crate::outbound::EventType;
use crate::payouts::ledger::{self, Candidate, IneligibilityCode, PayableWindow, Recipient};
use crate::payouts::model::{Payout, PayoutAccount, PayoutFilter, PayoutLineItem, PayoutMethod, PayoutStatus, PayoutView};
use crate::payouts::rail::{CreateTransfer, Transfer};
use crate::payouts::store::PayableQuery;
use crate::ports::gateway::GatewayError;
use crate::ports::store::constraints;
use crate::ports::Tx;
use crate::services::{Audit, BrandContext, Services};

/// The plan gate of payouts for API-key callers.
pub const PAYOUTS_PLAN: PlanTier = PlanTier::Starter;

/// What a preview or a run selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutSelection {
    /// How the payouts would be paid.
    pub method: PayoutMethod,
    /// Only these affiliates (`None`: every affiliate with a balance).
    pub affiliate_ids: Option<Vec<AffiliateId>>,
    /// Credits payable from this day (UTC).
    pub period_start: Option<Date>,
    /// Entries payable up to the end of this day (UTC); `None`: up to now.
    pub period_end: Option<Date>,
    /// The currency paid (`None`: the organization's home currency). One run pays one currency.
    pub currency: Option<Currency>,
}

impl PayoutSelection {
    /// Checks the period.
    ///
    /// # Errors
    /// `validation_failed` on `periodEnd` when it is before `periodStart`.
    pub fn validate(&self) -> Result<(), FieldError> {
        match (self.period_start, self.period_end) {
            (Some(s), Some(e)) if e < s => Err(FieldError::invalid("periodEnd", "must not be before periodStart")),
            _ => Ok(()),
        }
    }
}

/// One affiliate in a preview.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CandidateView {
    /// The affiliate.
    pub affiliate_id: AffiliateId,
    /// The sum of the selected entries.
    pub amount_minor: i64,
    /// How many entries (line items) it would pay.
    pub line_item_count: usize,
    /// Why it cannot be paid now.
    pub ineligible: Option<IneligibilityCode>,
}

/// A preview: what a run with the same selection would pay now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutPreview {
    /// The currency.
    pub currency: Currency,
    /// The sum of the eligible candidates: the run's `confirmTotalCents`.
    pub total_minor: i64,
    /// Candidates that would be paid.
    pub eligible_count: usize,
    /// Candidates that would not.
    pub ineligible_count: usize,
    /// Every affiliate with selected entries.
    pub candidates: Vec<CandidateView>,
}

/// A run: the selection, the total the caller saw, and notes for the payouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunPayouts {
    /// What to pay.
    pub selection: PayoutSelection,
    /// Must equal the server's total.
    pub confirm_total_minor: i64,
    /// Stored on each payout.
    pub notes: Option<String>,
}

/// Affiliates per page of a preview or run: bounds what one holds in memory (their entries
/// and line items) whatever the size of the ledger.
const AFFILIATES_PER_PAGE: usize = 500;

/// One page of candidates with what deciding their eligibility needed.
struct PlanPage {
    candidates: Vec<Candidate>,
    accounts: HashMap<AffiliateId, PayoutAccount>,
}

/// Walks the candidates of `selection` page by page (affiliates in id order), each with its
/// eligibility decided, handing every page to `each`.
fn plan(
    tx: &mut dyn Tx,
    org: &crate::orgs::Organization,
    selection: &PayoutSelection,
    now: OffsetDateTime,
    mut each: impl FnMut(&mut dyn Tx, PlanPage) -> Result<(), DomainError>,
) -> Result<Currency, DomainError> {
    let currency = selection.currency.unwrap_or(org.home_currency);
    let window = PayableWindow::of_period(selection.period_start, selection.period_end, now);
    let query = PayableQuery { currency, cutoff: window.cutoff, affiliates: selection.affiliate_ids.clone() };
    let mut after = None;
    loop {
        let entries = tx.open_entries(org.id, &query, after, AFFILIATES_PER_PAGE)?;
        let Some(last) = entries.last() else { break };
        after = Some(last.affiliate_id);
        let mut candidates = ledger::candidates(&entries, &window);
        drop(entries);
        let ids: Vec<AffiliateId> = candidates.iter().map(|c| c.affiliate_id).collect();
        let statuses: HashMap<AffiliateId, AffiliateStatus> = tx.affiliate_statuses(org.id, &ids)?.into_iter().collect();
        let accounts: HashMap<AffiliateId, PayoutAccount> =
            tx.payout_accounts_of(org.id, &ids)?.into_iter().map(|a| (a.affiliate_id, a)).collect();
        for c in &mut candidates {
            let recipient = Recipient {
                status: statuses.get(&c.affiliate_id).copied().unwrap_or(AffiliateStatus::Rejected),
                account: accounts.get(&c.affiliate_id),
            };
            c.ineligible = ledger::ineligibility(c.amount_minor, org.minimum_payout_minor, selection.method, recipient);
        }
        each(tx, PlanPage { candidates, accounts })?;
    }
    Ok(currency)
}

/// What every payout of one run shares.
#[derive(Clone, Copy)]
struct RunStamp {
    org_id: OrgId,
    currency: Currency,
    period_end: Date,
    now: OffsetDateTime,
}

/// The payout of an eligible candidate: Manual is paid at once, PayPal and Wise wait to be
/// marked paid, Stripe Connect waits for its transfer.
fn new_payout(run: &RunPayouts, stamp: &RunStamp, c: &Candidate, account: Option<&PayoutAccount>, id: uuid::Uuid) -> Payout {
    let RunStamp { org_id, currency, period_end, now } = *stamp;
    let (status, destination) = match run.selection.method {
        PayoutMethod::Manual => (PayoutStatus::Paid, None),
        PayoutMethod::StripeConnect => {
            (PayoutStatus::Processing, account.and_then(|a| a.stripe_account_id.as_ref()).map(|a| a.as_str().to_owned()))
        }
        PayoutMethod::PayPal => (PayoutStatus::Pending, account.and_then(|a| a.paypal_email.as_ref()).map(|e| e.as_str().to_owned())),
        PayoutMethod::Wise => (PayoutStatus::Pending, account.and_then(|a| a.wise_email.as_ref()).map(|e| e.as_str().to_owned())),
    };
    Payout {
        id: PayoutId::from_uuid(id),
        org_id,
        affiliate_id: c.affiliate_id,
        amount_minor: c.amount_minor,
        currency,
        method: run.selection.method,
        status,
        destination,
        stripe_transfer_id: None,
        external_transaction_id: None,
        notes: run.notes.clone(),
        failure_reason: None,
        attempt: 1,
        period_start: run.selection.period_start,
        period_end,
        created_at: now,
        updated_at: now,
        paid_at: (status == PayoutStatus::Paid).then_some(now),
        failed_at: None,
    }
}

/// The event and audit payload of a payout.
pub(crate) fn payout_data(p: &Payout) -> Value {
    let ts = |t: Option<OffsetDateTime>| t.and_then(|t| t.format(&Rfc3339).ok());
    json!({
        "id": p.id.to_string(), "affiliateId": p.affiliate_id.to_string(), "amountCents": p.amount_minor,
        "currency": p.currency.code(), "method": p.method.as_str(), "status": p.status.as_str(),
        "stripeTransferId": p.stripe_transfer_id.as_ref().map(|t| t.as_str()), "externalTransactionId": p.external_transaction_id,
        "failureReason": p.failure_reason, "attempt": p.attempt,
        "paidAt": ts(p.paid_at), "failedAt": ts(p.failed_at),
    })
}

/// Writes a payout step's audit entry and, when it has one, its outbound event.
fn announce(tx: &mut dyn Tx, audit: &Audit, payout: &Payout, action: AuditAction, event: Option<EventType>) -> Result<(), DomainError> {
    audit.record(tx, action, "payout", payout.id.to_string(), None, Some(payout_data(payout)))?;
    if let Some(event) = event {
        audit.emit(tx, event, payout_data(payout))?;
    }
    Ok(())
}

/// The audit entries and outbound events of a page of a run, written in three statements
/// instead of four per payout.
#[derive(Default)]
struct Announcements {
    audit: Vec<crate::audit::AuditEntry>,
    events: Vec<crate::outbound::OutboxEvent>,
    deliveries: Vec<crate::outbound::Delivery>,
}

impl Announcements {
    fn add(
        &mut self,
        audit: &Audit,
        endpoints: &[crate::outbound::WebhookEndpoint],
        payout: &Payout,
        action: AuditAction,
        event: EventType,
    ) {
        self.audit.push(audit.entry(action, "payout", payout.id.to_string(), None, Some(payout_data(payout))));
        let (event, deliveries) =
            crate::outbound::outbox::fan_out(payout.org_id, event, payout_data(payout), endpoints, audit.now, audit.entropy.as_ref());
        self.events.push(event);
        self.deliveries.extend(deliveries);
    }

    fn write(self, tx: &mut dyn Tx) -> Result<(), DomainError> {
        tx.append_audits(&self.audit)?;
        tx.insert_outbox_events(&self.events)?;
        tx.insert_deliveries(&self.deliveries)?;
        Ok(())
    }
}

/// A payout became Paid: its conversions that are now fully paid become `Paid`.
fn settle_paid(tx: &mut dyn Tx, audit: &Audit, payout: &Payout, action: AuditAction) -> Result<(), DomainError> {
    tx.update_payout(payout)?;
    tx.mark_conversions_paid(payout.org_id, &[payout.id], audit.now)?;
    announce(tx, audit, payout, action, Some(EventType::PayoutPaid))
}

/// A payout failed (or its transfer was reversed): its entries return to the balance.
fn settle_failed(tx: &mut dyn Tx, audit: &Audit, payout: &Payout, action: AuditAction) -> Result<(), DomainError> {
    tx.update_payout(payout)?;
    tx.release_line_items(payout.org_id, payout.id)?;
    tx.unmark_conversions_paid(payout.org_id, payout.id, audit.now)?;
    announce(tx, audit, payout, action, Some(EventType::PayoutFailed))
}

/// What a transfer attempt came to.
pub(crate) enum TransferOutcome {
    /// Stripe made (or had made) the transfer.
    Made(Transfer),
    /// Stripe refused it: nothing moved.
    Refused(String),
    /// Unknown (timeout, 5xx after retries): left Processing.
    Unknown(String),
}

impl From<Result<Transfer, GatewayError>> for TransferOutcome {
    fn from(result: Result<Transfer, GatewayError>) -> Self {
        match result {
            Ok(t) => Self::Made(t),
            Err(GatewayError::Rejected { code, message, .. }) => Self::Refused(code.map_or(message.clone(), |c| format!("{c}: {message}"))),
            Err(GatewayError::NotFound) => Self::Refused("the destination account does not exist at Stripe".to_owned()),
            Err(e @ (GatewayError::Unavailable(_) | GatewayError::Unknown(_))) => Self::Unknown(e.to_string()),
        }
    }
}

impl Services {
    /// The plan gate every payout operation starts with.
    fn payouts_gate(ctx: &BrandContext) -> Result<(), DomainError> {
        ctx.require_plan(PAYOUTS_PLAN)
    }

    /// What a run with `selection` would pay now, writing nothing. Owner role.
    ///
    /// # Errors
    /// `plan_tier_required`, `insufficient_role`, `validation_failed`, storage.
    pub async fn preview_payouts(&self, ctx: &BrandContext, selection: PayoutSelection) -> Result<PayoutPreview, DomainError> {
        Self::payouts_gate(ctx)?;
        ctx.require_role(Role::Owner)?;
        selection.validate()?;
        let now = self.now();
        let org_id = ctx.org_id();
        self.tx(move |tx| {
            let org = tx.org(org_id)?.ok_or(DomainError::NotFound("organization_not_found"))?;
            let mut candidates = Vec::new();
            let currency = plan(tx, &org, &selection, now, |_, page| {
                candidates.extend(page.candidates.iter().map(|c| CandidateView {
                    affiliate_id: c.affiliate_id,
                    amount_minor: c.amount_minor,
                    line_item_count: c.entries.len(),
                    ineligible: c.ineligible,
                }));
                Ok(())
            })?;
            let eligible: Vec<&CandidateView> = candidates.iter().filter(|c| c.ineligible.is_none()).collect();
            Ok(PayoutPreview {
                currency,
                total_minor: eligible.iter().map(|c| c.amount_minor).sum(),
                eligible_count: eligible.len(),
                ineligible_count: candidates.len() - eligible.len(),
                candidates,
            })
        })
        .await
    }

    /// Runs payouts: one payout per eligible candidate with its line items, written in one
    /// transaction; Manual payouts are `Paid` at once, PayPal and Wise `Pending` until marked
    /// paid, Stripe Connect `Processing` until its transfer settles (here, right after, or later
    /// by the reconciler). Owner role.
    ///
    /// # Errors
    /// `confirm_total_mismatch` (409) when `confirm_total_minor` is not the server's total;
    /// `plan_tier_required`, `insufficient_role`, `validation_failed`, storage.
    pub async fn run_payouts(&self, ctx: &BrandContext, run: RunPayouts) -> Result<Vec<Payout>, DomainError> {
        Self::payouts_gate(ctx)?;
        ctx.require_role(Role::Owner)?;
        run.selection.validate()?;
        let now = self.now();
        let org_id = ctx.org_id();
        let audit = self.audit(org_id, ctx.actor.audit_actor(), now);
        let entropy = std::sync::Arc::clone(&self.entropy);
        let created = self
            .tx(move |tx| {
                tx.lock_payout_runs(org_id)?;
                let org = tx.org(org_id)?.ok_or(DomainError::NotFound("organization_not_found"))?;
                let stamp = RunStamp {
                    org_id,
                    currency: run.selection.currency.unwrap_or(org.home_currency),
                    period_end: run.selection.period_end.unwrap_or(now.date()).min(now.date()),
                    now,
                };
                let endpoints = tx.endpoints(org_id)?;
                let mut created = Vec::new();
                let mut total: i64 = 0;
                let selection = run.selection.clone();
                plan(tx, &org, &selection, now, |tx, page| {
                    let mut payouts = Vec::new();
                    let mut items = Vec::new();
                    for c in page.candidates.iter().filter(|c| c.ineligible.is_none()) {
                        total = total.saturating_add(c.amount_minor);
                        let payout = new_payout(&run, &stamp, c, page.accounts.get(&c.affiliate_id), entropy.uuid_v7(now));
                        items.extend(c.entries.iter().map(|e| PayoutLineItem {
                            id: PayoutLineItemId::from_uuid(entropy.uuid_v7(now)),
                            org_id,
                            payout_id: payout.id,
                            ledger_event_id: e.id,
                            conversion_id: e.conversion_id,
                            amount_minor: e.commission_minor,
                        }));
                        payouts.push(payout);
                    }
                    tx.insert_payouts(&payouts)?;
                    tx.insert_line_items(&items).map_err(|e| {
                        if e.is_conflict_on(constraints::PAYOUT_ENTRY_LIVE) {
                            DomainError::conflict("payout_run_conflict", "another payout took some of these entries; preview again")
                        } else {
                            e.into()
                        }
                    })?;
                    let mut announced = Announcements::default();
                    for payout in &payouts {
                        announced.add(&audit, &endpoints, payout, AuditAction::PayoutCreated, EventType::PayoutCreated);
                        if payout.status == PayoutStatus::Paid {
                            announced.add(&audit, &endpoints, payout, AuditAction::PayoutPaid, EventType::PayoutPaid);
                        }
                    }
                    announced.write(tx)?;
                    let paid: Vec<PayoutId> = payouts.iter().filter(|p| p.status == PayoutStatus::Paid).map(|p| p.id).collect();
                    if !paid.is_empty() {
                        tx.mark_conversions_paid(org_id, &paid, now)?;
                    }
                    created.extend(payouts);
                    Ok(())
                })?;
                // Checked last: the whole run rolls back when it is not the total the caller saw.
                if total != run.confirm_total_minor {
                    return Err(DomainError::conflict(
                        "confirm_total_mismatch",
                        format!(
                            "confirmTotalCents is {} but the server total is {total}; preview again and retry",
                            run.confirm_total_minor
                        ),
                    ));
                }
                Ok(created)
            })
            .await?;
        let actor = ctx.actor.audit_actor();
        let mut settled = Vec::with_capacity(created.len());
        for payout in created {
            if payout.status == PayoutStatus::Processing {
                self.transfer(&payout, actor.clone()).await?;
                settled.push(self.tx(move |tx| Ok(tx.payout(payout.org_id, payout.id)?.unwrap_or(payout))).await?);
            } else {
                settled.push(payout);
            }
        }
        Ok(settled)
    }

    /// Asks Stripe for a Processing payout's transfer (with its attempt's key) and settles
    /// what it answers. An unknown outcome changes nothing.
    ///
    /// # Errors
    /// Storage.
    pub(crate) async fn transfer(&self, payout: &Payout, actor: AuditActor) -> Result<(), DomainError> {
        let Some(destination) = payout.destination.as_deref().and_then(|d| d.parse().ok()) else {
            return self
                .settle_transfer(
                    payout.org_id,
                    payout.id,
                    payout.attempt,
                    TransferOutcome::Refused("no destination account".to_owned()),
                    actor,
                )
                .await;
        };
        let request = CreateTransfer {
            idempotency_key: payout.transfer_key(),
            destination,
            amount: Money::new(payout.amount_minor, payout.currency),
            transfer_group: payout.transfer_group(),
            metadata: vec![
                ("rekomi_payout_id".to_owned(), payout.id.to_string()),
                ("rekomi_org_id".to_owned(), payout.org_id.to_string()),
                ("rekomi_affiliate_id".to_owned(), payout.affiliate_id.to_string()),
            ],
        };
        let outcome = TransferOutcome::from(self.payout_rail.create_transfer(&request).await);
        self.settle_transfer(payout.org_id, payout.id, payout.attempt, outcome, actor).await
    }

    /// Records a transfer's outcome on a payout still Processing at `attempt`.
    ///
    /// # Errors
    /// Storage.
    pub(crate) async fn settle_transfer(
        &self,
        org: OrgId,
        id: PayoutId,
        attempt: u32,
        outcome: TransferOutcome,
        actor: AuditActor,
    ) -> Result<(), DomainError> {
        let now = self.now();
        let audit = self.audit(org, actor, now);
        if let TransferOutcome::Unknown(why) = &outcome {
            tracing::warn!(payout = %id, attempt, %why, "transfer outcome unknown; the reconciler will ask again with the same key");
            return Ok(());
        }
        self.tx(move |tx| {
            let Some(mut payout) = tx.payout_for_update(org, id)? else { return Ok(()) };
            if payout.status != PayoutStatus::Processing || payout.attempt != attempt {
                return Ok(());
            }
            match outcome {
                TransferOutcome::Made(transfer) if transfer.reversed => {
                    payout.stripe_transfer_id = Some(transfer.id);
                    payout.failed("reversed", now);
                    settle_failed(tx, &audit, &payout, AuditAction::PayoutReversed)
                }
                TransferOutcome::Made(transfer) => {
                    payout.paid(Some(transfer.id), now);
                    settle_paid(tx, &audit, &payout, AuditAction::PayoutPaid)
                }
                TransferOutcome::Refused(reason) => {
                    payout.failed(reason, now);
                    settle_failed(tx, &audit, &payout, AuditAction::PayoutFailed)
                }
                TransferOutcome::Unknown(_) => Ok(()),
            }
        })
        .await
    }

    /// Retries a Failed payout as a new attempt: its entries are claimed again (409 when
    /// another payout paid one of them meanwhile) and, for Stripe Connect, a new transfer is
    /// asked for. Owner role.
    ///
    /// # Errors
    /// `payout_not_found`, `payout_not_failed` (409), `payout_entries_taken` (409), the gates,
    /// storage.
    pub async fn retry_payout(&self, ctx: &BrandContext, id: PayoutId) -> Result<PayoutView, DomainError> {
        Self::payouts_gate(ctx)?;
        ctx.require_role(Role::Owner)?;
        let now = self.now();
        let org = ctx.org_id();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        let payout = self
            .tx(move |tx| {
                let mut payout = tx.payout_for_update(org, id)?.ok_or(DomainError::NotFound("payout_not_found"))?;
                if payout.status != PayoutStatus::Failed {
                    return Err(DomainError::conflict(
                        "payout_not_failed",
                        format!("only a Failed payout can be retried; this one is {}", payout.status.as_str()),
                    ));
                }
                if payout.method == PayoutMethod::StripeConnect {
                    let account = tx.payout_account(org, payout.affiliate_id)?;
                    match account.as_ref().and_then(|a| a.stripe_account_id.as_ref().map(|s| (s, a.payouts_enabled))) {
                        Some((acct, true)) => payout.destination = Some(acct.as_str().to_owned()),
                        Some((_, false)) => {
                            return Err(DomainError::conflict(
                                "payouts_not_enabled",
                                "the affiliate's Stripe account cannot receive payouts yet",
                            ))
                        }
                        None => return Err(DomainError::conflict("no_stripe_connect", "the affiliate has no Stripe account")),
                    }
                }
                tx.reclaim_line_items(org, id).map_err(|e| {
                    if e.is_conflict_on(constraints::PAYOUT_ENTRY_LIVE) {
                        DomainError::conflict(
                            "payout_entries_taken",
                            "another payout has paid some of this payout's entries since it failed",
                        )
                    } else {
                        e.into()
                    }
                })?;
                payout.attempt = payout.attempt.saturating_add(1);
                payout.failure_reason = None;
                payout.failed_at = None;
                payout.updated_at = now;
                payout.status = match payout.method {
                    PayoutMethod::StripeConnect => PayoutStatus::Processing,
                    PayoutMethod::Manual => PayoutStatus::Paid,
                    PayoutMethod::PayPal | PayoutMethod::Wise => PayoutStatus::Pending,
                };
                announce(tx, &audit, &payout, AuditAction::PayoutRetried, None)?;
                if payout.status == PayoutStatus::Paid {
                    payout.paid(None, now);
                    settle_paid(tx, &audit, &payout, AuditAction::PayoutPaid)?;
                } else {
                    tx.update_payout(&payout)?;
                }
                Ok(payout)
            })
            .await?;
        if payout.status == PayoutStatus::Processing {
            self.transfer(&payout, ctx.actor.audit_actor()).await?;
        }
        self.payout_views(org, vec![id]).await?.pop().ok_or(DomainError::NotFound("payout_not_found"))
    }

    /// Records that a Pending or Processing PayPal, Wise or Manual payout was paid outside
    /// Rekomi. Owner role. Marking an already Paid payout with the same reference again
    /// changes nothing.
    ///
    /// # Errors
    /// `payout_not_found`, `payout_not_payable` (409: Failed, or a Stripe Connect payout, whose
    /// outcome only Stripe reports), the gates, storage.
    pub async fn mark_payout_paid(
        &self,
        ctx: &BrandContext,
        id: PayoutId,
        external_transaction_id: String,
        notes: Option<String>,
    ) -> Result<PayoutView, DomainError> {
        Self::payouts_gate(ctx)?;
        ctx.require_role(Role::Owner)?;
        let now = self.now();
        let org = ctx.org_id();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            let mut payout = tx.payout_for_update(org, id)?.ok_or(DomainError::NotFound("payout_not_found"))?;
            if payout.status == PayoutStatus::Paid && payout.external_transaction_id.as_deref() == Some(external_transaction_id.as_str()) {
                return Ok(());
            }
            if payout.method == PayoutMethod::StripeConnect || !matches!(payout.status, PayoutStatus::Pending | PayoutStatus::Processing) {
                return Err(DomainError::conflict(
                    "payout_not_payable",
                    format!("a {} {} payout cannot be marked paid", payout.status.as_str(), payout.method.as_str()),
                ));
            }
            payout.external_transaction_id = Some(external_transaction_id);
            if notes.is_some() {
                payout.notes = notes;
            }
            payout.paid(None, now);
            settle_paid(tx, &audit, &payout, AuditAction::PayoutMarkedPaid)
        })
        .await?;
        self.payout_views(org, vec![id]).await?.pop().ok_or(DomainError::NotFound("payout_not_found"))
    }

    /// A payout of the caller's organization with its line items.
    ///
    /// # Errors
    /// `payout_not_found`, `plan_tier_required`, storage.
    pub async fn get_payout(&self, ctx: &BrandContext, id: PayoutId) -> Result<PayoutView, DomainError> {
        Self::payouts_gate(ctx)?;
        self.payout_views(ctx.org_id(), vec![id]).await?.pop().ok_or(DomainError::NotFound("payout_not_found"))
    }

    /// A page of the organization's payouts, newest first, with their line items.
    ///
    /// # Errors
    /// `plan_tier_required`, storage.
    pub async fn list_payouts(&self, ctx: &BrandContext, filter: PayoutFilter, page: PageRequest) -> Result<Page<PayoutView>, DomainError> {
        Self::payouts_gate(ctx)?;
        let org = ctx.org_id();
        self.tx(move |tx| {
            let rows = tx.list_payouts(org, &filter, &page)?;
            let page = Page::from_rows(rows, &page, |p| p.id.as_uuid());
            let views = with_line_items(tx, org, page.items)?;
            Ok(Page { items: views, next_after: page.next_after })
        })
        .await
    }

    /// The Pending and Processing PayPal payouts of the organization with their PayPal
    /// emails, oldest first: the rows of the PayPal Payouts bulk-upload file. Audit-logged.
    ///
    /// # Errors
    /// `plan_tier_required`, storage.
    pub async fn paypal_payouts_to_export(&self, ctx: &BrandContext) -> Result<Vec<Payout>, DomainError> {
        Self::payouts_gate(ctx)?;
        let now = self.now();
        let org = ctx.org_id();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            let mut found = Vec::new();
            for status in [PayoutStatus::Pending, PayoutStatus::Processing] {
                let filter = PayoutFilter { status: Some(status), method: Some(PayoutMethod::PayPal), affiliate_id: None };
                let mut after = None;
                loop {
                    let page = PageRequest::parse(Some(200), after).map_err(|e| FieldError::invalid("take", e.to_string()))?;
                    let rows = tx.list_payouts(org, &filter, &page)?;
                    let page = Page::from_rows(rows, &page, |p| p.id.as_uuid());
                    after = page.next_after;
                    found.extend(page.items);
                    if after.is_none() {
                        break;
                    }
                }
            }
            found.sort_by_key(|p| p.id);
            audit.record(
                tx,
                AuditAction::PayoutsExported,
                "payout",
                "export.csv".to_owned(),
                None,
                Some(json!({"method": "PayPal", "rows": found.len()})),
            )?;
            Ok(found)
        })
        .await
    }

    /// These payouts of the caller's organization with their line items (unknown ids are left
    /// out), in the order asked.
    ///
    /// # Errors
    /// `plan_tier_required`, storage.
    pub async fn payouts_with_line_items(&self, ctx: &BrandContext, ids: Vec<PayoutId>) -> Result<Vec<PayoutView>, DomainError> {
        Self::payouts_gate(ctx)?;
        self.payout_views(ctx.org_id(), ids).await
    }

    pub(crate) async fn payout_views(&self, org: OrgId, ids: Vec<PayoutId>) -> Result<Vec<PayoutView>, DomainError> {
        self.tx(move |tx| {
            let found: BTreeMap<PayoutId, Payout> = tx.payouts_by_ids(org, &ids)?.into_iter().map(|p| (p.id, p)).collect();
            let payouts = ids.iter().filter_map(|id| found.get(id).cloned()).collect();
            with_line_items(tx, org, payouts)
        })
        .await
    }
}

fn with_line_items(tx: &mut dyn Tx, org: OrgId, payouts: Vec<Payout>) -> Result<Vec<PayoutView>, DomainError> {
    let ids: Vec<PayoutId> = payouts.iter().map(|p| p.id).collect();
    let mut items: BTreeMap<PayoutId, Vec<PayoutLineItem>> = BTreeMap::new();
    for item in tx.line_items_of(org, &ids)? {
        items.entry(item.payout_id).or_default().push(item);
    }
    Ok(payouts.into_iter().map(|payout| PayoutView { line_items: items.remove(&payout.id).unwrap_or_default(), payout }).collect())
}
