//! `StripeGateway`'s four reads against the scripted Stripe double: the promotion codes of an
//! invoice or a subscription (`expand[]=discounts.promotion_code`), the invoice of a payment
//! (`GET /v1/invoice_payments`) and a customer's referral (`GET /v1/customers/{id}`). Request
//! shapes, headers, retries and error mapping.
//!
//! Replies are the project's own Stripe objects (`tests/fixtures/objects/`, current shapes),
//! patched at run time. One optional cross-check makes the same reads answered with Stripe's
//! published objects, when the shared reference folder is present (`REKOMI_SHARED_DIR`, else
//! `shared/` beside the workspace); without it, that check does not run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rekomi_domain::ports::gateway::{GatewayContext, GatewayError, PaymentGateway};
use rekomi_domain::stripe_inbox::facts::PromotionCodeRef;
use serde_json::json;
use support::*;

const PLATFORM: GatewayContext = GatewayContext { stripe_account: None };
const INVOICE_ID: &str = "in_1RekomiInvoice";
const SUBSCRIPTION_ID: &str = "sub_1RekomiSubscription";
const PAYMENT_INTENT_ID: &str = "pi_3RekomiPayment";
const CHARGE_ID: &str = "ch_3RekomiCharge";
const CUSTOMER_ID: &str = "cus_1RekomiCustomer";
const EXPAND: (&str, &str) = ("expand[]", "discounts.promotion_code");

fn connected(account: &str) -> GatewayContext {
    GatewayContext { stripe_account: Some(stripe_id(account)) }
}

/// What [`StripeObjects::expanded_discounts`] names: the expanded code with its text, the code
/// left as an id without; the plain coupon gives nothing and the repeated code counts once.
fn expected_codes() -> Vec<PromotionCodeRef> {
    vec![
        PromotionCodeRef { id: stripe_id(PROMOTION_CODE_ID), code: Some("ALICE20".to_owned()) },
        PromotionCodeRef { id: stripe_id("promo_2RekomiOther"), code: None },
    ]
}

/// A read: authenticated, no idempotency key, no body.
fn assert_read(request: &Recorded, path: &str) {
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, path);
    assert_eq!(request.header("authorization"), Some(format!("Bearer {SECRET_KEY}").as_str()));
    assert_eq!(request.header("idempotency-key"), None, "a GET carries no idempotency key");
    assert!(request.body.is_empty(), "unexpected body {:?}", request.body);
}

#[tokio::test]
async fn invoice_promotion_codes_get_the_invoice_with_the_discounts_promotion_codes_expanded() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.invoice_with_discounts(INVOICE_ID)]).await;

    let codes = double.gateway().invoice_promotion_codes(&PLATFORM, &stripe_id(INVOICE_ID)).await.unwrap();

    assert_eq!(codes, expected_codes());
    let request = double.single_request();
    assert_read(&request, &format!("/v1/invoices/{INVOICE_ID}"));
    request.assert_query(&[EXPAND]);
    assert_eq!(request.header("stripe-account"), None);
}

#[tokio::test]
async fn subscription_promotion_codes_get_the_subscription_with_the_discounts_promotion_codes_expanded() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.subscription_with_discounts(SUBSCRIPTION_ID)]).await;

    let codes = double.gateway().subscription_promotion_codes(&PLATFORM, &stripe_id(SUBSCRIPTION_ID)).await.unwrap();

    assert_eq!(codes, expected_codes());
    let request = double.single_request();
    assert_read(&request, &format!("/v1/subscriptions/{SUBSCRIPTION_ID}"));
    request.assert_query(&[EXPAND]);
}

#[tokio::test]
async fn an_invoice_without_discounts_has_no_promotion_codes() {
    let stripe = StripeObjects::load();
    // The invoice fixture as it is: `discounts: []`.
    let mut invoice = stripe.object("invoice");
    invoice["id"] = json!(INVOICE_ID);
    let double = StripeDouble::start(vec![Reply::json_value(200, &invoice)]).await;

    let codes = double.gateway().invoice_promotion_codes(&PLATFORM, &stripe_id(INVOICE_ID)).await.unwrap();

    assert!(codes.is_empty(), "{codes:?}");
}

#[tokio::test]
async fn the_invoice_of_a_payment_is_looked_up_by_its_payment_intent() {
    let stripe = StripeObjects::load();
    let payment = stripe.invoice_payment(json!(INVOICE_ID), json!({ "type": "payment_intent", "payment_intent": PAYMENT_INTENT_ID }));
    let double = StripeDouble::start(vec![stripe.invoice_payments(vec![payment])]).await;

    let invoice = double.gateway().invoice_of_payment(&PLATFORM, &stripe_id(CHARGE_ID), Some(stripe_id(PAYMENT_INTENT_ID))).await.unwrap();

    assert_eq!(invoice.as_ref().map(|i| i.as_str()), Some(INVOICE_ID));
    let request = double.single_request();
    assert_read(&request, "/v1/invoice_payments");
    request.assert_query(&[("payment[type]", "payment_intent"), ("payment[payment_intent]", PAYMENT_INTENT_ID)]);
}

#[tokio::test]
async fn a_payment_without_a_payment_intent_belongs_to_no_invoice_and_stripe_is_not_asked() {
    // Since 2025-03-31 every invoice payment goes through a payment intent, and Stripe's
    // invoice-payments filter takes no charge: a bare charge is a one-time payment.
    let double = StripeDouble::start(vec![]).await;
    let invoice = double.gateway().invoice_of_payment(&PLATFORM, &stripe_id(CHARGE_ID), None).await.unwrap();
    assert_eq!(invoice, None);
    assert!(double.requests().is_empty());
}

#[tokio::test]
async fn an_expanded_invoice_in_an_invoice_payment_gives_its_id() {
    let stripe = StripeObjects::load();
    let mut invoice = stripe.object("invoice");
    invoice["id"] = json!(INVOICE_ID);
    let payment = stripe.invoice_payment(invoice, json!({ "type": "payment_intent", "payment_intent": PAYMENT_INTENT_ID }));
    let double = StripeDouble::start(vec![stripe.invoice_payments(vec![payment])]).await;

    let invoice = double.gateway().invoice_of_payment(&PLATFORM, &stripe_id(CHARGE_ID), Some(stripe_id(PAYMENT_INTENT_ID))).await.unwrap();

    assert_eq!(invoice.as_ref().map(|i| i.as_str()), Some(INVOICE_ID));
}

#[tokio::test]
async fn a_payment_without_an_invoice_payment_has_no_invoice() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.invoice_payments(Vec::new())]).await;
    let gateway = double.gateway();

    assert_eq!(gateway.invoice_of_payment(&PLATFORM, &stripe_id(CHARGE_ID), Some(stripe_id(PAYMENT_INTENT_ID))).await.unwrap(), None);
    assert_eq!(double.requests().len(), 1);
}

#[tokio::test]
async fn reads_act_on_the_connected_account_of_the_context() {
    let stripe = StripeObjects::load();
    let payment = stripe.invoice_payment(json!(INVOICE_ID), json!({ "type": "payment_intent", "payment_intent": PAYMENT_INTENT_ID }));
    let double = StripeDouble::start(vec![
        stripe.invoice_with_discounts(INVOICE_ID),
        stripe.subscription_with_discounts(SUBSCRIPTION_ID),
        stripe.invoice_payments(vec![payment]),
        stripe.invoice_with_discounts(INVOICE_ID),
    ])
    .await;
    let gateway = double.gateway();
    let acct = connected("acct_1RekomiConnected");

    gateway.invoice_promotion_codes(&acct, &stripe_id(INVOICE_ID)).await.unwrap();
    gateway.subscription_promotion_codes(&acct, &stripe_id(SUBSCRIPTION_ID)).await.unwrap();
    gateway.invoice_of_payment(&acct, &stripe_id(CHARGE_ID), Some(stripe_id(PAYMENT_INTENT_ID))).await.unwrap();
    gateway.invoice_promotion_codes(&PLATFORM, &stripe_id(INVOICE_ID)).await.unwrap();

    let accounts: Vec<Option<String>> = double.requests().iter().map(|r| r.header("stripe-account").map(str::to_owned)).collect();
    let expected = Some("acct_1RekomiConnected".to_owned());
    assert_eq!(accounts, vec![expected.clone(), expected.clone(), expected, None]);
}

#[tokio::test]
async fn a_read_is_retried_after_a_server_error_with_the_same_request() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![Reply::json(500, ERROR_API), stripe.subscription_with_discounts(SUBSCRIPTION_ID)]).await;

    let codes = double.gateway().subscription_promotion_codes(&connected("acct_9"), &stripe_id(SUBSCRIPTION_ID)).await.unwrap();

    assert_eq!(codes, expected_codes());
    let requests = double.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_read(request, &format!("/v1/subscriptions/{SUBSCRIPTION_ID}"));
        request.assert_query(&[EXPAND]);
        assert_eq!(request.header("stripe-account"), Some("acct_9"));
    }
}

#[tokio::test]
async fn an_invoice_payments_lookup_is_retried_after_rate_limiting() {
    let stripe = StripeObjects::load();
    let payment = stripe.invoice_payment(json!(INVOICE_ID), json!({ "type": "charge", "charge": CHARGE_ID }));
    let double = StripeDouble::start(vec![Reply::json(429, ERROR_RATE_LIMIT), stripe.invoice_payments(vec![payment])]).await;

    let invoice = double.gateway().invoice_of_payment(&PLATFORM, &stripe_id(CHARGE_ID), Some(stripe_id(PAYMENT_INTENT_ID))).await.unwrap();

    assert_eq!(invoice.as_ref().map(|i| i.as_str()), Some(INVOICE_ID));
    let requests = double.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].query, requests[1].query);
}

#[tokio::test]
async fn an_unknown_invoice_or_subscription_is_not_found_without_retrying() {
    let not_found = |what: &str| {
        Reply::json(
            404,
            &format!(r#"{{"error":{{"code":"resource_missing","message":"No such {what}","param":"id","type":"invalid_request_error"}}}}"#),
        )
    };
    let double = StripeDouble::start(vec![not_found("invoice"), not_found("subscription")]).await;
    let gateway = double.gateway();

    let invoice = gateway.invoice_promotion_codes(&PLATFORM, &stripe_id("in_gone")).await;
    let subscription = gateway.subscription_promotion_codes(&PLATFORM, &stripe_id("sub_gone")).await;

    assert!(matches!(invoice, Err(GatewayError::NotFound)), "{invoice:?}");
    assert!(matches!(subscription, Err(GatewayError::NotFound)), "{subscription:?}");
    assert_eq!(double.requests().len(), 2, "a 404 is not retried");
}

#[tokio::test]
async fn a_refused_lookup_is_rejected_not_retried() {
    let body = r#"{"error":{"type":"invalid_request_error","code":"parameter_invalid_string","param":"payment[type]","message":"Invalid payment[type]"}}"#;
    let double = StripeDouble::start(vec![Reply::json(400, body)]).await;

    let err = double.gateway().invoice_of_payment(&PLATFORM, &stripe_id(CHARGE_ID), Some(stripe_id(PAYMENT_INTENT_ID))).await.unwrap_err();

    assert!(matches!(&err, GatewayError::Rejected { param: Some(param), .. } if param == "payment[type]"), "{err:?}");
    assert_eq!(double.requests().len(), 1);
}

#[tokio::test]
async fn a_read_that_keeps_failing_is_unavailable() {
    let double = StripeDouble::start(vec![Reply::json(500, ERROR_API), Reply::json(503, ERROR_API)]).await;

    let err = double.gateway_with_retries(1).invoice_promotion_codes(&PLATFORM, &stripe_id(INVOICE_ID)).await.unwrap_err();

    assert!(matches!(&err, GatewayError::Unavailable(_)), "{err:?}");
    assert_eq!(double.requests().len(), 2);
}

#[tokio::test]
async fn an_answer_that_is_not_the_object_is_an_unknown_error() {
    let double = StripeDouble::start(vec![Reply::json(200, r#"{"object":"invoice"}"#)]).await;

    let err = double.gateway().invoice_promotion_codes(&PLATFORM, &stripe_id(INVOICE_ID)).await.unwrap_err();

    assert!(matches!(&err, GatewayError::Unknown(_)), "{err:?}");
    assert_eq!(double.requests().len(), 1, "an unparseable success is not retried");
}

#[tokio::test]
async fn an_invoice_payment_naming_no_invoice_id_is_an_unknown_error() {
    let stripe = StripeObjects::load();
    let payment =
        stripe.invoice_payment(json!("sub_1NotAnInvoice"), json!({ "type": "payment_intent", "payment_intent": PAYMENT_INTENT_ID }));
    let double = StripeDouble::start(vec![stripe.invoice_payments(vec![payment])]).await;

    let err = double.gateway().invoice_of_payment(&PLATFORM, &stripe_id(CHARGE_ID), Some(stripe_id(PAYMENT_INTENT_ID))).await.unwrap_err();

    assert!(matches!(&err, GatewayError::Unknown(e) if e.to_string().contains("invoice")), "{err:?}");
}

#[tokio::test]
async fn ids_that_could_escape_the_url_are_refused_before_any_request() {
    let double = StripeDouble::start(Vec::new()).await;
    let gateway = double.gateway();

    // The id types refuse an empty id and a wrong prefix; what follows the prefix is Stripe's
    // business, so the adapter still checks that it stays in the URL's path.
    for rest in ["/../customers/cus_1", " 1", "1?expand[]=x", "1&payment[type]=charge", "1/../../coupons"] {
        let invoice = gateway.invoice_promotion_codes(&PLATFORM, &stripe_id(&format!("in_{rest}"))).await;
        let subscription = gateway.subscription_promotion_codes(&PLATFORM, &stripe_id(&format!("sub_{rest}"))).await;
        let by_payment_intent = gateway.invoice_of_payment(&PLATFORM, &stripe_id(CHARGE_ID), Some(stripe_id(&format!("pi_{rest}")))).await;
        let customer = gateway.customer_referral(&PLATFORM, &stripe_id(&format!("cus_{rest}"))).await;
        assert!(matches!(invoice, Err(GatewayError::Unknown(_))), "{rest}: {invoice:?}");
        assert!(matches!(subscription, Err(GatewayError::Unknown(_))), "{rest}: {subscription:?}");
        assert!(matches!(by_payment_intent, Err(GatewayError::Unknown(_))), "{rest}: {by_payment_intent:?}");
        assert!(matches!(customer, Err(GatewayError::Unknown(_))), "{rest}: {customer:?}");
    }
    assert!(double.requests().is_empty());
}

#[tokio::test]
async fn the_reads_parse_stripes_published_objects_too_when_the_shared_folder_is_present() {
    // Cross-check of the project's fixtures: the same answers built from Stripe's own published
    // objects parse into the same results.
    let Some(stripe) = StripeObjects::shared() else { return };
    let payment = stripe.invoice_payment(json!(INVOICE_ID), json!({ "type": "payment_intent", "payment_intent": PAYMENT_INTENT_ID }));
    let double = StripeDouble::start(vec![
        stripe.invoice_with_discounts(INVOICE_ID),
        stripe.subscription_with_discounts(SUBSCRIPTION_ID),
        stripe.invoice_payments(vec![payment]),
        stripe.customer(CUSTOMER_ID, json!({ "rekomi_ref": "bob-links" })),
        stripe.deleted_customer(CUSTOMER_ID),
    ])
    .await;
    let gateway = double.gateway();

    assert_eq!(gateway.invoice_promotion_codes(&PLATFORM, &stripe_id(INVOICE_ID)).await.unwrap(), expected_codes());
    assert_eq!(gateway.subscription_promotion_codes(&PLATFORM, &stripe_id(SUBSCRIPTION_ID)).await.unwrap(), expected_codes());
    let invoice = gateway.invoice_of_payment(&PLATFORM, &stripe_id(CHARGE_ID), Some(stripe_id(PAYMENT_INTENT_ID))).await.unwrap();
    assert_eq!(invoice.as_ref().map(|i| i.as_str()), Some(INVOICE_ID));
    assert_eq!(gateway.customer_referral(&PLATFORM, &stripe_id(CUSTOMER_ID)).await.unwrap().as_deref(), Some("bob-links"));
    assert_eq!(gateway.customer_referral(&PLATFORM, &stripe_id(CUSTOMER_ID)).await.unwrap(), None);
}

// ---- customer_referral ----------------------------------------------------------------------

#[tokio::test]
async fn a_customers_referral_is_the_trimmed_rekomi_ref_of_its_metadata() {
    let stripe = StripeObjects::load();
    let metadata = json!({ "rekomi_ref": "  bob-links \n", "plan": "pro" });
    let double = StripeDouble::start(vec![stripe.customer(CUSTOMER_ID, metadata)]).await;

    let referral = double.gateway().customer_referral(&PLATFORM, &stripe_id(CUSTOMER_ID)).await.unwrap();

    assert_eq!(referral.as_deref(), Some("bob-links"));
    let request = double.single_request();
    assert_read(&request, &format!("/v1/customers/{CUSTOMER_ID}"));
    request.assert_query(&[]);
    assert_eq!(request.header("stripe-account"), None);
}

#[tokio::test]
async fn a_customer_without_a_usable_rekomi_ref_has_no_referral() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![
        // The customer fixture as it is: `metadata: {}`.
        Reply::json_value(200, &stripe.object("customer")),
        stripe.customer(CUSTOMER_ID, json!({ "affiliate_ref": "bob-links" })),
        stripe.customer(CUSTOMER_ID, json!({ "rekomi_ref": "   " })),
        stripe.customer(CUSTOMER_ID, json!({ "rekomi_ref": "bob\u{0}links" })),
    ])
    .await;
    let gateway = double.gateway();

    for case in ["empty metadata", "another key", "blank", "a control character"] {
        assert_eq!(gateway.customer_referral(&PLATFORM, &stripe_id(CUSTOMER_ID)).await.unwrap(), None, "{case}");
    }
    assert_eq!(double.requests().len(), 4);
}

#[tokio::test]
async fn a_deleted_customer_has_no_referral() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.deleted_customer(CUSTOMER_ID)]).await;

    assert_eq!(double.gateway().customer_referral(&PLATFORM, &stripe_id(CUSTOMER_ID)).await.unwrap(), None);
    assert_read(&double.single_request(), &format!("/v1/customers/{CUSTOMER_ID}"));
}

#[tokio::test]
async fn a_customer_read_acts_on_the_connected_account_and_is_retried_after_a_server_error() {
    let stripe = StripeObjects::load();
    let reply = stripe.customer(CUSTOMER_ID, json!({ "rekomi_ref": "bob-links" }));
    let double = StripeDouble::start(vec![Reply::json(500, ERROR_API), reply]).await;

    let referral = double.gateway().customer_referral(&connected("acct_1RekomiConnected"), &stripe_id(CUSTOMER_ID)).await.unwrap();

    assert_eq!(referral.as_deref(), Some("bob-links"));
    let requests = double.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_read(request, &format!("/v1/customers/{CUSTOMER_ID}"));
        request.assert_query(&[]);
        assert_eq!(request.header("stripe-account"), Some("acct_1RekomiConnected"));
    }
}

#[tokio::test]
async fn an_unknown_customer_is_not_found_without_retrying() {
    let body =
        r#"{"error":{"code":"resource_missing","message":"No such customer: 'cus_gone'","param":"id","type":"invalid_request_error"}}"#;
    let double = StripeDouble::start(vec![Reply::json(404, body)]).await;

    let err = double.gateway().customer_referral(&PLATFORM, &stripe_id("cus_gone")).await.unwrap_err();

    assert!(matches!(err, GatewayError::NotFound), "{err:?}");
    assert_eq!(double.requests().len(), 1, "a 404 is not retried");
}

/// A payment intent whose latest charge's balance transaction is expanded.
fn settled_intent(exchange_rate: serde_json::Value) -> serde_json::Value {
    json!({
        "id": PAYMENT_INTENT_ID, "object": "payment_intent", "amount": 10000, "currency": "eur", "status": "succeeded",
        "latest_charge": {
            "id": CHARGE_ID, "object": "charge", "amount": 10000, "currency": "eur",
            "balance_transaction": { "id": "txn_1Rekomi", "object": "balance_transaction", "amount": 10832, "currency": "usd",
                                     "exchange_rate": exchange_rate, "fee": 0, "net": 10832, "type": "charge" }
        }
    })
}

#[tokio::test]
async fn an_invoices_settlement_is_its_payment_intents_balance_transaction_rate() {
    let stripe = StripeObjects::load();
    let payment = stripe.invoice_payment(json!(INVOICE_ID), json!({ "type": "payment_intent", "payment_intent": PAYMENT_INTENT_ID }));
    let double =
        StripeDouble::start(vec![stripe.invoice_payments(vec![payment]), Reply::json_value(200, &settled_intent(json!(1.0832)))]).await;

    let settlement = double.gateway().invoice_settlement(&PLATFORM, &stripe_id(INVOICE_ID)).await.unwrap().unwrap();

    assert_eq!((settlement.currency.as_str(), settlement.exchange_rate.to_string()), ("usd", "1.0832".to_owned()));
    let requests = double.requests();
    assert_eq!((requests[0].method.as_str(), requests[0].path.as_str()), ("GET", "/v1/invoice_payments"));
    assert_eq!(requests[0].query, vec![("invoice".to_owned(), INVOICE_ID.to_owned())]);
    assert_eq!(requests[1].path, format!("/v1/payment_intents/{PAYMENT_INTENT_ID}"));
    assert_eq!(requests[1].query, vec![("expand[]".to_owned(), "latest_charge.balance_transaction".to_owned())]);
    assert!(requests.iter().all(|r| r.header("idempotency-key").is_none()), "reads carry no idempotency key");
}

#[tokio::test]
async fn a_payment_that_was_not_converted_or_has_no_payment_intent_has_no_settlement() {
    let stripe = StripeObjects::load();
    let payment = stripe.invoice_payment(json!(INVOICE_ID), json!({ "type": "payment_intent", "payment_intent": PAYMENT_INTENT_ID }));
    let record = stripe.invoice_payment(json!(INVOICE_ID), json!({ "type": "payment_record", "payment_record": "pr_1" }));
    let double = StripeDouble::start(vec![
        stripe.invoice_payments(vec![payment]),
        Reply::json_value(200, &settled_intent(serde_json::Value::Null)),
        stripe.invoice_payments(vec![record]),
    ])
    .await;
    let gateway = double.gateway();

    assert_eq!(gateway.invoice_settlement(&PLATFORM, &stripe_id(INVOICE_ID)).await.unwrap(), None, "no exchange_rate: no conversion");
    assert_eq!(gateway.invoice_settlement(&PLATFORM, &stripe_id(INVOICE_ID)).await.unwrap(), None, "paid without a payment intent");
    assert_eq!(double.requests().len(), 3);
}
