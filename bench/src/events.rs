//! Signed `invoice.paid` events in the current API shape (2025-09-30.clover): the invoice of a
//! new subscription whose `discounts` are EXPANDED discount objects naming the affiliate's
//! promotion code, so the inbox worker needs no Stripe lookup. Every event has its own event,
//! invoice, subscription and customer ids, so each one becomes a new conversion.

use serde_json::{json, Value};

/// The promotion code every event redeems.
#[derive(Clone, Debug)]
pub struct Promo {
    /// `promo_…` (in local mode `promo_local_…`).
    pub promotion_code_id: String,
    /// The code text (`BENCH20`).
    pub code: String,
    /// The Stripe coupon behind it (`coupon_local_…`).
    pub coupon_id: String,
}

/// One request ready to send: the body and its `Stripe-Signature`.
#[derive(Clone, Debug)]
pub struct SignedEvent {
    /// The raw JSON body.
    pub body: bytes::Bytes,
    /// `t=…,v1=…`.
    pub signature: String,
}

/// The invoice's list price (minor units) and the 25 % discount taken off it.
pub const LIST_PRICE: i64 = 2000;

/// Builds the event body for sequence number `n` of a run tagged `run` (unique per run).
pub fn invoice_paid(run: &str, n: u64, promo: &Promo, amount_paid: i64, now: i64) -> Value {
    let suffix = format!("{run}{n:08}");
    let invoice = format!("in_bench{suffix}");
    let subscription = format!("sub_bench{suffix}");
    let customer = format!("cus_bench{suffix}");
    let discount = format!("di_bench{suffix}");
    let discount_amount = (LIST_PRICE - amount_paid).max(0);
    let discount_object = json!({
        "id": discount,
        "object": "discount",
        "checkout_session": null,
        "customer": customer,
        "end": null,
        "invoice": null,
        "invoice_item": null,
        "promotion_code": {
            "id": promo.promotion_code_id,
            "object": "promotion_code",
            "active": true,
            "code": promo.code,
            "metadata": {}
        },
        "source": {
            "type": "coupon",
            "coupon": {
                "id": promo.coupon_id,
                "object": "coupon",
                "duration": "once",
                "percent_off": 25.0,
                "amount_off": null,
                "valid": true
            }
        },
        "start": now,
        "subscription": subscription,
        "subscription_item": null
    });
    let line_item = json!({
        "id": format!("il_bench{suffix}"),
        "object": "line_item",
        "amount": LIST_PRICE,
        "currency": "usd",
        "description": "1 x Pro plan (at $20.00 / month)",
        "discount_amounts": [{ "amount": discount_amount, "discount": discount }],
        "discountable": true,
        "discounts": [],
        "invoice": invoice,
        "livemode": false,
        "metadata": {},
        "period": { "start": now, "end": now + 30 * 86_400 },
        "quantity": 1,
        "parent": {
            "type": "subscription_item_details",
            "invoice_item_details": null,
            "subscription_item_details": {
                "invoice_item": null,
                "proration": false,
                "proration_details": { "credited_items": null },
                "subscription": subscription,
                "subscription_item": format!("si_bench{suffix}")
            }
        },
        "pricing": {
            "type": "price_details",
            "price_details": { "price": "price_BenchPro", "product": "prod_BenchPro" },
            "unit_amount_decimal": LIST_PRICE.to_string()
        },
        "subtotal": LIST_PRICE
    });
    json!({
        "id": format!("evt_bench{suffix}"),
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": now,
        "data": {
            "object": {
                "id": invoice,
                "object": "invoice",
                "account_country": "US",
                "account_name": "Bench Brand",
                "amount_due": amount_paid,
                "amount_paid": amount_paid,
                "amount_remaining": 0,
                "amount_shipping": 0,
                "attempt_count": 1,
                "attempted": true,
                "auto_advance": false,
                "automatic_tax": { "enabled": false, "liability": null, "status": null },
                "billing_reason": "subscription_create",
                "collection_method": "charge_automatically",
                "created": now,
                "currency": "usd",
                "customer": customer,
                "customer_email": null,
                "customer_name": null,
                "customer_tax_exempt": "none",
                "default_tax_rates": [],
                "description": null,
                "discounts": [discount_object],
                "effective_at": now,
                "ending_balance": 0,
                "hosted_invoice_url": null,
                "issuer": { "type": "self" },
                "lines": {
                    "object": "list",
                    "data": [line_item],
                    "has_more": false,
                    "url": format!("/v1/invoices/{invoice}/lines")
                },
                "livemode": false,
                "metadata": {},
                "number": format!("BENCH-{suffix}"),
                "parent": {
                    "type": "subscription_details",
                    "quote_details": null,
                    "subscription_details": {
                        "subscription": subscription,
                        "metadata": {},
                        "subscription_proration_date": null
                    }
                },
                "period_end": now,
                "period_start": now,
                "post_payment_credit_notes_amount": 0,
                "pre_payment_credit_notes_amount": 0,
                "starting_balance": 0,
                "status": "paid",
                "status_transitions": {
                    "finalized_at": now,
                    "marked_uncollectible_at": null,
                    "paid_at": now,
                    "voided_at": null
                },
                "subtotal": LIST_PRICE,
                "subtotal_excluding_tax": LIST_PRICE,
                "total": amount_paid,
                "total_discount_amounts": [{ "amount": discount_amount, "discount": discount }],
                "total_excluding_tax": amount_paid,
                "total_pretax_credit_amounts": null,
                "total_taxes": []
            }
        },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": "invoice.paid"
    })
}

/// `count` signed events numbered from `first`, signed now (the signature tolerance is 5
/// minutes, and every phase sends its events within seconds of signing them).
pub fn signed_batch(run: &str, first: u64, count: u64, promo: &Promo, amount_paid: i64, secret: &str) -> Vec<SignedEvent> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    (first..first + count)
        .map(|n| {
            let body = invoice_paid(run, n, promo, amount_paid, now).to_string().into_bytes();
            let signature = rekomi_domain::kernel::signature::header(secret, now, &body);
            SignedEvent { body: bytes::Bytes::from(body), signature }
        })
        .collect()
}
