//! Recording a sale, a renewal or a lead from a Stripe fact: attribution (pure rules), the
//! commission (pure), the conversion and its ledger, the sub-affiliate override, the
//! redemption, and the audit and outbound events. Server-to-server sales (`s2s.rs`) name their
//! affiliate and are credited through the same [`credit_sale`].
//!
//! Kept as one file of about 630 lines: sales, renewals and leads share its private helpers
//! (`Credit`, `credited_conversion`, `annotate`, `denial`, the override and the ledger entry),
//! and splitting them apart would only widen their visibility.

use crate::audit::AuditAction;
use crate::outbound::EventType;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::affiliates::{Affiliate, AffiliateStatus};
use crate::conversions::attribution::{self, CouponSignal, Decision, Signals};
use crate::conversions::commission;
use crate::conversions::{Conversion, ConversionStatus, ConversionType, LedgerEvent, LedgerKind};
use crate::coupons::CouponCode;
use crate::kernel::error::DomainError;
use crate::kernel::ids::{AffiliateId, ConversionId, LedgerEventId};
use crate::kernel::money::{Currency, Money};
use crate::kernel::stripe_ids::{StripeCustomerId, StripePaymentRef, StripeSubscriptionId};
use crate::outbound::outbox::conversion_data;
use crate::ports::gateway::Settlement;
use crate::ports::Tx;
use crate::programs::{within_cookie_window, Program};
use crate::stripe_inbox::apply::{done, ts, Applied, ApplyCtx};
use crate::stripe_inbox::facts::{CheckoutFact, CheckoutMode, InvoiceFact, PromotionCodeRef, SubscriptionFact};
use crate::tracking::S2sConversion;
use crate::traffic::ClickId;

/// A payment (or a free signup) to credit.
pub(crate) struct SaleInput {
    /// Claimed once per organization: `invoice:in_…` or `checkout:cs_…`.
    source: String,
    /// The payment refunds find the sale by (see [`StripePaymentRef`]): the invoice, else the
    /// payment intent, else the checkout session. `None` for the lead of a subscription created
    /// at 100 % off, which no payment carries.
    ledger_key: Option<StripePaymentRef>,
    /// `externalEventId`: the invoice or the checkout session.
    external_id: String,
    customer_id: Option<StripeCustomerId>,
    customer_email: Option<String>,
    subscription_id: Option<StripeSubscriptionId>,
    amount: i64,
    currency: String,
    codes: Vec<PromotionCodeRef>,
    referrals: Vec<String>,
    occurred_at: OffsetDateTime,
    /// The sender named the affiliate itself (server-to-server): no attribution method.
    direct: bool,
    /// How the payment settled when Stripe converted it (its rate to the home currency).
    settlement: Option<Settlement>,
}

impl SaleInput {
    pub(crate) fn from_invoice(i: &InvoiceFact) -> Self {
        Self {
            source: format!("invoice:{}", i.invoice_id),
            ledger_key: Some(StripePaymentRef::Invoice(i.invoice_id.clone())),
            external_id: i.invoice_id.to_string(),
            customer_id: i.customer_id.clone(),
            customer_email: i.customer_email.clone(),
            subscription_id: i.subscription_id.clone(),
            amount: i.amount_paid,
            currency: i.currency.clone(),
            codes: i.discounts.promotion_codes.clone(),
            referrals: i.referral.iter().cloned().collect(),
            occurred_at: ts(i.paid_at),
            direct: false,
            settlement: i.settlement.clone(),
        }
    }

    /// A paid checkout. A subscription checkout credits its first invoice (the `invoice.paid`
    /// of the same invoice is then recognised as already recorded, and vice versa), so the
    /// session's referral metadata and `client_reference_id` are not lost.
    pub(crate) fn from_checkout(c: &CheckoutFact) -> Option<Self> {
        if !c.paid {
            return None;
        }
        // Whenever the session produced an invoice (subscriptions, and one-time payments with
        // invoice creation), the invoice is the sale: its `invoice.paid` is then the same fact,
        // and refunds find it through the invoice-payments API.
        let (source, ledger_key) = match (c.mode, &c.invoice_id) {
            (_, Some(invoice)) => (format!("invoice:{invoice}"), StripePaymentRef::Invoice(invoice.clone())),
            (CheckoutMode::Subscription, None) => return None,
            _ => (
                format!("checkout:{}", c.session_id),
                match &c.payment_intent_id {
                    Some(intent) => StripePaymentRef::PaymentIntent(intent.clone()),
                    None => StripePaymentRef::CheckoutSession(c.session_id.clone()),
                },
            ),
        };
        let mut referrals: Vec<String> = c.referral.iter().cloned().collect();
        referrals.extend(c.client_reference_id.iter().cloned());
        Some(Self {
            source,
            ledger_key: Some(ledger_key),
            external_id: c.invoice_id.as_ref().map_or_else(|| c.session_id.to_string(), ToString::to_string),
            customer_id: c.customer_id.clone(),
            customer_email: c.customer_email.clone(),
            subscription_id: c.subscription_id.clone(),
            amount: c.amount_total,
            currency: c.currency.clone().unwrap_or_default(),
            codes: c.discounts.promotion_codes.clone(),
            referrals,
            occurred_at: ts(c.created),
            direct: false,
            settlement: None,
        })
    }
}

impl SaleInput {
    /// An identified signup: no payment, known by `source` (its dedupe key) and the email a
    /// later sale is matched against.
    pub(crate) fn from_lead(source: String, external_id: String, email: &str, currency: Currency, occurred_at: OffsetDateTime) -> Self {
        Self {
            source,
            ledger_key: None,
            external_id,
            customer_id: None,
            customer_email: Some(email.to_owned()),
            subscription_id: None,
            amount: 0,
            currency: currency.code().to_owned(),
            codes: Vec::new(),
            referrals: Vec::new(),
            occurred_at,
            direct: false,
            settlement: None,
        }
    }

    /// A reward the program pays by itself (a day's clicks): no payment, no email.
    pub(crate) fn from_reward(source: String, external_id: String, currency: Currency, occurred_at: OffsetDateTime) -> Self {
        Self { customer_email: None, ..Self::from_lead(source, external_id, "", currency, occurred_at) }
    }

    pub(crate) fn occurred_at(&self) -> OffsetDateTime {
        self.occurred_at
    }

    /// A server-to-server sale: a one-time payment the sender names the affiliate of, known by
    /// its `externalEventId`, with no Stripe objects.
    pub(crate) fn from_s2s(sale: &S2sConversion, occurred_at: OffsetDateTime) -> Self {
        Self {
            source: sale.source(),
            ledger_key: None,
            external_id: sale.external_event_id().to_owned(),
            customer_id: None,
            customer_email: None,
            subscription_id: None,
            amount: sale.amount_minor(),
            currency: sale.currency().code().to_owned(),
            codes: Vec::new(),
            referrals: Vec::new(),
            occurred_at,
            direct: true,
            settlement: None,
        }
    }

    /// The source claimed once per organization.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }
}

/// The marker of a payment that was processed but credited nobody.
pub(crate) fn seen_key(payment: &StripePaymentRef) -> String {
    format!("seen:{payment}")
}

/// Counts a code's redemption once per subscription (or customer, or payment): a free trial's
/// lead and its first paid invoice are one redemption at Stripe.
fn count_redemption(
    tx: &mut dyn Tx,
    ctx: &ApplyCtx<'_>,
    code: crate::kernel::ids::AffiliateCouponId,
    input: &SaleInput,
) -> Result<(), DomainError> {
    let holder = input
        .subscription_id
        .as_ref()
        .map(StripeSubscriptionId::as_str)
        .or(input.customer_id.as_ref().map(StripeCustomerId::as_str))
        .or(input.ledger_key.as_ref().map(StripePaymentRef::as_str))
        .unwrap_or(&input.external_id);
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
    customer_id: Option<&StripeCustomerId>,
    email: Option<&str>,
    occurred_at: OffsetDateTime,
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
    let mut click = None;
    let mut clicks_seen = Vec::new();
    for raw in referrals {
        let raw = raw.trim();
        if let Some(id) = ClickId::parse(raw) {
            let Some(found) = tx.click(org, id)? else {
                clicks_seen.push(json!({"clickId": raw, "found": false}));
                continue;
            };
            let window = ctx.program(tx, found.program_id)?.map_or(0, |p| p.cookie_window_days);
            let live = found.is_within_cookie_window(window, occurred_at);
            clicks_seen.push(json!({"clickId": raw, "found": true, "affiliateId": found.affiliate_id.to_string(), "clickedAt": found.clicked_at.format(&Rfc3339).unwrap_or_default(), "cookieWindowDays": window, "withinWindow": live}));
            if live {
                referral = Some(found.affiliate_id);
                referral_ref = Some(raw.to_owned());
                click = Some(id);
                break;
            }
        } else if let Some(a) = tx.affiliate_by_link_slug(org, raw)? {
            referral = Some(a.id);
            referral_ref = Some(raw.to_owned());
            break;
        }
    }
    let history = tx.affiliate_of_customer(org, customer_id, email)?;
    let (email_match, email_trace) = email_match(tx, ctx, email, occurred_at)?;
    let trace = json!({
        "promotionCodes": codes.iter().map(|c| json!({"id": c.id.as_str(), "code": c.code})).collect::<Vec<_>>(),
        "coupon": coupon.as_ref().map(|c| json!({"affiliateCouponId": c.coupon.to_string(), "code": c.code, "affiliateId": c.affiliate.to_string(), "overridesClickAttribution": c.overrides_click})),
        "referralRefs": referrals,
        "referral": referral.map(|a| json!({"ref": referral_ref, "affiliateId": a.to_string()})),
        "clicks": clicks_seen,
        "customerHistory": history.map(|a| a.to_string()),
        "emailMatch": email_trace,
        "stripeCustomerId": customer_id.map(StripeCustomerId::as_str),
    });
    Ok((Signals { coupon, referral, click, customer_history: history, email_match }, trace))
}

/// The affiliate of the latest identified signup with the customer's `email`, when the sale at
/// `occurred_at` is inside that lead's program's cookie window; and what the trace says of it.
fn email_match(
    tx: &mut dyn Tx,
    ctx: &ApplyCtx<'_>,
    email: Option<&str>,
    occurred_at: OffsetDateTime,
) -> Result<(Option<AffiliateId>, Value), DomainError> {
    let Some(lead) = email.map(|e| tx.lead_signup_by_email(ctx.org.id, e)).transpose()?.flatten() else {
        return Ok((None, Value::Null));
    };
    let window = ctx.program(tx, lead.program_id)?.map_or(0, |p| p.cookie_window_days);
    let live = within_cookie_window(lead.created_at, occurred_at, window);
    let trace = json!({
        "leadId": lead.id.to_string(),
        "affiliateId": lead.affiliate_id.to_string(),
        "createdAt": lead.created_at.format(&Rfc3339).unwrap_or_default(),
        "cookieWindowDays": window,
        "withinWindow": live,
    });
    Ok((live.then_some(lead.affiliate_id), trace))
}

/// Why a credited affiliate earns nothing.
pub(crate) fn denial(affiliate: &Affiliate, program: &Program, customer_email: Option<&str>) -> Option<&'static str> {
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

pub(crate) fn record_sale(tx: &mut dyn Tx, ctx: &ApplyCtx<'_>, input: SaleInput) -> Result<Applied, DomainError> {
    let org = ctx.org.id;
    let Ok(currency) = Currency::parse(&input.currency) else {
        return Ok(Applied::Skipped(format!("currency {:?} is not supported", input.currency)));
    };
    // Sales come from invoices and checkouts, which always name their payment.
    let Some(payment) = input.ledger_key.clone() else {
        return done("no payment to record");
    };
    if let Some(sub) = &input.subscription_id {
        if let Some(conversion) = tx.sale_conversion_of_subscription(org, sub)? {
            return record_renewal(tx, ctx, conversion, &input, &payment, currency);
        }
    }
    let (signals, trace) = gather_signals(
        tx,
        ctx,
        &input.codes,
        &input.referrals,
        input.customer_id.as_ref(),
        input.customer_email.as_deref(),
        input.occurred_at,
    )?;
    let Some(decision) = attribution::decide(&signals) else {
        // Remembered so a refund of this payment is recognised as nobody's, not retried.
        tx.claim_source(org, &seen_key(&payment), ctx.now)?;
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
    let credit = Credit { affiliate: &affiliate, program: &program, decision: &decision, signals: &signals, denied: None };
    credit_sale(tx, ctx, &input, credit, currency, Some(&payment), trace)?;
    done("conversion created")
}

/// Credits a claimed sale to `credit.affiliate` by its program's rules (its `denied` is decided
/// here): the commission, the conversion and its initial ledger entry, the audit entry and
/// `conversion.created`, the recruiter's override, and the code's redemption. `payment` is what
/// refunds find the sale by (`None` for a server-to-server sale, which Stripe never refunds).
pub(crate) fn credit_sale(
    tx: &mut dyn Tx,
    ctx: &ApplyCtx<'_>,
    input: &SaleInput,
    credit: Credit<'_>,
    currency: Currency,
    payment: Option<&StripePaymentRef>,
    mut trace: Value,
) -> Result<Conversion, DomainError> {
    let (affiliate, program, decision) = (credit.affiliate, credit.program, credit.decision);
    let denied = denial(affiliate, program, input.customer_email.as_deref());
    let kind = if input.subscription_id.is_some() { ConversionType::Recurring } else { ConversionType::OneTime };
    let rate = affiliate.custom_commission.unwrap_or(program.default_commission);
    let earns = kind == ConversionType::OneTime || commission::invoice_earns(1, program.recurring_months, program.recurring_delay_invoices);
    let commission =
        if denied.is_none() && earns { commission::commission_for(Money::new(input.amount, currency), rate).minor() } else { 0 };
    annotate(&mut trace, decision, denied, Some((rate.kind.as_str(), rate.value.to_decimal_string(), earns)));
    if input.direct {
        if let Some(t) = trace.as_object_mut() {
            t.insert("method".into(), Value::Null);
        }
    }
    let credit = Credit { denied, ..credit };
    let conversion = credited_conversion(ctx, input, &credit, kind, currency, input.amount, commission, 1, trace);
    tx.insert_conversion(&conversion)?;
    let payable_after = ctx.payable_after(input.occurred_at);
    insert_ledger(
        tx,
        ctx,
        &conversion,
        LedgerKind::Initial,
        input.amount,
        commission,
        payment,
        None,
        input.occurred_at,
        payable_after,
        input.settlement.as_ref(),
    )?;
    ctx.record(AuditAction::ConversionCreated, "conversion", conversion.id.to_string(), Some(conversion_data(&conversion)));
    ctx.emit(tx, EventType::ConversionCreated, conversion_data(&conversion))?;
    if denied.is_none() && commission != 0 {
        record_override(
            tx,
            ctx,
            &conversion,
            affiliate,
            program,
            LedgerKind::Initial,
            input.amount,
            commission,
            payment,
            input.occurred_at,
            input.settlement.as_ref(),
        )?;
    }
    // Last: a popular code's counter row is shared by every sale with it, so its lock is held
    // for as short a time as possible.
    if let Some(code) = conversion.affiliate_coupon_id {
        count_redemption(tx, ctx, code, input)?;
    }
    Ok(conversion)
}

/// Who a payment credits and how: what a sale and a lead conversion share.
pub(crate) struct Credit<'a> {
    pub(crate) affiliate: &'a Affiliate,
    pub(crate) program: &'a Program,
    pub(crate) decision: &'a Decision,
    pub(crate) signals: &'a Signals,
    pub(crate) denied: Option<&'static str>,
}

/// A new conversion credited to `credit.affiliate` for `input`; denied conversions earn nothing
/// and say why.
#[allow(clippy::too_many_arguments)]
pub(crate) fn credited_conversion(
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
        attribution_method: (!input.direct).then(|| credit.decision.method.as_str().to_owned()),
        coupon_code: credit.decision.coupon.as_ref().map(|c| c.code.clone()),
        affiliate_coupon_id: credit.signals.coupon.as_ref().map(|c| c.coupon),
        stripe_customer_id: input.customer_id.clone(),
        stripe_subscription_id: input.subscription_id.clone(),
        external_event_id: Some(input.external_id.clone()),
        customer_email: input.customer_email.clone(),
        denial_reason: credit.denied.map(str::to_owned),
        parent_conversion_id: None,
        attribution_trace: trace,
        click_id: credit.decision.click,
        paid_invoices,
        approve_after: ctx.approve_after(),
        approved_at: None,
        refunded_at: None,
        created_at: ctx.now,
        updated_at: ctx.now,
    }
}

pub(crate) fn annotate(trace: &mut Value, decision: &Decision, denied: Option<&str>, rate: Option<(&str, String, bool)>) {
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
pub(crate) fn insert_ledger(
    tx: &mut dyn Tx,
    ctx: &ApplyCtx<'_>,
    conversion: &Conversion,
    kind: LedgerKind,
    amount: i64,
    commission: i64,
    key: Option<&StripePaymentRef>,
    refunded_total: Option<i64>,
    occurred_at: OffsetDateTime,
    payable_after: OffsetDateTime,
    settlement: Option<&Settlement>,
) -> Result<(), DomainError> {
    let home = ctx.org.home_currency;
    // Stripe's own rate wins when the balance received the home currency.
    let fx = match settlement.filter(|s| s.currency.eq_ignore_ascii_case(home.code())) {
        Some(s) => Some((s.exchange_rate, crate::fx::FxSource::StripeBalanceTransaction)),
        None => crate::fx::rate_to_home(tx, conversion.currency, home, occurred_at.date())?,
    };
    if fx.is_none() {
        tracing::warn!(org = %conversion.org_id, from = conversion.currency.code(), to = home.code(), day = %occurred_at.date(),
            "no exchange rate to the home currency is known for this day; the entry stores none (import ECB rates with `rekomi-server admin fx import`)");
    }
    tx.insert_ledger_event(&LedgerEvent {
        id: LedgerEventId::from_uuid(ctx.uuid()),
        org_id: conversion.org_id,
        conversion_id: conversion.id,
        affiliate_id: conversion.affiliate_id,
        currency: conversion.currency,
        kind,
        amount_minor: amount,
        commission_minor: commission,
        stripe_invoice_id: key.cloned(),
        refunded_total,
        occurred_at,
        payable_after,
        home_currency: home,
        fx,
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
    key: Option<&StripePaymentRef>,
    occurred_at: OffsetDateTime,
    settlement: Option<&Settlement>,
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
                click_id: None,
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
    insert_ledger(tx, ctx, &over, kind, amount, amount_of_override, key, None, occurred_at, ctx.payable_after(occurred_at), settlement)?;
    if created {
        ctx.emit(tx, EventType::ConversionCreated, conversion_data(&over))?;
    }
    Ok(())
}

pub(crate) fn record_renewal(
    tx: &mut dyn Tx,
    ctx: &ApplyCtx<'_>,
    mut conversion: Conversion,
    input: &SaleInput,
    payment: &StripePaymentRef,
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
    let payable_after = ctx.payable_after(input.occurred_at);
    insert_ledger(
        tx,
        ctx,
        &conversion,
        LedgerKind::Renewal,
        input.amount,
        commission,
        Some(payment),
        None,
        input.occurred_at,
        payable_after,
        input.settlement.as_ref(),
    )?;
    ctx.record(
        AuditAction::ConversionRenewed,
        "conversion",
        conversion.id.to_string(),
        Some(json!({"invoice": payment.as_str(), "index": index, "commissionCents": commission})),
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
                Some(payment),
                input.occurred_at,
                input.settlement.as_ref(),
            )?;
        }
    }
    done("renewal recorded")
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn record_lead(
    tx: &mut dyn Tx,
    ctx: &ApplyCtx<'_>,
    input: &SaleInput,
    currency: Currency,
    decision: Decision,
    signals: Signals,
    mut trace: Value,
) -> Result<Applied, DomainError> {
    let org = ctx.org.id;
    let key = input
        .subscription_id
        .as_ref()
        .map(ToString::to_string)
        .or_else(|| input.customer_id.as_ref().map(ToString::to_string))
        .unwrap_or_else(|| input.external_id.clone());
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
    ctx.record(AuditAction::LeadCreated, "conversion", lead.id.to_string(), Some(conversion_data(&lead)));
    ctx.emit(tx, EventType::LeadCreated, conversion_data(&lead))?;
    done("lead created")
}

/// A subscription created with a 100 %-off code produces no payment: it is a lead. Other
/// subscriptions are credited when their invoices are paid.
pub(crate) fn record_subscription(tx: &mut dyn Tx, ctx: &ApplyCtx<'_>, sub: &SubscriptionFact) -> Result<Applied, DomainError> {
    if !sub.discounts.full_discount {
        return done("the sale is credited when its invoice is paid");
    }
    let input = SaleInput {
        source: format!("subscription:{}", sub.subscription_id),
        ledger_key: None,
        external_id: sub.latest_invoice.as_ref().map_or_else(|| sub.subscription_id.to_string(), ToString::to_string),
        customer_id: sub.customer_id.clone(),
        customer_email: None,
        subscription_id: Some(sub.subscription_id.clone()),
        amount: 0,
        currency: sub.currency.clone().unwrap_or_else(|| "usd".to_owned()),
        codes: sub.discounts.promotion_codes.clone(),
        referrals: sub.referral.iter().cloned().collect(),
        occurred_at: ts(sub.created),
        direct: false,
        settlement: None,
    };
    let Ok(currency) = Currency::parse(&input.currency) else {
        return Ok(Applied::Skipped(format!("currency {:?} is not supported", input.currency)));
    };
    let (signals, trace) = gather_signals(tx, ctx, &input.codes, &input.referrals, input.customer_id.as_ref(), None, input.occurred_at)?;
    match attribution::decide(&signals) {
        Some(decision) => record_lead(tx, ctx, &input, currency, decision, signals, trace),
        None => done("no affiliate is attributed"),
    }
}
