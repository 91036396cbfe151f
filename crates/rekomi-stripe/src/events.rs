//! [`StripeEventDecoder`]: the domain's [`EventDecoder`] port over Stripe webhook payloads.
//!
//! Payloads are read as `serde_json::Value`, not through async-stripe's typed event structs: a
//! webhook endpoint receives events in the API version of the account or of the endpoint, so one
//! deployment sees several shapes at once, while async-stripe's types pin one version
//! (2026-09-30.endive) and refuse what moved. Only the fields Rekomi needs are read; unknown
//! fields are ignored, and a missing field fails the decoding only when Rekomi cannot do without
//! it (an invoice without `id` or `amount_paid`, a charge without `amount_refunded`, …).
//!
//! Shapes read, by API version (the table in the Stripe reference's README):
//!
//! | What | Current (basil / clover and later) | Older |
//! |---|---|---|
//! | Invoice subscription | `parent.subscription_details.subscription` | `subscription` |
//! | Invoice referral | `metadata.rekomi_ref`, else `parent.subscription_details.metadata.rekomi_ref` | `subscription_details.metadata.rekomi_ref` |
//! | Invoice / subscription discounts | `discounts`: `di_…` ids (→ `unresolved`) or expanded objects | also the singular `discount` object |
//! | A discount's coupon | `source.coupon` (clover) | `coupon` |
//! | Invoice payment links | — (through invoice payments) | `charge`, `payment_intent` |
//! | Charge → invoice | — (through invoice payments) | `invoice` |
//! | Checkout discounts | `discounts[]` `{coupon, promotion_code}`, `total_details.breakdown.discounts` | none |
//!
//! Any reference to another object may be an id or the expanded object (whose `id` is taken).
//! Every Stripe id read is parsed into the domain's type of it: a reference that is absent,
//! `null` or not a string counts as absent, but a string that is no id of its kind (an invoice
//! id where a customer id belongs, an empty or overlong id) fails the decoding, naming the field.
//! Stripe's vocabulary stops here: `billing_reason` becomes whether an invoice is a renewal,
//! a session's `payment_status` whether it is paid, its `mode` a [`CheckoutMode`].
//! Error messages name the event, its type and the field, never a value from the payload.

use std::str::FromStr;

use rekomi_domain::kernel::ids::{OrgId, PayoutId};
use rekomi_domain::kernel::stripe_ids::InvalidStripeId;
use rekomi_domain::payouts::rail::ConnectedAccount;
use rekomi_domain::stripe_inbox::facts::{
    CheckoutFact, CheckoutMode, DecodeError, Discounts, EventDecoder, EventEnvelope, InvoiceFact, PromotionCodeRef, RefundFact, StripeFact,
    SubscriptionFact,
};
use serde_json::{Map, Value};

/// The metadata key carrying a Rekomi referral on invoices, subscriptions and checkout sessions.
const REFERRAL_KEY: &str = "rekomi_ref";

/// The largest amount accepted, in minor units: twelve digits. Stripe caps a charge at eight
/// digits (99,999,999 in USD) and at twelve in its largest zero-decimal currencies, so anything
/// bigger is a forged or corrupt payload, and refusing it keeps every ledger sum far from `i64`
/// overflow. The domain's bound, shared with server-to-server conversions.
pub const MAX_AMOUNT_MINOR: i64 = rekomi_domain::kernel::money::MAX_AMOUNT_MINOR;

/// The range of timestamps accepted (unix seconds): 2000-01-01 to 9999-12-31. Stripe has no
/// object older than 2010; a value outside the range is corrupt and must not become a date in
/// 1970 or one the database cannot store.
pub const TIMESTAMP_RANGE: std::ops::RangeInclusive<i64> = 946_684_800..=253_402_300_799;

type Object = Map<String, Value>;

/// Decodes Stripe webhook payloads of every API version in the Stripe reference into
/// [`StripeFact`]s. Stateless.
#[derive(Clone, Copy, Debug, Default)]
pub struct StripeEventDecoder;

impl StripeEventDecoder {
    /// The decoder.
    pub fn new() -> Self {
        Self
    }
}

impl EventDecoder for StripeEventDecoder {
    fn envelope(&self, payload: &[u8]) -> Result<EventEnvelope, DecodeError> {
        envelope_of(&parse(payload)?)
    }

    fn decode(&self, payload: &[u8]) -> Result<StripeFact, DecodeError> {
        let event = parse(payload)?;
        let envelope = envelope_of(&event)?;
        decode_event(&envelope, &event)
    }
}

fn parse(payload: &[u8]) -> Result<Object, DecodeError> {
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(event)) => Ok(event),
        Ok(_) => Err(DecodeError("the payload is not a JSON object".to_owned())),
        // serde_json's messages give a position, never the content.
        Err(err) => Err(DecodeError(format!("the payload is not JSON: {err}"))),
    }
}

fn envelope_of(event: &Object) -> Result<EventEnvelope, DecodeError> {
    let fields = Fields { object: event, context: "event", prefix: "" };
    let account = match event.get("account") {
        None | Some(Value::Null) => None,
        Some(Value::String(account)) => Some(account.parse().map_err(|err| fields.invalid("account", err))?),
        Some(_) => return Err(fields.missing("account", "an account id")),
    };
    Ok(EventEnvelope {
        id: fields.required_id("id")?,
        event_type: fields.required_str("type")?,
        account,
        created: fields.required_time("created")?,
        livemode: fields.required_bool("livemode")?,
    })
}

/// How one handled event type becomes a fact.
type Handler = fn(&Fields<'_>, &EventEnvelope) -> Result<StripeFact, DecodeError>;

fn decode_event(envelope: &EventEnvelope, event: &Object) -> Result<StripeFact, DecodeError> {
    let kind = envelope.event_type.as_str();
    let handler: Handler = match kind {
        "invoice.paid" | "invoice.payment_succeeded" => |fields, _| invoice(fields).map(StripeFact::InvoicePaid),
        "customer.subscription.created" => |fields, _| subscription(fields).map(StripeFact::SubscriptionCreated),
        "checkout.session.completed" => |fields, envelope| checkout(fields, envelope).map(StripeFact::CheckoutCompleted),
        "charge.refunded" => |fields, envelope| refund(fields, envelope).map(StripeFact::ChargeRefunded),
        "promotion_code.created" | "promotion_code.updated" => {
            |fields, _| Ok(StripeFact::PromotionCodeUpdated { id: fields.required_id("id")?, active: fields.required_bool("active")? })
        }
        "coupon.deleted" => |fields, _| Ok(StripeFact::CouponDeleted { id: fields.required_id("id")? }),
        "account.updated" => |fields, _| connected_account(fields).map(StripeFact::AccountUpdated),
        "transfer.reversed" => |fields, _| transfer_reversed(fields),
        _ => return Ok(StripeFact::Ignored),
    };
    let context = format!("{kind} event {}", envelope.id);
    let object = event
        .get("data")
        .and_then(|data| data.get("object"))
        .and_then(Value::as_object)
        .ok_or_else(|| DecodeError(format!("{context}: `data.object` is missing or not an object")))?;
    handler(&Fields { object, context: &context, prefix: "data.object." }, envelope)
}

fn invoice(fields: &Fields<'_>) -> Result<InvoiceFact, DecodeError> {
    let object = fields.object;
    let paid_at = match at(object, &["status_transitions", "paid_at"]).filter(|v| !v.is_null()) {
        Some(_) => fields.required_time_at(&["status_transitions", "paid_at"])?,
        None => fields.required_time("created")?,
    };
    let subscription_id = match fields.optional_id(&["parent", "subscription_details", "subscription"])? {
        Some(id) => Some(id),
        None => fields.optional_id(&["subscription"])?,
    };
    Ok(InvoiceFact {
        invoice_id: fields.required_id("id")?,
        customer_id: fields.optional_id(&["customer"])?,
        customer_email: text(object.get("customer_email")),
        subscription_id,
        amount_paid: fields.required_amount("amount_paid")?,
        currency: fields.required_str("currency")?,
        renewal: matches!(
            text(object.get("billing_reason")).as_deref(),
            Some("subscription_cycle" | "subscription_update" | "subscription_threshold")
        ),
        discounts: billing_discounts(fields)?,
        referral: text(at(object, &["metadata", REFERRAL_KEY]))
            .or_else(|| text(at(object, &["parent", "subscription_details", "metadata", REFERRAL_KEY])))
            .or_else(|| text(at(object, &["subscription_details", "metadata", REFERRAL_KEY]))),
        charge_id: fields.optional_id(&["charge"])?,
        payment_intent_id: fields.optional_id(&["payment_intent"])?,
        paid_at,
        settlement: None,
    })
}

/// A connected account's payout state; a flag Stripe leaves out is false (an account that has
/// not said it can receive payouts cannot).
fn connected_account(fields: &Fields<'_>) -> Result<ConnectedAccount, DecodeError> {
    let flag = |key: &str| fields.object.get(key).and_then(Value::as_bool).unwrap_or(false);
    Ok(ConnectedAccount {
        id: fields.required_id("id")?,
        payouts_enabled: flag("payouts_enabled"),
        details_submitted: flag("details_submitted"),
    })
}

/// A reversed transfer and the payout its metadata names. `transfer.reversed` also fires for a
/// partial reversal; `fully_reversed` tells them apart.
fn transfer_reversed(fields: &Fields<'_>) -> Result<StripeFact, DecodeError> {
    let object = fields.object;
    let uuid = |key: &str| text(at(object, &["metadata", key])).and_then(|v| v.parse::<PayoutId>().ok().map(|id| id.as_uuid()));
    let amount = fields.required_amount("amount")?;
    let reversed = object.get("amount_reversed").and_then(Value::as_i64).unwrap_or(0);
    Ok(StripeFact::TransferReversed {
        transfer: fields.required_id("id")?,
        payout_id: uuid("rekomi_payout_id").map(PayoutId::from_uuid),
        org_id: uuid("rekomi_org_id").map(OrgId::from_uuid),
        fully_reversed: object.get("reversed").and_then(Value::as_bool).unwrap_or(false) || (amount > 0 && reversed >= amount),
    })
}

fn subscription(fields: &Fields<'_>) -> Result<SubscriptionFact, DecodeError> {
    let object = fields.object;
    Ok(SubscriptionFact {
        subscription_id: fields.required_id("id")?,
        customer_id: fields.optional_id(&["customer"])?,
        status: fields.required_str("status")?,
        latest_invoice: fields.optional_id(&["latest_invoice"])?,
        discounts: billing_discounts(fields)?,
        referral: text(at(object, &["metadata", REFERRAL_KEY])),
        currency: text(object.get("currency")),
        created: fields.required_time("created")?,
    })
}

fn checkout(fields: &Fields<'_>, envelope: &EventEnvelope) -> Result<CheckoutFact, DecodeError> {
    let object = fields.object;
    let mode = match fields.required_str("mode")?.as_str() {
        "payment" => CheckoutMode::Payment,
        "subscription" => CheckoutMode::Subscription,
        "setup" => CheckoutMode::Setup,
        _ => return Err(fields.missing("mode", "payment, subscription or setup")),
    };
    // `amount_total` is nullable: a setup-mode session moves no money.
    let amount_total = match object.get("amount_total") {
        None | Some(Value::Null) if mode == CheckoutMode::Setup => 0,
        _ => fields.required_amount("amount_total")?,
    };
    let paid = match fields.required_str("payment_status")?.as_str() {
        "paid" | "no_payment_required" => true,
        "unpaid" => false,
        _ => return Err(fields.missing("payment_status", "paid, unpaid or no_payment_required")),
    };
    Ok(CheckoutFact {
        session_id: fields.required_id("id")?,
        customer_id: fields.optional_id(&["customer"])?,
        customer_email: text(at(object, &["customer_details", "email"])).or_else(|| text(object.get("customer_email"))),
        mode,
        paid,
        amount_total,
        currency: text(object.get("currency")),
        subscription_id: fields.optional_id(&["subscription"])?,
        invoice_id: fields.optional_id(&["invoice"])?,
        payment_intent_id: fields.optional_id(&["payment_intent"])?,
        discounts: checkout_discounts(fields)?,
        referral: text(at(object, &["metadata", REFERRAL_KEY])),
        client_reference_id: text(object.get("client_reference_id")),
        // Sessions of older API versions carry no `created`; the event's is the closest.
        created: match object.get("created") {
            None | Some(Value::Null) => envelope.created,
            Some(_) => fields.required_time("created")?,
        },
    })
}

fn refund(fields: &Fields<'_>, envelope: &EventEnvelope) -> Result<RefundFact, DecodeError> {
    Ok(RefundFact {
        charge_id: fields.required_id("id")?,
        payment_intent_id: fields.optional_id(&["payment_intent"])?,
        invoice_id: fields.optional_id(&["invoice"])?,
        customer_id: fields.optional_id(&["customer"])?,
        amount: fields.required_amount("amount")?,
        amount_refunded: fields.required_amount("amount_refunded")?,
        currency: fields.required_str("currency")?,
        refunded_at: envelope.created,
    })
}

/// The discounts of an invoice or a subscription: `discounts` (ids or expanded objects), the
/// singular `discount` of API versions before 2025-03-31, and the expanded discounts of an
/// invoice's `total_discount_amounts` when a payload carries them.
fn billing_discounts(fields: &Fields<'_>) -> Result<Discounts, DecodeError> {
    let object = fields.object;
    let mut scan = DiscountScan::default();
    if let Some(Value::Array(discounts)) = object.get("discounts") {
        for discount in discounts {
            scan.listed_discount(discount).map_err(|err| fields.invalid("discounts[].promotion_code", err))?;
        }
    }
    if let Some(discount) = object.get("discount") {
        scan.listed_discount(discount).map_err(|err| fields.invalid("discount.promotion_code", err))?;
    }
    if let Some(Value::Array(amounts)) = object.get("total_discount_amounts") {
        for amount in amounts {
            if let Some(Value::Object(discount)) = amount.get("discount") {
                scan.expanded_discount(discount).map_err(|err| fields.invalid("total_discount_amounts[].discount.promotion_code", err))?;
            }
        }
    }
    Ok(scan.finish())
}

/// The discounts of a checkout session: `discounts[]` entries `{coupon, promotion_code}` (since
/// 2025-01-27.acacia) and the expanded `total_details.breakdown.discounts[].discount`.
fn checkout_discounts(fields: &Fields<'_>) -> Result<Discounts, DecodeError> {
    let object = fields.object;
    let mut scan = DiscountScan::default();
    if let Some(Value::Array(discounts)) = object.get("discounts") {
        for discount in discounts.iter().filter_map(Value::as_object) {
            scan.promotion_code(discount.get("promotion_code")).map_err(|err| fields.invalid("discounts[].promotion_code", err))?;
            scan.coupon(discount.get("coupon"));
        }
    }
    if let Some(Value::Array(breakdown)) = at(object, &["total_details", "breakdown", "discounts"]) {
        for entry in breakdown {
            if let Some(Value::Object(discount)) = entry.get("discount") {
                scan.expanded_discount(discount)
                    .map_err(|err| fields.invalid("total_details.breakdown.discounts[].discount.promotion_code", err))?;
            }
        }
    }
    Ok(scan.finish())
}

/// Collects what the discounts of one object say.
#[derive(Default)]
struct DiscountScan {
    promotion_codes: Vec<PromotionCodeRef>,
    /// Discounts named by id only.
    listed_ids: Vec<String>,
    /// Discounts the payload expands (anywhere): their ids are resolved.
    expanded_ids: Vec<String>,
    full_discount: bool,
}

impl DiscountScan {
    /// A discount as an invoice or a subscription lists it: a `di_…` id or an expanded object.
    fn listed_discount(&mut self, discount: &Value) -> Result<(), InvalidStripeId> {
        match discount {
            Value::String(id) if !id.is_empty() => self.listed_ids.push(id.clone()),
            Value::Object(discount) => self.expanded_discount(discount)?,
            _ => {}
        }
        Ok(())
    }

    /// An expanded `discount` object of any version: its promotion code and its coupon
    /// (`source.coupon` since 2025-09-30.clover, `coupon` before).
    fn expanded_discount(&mut self, discount: &Object) -> Result<(), InvalidStripeId> {
        if let Some(id) = text(discount.get("id")) {
            self.expanded_ids.push(id);
        }
        self.promotion_code(discount.get("promotion_code"))?;
        self.coupon(at(discount, &["source", "coupon"]));
        self.coupon(discount.get("coupon"));
        Ok(())
    }

    /// A promotion code: an id, or the expanded object with its code text.
    fn promotion_code(&mut self, promotion_code: Option<&Value>) -> Result<(), InvalidStripeId> {
        let (id, code) = match promotion_code {
            Some(Value::String(id)) if !id.is_empty() => (id.parse()?, None),
            Some(Value::Object(object)) => match text(object.get("id")) {
                Some(id) => (id.parse()?, text(object.get("code"))),
                None => return Ok(()),
            },
            _ => return Ok(()),
        };
        match self.promotion_codes.iter_mut().find(|known| known.id == id) {
            Some(known) => {
                if known.code.is_none() {
                    known.code = code;
                }
            }
            None => self.promotion_codes.push(PromotionCodeRef { id, code }),
        }
        Ok(())
    }

    /// A coupon: only an expanded one says how much it takes off.
    fn coupon(&mut self, coupon: Option<&Value>) {
        let percent_off = coupon.and_then(|coupon| coupon.get("percent_off")).and_then(Value::as_f64);
        // `percent_off` is at most 100; `>=` avoids comparing floats for equality.
        if percent_off.is_some_and(|percent| percent >= 100.0) {
            self.full_discount = true;
        }
    }

    fn finish(self) -> Discounts {
        let unresolved = self.listed_ids.iter().any(|id| !self.expanded_ids.contains(id));
        Discounts { promotion_codes: self.promotion_codes, unresolved, full_discount: self.full_discount }
    }
}

/// The object a handled event is about, with the context its errors name.
struct Fields<'a> {
    object: &'a Object,
    context: &'a str,
    prefix: &'a str,
}

impl Fields<'_> {
    fn missing(&self, field: &str, expected: &str) -> DecodeError {
        DecodeError(format!("{}: `{}{field}` is missing or not {expected}", self.context, self.prefix))
    }

    fn invalid(&self, field: &str, err: InvalidStripeId) -> DecodeError {
        DecodeError(format!("{}: `{}{field}` is not a Stripe {} id: {err}", self.context, self.prefix, err.kind()))
    }

    fn required_str(&self, field: &str) -> Result<String, DecodeError> {
        text(self.object.get(field)).ok_or_else(|| self.missing(field, "a non-empty string"))
    }

    /// A Stripe id of the kind `T`.
    fn required_id<T: FromStr<Err = InvalidStripeId>>(&self, field: &str) -> Result<T, DecodeError> {
        self.required_str(field)?.parse().map_err(|err| self.invalid(field, err))
    }

    /// A reference to an object of the kind `T` at `path` (see [`id_of`]): absent when there is
    /// none, an error when it names no object of that kind.
    fn optional_id<T: FromStr<Err = InvalidStripeId>>(&self, path: &[&str]) -> Result<Option<T>, DecodeError> {
        id_of(at(self.object, path)).map(|id| id.parse().map_err(|err| self.invalid(&path.join("."), err))).transpose()
    }

    /// An amount in minor units: an integer from 0 to [`MAX_AMOUNT_MINOR`].
    fn required_amount(&self, field: &str) -> Result<i64, DecodeError> {
        int(self.object.get(field))
            .filter(|amount| (0..=MAX_AMOUNT_MINOR).contains(amount))
            .ok_or_else(|| self.missing(field, "an amount from 0 to 999999999999"))
    }

    /// Unix seconds within [`TIMESTAMP_RANGE`].
    fn required_time(&self, field: &str) -> Result<i64, DecodeError> {
        self.required_time_at(&[field])
    }

    fn required_time_at(&self, path: &[&str]) -> Result<i64, DecodeError> {
        int(at(self.object, path))
            .filter(|t| TIMESTAMP_RANGE.contains(t))
            .ok_or_else(|| self.missing(&path.join("."), "a unix timestamp between 2000-01-01 and 9999-12-31"))
    }

    fn required_bool(&self, field: &str) -> Result<bool, DecodeError> {
        self.object.get(field).and_then(Value::as_bool).ok_or_else(|| self.missing(field, "a boolean"))
    }
}

/// The value at `path` under `object`.
fn at<'a>(object: &'a Object, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter().try_fold(object.get(*first)?, |value, key| value.get(key))
}

/// A non-empty string.
/// A string field. Text with control characters (a NUL cannot even be stored by PostgreSQL)
/// counts as absent: it can be no id, email or referral Rekomi would match.
fn text(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).filter(|text| !text.is_empty() && !text.chars().any(char::is_control)).map(str::to_owned)
}

/// An integer (Stripe sends amounts and timestamps as JSON integers).
fn int(value: Option<&Value>) -> Option<i64> {
    value.and_then(Value::as_i64)
}

/// A reference to another object: its id, or the `id` of the expanded object.
fn id_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Object(object) => text(object.get("id")),
        other => text(Some(other)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(object: &Object) -> Fields<'_> {
        Fields { object, context: "test", prefix: "" }
    }

    fn scan_checkout(discounts: Value) -> Result<Discounts, DecodeError> {
        let object = json!({ "discounts": discounts });
        checkout_discounts(&fields(object.as_object().unwrap_or(&Map::new())))
    }

    #[test]
    fn a_promotion_code_seen_twice_is_kept_once_with_its_code() {
        let discounts = scan_checkout(json!([
            { "promotion_code": "promo_1" },
            { "promotion_code": { "id": "promo_1", "code": "ALICE20" } },
            { "promotion_code": { "id": "promo_1", "code": "OTHER" } },
        ]))
        .unwrap_or_else(|err| panic!("{err}"));
        let id = "promo_1".parse().unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(discounts.promotion_codes, vec![PromotionCodeRef { id, code: Some("ALICE20".to_owned()) }]);
        assert!(!discounts.unresolved);
    }

    #[test]
    fn a_listed_discount_id_is_resolved_by_an_expanded_object_of_the_same_id() {
        let object = json!({
            "discounts": ["di_1"],
            "discount": { "id": "di_1", "coupon": { "id": "10OFF", "percent_off": 10 }, "promotion_code": null },
        });
        let discounts = billing_discounts(&fields(object.as_object().unwrap_or(&Map::new()))).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(discounts, Discounts::default());
    }

    #[test]
    fn values_of_the_wrong_type_are_treated_as_absent() {
        assert_eq!(id_of(Some(&json!(42))), None);
        assert_eq!(id_of(Some(&json!({ "object": "customer" }))), None);
        assert_eq!(id_of(Some(&json!(""))), None);
        assert_eq!(text(Some(&json!(null))), None);
        assert_eq!(int(Some(&json!("1500"))), None);
    }

    #[test]
    fn a_promotion_code_that_is_no_promotion_code_id_fails_naming_where_it_was() {
        let err = scan_checkout(json!([{ "promotion_code": "cus_1" }])).unwrap_err();
        assert_eq!(
            err.0,
            "test: `discounts[].promotion_code` is not a Stripe promotion code id: a Stripe promotion code id must be promo_… followed by the id"
        );
        let object = json!({ "discount": { "id": "di_1", "promotion_code": { "id": "in_1", "code": "X" } } });
        let err = billing_discounts(&fields(object.as_object().unwrap_or(&Map::new()))).unwrap_err();
        assert!(err.0.contains("`discount.promotion_code`"), "{err}");
        assert!(!err.0.contains("in_1"), "the message never repeats a value: {err}");
    }
}
