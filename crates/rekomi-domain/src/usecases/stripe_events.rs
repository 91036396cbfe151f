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

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use crate::actor::AuditActor;
use crate::affiliate::{Affiliate, AffiliateStatus};
use crate::attribution::{self, CouponSignal, Decision, Signals};
use crate::audit::AuditEntry;
use crate::commission;
use crate::conversion::{Conversion, ConversionStatus, ConversionType, LedgerEvent, LedgerKind, StatusChange, SubAffiliateConfig};
use crate::coupon::{AffiliateCoupon, CampaignCoupon, CouponCode};
use crate::error::{DomainError, FieldError};
use crate::ids::{AffiliateCouponId, AffiliateId, AuditId, CampaignCouponId, ConversionId, LedgerEventId, OrgId, ProgramId};
use crate::inbox::{InboxEvent, InboxStatus};
use crate::money::{Currency, Money};
use crate::org::Organization;
use crate::outbound::{Delivery, OutboxEvent, WebhookEndpoint};
use crate::ports::events::{CheckoutFact, InvoiceFact, PromotionCodeRef, RefundFact, StripeFact, SubscriptionFact};
use crate::ports::{Entropy, GatewayContext, GatewayError, StoreError, Tx};
use crate::program::Program;
use crate::signature;

use super::outbox::{self, affiliate_coupon_data, conversion_data};
use super::{Audit, Services};

/// What ingestion did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestOutcome {
    /// The Stripe event id.
    pub event_id: String,
    /// Whether the id was already stored (a redelivery: nothing changed).
    pub duplicate: bool,
}

fn invalid_signature(message: &str) -> DomainError {
    FieldError::coded("Stripe-Signature", "invalid_signature", message).into()
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

    /// Stripe lookups a fact needs, made outside any transaction: promotion codes that the
    /// payload names only as discount ids, the invoice of a refunded charge, and then the
    /// customer's referral metadata for a new sale whose payload names no referral.
    pub(super) async fn enrich(&self, stripe_account: Option<String>, fact: StripeFact) -> Result<StripeFact, GatewayError> {
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
                if c.approve_if_due(now) == StatusChange::Unchanged {
                    continue;
                }
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

pub(super) fn customer_of(fact: &StripeFact) -> Option<String> {
    match fact {
        StripeFact::InvoicePaid(i) => i.customer_id.clone(),
        StripeFact::SubscriptionCreated(s) => s.customer_id.clone(),
        StripeFact::CheckoutCompleted(c) => c.customer_id.clone(),
        StripeFact::ChargeRefunded(r) => r.customer_id.clone(),
        _ => None,
    }
}

pub(super) fn promotion_codes_of(fact: &StripeFact) -> &[PromotionCodeRef] {
    match fact {
        StripeFact::InvoicePaid(i) => &i.discounts.promotion_codes,
        StripeFact::SubscriptionCreated(s) => &s.discounts.promotion_codes,
        StripeFact::CheckoutCompleted(c) => &c.discounts.promotion_codes,
        _ => &[],
    }
}

/// What applying one event leaves for the end of its batch's transaction (see
/// `stripe_worker`): counter changes on rows many events share, refunds to wake, and the
/// append-only rows (audit entries, outbox events and their deliveries) that nothing in the
/// batch reads back, written as one multi-row insert each.
#[derive(Default)]
pub(super) struct Effects {
    /// The organization the event was applied for.
    pub(super) org: Option<OrgId>,
    /// Redemption count changes, by code.
    pub(super) redemptions: BTreeMap<(OrgId, AffiliateCouponId), i64>,
    /// Refunds to wake: the Stripe account, the organization of the sale, its payments.
    pub(super) wakes: Vec<(Option<String>, OrgId, Vec<String>)>,
    /// Audit entries.
    pub(super) audit: Vec<AuditEntry>,
    /// Outbox events.
    pub(super) outbox: Vec<OutboxEvent>,
    /// Their deliveries.
    pub(super) deliveries: Vec<Delivery>,
}

/// Rows a batch reads again and again (the code every sale of a popular link redeems, its
/// coupon, affiliate and program, the organization's endpoints), read once per batch. Only the
/// sale path reads through it; anything that changes such rows forgets it all, and so does an
/// event whose savepoint is undone.
#[derive(Default)]
pub(super) struct Lookups {
    codes: HashMap<(OrgId, String), Option<AffiliateCoupon>>,
    campaign_coupons: HashMap<(OrgId, CampaignCouponId), Option<CampaignCoupon>>,
    affiliates: HashMap<(OrgId, AffiliateId), Option<Affiliate>>,
    programs: HashMap<(OrgId, ProgramId), Option<Program>>,
    sub_affiliate_configs: HashMap<(OrgId, ProgramId), SubAffiliateConfig>,
    endpoints: HashMap<OrgId, Vec<WebhookEndpoint>>,
}

/// Looks `key` up in `map`, else reads it with `read` and remembers it.
fn cached<K: std::hash::Hash + Eq, V: Clone>(
    cell: &RefCell<Lookups>,
    map: fn(&mut Lookups) -> &mut HashMap<K, V>,
    key: K,
    read: impl FnOnce() -> Result<V, StoreError>,
) -> Result<V, StoreError> {
    if let Some(found) = map(&mut cell.borrow_mut()).get(&key) {
        return Ok(found.clone());
    }
    let value = read()?;
    map(&mut cell.borrow_mut()).insert(key, value.clone());
    Ok(value)
}

/// Everything `apply` needs besides the transaction.
pub(super) struct ApplyCtx<'b> {
    org: Organization,
    now: OffsetDateTime,
    entropy: Arc<dyn Entropy>,
    effects: RefCell<Effects>,
    lookups: &'b RefCell<Lookups>,
}

impl<'b> ApplyCtx<'b> {
    pub(super) fn new(org: Organization, now: OffsetDateTime, entropy: Arc<dyn Entropy>, lookups: &'b RefCell<Lookups>) -> Self {
        let effects = RefCell::new(Effects { org: Some(org.id), ..Effects::default() });
        Self { org, now, entropy, effects, lookups }
    }

    pub(super) fn into_effects(self) -> Effects {
        self.effects.into_inner()
    }

    /// Changes a code's redemption count when the batch commits.
    fn redeem(&self, code: AffiliateCouponId, delta: i64) {
        *self.effects.borrow_mut().redemptions.entry((self.org.id, code)).or_default() += delta;
    }

    /// An audit entry by the system, written when the batch commits.
    fn record(&self, action: &str, entity_type: &'static str, entity_id: String, after: Option<Value>) {
        self.effects.borrow_mut().audit.push(AuditEntry {
            id: AuditId::from_uuid(self.uuid()),
            org_id: self.org.id,
            actor: AuditActor::System,
            action: action.to_owned(),
            entity_type,
            entity_id,
            before: None,
            after,
            created_at: self.now,
        });
    }

    /// An outbound event, fanned out to the organization's endpoints, written when the batch
    /// commits.
    fn emit(&self, tx: &mut dyn Tx, event_type: &str, data: Value) -> Result<(), StoreError> {
        let org = self.org.id;
        let endpoints = cached(self.lookups, |l| &mut l.endpoints, org, || tx.endpoints(org))?;
        let (event, deliveries) = outbox::fan_out(org, event_type, data, &endpoints, self.now, self.entropy.as_ref());
        let mut effects = self.effects.borrow_mut();
        effects.outbox.push(event);
        effects.deliveries.extend(deliveries);
        Ok(())
    }

    fn code_by_stripe_id(&self, tx: &mut dyn Tx, stripe_id: &str) -> Result<Option<AffiliateCoupon>, StoreError> {
        let org = self.org.id;
        cached(self.lookups, |l| &mut l.codes, (org, stripe_id.to_owned()), || tx.affiliate_coupon_by_stripe_id(org, stripe_id))
    }

    fn campaign_coupon(&self, tx: &mut dyn Tx, id: CampaignCouponId) -> Result<Option<CampaignCoupon>, StoreError> {
        let org = self.org.id;
        cached(self.lookups, |l| &mut l.campaign_coupons, (org, id), || tx.campaign_coupon(org, id))
    }

    fn affiliate(&self, tx: &mut dyn Tx, id: AffiliateId) -> Result<Option<Affiliate>, StoreError> {
        let org = self.org.id;
        cached(self.lookups, |l| &mut l.affiliates, (org, id), || tx.affiliate(org, id))
    }

    fn program(&self, tx: &mut dyn Tx, id: ProgramId) -> Result<Option<Program>, StoreError> {
        let org = self.org.id;
        cached(self.lookups, |l| &mut l.programs, (org, id), || tx.program(org, id))
    }

    fn sub_affiliate_config(&self, tx: &mut dyn Tx, program: ProgramId) -> Result<SubAffiliateConfig, StoreError> {
        let org = self.org.id;
        cached(self.lookups, |l| &mut l.sub_affiliate_configs, (org, program), || tx.sub_affiliate_config(org, program))
    }

    /// Forgets every row read through [`Lookups`] (something may have changed them).
    fn forget_lookups(&self) {
        *self.lookups.borrow_mut() = Lookups::default();
    }

    fn uuid(&self) -> uuid::Uuid {
        self.entropy.uuid_v7(self.now)
    }

    fn approve_after(&self) -> OffsetDateTime {
        self.now + Duration::days(i64::from(self.org.payout_grace_days))
    }
}

/// What applying a fact did.
pub(super) enum Applied {
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

pub(super) fn apply(tx: &mut dyn Tx, ctx: &ApplyCtx<'_>, fact: &StripeFact) -> Result<Applied, DomainError> {
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
fn count_redemption(
    tx: &mut dyn Tx,
    ctx: &ApplyCtx<'_>,
    code: crate::ids::AffiliateCouponId,
    input: &SaleInput,
) -> Result<(), DomainError> {
    let holder = input.subscription_id.as_deref().or(input.customer_id.as_deref()).unwrap_or(&input.ledger_key);
    if tx.claim_source(ctx.org.id, &format!("redemption:{code}:{holder}"), ctx.now)? {
        ctx.redeem(code, 1);
    }
    Ok(())
}

/// The signals a sale carries, looked up, with the trace that records them.
fn gather_signals(
    tx: &mut dyn Tx,
    ctx: &ApplyCtx<'_>,
    codes: &[PromotionCodeRef],
    referrals: &[String],
    customer_id: Option<&str>,
    email: Option<&str>,
) -> Result<(Signals, Value), DomainError> {
    let org = ctx.org.id;
    let mut coupon = None;
    for code in codes {
        let mut found = ctx.code_by_stripe_id(tx, &code.id)?;
        if found.is_none() {
            if let Some(parsed) = code.code.as_deref().and_then(|c| CouponCode::parse(c).ok()) {
                found = tx.affiliate_coupon_by_code(org, &parsed)?;
            }
        }
        if let Some(c) = found {
            let overrides = ctx.campaign_coupon(tx, c.campaign_coupon_id)?.is_none_or(|cc| cc.overrides_click_attribution);
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

fn record_sale(tx: &mut dyn Tx, ctx: &ApplyCtx<'_>, input: SaleInput) -> Result<Applied, DomainError> {
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
        gather_signals(tx, ctx, &input.codes, &input.referrals, input.customer_id.as_deref(), input.customer_email.as_deref())?;
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
    let Some(affiliate) = ctx.affiliate(tx, decision.affiliate)? else {
        return done("the credited affiliate no longer exists");
    };
    let Some(program) = ctx.program(tx, affiliate.program_id)? else {
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
    ctx.record("conversion.created", "conversion", conversion.id.to_string(), Some(conversion_data(&conversion)));
    ctx.emit(tx, "conversion.created", conversion_data(&conversion))?;
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
    ctx: &ApplyCtx<'_>,
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
    ctx: &ApplyCtx<'_>,
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
    ctx: &ApplyCtx<'_>,
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
    let config = ctx.sub_affiliate_config(tx, program.id)?;
    if !config.enabled || config.percent.get() == 0 {
        return Ok(());
    }
    let Some(recruiter_id) = tx.recruiter_of(org, recruit.id)? else { return Ok(()) };
    let Some(recruiter) = ctx.affiliate(tx, recruiter_id)? else { return Ok(()) };
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
    over.credit(amount_of_override, true, ctx.now, ctx.approve_after())?;
    tx.update_conversion(&over)?;
    // The override's ledger carries the recruit's paid amount, so refunds claw it back in the
    // same proportion.
    insert_ledger(tx, ctx, &over, kind, amount, amount_of_override, key, None, occurred_at)?;
    if created {
        ctx.emit(tx, "conversion.created", conversion_data(&over))?;
    }
    Ok(())
}

fn record_renewal(
    tx: &mut dyn Tx,
    ctx: &ApplyCtx<'_>,
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
    let affiliate = ctx.affiliate(tx, conversion.affiliate_id)?;
    let program = ctx.program(tx, conversion.program_id)?;
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
    // A subscription that pays again after a full refund earns again.
    conversion.credit(commission, false, ctx.now, ctx.approve_after())?;
    tx.update_conversion(&conversion)?;
    insert_ledger(tx, ctx, &conversion, LedgerKind::Renewal, input.amount, commission, &input.ledger_key, None, input.occurred_at)?;
    ctx.record(
        "conversion.renewed",
        "conversion",
        conversion.id.to_string(),
        Some(json!({"invoice": input.ledger_key, "index": index, "commissionCents": commission})),
    );
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
    ctx: &ApplyCtx<'_>,
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
    let Some(affiliate) = ctx.affiliate(tx, decision.affiliate)? else {
        return done("the credited affiliate no longer exists");
    };
    let Some(program) = ctx.program(tx, affiliate.program_id)? else {
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
    ctx.record("lead.created", "conversion", lead.id.to_string(), Some(conversion_data(&lead)));
    ctx.emit(tx, "lead.created", conversion_data(&lead))?;
    done("lead created")
}

/// A subscription created with a 100 %-off code produces no payment: it is a lead. Other
/// subscriptions are credited when their invoices are paid.
fn record_subscription(tx: &mut dyn Tx, ctx: &ApplyCtx<'_>, sub: &SubscriptionFact) -> Result<Applied, DomainError> {
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
    let (signals, trace) = gather_signals(tx, ctx, &input.codes, &input.referrals, input.customer_id.as_deref(), None)?;
    match attribution::decide(&signals) {
        Some(decision) => record_lead(tx, ctx, &input, currency, decision, signals, trace),
        None => done("no affiliate is attributed"),
    }
}

fn record_refund(tx: &mut dyn Tx, ctx: &ApplyCtx<'_>, refund: &RefundFact) -> Result<Applied, DomainError> {
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
    let fully_refunded_now = total >= sale.amount_minor && seen < sale.amount_minor;
    if fully_refunded_now && sale.kind == LedgerKind::Initial {
        if let Some(code) = conversion.affiliate_coupon_id {
            ctx.redeem(code, -1);
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
    conversion.claw_back(delta, everything_refunded(&ledger_after), ctx.now)?;
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
        // An override follows its parent: refunded once the parent is.
        over.claw_back(over_delta, conversion.status == ConversionStatus::Refunded, ctx.now)?;
        tx.update_conversion(&over)?;
        ctx.emit(tx, "conversion.refunded", conversion_data(&over))?;
    }
    ctx.record(
        "conversion.refunded",
        "conversion",
        conversion.id.to_string(),
        Some(json!({"payment": key, "refundedTotal": total, "commissionCents": delta})),
    );
    ctx.emit(tx, "conversion.refunded", conversion_data(&conversion))?;
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

fn sync_promotion_code(tx: &mut dyn Tx, ctx: &ApplyCtx<'_>, stripe_id: &str, active: bool) -> Result<Applied, DomainError> {
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
    if !code.revoke(ctx.now) {
        return done("already inactive");
    }
    tx.update_affiliate_coupon(&code)?;
    ctx.forget_lookups();
    ctx.record("affiliate_coupon.synced", "affiliate_coupon", code.id.to_string(), Some(affiliate_coupon_data(&code)));
    ctx.emit(tx, "affiliate_coupon.updated", affiliate_coupon_data(&code))?;
    ctx.emit(tx, "affiliate_coupon.deactivated", affiliate_coupon_data(&code))?;
    done("code synced")
}

fn sync_deleted_coupon(tx: &mut dyn Tx, ctx: &ApplyCtx<'_>, stripe_id: &str) -> Result<Applied, DomainError> {
    let org = ctx.org.id;
    ctx.forget_lookups();
    let mut touched = false;
    for coupon in tx.campaign_coupons_by_stripe_id(stripe_id)?.into_iter().filter(|c| c.org_id == org) {
        let Some(mut c) = tx.campaign_coupon_for_update(org, coupon.id)? else { continue };
        if c.archive(ctx.now) {
            tx.update_campaign_coupon(&c)?;
            ctx.record("campaign_coupon.deleted_at_stripe", "campaign_coupon", c.id.to_string(), None);
        }
        for code in super::coupons::active_codes(tx, org, crate::ports::store::CouponSelector::CampaignCoupon(c.id))? {
            let Some(mut code) = tx.affiliate_coupon_for_update(org, code.id)? else { continue };
            code.revoke(ctx.now);
            tx.update_affiliate_coupon(&code)?;
            ctx.emit(tx, "affiliate_coupon.deleted", affiliate_coupon_data(&code))?;
        }
        touched = true;
    }
    if touched {
        done("coupon closed")
    } else {
        done("not a Rekomi coupon")
    }
}
