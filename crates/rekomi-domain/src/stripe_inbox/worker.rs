//! The Stripe inbox as a job queue: claimed events are processed a batch at a time.
//!
//! A batch goes through four steps, and only the last two touch the database:
//! 1. decode each event; for platform-account events, make the Stripe lookups that finding
//!    the organization needs (codes named only by discount ids);
//! 2. one transaction resolves the organization of every event;
//! 3. the Stripe lookups of connected-account events, with their organization's account;
//! 4. one transaction applies every event, each in a savepoint of its own (an event that fails
//!    is undone alone and retried), records every outcome, wakes the refunds that waited for
//!    the batch's sales, and last updates the redemption counters the batch changed, in a
//!    fixed order, so the hot counter row of a popular code is locked only for the commit.
//!
//! Should the batch transaction fail as a whole (a deadlock with another worker, a lost
//! connection), each event is applied again in a transaction of its own; after
//! [`BATCH_ERROR_LIMIT`] failures in a row the rest of the batch is let go at once for any
//! worker to take. No Stripe call ever happens inside a transaction.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::jobs::{BatchReport, JobQueue, Lease, LeaseTerms, QueueDepth, RetryPolicy};
use crate::kernel::error::DomainError;
use crate::kernel::ids::OrgId;
use crate::kernel::stripe_ids::{StripeAccountId, StripeEventId, StripePaymentRef};
use crate::orgs::Organization;
use crate::ports::Tx;
use crate::stripe_inbox::facts::StripeFact;
use crate::stripe_inbox::{InboxEvent, InboxStatus};

use crate::services::Services;
use crate::stripe_inbox::apply::{apply, Applied, ApplyCtx, Effects, Lookups};
use crate::stripe_inbox::enrich::{customer_of, promotion_codes_of};

/// How long a claim holds an event. Short, so the events of a worker that dies (or loses its
/// database) are taken by another within seconds; the runner renews the lease of the events
/// still in hand every [`INBOX_LEASE_RENEWAL`].
pub const INBOX_LEASE: Duration = Duration::seconds(15);
/// How often a worker renews the lease of the events it still holds.
pub const INBOX_LEASE_RENEWAL: Duration = Duration::seconds(5);
/// Events one claim takes at most.
pub const INBOX_BATCH: usize = 50;
/// Retries of an event whose processing failed (a Stripe outage, a conflict with a concurrent
/// worker): 15 s doubling to about 4 h, with up to 25 % jitter; the twelfth failed attempt is
/// the last.
pub const INBOX_RETRY: RetryPolicy = RetryPolicy::new(&[15, 30, 60, 120, 240, 480, 960, 1_920, 3_840, 7_680, 15_360], 25);
/// Attempts before an event is marked failed.
pub const INBOX_MAX_ATTEMPTS: u32 = 12;
/// How often a `Waiting` refund is looked at again without being woken by its sale (a sale
/// recorded while the wake-up could not run, or an organization linked since).
const WAIT_RECHECK: Duration = Duration::hours(6);
/// Failed transactions in a row after which a worker stops its batch (the store is most
/// likely down) and lets the rest go.
const BATCH_ERROR_LIMIT: usize = 3;

/// How one event ends, when it does not end applied.
#[derive(Clone, Debug)]
pub(super) enum Finish {
    Skipped(String),
    Retry(String),
    Failed(String),
    /// A refund waiting for the sale of a payment.
    Wait {
        payment: StripePaymentRef,
        why: String,
    },
}

/// An event on its way through a batch.
#[derive(Clone)]
enum Step {
    /// Its outcome is decided; only recording it is left.
    Finish(InboxEvent, Finish),
    /// Decoded; `looked_up` once its Stripe lookups are made.
    Decoded { event: InboxEvent, fact: StripeFact, looked_up: bool },
    /// Ready to apply for its organization (lookups made when `looked_up`).
    Apply { event: InboxEvent, fact: StripeFact, org: Box<Organization>, looked_up: bool },
}

impl Step {
    fn id(&self) -> &StripeEventId {
        match self {
            Self::Finish(event, _) | Self::Decoded { event, .. } | Self::Apply { event, .. } => &event.id,
        }
    }
}

/// The Stripe inbox, as the job runner drives it.
#[derive(Clone)]
pub struct StripeInbox(pub Services);

#[async_trait]
impl JobQueue for StripeInbox {
    type Batch = Vec<InboxEvent>;

    fn name(&self) -> &'static str {
        "stripe_inbox"
    }

    fn lease_terms(&self) -> LeaseTerms {
        LeaseTerms { duration: INBOX_LEASE, renew_every: INBOX_LEASE_RENEWAL }
    }

    fn batch_size(&self) -> usize {
        INBOX_BATCH
    }

    async fn claim(&self) -> Result<Option<(Vec<InboxEvent>, Lease)>, DomainError> {
        let events = self.0.claim_stripe_events(INBOX_BATCH).await?;
        if events.is_empty() {
            return Ok(None);
        }
        let lease = Lease::on(events.iter().map(|e| e.id.to_string()).collect());
        Ok(Some((events, lease)))
    }

    async fn process(&self, batch: Vec<InboxEvent>, lease: &Lease) -> BatchReport {
        self.0.process_stripe_batch(batch, lease).await
    }

    async fn renew(&self, lease: &Lease) -> Result<usize, DomainError> {
        // The lease holds the ids of events claimed from the store, which parse back.
        let held: Vec<StripeEventId> = lease.held().iter().filter_map(|id| StripeEventId::parse(id).ok()).collect();
        if held.is_empty() {
            return Ok(0);
        }
        let until = self.0.now() + INBOX_LEASE;
        self.0.tx(move |tx| Ok(tx.renew_inbox_leases(&held, until)?)).await
    }

    async fn depth(&self) -> Result<QueueDepth, DomainError> {
        let now = self.0.now();
        let (pending, oldest) = self.0.tx(move |tx| Ok(tx.inbox_depth(now)?)).await?;
        Ok(QueueDepth { pending, oldest_due_age: oldest.map(|due| now - due) })
    }
}

impl Services {
    /// Claims up to `limit` due inbox events for this worker, under an [`INBOX_LEASE`] lease.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn claim_stripe_events(&self, limit: usize) -> Result<Vec<InboxEvent>, DomainError> {
        let now = self.now();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.tx(move |tx| Ok(tx.claim_inbox_events(now, now + INBOX_LEASE, limit)?)).await
    }

    /// Claims and processes up to `limit` due inbox events, without renewing the lease (for
    /// callers whose batches are quick: tests and admin commands; the server runs the inbox
    /// through the job runner).
    ///
    /// # Errors
    /// Storage failures while claiming; each event's own failure is recorded on it.
    pub async fn process_stripe_inbox(&self, limit: usize) -> Result<BatchReport, DomainError> {
        let events = self.claim_stripe_events(limit).await?;
        let lease = Lease::on(events.iter().map(|e| e.id.to_string()).collect());
        Ok(self.process_stripe_batch(events, &lease).await)
    }

    /// Makes `Waiting` refunds whose recheck time has come due again.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn wake_due_stripe_events(&self, limit: i64) -> Result<usize, DomainError> {
        let now = self.now();
        self.tx(move |tx| Ok(tx.wake_due_inbox_events(now, limit)?)).await
    }

    /// Processes a claimed batch (see the module docs) and lets go of each event in `lease`
    /// once its outcome is recorded.
    pub async fn process_stripe_batch(&self, events: Vec<InboxEvent>, lease: &Lease) -> BatchReport {
        let mut report = BatchReport { claimed: events.len(), ..BatchReport::default() };
        let mut steps = Vec::with_capacity(events.len());
        for event in events {
            steps.push(self.decode(event).await);
        }
        let steps = self.resolve_orgs(steps).await;
        let mut ready = Vec::with_capacity(steps.len());
        for step in steps {
            ready.push(self.look_up(step).await);
        }
        let ids: Vec<StripeEventId> = ready.iter().map(|s| s.id().clone()).collect();
        match self.record(ready.clone()).await {
            Ok(statuses) => statuses.iter().for_each(|s| tally(&mut report, *s)),
            Err(e) => {
                tracing::info!(error.cause = %e, events = ready.len(), "applying a batch of stripe events in one transaction failed; applying them one by one");
                self.record_one_by_one(ready, lease, &mut report).await;
            }
        }
        for id in &ids {
            lease.finished(id.as_str());
        }
        report
    }

    async fn record_one_by_one(&self, steps: Vec<Step>, lease: &Lease, report: &mut BatchReport) {
        let mut failures_in_a_row = 0;
        let mut unprocessed = Vec::new();
        for step in steps {
            if failures_in_a_row >= BATCH_ERROR_LIMIT {
                unprocessed.push(step.id().clone());
                continue;
            }
            let id = step.id().clone();
            match self.record(vec![step]).await {
                Ok(statuses) => {
                    failures_in_a_row = 0;
                    statuses.iter().for_each(|s| tally(report, *s));
                }
                Err(e) => {
                    failures_in_a_row += 1;
                    report.errors += 1;
                    tracing::warn!(event.id = %id, error.cause = %e, "recording a stripe event's outcome failed; it is retried once its lease runs out");
                }
            }
            lease.finished(id.as_str());
        }
        if unprocessed.is_empty() {
            return;
        }
        unprocessed.iter().for_each(|id| lease.finished(id.as_str()));
        match self.tx(move |tx| Ok(tx.release_inbox_events(&unprocessed)?)).await {
            Ok(released) => report.released += released,
            Err(e) => tracing::warn!(error.cause = %e, "letting go of unprocessed stripe events failed; their leases run out instead"),
        }
    }

    /// Step 1: decode, and for platform-account events make the lookups that finding their
    /// organization needs (current payloads name codes only by discount ids).
    async fn decode(&self, event: InboxEvent) -> Step {
        let fact = match self.events.decode(event.payload.as_bytes()) {
            Ok(StripeFact::Ignored) => {
                let why = format!("{} is not an event Rekomi handles", event.event_type);
                return Step::Finish(event, Finish::Skipped(why));
            }
            Ok(fact) => fact,
            Err(e) => return Step::Finish(event, Finish::Failed(e.to_string())),
        };
        if event.account.is_some() || event.org_id.is_some() {
            return Step::Decoded { event, fact, looked_up: false };
        }
        match self.enrich(None, fact).await {
            Ok(fact) => Step::Decoded { event, fact, looked_up: true },
            Err(e) => Step::Finish(event, Finish::Retry(format!("Stripe lookup failed: {e}"))),
        }
    }

    /// Step 2: the organization of every decoded event, in one transaction.
    async fn resolve_orgs(&self, steps: Vec<Step>) -> Vec<Step> {
        if !steps.iter().any(|s| matches!(s, Step::Decoded { .. })) {
            return steps;
        }
        let fallback = steps.clone();
        let resolved = self
            .tx(move |tx| {
                let mut orgs = OrgCache::default();
                let mut out = Vec::with_capacity(steps.len());
                for step in steps {
                    out.push(match step {
                        Step::Decoded { event, fact, looked_up } => match resolve_org(tx, &mut orgs, &event, &fact)? {
                            Some(org) => Step::Apply { event, fact, org: Box::new(org), looked_up },
                            None => Step::Finish(event.clone(), unresolved(&event, &fact)),
                        },
                        other => other,
                    });
                }
                Ok(out)
            })
            .await;
        resolved.unwrap_or_else(|e: DomainError| {
            let why = e.to_string();
            fallback
                .into_iter()
                .map(|step| match step {
                    Step::Decoded { event, .. } => Step::Finish(event, Finish::Retry(why.clone())),
                    other => other,
                })
                .collect()
        })
    }

    /// Step 3: the lookups of events whose organization had to be known first, and the
    /// settlement of a payment in a foreign currency.
    async fn look_up(&self, step: Step) -> Step {
        let (event, fact, org) = match step {
            Step::Apply { event, fact, org, looked_up: false } => match self.enrich(org.stripe_account_id.clone(), fact).await {
                Ok(fact) => (event, fact, org),
                Err(e) => return Step::Finish(event, Finish::Retry(format!("Stripe lookup failed: {e}"))),
            },
            Step::Apply { event, fact, org, looked_up: true } => (event, fact, org),
            other => return other,
        };
        match self.settle(&org, fact).await {
            Ok(fact) => Step::Apply { event, fact, org, looked_up: true },
            Err(e) => Step::Finish(event, Finish::Retry(format!("Stripe lookup failed: {e}"))),
        }
    }

    /// Step 4: applies and records every step in one transaction.
    async fn record(&self, steps: Vec<Step>) -> Result<Vec<InboxStatus>, DomainError> {
        let now = self.now();
        let entropy = Arc::clone(&self.entropy);
        self.tx(move |tx| {
            let mut batch = Effects::default();
            let lookups = RefCell::new(Lookups::default());
            let mut statuses = Vec::with_capacity(steps.len());
            for step in steps {
                let (mut event, how) = match step {
                    Step::Finish(event, how) => (event, how),
                    Step::Decoded { event, .. } => (event, Finish::Retry("its organization was not resolved".to_owned())),
                    Step::Apply { mut event, fact, org, .. } => {
                        event.org_id = Some(org.id);
                        let ctx = ApplyCtx::new(*org, now, Arc::clone(&entropy), &lookups);
                        let mut outcome = None;
                        let kept = tx.savepoint(&mut |tx| {
                            let applied = apply(tx, &ctx, &fact);
                            let keep = matches!(applied, Ok(Applied::Done(_)));
                            outcome = Some(applied);
                            keep
                        })?;
                        if !kept {
                            // What it read may have been its own undone writes.
                            *lookups.borrow_mut() = Lookups::default();
                        }
                        match outcome {
                            Some(Ok(Applied::Done(note))) if kept => {
                                event.done(note, now);
                                tx.update_inbox_event(&event)?;
                                batch.merge(ctx.into_effects(), event.account.clone(), &fact);
                                statuses.push(InboxStatus::Done);
                                continue;
                            }
                            Some(Ok(Applied::Skipped(why))) => (event, Finish::Skipped(why)),
                            Some(Ok(Applied::Wait { payment, why })) => (event, Finish::Wait { payment, why }),
                            Some(Err(DomainError::Store(e))) => (event, Finish::Retry(e.to_string())),
                            Some(Err(e)) => (event, Finish::Failed(e.to_string())),
                            // A statement of the event failed past its error handling (the
                            // savepoint undid it): try it again.
                            Some(Ok(Applied::Done(_))) | None => (event, Finish::Retry("its changes could not be saved".to_owned())),
                        }
                    }
                };
                finish(&mut event, how, now, &*entropy);
                tx.update_inbox_event(&event)?;
                statuses.push(event.status);
            }
            batch.commit(tx, now)?;
            Ok(statuses)
        })
        .await
    }
}

fn tally(report: &mut BatchReport, status: InboxStatus) {
    match status {
        InboxStatus::Done => report.done += 1,
        InboxStatus::Skipped => report.skipped += 1,
        InboxStatus::Failed => report.failed += 1,
        InboxStatus::Pending => report.retried += 1,
        InboxStatus::Waiting => report.waiting += 1,
    }
}

/// Records how an event ended that was not applied.
fn finish(event: &mut InboxEvent, how: Finish, now: OffsetDateTime, entropy: &dyn crate::kernel::entropy::Entropy) {
    match how {
        Finish::Skipped(why) => event.skip(why, now),
        Finish::Failed(why) => {
            tracing::warn!(event.id = %event.id, reason = %why, "stripe event failed");
            event.fail(why, now);
        }
        Finish::Retry(why) => {
            tracing::info!(event.id = %event.id, attempts = event.attempts, reason = %why, "stripe event will be retried");
            let next = INBOX_RETRY.next_attempt(event.attempts, now, entropy);
            event.retry(why, next, now);
            if event.status == InboxStatus::Failed {
                tracing::warn!(event.id = %event.id, reason = event.last_error.as_deref().unwrap_or(""), "stripe event failed");
            }
        }
        Finish::Wait { payment, why } => {
            tracing::info!(event.id = %event.id, reason = %why, "stripe event waits for its sale");
            event.wait(payment, why, now + WAIT_RECHECK);
        }
    }
}

/// Why an event whose organization could not be found ends as it does: a platform-account
/// refund waits for its sale (the sale names the organization, and wakes it); anything else is
/// skipped with the reason.
fn unresolved(event: &InboxEvent, fact: &StripeFact) -> Finish {
    if let (None, StripeFact::ChargeRefunded(refund)) = (&event.account, fact) {
        let payment = refund.payment();
        let why = format!("waiting for the sale of payment {payment}: no organization could be identified for this refund yet");
        return Finish::Wait { payment, why };
    }
    match fact {
        StripeFact::AccountUpdated(account) => return Finish::Skipped(format!("no payout account names {}", account.id)),
        StripeFact::TransferReversed { transfer, .. } => return Finish::Skipped(format!("no payout made transfer {transfer}")),
        _ => {}
    }
    Finish::Skipped(match &event.account {
        Some(account) => format!("the connected account {account} is not linked to an organization"),
        None => "no organization could be identified for this platform-account event".to_owned(),
    })
}

/// Organizations looked up while resolving one batch.
#[derive(Default)]
struct OrgCache {
    by_id: HashMap<OrgId, Option<Organization>>,
    /// The one organization on the platform account, if there is exactly one.
    only_platform_org: Option<Option<Organization>>,
}

impl OrgCache {
    fn org(&mut self, tx: &mut dyn Tx, id: OrgId) -> Result<Option<Organization>, DomainError> {
        if let Some(org) = self.by_id.get(&id) {
            return Ok(org.clone());
        }
        let org = tx.org(id)?;
        self.by_id.insert(id, org.clone());
        Ok(org)
    }

    /// An organization that uses the platform account (Stripe ids are unique within one
    /// account, not across accounts, so platform events never go to a linked organization).
    fn unlinked(&mut self, tx: &mut dyn Tx, id: OrgId) -> Result<Option<Organization>, DomainError> {
        Ok(self.org(tx, id)?.filter(|o| o.stripe_account_id.is_none()))
    }

    fn only_platform_org(&mut self, tx: &mut dyn Tx) -> Result<Option<Organization>, DomainError> {
        if let Some(org) = &self.only_platform_org {
            return Ok(org.clone());
        }
        let mut platform: Vec<Organization> = tx.some_orgs(1000)?.into_iter().filter(|o| o.stripe_account_id.is_none()).collect();
        let only = if platform.len() == 1 { platform.pop() } else { None };
        self.only_platform_org = Some(only.clone());
        Ok(only)
    }
}

/// The organization an event belongs to: the one linked to its connected account; for
/// platform-account events, the owner of a redeemed Rekomi code or deleted coupon, the one
/// that recorded a refunded payment's sale, the one that credited the customer, or the only
/// organization of a single-brand installation.
fn resolve_org(tx: &mut dyn Tx, orgs: &mut OrgCache, event: &InboxEvent, fact: &StripeFact) -> Result<Option<Organization>, DomainError> {
    if let Some(id) = event.org_id {
        return orgs.org(tx, id);
    }
    // Payout events are about an affiliate's account or a payout, not a brand's account.
    match fact {
        StripeFact::AccountUpdated(account) => {
            let org = tx.payout_accounts_by_stripe_account(&account.id)?.first().map(|a| a.org_id);
            return match org {
                Some(id) => orgs.org(tx, id),
                None => Ok(None),
            };
        }
        StripeFact::TransferReversed { transfer, payout_id, org_id, .. } => {
            let org = match (tx.payout_of_transfer(transfer)?, payout_id, org_id) {
                (Some(p), _, _) => Some(p.org_id),
                (None, Some(id), Some(org)) => tx.payout(*org, *id)?.map(|p| p.org_id),
                _ => None,
            };
            return match org {
                Some(id) => orgs.org(tx, id),
                None => Ok(None),
            };
        }
        _ => {}
    }
    if let Some(account) = &event.account {
        return Ok(tx.org_by_stripe_account(account)?);
    }
    for code in promotion_codes_of(fact) {
        if let Some(code) = tx.affiliate_coupon_by_stripe_id_any_org(&code.id)? {
            if let Some(org) = orgs.unlinked(tx, code.org_id)? {
                return Ok(Some(org));
            }
        }
    }
    match fact {
        StripeFact::PromotionCodeUpdated { id, .. } => {
            if let Some(code) = tx.affiliate_coupon_by_stripe_id_any_org(id)? {
                if let Some(org) = orgs.unlinked(tx, code.org_id)? {
                    return Ok(Some(org));
                }
            }
        }
        StripeFact::CouponDeleted { id } => {
            for coupon in tx.campaign_coupons_by_stripe_id(id)? {
                if let Some(org) = orgs.unlinked(tx, coupon.org_id)? {
                    return Ok(Some(org));
                }
            }
        }
        // A refund belongs to the organization that recorded the sale of its payment.
        StripeFact::ChargeRefunded(refund) => {
            let ids = tx.orgs_of_payment(&refund.payment())?;
            if let Some(org) = only_one(tx, orgs, ids)? {
                return Ok(Some(org));
            }
        }
        _ => {}
    }
    // A customer credited in exactly one organization belongs to it (a refund or a renewal
    // names no code); a customer of several is ambiguous and resolves nothing.
    if let Some(customer) = customer_of(fact) {
        let ids = tx.orgs_of_stripe_customer(&customer)?;
        if let Some(org) = only_one(tx, orgs, ids)? {
            return Ok(Some(org));
        }
    }
    orgs.only_platform_org(tx)
}

/// The one unlinked organization among `ids`, if exactly one.
fn only_one(tx: &mut dyn Tx, orgs: &mut OrgCache, ids: Vec<OrgId>) -> Result<Option<Organization>, DomainError> {
    let mut found = Vec::new();
    for id in ids {
        found.extend(orgs.unlinked(tx, id)?);
    }
    Ok(if found.len() == 1 { found.pop() } else { None })
}

impl Effects {
    /// Adds one applied event's deferred effects to the batch's, with the Stripe account and
    /// sale payments whose waiting refunds it wakes.
    fn merge(&mut self, event: Effects, account: Option<StripeAccountId>, fact: &StripeFact) {
        for (key, delta) in event.redemptions {
            *self.redemptions.entry(key).or_default() += delta;
        }
        self.wakes.extend(event.wakes);
        self.audit.extend(event.audit);
        self.outbox.extend(event.outbox);
        self.deliveries.extend(event.deliveries);
        let payments = fact.sale_payments();
        if let (Some(org), false) = (event.org, payments.is_empty()) {
            self.wakes.push((account, org, payments));
        }
    }

    /// Writes the batch's deferred effects: its audit entries, outbox events and deliveries
    /// (a multi-row insert each), wakes the refunds waiting for its sales, then
    /// updates redemption counters in a fixed order (no two workers lock them in opposite
    /// orders), so a popular code's row is locked only until the commit that follows.
    pub(crate) fn commit(self, tx: &mut dyn Tx, now: OffsetDateTime) -> Result<(), DomainError> {
        tx.append_audits(&self.audit)?;
        tx.insert_outbox_events(&self.outbox)?;
        tx.insert_deliveries(&self.deliveries)?;
        let mut wakes: BTreeMap<(Option<StripeAccountId>, OrgId), Vec<StripePaymentRef>> = BTreeMap::new();
        for (account, org, payments) in self.wakes {
            wakes.entry((account, org)).or_default().extend(payments);
        }
        for ((account, org), payments) in wakes {
            tx.wake_waiting_inbox_events(account.as_ref(), &payments, org, now)?;
        }
        for ((org, code), delta) in self.redemptions {
            if delta != 0 {
                tx.add_redemption(org, code, delta, now)?;
            }
        }
        Ok(())
    }
}
