//! `StripePayoutRail` against the scripted Stripe double: the Connect calls' request shapes
//! (on the platform: no `Stripe-Account`), idempotency keys, retries and error mapping.
//!
//! Replies are the project's own Stripe objects (`tests/fixtures/objects/`: `account.json`,
//! `account_link.json`, `transfer.json`), patched at run time. One optional cross-check answers
//! with Stripe's published objects instead, when the shared reference folder is present.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rekomi_domain::kernel::money::{Currency, Money};
use rekomi_domain::payouts::rail::{
    AccountLink, ConnectedAccount, CreateAccountLink, CreateExpressAccount, CreateTransfer, PayoutRail, Transfer,
};
use rekomi_domain::ports::gateway::GatewayError;
use rekomi_stripe::{StripeConfig, StripePayoutRail};
use serde_json::json;
use support::*;
use time::macros::datetime;

const ACCOUNT_ID: &str = "acct_1RekomiSarahPayouts";
const TRANSFER_ID: &str = "tr_1RekomiSarahPayout";
const GROUP: &str = "rekomi_payout_0190b6a4-cccc-7000-8000-000000000001";
const ACCOUNT_KEY: &str = "rekomi-affiliate-0190b6a4-aaaa-express";
const TRANSFER_KEY: &str = "rekomi-payout-0190b6a4-cccc-attempt-1";

const ERROR_INSUFFICIENT_FUNDS: &str = r#"{"error":{"code":"balance_insufficient","message":"You have insufficient available funds in your Stripe account.","type":"invalid_request_error"}}"#;
const ERROR_NO_SUCH_ACCOUNT: &str =
    r#"{"error":{"code":"resource_missing","message":"No such account: 'acct_gone'","param":"account","type":"invalid_request_error"}}"#;

fn express_account() -> CreateExpressAccount {
    CreateExpressAccount {
        idempotency_key: ACCOUNT_KEY.to_owned(),
        email: "sarah+payouts@creators.example".to_owned(),
        metadata: vec![("rekomi_affiliate_id".to_owned(), "aff_1".to_owned()), ("rekomi_org_id".to_owned(), "org_1".to_owned())],
    }
}

fn account_link() -> CreateAccountLink {
    CreateAccountLink {
        account: stripe_id(ACCOUNT_ID),
        refresh_url: "https://app.rekomi.example/affiliate/payout-account/refresh?affiliateId=aff_1".to_owned(),
        return_url: "https://app.rekomi.example/affiliate/payout-account/return?affiliateId=aff_1".to_owned(),
    }
}

fn transfer() -> CreateTransfer {
    CreateTransfer {
        idempotency_key: TRANSFER_KEY.to_owned(),
        destination: stripe_id(ACCOUNT_ID),
        amount: Money::new(4_000, Currency::parse("EUR").unwrap()),
        transfer_group: GROUP.to_owned(),
        metadata: vec![("rekomi_payout_id".to_owned(), "0190b6a4-cccc".to_owned())],
    }
}

/// On the platform, with the secret key; a write carries `key` exactly once, a read or an
/// account link none.
fn assert_platform_call(request: &Recorded, method: &str, path: &str, key: Option<&str>) {
    assert_eq!((request.method.as_str(), request.path.as_str()), (method, path));
    assert_eq!(request.header("authorization"), Some(format!("Bearer {SECRET_KEY}").as_str()));
    assert_eq!(request.header("stripe-account"), None, "Connect calls act on the platform");
    assert_eq!(request.header("idempotency-key"), key);
    assert_eq!(request.header_count("idempotency-key"), usize::from(key.is_some()));
    if method == "POST" {
        assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
    } else {
        assert!(request.body.is_empty(), "unexpected body {:?}", request.body);
    }
}

// ---- the five calls -------------------------------------------------------------------------

#[tokio::test]
async fn an_express_account_is_created_on_the_platform_requesting_transfers() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.account(ACCOUNT_ID, false, false)]).await;

    let account = double.payout_rail().create_express_account(&express_account()).await.unwrap();

    assert_eq!(account, ConnectedAccount { id: stripe_id(ACCOUNT_ID), payouts_enabled: false, details_submitted: false });
    let request = double.single_request();
    assert_platform_call(&request, "POST", "/v1/accounts", Some(ACCOUNT_KEY));
    request.assert_form(&[
        ("type", "express"),
        ("email", "sarah+payouts@creators.example"),
        ("capabilities[transfers][requested]", "true"),
        ("metadata[rekomi_affiliate_id]", "aff_1"),
        ("metadata[rekomi_org_id]", "org_1"),
    ]);
    // A literal `+` would decode as a space.
    assert!(request.body.contains("email=sarah%2Bpayouts%40creators.example"), "{}", request.body);
}

#[tokio::test]
async fn an_onboarding_link_is_asked_for_without_an_idempotency_key() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.account_link(ACCOUNT_ID, 1_772_618_760)]).await;

    let link = double.payout_rail().create_account_link(&account_link()).await.unwrap();

    assert_eq!(
        link,
        AccountLink {
            url: format!("https://connect.stripe.com/setup/e/{ACCOUNT_ID}/RkOnboard"),
            expires_at: datetime!(2026-03-04 10:06 UTC),
        }
    );
    let request = double.single_request();
    assert_platform_call(&request, "POST", "/v1/account_links", None);
    request.assert_form(&[
        ("account", ACCOUNT_ID),
        ("refresh_url", "https://app.rekomi.example/affiliate/payout-account/refresh?affiliateId=aff_1"),
        ("return_url", "https://app.rekomi.example/affiliate/payout-account/return?affiliateId=aff_1"),
        ("type", "account_onboarding"),
    ]);
}

#[tokio::test]
async fn an_account_is_retrieved_with_its_onboarding_state() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.account(ACCOUNT_ID, true, true)]).await;

    let account = double.payout_rail().retrieve_account(&stripe_id(ACCOUNT_ID)).await.unwrap();

    assert_eq!(account, ConnectedAccount { id: stripe_id(ACCOUNT_ID), payouts_enabled: true, details_submitted: true });
    let request = double.single_request();
    assert_platform_call(&request, "GET", &format!("/v1/accounts/{ACCOUNT_ID}"), None);
    request.assert_query(&[]);
}

#[tokio::test]
async fn an_account_stripe_has_not_evaluated_yet_cannot_be_paid() {
    let stripe = StripeObjects::load();
    let mut account = stripe.object("account");
    account["id"] = json!(ACCOUNT_ID);
    account.as_object_mut().unwrap().remove("payouts_enabled");
    account["details_submitted"] = serde_json::Value::Null;
    let double = StripeDouble::start(vec![Reply::json_value(200, &account)]).await;

    let account = double.payout_rail().retrieve_account(&stripe_id(ACCOUNT_ID)).await.unwrap();

    assert!(!account.payouts_enabled && !account.details_submitted, "{account:?}");
}

#[tokio::test]
async fn a_transfer_sends_minor_units_lower_case_currency_destination_group_and_metadata() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.transfer(TRANSFER_ID)]).await;

    let made = double.payout_rail().create_transfer(&transfer()).await.unwrap();

    assert_eq!(made, Transfer { id: stripe_id(TRANSFER_ID), reversed: false });
    let request = double.single_request();
    assert_platform_call(&request, "POST", "/v1/transfers", Some(TRANSFER_KEY));
    request.assert_form(&[
        ("amount", "4000"),
        ("currency", "eur"),
        ("destination", ACCOUNT_ID),
        ("transfer_group", GROUP),
        ("metadata[rekomi_payout_id]", "0190b6a4-cccc"),
    ]);
}

#[tokio::test]
async fn the_transfer_of_a_group_is_the_one_not_reversed() {
    let stripe = StripeObjects::load();
    let reversed = stripe.transfer_object("tr_1RekomiReversed", true);
    let standing = stripe.transfer_object(TRANSFER_ID, false);
    let double = StripeDouble::start(vec![stripe.transfers(vec![reversed, standing])]).await;

    let found = double.payout_rail().transfer_of_group(GROUP).await.unwrap();

    assert_eq!(found, Some(Transfer { id: stripe_id(TRANSFER_ID), reversed: false }));
    let request = double.single_request();
    assert_platform_call(&request, "GET", "/v1/transfers", None);
    request.assert_query(&[("transfer_group", GROUP), ("limit", "10")]);
}

#[tokio::test]
async fn a_group_whose_transfers_were_all_reversed_gives_the_first() {
    let stripe = StripeObjects::load();
    let first = stripe.transfer_object(TRANSFER_ID, true);
    let second = stripe.transfer_object("tr_2RekomiReversed", true);
    let double = StripeDouble::start(vec![stripe.transfers(vec![first, second])]).await;

    let found = double.payout_rail().transfer_of_group(GROUP).await.unwrap();

    assert_eq!(found, Some(Transfer { id: stripe_id(TRANSFER_ID), reversed: true }));
}

#[tokio::test]
async fn a_group_without_transfers_has_none() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.transfers(Vec::new())]).await;

    assert_eq!(double.payout_rail().transfer_of_group(GROUP).await.unwrap(), None);
    assert_eq!(double.requests().len(), 1);
}

#[tokio::test]
async fn a_transfer_group_is_percent_encoded_in_the_query() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![stripe.transfers(Vec::new())]).await;
    let group = "rekomi payout&limit=1+é/?#";

    double.payout_rail().transfer_of_group(group).await.unwrap();

    // Decoded, the query holds exactly the group and the limit: nothing leaked into other keys.
    double.single_request().assert_query(&[("transfer_group", group), ("limit", "10")]);
}

// ---- retries and errors ---------------------------------------------------------------------

#[tokio::test]
async fn a_transfer_is_retried_after_server_errors_and_rate_limiting_with_the_same_key_and_body() {
    let stripe = StripeObjects::load();
    let double =
        StripeDouble::start(vec![Reply::json(500, ERROR_API), Reply::json(429, ERROR_RATE_LIMIT), stripe.transfer(TRANSFER_ID)]).await;

    let made = double.payout_rail().create_transfer(&transfer()).await.unwrap();

    assert_eq!(made.id, TRANSFER_ID);
    let requests = double.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_platform_call(request, "POST", "/v1/transfers", Some(TRANSFER_KEY));
        assert_eq!(request.form, requests[0].form);
    }
}

#[tokio::test]
async fn a_transfer_whose_answer_was_lost_is_retried_with_the_same_key() {
    // Stripe may have made the transfer before the connection dropped; only the same key makes
    // the retry return that transfer instead of making a second one.
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![Reply::hang_up(), stripe.transfer(TRANSFER_ID)]).await;

    let made = double.payout_rail().create_transfer(&transfer()).await.unwrap();

    assert_eq!(made.id, TRANSFER_ID);
    let requests = double.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.header("idempotency-key") == Some(TRANSFER_KEY)), "{requests:#?}");
}

#[tokio::test]
async fn an_express_account_is_retried_with_the_same_key() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![Reply::json(503, ERROR_API), stripe.account(ACCOUNT_ID, false, false)]).await;

    double.payout_rail().create_express_account(&express_account()).await.unwrap();

    let requests = double.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_platform_call(request, "POST", "/v1/accounts", Some(ACCOUNT_KEY));
    }
}

#[tokio::test]
async fn an_onboarding_link_and_the_reads_are_retried_without_a_key() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![
        Reply::json(502, ERROR_API),
        stripe.account_link(ACCOUNT_ID, 1_772_618_760),
        Reply::json(429, ERROR_RATE_LIMIT),
        stripe.account(ACCOUNT_ID, false, true),
        Reply::hang_up(),
        stripe.transfers(Vec::new()),
    ])
    .await;
    let rail = double.payout_rail();

    rail.create_account_link(&account_link()).await.unwrap();
    rail.retrieve_account(&stripe_id(ACCOUNT_ID)).await.unwrap();
    rail.transfer_of_group(GROUP).await.unwrap();

    let requests = double.requests();
    assert_eq!(requests.len(), 6);
    let expected =
        [("POST", "/v1/account_links".to_owned()), ("GET", format!("/v1/accounts/{ACCOUNT_ID}")), ("GET", "/v1/transfers".to_owned())];
    for (pair, (method, path)) in requests.chunks(2).zip(expected) {
        for request in pair {
            assert_platform_call(request, method, &path, None);
        }
        assert_eq!((&pair[0].form, &pair[0].query), (&pair[1].form, &pair[1].query));
    }
}

#[tokio::test]
async fn a_refused_transfer_is_rejected_with_stripes_code_and_message_and_not_retried() {
    let double = StripeDouble::start(vec![Reply::json(400, ERROR_INSUFFICIENT_FUNDS)]).await;

    let err = double.payout_rail().create_transfer(&transfer()).await.unwrap_err();

    match &err {
        GatewayError::Rejected { code, param, message } => {
            assert_eq!(code.as_deref(), Some("balance_insufficient"));
            assert_eq!(param, &None);
            assert_eq!(message, "You have insufficient available funds in your Stripe account.");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(double.requests().len(), 1);
}

#[tokio::test]
async fn a_refused_express_account_is_rejected_with_stripes_param() {
    let body =
        r#"{"error":{"code":"email_invalid","message":"Invalid email address: sarah@","param":"email","type":"invalid_request_error"}}"#;
    let double = StripeDouble::start(vec![Reply::json(400, body)]).await;

    let err = double.payout_rail().create_express_account(&express_account()).await.unwrap_err();

    assert!(
        matches!(&err, GatewayError::Rejected { code: Some(code), param: Some(param), .. } if code == "email_invalid" && param == "email"),
        "{err:?}"
    );
    assert_eq!(double.requests().len(), 1);
}

#[tokio::test]
async fn an_unknown_account_is_not_found_without_retrying() {
    let double = StripeDouble::start(vec![Reply::json(404, ERROR_NO_SUCH_ACCOUNT), Reply::json(404, ERROR_NO_SUCH_ACCOUNT)]).await;
    let rail = double.payout_rail();

    let retrieved = rail.retrieve_account(&stripe_id("acct_gone")).await;
    let link = rail.create_account_link(&CreateAccountLink { account: stripe_id("acct_gone"), ..account_link() }).await;

    assert!(matches!(retrieved, Err(GatewayError::NotFound)), "{retrieved:?}");
    assert!(matches!(link, Err(GatewayError::NotFound)), "{link:?}");
    assert_eq!(double.requests().len(), 2, "a 404 is not retried");
}

#[tokio::test]
async fn a_transfer_that_keeps_failing_is_unavailable_after_the_retries() {
    let double = StripeDouble::start(vec![Reply::json(500, ERROR_API), Reply::hang_up(), Reply::json(503, ERROR_API)]).await;

    let err = double.payout_rail_with_retries(2).create_transfer(&transfer()).await.unwrap_err();

    match &err {
        GatewayError::Unavailable(reason) => assert!(reason.contains("3 attempts"), "{reason}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let requests = double.requests();
    assert_eq!(requests.len(), 3, "one attempt plus two retries");
    assert!(requests.iter().all(|r| r.header("idempotency-key") == Some(TRANSFER_KEY)));
}

#[tokio::test]
async fn an_unreachable_stripe_is_unavailable() {
    let rail = StripePayoutRail::new(StripeConfig {
        api_base: unreachable_url().await,
        max_retries: 1,
        base_backoff: std::time::Duration::from_millis(1),
        ..StripeConfig::new(SECRET_KEY)
    })
    .unwrap();

    let err = rail.retrieve_account(&stripe_id(ACCOUNT_ID)).await.unwrap_err();

    assert!(matches!(&err, GatewayError::Unavailable(reason) if reason.contains("2 attempts")), "{err:?}");
}

#[tokio::test]
async fn an_answer_that_is_not_the_object_asked_for_is_an_unknown_error() {
    let stripe = StripeObjects::load();
    let double = StripeDouble::start(vec![
        // A transfer where an account was expected, and an account where a transfer was.
        stripe.transfer(TRANSFER_ID),
        stripe.account(ACCOUNT_ID, false, false),
        Reply::json(200, r#"{"object":"account_link","url":"https://connect.stripe.com/setup/e/x/y"}"#),
        Reply::json(200, r#"{"object":"list"}"#),
    ])
    .await;
    let rail = double.payout_rail();

    let account = rail.create_express_account(&express_account()).await;
    let made = rail.create_transfer(&transfer()).await;
    let link = rail.create_account_link(&account_link()).await;
    let list = rail.transfer_of_group(GROUP).await;

    assert!(matches!(account, Err(GatewayError::Unknown(_))), "{account:?}");
    assert!(matches!(made, Err(GatewayError::Unknown(_))), "{made:?}");
    assert!(matches!(link, Err(GatewayError::Unknown(_))), "{link:?}");
    assert!(matches!(list, Err(GatewayError::Unknown(_))), "{list:?}");
    assert_eq!(double.requests().len(), 4, "an unparseable success is not retried");
}

#[tokio::test]
async fn malformed_input_is_refused_before_any_request() {
    let double = StripeDouble::start(Vec::new()).await;
    let rail = double.payout_rail();
    let escaping: rekomi_domain::kernel::stripe_ids::StripeAccountId = stripe_id("acct_1/../../transfers");

    let no_key = rail.create_transfer(&CreateTransfer { idempotency_key: String::new(), ..transfer() }).await;
    let no_account_key = rail.create_express_account(&CreateExpressAccount { idempotency_key: String::new(), ..express_account() }).await;
    let retrieved = rail.retrieve_account(&escaping).await;
    let link = rail.create_account_link(&CreateAccountLink { account: escaping.clone(), ..account_link() }).await;
    let made = rail.create_transfer(&CreateTransfer { destination: escaping, ..transfer() }).await;
    // An empty filter could list every transfer of the platform as the group's.
    let group = rail.transfer_of_group("").await;

    for (what, result) in [("no key", no_key.err()), ("no account key", no_account_key.err()), ("made", made.err())] {
        assert!(matches!(result, Some(GatewayError::Unknown(_))), "{what}: {result:?}");
    }
    assert!(matches!(retrieved, Err(GatewayError::Unknown(_))), "{retrieved:?}");
    assert!(matches!(link, Err(GatewayError::Unknown(_))), "{link:?}");
    assert!(matches!(group, Err(GatewayError::Unknown(_))), "{group:?}");
    assert!(double.requests().is_empty());
}

#[test]
fn the_secret_key_never_appears_in_debug_output() {
    let rail = StripePayoutRail::new(StripeConfig::new(SECRET_KEY)).unwrap();
    let text = format!("{rail:?} {rail:#?}");
    assert!(!text.contains("51RekomiDoubleKey"), "{text}");
    assert!(StripePayoutRail::new(StripeConfig::new(" ")).is_err());
}

#[tokio::test]
async fn stripes_published_objects_parse_too_when_the_shared_folder_is_present() {
    // Cross-check of the project's fixtures: Stripe's own examples of the three objects give
    // the same kind of answers.
    let Some(stripe) = StripeObjects::shared() else { return };
    let account = stripe.object("account");
    let link = stripe.object("account_link");
    let transfer_object = stripe.object("transfer");
    let account_id = account["id"].as_str().unwrap().to_owned();
    let transfer_id = transfer_object["id"].as_str().unwrap().to_owned();
    let double = StripeDouble::start(vec![
        Reply::json_value(200, &account),
        Reply::json_value(200, &link),
        Reply::json_value(200, &transfer_object),
        stripe.transfers(vec![transfer_object.clone()]),
    ])
    .await;
    let rail = double.payout_rail();

    assert_eq!(rail.retrieve_account(&stripe_id(&account_id)).await.unwrap().id, account_id.as_str());
    assert_eq!(rail.create_account_link(&account_link()).await.unwrap().url, link["url"].as_str().unwrap());
    assert_eq!(rail.create_transfer(&transfer()).await.unwrap().id, transfer_id.as_str());
    assert_eq!(rail.transfer_of_group(GROUP).await.unwrap().map(|t| t.id.to_string()), Some(transfer_id));
}
