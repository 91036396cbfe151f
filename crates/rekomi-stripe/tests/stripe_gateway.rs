//! `StripeGateway` against a scripted local Stripe double: request shapes, headers, retries and
//! error mapping.
//!
//! The double answers with the project's own Stripe objects (`tests/fixtures/objects/`, current
//! shapes). One optional cross-check answers with Stripe's published objects instead, when the
//! shared reference folder is present (`REKOMI_SHARED_DIR`, else `shared/` beside the
//! workspace); without it, that check does not run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use rekomi_domain::coupons::{CouponDuration, DiscountSpec};
use rekomi_domain::kernel::money::{Currency, Money};
use rekomi_domain::ports::gateway::{CreateCoupon, CreatePromotionCode, GatewayContext, GatewayError, PaymentGateway};
use rekomi_stripe::{StripeConfig, StripeGateway};
use support::*;
use time::macros::datetime;

const PLATFORM: GatewayContext = GatewayContext { stripe_account: None };

fn connected(account: &str) -> GatewayContext {
    GatewayContext { stripe_account: Some(stripe_id(account)) }
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("USD").unwrap())
}

fn percent_coupon() -> CreateCoupon {
    CreateCoupon {
        idempotency_key: "rekomi:coupon:0190b6a4-aaaa".to_owned(),
        name: "Alice's 25% off".to_owned(),
        discount: DiscountSpec::PercentOff(25),
        duration: CouponDuration::Repeating(3),
        redeem_by: Some(datetime!(2030-01-01 00:00 UTC)),
        metadata: vec![("rekomi_program_id".to_owned(), "prg_1".to_owned()), ("rekomi_affiliate_id".to_owned(), "aff_1".to_owned())],
    }
}

fn full_promotion_code() -> CreatePromotionCode {
    CreatePromotionCode {
        idempotency_key: "rekomi:promo:0190b6a4-bbbb".to_owned(),
        coupon_id: stripe_id(COUPON_ID),
        code: "ALICE20".to_owned(),
        max_redemptions: Some(100),
        expires_at: Some(datetime!(2031-06-30 12:00 UTC)),
        first_time_transaction: true,
        minimum_amount: Some(usd(5_000)),
        customer: Some(stripe_id("cus_Q1a2b3")),
        metadata: vec![("rekomi_code_id".to_owned(), "code_1".to_owned())],
    }
}

/// Headers every request to Stripe must carry.
fn assert_authenticated_with_key(request: &Recorded, key: &str) {
    assert_eq!(request.header("authorization"), Some(format!("Bearer {SECRET_KEY}").as_str()));
    assert_eq!(request.header("idempotency-key"), Some(key));
    assert_eq!(request.header_count("idempotency-key"), 1);
}

#[tokio::test]
async fn percent_off_coupon_is_created_with_repeating_duration_redeem_by_and_metadata() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.coupon()]).await;

    let id = double.gateway().create_coupon(&PLATFORM, &percent_coupon()).await.unwrap();

    assert_eq!(id, COUPON_ID);
    let request = double.single_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/coupons");
    assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_authenticated_with_key(&request, "rekomi:coupon:0190b6a4-aaaa");
    assert_eq!(request.header("stripe-account"), None);
    request.assert_form(&[
        ("name", "Alice's 25% off"),
        // async-stripe types `percent_off` as f64 and serde_qs writes it as "25.0"; Stripe takes
        // a decimal percentage, so this is the same value as "25".
        ("percent_off", "25.0"),
        ("duration", "repeating"),
        ("duration_in_months", "3"),
        ("redeem_by", "1893456000"),
        ("metadata[rekomi_program_id]", "prg_1"),
        ("metadata[rekomi_affiliate_id]", "aff_1"),
    ]);
}

#[tokio::test]
async fn amount_off_coupon_sends_the_amount_and_lower_case_currency_and_nothing_unset() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.coupon()]).await;
    let request = CreateCoupon {
        idempotency_key: "rekomi:coupon:amount".to_owned(),
        name: "$15 off".to_owned(),
        discount: DiscountSpec::AmountOff(Money::new(1_500, Currency::parse("EUR").unwrap())),
        duration: CouponDuration::Forever,
        redeem_by: None,
        metadata: Vec::new(),
    };

    double.gateway().create_coupon(&PLATFORM, &request).await.unwrap();

    let recorded = double.single_request();
    assert_authenticated_with_key(&recorded, "rekomi:coupon:amount");
    recorded.assert_form(&[("name", "$15 off"), ("amount_off", "1500"), ("currency", "eur"), ("duration", "forever")]);
}

#[tokio::test]
async fn once_coupon_sends_duration_once_without_months() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.coupon()]).await;
    let request = CreateCoupon { duration: CouponDuration::Once, redeem_by: None, metadata: Vec::new(), ..percent_coupon() };

    double.gateway().create_coupon(&PLATFORM, &request).await.unwrap();

    double.single_request().assert_form(&[("name", "Alice's 25% off"), ("percent_off", "25.0"), ("duration", "once")]);
}

#[tokio::test]
async fn promotion_code_is_created_in_the_current_api_shape() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.created_promotion_code()]).await;

    let id = double.gateway().create_promotion_code(&PLATFORM, &full_promotion_code()).await.unwrap();

    assert_eq!(id, PROMOTION_CODE_ID);
    let request = double.single_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/promotion_codes");
    assert_authenticated_with_key(&request, "rekomi:promo:0190b6a4-bbbb");
    request.assert_form(&[
        ("promotion[type]", "coupon"),
        ("promotion[coupon]", COUPON_ID),
        ("code", "ALICE20"),
        ("max_redemptions", "100"),
        ("expires_at", "1940587200"),
        ("restrictions[first_time_transaction]", "true"),
        ("restrictions[minimum_amount]", "5000"),
        ("restrictions[minimum_amount_currency]", "usd"),
        ("customer", "cus_Q1a2b3"),
        ("metadata[rekomi_code_id]", "code_1"),
    ]);
    // The pre-2025 shape put the coupon at the top level; it must not be sent any more.
    assert!(request.form.iter().all(|(key, _)| key != "coupon"));
}

#[tokio::test]
async fn promotion_code_without_options_sends_only_the_promotion_and_the_code() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.created_promotion_code()]).await;
    let request = CreatePromotionCode {
        max_redemptions: None,
        expires_at: None,
        first_time_transaction: false,
        minimum_amount: None,
        customer: None,
        metadata: Vec::new(),
        ..full_promotion_code()
    };

    double.gateway().create_promotion_code(&PLATFORM, &request).await.unwrap();

    double.single_request().assert_form(&[("promotion[type]", "coupon"), ("promotion[coupon]", COUPON_ID), ("code", "ALICE20")]);
}

#[tokio::test]
async fn promotion_code_with_only_a_minimum_amount_omits_first_time_transaction() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.created_promotion_code()]).await;
    let request = CreatePromotionCode {
        max_redemptions: None,
        expires_at: None,
        first_time_transaction: false,
        customer: None,
        metadata: Vec::new(),
        ..full_promotion_code()
    };

    double.gateway().create_promotion_code(&PLATFORM, &request).await.unwrap();

    double.single_request().assert_form(&[
        ("promotion[type]", "coupon"),
        ("promotion[coupon]", COUPON_ID),
        ("code", "ALICE20"),
        ("restrictions[minimum_amount]", "5000"),
        ("restrictions[minimum_amount_currency]", "usd"),
    ]);
}

#[tokio::test]
async fn deactivating_a_promotion_code_posts_active_false_to_its_path() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.deactivated_promotion_code()]).await;

    double.gateway().deactivate_promotion_code(&PLATFORM, &stripe_id(PROMOTION_CODE_ID), "rekomi:deactivate:1").await.unwrap();

    let request = double.single_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/v1/promotion_codes/{PROMOTION_CODE_ID}"));
    assert_authenticated_with_key(&request, "rekomi:deactivate:1");
    request.assert_form(&[("active", "false")]);
}

#[tokio::test]
async fn deleting_a_coupon_sends_delete_to_its_path() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.deleted_coupon()]).await;

    double.gateway().delete_coupon(&PLATFORM, &stripe_id(COUPON_ID), "rekomi:delete:1").await.unwrap();

    let request = double.single_request();
    assert_eq!(request.method, "DELETE");
    assert_eq!(request.path, format!("/v1/coupons/{COUPON_ID}"));
    assert_authenticated_with_key(&request, "rekomi:delete:1");
    assert!(request.form.is_empty(), "unexpected body {:?}", request.body);
}

#[tokio::test]
async fn a_server_error_is_retried_with_the_same_idempotency_key_and_body() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![Reply::json(500, ERROR_API), stripe.created_promotion_code()]).await;

    let id = double.gateway().create_promotion_code(&PLATFORM, &full_promotion_code()).await.unwrap();

    assert_eq!(id, PROMOTION_CODE_ID);
    let requests = double.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_authenticated_with_key(request, "rekomi:promo:0190b6a4-bbbb");
    }
    assert_eq!(requests[0].form, requests[1].form);
}

#[tokio::test]
async fn a_rate_limited_request_is_retried_then_succeeds() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![Reply::json(429, ERROR_RATE_LIMIT), stripe.coupon()]).await;

    let id = double.gateway().create_coupon(&PLATFORM, &percent_coupon()).await.unwrap();

    assert_eq!(id, COUPON_ID);
    let requests = double.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.header("idempotency-key") == Some("rekomi:coupon:0190b6a4-aaaa")));
}

#[tokio::test]
async fn a_concurrent_use_of_the_idempotency_key_is_retried() {
    let stripe = StripeObjects::load();
    // 409 `idempotency_key_in_use`: an earlier attempt with this key is still running at Stripe.
    let body = r#"{"error":{"type":"idempotency_error","code":"idempotency_key_in_use","message":"There is currently another in-progress request using this Idempotent Key."}}"#;
    let double = StripeDouble::start(vec![Reply::json(409, body), stripe.deactivated_promotion_code()]).await;

    double.gateway().deactivate_promotion_code(&PLATFORM, &stripe_id(PROMOTION_CODE_ID), "rekomi:deactivate:2").await.unwrap();

    let requests = double.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.header("idempotency-key") == Some("rekomi:deactivate:2")));
}

#[tokio::test]
async fn an_error_answer_without_a_stripe_body_is_retried_like_a_server_error() {
    let stripe = StripeObjects::load();
    // A load balancer's HTML 502: async-stripe cannot read a status from it, only that the
    // body is not Stripe's error JSON.
    let double = StripeDouble::start(vec![Reply::html(502, "<html><body>Bad gateway</body></html>"), stripe.deleted_coupon()]).await;

    double.gateway().delete_coupon(&PLATFORM, &stripe_id(COUPON_ID), "rekomi:delete:2").await.unwrap();

    assert_eq!(double.requests().len(), 2);
}

#[tokio::test]
async fn a_taken_code_is_rejected_with_stripe_code_and_param_and_not_retried() {
    let double = StripeDouble::start(vec![Reply::json(400, ERROR_CODE_TAKEN)]).await;

    let err = double.gateway().create_promotion_code(&PLATFORM, &full_promotion_code()).await.unwrap_err();

    match &err {
        GatewayError::Rejected { code, param, message } => {
            assert_eq!(code.as_deref(), Some("resource_already_exists"));
            assert_eq!(param.as_deref(), Some("code"));
            assert_eq!(message, "An active promotion code with `code: ALICE20` already exists.");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(err.is_code_taken());
    assert_eq!(double.requests().len(), 1);
}

#[tokio::test]
async fn a_created_promotion_code_whose_id_is_no_promotion_code_id_is_an_unknown_error() {
    let stripe = StripeObjects::load();
    let mut promotion_code = stripe.promotion_code_object();
    promotion_code["id"] = serde_json::json!("cus_1NotAPromotionCode");
    let double = StripeDouble::start(vec![Reply::json_value(200, &promotion_code)]).await;

    let err = double.gateway().create_promotion_code(&PLATFORM, &full_promotion_code()).await.unwrap_err();

    assert!(matches!(&err, GatewayError::Unknown(e) if e.to_string().contains("promotion code")), "{err:?}");
    assert_eq!(double.requests().len(), 1, "an unparseable success is not retried");
}

#[tokio::test]
async fn other_client_errors_are_rejected_without_claiming_the_code_is_taken() {
    let body = r#"{"error":{"type":"invalid_request_error","code":"parameter_invalid_integer","param":"percent_off","message":"Invalid percent_off"}}"#;
    let double = StripeDouble::start(vec![Reply::json(400, body)]).await;

    let err = double.gateway().create_coupon(&PLATFORM, &percent_coupon()).await.unwrap_err();

    assert!(
        matches!(&err, GatewayError::Rejected { code: Some(code), param: Some(param), .. }
            if code == "parameter_invalid_integer" && param == "percent_off"),
        "{err:?}"
    );
    assert!(!err.is_code_taken());
    assert_eq!(double.requests().len(), 1);
}

#[tokio::test]
async fn an_unknown_object_is_reported_as_not_found() {
    let double = StripeDouble::start(vec![Reply::json(404, ERROR_NOT_FOUND), Reply::json(404, ERROR_NOT_FOUND)]).await;
    let gateway = double.gateway();

    let deleted = gateway.delete_coupon(&PLATFORM, &stripe_id("gone"), "rekomi:delete:3").await;
    let deactivated = gateway.deactivate_promotion_code(&PLATFORM, &stripe_id("promo_gone"), "k").await;

    assert!(matches!(deleted, Err(GatewayError::NotFound)), "{deleted:?}");
    assert!(matches!(deactivated, Err(GatewayError::NotFound)), "{deactivated:?}");
    assert_eq!(double.requests().len(), 2, "a 404 is not retried");
}

#[tokio::test]
async fn exhausted_retries_are_reported_as_unavailable() {
    let double =
        StripeDouble::start(vec![Reply::json(500, ERROR_API), Reply::json(503, ERROR_API), Reply::json(429, ERROR_RATE_LIMIT)]).await;

    let err = double.gateway_with_retries(2).create_coupon(&PLATFORM, &percent_coupon()).await.unwrap_err();

    assert!(matches!(&err, GatewayError::Unavailable(_)), "{err:?}");
    let requests = double.requests();
    assert_eq!(requests.len(), 3, "one attempt plus two retries");
    assert!(requests.iter().all(|r| r.header("idempotency-key") == Some("rekomi:coupon:0190b6a4-aaaa")));
}

#[tokio::test]
async fn an_unreachable_stripe_is_retried_and_reported_as_unavailable() {
    let gateway = StripeGateway::new(StripeConfig {
        api_base: unreachable_url().await,
        max_retries: 2,
        base_backoff: Duration::from_millis(1),
        ..StripeConfig::new(SECRET_KEY)
    })
    .unwrap();

    let err = gateway.create_coupon(&PLATFORM, &percent_coupon()).await.unwrap_err();

    match err {
        GatewayError::Unavailable(reason) => assert!(reason.contains("3 attempts"), "{reason}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn the_stripe_account_header_is_sent_only_when_the_context_names_an_account() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![
        stripe.coupon(),
        stripe.coupon(),
        stripe.created_promotion_code(),
        stripe.deactivated_promotion_code(),
        stripe.deleted_coupon(),
    ])
    .await;
    let gateway = double.gateway();
    let acct = connected("acct_1RekomiConnected");

    gateway.create_coupon(&acct, &percent_coupon()).await.unwrap();
    gateway.create_coupon(&PLATFORM, &percent_coupon()).await.unwrap();
    gateway.create_promotion_code(&acct, &full_promotion_code()).await.unwrap();
    gateway.deactivate_promotion_code(&acct, &stripe_id(PROMOTION_CODE_ID), "k1").await.unwrap();
    gateway.delete_coupon(&acct, &stripe_id(COUPON_ID), "k2").await.unwrap();

    let accounts: Vec<Option<String>> = double.requests().iter().map(|r| r.header("stripe-account").map(str::to_owned)).collect();
    let expected = Some("acct_1RekomiConnected".to_owned());
    assert_eq!(accounts, vec![expected.clone(), None, expected.clone(), expected.clone(), expected]);
}

#[tokio::test]
async fn the_stripe_account_header_is_kept_on_retries() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![Reply::json(503, ERROR_API), stripe.coupon()]).await;

    double.gateway().create_coupon(&connected("acct_9"), &percent_coupon()).await.unwrap();

    let requests = double.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.header("stripe-account") == Some("acct_9")));
}

#[tokio::test]
async fn an_invalid_idempotency_key_fails_before_any_request() {
    let double = StripeDouble::start(Vec::new()).await;
    let request = CreateCoupon { idempotency_key: String::new(), ..percent_coupon() };

    let err = double.gateway().create_coupon(&PLATFORM, &request).await.unwrap_err();

    assert!(matches!(err, GatewayError::Unknown(_)), "{err:?}");
    assert!(double.requests().is_empty());
}

#[tokio::test]
async fn an_id_that_could_escape_its_url_path_is_refused_before_any_request() {
    let double = StripeDouble::start(Vec::new()).await;
    let gateway = double.gateway();

    // The id types refuse an empty id (and a promotion code without `promo_`); the rest of an id
    // is Stripe's business, so the adapter still checks that it stays in the URL's path.
    for id in ["../customers/cus_1", "RK7 SPR20", "1?expand=x"] {
        let deleted = gateway.delete_coupon(&PLATFORM, &stripe_id(id), "k").await;
        let deactivated = gateway.deactivate_promotion_code(&PLATFORM, &stripe_id(&format!("promo_{id}")), "k").await;
        assert!(matches!(deleted, Err(GatewayError::Unknown(_))), "{id}: {deleted:?}");
        assert!(matches!(deactivated, Err(GatewayError::Unknown(_))), "{id}: {deactivated:?}");
    }
    assert!(double.requests().is_empty());
}

#[tokio::test]
async fn the_writes_accept_stripes_published_objects_too_when_the_shared_folder_is_present() {
    // Cross-check of the project's fixtures: the same answers built from Stripe's own published
    // objects parse as well.
    let Some(stripe) = StripeObjects::shared() else { return };
    let double = StripeDouble::start(vec![
        stripe.coupon(),
        stripe.created_promotion_code(),
        stripe.deactivated_promotion_code(),
        stripe.deleted_coupon(),
    ])
    .await;
    let gateway = double.gateway();

    assert_eq!(gateway.create_coupon(&PLATFORM, &percent_coupon()).await.unwrap(), COUPON_ID);
    assert_eq!(gateway.create_promotion_code(&PLATFORM, &full_promotion_code()).await.unwrap(), PROMOTION_CODE_ID);
    gateway.deactivate_promotion_code(&PLATFORM, &stripe_id(PROMOTION_CODE_ID), "k1").await.unwrap();
    gateway.delete_coupon(&PLATFORM, &stripe_id(COUPON_ID), "k2").await.unwrap();
    assert_eq!(double.requests().len(), 4);
}

#[test]
fn the_secret_key_never_appears_in_debug_output() {
    let config = StripeConfig::new(SECRET_KEY);
    let gateway = StripeGateway::new(config.clone()).unwrap();

    for text in [format!("{config:?}"), format!("{gateway:?}"), format!("{gateway:#?}")] {
        assert!(!text.contains(SECRET_KEY), "{text}");
        assert!(!text.contains("51RekomiDoubleKey"), "{text}");
    }
}

#[test]
fn configuration_defaults_to_production_stripe_with_three_retries() {
    let config = StripeConfig::new(SECRET_KEY);
    assert_eq!(config.api_base, "https://api.stripe.com/");
    assert_eq!(config.max_retries, 3);
    assert_eq!(config.base_backoff, Duration::from_millis(200));
}

#[test]
fn an_empty_secret_key_or_a_bad_url_is_refused_without_echoing_the_key() {
    assert!(StripeGateway::new(StripeConfig::new("  ")).is_err());

    let err = StripeGateway::new(StripeConfig::new("sk_test_\nbroken")).unwrap_err();
    assert!(!err.to_string().contains("broken"), "{err}");

    let bad_url = StripeConfig { api_base: "not a url".to_owned(), ..StripeConfig::new(SECRET_KEY) };
    assert!(StripeGateway::new(bad_url).is_err());
}

#[tokio::test]
async fn an_api_base_without_a_trailing_slash_still_reaches_v1() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.deleted_coupon()]).await;
    let gateway =
        StripeGateway::new(StripeConfig { api_base: double.url().trim_end_matches('/').to_owned(), ..StripeConfig::new(SECRET_KEY) })
            .unwrap();

    gateway.delete_coupon(&PLATFORM, &stripe_id(COUPON_ID), "k").await.unwrap();

    assert_eq!(double.single_request().path, format!("/v1/coupons/{COUPON_ID}"));
}
