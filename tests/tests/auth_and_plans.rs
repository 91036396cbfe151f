//! Authentication, scopes, dashboard roles, plan gates, rate limits and the public
//! operational endpoints, over HTTP against the real server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use rekomi_domain::kernel::plan::PlanTier;
use rekomi_domain::orgs::{hash_api_key, ApiKeyScope};
use rekomi_e2e::app::{id_of, in_an_hour, Response, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

fn program_body() -> Value {
    json!({"name": "Spring", "defaultCommissionType": "Percentage", "defaultCommissionValue": 10})
}

#[tokio::test]
async fn requests_without_valid_credentials_get_a_401_envelope() {
    let Some(app) = TestApp::spawn().await else { return };
    let (org_id, key) = app.org(PlanTier::Growth).await;
    let path = "/api/v1/programs";

    let none = app.send(app.request(Method::GET, path)).await;
    none.expect_error(401, "unauthorized");
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", key.as_str(), "Token rk_live_x"] {
        let answer = app.send(app.request(Method::GET, path).header("authorization", header)).await;
        answer.expect_error(401, "unauthorized");
        assert!(answer.header("x-ratelimit-remaining").is_none(), "unauthenticated answers carry no quota");
    }
    // Not an API key, so a JWT, and not a valid one.
    app.get(path, "garbage").await.expect_error(401, "invalid_token");
    app.get(path, "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl").await.expect_error(401, "invalid_token");
    // Unknown and revoked keys.
    app.get(path, "rk_live_0000000000000000000000000000000000000000").await.expect_error(401, "invalid_api_key");
    app.get(path, &format!("{key}x")).await.expect_error(401, "invalid_api_key");
    let second = app.api_key(&org_id, ApiKeyScope::ReadWrite).await;
    app.get(path, &second).await.expect(200);
    let revoked = app.execute_sql(&format!("UPDATE api_keys SET revoked_at = now() WHERE hash = '{}'", hash_api_key(&second))).await;
    assert_eq!(revoked, 1);
    app.get(path, &second).await.expect_error(401, "invalid_api_key");
    app.get(path, &key).await.expect(200);
    // JWTs: wrong secret, expired, unknown role, unknown organization, no org claim.
    let wrong_secret = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "u1", "org_id": org_id, "role": "Owner", "exp": in_an_hour()}),
        &jsonwebtoken::EncodingKey::from_secret(b"another secret"),
    )
    .unwrap();
    let unknown_org = "00000000-0000-7000-8000-000000000000";
    for token in [
        wrong_secret,
        app.jwt(&json!({"sub": "u1", "org_id": org_id, "role": "Owner", "exp": 1_000_000_000})),
        app.jwt(&json!({"sub": "u1", "org_id": org_id, "role": "Admin", "exp": in_an_hour()})),
        app.jwt(&json!({"sub": "u1", "org_id": unknown_org, "role": "Owner", "exp": in_an_hour()})),
        app.jwt(&json!({"sub": "u1", "org_id": "not-a-uuid", "role": "Owner", "exp": in_an_hour()})),
        app.jwt(&json!({"sub": "u1", "role": "Owner", "exp": in_an_hour()})),
    ] {
        app.get(path, &token).await.expect_error(401, "invalid_token");
    }
    app.get(path, &app.jwt_dashboard(&org_id, "Viewer")).await.expect(200);
}

#[tokio::test]
async fn a_read_key_may_read_but_every_writing_method_is_refused_with_insufficient_scope() {
    let Some(app) = TestApp::spawn().await else { return };
    let (org_id, key) = app.org(PlanTier::Growth).await;
    let read = app.api_key(&org_id, ApiKeyScope::Read).await;
    let program = app.create_program(&key, "Default program").await;
    let program_id = id_of(&program);
    let affiliate = app.create_affiliate(&key, &program_id, "sarah@creator.com", "Approved").await;
    let coupon = app.create_campaign_coupon(&key, &program_id, json!({})).await;
    let code = app.create_code(&key, &id_of(&affiliate), &id_of(&coupon), Some("SARAH20")).await;

    for path in [
        "/api/v1/programs".to_owned(),
        format!("/api/v1/programs/{program_id}"),
        "/api/v1/affiliates".to_owned(),
        format!("/api/v1/affiliates/{}", id_of(&affiliate)),
        format!("/api/v1/campaigns/{program_id}/coupons"),
        format!("/api/v1/campaigns/{program_id}/coupons/{}", id_of(&coupon)),
        format!("/api/v1/affiliates/{}/coupons", id_of(&affiliate)),
        "/api/v1/promotional-codes?code=SARAH20".to_owned(),
        "/api/organizations/me".to_owned(),
        "/api/billing/state".to_owned(),
    ] {
        app.get(&path, &read).await.expect(200);
    }
    let before = app.fingerprints().await;
    let stripe_before = app.stripe.request_count();
    let coupon_path = format!("/api/v1/campaigns/{program_id}/coupons/{}", id_of(&coupon));
    let writes: Vec<(Method, String, Value)> = vec![
        (Method::POST, "/api/v1/programs".to_owned(), program_body()),
        (Method::PATCH, format!("/api/v1/programs/{program_id}"), json!({"name": "Renamed"})),
        (Method::DELETE, format!("/api/v1/programs/{program_id}"), Value::Null),
        (Method::POST, "/api/v1/affiliates".to_owned(), json!({"programId": program_id, "email": "new@creator.com"})),
        (Method::PATCH, format!("/api/v1/affiliates/{}", id_of(&affiliate)), json!({"notes": "x"})),
        (Method::POST, "/api/v1/affiliates/bulk-action".to_owned(), json!({"affiliateIds": [id_of(&affiliate)], "action": "pause"})),
        (
            Method::POST,
            format!("/api/v1/campaigns/{program_id}/coupons"),
            json!({"name": "X", "discountType": "PercentOff", "discountValue": 5, "duration": "Once"}),
        ),
        (Method::PATCH, coupon_path.clone(), json!({"name": "Renamed"})),
        (Method::POST, format!("{coupon_path}/archive"), Value::Null),
        (Method::DELETE, coupon_path.clone(), Value::Null),
        (
            Method::POST,
            format!("/api/v1/affiliates/{}/coupons", id_of(&affiliate)),
            json!({"campaignCouponId": id_of(&coupon), "code": "READ20"}),
        ),
        (Method::DELETE, format!("/api/v1/affiliates/{}/coupons/{}", id_of(&affiliate), id_of(&code)), Value::Null),
    ];
    for (method, path, body) in writes {
        let mut request = app.request(method.clone(), &path).bearer_auth(&read);
        if !body.is_null() {
            request = request.json(&body);
        }
        let answer = app.send(request).await;
        assert_eq!((answer.status, answer.error_code()), (403, Some("insufficient_scope")), "{method} {path}: {}", answer.text);
    }
    assert_eq!(app.fingerprints().await, before, "no refused write changed a row");
    assert_eq!(app.stripe.request_count(), stripe_before, "no refused write reached Stripe");
}

#[track_caller]
fn assert_plan_required(answer: &Response, required: &str, current: &str, trialing: bool) {
    answer.expect_error(402, "plan_tier_required");
    assert_eq!(
        (answer.body["required"].clone(), answer.body["current"].clone(), answer.body["trialing"].clone()),
        (json!(required), json!(current), json!(trialing)),
        "{}",
        answer.text
    );
}

#[tokio::test]
async fn api_keys_below_growth_get_402_on_coupon_endpoints_while_dashboard_jwts_of_the_org_pass() {
    let Some(app) = TestApp::spawn().await else { return };
    let (org_id, key) = app.org(PlanTier::Starter).await;
    // Starter passes the Starter families.
    let program_id = id_of(&app.create_program(&key, "Default program").await);
    let affiliate_id = id_of(&app.create_affiliate(&key, &program_id, "sarah@creator.com", "Approved").await);
    app.get("/api/organizations/me", &key).await.expect(200);
    app.get("/api/billing/state", &key).await.expect(200);

    let coupon_body = json!({"name": "Summer", "discountType": "PercentOff", "discountValue": 20, "duration": "Once"});
    let coupons = format!("/api/v1/campaigns/{program_id}/coupons");
    let before = app.counts().await;
    assert_plan_required(&app.post(&coupons, &key, &coupon_body).await, "Growth", "Starter", false);
    assert_plan_required(&app.get(&coupons, &key).await, "Growth", "Starter", false);
    assert_plan_required(&app.get(&format!("/api/v1/affiliates/{affiliate_id}/coupons"), &key).await, "Growth", "Starter", false);
    assert_plan_required(&app.get("/api/v1/promotional-codes?code=SARAH20", &key).await, "Growth", "Starter", false);
    assert_eq!(app.counts().await, before);
    assert!(app.stripe.requests().is_empty());

    // A dashboard JWT of the same organization passes the gate.
    let manager = app.jwt_dashboard(&org_id, "Manager");
    let coupon = app.post(&coupons, &manager, &coupon_body).await.expect(201).clone();
    app.get(&coupons, &manager).await.expect(200);
    let code = app
        .post(
            &format!("/api/v1/affiliates/{affiliate_id}/coupons"),
            &manager,
            &json!({"campaignCouponId": id_of(&coupon), "code": "SARAH20"}),
        )
        .await
        .expect(201)
        .clone();
    assert_eq!(app.get("/api/v1/promotional-codes?code=SARAH20", &manager).await.expect(200)["id"], code["id"]);
    // The API key still cannot read what the dashboard made.
    assert_plan_required(&app.get(&format!("{coupons}/{}", id_of(&coupon)), &key).await, "Growth", "Starter", false);

    // A trialing Trial organization counts as Starter for API keys.
    let (trial_org, trial_key) = app.org(PlanTier::Trial).await;
    let trial_program = id_of(&app.create_program(&trial_key, "Trial program").await);
    assert_plan_required(
        &app.post(&format!("/api/v1/campaigns/{trial_program}/coupons"), &trial_key, &coupon_body).await,
        "Growth",
        "Trial",
        true,
    );
    let owner = app.jwt_dashboard(&trial_org, "Owner");
    app.post(&format!("/api/v1/campaigns/{trial_program}/coupons"), &owner, &coupon_body).await.expect(201);

    // Pro passes Growth.
    let (_, pro_key) = app.org(PlanTier::Pro).await;
    let pro_program = id_of(&app.create_program(&pro_key, "Pro program").await);
    app.post(&format!("/api/v1/campaigns/{pro_program}/coupons"), &pro_key, &coupon_body).await.expect(201);

    // A canceled subscription passes no gate, whatever the channel.
    app.execute_sql(&format!("UPDATE organizations SET subscription_status = 'Canceled' WHERE id = '{org_id}'")).await;
    assert_plan_required(&app.get("/api/v1/programs", &key).await, "Starter", "Starter", false);
    assert_plan_required(&app.get("/api/v1/programs", &manager).await, "Starter", "Starter", false);
}

#[tokio::test]
async fn dashboard_roles_gate_writes_viewer_reads_manager_writes_owner_deletes() {
    let Some(app) = TestApp::spawn().await else { return };
    let (org_id, key) = app.org(PlanTier::Growth).await;
    let (viewer, manager, owner) =
        (app.jwt_dashboard(&org_id, "Viewer"), app.jwt_dashboard(&org_id, "Manager"), app.jwt_dashboard(&org_id, "Owner"));
    let program_id = id_of(&app.create_program(&key, "Default program").await);
    let affiliate_id = id_of(&app.create_affiliate(&key, &program_id, "sarah@creator.com", "Approved").await);

    // Viewer: reads only.
    app.get("/api/v1/programs", &viewer).await.expect(200);
    app.get(&format!("/api/v1/programs/{program_id}"), &viewer).await.expect(200);
    let before = app.counts().await;
    app.post("/api/v1/programs", &viewer, &program_body()).await.expect_error(403, "insufficient_role");
    app.patch(&format!("/api/v1/programs/{program_id}"), &viewer, &json!({"name": "X"})).await.expect_error(403, "insufficient_role");
    app.post(
        &format!("/api/v1/campaigns/{program_id}/coupons"),
        &viewer,
        &json!({"name": "X", "discountType": "PercentOff", "discountValue": 5, "duration": "Once"}),
    )
    .await
    .expect_error(403, "insufficient_role");
    assert_eq!(app.counts().await, before);

    // Manager: writes, but neither program DELETE nor bulk actions.
    let created = app.post("/api/v1/programs", &manager, &program_body()).await.expect(201).clone();
    app.patch(&format!("/api/v1/programs/{program_id}"), &manager, &json!({"name": "Renamed"})).await.expect(200);
    app.delete(&format!("/api/v1/programs/{}", id_of(&created)), &manager).await.expect_error(403, "insufficient_role");
    app.post("/api/v1/affiliates/bulk-action", &manager, &json!({"affiliateIds": [affiliate_id], "action": "pause"}))
        .await
        .expect_error(403, "insufficient_role");
    assert!(app.get(&format!("/api/v1/programs/{}", id_of(&created)), &manager).await.expect(200)["archivedAt"].is_null());

    // Owner: everything.
    app.delete(&format!("/api/v1/programs/{}", id_of(&created)), &owner).await.expect(204);
    assert!(app.get(&format!("/api/v1/programs/{}", id_of(&created)), &owner).await.expect(200)["archivedAt"].is_string());
    let bulk = app.post("/api/v1/affiliates/bulk-action", &owner, &json!({"affiliateIds": [affiliate_id], "action": "pause"})).await;
    assert_eq!(bulk.expect(200), &json!({"affected": 1, "total": 1, "action": "pause"}));
    // API keys count as Owner.
    app.delete(&format!("/api/v1/programs/{program_id}"), &key).await.expect(204);

    // Affiliate tokens are not brand credentials.
    let affiliate = app.jwt_affiliate("user_sarah", "sarah@creator.com");
    app.get("/api/v1/programs", &affiliate).await.expect_error(401, "invalid_token");
    app.get("/api/organizations/me", &affiliate).await.expect_error(401, "invalid_token");
    app.post("/api/v1/programs", &affiliate, &program_body()).await.expect_error(401, "invalid_token");
}

#[tokio::test]
async fn authenticated_responses_carry_the_remaining_quota() {
    let Some(app) = TestApp::spawn().await else { return };
    let (org_id, key) = app.org(PlanTier::Growth).await;
    let remaining = |r: &Response| -> u32 {
        r.header("x-ratelimit-remaining").unwrap_or_else(|| panic!("no X-RateLimit-Remaining: {:?}", r.headers)).parse().unwrap()
    };
    let first = app.get("/api/v1/programs", &key).await;
    let second = app.get("/api/organizations/me", &key).await;
    assert_eq!(remaining(&first), 599);
    assert!(remaining(&second) <= 599 && remaining(&second) >= 597, "{}", remaining(&second));
    // Errors of authenticated callers carry it too.
    let missing = app.get("/api/v1/programs/00000000-0000-7000-8000-000000000000", &key).await;
    missing.expect_error(404, "program_not_found");
    assert!(remaining(&missing) < 599);
    // Dashboard users have their own bucket.
    let jwt = app.get("/api/v1/programs", &app.jwt_dashboard(&org_id, "Viewer")).await;
    assert_eq!(remaining(&jwt), 599);
    // The public endpoints are not rate limited.
    assert!(app.send(app.request(Method::GET, "/healthz")).await.header("x-ratelimit-remaining").is_none());
}

#[tokio::test]
async fn a_refused_body_of_an_authenticated_caller_carries_the_quota_and_counts_against_it() {
    let Some(app) = TestApp::spawn().await else { return };
    let (_, key) = app.org(PlanTier::Growth).await;
    let quota = |r: &Response| r.header("x-ratelimit-remaining").map(|v| v.parse::<u32>().unwrap());
    assert_eq!(quota(&app.get("/api/v1/programs", &key).await), Some(599));
    for body in [json!({"name": 5}), json!({"nmae": "typo"})] {
        let refused = app.post("/api/v1/programs", &key, &body).await;
        refused.expect_error(400, "validation_failed");
        assert!(quota(&refused).is_some(), "a 400 of an authenticated caller has no X-RateLimit-Remaining: {:?}", refused.headers);
    }
    let malformed = app.raw(Method::POST, "/api/v1/programs", &key, Some("application/json"), "{").await;
    malformed.expect_error(400, "invalid_json");
    assert!(quota(&malformed).is_some(), "{:?}", malformed.headers);
    // Four requests so far (the bucket refills 10 per second, so allow a little).
    let next = quota(&app.get("/api/v1/programs", &key).await).unwrap();
    assert!(next <= 596, "refused bodies were not counted against the limit: {next} left after 5 requests");
}

#[tokio::test]
async fn credentials_are_checked_before_the_body_so_a_bad_body_never_answers_an_unauthenticated_caller() {
    let Some(app) = TestApp::spawn().await else { return };
    let (org_id, key) = app.org(PlanTier::Growth).await;
    let read = app.api_key(&org_id, ApiKeyScope::Read).await;
    let expired = app.jwt(&json!({"sub": "u1", "org_id": org_id, "role": "Owner", "exp": 1_000_000_000}));
    let viewer = app.jwt_dashboard(&org_id, "Viewer");
    let unknown = "rk_live_0000000000000000000000000000000000000000";
    let bodies: [(Option<&str>, &str); 4] = [
        (Some("application/json"), "{"),
        (Some("application/json"), r#"{"name": 5}"#),
        (Some("application/json"), r#"{"unknownField": true}"#),
        (Some("text/plain"), r#"{"name": "Spring", "defaultCommissionType": "Percentage", "defaultCommissionValue": 10}"#),
    ];
    let mut wrong = Vec::new();
    for (token, status, code) in
        [(unknown, 401, "invalid_api_key"), (expired.as_str(), 401, "invalid_token"), (read.as_str(), 403, "insufficient_scope")]
    {
        for (content_type, body) in bodies {
            let answer = app.raw(Method::POST, "/api/v1/programs", token, content_type, body).await;
            if (answer.status, answer.error_code()) != (status, Some(code)) {
                wrong.push(format!("{code} expected for {body:?} ({content_type:?}), got {} {}", answer.status, answer.text));
            }
        }
    }
    // Roles are checked after a valid body only (validation before authorization is fine for
    // an authenticated member of the organization), but a valid body must meet the role check.
    app.raw(
        Method::POST,
        "/api/v1/programs",
        &viewer,
        Some("application/json"),
        r#"{"name": "Spring", "defaultCommissionType": "Percentage", "defaultCommissionValue": 10}"#,
    )
    .await
    .expect_error(403, "insufficient_role");
    app.get("/api/v1/programs", &key).await.expect(200);
    assert!(wrong.is_empty(), "the body was judged before the credentials:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn a_burst_beyond_600_requests_a_minute_from_one_key_is_limited_with_retry_after() {
    let Some(app) = TestApp::spawn().await else { return };
    let (org_id, key) = app.org(PlanTier::Growth).await;
    let url = app.url("/api/organizations/me");
    let mut statuses = Vec::new();
    let mut limited: Option<(String, String, Value)> = None;
    // 601 requests plus what the bucket refills (10 per second) while they run; bounded.
    'burst: for _batch in 0..20 {
        let mut batch = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (client, url, key) = (app.client.clone(), url.clone(), key.clone());
            batch.spawn(async move {
                let response = client.get(url).bearer_auth(key).send().await.unwrap();
                let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let (status, retry_after, remaining) = (response.status().as_u16(), header("retry-after"), header("x-ratelimit-remaining"));
                (status, retry_after, remaining, response.json::<Value>().await.unwrap_or(Value::Null))
            });
        }
        while let Some(joined) = batch.join_next().await {
            let (status, retry_after, remaining, body) = joined.unwrap();
            statuses.push(status);
            if status == 429 && limited.is_none() {
                limited = Some((retry_after, remaining, body));
            }
        }
        if limited.is_some() && statuses.len() >= 601 {
            break 'burst;
        }
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{:?}", statuses.iter().collect::<BTreeSet<_>>());
    let (retry_after, remaining, body) = limited.unwrap_or_else(|| panic!("no 429 after {} requests", statuses.len()));
    assert!((600..statuses.len()).contains(&ok), "{ok} of {} requests passed", statuses.len());
    assert!(retry_after.parse::<u64>().is_ok_and(|s| s >= 1), "Retry-After: {retry_after:?}");
    assert_eq!(remaining, "0");
    assert_eq!(body["error"], "rate_limited", "{body}");
    // The limit is per key: another key of the same organization is unaffected.
    let other = app.api_key(&org_id, ApiKeyScope::Read).await;
    app.get("/api/organizations/me", &other).await.expect(200);
}

#[tokio::test]
async fn health_readiness_and_the_openapi_document_are_served_without_credentials() {
    let Some(app) = TestApp::spawn().await else { return };
    let health = app.send(app.request(Method::GET, "/healthz")).await;
    assert_eq!(health.expect(200)["status"], "ok");
    let ready = app.send(app.request(Method::GET, "/readyz")).await;
    assert_eq!(ready.expect(200)["status"], "ready");

    let doc = app.send(app.request(Method::GET, "/api/v1/openapi.json")).await;
    assert!(doc.header("content-type").is_some_and(|c| c.starts_with("application/json")), "{:?}", doc.headers);
    let doc = doc.expect(200);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().expect("paths");
    for (path, methods) in [
        ("/api/v1/campaigns/{programId}/coupons", &["get", "post"][..]),
        ("/api/v1/campaigns/{programId}/coupons/{id}", &["get", "patch", "delete"][..]),
        ("/api/v1/campaigns/{programId}/coupons/{id}/archive", &["post"][..]),
        ("/api/v1/affiliates/{affiliateId}/coupons", &["get", "post"][..]),
        ("/api/v1/affiliates/{affiliateId}/coupons/{id}", &["delete"][..]),
        ("/api/v1/promotional-codes", &["get"][..]),
        ("/api/me/coupons/mint", &["post"][..]),
    ] {
        let item = paths.get(path).unwrap_or_else(|| panic!("{path} is not documented; paths: {:?}", paths.keys().collect::<Vec<_>>()));
        for method in methods {
            assert!(item.get(*method).is_some(), "{method} {path} is not documented");
        }
    }

    // Unknown routes and methods answer the envelope too.
    app.send(app.request(Method::GET, "/api/v1/nothing-here")).await.expect_error(404, "not_found");
    app.send(app.request(Method::PUT, "/api/v1/programs")).await.expect_error(405, "method_not_allowed");
}

#[tokio::test]
async fn the_organization_profile_and_billing_state_have_their_documented_shapes() {
    let Some(app) = TestApp::spawn().await else { return };
    let (org_id, key) = app.org(PlanTier::Growth).await;
    let me = app.get("/api/organizations/me", &key).await.expect(200).clone();
    let fields: BTreeSet<&str> = me.as_object().unwrap().keys().map(String::as_str).collect();
    let documented: BTreeSet<&str> = [
        "id",
        "name",
        "slug",
        "billingEmail",
        "timezone",
        "primaryBrandColor",
        "logoUrl",
        "description",
        "whiteLabelEnabled",
        "planTier",
        "subscriptionStatus",
        "trialEndsAt",
        "payoutGraceDays",
        "payoutGraceDaysMax",
        // Rekomi's addition (docs/payouts.md): the minimum payout the profile's PATCH sets.
        "minimumPayoutCents",
    ]
    .into();
    assert_eq!(fields, documented, "{me}");
    assert_eq!(me["id"], json!(org_id));
    assert!(me["slug"].as_str().is_some_and(|s| s.starts_with("org-")), "the slug is the handle: {me}");
    assert_eq!((me["planTier"].clone(), me["subscriptionStatus"].clone()), (json!("Growth"), json!("Active")));
    assert_eq!((me["trialEndsAt"].clone(), me["whiteLabelEnabled"].clone()), (Value::Null, json!(false)));
    assert_eq!((me["payoutGraceDays"].clone(), me["payoutGraceDaysMax"].clone()), (json!(30), json!(30)));

    let program_id = id_of(&app.create_program(&key, "Default program").await);
    app.create_affiliate(&key, &program_id, "a@creator.com", "Approved").await;
    app.create_affiliate(&key, &program_id, "b@creator.com", "Pending").await;
    let billing = app.get("/api/billing/state", &key).await.expect(200).clone();
    assert_eq!((billing["planTier"].clone(), billing["subscriptionStatus"].clone()), (json!("Growth"), json!("Active")));
    assert_eq!(billing["trialEndsAt"], Value::Null);
    assert_eq!(billing["stripeConnectLinked"], false);
    assert!(billing["stripeCustomerLinked"].is_boolean(), "{billing}");
    assert!(billing.as_object().unwrap().contains_key("interval") && billing.as_object().unwrap().contains_key("stripeSubscriptionId"));
    assert_eq!(billing["limits"]["affiliates"], json!({"current": 2, "max": null}), "{billing}");
    assert_eq!(billing["limits"]["campaigns"], json!({"current": 1, "max": null}), "{billing}");

    let (_, trial_key) = app.org(PlanTier::Trial).await;
    let trial = app.get("/api/organizations/me", &trial_key).await.expect(200).clone();
    assert_eq!((trial["planTier"].clone(), trial["subscriptionStatus"].clone()), (json!("Trial"), json!("Trialing")));
    assert!(trial["trialEndsAt"].as_str().is_some_and(|t| t.ends_with('Z')), "{trial}");
}

// ---- affiliate tokens, token lifetimes, failed authentications ------------------------------

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A Growth brand with an Approved affiliate (sarah@creator.com) and a coupon that lets
/// affiliates mint their own codes. Returns (org id, API key, coupon id).
async fn self_mint_brand(app: &TestApp) -> (String, String, String) {
    let (org_id, key) = app.org(PlanTier::Growth).await;
    let program = app.post("/api/v1/programs", &key, &program_body()).await.expect(201).clone();
    app.create_affiliate(&key, &id_of(&program), "sarah@creator.com", "Approved").await;
    let coupon = app.create_campaign_coupon(&key, &id_of(&program), json!({"allowAffiliateSelfMint": true})).await;
    (org_id, key, id_of(&coupon))
}

#[tokio::test]
async fn a_dashboard_token_carrying_an_affiliates_email_cannot_act_as_that_affiliate() {
    // The probe's repro: a dashboard token with an `email` claim minted a code as the affiliate
    // with that email and linked the affiliate's row to the dashboard user.
    let Some(app) = TestApp::spawn().await else { return };
    let (org_id, _key, coupon) = self_mint_brand(&app).await;
    let mint = "/api/me/coupons/mint";
    let body = |code: &str| json!({"campaignCouponId": coupon, "code": code});
    let hour = in_an_hour();
    for (case, claims) in [
        (
            "a dashboard token with an email",
            json!({"sub": "user-owner", "org_id": org_id, "role": "Owner", "email": "sarah@creator.com", "exp": hour}),
        ),
        ("no audience at all", json!({"sub": "user_sarah", "email": "sarah@creator.com", "exp": hour})),
        ("another audience", json!({"aud": "dashboard", "sub": "user_sarah", "email": "sarah@creator.com", "exp": hour})),
        (
            "the affiliate audience on a dashboard token",
            json!({"aud": "affiliate", "sub": "user-owner", "org_id": org_id, "role": "Owner", "email": "sarah@creator.com", "exp": hour}),
        ),
        (
            "the affiliate audience with a role",
            json!({"aud": "affiliate", "sub": "user_sarah", "role": "Owner", "email": "sarah@creator.com", "exp": hour}),
        ),
    ] {
        app.post(mint, &app.jwt(&claims), &body("HIJACK")).await.expect_error(401, "invalid_token");
        assert_eq!(app.count_rows("affiliate_coupons").await, 0, "{case}: no code was minted");
        let linked = app.single_text("SELECT coalesce(max(user_id), 'none') AS digest FROM affiliates".to_owned()).await;
        assert_eq!(linked, "none", "{case}: the affiliate's row is not linked to anyone");
    }
    // The affiliate herself still gets in, and her row is linked to her.
    app.post(mint, &app.jwt_affiliate("user_sarah", "sarah@creator.com"), &body("SARAH-OWN")).await.expect(201);
    let linked = app.single_text("SELECT coalesce(max(user_id), 'none') AS digest FROM affiliates".to_owned()).await;
    assert_eq!(linked, "user_sarah");
}

#[tokio::test]
async fn tokens_not_yet_valid_issued_in_the_future_or_living_too_long_are_refused() {
    let Some(app) = TestApp::spawn().await else { return };
    let (org_id, _key, coupon) = self_mint_brand(&app).await;
    let (t, hour, day) = (now(), 3600, 86_400);
    let dashboard = |extra: Value| {
        let mut claims = json!({"sub": "user-owner", "org_id": org_id, "role": "Owner"});
        claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        app.jwt(&claims)
    };
    let affiliate = |extra: Value| {
        let mut claims = json!({"aud": "affiliate", "sub": "user_sarah", "email": "sarah@creator.com"});
        claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        app.jwt(&claims)
    };
    let refused = [
        ("not valid before five minutes from now", json!({"nbf": t + 300, "exp": t + hour})),
        ("issued five minutes from now", json!({"iat": t + 300, "exp": t + hour})),
        ("living 25 hours", json!({"iat": t, "exp": t + 25 * hour})),
        ("expiring in 25 hours without iat", json!({"exp": t + 25 * hour})),
        ("issued two days ago, expiring in an hour", json!({"iat": t - 2 * day, "exp": t + hour})),
    ];
    let accepted = [
        ("living 23 hours", json!({"iat": t, "exp": t + 23 * hour})),
        ("valid since ten seconds ago", json!({"nbf": t - 10, "iat": t - 10, "exp": t + hour})),
        ("issued within the clock-skew leeway", json!({"iat": t + 10, "exp": t + hour})),
    ];
    for (case, extra) in &refused {
        let answer = app.get("/api/v1/programs", &dashboard(extra.clone())).await;
        assert_eq!((answer.status, answer.error_code()), (401, Some("invalid_token")), "dashboard, {case}: {}", answer.text);
        let answer =
            app.post("/api/me/coupons/mint", &affiliate(extra.clone()), &json!({"campaignCouponId": coupon, "code": "NOPE"})).await;
        assert_eq!((answer.status, answer.error_code()), (401, Some("invalid_token")), "affiliate, {case}: {}", answer.text);
    }
    for (n, (case, extra)) in accepted.iter().enumerate() {
        let answer = app.get("/api/v1/programs", &dashboard(extra.clone())).await;
        assert_eq!(answer.status, 200, "dashboard, {case}: {}", answer.text);
        let code = format!("SARAH-{n}");
        let answer = app.post("/api/me/coupons/mint", &affiliate(extra.clone()), &json!({"campaignCouponId": coupon, "code": code})).await;
        assert_eq!(answer.status, 201, "affiliate, {case}: {}", answer.text);
    }

    // REKOMI_JWT_MAX_TTL lowers the cap.
    let Some(strict) = TestApp::spawn_with(|config| config.jwt_max_ttl_secs = hour).await else { return };
    let (org_id, _) = strict.org(PlanTier::Growth).await;
    let token = |exp: i64| strict.jwt(&json!({"sub": "u1", "org_id": org_id, "role": "Owner", "iat": t, "exp": exp}));
    strict.get("/api/v1/programs", &token(t + 2 * hour)).await.expect_error(401, "invalid_token");
    strict.get("/api/v1/programs", &token(t + hour)).await.expect(200);
}

#[tokio::test]
async fn failed_authentications_are_limited_per_client_address_before_credentials_are_looked_up() {
    let Some(app) = TestApp::spawn_with(|config| config.client_ip_header = Some("X-Forwarded-For".to_owned())).await else { return };
    let (_, key) = app.org(PlanTier::Growth).await;
    let from = |address: &str, token: &str| {
        app.request(Method::GET, "/api/v1/programs").header("x-forwarded-for", address).header("authorization", format!("Bearer {token}"))
    };
    let unknown = "rk_live_0000000000000000000000000000000000000000";
    for n in 0..30 {
        // A client may put anything first: the proxy's own (last) value is the one counted.
        let address = if n % 2 == 0 { "203.0.113.7".to_owned() } else { format!("10.0.0.{n}, 203.0.113.7") };
        app.send(from(&address, unknown)).await.expect_error(401, "invalid_api_key");
    }
    let limited = app.send(from("203.0.113.7", unknown)).await;
    limited.expect_error(429, "rate_limited");
    let retry_after: u64 = limited.header("retry-after").and_then(|v| v.parse().ok()).expect("Retry-After");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert!(limited.body["message"].as_str().unwrap().contains("failed authentications"), "{}", limited.text);
    // Past the budget, the address is refused before its credentials are looked at…
    app.send(from("203.0.113.7", &key)).await.expect_error(429, "rate_limited");
    app.send(from("203.0.113.7", "not-a-token")).await.expect_error(429, "rate_limited");
    // …while other addresses are not affected, and successes cost nothing.
    app.send(from("203.0.113.8", unknown)).await.expect_error(401, "invalid_api_key");
    for _ in 0..40 {
        app.send(from("203.0.113.9", &key)).await.expect(200);
    }
    // The budget refills (30 a minute): the address gets in again.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let answer = app.send(from("203.0.113.7", &key)).await;
        if answer.status == 200 {
            break;
        }
        answer.expect_error(429, "rate_limited");
        assert!(tokio::time::Instant::now() < deadline, "the address stayed locked out");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}
