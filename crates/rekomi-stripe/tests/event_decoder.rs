//! `StripeEventDecoder` against webhook payloads: the project's own events
//! (`tests/fixtures/events/`: a story in the current shapes and events in older API versions'
//! shapes), minimal payloads for each shape rule, and, as an optional cross-check, the shared
//! reference folder's events (`<shared>/stripe/events/`, read at run time when present; without
//! it those checks do not run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rekomi_domain::stripe_inbox::facts::{
    CheckoutFact, CheckoutMode, DecodeError, Discounts, EventDecoder, EventEnvelope, InvoiceFact, PromotionCodeRef, RefundFact, StripeFact,
    SubscriptionFact,
};
use rekomi_stripe::StripeEventDecoder;
use serde_json::{json, Value};
use support::{stripe_id, StripeEvents};

const DECODER: StripeEventDecoder = StripeEventDecoder;

fn decode(payload: &[u8]) -> StripeFact {
    DECODER.decode(payload).unwrap_or_else(|err| panic!("{err}"))
}

fn decode_file(events: &StripeEvents, set: &str, file: &str) -> StripeFact {
    DECODER.decode(&events.bytes(set, file)).unwrap_or_else(|err| panic!("{set}/{file}: {err}"))
}

/// A minimal event of `event_type` around `object`.
fn event(event_type: &str, object: Value) -> Vec<u8> {
    json!({
        "id": "evt_1Rekomi",
        "object": "event",
        "type": event_type,
        "created": 1_767_225_700,
        "livemode": false,
        "data": { "object": object },
    })
    .to_string()
    .into_bytes()
}

fn decode_event(event_type: &str, object: Value) -> StripeFact {
    decode(&event(event_type, object))
}

fn decode_error(event_type: &str, object: Value) -> String {
    match DECODER.decode(&event(event_type, object)) {
        Err(DecodeError(message)) => message,
        Ok(fact) => panic!("expected a DecodeError, got {fact:?}"),
    }
}

fn invoice_fact(fact: StripeFact) -> InvoiceFact {
    match fact {
        StripeFact::InvoicePaid(invoice) => invoice,
        other => panic!("expected InvoicePaid, got {other:?}"),
    }
}

fn subscription_fact(fact: StripeFact) -> SubscriptionFact {
    match fact {
        StripeFact::SubscriptionCreated(subscription) => subscription,
        other => panic!("expected SubscriptionCreated, got {other:?}"),
    }
}

fn checkout_fact(fact: StripeFact) -> CheckoutFact {
    match fact {
        StripeFact::CheckoutCompleted(checkout) => checkout,
        other => panic!("expected CheckoutCompleted, got {other:?}"),
    }
}

fn refund_fact(fact: StripeFact) -> RefundFact {
    match fact {
        StripeFact::ChargeRefunded(refund) => refund,
        other => panic!("expected ChargeRefunded, got {other:?}"),
    }
}

fn promo(id: &str, code: Option<&str>) -> PromotionCodeRef {
    PromotionCodeRef { id: stripe_id(id), code: code.map(str::to_owned) }
}

/// A minimal invoice with `extra` merged in.
fn invoice(extra: Value) -> Value {
    merge(json!({ "id": "in_1", "object": "invoice", "amount_paid": 2000, "currency": "usd", "created": 1_767_225_600 }), extra)
}

/// A minimal subscription with `extra` merged in.
fn subscription(extra: Value) -> Value {
    merge(json!({ "id": "sub_1", "object": "subscription", "status": "active", "created": 1_767_225_600 }), extra)
}

/// A minimal completed checkout session with `extra` merged in.
fn session(extra: Value) -> Value {
    merge(
        json!({ "id": "cs_1", "object": "checkout.session", "mode": "payment", "payment_status": "paid", "amount_total": 1500, "currency": "usd" }),
        extra,
    )
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(base), Value::Object(extra)) = (&mut base, extra) {
        base.extend(extra);
    }
    base
}

// ---------------------------------------------------------------------------------------------
// The project's own events (`tests/fixtures/events/`): the story in the current shapes and the
// older API versions' shapes

/// One of the project's events, decoded.
fn fixture(set: &str, file: &str) -> StripeFact {
    decode_file(&StripeEvents::in_repo(), set, file)
}

const STORY_INVOICE: &str = "in_1RekomiStoryInvoice";
const STORY_SUBSCRIPTION: &str = "sub_1RekomiStorySubscription";
const STORY_CUSTOMER: &str = "cus_1RekomiStoryBuyer";
const STORY_EMAIL: &str = "jamie@buyers.example";

/// `Some` of a text or a Stripe id, whichever the comparison needs.
fn some<T: std::str::FromStr>(text: &str) -> Option<T>
where
    T::Err: std::fmt::Debug,
{
    Some(stripe_id(text))
}

#[test]
fn every_event_of_the_project_decodes_and_is_named_after_its_type() {
    let events = StripeEvents::in_repo();
    for (set, at_least) in [("current", 9), ("older", 13)] {
        let files = events.files(set);
        assert!(files.len() >= at_least, "only {} {set} events found: {files:?}", files.len());
        for file in files {
            let bytes = events.bytes(set, &file);
            let envelope = DECODER.envelope(&bytes).unwrap_or_else(|err| panic!("{set}/{file}: {err}"));
            assert!(envelope.id.as_str().starts_with("evt_"), "{set}/{file}: {envelope:?}");
            let kind = &envelope.event_type;
            assert!(file == format!("{kind}.json") || file.starts_with(&format!("{kind}__")), "{set}/{file} holds a {kind}");
            decode_file(&events, set, &file);
        }
    }
}

#[test]
fn the_storys_invoice_paid_names_its_subscription_under_parent_and_lists_discount_ids_only() {
    let bytes = StripeEvents::in_repo().bytes("current", "invoice.paid__with_promotion_code_discount.json");

    assert_eq!(
        DECODER.envelope(&bytes).unwrap(),
        EventEnvelope {
            id: stripe_id("evt_1RekomiStory0004"),
            event_type: "invoice.paid".to_owned(),
            account: None,
            created: 1_772_546_462,
            livemode: false,
        }
    );
    assert_eq!(
        invoice_fact(decode(&bytes)),
        InvoiceFact {
            invoice_id: stripe_id(STORY_INVOICE),
            customer_id: some(STORY_CUSTOMER),
            customer_email: some(STORY_EMAIL),
            subscription_id: some(STORY_SUBSCRIPTION),
            amount_paid: 2000,
            currency: "usd".to_owned(),
            renewal: false,
            // `discounts: ["di_1RekomiStoryDiscount"]`: the code must be fetched.
            discounts: Discounts { promotion_codes: Vec::new(), unresolved: true, full_discount: false },
            // The subscription details' metadata key is `partner_ref`, not Rekomi's.
            referral: None,
            // Invoices stopped naming their charge and payment intent in 2025-03-31.basil.
            charge_id: None,
            payment_intent_id: None,
            paid_at: 1_772_546_461,
            settlement: None,
        }
    );
}

#[test]
fn the_storys_payment_succeeded_is_another_event_with_the_same_invoice_fact() {
    let events = StripeEvents::in_repo();
    let paid = events.bytes("current", "invoice.paid__with_promotion_code_discount.json");
    let succeeded = events.bytes("current", "invoice.payment_succeeded__with_promotion_code_discount.json");

    let succeeded_envelope = DECODER.envelope(&succeeded).unwrap();
    assert_eq!(succeeded_envelope.event_type, "invoice.payment_succeeded");
    assert_ne!(succeeded_envelope.id, DECODER.envelope(&paid).unwrap().id);
    assert_eq!(invoice_fact(decode(&succeeded)), invoice_fact(decode(&paid)));
}

#[test]
fn the_storys_refunds_carry_the_cumulative_amount_refunded_and_the_payment_intent() {
    let refund = |refunded: i64, at: i64| RefundFact {
        charge_id: stripe_id("ch_3RekomiStoryCharge"),
        payment_intent_id: some("pi_3RekomiStoryPayment"),
        // Charges stopped naming their invoice in 2025-03-31.basil.
        invoice_id: None,
        customer_id: some(STORY_CUSTOMER),
        amount: 2000,
        amount_refunded: refunded,
        currency: "usd".to_owned(),
        refunded_at: at,
    };

    assert_eq!(refund_fact(fixture("current", "charge.refunded__partial.json")), refund(500, 1_773_136_800));
    assert_eq!(refund_fact(fixture("current", "charge.refunded__full.json")), refund(2000, 1_773_246_600));
}

#[test]
fn the_storys_checkout_names_its_promotion_code_in_discounts() {
    let checkout = checkout_fact(fixture("current", "checkout.session.completed__promo_discount.json"));

    assert_eq!(
        checkout,
        CheckoutFact {
            session_id: stripe_id("cs_test_a1RekomiStoryCheckout"),
            customer_id: some(STORY_CUSTOMER),
            customer_email: some(STORY_EMAIL),
            mode: CheckoutMode::Subscription,
            paid: true,
            amount_total: 2000,
            currency: some("usd"),
            subscription_id: some(STORY_SUBSCRIPTION),
            invoice_id: some(STORY_INVOICE),
            payment_intent_id: None,
            discounts: Discounts {
                promotion_codes: vec![promo("promo_1RekomiSarah20Code", None)],
                unresolved: false,
                full_discount: false
            },
            referral: None,
            client_reference_id: some("shop_user_4812"),
            created: 1_772_546_400,
        }
    );
}

#[test]
fn the_storys_subscription_lists_discount_ids_only() {
    let subscription = subscription_fact(fixture("current", "customer.subscription.created__with_discount.json"));

    assert_eq!(
        subscription,
        SubscriptionFact {
            subscription_id: stripe_id(STORY_SUBSCRIPTION),
            customer_id: some(STORY_CUSTOMER),
            status: "active".to_owned(),
            latest_invoice: some(STORY_INVOICE),
            discounts: Discounts { promotion_codes: Vec::new(), unresolved: true, full_discount: false },
            referral: None,
            currency: some("usd"),
            created: 1_772_546_458,
        }
    );
}

#[test]
fn the_storys_promotion_code_created_gives_its_active_flag_and_other_types_are_ignored() {
    assert_eq!(
        fixture("current", "promotion_code.created.json"),
        StripeFact::PromotionCodeUpdated { id: stripe_id("promo_1RekomiSarah20Code"), active: true }
    );
    assert_eq!(fixture("current", "coupon.created.json"), StripeFact::Ignored);
    assert_eq!(fixture("current", "transfer.created.json"), StripeFact::Ignored);
}

#[test]
fn older_invoices_name_their_subscription_charge_and_payment_intent_at_the_top_level() {
    let cycle = invoice_fact(fixture("older", "invoice.paid__2020-03-02__subscription_cycle.json"));
    assert_eq!(cycle.invoice_id, "in_1RekomiOldCycle");
    assert_eq!(cycle.subscription_id, some("sub_1RekomiOldCycle"));
    assert!(cycle.renewal, "billing_reason subscription_cycle is a renewal");
    assert_eq!((cycle.charge_id, cycle.payment_intent_id), (None, None));
    assert_eq!(cycle.amount_paid, 0);
    assert_eq!(cycle.paid_at, 1_622_509_200);
    assert_eq!(cycle.discounts, Discounts::default());

    let one_off = invoice_fact(fixture("older", "invoice.payment_succeeded__2020-08-27__one_off_charge.json"));
    assert_eq!(one_off.invoice_id, "in_1RekomiOldOneOff");
    assert_eq!(one_off.subscription_id, None);
    assert_eq!(one_off.charge_id, some("ch_1RekomiOldOneOff"));
    assert_eq!(one_off.payment_intent_id, some("pi_1RekomiOldOneOff"));
    assert_eq!(one_off.amount_paid, 3900);
    assert_eq!(one_off.paid_at, 1_648_320_013);
}

#[test]
fn an_older_invoice_with_a_singular_coupon_discount_is_resolved_without_a_promotion_code() {
    // `discount: {id: di_1RekomiOldLoyal10, coupon: {LOYAL10, percent_off: 10}, promotion_code:
    // null}` and `discounts: ["di_1RekomiOldLoyal10"]`: the listed id is the expanded one.
    let fact = invoice_fact(fixture("older", "invoice.paid__2024-06-20__singular_coupon_discount.json"));

    assert_eq!(fact.invoice_id, "in_1RekomiOldLoyal");
    assert_eq!(fact.discounts, Discounts { promotion_codes: Vec::new(), unresolved: false, full_discount: false });
    assert_eq!(fact.customer_email, some("pat@buyers.example"));
    assert_eq!(fact.charge_id, some("ch_3RekomiOldLoyal"));
    assert_eq!(fact.payment_intent_id, some("pi_3RekomiOldLoyal"));
    assert_eq!(fact.subscription_id, some("sub_1RekomiOldLoyal"));
    // The older `subscription_details` (not under `parent`) carries the referral.
    assert_eq!(fact.referral, some("bob-links"));
    assert_eq!(fact.paid_at, 1_719_849_603);
}

#[test]
fn older_refunds_name_their_invoice() {
    let invoiced = refund_fact(fixture("older", "charge.refunded__2020-03-02__names_its_invoice.json"));
    assert_eq!(invoiced.charge_id, "ch_1RekomiOldInvoiced");
    assert_eq!(invoiced.invoice_id, some("in_1RekomiOldInvoiced"));
    assert_eq!(invoiced.payment_intent_id, some("pi_1RekomiOldInvoiced"));
    assert_eq!((invoiced.amount, invoiced.amount_refunded), (2500, 2500));
    assert_eq!(invoiced.refunded_at, 1_649_130_000);

    // A partial refund of a charge whose `invoice` is null.
    let partial = refund_fact(fixture("older", "charge.refunded__2022-11-15__partial_without_invoice.json"));
    assert_eq!((partial.amount, partial.amount_refunded), (1500, 500));
    assert_eq!(partial.invoice_id, None);
    assert_eq!(partial.customer_id, some("cus_1RekomiOldPartial"));
    assert_eq!(partial.payment_intent_id, some("pi_3RekomiOldPartial"));

    let bare = refund_fact(fixture("older", "charge.refunded__2020-08-27__without_links.json"));
    assert_eq!((bare.invoice_id, bare.payment_intent_id, bare.customer_id), (None, None, None));
}

#[test]
fn older_checkouts_subscriptions_and_promotion_codes_decode() {
    // Sessions of 2020 carry no `created`: the event's stands in.
    let early = checkout_fact(fixture("older", "checkout.session.completed__2020-08-27__without_created.json"));
    assert_eq!(early.created, 1_648_319_959);
    assert_eq!(early.mode, CheckoutMode::Payment);
    assert_eq!(early.payment_intent_id, some("pi_1RekomiOldNoCreated"));
    assert_eq!(early.customer_email, some("casey@buyers.example"));
    assert_eq!(early.amount_total, 3000);
    assert_eq!(early.discounts, Discounts::default());

    let invoiced = checkout_fact(fixture("older", "checkout.session.completed__2022-11-15__names_its_invoice.json"));
    assert_eq!(invoiced.invoice_id, some("in_1RekomiOldEuro"));
    assert_eq!(invoiced.currency, some("eur"));

    let subscription = subscription_fact(fixture("older", "customer.subscription.created__2020-08-27__singular_discount.json"));
    assert_eq!(subscription.subscription_id, "sub_1RekomiOldSingular");
    assert_eq!(subscription.latest_invoice, some("in_1RekomiOldSingular"));
    assert_eq!(subscription.discounts, Discounts::default());
    assert_eq!(subscription.currency, None);

    // 2023-10-16: the coupon sits at the top level of the promotion code.
    assert_eq!(
        fixture("older", "promotion_code.created__2023-10-16__top_level_coupon.json"),
        StripeFact::PromotionCodeUpdated { id: stripe_id("promo_1RekomiOldFriends"), active: true }
    );
    for ignored in ["customer.discount.created__2020-08-27.json", "invoice.finalized__2020-03-02.json", "refund.created__2020-03-02.json"] {
        assert_eq!(fixture("older", ignored), StripeFact::Ignored, "{ignored}");
    }
}

// ---------------------------------------------------------------------------------------------
// Optional cross-checks against the shared reference events (`<shared>/stripe/events/`), run
// only when that folder is present

/// Wraps a pay-rails capture in a synthetic event of the type that carries it. pay-rails keeps
/// only the data: `{"object": {…}}` (an event's `data`) or the bare object (the invoice).
fn wrapped(file: &str, bytes: &[u8]) -> Vec<u8> {
    let event_type = match file {
        "pay-rails__charge.refunded.json" => "charge.refunded",
        "pay-rails__checkout.session.completed.json" => "checkout.session.completed",
        "pay-rails__invoice.json" => "invoice.paid",
        "pay-rails__subscription.created.json" => "customer.subscription.created",
        other => panic!("no event type known for the captured data {other}"),
    };
    let mut data: Value = serde_json::from_slice(bytes).expect("captured data is JSON");
    let object = match data.as_object_mut() {
        Some(data) if data.len() == 1 && data.get("object").is_some_and(Value::is_object) => data.remove("object").expect("checked"),
        _ => data,
    };
    event(event_type, object)
}

fn is_event(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Value>(bytes).is_ok_and(|value| value["object"] == "event")
}

/// What a fact says about the shape it came from (which links and discounts it found), without
/// the values: the project's story and the shared one must agree on it file by file.
fn shape_of(fact: &StripeFact) -> String {
    match fact {
        StripeFact::InvoicePaid(i) => format!(
            "invoice subscription={} charge={} payment_intent={} codes={} unresolved={}",
            i.subscription_id.is_some(),
            i.charge_id.is_some(),
            i.payment_intent_id.is_some(),
            i.discounts.promotion_codes.len(),
            i.discounts.unresolved
        ),
        StripeFact::SubscriptionCreated(s) => format!(
            "subscription latest_invoice={} codes={} unresolved={}",
            s.latest_invoice.is_some(),
            s.discounts.promotion_codes.len(),
            s.discounts.unresolved
        ),
        StripeFact::CheckoutCompleted(c) => format!(
            "checkout mode={:?} subscription={} invoice={} payment_intent={} codes={}",
            c.mode,
            c.subscription_id.is_some(),
            c.invoice_id.is_some(),
            c.payment_intent_id.is_some(),
            c.discounts.promotion_codes.len()
        ),
        StripeFact::ChargeRefunded(r) => format!(
            "refund invoice={} payment_intent={} full={}",
            r.invoice_id.is_some(),
            r.payment_intent_id.is_some(),
            r.amount_refunded == r.amount
        ),
        StripeFact::PromotionCodeUpdated { active, .. } => format!("promotion code active={active}"),
        other => format!("{other:?}"),
    }
}

#[test]
fn every_shared_current_event_decodes_like_the_projects_event_of_the_same_name() {
    let Some(shared) = StripeEvents::shared() else { return };
    let own = StripeEvents::in_repo();
    let own_files = own.files("current");
    let (mut decoded, mut compared) = (0, 0);
    for file in shared.files("current") {
        let bytes = shared.bytes("current", &file);
        if file == "signature_vectors.json" {
            // Signature test vectors, not an event.
            assert!(!is_event(&bytes));
            continue;
        }
        let envelope = DECODER.envelope(&bytes).unwrap_or_else(|err| panic!("shared current/{file}: {err}"));
        assert!(envelope.id.as_str().starts_with("evt_"), "shared current/{file}: {envelope:?}");
        let fact = decode_file(&shared, "current", &file);
        decoded += 1;
        if own_files.contains(&file) {
            assert_eq!(shape_of(&decode_file(&own, "current", &file)), shape_of(&fact), "current/{file}: the project's and the shared one");
            compared += 1;
        }
    }
    assert!(decoded >= 10, "only {decoded} shared current events found");
    assert!(compared >= 9, "only {compared} of the project's story events have a shared counterpart");
}

/// Shared captured data that names an id of the wrong kind, which Stripe never sends: other
/// projects' test data, refused naming the field. pay-rails' refunded charge gives a payment
/// method id (`pm_…`) as its `payment_intent`.
const SHARED_WITH_WRONG_IDS: &[(&str, &str)] =
    &[("pay-rails__charge.refunded.json", "`data.object.payment_intent` is not a Stripe payment intent id")];

#[test]
fn every_shared_captured_event_decodes_and_bare_objects_decode_as_their_event() {
    let Some(shared) = StripeEvents::shared() else { return };
    let mut decoded = 0;
    for file in shared.files("captured") {
        let bytes = shared.bytes("captured", &file);
        if let Some((_, field)) = SHARED_WITH_WRONG_IDS.iter().find(|(name, _)| *name == file) {
            let err = DECODER.decode(&wrapped(&file, &bytes)).expect_err(&file);
            assert!(err.0.contains(field), "shared captured/{file}: {err}");
        } else if is_event(&bytes) {
            DECODER.envelope(&bytes).unwrap_or_else(|err| panic!("shared captured/{file}: {err}"));
            decode_file(&shared, "captured", &file);
        } else {
            let fact = DECODER.decode(&wrapped(&file, &bytes)).unwrap_or_else(|err| panic!("shared captured/{file} (wrapped): {err}"));
            assert_ne!(fact, StripeFact::Ignored, "shared captured/{file}");
        }
        decoded += 1;
    }
    assert!(decoded >= 18, "only {decoded} shared captured files found");
}

// ---------------------------------------------------------------------------------------------
// Minimal payloads, one shape rule each

#[test]
fn an_expanded_clover_discount_gives_its_promotion_code_text_and_a_full_discount_from_source_coupon() {
    let discount = json!({
        "id": "di_1", "object": "discount",
        "promotion_code": { "id": "promo_1", "object": "promotion_code", "code": "FRIENDS100", "active": true },
        "source": { "type": "coupon", "coupon": { "id": "FREE", "object": "coupon", "percent_off": 100 } },
    });

    let fact = invoice_fact(decode_event("invoice.paid", invoice(json!({ "discounts": [discount.clone()] }))));
    let subscription = subscription_fact(decode_event("customer.subscription.created", subscription(json!({ "discounts": [discount] }))));

    let expected = Discounts { promotion_codes: vec![promo("promo_1", Some("FRIENDS100"))], unresolved: false, full_discount: true };
    assert_eq!(fact.discounts, expected);
    assert_eq!(subscription.discounts, expected);
}

#[test]
fn a_coupon_left_as_an_id_or_taking_less_than_everything_is_not_a_full_discount() {
    let discounts = json!([
        { "id": "di_1", "promotion_code": "promo_1", "source": { "type": "coupon", "coupon": "FREE" } },
        { "id": "di_2", "promotion_code": null, "source": { "type": "coupon", "coupon": { "id": "HALF", "percent_off": 50.0 } } },
        { "id": "di_3", "promotion_code": null, "source": { "type": "coupon", "coupon": { "id": "FIVE", "amount_off": 500, "percent_off": null } } },
    ]);

    let fact = invoice_fact(decode_event("invoice.paid", invoice(json!({ "discounts": discounts }))));

    assert_eq!(fact.discounts, Discounts { promotion_codes: vec![promo("promo_1", None)], unresolved: false, full_discount: false });
}

#[test]
fn older_singular_discount_with_a_top_level_coupon_is_read() {
    let fact = invoice_fact(decode_event(
        "invoice.paid",
        invoice(json!({
            "discount": { "id": "di_1", "object": "discount", "promotion_code": "promo_1", "coupon": { "id": "FREE", "percent_off": 100 } },
            "discounts": ["di_1"],
        })),
    ));
    let subscription = subscription_fact(decode_event(
        "customer.subscription.created",
        subscription(
            json!({ "discount": { "id": "di_2", "promotion_code": { "id": "promo_2", "code": "BOB10" }, "coupon": { "id": "TEN", "percent_off": 10 } } }),
        ),
    ));

    assert_eq!(fact.discounts, Discounts { promotion_codes: vec![promo("promo_1", None)], unresolved: false, full_discount: true });
    assert_eq!(
        subscription.discounts,
        Discounts { promotion_codes: vec![promo("promo_2", Some("BOB10"))], unresolved: false, full_discount: false }
    );
}

#[test]
fn discount_ids_not_expanded_anywhere_are_unresolved() {
    let fact = invoice_fact(decode_event(
        "invoice.paid",
        invoice(json!({
            "discounts": ["di_1", "di_2"],
            // Expanded in the totals: di_1 is known, di_2 is not.
            "total_discount_amounts": [
                { "amount": 100, "discount": { "id": "di_1", "promotion_code": { "id": "promo_1", "code": "ALICE20" }, "source": { "coupon": "A" } } },
                { "amount": 100, "discount": "di_2" },
            ],
        })),
    ));

    assert_eq!(
        fact.discounts,
        Discounts { promotion_codes: vec![promo("promo_1", Some("ALICE20"))], unresolved: true, full_discount: false }
    );
}

#[test]
fn checkout_discounts_give_promotion_codes_from_the_list_and_the_breakdown() {
    let checkout = checkout_fact(decode_event(
        "checkout.session.completed",
        session(json!({
            "discounts": [
                { "coupon": null, "promotion_code": { "id": "promo_1", "object": "promotion_code", "code": "ALICE20" } },
                { "coupon": { "id": "FREE", "percent_off": 100 }, "promotion_code": "promo_2" },
                { "coupon": "PLAIN", "promotion_code": null },
            ],
            "total_details": { "amount_discount": 1500, "breakdown": { "discounts": [
                { "amount": 1000, "discount": { "id": "di_1", "promotion_code": "promo_1", "source": { "type": "coupon", "coupon": "A" } } },
                { "amount": 500, "discount": { "id": "di_3", "promotion_code": { "id": "promo_3", "code": "CAROL5" }, "coupon": { "id": "B", "percent_off": 5 } } },
            ] } },
        })),
    ));

    assert_eq!(
        checkout.discounts,
        Discounts {
            promotion_codes: vec![promo("promo_1", Some("ALICE20")), promo("promo_2", None), promo("promo_3", Some("CAROL5"))],
            unresolved: false,
            full_discount: true,
        }
    );
}

#[test]
fn the_invoice_referral_comes_from_the_invoice_then_the_subscription_details() {
    let referral = |extra: Value| invoice_fact(decode_event("invoice.paid", invoice(extra))).referral;
    let parent = json!({ "type": "subscription_details", "subscription_details": { "subscription": "sub_1", "metadata": { "rekomi_ref": "from_parent" } } });

    assert_eq!(
        referral(json!({ "metadata": { "rekomi_ref": "from_invoice" }, "parent": parent.clone() })).as_deref(),
        Some("from_invoice")
    );
    assert_eq!(referral(json!({ "metadata": {}, "parent": parent })).as_deref(), Some("from_parent"));
    assert_eq!(
        referral(
            json!({ "metadata": { "rekomi_ref": "" }, "subscription_details": { "metadata": { "rekomi_ref": "from_older_details" } } })
        )
        .as_deref(),
        Some("from_older_details")
    );
    assert_eq!(referral(json!({ "metadata": { "affiliate_ref": "other" }, "subscription_details": { "metadata": null } })), None);
}

#[test]
fn subscription_and_checkout_referrals_and_the_client_reference_id_are_read() {
    let subscription =
        subscription_fact(decode_event("customer.subscription.created", subscription(json!({ "metadata": { "rekomi_ref": "aff_sub" } }))));
    let checkout = checkout_fact(decode_event(
        "checkout.session.completed",
        session(json!({ "metadata": { "rekomi_ref": "aff_checkout" }, "client_reference_id": "rekomi_click_42" })),
    ));
    let bare = checkout_fact(decode_event("checkout.session.completed", session(json!({ "client_reference_id": null }))));

    assert_eq!(subscription.referral.as_deref(), Some("aff_sub"));
    assert_eq!(checkout.referral.as_deref(), Some("aff_checkout"));
    assert_eq!(checkout.client_reference_id.as_deref(), Some("rekomi_click_42"));
    assert_eq!((bare.referral, bare.client_reference_id), (None, None));
}

#[test]
fn the_subscription_of_an_invoice_is_read_from_parent_first_then_the_top_level() {
    let subscription = |extra: Value| invoice_fact(decode_event("invoice.paid", invoice(extra))).subscription_id;

    assert_eq!(
        subscription(json!({ "parent": { "subscription_details": { "subscription": "sub_parent" } }, "subscription": "sub_top" }))
            .as_ref()
            .map(|id| id.as_str()),
        Some("sub_parent")
    );
    assert_eq!(
        subscription(json!({ "parent": null, "subscription": { "id": "sub_expanded", "object": "subscription" } }))
            .as_ref()
            .map(|id| id.as_str()),
        Some("sub_expanded")
    );
    assert_eq!(subscription(json!({})), None);
}

#[test]
fn references_may_be_expanded_objects() {
    let checkout = checkout_fact(decode_event(
        "checkout.session.completed",
        session(json!({
            "customer": { "id": "cus_1", "object": "customer" },
            "subscription": { "id": "sub_1", "object": "subscription" },
            "invoice": { "id": "in_1", "object": "invoice" },
            "payment_intent": { "id": "pi_1", "object": "payment_intent" },
            "customer_details": null,
            "customer_email": "buyer@example.com",
        })),
    ));
    let refund = refund_fact(decode_event(
        "charge.refunded",
        json!({ "id": "ch_1", "amount": 1000, "amount_refunded": 250, "currency": "eur",
                "payment_intent": { "id": "pi_1" }, "invoice": { "id": "in_1" }, "customer": { "id": "cus_1" } }),
    ));

    assert_eq!(checkout.customer_id.as_ref().map(|id| id.as_str()), Some("cus_1"));
    assert_eq!(checkout.subscription_id.as_ref().map(|id| id.as_str()), Some("sub_1"));
    assert_eq!(checkout.invoice_id.as_ref().map(|id| id.as_str()), Some("in_1"));
    assert_eq!(checkout.payment_intent_id.as_ref().map(|id| id.as_str()), Some("pi_1"));
    assert_eq!(checkout.customer_email.as_deref(), Some("buyer@example.com"));
    assert_eq!(
        refund,
        RefundFact {
            charge_id: stripe_id("ch_1"),
            payment_intent_id: some("pi_1"),
            invoice_id: some("in_1"),
            customer_id: some("cus_1"),
            amount: 1000,
            amount_refunded: 250,
            currency: "eur".to_owned(),
            refunded_at: 1_767_225_700,
        }
    );
}

#[test]
fn paid_at_falls_back_to_created_and_a_setup_session_moves_no_money() {
    let fact = invoice_fact(decode_event("invoice.paid", invoice(json!({ "status_transitions": { "paid_at": null } }))));
    let setup = checkout_fact(decode_event(
        "checkout.session.completed",
        session(json!({ "mode": "setup", "amount_total": null, "payment_status": "no_payment_required" })),
    ));

    assert_eq!(fact.paid_at, 1_767_225_600);
    assert_eq!(setup.amount_total, 0);
}

#[test]
fn promotion_code_updates_and_coupon_deletions_are_decoded() {
    assert_eq!(
        decode_event(
            "promotion_code.updated",
            json!({ "id": "promo_1", "object": "promotion_code", "active": false, "coupon": { "id": "OLD" } })
        ),
        StripeFact::PromotionCodeUpdated { id: stripe_id("promo_1"), active: false }
    );
    assert_eq!(
        decode_event("coupon.deleted", json!({ "id": "RK7SPR20", "object": "coupon", "deleted": true })),
        StripeFact::CouponDeleted { id: stripe_id("RK7SPR20") }
    );
}

#[test]
fn a_handled_type_without_a_field_rekomi_needs_is_undecodable() {
    let without = |object: Value, field: &str| {
        let mut object = object;
        object.as_object_mut().unwrap().remove(field);
        object
    };
    let charge = json!({ "id": "ch_1", "amount": 1000, "amount_refunded": 1000, "currency": "usd" });

    for (event_type, object, field) in [
        ("invoice.paid", without(invoice(json!({})), "id"), "data.object.id"),
        ("invoice.payment_succeeded", without(invoice(json!({})), "amount_paid"), "data.object.amount_paid"),
        ("invoice.paid", without(invoice(json!({})), "currency"), "data.object.currency"),
        ("charge.refunded", without(charge.clone(), "id"), "data.object.id"),
        ("charge.refunded", without(charge, "amount_refunded"), "data.object.amount_refunded"),
        ("customer.subscription.created", without(subscription(json!({})), "status"), "data.object.status"),
        ("checkout.session.completed", without(session(json!({})), "mode"), "data.object.mode"),
        ("checkout.session.completed", session(json!({ "amount_total": null })), "data.object.amount_total"),
        ("promotion_code.updated", json!({ "id": "promo_1" }), "data.object.active"),
        ("coupon.deleted", json!({ "object": "coupon" }), "data.object.id"),
    ] {
        let message = decode_error(event_type, object);
        assert!(message.contains(field), "{event_type} without {field}: {message}");
        assert!(message.contains("evt_1Rekomi"), "{message}");
    }
    // An invoice id of the wrong type is as good as missing.
    assert!(decode_error("invoice.paid", invoice(json!({ "id": 42 }))).contains("data.object.id"));
    // So is a handled event without its object.
    let no_object = json!({ "id": "evt_1", "type": "invoice.paid", "created": 1_767_225_700, "livemode": false, "data": {} }).to_string();
    assert!(DECODER.decode(no_object.as_bytes()).unwrap_err().0.contains("data.object"));
}

#[test]
fn an_id_of_the_wrong_kind_is_undecodable_naming_its_field() {
    let charge = json!({ "id": "ch_1", "amount": 1000, "amount_refunded": 1000, "currency": "usd" });
    let with = |object: Value, extra: Value| merge(object, extra);
    for (event_type, object, field, kind) in [
        ("invoice.paid", invoice(json!({ "id": "cus_1" })), "`data.object.id`", "invoice"),
        ("invoice.paid", invoice(json!({ "customer": "in_1" })), "`data.object.customer`", "customer"),
        ("invoice.paid", invoice(json!({ "customer": { "id": "sub_1", "object": "customer" } })), "`data.object.customer`", "customer"),
        ("invoice.paid", invoice(json!({ "subscription": "cus_1" })), "`data.object.subscription`", "subscription"),
        (
            "invoice.paid",
            invoice(json!({ "parent": { "subscription_details": { "subscription": "in_1" } } })),
            "`data.object.parent.subscription_details.subscription`",
            "subscription",
        ),
        ("invoice.paid", invoice(json!({ "charge": "pi_1" })), "`data.object.charge`", "charge"),
        ("invoice.paid", invoice(json!({ "payment_intent": "ch_1" })), "`data.object.payment_intent`", "payment intent"),
        (
            "invoice.paid",
            invoice(json!({ "discounts": [{ "id": "di_1", "promotion_code": "cus_1" }] })),
            "`data.object.discounts[].promotion_code`",
            "promotion code",
        ),
        ("customer.subscription.created", subscription(json!({ "id": "in_1" })), "`data.object.id`", "subscription"),
        ("customer.subscription.created", subscription(json!({ "latest_invoice": "sub_1" })), "`data.object.latest_invoice`", "invoice"),
        ("checkout.session.completed", session(json!({ "id": "pi_1" })), "`data.object.id`", "checkout session"),
        ("checkout.session.completed", session(json!({ "invoice": "cs_1" })), "`data.object.invoice`", "invoice"),
        (
            "checkout.session.completed",
            session(json!({ "discounts": [{ "promotion_code": "in_1" }] })),
            "`data.object.discounts[].promotion_code`",
            "promotion code",
        ),
        ("charge.refunded", with(charge.clone(), json!({ "id": "pi_1" })), "`data.object.id`", "charge"),
        ("charge.refunded", with(charge.clone(), json!({ "invoice": "ch_1" })), "`data.object.invoice`", "invoice"),
        ("charge.refunded", with(charge, json!({ "payment_intent": "pm_1234" })), "`data.object.payment_intent`", "payment intent"),
        ("promotion_code.updated", json!({ "id": "RK7SPR20", "active": false }), "`data.object.id`", "promotion code"),
        ("coupon.deleted", json!({ "id": "x".repeat(256), "object": "coupon" }), "`data.object.id`", "coupon"),
    ] {
        let message = decode_error(event_type, object);
        assert!(message.contains(&format!("{field} is not a Stripe {kind} id")), "{event_type} {field}: {message}");
        assert!(message.contains("evt_1Rekomi"), "{message}");
    }
    // A reference that is absent, null or not a string is still no reference at all.
    let fact = invoice_fact(decode_event("invoice.paid", invoice(json!({ "customer": null, "charge": 42, "payment_intent": "" }))));
    assert_eq!((fact.customer_id, fact.charge_id, fact.payment_intent_id), (None, None, None));
}

#[test]
fn an_envelope_with_an_event_or_account_id_of_the_wrong_kind_is_undecodable() {
    let envelope = |id: &str, account: Value| {
        json!({ "id": id, "type": "customer.created", "created": 1_767_225_700, "livemode": false, "account": account }).to_string()
    };
    let err = DECODER.envelope(envelope("in_1", Value::Null).as_bytes()).unwrap_err();
    assert!(err.0.contains("`id` is not a Stripe event id"), "{err}");
    let err = DECODER.envelope(envelope("evt_1", json!("cus_1")).as_bytes()).unwrap_err();
    assert!(err.0.contains("`account` is not a Stripe account id"), "{err}");
    let err = DECODER.envelope(envelope("evt_1", json!("acct_\u{0}")).as_bytes()).unwrap_err();
    assert!(err.0.contains("`account` is not a Stripe account id"), "{err}");
    let ok = DECODER.envelope(envelope("evt_1", json!("acct_1Connected")).as_bytes()).unwrap();
    assert_eq!(ok.account, some("acct_1Connected"));
}

#[test]
fn error_messages_do_not_repeat_payload_values() {
    let message =
        decode_error("checkout.session.completed", session(json!({ "mode": null, "customer_email": "secret.buyer@example.com" })));

    assert!(!message.contains("secret.buyer"), "{message}");
}

#[test]
fn unknown_fields_and_unknown_types_never_fail() {
    let fact =
        invoice_fact(decode_event("invoice.paid", invoice(json!({ "brand_new_field": { "nested": [1, 2, 3] }, "discounts": [42, null] }))));
    assert_eq!(fact.discounts, Discounts::default());

    assert_eq!(decode_event("invoice.finalized", json!({ "id": "in_1" })), StripeFact::Ignored);
    assert_eq!(decode_event("v2.core.event_destination.ping", json!(null)), StripeFact::Ignored);
    let no_data = json!({ "id": "evt_1", "type": "customer.created", "created": 1_767_225_700, "livemode": true }).to_string();
    assert_eq!(decode(no_data.as_bytes()), StripeFact::Ignored);
}

#[test]
fn the_envelope_names_the_connected_account_when_there_is_one() {
    let envelope = |account: Value| {
        let payload = json!({ "id": "evt_1", "type": "invoice.paid", "account": account, "created": 1_767_225_700, "livemode": true, "data": { "object": {} } });
        DECODER.envelope(payload.to_string().as_bytes())
    };

    assert_eq!(
        envelope(json!("acct_1Connected")).unwrap(),
        EventEnvelope {
            id: stripe_id("evt_1"),
            event_type: "invoice.paid".to_owned(),
            account: some("acct_1Connected"),
            created: 1_767_225_700,
            livemode: true
        }
    );
    assert_eq!(envelope(Value::Null).unwrap().account, None);
    assert!(envelope(json!(7)).is_err());
    // Text no account id can contain (a NUL cannot even be stored) is refused like a bad `id`.
    for bad in ["acct_\u{0}", "acct_\n1", ""] {
        let message = envelope(json!(bad)).unwrap_err().0;
        assert!(message.contains("`account`"), "{bad:?}: {message}");
    }
}

#[test]
fn negative_and_absurd_amounts_are_refused_naming_the_field() {
    let charge = json!({ "id": "ch_1", "amount": 1000, "amount_refunded": 1000, "currency": "usd" });
    let with = |object: Value, field: &str, value: Value| {
        let mut object = object;
        object[field] = value;
        object
    };
    for value in [json!(-9900), json!(-1), json!(1_000_000_000_000_i64), json!(i64::MAX), json!(9900.5), json!("9900")] {
        for (event_type, object, field) in [
            ("invoice.paid", with(invoice(json!({})), "amount_paid", value.clone()), "amount_paid"),
            ("checkout.session.completed", with(session(json!({})), "amount_total", value.clone()), "amount_total"),
            ("charge.refunded", with(charge.clone(), "amount_refunded", value.clone()), "amount_refunded"),
            ("charge.refunded", with(charge.clone(), "amount", value.clone()), "data.object.amount"),
        ] {
            let message = decode_error(event_type, object);
            assert!(message.contains(field), "{event_type} with {field} = {value}: {message}");
        }
    }
    // The largest amount of Stripe's largest currencies still decodes.
    let fact = invoice_fact(decode_event("invoice.paid", invoice(json!({ "amount_paid": 999_999_999_999_i64 }))));
    assert_eq!(fact.amount_paid, 999_999_999_999);
    assert_eq!(invoice_fact(decode_event("invoice.paid", invoice(json!({ "amount_paid": 0 })))).amount_paid, 0);
}

#[test]
fn timestamps_outside_2000_to_9999_are_refused_instead_of_becoming_1970() {
    for bad in [json!(0), json!(-1), json!(946_684_799), json!(253_402_300_800_i64), json!(i64::MAX), json!("1767225600")] {
        let message = decode_error("invoice.paid", invoice(json!({ "status_transitions": { "paid_at": bad } })));
        assert!(message.contains("status_transitions.paid_at"), "{bad}: {message}");
        let message = decode_error("invoice.paid", invoice(json!({ "created": bad, "status_transitions": { "paid_at": null } })));
        assert!(message.contains("data.object.created"), "{bad}: {message}");
        let message = decode_error("customer.subscription.created", subscription(json!({ "created": bad })));
        assert!(message.contains("data.object.created"), "{bad}: {message}");
        let message = decode_error("checkout.session.completed", session(json!({ "created": bad })));
        assert!(message.contains("data.object.created"), "{bad}: {message}");
        let event = json!({ "id": "evt_1", "type": "customer.created", "created": bad, "livemode": false }).to_string();
        assert!(DECODER.envelope(event.as_bytes()).unwrap_err().0.contains("`created`"), "{bad}");
    }
    let first = invoice_fact(decode_event("invoice.paid", invoice(json!({ "status_transitions": { "paid_at": 946_684_800 } }))));
    assert_eq!(first.paid_at, 946_684_800);
}

#[test]
fn bytes_that_are_not_a_stripe_event_are_undecodable() {
    for payload in [
        &b"not json"[..],
        b"",
        b"[1,2]",
        b"\"evt_1\"",
        br#"{"id":"evt_1","created":1,"livemode":false}"#,
        br#"{"type":"invoice.paid","created":1,"livemode":false}"#,
        br#"{"id":"evt_1","type":"invoice.paid","livemode":false}"#,
        br#"{"id":"evt_1","type":"invoice.paid","created":1}"#,
    ] {
        assert!(DECODER.envelope(payload).is_err(), "{}", String::from_utf8_lossy(payload));
        assert!(DECODER.decode(payload).is_err(), "{}", String::from_utf8_lossy(payload));
    }
}

#[test]
fn stripe_vocabulary_becomes_facts_renewals_paid_sessions_and_modes() {
    for (reason, renewal) in [
        (json!("subscription_cycle"), true),
        (json!("subscription_update"), true),
        (json!("subscription_threshold"), true),
        (json!("subscription_create"), false),
        (json!("manual"), false),
        (Value::Null, false),
    ] {
        let fact = invoice_fact(decode_event("invoice.paid", invoice(json!({ "billing_reason": reason.clone() }))));
        assert_eq!(fact.renewal, renewal, "{reason}");
    }
    for (status, paid) in [("paid", true), ("no_payment_required", true), ("unpaid", false)] {
        assert_eq!(checkout_fact(decode_event("checkout.session.completed", session(json!({ "payment_status": status })))).paid, paid);
    }
    for (mode, want) in [("payment", CheckoutMode::Payment), ("subscription", CheckoutMode::Subscription), ("setup", CheckoutMode::Setup)] {
        let fact = checkout_fact(decode_event("checkout.session.completed", session(json!({ "mode": mode, "amount_total": 0 }))));
        assert_eq!(fact.mode, want);
    }
    assert!(decode_error("checkout.session.completed", session(json!({ "mode": "donation" }))).contains("data.object.mode"));
    assert!(
        decode_error("checkout.session.completed", session(json!({ "payment_status": "maybe" }))).contains("data.object.payment_status")
    );
}

#[test]
fn account_updated_carries_the_connected_accounts_payout_state() {
    let fact = decode_event(
        "account.updated",
        json!({ "id": "acct_1Express", "object": "account", "payouts_enabled": true, "details_submitted": true }),
    );
    match fact {
        StripeFact::AccountUpdated(a) => assert_eq!((a.id.as_str(), a.payouts_enabled, a.details_submitted), ("acct_1Express", true, true)),
        other => panic!("{other:?}"),
    }
    // Flags Stripe leaves out are false: an account that never said it can be paid cannot.
    match decode_event("account.updated", json!({ "id": "acct_1Express", "object": "account" })) {
        StripeFact::AccountUpdated(a) => assert!(!a.payouts_enabled && !a.details_submitted),
        other => panic!("{other:?}"),
    }
    assert!(decode_error("account.updated", json!({ "id": "cus_1", "object": "account" })).contains("id"));
}

#[test]
fn transfer_reversed_names_the_payout_of_its_metadata_and_tells_partial_reversals_apart() {
    let payout = "0190a0b0-0000-7000-8000-000000000001";
    let org = "0190a0b0-0000-7000-8000-000000000002";
    let full = json!({ "id": "tr_1Full", "object": "transfer", "amount": 1000, "amount_reversed": 1000, "reversed": true,
                       "metadata": { "rekomi_payout_id": payout, "rekomi_org_id": org } });
    match decode_event("transfer.reversed", full) {
        StripeFact::TransferReversed { transfer, payout_id, org_id, fully_reversed } => {
            assert_eq!(transfer.as_str(), "tr_1Full");
            assert_eq!(payout_id.map(|p| p.to_string()).as_deref(), Some(payout));
            assert_eq!(org_id.map(|o| o.to_string()).as_deref(), Some(org));
            assert!(fully_reversed);
        }
        other => panic!("{other:?}"),
    }
    let partial =
        json!({ "id": "tr_1Part", "object": "transfer", "amount": 1000, "amount_reversed": 300, "reversed": false, "metadata": {} });
    match decode_event("transfer.reversed", partial) {
        StripeFact::TransferReversed { payout_id, fully_reversed, .. } => assert!(payout_id.is_none() && !fully_reversed),
        other => panic!("{other:?}"),
    }
}
