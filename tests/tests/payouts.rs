//! Payouts end to end over real HTTP and PostgreSQL: signed `invoice.paid` and `charge.refunded`
//! events become ledger entries; the grace period set through `PATCH /api/organizations/me`
//! decides when they are payable; preview and run pay them Manually or by Stripe Connect
//! transfers made at the Stripe double; a refund after a payout is netted in the next run; a
//! transfer whose answers were lost is settled exactly once by the reconciler; `Idempotency-Key`
//! replays a run; 100 concurrent runs make one set of payouts; `transfer.reversed` and
//! `account.updated` keep payouts and accounts in step; the PayPal export and mark-paid; the home
//! currency setting; and the bad-input and tenant answers of every new endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rekomi_domain::kernel::plan::PlanTier;
use rekomi_domain::kernel::signature;
use rekomi_e2e::app::{id_of, Response, TestApp};
use rekomi_e2e::stripe_events::{charge_refunded, fixture};
use rekomi_server::Config;
use reqwest::Method;
use serde_json::{json, Value};

const SECRET: &str = "whsec_rekomi_e2e_payouts_0123456789";
const WITHIN: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Option<TestApp> {
    TestApp::spawn_with(move |config| {
        config.stripe_webhook_secrets = vec![SECRET.to_owned()];
        config.inbox_interval_ms = 50;
        config.public_url = Some("https://rekomi.example".to_owned());
        configure(config);
    })
    .await
}

async fn spawn() -> Option<TestApp> {
    spawn_with(|_| {}).await
}

/// A Growth brand with grace days 0 (set by its Owner), a 20 % program, and Sarah and Bob.
struct Brand {
    org_id: String,
    key: String,
    sarah: String,
    bob: String,
}

async fn brand(app: &TestApp, plan: PlanTier) -> Brand {
    let (org_id, key) = app.org(plan).await;
    let owner = app.jwt_dashboard(&org_id, "Owner");
    let profile = app.patch("/api/organizations/me", &owner, &json!({ "payoutGraceDays": 0 })).await;
    assert_eq!(profile.expect(200)["payoutGraceDays"], 0, "{}", profile.text);
    let program = app
        .post(
            "/api/v1/programs",
            &key,
            &json!({ "name": "Partners", "defaultCommissionType": "Percentage", "defaultCommissionValue": 20.0 }),
        )
        .await
        .expect(201)
        .clone();
    let program_id = id_of(&program);
    let mut ids = Vec::new();
    for (email, slug) in [("sarah@creator.example", format!("sarah-{org_id}")), ("bob@creator.example", format!("bob-{org_id}"))] {
        let slug = slug[..slug.len().min(40)].to_owned();
        let body = json!({ "programId": program_id, "email": email, "status": "Approved", "customAlias": slug });
        ids.push(id_of(app.post("/api/v1/affiliates", &key, &body).await.expect(201)));
    }
    Brand { org_id, key, sarah: ids[0].clone(), bob: ids[1].clone() }
}

fn slug(brand: &Brand, who: &str) -> String {
    let s = format!("{who}-{}", brand.org_id);
    s[..s.len().min(40)].to_owned()
}

fn invoice_paid(event: &str, invoice: &str, referral: &str, amount: i64, paid_at: i64) -> Vec<u8> {
    fixture(
        "invoice.paid.json",
        &[
            ("EVENT_ID", json!(event)),
            ("EVENT_TYPE", json!("invoice.paid")),
            ("CREATED", json!(paid_at)),
            ("INVOICE_ID", json!(invoice)),
            ("SUBSCRIPTION_ID", json!(format!("sub_{}", invoice.trim_start_matches("in_")))),
            ("CUSTOMER_ID", json!(format!("cus_{}", invoice.trim_start_matches("in_")))),
            ("EMAIL", json!(format!("{invoice}@buyers.example"))),
            ("AMOUNT", json!(amount)),
            ("DISCOUNT_IDS", json!([])),
            ("METADATA", json!({ "rekomi_ref": referral })),
            ("BILLING_REASON", json!("subscription_create")),
        ],
    )
}

/// Posts a signed event and waits until the worker has settled it (any final status).
async fn deliver(app: &TestApp, body: &[u8]) -> String {
    let header = signature::header(SECRET, now(), body);
    let request = app
        .request(Method::POST, "/api/webhooks/stripe")
        .header("content-type", "application/json")
        .header("stripe-signature", header)
        .body(body.to_vec());
    let answer = app.send(request).await;
    answer.expect(200);
    let id = answer.body["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let row = app.single_text(format!("SELECT coalesce((SELECT status || '|' || coalesce(last_error, '') FROM inbox_events WHERE id = '{id}'), 'missing') AS digest")).await;
        if !row.starts_with("Pending") && row != "missing" {
            return row;
        }
        assert!(tokio::time::Instant::now() < deadline, "event {id} was never processed: {row}");
        tokio::time::sleep(POLL).await;
    }
}

async fn sale(app: &TestApp, brand: &Brand, who: &str, n: u32, amount: i64) {
    let invoice = format!("in_{who}{n}x{}", &brand.org_id[..8]);
    let body = invoice_paid(&format!("evt_{who}{n}x{}", &brand.org_id[..8]), &invoice, &slug(brand, who), amount, now() - 60);
    let row = deliver(app, &body).await;
    assert!(row.starts_with("Done"), "{row}");
}

async fn put(app: &TestApp, path: &str, token: &str, body: &Value) -> Response {
    app.send(app.request(Method::PUT, path).bearer_auth(token).json(body)).await
}

async fn preview(app: &TestApp, token: &str, body: Value) -> Value {
    app.post("/api/v1/payouts/preview", token, &body).await.expect(200).clone()
}

async fn run(app: &TestApp, token: &str, mut body: Value) -> Vec<Value> {
    let mut selection = body.clone();
    selection.as_object_mut().unwrap().remove("notes");
    let total = preview(app, token, selection).await["totalCents"].as_i64().unwrap();
    body["confirmTotalCents"] = json!(total);
    let answer = app.post("/api/v1/payouts/run", token, &body).await;
    answer.expect(200).as_array().unwrap_or_else(|| panic!("{}", answer.text)).clone()
}

async fn conversions_with_status(app: &TestApp, key: &str, status: &str) -> Vec<Value> {
    app.get(&format!("/api/v1/conversions?status={status}"), key).await.expect(200)["items"].as_array().unwrap().clone()
}

/// Connects `affiliate`'s Stripe Express account as the affiliate would, then lets Stripe
/// enable its payouts (the double) and tells Rekomi through `account.updated`.
async fn connect_bob(app: &TestApp, brand: &Brand) -> String {
    let token = app.jwt_affiliate("bob-user", "bob@creator.example");
    let first = app.post("/api/me/payout-account/stripe", &token, &json!({ "affiliateId": brand.bob })).await;
    let first = first.expect(200).clone();
    let account = first["account"]["stripeAccountId"].as_str().unwrap().to_owned();
    assert!(first["onboardingUrl"].as_str().unwrap().starts_with("https://"), "{first}");
    assert_eq!(first["account"]["payoutsEnabled"], false);
    // Asking again gives a fresh link for the same account.
    let again = app.post("/api/me/payout-account/stripe", &token, &json!({ "affiliateId": brand.bob })).await.expect(200).clone();
    assert_eq!(again["account"]["stripeAccountId"], account.as_str());
    assert_eq!(app.stripe.requests_to("POST", "/v1/accounts").len(), 1, "the account is created once");
    let links = app.stripe.requests_to("POST", "/v1/account_links");
    assert_eq!(links.last().unwrap().param("return_url").map(|u| u.starts_with("https://rekomi.example/")), Some(true));
    app.stripe.enable_payouts(&account, true);
    let updated = fixture(
        "account.updated.json",
        &[
            ("EVENT_ID", json!(format!("evt_acct{}", &account[5..]))),
            ("CREATED", json!(now())),
            ("ACCOUNT_ID", json!(account)),
            ("TRANSFERS_CAPABILITY", json!("active")),
            ("DETAILS_SUBMITTED", json!(true)),
            ("EMAIL", json!("bob@creator.example")),
            ("PAYOUTS_ENABLED", json!(true)),
        ],
    );
    let row = deliver(app, &updated).await;
    assert!(row.starts_with("Done"), "{row}");
    let mine = app.get(&format!("/api/me/payout-account?affiliateId={}", brand.bob), &token).await.expect(200).clone();
    assert_eq!((mine["payoutsEnabled"].clone(), mine["detailsSubmitted"].clone()), (json!(true), json!(true)), "{mine}");
    account
}

#[tokio::test]
async fn sales_are_paid_manually_and_by_stripe_connect_exactly_once() {
    let Some(app) = spawn().await else { return };
    let brand = brand(&app, PlanTier::Growth).await;
    sale(&app, &brand, "sarah", 1, 10_000).await;
    sale(&app, &brand, "bob", 1, 5_000).await;
    let p = preview(&app, &brand.key, json!({ "method": "Manual" })).await;
    assert_eq!((p["totalCents"].clone(), p["currency"].clone(), p["eligibleCount"].clone()), (json!(3_000), json!("USD"), json!(2)), "{p}");

    let manual = run(&app, &brand.key, json!({ "method": "Manual", "affiliateIds": [brand.sarah], "notes": "April run" })).await;
    assert_eq!(manual.len(), 1);
    let m = &manual[0];
    assert_eq!((m["status"].clone(), m["amountCents"].clone(), m["method"].clone()), (json!("Paid"), json!(2_000), json!("Manual")), "{m}");
    assert_eq!(m["lineItems"].as_array().unwrap().len(), 1);
    assert_eq!(m["notes"], "April run");
    assert_eq!(conversions_with_status(&app, &brand.key, "Paid").await.len(), 1);

    let account = connect_bob(&app, &brand).await;
    let connect = run(&app, &brand.key, json!({ "method": "StripeConnect" })).await;
    assert_eq!(connect.len(), 1, "{connect:?}");
    let c = &connect[0];
    assert_eq!(
        (c["status"].clone(), c["amountCents"].clone(), c["affiliateId"].clone()),
        (json!("Paid"), json!(1_000), json!(brand.bob)),
        "{c}"
    );
    let transfers = app.stripe.requests_to("POST", "/v1/transfers");
    assert_eq!(transfers.len(), 1);
    let t = &transfers[0];
    assert_eq!((t.param("amount"), t.param("currency"), t.param("destination")), (Some("1000"), Some("usd"), Some(account.as_str())));
    let payout_id = c["id"].as_str().unwrap();
    assert_eq!(t.param("metadata[rekomi_payout_id]"), Some(payout_id));
    assert_eq!(t.param("transfer_group"), Some(format!("rekomi_payout_{payout_id}").as_str()));
    assert_eq!(t.idempotency_key(), Some(format!("rekomi-payout-{payout_id}-attempt-1").as_str()));
    assert_eq!(c["stripeTransferId"], app.stripe.transfers()[0]["id"]);

    // Nothing is left to pay, and the list and detail agree.
    assert_eq!(preview(&app, &brand.key, json!({ "method": "Manual" })).await["totalCents"], 0);
    let listed = app.get("/api/v1/payouts?method=StripeConnect", &brand.key).await.expect(200).clone();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let one = app.get(&format!("/api/v1/payouts/{payout_id}"), &brand.key).await.expect(200).clone();
    assert_eq!(one["lineItems"], c["lineItems"]);
    let billing = app.get("/api/billing/state", &brand.key).await.expect(200).clone();
    assert_eq!(billing["limits"]["partnerPayoutsThisMonthCents"]["current"], 3_000, "{billing}");
}

#[tokio::test]
async fn a_refund_after_a_payout_is_netted_in_the_next_run() {
    let Some(app) = spawn().await else { return };
    let brand = brand(&app, PlanTier::Growth).await;
    let tag = &brand.org_id[..8];
    let invoice = format!("in_r1x{tag}");
    let intent = format!("pi_r1x{tag}");
    app.stripe.script_invoice_payment(&intent, &invoice);
    let body = invoice_paid(&format!("evt_r1x{tag}"), &invoice, &slug(&brand, "sarah"), 10_000, now() - 60);
    assert!(deliver(&app, &body).await.starts_with("Done"));
    run(&app, &brand.key, json!({ "method": "Manual" })).await;
    let refund = charge_refunded(&format!("evt_r2x{tag}"), &intent, &format!("cus_r1x{tag}"), 10_000, 5_000, 0, now());
    assert!(deliver(&app, &refund).await.starts_with("Done"));
    let carried = preview(&app, &brand.key, json!({ "method": "Manual" })).await;
    assert_eq!(carried["candidates"][0]["amountCents"], -1_000, "{carried}");
    assert_eq!(carried["candidates"][0]["ineligibilityReason"], "negative_balance");
    assert!(run(&app, &brand.key, json!({ "method": "Manual" })).await.is_empty());
    sale(&app, &brand, "sarah", 2, 20_000).await;
    let paid = run(&app, &brand.key, json!({ "method": "Manual" })).await;
    assert_eq!(paid[0]["amountCents"], 3_000);
    let amounts: Vec<i64> = paid[0]["lineItems"].as_array().unwrap().iter().map(|l| l["amountCents"].as_i64().unwrap()).collect();
    assert_eq!(amounts.iter().sum::<i64>(), 3_000);
    assert!(amounts.contains(&-1_000) && amounts.contains(&4_000), "{amounts:?}");
}

#[tokio::test]
async fn a_transfer_whose_answers_were_lost_stays_processing_and_is_settled_exactly_once() {
    let Some(app) = spawn_with(|c| {
        c.reconcile_interval_secs = 1;
        c.payout_reconcile_after_secs = 1;
    })
    .await
    else {
        return;
    };
    let brand = brand(&app, PlanTier::Growth).await;
    sale(&app, &brand, "bob", 1, 5_000).await;
    connect_bob(&app, &brand).await;
    // Every attempt of the run's call (the first and its retries) reaches Stripe, which makes
    // the transfer once (same idempotency key), but no answer comes back.
    app.stripe.lose_next_transfer_answers(20);
    let run = run(&app, &brand.key, json!({ "method": "StripeConnect" })).await;
    // The answer streams after the transfer attempts, so the reconciler (every second here) may
    // already have settled it; who settled it is in the audit log below.
    assert!(run[0]["status"] == "Processing" || run[0]["status"] == "Paid", "{:?}", run);
    app.stripe.lose_next_transfer_answers(0);
    let id = run[0]["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + WITHIN;
    let paid = loop {
        let p = app.get(&format!("/api/v1/payouts/{id}"), &brand.key).await.expect(200).clone();
        if p["status"] == "Paid" {
            break p;
        }
        assert!(tokio::time::Instant::now() < deadline, "never settled: {p}");
        tokio::time::sleep(POLL).await;
    };
    let transfers = app.stripe.transfers();
    assert_eq!(transfers.len(), 1, "one transfer, however many times it was asked for");
    let settled_by = app
        .single_text(format!(
            "SELECT string_agg(actor_type, ',') AS digest FROM audit_log WHERE entity_id = '{id}' AND action = 'payout.paid'"
        ))
        .await;
    assert_eq!(settled_by, "system", "the run left it Processing and the reconciler paid it, once");
    assert_eq!(paid["stripeTransferId"], transfers[0]["id"]);
    assert_eq!(preview(&app, &brand.key, json!({ "method": "StripeConnect" })).await["totalCents"], 0);
}

#[tokio::test]
async fn a_reversed_transfer_fails_its_payout_and_a_retry_pays_it_again() {
    let Some(app) = spawn().await else { return };
    let brand = brand(&app, PlanTier::Growth).await;
    sale(&app, &brand, "bob", 1, 5_000).await;
    let account = connect_bob(&app, &brand).await;
    let paid = run(&app, &brand.key, json!({ "method": "StripeConnect" })).await;
    let id = paid[0]["id"].as_str().unwrap().to_owned();
    let transfer = paid[0]["stripeTransferId"].as_str().unwrap().to_owned();
    let reversed = app.stripe.reverse_transfer(&transfer).unwrap();
    let event = fixture(
        "transfer.reversed.json",
        &[
            ("EVENT_ID", json!(format!("evt_rev{}", &brand.org_id[..8]))),
            ("CREATED", json!(now())),
            ("TRANSFER_ID", json!(transfer)),
            ("AMOUNT", json!(1_000)),
            ("DESTINATION", json!(account)),
            ("METADATA", reversed["metadata"].clone()),
            ("TRANSFER_GROUP", reversed["transfer_group"].clone()),
        ],
    );
    assert!(deliver(&app, &event).await.starts_with("Done"));
    let failed = app.get(&format!("/api/v1/payouts/{id}"), &brand.key).await.expect(200).clone();
    assert_eq!((failed["status"].clone(), failed["failureReason"].clone()), (json!("Failed"), json!("reversed")), "{failed}");
    assert_eq!(preview(&app, &brand.key, json!({ "method": "StripeConnect" })).await["totalCents"], 1_000, "entries are back");
    let retry = format!("/api/v1/payouts/{id}/retry");
    let retried = app.post(&retry, &brand.key, &json!({})).await.expect(200).clone();
    assert_eq!(retried["status"], "Paid", "{retried}");
    assert_eq!(
        app.stripe.requests_to("POST", "/v1/transfers").last().unwrap().idempotency_key(),
        Some(format!("rekomi-payout-{id}-attempt-2").as_str())
    );
    app.post(&retry, &brand.key, &json!({})).await.expect_error(409, "payout_not_failed");
}

#[tokio::test]
async fn an_idempotency_key_replays_the_run_and_a_stale_total_is_refused() {
    let Some(app) = spawn().await else { return };
    let brand = brand(&app, PlanTier::Growth).await;
    sale(&app, &brand, "sarah", 1, 10_000).await;
    let stale = app.post("/api/v1/payouts/run", &brand.key, &json!({ "method": "Manual", "confirmTotalCents": 1 })).await;
    stale.expect_error(409, "confirm_total_mismatch");
    let body = json!({ "method": "Manual", "confirmTotalCents": 2_000 });
    let send = |body: Value, key: &'static str| {
        let request = app.request(Method::POST, "/api/v1/payouts/run").bearer_auth(&brand.key).header("Idempotency-Key", key).json(&body);
        app.send(request)
    };
    let first = send(body.clone(), "8f14e45f-ceea-467a-bb2c-d8b8c0afc8d8").await;
    first.expect(200);
    assert_eq!(first.header("Idempotency-Replayed"), None);
    let again = send(body.clone(), "8f14e45f-ceea-467a-bb2c-d8b8c0afc8d8").await;
    assert_eq!((again.status, again.header("Idempotency-Replayed")), (200, Some("true")));
    assert_eq!(again.body, first.body);
    send(json!({ "method": "Manual", "confirmTotalCents": 0 }), "8f14e45f-ceea-467a-bb2c-d8b8c0afc8d8")
        .await
        .expect_error(409, "idempotency_key_reused");
    assert_eq!(app.get("/api/v1/payouts", &brand.key).await.expect(200)["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_hundred_concurrent_identical_runs_make_one_set_of_payouts() {
    let Some(app) = spawn_with(|c| c.db_pool_size = 16).await else { return };
    let brand = brand(&app, PlanTier::Growth).await;
    sale(&app, &brand, "sarah", 1, 10_000).await;
    sale(&app, &brand, "bob", 1, 5_000).await;
    for key in [Some("concurrent-run-key"), None] {
        if key.is_none() {
            sale(&app, &brand, "sarah", 2, 10_000).await;
        }
        let total = preview(&app, &brand.key, json!({ "method": "Manual" })).await["totalCents"].as_i64().unwrap();
        let body = json!({ "method": "Manual", "confirmTotalCents": total });
        let runs = (0..100).map(|_| {
            let mut request = app.request(Method::POST, "/api/v1/payouts/run").bearer_auth(&brand.key).json(&body);
            if let Some(key) = key {
                request = request.header("Idempotency-Key", key);
            }
            app.send(request)
        });
        let answers = futures_join_all(runs).await;
        let created: Vec<&Response> = answers
            .iter()
            .filter(|a| a.status == 200 && a.header("Idempotency-Replayed").is_none() && !a.body.as_array().unwrap().is_empty())
            .collect();
        assert_eq!(created.len(), 1, "{:?}", answers.iter().map(|a| (a.status, a.error_code().map(str::to_owned))).collect::<Vec<_>>());
        for a in &answers {
            assert!(a.status == 200 || a.status == 409, "{} {}", a.status, a.text);
        }
    }
    let payouts = app.get("/api/v1/payouts", &brand.key).await.expect(200)["items"].as_array().unwrap().clone();
    let paid: i64 = payouts.iter().map(|p| p["amountCents"].as_i64().unwrap()).sum();
    assert_eq!((payouts.len(), paid), (3, 5_000), "two payouts with the key, one more without: {payouts:?}");
}

/// Awaits every future (a small join_all without another dependency).
async fn futures_join_all<F: std::future::Future<Output = Response>>(futures: impl Iterator<Item = F>) -> Vec<Response> {
    let handles: Vec<_> = futures.collect();
    let mut out = Vec::with_capacity(handles.len());
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = handles.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<Response>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => done[i] = Some(r),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(done.into_iter().flatten());
    out
}

#[tokio::test]
async fn paypal_payouts_are_exported_for_bulk_upload_and_marked_paid() {
    let Some(app) = spawn().await else { return };
    let brand = brand(&app, PlanTier::Growth).await;
    put(&app, &format!("/api/v1/affiliates/{}/payout-account", brand.sarah), &brand.key, &json!({ "paypalEmail": "not-an-email" }))
        .await
        .expect_field_error(400, "validation_failed", "paypalEmail");
    let recorded = put(
        &app,
        &format!("/api/v1/affiliates/{}/payout-account", brand.sarah),
        &brand.key,
        &json!({ "paypalEmail": "sarah@paypal.example" }),
    )
    .await;
    assert_eq!(recorded.expect(200)["paypalEmail"], "sarah@paypal.example");
    sale(&app, &brand, "sarah", 1, 12_345).await;
    let pending = run(&app, &brand.key, json!({ "method": "PayPal", "notes": "=HYPERLINK(\"x\")" })).await;
    assert_eq!(pending[0]["status"], "Pending");
    let csv = app.get("/api/v1/payouts/export.csv?method=PayPal", &brand.key).await;
    assert_eq!(csv.status, 200);
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines[0], "Email/Phone,Amount,Currency code,Reference ID,Note to recipient,Recipient wallet");
    let id = pending[0]["id"].as_str().unwrap();
    assert_eq!(lines[1], format!("sarah@paypal.example,24.69,USD,{id},\"'=HYPERLINK(\"\"x\"\")\",PAYPAL"));
    app.get("/api/v1/payouts/export.csv?method=Wise", &brand.key).await.expect_field_error(400, "validation_failed", "method");
    let mark_paid = format!("/api/v1/payouts/{id}/mark-paid");
    let paid = app.post(&mark_paid, &brand.key, &json!({ "externalTransactionId": "PAYPAL-BATCH-1" })).await;
    assert_eq!(paid.expect(200)["status"], "Paid");
    assert_eq!(paid.body["externalTransactionId"], "PAYPAL-BATCH-1");
    assert_eq!(app.get("/api/v1/payouts/export.csv?method=PayPal", &brand.key).await.text.lines().count(), 1);
}

#[tokio::test]
async fn the_home_currency_changes_on_pro_only_idempotently_and_audited() {
    let Some(app) = spawn().await else { return };
    let growth = brand(&app, PlanTier::Growth).await;
    let got = app.get("/api/v1/settings/home-currency", &growth.key).await.expect(200).clone();
    assert_eq!(
        (got["homeCurrency"].clone(), got["canChange"].clone(), got["changedAt"].clone()),
        (json!("USD"), json!(false), Value::Null)
    );
    assert_eq!(got["supportedCurrencies"].as_array().unwrap().len(), 31);
    put(&app, "/api/v1/settings/home-currency", &growth.key, &json!({ "homeCurrency": "EUR" }))
        .await
        .expect_error(402, "plan_tier_required");
    let (pro_id, pro_key) = app.org(PlanTier::Pro).await;
    put(&app, "/api/v1/settings/home-currency", &pro_key, &json!({ "homeCurrency": "XYZ" })).await.expect_field_error(
        400,
        "unsupported_currency",
        "homeCurrency",
    );
    let changed = put(&app, "/api/v1/settings/home-currency", &pro_key, &json!({ "homeCurrency": "eur" })).await.expect(200).clone();
    assert_eq!((changed["homeCurrency"].clone(), changed["changed"].clone()), (json!("EUR"), json!(true)));
    let same = put(&app, "/api/v1/settings/home-currency", &pro_key, &json!({ "homeCurrency": "EUR" })).await.expect(200).clone();
    assert_eq!((same["changed"].clone(), same["changedAt"].clone()), (json!(false), changed["changedAt"].clone()));
    let audited = app
        .single_text(format!(
            "SELECT count(*)::text AS digest FROM audit_log WHERE org_id = '{pro_id}' AND action = 'org.home_currency_changed'"
        ))
        .await;
    assert_eq!(audited, "1");
    let viewer = app.jwt_dashboard(&pro_id, "Viewer");
    put(&app, "/api/v1/settings/home-currency", &viewer, &json!({ "homeCurrency": "GBP" })).await.expect_error(403, "insufficient_role");
}

#[tokio::test]
async fn the_profile_grace_days_are_for_dashboard_owners_within_the_plan_maximum() {
    let Some(app) = spawn().await else { return };
    let (org_id, key) = app.org(PlanTier::Growth).await;
    let owner = app.jwt_dashboard(&org_id, "Owner");
    app.patch("/api/organizations/me", &key, &json!({ "payoutGraceDays": 10 })).await.expect_error(403, "jwt_required");
    app.patch("/api/organizations/me", &app.jwt_dashboard(&org_id, "Manager"), &json!({ "payoutGraceDays": 10 }))
        .await
        .expect_error(403, "insufficient_role");
    app.patch("/api/organizations/me", &owner, &json!({ "payoutGraceDays": 31 })).await.expect_field_error(
        400,
        "validation_failed",
        "payoutGraceDays",
    );
    app.patch("/api/organizations/me", &owner, &json!({ "payoutGraceDays": -1 })).await.expect_field_error(
        400,
        "validation_failed",
        "payoutGraceDays",
    );
    app.patch("/api/organizations/me", &owner, &json!({ "payoutGraceDays": null })).await.expect_field_error(
        400,
        "validation_failed",
        "payoutGraceDays",
    );
    app.patch("/api/organizations/me", &owner, &json!({ "name": "x" })).await.expect(400);
    let ok =
        app.patch("/api/organizations/me", &owner, &json!({ "payoutGraceDays": 7, "minimumPayoutCents": 5_000 })).await.expect(200).clone();
    assert_eq!(
        (ok["payoutGraceDays"].clone(), ok["minimumPayoutCents"].clone(), ok["payoutGraceDaysMax"].clone()),
        (json!(7), json!(5_000), json!(30))
    );
    assert_eq!(app.get("/api/organizations/me", &key).await.expect(200)["payoutGraceDays"], 7);
}

#[tokio::test]
async fn payout_endpoints_answer_bad_input_other_tenants_and_missing_rights_with_the_envelope() {
    let Some(app) = spawn().await else { return };
    let brand = brand(&app, PlanTier::Growth).await;
    sale(&app, &brand, "sarah", 1, 10_000).await;
    let paid = run(&app, &brand.key, json!({ "method": "Manual" })).await;
    let id = paid[0]["id"].as_str().unwrap().to_owned();
    let mark_paid = format!("/api/v1/payouts/{id}/mark-paid");
    let retry = format!("/api/v1/payouts/{id}/retry");
    let other = self::brand(&app, PlanTier::Growth).await;
    let read_key = app.api_key(&brand.org_id, rekomi_domain::orgs::ApiKeyScope::Read).await;
    let before = app.counts().await;
    let payouts_before = app.count_rows("payouts").await;

    // Other tenants' ids are 404s.
    app.get(&format!("/api/v1/payouts/{id}"), &other.key).await.expect_error(404, "payout_not_found");
    app.post(&retry, &other.key, &json!({})).await.expect_error(404, "payout_not_found");
    app.post(&mark_paid, &other.key, &json!({ "externalTransactionId": "x" })).await.expect_error(404, "payout_not_found");
    put(&app, &format!("/api/v1/affiliates/{}/payout-account", brand.sarah), &other.key, &json!({}))
        .await
        .expect_error(404, "affiliate_not_found");
    let stranger = app.jwt_affiliate("someone", "someone@else.example");
    app.post("/api/me/payout-account/stripe", &stranger, &json!({ "affiliateId": brand.sarah }))
        .await
        .expect_error(404, "affiliate_not_found");
    app.get(&format!("/api/me/payout-account?affiliateId={}", brand.sarah), &stranger).await.expect_error(404, "affiliate_not_found");
    assert!(app.get("/api/v1/payouts", &other.key).await.expect(200)["items"].as_array().unwrap().is_empty());

    // Bad input.
    let cases: Vec<(&str, Value, u16, &str, Option<&str>)> = vec![
        ("/api/v1/payouts/preview", json!({}), 400, "validation_failed", Some("method")),
        ("/api/v1/payouts/preview", json!({ "method": "Bitcoin" }), 400, "validation_failed", Some("method")),
        ("/api/v1/payouts/preview", json!({ "method": 1 }), 400, "validation_failed", Some("method")),
        (
            "/api/v1/payouts/preview",
            json!({ "method": "Manual", "periodStart": "2026-13-01" }),
            400,
            "validation_failed",
            Some("periodStart"),
        ),
        (
            "/api/v1/payouts/preview",
            json!({ "method": "Manual", "periodStart": "2026-05-02", "periodEnd": "2026-05-01" }),
            400,
            "validation_failed",
            Some("periodEnd"),
        ),
        (
            "/api/v1/payouts/preview",
            json!({ "method": "Manual", "affiliateIds": ["nope"] }),
            400,
            "validation_failed",
            Some("affiliateIds[0]"),
        ),
        ("/api/v1/payouts/preview", json!({ "method": "Manual", "currency": "XYZ" }), 400, "unsupported_currency", Some("currency")),
        ("/api/v1/payouts/preview", json!({ "method": "Manual", "extra": 1 }), 400, "validation_failed", None),
        ("/api/v1/payouts/run", json!({ "method": "Manual" }), 400, "validation_failed", Some("confirmTotalCents")),
        (
            "/api/v1/payouts/run",
            json!({ "method": "Manual", "confirmTotalCents": "10" }),
            400,
            "validation_failed",
            Some("confirmTotalCents"),
        ),
        (
            "/api/v1/payouts/run",
            json!({ "method": "Manual", "confirmTotalCents": -1 }),
            400,
            "validation_failed",
            Some("confirmTotalCents"),
        ),
        (
            "/api/v1/payouts/run",
            json!({ "method": "Manual", "confirmTotalCents": 0, "notes": "x".repeat(1001) }),
            400,
            "validation_failed",
            Some("notes"),
        ),
        (&mark_paid, json!({}), 400, "validation_failed", Some("externalTransactionId")),
        (&mark_paid, json!({ "externalTransactionId": " " }), 400, "validation_failed", Some("externalTransactionId")),
        (&mark_paid, json!({ "externalTransactionId": "x" }), 409, "payout_not_payable", None),
        (&retry, json!({}), 409, "payout_not_failed", None),
        ("/api/v1/payouts/not-a-uuid/retry", json!({}), 400, "validation_failed", Some("id")),
        ("/api/me/payout-account/stripe", json!({ "affiliateId": 3 }), 401, "unauthorized", None),
    ];
    for (path, body, status, code, field) in &cases {
        let token = if path.starts_with("/api/me") { "" } else { brand.key.as_str() };
        let answer =
            if token.is_empty() { app.send(app.request(Method::POST, path).json(body)).await } else { app.post(path, token, body).await };
        match field {
            Some(field) => answer.expect_field_error(*status, code, field),
            None => answer.expect_error(*status, code),
        };
    }
    let malformed = app.raw(Method::POST, "/api/v1/payouts/run", &brand.key, Some("application/json"), "{\"method\":").await;
    malformed.expect_error(400, "invalid_json");
    let oversized = app
        .raw(
            Method::POST,
            "/api/v1/payouts/preview",
            &brand.key,
            Some("application/json"),
            format!("{{\"method\":\"Manual\",\"notes\":\"{}\"}}", "x".repeat(2_000_000)),
        )
        .await;
    oversized.expect_error(413, "payload_too_large");
    let bad_key = app
        .request(Method::POST, "/api/v1/payouts/run")
        .bearer_auth(&brand.key)
        .header("Idempotency-Key", "has space")
        .json(&json!({ "method": "Manual", "confirmTotalCents": 0 }));
    app.send(bad_key).await.expect_field_error(400, "validation_failed", "Idempotency-Key");
    app.get("/api/v1/payouts?status=Sent", &brand.key).await.expect_field_error(400, "validation_failed", "status");
    app.get("/api/v1/payouts?take=0", &brand.key).await.expect_field_error(400, "validation_failed", "take");
    app.get("/api/v1/payouts", "").await.expect(401);
    put(&app, &format!("/api/v1/affiliates/{}/payout-account", brand.sarah), &brand.key, &json!({ "stripeAccountId": "cus_1" }))
        .await
        .expect_field_error(400, "validation_failed", "stripeAccountId");
    put(&app, &format!("/api/v1/affiliates/{}/payout-account", brand.sarah), &brand.key, &json!({ "stripeAccountId": "acct_unknown" }))
        .await
        .expect_error(422, "stripe_account_not_found");

    // Roles and plans: writes are for Owners; API keys need Starter+.
    let manager = app.jwt_dashboard(&brand.org_id, "Manager");
    app.post("/api/v1/payouts/preview", &manager, &json!({ "method": "Manual" })).await.expect_error(403, "insufficient_role");
    app.post("/api/v1/payouts/run", &manager, &json!({ "method": "Manual", "confirmTotalCents": 0 }))
        .await
        .expect_error(403, "insufficient_role");
    app.get("/api/v1/payouts", &manager).await.expect(200);
    app.post("/api/v1/payouts/run", &read_key, &json!({ "method": "Manual", "confirmTotalCents": 0 }))
        .await
        .expect_error(403, "insufficient_scope");

    assert_eq!(app.counts().await, before, "nothing was written by a refused request");
    assert_eq!(app.count_rows("payouts").await, payouts_before);
}

#[tokio::test]
async fn every_entry_stores_its_rate_to_the_home_currency_from_stripe_or_the_ecb() {
    let Some(app) = spawn().await else { return };
    let brand = brand(&app, PlanTier::Growth).await;
    let tag = &brand.org_id[..8];
    app.services.import_fx_rates("Date,USD,GBP,\n2026-05-29,1.1172,0.8338,\n").await.unwrap();
    let friday = time::macros::datetime!(2026-05-29 15:00 UTC).unix_timestamp();
    let in_currency = |invoice: &str, currency: &str| {
        let body = invoice_paid(&format!("evt_{invoice}"), invoice, &slug(&brand, "sarah"), 10_000, friday);
        String::from_utf8(body).unwrap().replace("\"currency\": \"usd\"", &format!("\"currency\": \"{currency}\"")).into_bytes()
    };
    let (eur, gbp, aed, usd) = (format!("in_eur{tag}"), format!("in_gbp{tag}"), format!("in_aed{tag}"), format!("in_usd{tag}"));
    app.stripe.script_settlement(&eur, &format!("pi_eur{tag}"), "usd", 1.0832);
    for (invoice, currency) in [(&eur, "eur"), (&gbp, "gbp"), (&aed, "aed"), (&usd, "usd")] {
        let row = deliver(&app, &in_currency(invoice, currency)).await;
        assert!(row.starts_with("Done"), "{row}");
    }
    let rates = app
        .single_text(format!(
            "SELECT string_agg(currency || '=' || coalesce(fx_rate, '-') || '/' || coalesce(fx_source, '-'), ' ' ORDER BY currency) AS digest \
             FROM ledger_events WHERE org_id = '{}'",
            brand.org_id
        ))
        .await;
    assert_eq!(rates, "AED=-/- EUR=1.0832/stripe_balance_transaction GBP=1.339889661789/ecb_reference USD=1/identity");
    let asked = app.stripe.requests().iter().filter(|r| r.path_only().starts_with("/v1/payment_intents/")).count();
    assert_eq!(asked, 1, "only the converted payment's intent is read");
}
