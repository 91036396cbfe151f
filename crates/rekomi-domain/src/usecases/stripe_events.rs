//! Conversions from Stripe: the webhook inbox and the worker that turns events into
//! conversions, commission ledger entries, redemption counts and outbound events.
//!
//! Ingestion only verifies and stores (one short transaction), so Stripe gets its 200 at once
//! and a redelivered event id changes nothing. The worker claims events with a lease (several
//! processes share the work without doing it twice), makes any Stripe lookups outside a
//! transaction, then applies the event and marks it done in one transaction: an event is never
//! marked done before its effects commit. Facts are idempotent on top of that: each sale,
//! checkout and lead source is claimed once per organization, and refunds are applied as the
//! difference from what the ledger already holds.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use crate::actor::AuditActor;
use crate::affiliate::{Affiliate, AffiliateStatus};
use crate::attribution::{self, CouponSignal, Decision, Signals};
use crate::commission;
use crate::conversion::{Conversion, ConversionStatus, ConversionType, LedgerEvent, LedgerKind};
use crate::coupon::CouponCode;
use crate::error::{DomainError, FieldError};
use crate::ids::{ConversionId, LedgerEventId, OrgId};
use crate::inbox::{InboxEvent, InboxStatus};
use crate::money::{Currency, Money};
use crate::org::Organization;
use crate::ports::events::{CheckoutFact, InvoiceFact, PromotionCodeRef, RefundFact, StripeFact, SubscriptionFact};
use crate::ports::{Entropy, GatewayContext, GatewayError, Tx};
use crate::program::Program;
use crate::signature;

use super::outbox::{affiliate_coupon_data, conversion_data};
use super::{Audit, Services};

/// How long a claim holds an event. Short, so the events of a worker that dies (or loses its
/// database) are taken by another within seconds; a worker renews the lease of the events it
/// still holds every [`INBOX_LEASE_RENEWAL`] while it works through its batch.
pub const INBOX_LEASE: Duration = Duration::seconds(15);
/// How often a worker renews the lease of the events it still holds.
pub const INBOX_LEASE_RENEWAL: Duration = Duration::seconds(5);
/// Attempts before an event is marked failed.
pub const INBOX_MAX_ATTEMPTS: u32 = 12;
/// How often a `Waiting` refund is looked at again without being woken by its sale (a sale
/// recorded while the wake-up could not run, or an organization linked since).
const WAIT_RECHECK: Duration = Duration::hours(6);
/// Failed event finishes in a row after which a worker stops its batch (the store is most
/// likely down) and lets the rest of the batch go.
const BATCH_ERROR_LIMIT: usize = 3;

/// What ingestion did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestOutcome {
    /// The Stripe event id.
    pub event_id: String,
    /// Whether the id was already stored (a redelivery: nothing changed).
    pub duplicate: bool,
}

/// What a worker pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessReport {
    /// Events claimed.
    pub claimed: usize,
    /// Applied and done.
    pub done: usize,
    /// Skipped (not for Rekomi, or no organization).
    pub skipped: usize,
    /// Put back for a later attempt.
    pub retried: usize,
    /// Failed for good.
    pub failed: usize,
    /// Waiting for their sale.
    pub waiting: usize,
    /// Whose outcome could not be recorded (their short lease runs out, then they are retried).
    pub errors: usize,
    /// Let go unprocessed after repeated errors, for any worker to take at once.
    pub released: usize,
}

/// The events one claim took, and the lease on those not finished yet. The worker hands
/// [`StripeBatch::lease`] to something that calls [`Services::renew_stripe_lease`] every
/// [`INBOX_LEASE_RENEWAL`] while [`Services::process_stripe_batch`] runs.
pub struct StripeBatch {
    events: Vec<InboxEvent>,
    lease: InboxLease,
}

impl StripeBatch {
    /// How many events were claimed.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the claim took nothing.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The lease on the events still being processed.
    pub fn lease(&self) -> InboxLease {
        self.lease.clone()
    }
}

/// The ids of the claimed events a worker still holds; shared between the processing loop
/// (which drops each id once its event is finished) and the lease renewal.
#[derive(Clone, Default)]
pub struct InboxLease(Arc<Mutex<Vec<String>>>);

impl InboxLease {
    fn held(&self) -> Vec<String> {
        self.0.lock().map(|held| held.clone()).unwrap_or_default()
    }

    fn finished(&self, id: &str) {
        if let Ok(mut held) = self.0.lock() {
            held.retain(|held| held != id);
        }
    }
}

fn invalid_signature(message: &str) -> DomainError {
    FieldError::coded("Stripe-Signature", "invalid_signature", message).into()
}

/// How one event ends.
enum Finish {
    Skipped(String),
    Retry(String),
    Failed(String),
    /// A refund waiting for the sale of a payment.
    Wait {
        payment: String,
        why: String,
    },
}

impl Services {
    /// Verifies a Stripe webhook (`Stripe-Signature` over the raw bytes, any of `secrets`) and
    /// stores it in the inbox. A redelivered event id is accepted and changes nothing.
    ///
    /// # Errors
    /// `invalid_signature` (400) for a missing, forged or stale signature; `invalid_payload`
    /// (400) for a body that is not a Stripe event. Nothing is stored on error.
    /// `expected_livemode`: `Some(true)` on an installation with a live Stripe key (test-mode
    /// events are then skipped), `Some(false)` with a test key, `None` in local mode.
    pub async fn ingest_stripe_event(
        &self,
        secrets: &[String],
        expected_livemode: Option<bool>,
        signature_header: Option<&str>,
        body: &[u8],
    ) -> Result<IngestOutcome, DomainError> {
        if secrets.is_empty() {
            return Err(invalid_signature("no Stripe webhook signing secret is configured (REKOMI_STRIPE_WEBHOOK_SECRET)"));
        }
        let header = signature_header.ok_or_else(|| invalid_signature("the Stripe-Signature header is missing"))?;
        let now = self.now();
        signature::verify(header, body, secrets, now.unix_timestamp()).map_err(|e| invalid_signature(&e.to_string()))?;
        let envelope = self.events.envelope(body).map_err(|e| FieldError::coded("body", "invalid_payload", e.to_string()))?;
        let payload =
            String::from_utf8(body.to_vec()).map_err(|_| FieldError::coded("body", "invalid_payload", "the body is not UTF-8"))?;
        let event_id = envelope.id.clone();
        let mut event = InboxEvent {
            id: envelope.id,
            org_id: None,
            account: envelope.account,
            event_type: envelope.event_type,
            payload,
            status: InboxStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            locked_until: None,
            last_error: None,
            received_at: now,
            processed_at: None,
            waiting_for: None,
            replays: 0,
        };
        // A test-mode event reaching a live installation (or the reverse) must never create
        // commissions: it is kept, answered 200 so Stripe stops resending, and skipped.
        if expected_livemode.is_some_and(|live| live != envelope.livemode) {
            event.status = InboxStatus::Skipped;
            event.last_error = Some(format!(
                "{} event on a {} installation",
                if envelope.livemode { "live-mode" } else { "test-mode" },
                if envelope.livemode { "test" } else { "live" }
            ));
            event.processed_at = Some(now);
        }
        let inserted = self
            .tx(move |tx| {
                if let Some(account) = &event.account {
                    event.org_id = tx.org_by_stripe_account(account)?.map(|o| o.id);
                }
                Ok(tx.insert_inbox_event(&event)?)
            })
            .await?;
        Ok(IngestOutcome { event_id, duplicate: !inserted })
    }

    /// Claims up to `limit` due inbox events for this worker, under a [`INBOX_LEASE`] lease.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn claim_stripe_events(&self, limit: i64) -> Result<StripeBatch, DomainError> {
        let now = self.now();
        let events = self.tx(move |tx| Ok(tx.claim_inbox_events(now, now + INBOX_LEASE, limit)?)).await?;
        let lease = InboxLease(Arc::new(Mutex::new(events.iter().map(|e| e.id.clone()).collect())));
        Ok(StripeBatch { events, lease })
    }

    /// Extends the lease on the events of a batch that are still being processed.
    ///
    /// # Errors
    /// Storage failures (the lease then runs out and another worker may take the events).
    pub async fn renew_stripe_lease(&self, lease: &InboxLease) -> Result<usize, DomainError> {
        let held = lease.held();
        if held.is_empty() {
            return Ok(0);
        }
        let until = self.now() + INBOX_LEASE;
        self.tx(move |tx| Ok(tx.renew_inbox_leases(&held, until)?)).await
    }

    /// Processes a claimed batch. One event's failure never stops the others: an event whose
    /// outcome cannot be recorded keeps its short lease (and is retried once it runs out), and
    /// after [`BATCH_ERROR_LIMIT`] such failures in a row the rest of the batch is let go for
    /// any worker to take.
    pub async fn process_stripe_batch(&self, batch: StripeBatch) -> ProcessReport {
        let StripeBatch { events, lease } = batch;
        let mut report = ProcessReport { claimed: events.len(), ..ProcessReport::default() };
        let mut failures_in_a_row = 0;
        let mut unprocessed = Vec::new();
        for event in events {
            if failures_in_a_row >= BATCH_ERROR_LIMIT {
                unprocessed.push(event.id);
                continue;
            }
            let id = event.id.clone();
            match self.process_one(event).await {
                Ok(status) => {
                    failures_in_a_row = 0;
                    match status {
                        InboxStatus::Done => report.done += 1,
                        InboxStatus::Skipped => report.skipped += 1,
                        InboxStatus::Failed => report.failed += 1,
                        InboxStatus::Pending => report.retried += 1,
                        InboxStatus::Waiting => report.waiting += 1,
                    }
                }
                Err(e) => {
                    failures_in_a_row += 1;
                    report.errors += 1;
                    tracing::warn!(event.id = %id, error.cause = %e, "recording a stripe event's outcome failed; it is retried once its lease runs out");
                }
            }
            lease.finished(&id);
        }
        if !unprocessed.is_empty() {
            report.released = unprocessed.len();
            for id in &unprocessed {
                lease.finished(id);
            }
            if let Err(e) = self.tx(move |tx| Ok(tx.release_inbox_events(&unprocessed)?)).await {
                tracing::warn!(error.cause = %e, "letting go of unprocessed stripe events failed; their leases run out instead");
            }
        }
        report
    }

    /// Claims and processes up to `limit` due inbox events, without renewing the lease (for
    /// callers whose batches are quick: tests and admin commands).
    ///
    /// # Errors
    /// Storage failures while claiming; each event's own failure is recorded on it.
    pub async fn process_stripe_inbox(&self, limit: i64) -> Result<ProcessReport, DomainError> {
        let batch = self.claim_stripe_events(limit).await?;
        Ok(self.process_stripe_batch(batch).await)
    }

    /// Makes `Waiting` refunds whose recheck time has come due again.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn wake_due_stripe_events(&self, limit: i64) -> Result<usize, DomainError> {
        let now = self.now();
        self.tx(move |tx| Ok(tx.wake_due_inbox_events(now, limit)?)).await
    }

    async fn process_one(&self, mut event: InboxEvent) -> Result<InboxStatus, DomainError> {
        let fact = match self.events.decode(event.payload.as_bytes()) {
            Ok(StripeFact::Ignored) => {
                let why = format!("{} is not an event Rekomi handles", event.event_type);
                return self.finish(event, Finish::Skipped(why)).await;
            }
            Ok(fact) => fact,
            Err(e) => return self.finish(event, Finish::Failed(e.to_string())).await,
        };
        // A platform-account event's codes must be known before its organization can be found
        // (current payloads name only discount ids); the lookups act on the platform account.
        let platform = event.account.is_none() && event.org_id.is_none();
        let fact = if platform {
            match self.enrich(None, fact).await {
                Ok(fact) => fact,
                Err(e) => return self.finish(event, Finish::Retry(format!("Stripe lookup failed: {e}"))).await,
            }
        } else {
            fact
        };
        let org = match self.resolve_org(&event, &fact).await {
            Ok(Some(org)) => org,
            Ok(None) => {
                // A refund can arrive before its sale: it waits for it (the sale names the
                // organization), and is woken when it is recorded.
                if let (None, StripeFact::ChargeRefunded(refund)) = (&event.account, &fact) {
                    let payment = refund.payment().to_owned();
                    let why = format!("waiting for the sale of payment {payment}: no organization could be identified for this refund yet");
                    return self.finish(event, Finish::Wait { payment, why }).await;
                }
                let why = match &event.account {
                    Some(account) => format!("the connected account {account} is not linked to an organization"),
                    None => "no organization could be identified for this platform-account event".to_owned(),
                };
                return self.finish(event, Finish::Skipped(why)).await;
            }
            Err(e) => return self.finish(event, Finish::Retry(e.to_string())).await,
        };
        event.org_id = Some(org.id);
        let enriched = if platform { Ok(fact) } else { self.enrich(org.stripe_account_id.clone(), fact).await };
        let fact = match enriched {
            Ok(fact) => fact,
            Err(e) => return self.finish(event, Finish::Retry(format!("Stripe lookup failed: {e}"))).await,
        };
        let now = self.now();
        let ctx = ApplyCtx { org, now, entropy: Arc::clone(&self.entropy) };
        let mut done = event.clone();
        let applied = self
            .tx(move |tx| {
                let outcome = apply(tx, &ctx, &fact)?;
                if let Applied::Done(note) = &outcome {
                    done.status = InboxStatus::Done;
                    done.last_error = note.clone();
                    done.locked_until = None;
                    done.processed_at = Some(ctx.now);
                    done.waiting_for = None;
                    tx.update_inbox_event(&done)?;
                    // Refunds that arrived before this sale can be applied now.
                    let payments = fact.sale_payments();
                    if !payments.is_empty() {
                        tx.wake_waiting_inbox_events(done.account.as_deref(), &payments, ctx.org.id, ctx.now)?;
                    }
                }
                Ok(outcome)
            })
            .await;
        match applied {
            Ok(Applied::Done(_)) => Ok(InboxStatus::Done),
            Ok(Applied::Skipped(why)) => self.finish(event, Finish::Skipped(why)).await,
            Ok(Applied::Wait { payment, why }) => self.finish(event, Finish::Wait { payment, why }).await,
            Err(DomainError::Store(e)) => self.finish(event, Finish::Retry(e.to_string())).await,
            Err(e) => self.finish(event, Finish::Failed(e.to_string())).await,
        }
    }

    async fn finish(&self, mut event: InboxEvent, how: Finish) -> Result<InboxStatus, DomainError> {
        let now = self.now();
        event.waiting_for = None;
        let (status, note) = match how {
            Finish::Wait { payment, why } => {
                // Waiting is no failed attempt: the retry budget stays whole for when it runs.
                event.attempts = 0;
                event.waiting_for = Some(payment);
                event.next_attempt_at = now + WAIT_RECHECK;
                tracing::info!(event.id = %event.id, reason = %why, "stripe event waits for its sale");
                (InboxStatus::Waiting, Some(why))
            }
            Finish::Skipped(why) => (InboxStatus::Skipped, Some(why)),
            Finish::Failed(why) => (InboxStatus::Failed, Some(why)),
            Finish::Retry(why) if event.attempts >= INBOX_MAX_ATTEMPTS => {
                (InboxStatus::Failed, Some(format!("gave up after {} attempts: {why}", event.attempts)))
            }
            Finish::Retry(why) => {
                let base = 15_i64.saturating_mul(1_i64 << event.attempts.saturating_sub(1).min(12)).min(6 * 3600);
                let jitter = (self.entropy.index(100) as i64) * base / 400;
                event.next_attempt_at = now + Duration::seconds(base + jitter);
                tracing::info!(event.id = %event.id, attempts = event.attempts, reason = %why, "stripe event will be retried");
                (InboxStatus::Pending, Some(why))
            }
        };
        if status == InboxStatus::Failed {
            tracing::warn!(event.id = %event.id, reason = note.as_deref().unwrap_or(""), "stripe event failed");
        }
        event.status = status;
        event.last_error = note;
        event.locked_until = None;
        if !matches!(status, InboxStatus::Pending | InboxStatus::Waiting) {
            event.processed_at = Some(now);
        }
        self.tx(move |tx| Ok(tx.update_inbox_event(&event)?)).await?;
        Ok(status)
    }

    /// The organization an event belongs to: the one linked to its connected account; for
    /// platform-account events, the owner of a redeemed Rekomi code or deleted coupon, the one
    /// that recorded a refunded payment's sale, the one that credited the customer, or the
    /// only organization of a single-brand installation.
    async fn resolve_org(&self, event: &InboxEvent, fact: &StripeFact) -> Result<Option<Organization>, DomainError> {
        let (org_id, account) = (event.org_id, event.account.clone());
        let promo_ids: Vec<String> = promotion_codes_of(fact).iter().map(|p| p.id.clone()).collect();
        let customer = customer_of(fact);
        let refunded_payment = match fact {
            StripeFact::ChargeRefunded(refund) => Some(refund.payment().to_owned()),
            _ => None,
        };
        let deleted_coupon = match fact {
            StripeFact::CouponDeleted { id } => Some(id.clone()),
            StripeFact::PromotionCodeUpdated { id, .. } => Some(format!("promo:{id}")),
            _ => None,
        };
        self.tx(move |tx| {
            if let Some(id) = org_id {
                return Ok(tx.org(id)?);
            }
            if let Some(account) = account {
                return Ok(tx.org_by_stripe_account(&account)?);
            }
            // A platform-account event can only belong to an organization that uses the
            // platform account: Stripe ids are unique within one account, not across accounts.
            let unlinked = |tx: &mut dyn Tx, org: OrgId| -> Result<Option<Organization>, DomainError> {
                Ok(tx.org(org)?.filter(|o| o.stripe_account_id.is_none()))
            };
            for id in &promo_ids {
                if let Some(code) = tx.affiliate_coupon_by_stripe_id_any_org(id)? {
                    if let Some(org) = unlinked(tx, code.org_id)? {
                        return Ok(Some(org));
                    }
                }
            }
            match deleted_coupon.as_deref() {
                Some(promo) if promo.starts_with("promo:") => {
                    if let Some(code) = tx.affiliate_coupon_by_stripe_id_any_org(&promo["promo:".len()..])? {
                        if let Some(org) = unlinked(tx, code.org_id)? {
                            return Ok(Some(org));
                        }
                    }
                }
                Some(coupon) => {
                    for c in tx.campaign_coupons_by_stripe_id(coupon)? {
                        if let Some(org) = unlinked(tx, c.org_id)? {
                            return Ok(Some(org));
                        }
                    }
                }
                None => {}
            }
            // A refund belongs to the organization that recorded the sale of its payment.
            if let Some(payment) = &refunded_payment {
                let mut orgs = Vec::new();
                for org in tx.orgs_of_payment(payment)? {
                    orgs.extend(unlinked(tx, org)?);
                }
                if orgs.len() == 1 {
                    return Ok(orgs.pop());
                }
            }
            // A customer credited in exactly one organization belongs to it (a refund or a
            // renewal names no code); a customer of several is ambiguous and resolves nothing.
            if let Some(customer) = &customer {
                let mut orgs = Vec::new();
                for org in tx.orgs_of_stripe_customer(customer)? {
                    orgs.extend(unlinked(tx, org)?);
                }
                if orgs.len() == 1 {
                    return Ok(orgs.pop());
                }
            }
            // A single-brand installation: the one organization on the platform account.
            let mut platform_orgs: Vec<Organization> = tx.some_orgs(1000)?.into_iter().filter(|o| o.stripe_account_id.is_none()).collect();
            if platform_orgs.len() == 1 {
                return Ok(platform_orgs.pop());
            }
            Ok(None)
        })
        .await
    }

    /// Stripe lookups a fact needs, made outside any transaction: promotion codes that the
    /// payload names only as discount ids, the invoice of a refunded charge, and then the
    /// customer's referral metadata for a new sale whose payload names no referral.
    async fn enrich(&self, stripe_account: Option<String>, fact: StripeFact) -> Result<StripeFact, GatewayError> {
        let ctx = GatewayContext { stripe_account };
        let fact = match fact {
            StripeFact::InvoicePaid(mut invoice) if invoice.discounts.unresolved && invoice.discounts.promotion_codes.is_empty() => {
                invoice.discounts.promotion_codes =
                    not_found_as_empty(self.gateway.invoice_promotion_codes(&ctx, &invoice.invoice_id).await)?;
                StripeFact::InvoicePaid(invoice)
            }
            StripeFact::SubscriptionCreated(mut sub) if sub.discounts.unresolved && sub.discounts.promotion_codes.is_empty() => {
                sub.discounts.promotion_codes =
                    not_found_as_empty(self.gateway.subscription_promotion_codes(&ctx, &sub.subscription_id).await)?;
                StripeFact::SubscriptionCreated(sub)
            }
            StripeFact::ChargeRefunded(mut refund) if refund.invoice_id.is_none() => {
                refund.invoice_id = match self.gateway.invoice_of_payment(&ctx, &refund.charge_id, refund.payment_intent_id.clone()).await {
                    Ok(invoice) => invoice,
                    Err(GatewayError::NotFound) => None,
                    Err(e) => return Err(e),
                };
                StripeFact::ChargeRefunded(refund)
            }
            other => other,
        };
        // Payloads never carry the customer's metadata. Renewals are left out: they join the
        // subscription's conversion, whose attribution is already decided.
        Ok(match fact {
            StripeFact::InvoicePaid(mut invoice) if invoice.referral.is_none() && !is_renewal(invoice.billing_reason.as_deref()) => {
                invoice.referral = self.customer_referral(&ctx, invoice.customer_id.as_deref()).await?;
                StripeFact::InvoicePaid(invoice)
            }
            // An unpaid checkout credits nobody, so it needs no lookup.
            StripeFact::CheckoutCompleted(mut checkout)
                if checkout.referral.is_none()
                    && checkout.client_reference_id.is_none()
                    && matches!(checkout.payment_status.as_str(), "paid" | "no_payment_required") =>
            {
                checkout.referral = self.customer_referral(&ctx, checkout.customer_id.as_deref()).await?;
                StripeFact::CheckoutCompleted(checkout)
            }
            other => other,
        })
    }

    /// `metadata.rekomi_ref` of the customer, if there is one; an unknown customer has none.
    async fn customer_referral(&self, ctx: &GatewayContext, customer_id: Option<&str>) -> Result<Option<String>, GatewayError> {
        let Some(customer_id) = customer_id else { return Ok(None) };
        match self.gateway.customer_referral(ctx, customer_id).await {
            Err(GatewayError::NotFound) => Ok(None),
            other => other,
        }
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
                if c.status != ConversionStatus::Pending || c.approve_after > now {
                    continue;
                }
                c.status = ConversionStatus::Approved;
                c.approved_at = Some(now);
                c.updated_at = now;
                tx.update_conversion(&c)?;
                let audit = Audit { org: c.org_id, actor: AuditActor::System, now, entropy: Arc::clone(&entropy) };
                audit.record(tx, "conversion.approved", "conversion", c.id.to_string(), None, Some(json!({"status": "Approved"})))?;
                approved += 1;
            }
            Ok(approved)
        })
        .await
    }
}

/// Whether an invoice's `billing_reason` makes it a subscription's later invoice rather than
/// its first (`subscription_create`) or a one-time invoice (`manual`, none, …).
fn is_renewal(billing_reason: Option<&str>) -> bool {
    matches!(billing_reason, Some("subscription_cycle" | "subscription_update" | "subscription_threshold"))
}

fn not_found_as_empty(result: Result<Vec<PromotionCodeRef>, GatewayError>) -> Result<Vec<PromotionCodeRef>, GatewayError> {
    match result {
        Err(GatewayError::NotFound) => Ok(Vec::new()),
        other => other,
    }
}

fn customer_of(fact: &StripeFact) -> Option<String> {
    match fact {
        StripeFact::InvoicePaid(i) => i.customer_id.clone(),
        StripeFact::SubscriptionCreated(s) => s.customer_id.clone(),
        StripeFact::CheckoutCompleted(c) => c.customer_id.clone(),
        StripeFact::ChargeRefunded(r) => r.customer_id.clone(),
        _ => None,
    }
}

fn promotion_codes_of(fact: &StripeFact) -> &[PromotionCodeRef] {
    match fact {
        StripeFact::InvoicePaid(i) => &i.discounts.promotion_codes,
        StripeFact::SubscriptionCreated(s) => &s.discounts.promotion_codes,
        StripeFact::CheckoutCompleted(c) => &c.discounts.promotion_codes,
        _ => &[],
    }
}

/// Everything `apply` needs besides the transaction.
struct ApplyCtx {
    org: Organization,
    now: OffsetDateTime,
    entropy: Arc<dyn Entropy>,
}

impl ApplyCtx {
    fn audit(&self) -> Audit {
        Audit { org: self.org.id, actor: AuditActor::System, now: self.now, entropy: Arc::clone(&self.entropy) }
    }

    fn uuid(&self) -> uuid::Uuid {
        self.entropy.uuid_v7(self.now)
    }

    fn approve_after(&self) -> OffsetDateTime {
        self.now + Duration::days(i64::from(self.org.payout_grace_days))
    }
}

/// What applying a fact did.
enum Applied {
    Done(Option<String>),
    Skipped(String),
    /// A refund whose sale is not recorded yet.
    Wait {
        payment: String,
        why: String,
    },
}

fn done(note: &str) -> Result<Applied, DomainError> {
    Ok(Applied::Done(Some(note.to_owned())))
}

fn ts(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn apply(tx: &mut dyn Tx, ctx: &ApplyCtx, fact: &StripeFact) -> Result<Applied, DomainError> {
    match fact {
        StripeFact::InvoicePaid(invoice) => record_sale(tx, ctx, SaleInput::from_invoice(invoice)),
        StripeFact::CheckoutCompleted(checkout) => match SaleInput::from_checkout(checkout) {
            Some(input) => record_sale(tx, ctx, input),
            None => done("checkout not paid, or its subscription invoice carries the sale"),
        },
        StripeFact::SubscriptionCreated(sub) => record_subscription(tx, ctx, sub),
        StripeFact::ChargeRefunded(refund) => record_refund(tx, ctx, refund),
        StripeFact::PromotionCodeUpdated { id, active } => sync_promotion_code(tx, ctx, id, *active),
        StripeFact::CouponDeleted { id } => sync_deleted_coupon(tx, ctx, id),
        StripeFact::Ignored => done("ignored"),
    }
}

/// A payment (or a free signup) to credit.
struct SaleInput {
    /// Claimed once per organization: `invoice:in_…` or `checkout:cs_…`.
    source: String,
    /// The id refunds find the sale by: the invoice, else the payment intent.
    ledger_key: String,
    /// `externalEventId`: the invoice or the checkout session.
    external_id: String,
    customer_id: Option<String>,
    customer_email: Option<String>,
    subscription_id: Option<String>,
    amount: i64,
    currency: String,
    codes: Vec<PromotionCodeRef>,
    referrals: Vec<String>,
    occurred_at: OffsetDateTime,
}

impl SaleInput {
    fn from_invoice(i: &InvoiceFact) -> Self {
        Self {
            source: format!("invoice:{}", i.invoice_id),
            ledger_key: i.invoice_id.clone(),
            external_id: i.invoice_id.clone(),
            customer_id: i.customer_id.clone(),
            customer_email: i.customer_email.clone(),
            subscription_id: i.subscription_id.clone(),
            amount: i.amount_paid,
            currency: i.currency.clone(),
            codes: i.discounts.promotion_codes.clone(),
            referrals: i.referral.iter().cloned().collect(),
            occurred_at: ts(i.paid_at),
        }
    }

    /// A paid checkout. A subscription checkout credits its first invoice (the `invoice.paid`
    /// of the same invoice is then recognised as already recorded, and vice versa), so the
    /// session's referral metadata and `client_reference_id` are not lost.
    fn from_checkout(c: &CheckoutFact) -> Option<Self> {
        if !matches!(c.payment_status.as_str(), "paid" | "no_payment_required") {
            return None;
        }
        // Whenever the session produced an invoice (subscriptions, and one-time payments with
        // invoice creation), the invoice is the sale: its `invoice.paid` is then the same fact,
        // and refunds find it through the invoice-payments API.
        let (source, ledger_key) = match (c.mode.as_str(), &c.invoice_id) {
            (_, Some(invoice)) => (format!("invoice:{invoice}"), invoice.clone()),
            ("subscription", None) => return None,
            _ => (format!("checkout:{}", c.session_id), c.payment_intent_id.clone().unwrap_or_else(|| c.session_id.clone())),
        };
        let mut referrals: Vec<String> = c.referral.iter().cloned().collect();
        referrals.extend(c.client_reference_id.iter().cloned());
        Some(Self {
            source,
            ledger_key,
            external_id: c.invoice_id.clone().unwrap_or_else(|| c.session_id.clone()),
            customer_id: c.customer_id.clone(),
            customer_email: c.customer_email.clone(),
            subscription_id: c.subscription_id.clone(),
            amount: c.amount_total,
            currency: c.currency.clone().unwrap_or_default(),
            codes: c.discounts.promotion_codes.clone(),
            referrals,
            occurred_at: ts(c.created),
        })
    }
}

/// The marker of a payment that was processed but credited nobody.
fn seen_key(payment: &str) -> String {
    format!("seen:{payment}")
}

/// Counts a code's redemption once per subscription (or customer, or payment): a free trial's
/// lead and its first paid invoice are one redemption at Stripe.
fn count_redemption(tx: &mut dyn Tx, ctx: &ApplyCtx, code: crate::ids::AffiliateCouponId, input: &SaleInput) -> Result<(), DomainError> {
    let holder = input.subscription_id.as_deref().or(input.customer_id.as_deref()).unwrap_or(&input.ledger_key);
    if tx.claim_source(ctx.org.id, &format!("redemption:{code}:{holder}"), ctx.now)? {
        tx.add_redemption(ctx.org.id, code, 1, ctx.now)?;
    }
    Ok(())
}

/// The signals a sale carries, looked up, with the trace that records them.
fn gather_signals(
    tx: &mut dyn Tx,
    org: OrgId,
    codes: &[PromotionCodeRef],
    referrals: &[String],
    customer_id: Option<&str>,
    email: Option<&str>,
) -> Result<(Signals, Value), DomainError> {
    let mut coupon = None;
    for code in codes {
        let mut found = tx.affiliate_coupon_by_stripe_id(org, &code.id)?;
        if found.is_none() {
            if let Some(parsed) = code.code.as_deref().and_then(|c| CouponCode::parse(c).ok()) {
                found = tx.affiliate_coupon_by_code(org, &parsed)?;
            }
        }
        if let Some(c) = found {
            let overrides = tx.campaign_coupon(org, c.campaign_coupon_id)?.is_none_or(|cc| cc.overrides_click_attribution);
            coupon = Some(CouponSignal {
                affiliate: c.affiliate_id,
                coupon: c.id,
                code: c.code.as_str().to_owned(),
                overrides_click: overrides,
            });
            break;
        }
    }
    let mut referral = None;
    let mut referral_ref = None;
    for slug in referrals {
        if let Some(a) = tx.affiliate_by_link_slug(org, slug.trim())? {
            referral = Some(a.id);
            referral_ref = Some(slug.clone());
            break;
        }
    }
    let history = tx.affiliate_of_customer(org, customer_id, email)?;
    let trace = json!({
        "promotionCodes": codes.iter().map(|c| json!({"id": c.id, "code": c.code})).collect::<Vec<_>>(),
        "coupon": coupon.as_ref().map(|c| json!({"affiliateCouponId": c.coupon.to_string(), "code": c.code, "affiliateId": c.affiliate.to_string(), "overridesClickAttribution": c.overrides_click})),
        "referralRefs": referrals,
        "referral": referral.map(|a| json!({"ref": referral_ref, "affiliateId": a.to_string()})),
        "customerHistory": history.map(|a| a.to_string()),
        "stripeCustomerId": customer_id,
    });
    Ok((Signals { coupon, referral, customer_history: history }, trace))
}

/// Why a credited affiliate earns nothing.
fn denial(affiliate: &Affiliate, program: &Program, customer_email: Option<&str>) -> Option<&'static str> {
    if customer_email.is_some_and(|e| e.trim().eq_ignore_ascii_case(affiliate.email.as_str())) {
        Some("self_referral")
    } else if affiliate.status != AffiliateStatus::Approved {
        Some("affiliate_not_approved")
    } else if program.is_archived() || !program.is_active {
        Some("program_inactive")
    } else {
        None
    }
}

fn record_sale(tx: &mut dyn Tx, ctx: &ApplyCtx, input: SaleInput) -> Result<Applied, DomainError> {
    let org = ctx.org.id;
    let Ok(currency) = Currency::parse(&input.currency) else {
        return Ok(Applied::Skipped(format!("currency {:?} is not supported", input.currency)));
    };
    if let Some(sub) = &input.subscription_id {
        if let Some(conversion) = tx.sale_conversion_of_subscription(org, sub)? {
            return record_renewal(tx, ctx, conversion, &input, currency);
        }
    }
    let (signals, mut trace) =
        gather_signals(tx, org, &input.codes, &input.referrals, input.customer_id.as_deref(), input.customer_email.as_deref())?;
    let Some(decision) = attribution::decide(&signals) else {
        // Remembered so a refund of this payment is recognised as nobody's, not retried.
        tx.claim_source(org, &seen_key(&input.ledger_key), ctx.now)?;
        return done("no affiliate is attributed");
    };
    if input.amount == 0 {
        return record_lead(tx, ctx, &input, currency, decision, signals, trace);
    }
    if !tx.claim_source(org, &input.source, ctx.now)? {
        return done("already recorded");
    }
    let Some(affiliate) = tx.affiliate(org, decision.affiliate)? else {
        return done("the credited affiliate no longer exists");
    };
    let Some(program) = tx.program(org, affiliate.program_id)? else {
        return done("the credited affiliate's program no longer exists");
    };
    let denied = denial(&affiliate, &program, input.customer_email.as_deref());
    let kind = if input.subscription_id.is_some() { ConversionType::Recurring } else { ConversionType::OneTime };
    let rate = affiliate.custom_commission.unwrap_or(program.default_commission);
    let earns = kind == ConversionType::OneTime || commission::invoice_earns(1, program.recurring_months, program.recurring_delay_invoices);
    let commission =
        if denied.is_none() && earns { commission::commission_for(Money::new(input.amount, currency), rate).minor() } else { 0 };
    annotate(&mut trace, &decision, denied, Some((rate.kind.as_str(), rate.value.to_decimal_string(), earns)));
    let credit = Credit { affiliate: &affiliate, program: &program, decision: &decision, signals: &signals, denied };
    let conversion = credited_conversion(ctx, &input, &credit, kind, currency, input.amount, commission, 1, trace);
    tx.insert_conversion(&conversion)?;
    insert_ledger(tx, ctx, &conversion, LedgerKind::Initial, input.amount, commission, &input.ledger_key, None, input.occurred_at)?;
    let audit = ctx.audit();
    audit.record(tx, "conversion.created", "conversion", conversion.id.to_string(), None, Some(conversion_data(&conversion)))?;
    audit.emit(tx, "conversion.created", conversion_data(&conversion))?;
    if denied.is_none() && commission != 0 {
        record_override(
            tx,
            ctx,
            &conversion,
            &affiliate,
            &program,
            LedgerKind::Initial,
            input.amount,
            commission,
            &input.ledger_key,
            input.occurred_at,
        )?;
    }
    // Last: a popular code's counter row is shared by every sale with it, so its lock is held
    // for as short a time as possible.
    if let Some(code) = conversion.affiliate_coupon_id {
        count_redemption(tx, ctx, code, &input)?;
    }
    done("conversion created")
}

/// Who a payment credits and how: what a sale and a lead conversion share.
struct Credit<'a> {
    affiliate: &'a Affiliate,
    program: &'a Program,
    decision: &'a Decision,
    signals: &'a Signals,
    denied: Option<&'static str>,
}

/// A new conversion credited to `credit.affiliate` for `input`; denied conversions earn nothing
/// and say why.
#[allow(clippy::too_many_arguments)]
fn credited_conversion(
    ctx: &ApplyCtx,
    input: &SaleInput,
    credit: &Credit<'_>,
    kind: ConversionType,
    currency: Currency,
    amount: i64,
    commission: i64,
    paid_invoices: u32,
    trace: Value,
) -> Conversion {
    Conversion {
        id: ConversionId::from_uuid(ctx.uuid()),
        org_id: ctx.org.id,
        program_id: credit.program.id,
        affiliate_id: credit.affiliate.id,
        kind,
        status: if credit.denied.is_some() { ConversionStatus::Denied } else { ConversionStatus::Pending },
        amount_minor: amount,
        currency,
        commission_minor: commission,
        attribution_method: Some(credit.decision.method.as_str().to_owned()),
        coupon_code: credit.decision.coupon.as_ref().map(|c| c.code.clone()),
        affiliate_coupon_id: credit.signals.coupon.as_ref().map(|c| c.coupon),
        stripe_customer_id: input.customer_id.clone(),
        stripe_subscription_id: input.subscription_id.clone(),
        external_event_id: Some(input.external_id.clone()),
        customer_email: input.customer_email.clone(),
        denial_reason: credit.denied.map(str::to_owned),
        parent_conversion_id: None,
        attribution_trace: trace,
        paid_invoices,
        approve_after: ctx.approve_after(),
        approved_at: None,
        refunded_at: None,
        created_at: ctx.now,
        updated_at: ctx.now,
    }
}

fn annotate(trace: &mut Value, decision: &Decision, denied: Option<&str>, rate: Option<(&str, String, bool)>) {
    if let Some(t) = trace.as_object_mut() {
        t.insert("rule".into(), json!(decision.rule));
        t.insert("method".into(), json!(decision.method.as_str()));
        t.insert("affiliateId".into(), json!(decision.affiliate.to_string()));
        t.insert("denied".into(), json!(denied));
        if let Some((kind, value, earns)) = rate {
            t.insert("commission".into(), json!({"type": kind, "value": value, "invoiceEarns": earns}));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn insert_ledger(
    tx: &mut dyn Tx,
    ctx: &ApplyCtx,
    conversion: &Conversion,
    kind: LedgerKind,
    amount: i64,
    commission: i64,
    key: &str,
    refunded_total: Option<i64>,
    occurred_at: OffsetDateTime,
) -> Result<(), DomainError> {
    tx.insert_ledger_event(&LedgerEvent {
        id: LedgerEventId::from_uuid(ctx.uuid()),
        org_id: conversion.org_id,
        conversion_id: conversion.id,
        kind,
        amount_minor: amount,
        commission_minor: commission,
        stripe_invoice_id: Some(key.to_owned()),
        refunded_total,
        occurred_at,
        created_at: ctx.now,
    })?;
    Ok(())
}

/// The recruiter's one-tier override on a recruit's commission, when the program enables it.
#[allow(clippy::too_many_arguments)]
fn record_override(
    tx: &mut dyn Tx,
    ctx: &ApplyCtx,
    parent: &Conversion,
    recruit: &Affiliate,
    program: &Program,
    kind: LedgerKind,
    amount: i64,
    recruit_commission: i64,
    key: &str,
    occurred_at: OffsetDateTime,
) -> Result<(), DomainError> {
    let org = ctx.org.id;
    let config = tx.sub_affiliate_config(org, program.id)?;
    if !config.enabled || config.percent.get() == 0 {
        return Ok(());
    }
    let Some(recruiter_id) = tx.recruiter_of(org, recruit.id)? else { return Ok(()) };
    let Some(recruiter) = tx.affiliate(org, recruiter_id)? else { return Ok(()) };
    if recruiter.status != AffiliateStatus::Approved || recruiter.id == recruit.id {
        return Ok(());
    }
    let amount_of_override = commission::override_of(recruit_commission, config.percent);
    if parent.customer_email.as_deref().is_some_and(|e| e.trim().eq_ignore_ascii_case(recruiter.email.as_str())) {
        return Ok(());
    }
    let existing = tx.overrides_of(org, parent.id)?.into_iter().find(|o| o.affiliate_id == recruiter.id);
    let created = existing.is_none();
    let mut over = match existing {
        Some(o) => tx.conversion_for_update(org, o.id)?.unwrap_or(o),
        None => {
            let o = Conversion {
                id: ConversionId::from_uuid(ctx.uuid()),
                org_id: org,
                program_id: program.id,
                affiliate_id: recruiter.id,
                kind: parent.kind,
                status: ConversionStatus::Pending,
                amount_minor: 0,
                currency: parent.currency,
                commission_minor: 0,
                attribution_method: Some("sub_affiliate_override".to_owned()),
                coupon_code: None,
                affiliate_coupon_id: None,
                stripe_customer_id: parent.stripe_customer_id.clone(),
                stripe_subscription_id: parent.stripe_subscription_id.clone(),
                external_event_id: parent.external_event_id.clone(),
                customer_email: None,
                denial_reason: None,
                parent_conversion_id: Some(parent.id),
                attribution_trace: json!({"rule": "sub_affiliate_override", "recruitAffiliateId": recruit.id.to_string(), "percent": config.percent.to_decimal_string()}),
                paid_invoices: 0,
                approve_after: ctx.approve_after(),
                approved_at: None,
                refunded_at: None,
                created_at: ctx.now,
                updated_at: ctx.now,
            };
            tx.insert_conversion(&o)?;
            o
        }
    };
    over.add_commission(amount_of_override)?;
    over.paid_invoices = over.paid_invoices.saturating_add(1);
    if over.status == ConversionStatus::Refunded && amount_of_override > 0 {
        over.status = ConversionStatus::Pending;
        over.refunded_at = None;
        over.approve_after = ctx.approve_after();
    }
    over.updated_at = ctx.now;
    tx.update_conversion(&over)?;
    // The override's ledger carries the recruit's paid amount, so refunds claw it back in the
    // same proportion.
    insert_ledger(tx, ctx, &over, kind, amount, amount_of_override, key, None, occurred_at)?;
    if created {
        ctx.audit().emit(tx, "conversion.created", conversion_data(&over))?;
    }
    Ok(())
}

fn record_renewal(
    tx: &mut dyn Tx,
    ctx: &ApplyCtx,
    mut conversion: Conversion,
    input: &SaleInput,
    currency: Currency,
) -> Result<Applied, DomainError> {
    let org = ctx.org.id;
    // Checked before claiming, so a skipped renewal can be replayed once it is understood.
    if currency != conversion.currency {
        return Ok(Applied::Skipped(format!("renewal in {} for a {} subscription", currency.code(), conversion.currency.code())));
    }
    if !tx.claim_source(org, &input.source, ctx.now)? {
        return done("already recorded");
    }
    // A $0 invoice (a free month, a downgrade, a credit) earns nothing, not even a fixed fee,
    // and does not use up the recurring window.
    if input.amount > 0 {
        conversion.paid_invoices = conversion.paid_invoices.saturating_add(1);
    }
    let index = conversion.paid_invoices;
    let affiliate = tx.affiliate(org, conversion.affiliate_id)?;
    let program = tx.program(org, conversion.program_id)?;
    let commission = match (&affiliate, &program) {
        (Some(a), Some(p))
            if input.amount > 0
                && conversion.status != ConversionStatus::Denied
                && denial(a, p, None).is_none()
                && commission::invoice_earns(index, p.recurring_months, p.recurring_delay_invoices) =>
        {
            commission::commission_for(Money::new(input.amount, currency), a.custom_commission.unwrap_or(p.default_commission)).minor()
        }
        _ => 0,
    };
    conversion.add_commission(commission)?;
    if conversion.status == ConversionStatus::Refunded && commission > 0 {
        // A subscription that pays again after a full refund earns again.
        conversion.status = ConversionStatus::Pending;
        conversion.refunded_at = None;
        conversion.approve_after = ctx.approve_after();
    }
    conversion.updated_at = ctx.now;
    tx.update_conversion(&conversion)?;
    insert_ledger(tx, ctx, &conversion, LedgerKind::Renewal, input.amount, commission, &input.ledger_key, None, input.occurred_at)?;
    ctx.audit().record(
        tx,
        "conversion.renewed",
        "conversion",
        conversion.id.to_string(),
        None,
        Some(json!({"invoice": input.ledger_key, "index": index, "commissionCents": commission})),
    )?;
    if let (Some(a), Some(p)) = (&affiliate, &program) {
        if commission != 0 {
            record_override(
                tx,
                ctx,
                &conversion,
                a,
                p,
                LedgerKind::Renewal,
                input.amount,
                commission,
                &input.ledger_key,
                input.occurred_at,
            )?;
        }
    }
    done("renewal recorded")
}

#[allow(clippy::too_many_arguments)]
fn record_lead(
    tx: &mut dyn Tx,
    ctx: &ApplyCtx,
    input: &SaleInput,
    currency: Currency,
    decision: Decision,
    signals: Signals,
    mut trace: Value,
) -> Result<Applied, DomainError> {
    let org = ctx.org.id;
    let key = input.subscription_id.clone().or_else(|| input.customer_id.clone()).unwrap_or_else(|| input.external_id.clone());
    if !tx.claim_source(org, &format!("lead:{key}"), ctx.now)? {
        return done("lead already recorded");
    }
    let Some(affiliate) = tx.affiliate(org, decision.affiliate)? else {
        return done("the credited affiliate no longer exists");
    };
    let Some(program) = tx.program(org, affiliate.program_id)? else {
        return done("the credited affiliate's program no longer exists");
    };
    let denied = denial(&affiliate, &program, input.customer_email.as_deref());
    annotate(&mut trace, &decision, denied, None);
    let credit = Credit { affiliate: &affiliate, program: &program, decision: &decision, signals: &signals, denied };
    let lead = credited_conversion(ctx, input, &credit, ConversionType::LeadReward, currency, 0, 0, 0, trace);
    tx.insert_conversion(&lead)?;
    if let Some(code) = lead.affiliate_coupon_id {
        count_redemption(tx, ctx, code, input)?;
    }
    let audit = ctx.audit();
    audit.record(tx, "lead.created", "conversion", lead.id.to_string(), None, Some(conversion_data(&lead)))?;
    audit.emit(tx, "lead.created", conversion_data(&lead))?;
    done("lead created")
}

/// A subscription created with a 100 %-off code produces no payment: it is a lead. Other
/// subscriptions are credited when their invoices are paid.
fn record_subscription(tx: &mut dyn Tx, ctx: &ApplyCtx, sub: &SubscriptionFact) -> Result<Applied, DomainError> {
    if !sub.discounts.full_discount {
        return done("the sale is credited when its invoice is paid");
    }
    let input = SaleInput {
        source: format!("subscription:{}", sub.subscription_id),
        ledger_key: sub.subscription_id.clone(),
        external_id: sub.latest_invoice.clone().unwrap_or_else(|| sub.subscription_id.clone()),
        customer_id: sub.customer_id.clone(),
        customer_email: None,
        subscription_id: Some(sub.subscription_id.clone()),
        amount: 0,
        currency: sub.currency.clone().unwrap_or_else(|| "usd".to_owned()),
        codes: sub.discounts.promotion_codes.clone(),
        referrals: sub.referral.iter().cloned().collect(),
        occurred_at: ts(sub.created),
    };
    let Ok(currency) = Currency::parse(&input.currency) else {
        return Ok(Applied::Skipped(format!("currency {:?} is not supported", input.currency)));
    };
    let (signals, trace) = gather_signals(tx, ctx.org.id, &input.codes, &input.referrals, input.customer_id.as_deref(), None)?;
    match attribution::decide(&signals) {
        Some(decision) => record_lead(tx, ctx, &input, currency, decision, signals, trace),
        None => done("no affiliate is attributed"),
    }
}

fn record_refund(tx: &mut dyn Tx, ctx: &ApplyCtx, refund: &RefundFact) -> Result<Applied, DomainError> {
    let org = ctx.org.id;
    let key = refund.payment().to_owned();
    let Some(mut conversion) = tx.conversion_of_invoice(org, &key)? else {
        if tx.source_seen(org, &seen_key(&key))? {
            return done("the refunded payment credited no affiliate");
        }
        // The sale may not have been processed yet (events arrive out of order): it wakes
        // this refund when it is.
        let why = format!("waiting for the sale of payment {key}: no conversion records it yet");
        return Ok(Applied::Wait { payment: key, why });
    };
    if !refund.currency.eq_ignore_ascii_case(conversion.currency.code()) {
        return Ok(Applied::Skipped(format!("refund in {} of a {} sale", refund.currency, conversion.currency.code())));
    }
    let ledger = tx.ledger_of(org, conversion.id)?;
    let Some(sale) = ledger
        .iter()
        .find(|e| matches!(e.kind, LedgerKind::Initial | LedgerKind::Renewal) && e.stripe_invoice_id.as_deref() == Some(key.as_str()))
        .cloned()
    else {
        return done("the conversion has no sale for this payment");
    };
    let (seen, clawed) = refunds_seen(&ledger, &key);
    let total = refund.amount_refunded.clamp(0, sale.amount_minor);
    let newly_refunded = total - seen;
    if newly_refunded <= 0 {
        return done("refund already recorded");
    }
    let delta = commission::clawback_delta(sale.commission_minor, sale.amount_minor, total, clawed);
    insert_ledger(tx, ctx, &conversion, LedgerKind::Refund, -newly_refunded, delta, &key, Some(total), ts(refund.refunded_at))?;
    conversion.add_commission(delta)?;
    let fully_refunded_now = total >= sale.amount_minor && seen < sale.amount_minor;
    if fully_refunded_now && sale.kind == LedgerKind::Initial {
        if let Some(code) = conversion.affiliate_coupon_id {
            tx.add_redemption(org, code, -1, ctx.now)?;
        }
    }
    let mut ledger_after = ledger;
    ledger_after.push(LedgerEvent {
        id: LedgerEventId::from_uuid(uuid::Uuid::nil()),
        org_id: org,
        conversion_id: conversion.id,
        kind: LedgerKind::Refund,
        amount_minor: -newly_refunded,
        commission_minor: delta,
        stripe_invoice_id: Some(key.clone()),
        refunded_total: Some(total),
        occurred_at: ctx.now,
        created_at: ctx.now,
    });
    if everything_refunded(&ledger_after) && !matches!(conversion.status, ConversionStatus::Refunded | ConversionStatus::Denied) {
        conversion.status = ConversionStatus::Refunded;
        conversion.refunded_at = Some(ctx.now);
    }
    conversion.updated_at = ctx.now;
    tx.update_conversion(&conversion)?;
    for found in tx.overrides_of(org, conversion.id)? {
        let Some(mut over) = tx.conversion_for_update(org, found.id)? else { continue };
        let over_ledger = tx.ledger_of(org, over.id)?;
        let Some(over_sale) = over_ledger
            .iter()
            .find(|e| matches!(e.kind, LedgerKind::Initial | LedgerKind::Renewal) && e.stripe_invoice_id.as_deref() == Some(key.as_str()))
        else {
            continue;
        };
        let (_, over_clawed) = refunds_seen(&over_ledger, &key);
        let over_delta = commission::clawback_delta(over_sale.commission_minor, over_sale.amount_minor, total, over_clawed);
        if over_delta == 0 {
            continue;
        }
        insert_ledger(tx, ctx, &over, LedgerKind::Refund, -newly_refunded, over_delta, &key, Some(total), ts(refund.refunded_at))?;
        over.add_commission(over_delta)?;
        if conversion.status == ConversionStatus::Refunded && over.status != ConversionStatus::Refunded {
            over.status = ConversionStatus::Refunded;
            over.refunded_at = Some(ctx.now);
        }
        over.updated_at = ctx.now;
        tx.update_conversion(&over)?;
        ctx.audit().emit(tx, "conversion.refunded", conversion_data(&over))?;
    }
    let audit = ctx.audit();
    audit.record(
        tx,
        "conversion.refunded",
        "conversion",
        conversion.id.to_string(),
        None,
        Some(json!({"payment": key, "refundedTotal": total, "commissionCents": delta})),
    )?;
    audit.emit(tx, "conversion.refunded", conversion_data(&conversion))?;
    done("refund recorded")
}

/// The refunded amount already recorded for a payment, and the commission already clawed back.
fn refunds_seen(ledger: &[LedgerEvent], key: &str) -> (i64, i64) {
    ledger
        .iter()
        .filter(|e| e.kind == LedgerKind::Refund && e.stripe_invoice_id.as_deref() == Some(key))
        .fold((0, 0), |(seen, clawed), e| (seen.max(e.refunded_total.unwrap_or(0)), clawed.saturating_add(e.commission_minor)))
}

/// Whether everything the conversion earned was clawed back: every paid invoice that earned
/// commission was fully refunded (or, when none earned any, every paid invoice was).
fn everything_refunded(ledger: &[LedgerEvent]) -> bool {
    let all: Vec<&LedgerEvent> = ledger.iter().filter(|e| matches!(e.kind, LedgerKind::Initial | LedgerKind::Renewal)).collect();
    let earning: Vec<&LedgerEvent> = all.iter().copied().filter(|e| e.commission_minor != 0).collect();
    let sales = if earning.is_empty() { all } else { earning };
    !sales.is_empty()
        && sales.iter().all(|s| {
            let key = s.stripe_invoice_id.as_deref().unwrap_or("");
            refunds_seen(ledger, key).0 >= s.amount_minor
        })
}

fn sync_promotion_code(tx: &mut dyn Tx, ctx: &ApplyCtx, stripe_id: &str, active: bool) -> Result<Applied, DomainError> {
    let org = ctx.org.id;
    if active {
        // Rekomi decides which codes are live; a late or replayed event (or `.created`) must not
        // bring back a code revoked here.
        return done("activations at Stripe are not synced");
    }
    let Some(found) = tx.affiliate_coupon_by_stripe_id(org, stripe_id)? else {
        return done("not a Rekomi code");
    };
    let Some(mut code) = tx.affiliate_coupon_for_update(org, found.id)? else {
        return done("not a Rekomi code");
    };
    if !code.is_active {
        return done("already inactive");
    }
    code.revoke(ctx.now);
    tx.update_affiliate_coupon(&code)?;
    let audit = ctx.audit();
    audit.record(tx, "affiliate_coupon.synced", "affiliate_coupon", code.id.to_string(), None, Some(affiliate_coupon_data(&code)))?;
    audit.emit(tx, "affiliate_coupon.updated", affiliate_coupon_data(&code))?;
    audit.emit(tx, "affiliate_coupon.deactivated", affiliate_coupon_data(&code))?;
    done("code synced")
}

fn sync_deleted_coupon(tx: &mut dyn Tx, ctx: &ApplyCtx, stripe_id: &str) -> Result<Applied, DomainError> {
    let org = ctx.org.id;
    let audit = ctx.audit();
    let mut touched = false;
    for coupon in tx.campaign_coupons_by_stripe_id(stripe_id)?.into_iter().filter(|c| c.org_id == org) {
        let Some(mut c) = tx.campaign_coupon_for_update(org, coupon.id)? else { continue };
        if c.is_active {
            c.is_active = false;
            c.archived_at = Some(ctx.now);
            c.updated_at = ctx.now;
            tx.update_campaign_coupon(&c)?;
            audit.record(tx, "campaign_coupon.deleted_at_stripe", "campaign_coupon", c.id.to_string(), None, None)?;
        }
        for code in super::coupons::active_codes(tx, org, crate::ports::store::CouponSelector::CampaignCoupon(c.id))? {
            let Some(mut code) = tx.affiliate_coupon_for_update(org, code.id)? else { continue };
            code.revoke(ctx.now);
            tx.update_affiliate_coupon(&code)?;
            audit.emit(tx, "affiliate_coupon.deleted", affiliate_coupon_data(&code))?;
        }
        touched = true;
    }
    if touched {
        done("coupon closed")
    } else {
        done("not a Rekomi coupon")
    }
}
