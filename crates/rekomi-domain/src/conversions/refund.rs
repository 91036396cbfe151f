//! Recording a refund: a proportional clawback of the commission the refunded payment earned,
//! as the difference from what the ledger already holds (Stripe's `amount_refunded` is
//! cumulative), for the conversion and its overrides.

use crate::audit::AuditAction;
use crate::outbound::EventType;
use serde_json::json;

use crate::conversions::commission;
use crate::conversions::record::{insert_ledger, seen_key};
use crate::conversions::{ConversionStatus, LedgerEvent, LedgerKind};
use crate::kernel::error::DomainError;
use crate::kernel::ids::LedgerEventId;
use crate::kernel::stripe_ids::StripePaymentRef;
use crate::outbound::outbox::conversion_data;
use crate::ports::Tx;
use crate::stripe_inbox::apply::{done, ts, Applied, ApplyCtx};
use crate::stripe_inbox::facts::RefundFact;

pub(crate) fn record_refund(tx: &mut dyn Tx, ctx: &ApplyCtx<'_>, refund: &RefundFact) -> Result<Applied, DomainError> {
    let org = ctx.org.id;
    let key = refund.payment();
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
        .find(|e| matches!(e.kind, LedgerKind::Initial | LedgerKind::Renewal) && e.stripe_invoice_id.as_ref() == Some(&key))
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
    // A clawback is netted no earlier than the credit it claws back: a refund inside the grace
    // period cancels the sale before either is payable.
    let refunded_at = ts(refund.refunded_at);
    let payable_after = sale.payable_after.max(refunded_at);
    insert_ledger(
        tx,
        ctx,
        &conversion,
        LedgerKind::Refund,
        -newly_refunded,
        delta,
        Some(&key),
        Some(total),
        refunded_at,
        payable_after,
        None,
    )?;
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
        affiliate_id: conversion.affiliate_id,
        currency: conversion.currency,
        kind: LedgerKind::Refund,
        amount_minor: -newly_refunded,
        commission_minor: delta,
        stripe_invoice_id: Some(key.clone()),
        refunded_total: Some(total),
        occurred_at: ctx.now,
        payable_after,
        home_currency: ctx.org.home_currency,
        fx: None,
        created_at: ctx.now,
    });
    conversion.claw_back(delta, everything_refunded(&ledger_after), ctx.now)?;
    tx.update_conversion(&conversion)?;
    for found in tx.overrides_of(org, conversion.id)? {
        let Some(mut over) = tx.conversion_for_update(org, found.id)? else { continue };
        let over_ledger = tx.ledger_of(org, over.id)?;
        let Some(over_sale) = over_ledger
            .iter()
            .find(|e| matches!(e.kind, LedgerKind::Initial | LedgerKind::Renewal) && e.stripe_invoice_id.as_ref() == Some(&key))
        else {
            continue;
        };
        let (_, over_clawed) = refunds_seen(&over_ledger, &key);
        let over_delta = commission::clawback_delta(over_sale.commission_minor, over_sale.amount_minor, total, over_clawed);
        if over_delta == 0 {
            continue;
        }
        let over_payable = over_sale.payable_after.max(refunded_at);
        insert_ledger(
            tx,
            ctx,
            &over,
            LedgerKind::Refund,
            -newly_refunded,
            over_delta,
            Some(&key),
            Some(total),
            refunded_at,
            over_payable,
            None,
        )?;
        // An override follows its parent: refunded once the parent is.
        over.claw_back(over_delta, conversion.status == ConversionStatus::Refunded, ctx.now)?;
        tx.update_conversion(&over)?;
        ctx.emit(tx, EventType::ConversionRefunded, conversion_data(&over))?;
    }
    ctx.record(
        AuditAction::ConversionRefunded,
        "conversion",
        conversion.id.to_string(),
        Some(json!({"payment": key.as_str(), "refundedTotal": total, "commissionCents": delta})),
    );
    ctx.emit(tx, EventType::ConversionRefunded, conversion_data(&conversion))?;
    done("refund recorded")
}

/// The refunded amount already recorded for a payment, and the commission already clawed back.
fn refunds_seen(ledger: &[LedgerEvent], key: &StripePaymentRef) -> (i64, i64) {
    ledger
        .iter()
        .filter(|e| e.kind == LedgerKind::Refund && e.stripe_invoice_id.as_ref() == Some(key))
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
            let refunded = s.stripe_invoice_id.as_ref().map_or(0, |key| refunds_seen(ledger, key).0);
            refunded >= s.amount_minor
        })
}
