//! Server-to-server conversions end to end, over real HTTP against PostgreSQL: the signing
//! secret issued and rotated (`POST /api/v1/settings/tracking-secret`, the old one verifying for
//! 24 hours), `POST /api/tracking/s2s` recording a conversion at the program's commission (read
//! back through `GET /api/v1/conversions`, announced as `conversion.created`), deduplication of
//! a repeated `externalEventId` (also under 20 concurrent retries), every signature vector, the
//! plan gate, authentication, tenant isolation, and bad input that writes nothing.
//!
//! Requests are signed by [`sign`], an HMAC-SHA256 written here from SHA-256 alone, so the
//! server is checked against the documented construction rather than against its own code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rekomi_domain::kernel::plan::PlanTier;
use rekomi_domain::orgs::ApiKeyScope;
use rekomi_e2e::app::{id_of, Response, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const S2S: &str = "/api/tracking/s2s";
const SECRET_PATH: &str = "/api/v1/settings/tracking-secret";

/// `hex(HMAC-SHA256(key, message))` (RFC 2104), from SHA-256 alone.
fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    hex::encode(Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize())
}

/// The `X-Rekomi-Signature` of `body` at `t` with `secret`.
fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut message = t.to_string().into_bytes();
    message.push(b'.');
    message.extend_from_slice(body);
    format!("t={t},sig={}", hmac_hex(secret.as_bytes(), &message))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A brand: its organization, key, signing secret, a 20 % program and an Approved affiliate
/// with the link slug `jane-recommends`.
struct Brand {
    org_id: String,
    key: String,
    secret: String,
    affiliate_id: String,
    program_id: String,
}

async fn new_brand(app: &TestApp, plan: PlanTier) -> Brand {
    let (org_id, key) = app.org(plan).await;
    let program_id = id_of(&app.create_program(&key, "Partners").await);
    let body = json!({ "programId": program_id, "email": "jane@creator.test", "fullName": "Jane Doe", "status": "Approved", "customAlias": "jane-recommends" });
    let affiliate_id = id_of(app.post("/api/v1/affiliates", &key, &body).await.expect(201));
    let issued = app.post_empty(SECRET_PATH, &key).await;
    let secret = issued.expect(201)["secret"].as_str().unwrap().to_owned();
    Brand { org_id, key, secret, affiliate_id, program_id }
}

fn sale(event: &str) -> Value {
    json!({ "externalEventId": event, "affiliateSlug": "jane-recommends", "amountCents": 9900, "currency": "usd", "customerId": "cus_external_xyz" })
}

/// Sends `body` as it is, with the API key in `X-Rekomi-Api-Key` and `signature` if any.
async fn post_raw(app: &TestApp, key: &str, signature: Option<&str>, body: &[u8]) -> Response {
    let mut request =
        app.request(Method::POST, S2S).header("x-rekomi-api-key", key).header("content-type", "application/json").body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("x-rekomi-signature", signature);
    }
    app.send(request).await
}

/// Sends `body` signed now with the brand's secret.
async fn post_signed(app: &TestApp, brand: &Brand, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap();
    post_raw(app, &brand.key, Some(&sign(&brand.secret, now(), &bytes)), &bytes).await
}

async fn count(app: &TestApp, sql: String) -> i64 {
    app.single_text(format!("SELECT ({sql})::text AS digest")).await.parse().unwrap()
}

/// Digests of every table a conversion touches, besides the harness's write tables.
async fn everything(app: &TestApp) -> Vec<String> {
    let mut all: Vec<String> = app.fingerprints().await.into_iter().map(|(t, d)| format!("{t}:{d}")).collect();
    for table in ["conversions", "ledger_events", "processed_sources", "outbox_events", "webhook_deliveries", "tracking_secrets"] {
        all.push(format!("{table}:{}", app.fingerprint(table).await));
    }
    all
}

#[tokio::test]
async fn a_signed_sale_is_recorded_at_the_program_rate_announced_and_read_back() {
    let Some(app) = TestApp::spawn().await else { return };
    let brand = new_brand(&app, PlanTier::Growth).await;
    let answer = post_signed(&app, &brand, &sale("purchase_abc123")).await;
    let body = answer.expect(200);
    assert_eq!(body["ok"], true, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    let conversion_id = body["conversionId"].as_str().unwrap().to_owned();

    let listed = app.get(&format!("/api/v1/conversions?affiliateId={}", brand.affiliate_id), &brand.key).await;
    let items = listed.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{items:?}");
    let c = &items[0];
    assert_eq!(c["id"], conversion_id.as_str());
    assert_eq!((c["amountCents"].as_i64(), c["commissionCents"].as_i64()), (Some(9900), Some(1980)), "20 % of 99.00: {c}");
    assert_eq!((c["currency"].as_str(), c["status"].as_str(), c["type"].as_str()), (Some("USD"), Some("Pending"), Some("OneTime")));
    assert_eq!(c["externalEventId"], "purchase_abc123");
    assert_eq!(c["attributionMethod"], Value::Null, "S2S sales carry no attribution method");
    assert_eq!((c["programId"].as_str(), c["couponCode"].clone()), (Some(brand.program_id.as_str()), Value::Null));

    let org = &brand.org_id;
    assert_eq!(
        count(&app, format!("SELECT count(*) FROM outbox_events WHERE org_id = '{org}' AND event_type = 'conversion.created'")).await,
        1
    );
    assert_eq!(
        count(&app, format!("SELECT count(*) FROM ledger_events WHERE conversion_id = '{conversion_id}' AND commission_minor = 1980"))
            .await,
        1
    );
    assert_eq!(
        count(
            &app,
            format!("SELECT count(*) FROM audit_log WHERE org_id = '{org}' AND action = 'conversion.created' AND actor_type = 'api_key'")
        )
        .await,
        1,
        "audited as the API key that reported it"
    );
    let trace =
        app.single_text(format!("SELECT attribution_trace->>'customerId' AS digest FROM conversions WHERE id = '{conversion_id}'")).await;
    assert_eq!(trace, "cus_external_xyz");

    // Bearer works in place of X-Rekomi-Api-Key.
    let bytes = serde_json::to_vec(&sale("purchase_def456")).unwrap();
    let request = app
        .request(Method::POST, S2S)
        .bearer_auth(&brand.key)
        .header("content-type", "application/json")
        .header("x-rekomi-signature", sign(&brand.secret, now(), &bytes))
        .body(bytes);
    assert!(app.send(request).await.expect(200)["conversionId"].is_string());
}

#[tokio::test]
async fn a_repeated_external_event_id_is_deduplicated_and_writes_nothing() {
    let Some(app) = TestApp::spawn().await else { return };
    let brand = new_brand(&app, PlanTier::Starter).await;
    post_signed(&app, &brand, &sale("order-1")).await.expect(200);
    let before = everything(&app).await;
    let mut again = sale("order-1");
    again["amountCents"] = json!(5000);
    let answer = post_signed(&app, &brand, &again).await;
    assert_eq!(answer.expect(200), &json!({ "ok": true, "deduped": true }));
    assert_eq!(everything(&app).await, before, "a duplicate writes nothing");

    // Another organization's identical event id (and affiliate slug) is its own sale.
    let other = new_brand(&app, PlanTier::Growth).await;
    assert!(post_signed(&app, &other, &sale("order-1")).await.expect(200)["conversionId"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_retries_record_exactly_one_conversion() {
    let Some(app) = TestApp::spawn().await else { return };
    let brand = new_brand(&app, PlanTier::Growth).await;
    let bytes = serde_json::to_vec(&sale("retry-storm")).unwrap();
    let signature = sign(&brand.secret, now(), &bytes);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let request = app
            .request(Method::POST, S2S)
            .header("x-rekomi-api-key", &brand.key)
            .header("content-type", "application/json")
            .header("x-rekomi-signature", &signature)
            .body(bytes.clone());
        tasks.spawn(async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        });
    }
    let answers = tasks.join_all().await;
    let mut fresh = 0;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        if body["conversionId"].is_string() {
            fresh += 1;
        } else {
            assert_eq!(body, &json!({ "ok": true, "deduped": true }));
        }
    }
    assert_eq!(fresh, 1, "exactly one request records the sale");
    let org = &brand.org_id;
    assert_eq!(count(&app, format!("SELECT count(*) FROM conversions WHERE org_id = '{org}'")).await, 1);
    assert_eq!(count(&app, format!("SELECT count(*) FROM ledger_events WHERE org_id = '{org}'")).await, 1);
    assert_eq!(
        count(&app, format!("SELECT count(*) FROM outbox_events WHERE org_id = '{org}' AND event_type = 'conversion.created'")).await,
        1
    );
}

#[tokio::test]
async fn every_signature_vector_is_judged_as_documented() {
    let Some(app) = TestApp::spawn().await else { return };
    let brand = new_brand(&app, PlanTier::Growth).await;
    let body = serde_json::to_vec(&sale("sig-1")).unwrap();
    let reserialized = serde_json::to_vec_pretty(&sale("sig-1")).unwrap();
    let t = now();
    let good = sign(&brand.secret, t, &body);
    let wrong_secret = sign("rks_0000000000000000000000000000000000000000", t, &body);
    let before = everything(&app).await;
    // (case, signature, body, status, code)
    let refused: Vec<(&str, Option<String>, &[u8], &str)> = vec![
        ("missing", None, &body, "signature_missing"),
        ("empty", Some(String::new()), &body, "signature_malformed"),
        ("webhook scheme", Some(good.replace("sig=", "v1=")), &body, "signature_malformed"),
        ("no timestamp", Some(good.split(',').nth(1).unwrap().to_owned()), &body, "signature_malformed"),
        ("truncated sig", Some(good[..good.len() - 1].to_owned()), &body, "signature_malformed"),
        ("wrong secret", Some(wrong_secret), &body, "signature_mismatch"),
        ("re-serialized body", Some(good.clone()), &reserialized, "signature_mismatch"),
        ("another timestamp", Some(good.replace(&format!("t={t}"), &format!("t={}", t - 1))), &body, "signature_mismatch"),
        ("stale", Some(sign(&brand.secret, t - 400, &body)), &body, "signature_expired"),
        ("future", Some(sign(&brand.secret, t + 400, &body)), &body, "signature_expired"),
    ];
    for (case, signature, bytes, code) in refused {
        let answer = post_raw(&app, &brand.key, signature.as_deref(), bytes).await;
        assert_eq!((answer.status, answer.error_code()), (401, Some(code)), "{case}: {}", answer.text);
        assert!(answer.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{case}: the envelope");
    }
    assert_eq!(everything(&app).await, before, "refused signatures write nothing");
    let answer = post_raw(&app, &brand.key, Some(&sign(&brand.secret, t - 250, &body)), &body).await;
    assert!(answer.expect(200)["conversionId"].is_string(), "inside the tolerance");

    // Rotation: the previous secret keeps verifying inside its 24 h overlap, then stops.
    let rotated = app.post_empty(SECRET_PATH, &brand.key).await;
    let rotated = rotated.expect(201);
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, brand.secret);
    assert_eq!(rotated["previousPrefix"].as_str(), Some(&brand.secret[..8]));
    assert!(rotated["previousExpiresAt"].is_string(), "{rotated}");
    let old_body = serde_json::to_vec(&sale("sig-old")).unwrap();
    let answer = post_raw(&app, &brand.key, Some(&sign(&brand.secret, now(), &old_body)), &old_body).await;
    assert!(answer.expect(200)["conversionId"].is_string(), "the old secret inside the overlap");
    let new_body = serde_json::to_vec(&sale("sig-new")).unwrap();
    let answer = post_raw(&app, &brand.key, Some(&sign(&new_secret, now(), &new_body)), &new_body).await;
    assert!(answer.expect(200)["conversionId"].is_string(), "the new secret");
    let org = &brand.org_id;
    app.execute_sql(&format!(
        "UPDATE tracking_secrets SET expires_at = now() - interval '1 second' WHERE org_id = '{org}' AND expires_at IS NOT NULL"
    ))
    .await;
    // The server trusts the secrets it read for SECRET_CACHE_TTL (each carries its own expiry,
    // which only a rotation sets); this test moved the expiry behind its back, so it waits.
    tokio::time::sleep(rekomi_domain::tracking::cache::SECRET_CACHE_TTL.unsigned_abs()).await;
    let late_body = serde_json::to_vec(&sale("sig-late")).unwrap();
    let answer = post_raw(&app, &brand.key, Some(&sign(&brand.secret, now(), &late_body)), &late_body).await;
    answer.expect_error(401, "signature_mismatch");
    assert_eq!(
        count(&app, format!("SELECT count(*) FROM audit_log WHERE org_id = '{org}' AND action = 'tracking_secret.rotated'")).await,
        1
    );
    assert_eq!(
        count(&app, format!("SELECT count(*) FROM audit_log WHERE org_id = '{org}' AND action = 'tracking_secret.created'")).await,
        1
    );
    let stored = app
        .single_text(format!(
            "SELECT string_agg(after::text, '|') AS digest FROM audit_log WHERE org_id = '{org}' AND action LIKE 'tracking_secret.%'"
        ))
        .await;
    assert!(!stored.contains(&new_secret) && !stored.contains(&brand.secret), "the audit log holds prefixes only: {stored}");

    // An organization without a secret cannot be verified.
    let (_, bare_key) = app.org(PlanTier::Growth).await;
    let answer = post_raw(&app, &bare_key, Some(&good), &body).await;
    answer.expect_error(401, "tracking_secret_not_set");
}

#[tokio::test]
async fn the_plan_gate_takes_starter_and_trials_and_refuses_no_subscription() {
    let Some(app) = TestApp::spawn().await else { return };
    let trial = new_brand(&app, PlanTier::Trial).await;
    assert!(post_signed(&app, &trial, &sale("trial-1")).await.expect(200)["conversionId"].is_string(), "trialing passes");
    let lapsed = new_brand(&app, PlanTier::Growth).await;
    app.execute_sql(&format!("UPDATE organizations SET subscription_status = 'None' WHERE id = '{}'", lapsed.org_id)).await;
    let before = everything(&app).await;
    let answer = post_signed(&app, &lapsed, &sale("lapsed-1")).await;
    let body = answer.expect_error(402, "plan_tier_required");
    assert_eq!(
        (body["required"].as_str(), body["current"].as_str(), body["trialing"].as_bool()),
        (Some("Starter"), Some("Growth"), Some(false))
    );
    app.post_empty(SECRET_PATH, &lapsed.key).await.expect_error(402, "plan_tier_required");
    assert_eq!(everything(&app).await, before, "nothing is written for a lapsed organization");
}

#[tokio::test]
async fn keys_are_required_tokens_refused_and_other_organizations_affiliates_unknown() {
    let Some(app) = TestApp::spawn().await else { return };
    let brand = new_brand(&app, PlanTier::Growth).await;
    let body = serde_json::to_vec(&sale("auth-1")).unwrap();
    let signature = sign(&brand.secret, now(), &body);
    // Another organization (with its own `jane-recommends`) and one without affiliates.
    let other = new_brand(&app, PlanTier::Growth).await;
    let (stranger_org, stranger_key) = app.org(PlanTier::Growth).await;
    let stranger_secret = app.post_empty(SECRET_PATH, &stranger_key).await.expect(201)["secret"].as_str().unwrap().to_owned();
    let stranger =
        Brand { org_id: stranger_org, key: stranger_key, secret: stranger_secret, affiliate_id: String::new(), program_id: String::new() };
    let read_key = app.api_key(&brand.org_id, ApiKeyScope::Read).await;
    let before = everything(&app).await;
    let anonymous = app
        .request(Method::POST, S2S)
        .header("content-type", "application/json")
        .header("x-rekomi-signature", &signature)
        .body(body.clone());
    app.send(anonymous).await.expect_error(401, "unauthorized");
    post_raw(&app, "rk_live_unknownunknownunknownunknownunknown0000", Some(&signature), &body).await.expect_error(401, "invalid_api_key");
    let jwt = app.jwt_dashboard(&brand.org_id, "Owner");
    post_raw(&app, &jwt, Some(&signature), &body).await.expect_error(401, "invalid_api_key");
    post_raw(&app, &read_key, Some(&signature), &body).await.expect_error(403, "insufficient_scope");
    // A key reaches its own organization's affiliates only: a slug none of them has is
    // unknown, and so is `jane-recommends` (two other organizations' slug) for an organization
    // without affiliates.
    let mut unknown = sale("auth-2");
    unknown["affiliateSlug"] = json!("nobody-here");
    post_signed(&app, &other, &unknown).await.expect_error(404, "affiliate_not_found");
    post_signed(&app, &stranger, &sale("auth-3")).await.expect_error(404, "affiliate_not_found");
    assert_eq!(everything(&app).await, before, "no conversion, ledger entry, claim or event was written");

    // A JWT may issue the secret only as an Owner.
    let manager = app.jwt_dashboard(&brand.org_id, "Manager");
    app.post_empty(SECRET_PATH, &manager).await.expect_error(403, "insufficient_role");
    assert_eq!(app.post_empty(SECRET_PATH, &jwt).await.expect(201)["secret"].as_str().map(|s| s.starts_with("rks_")), Some(true));
}

#[tokio::test]
async fn bad_input_is_a_400_envelope_and_writes_nothing() {
    let Some(app) = TestApp::spawn().await else { return };
    let brand = new_brand(&app, PlanTier::Growth).await;
    let before = everything(&app).await;
    let long = "x".repeat(256);
    // (case, body, status, code, field)
    type Case = (&'static str, Vec<u8>, u16, &'static str, Option<&'static str>);
    let table: Vec<Case> = vec![
        ("not JSON", b"{\"externalEventId\":".to_vec(), 400, "invalid_json", None),
        ("empty", Vec::new(), 400, "invalid_json", None),
        ("an array", b"[]".to_vec(), 400, "validation_failed", None),
        ("missing externalEventId", body_without("externalEventId"), 400, "validation_failed", Some("externalEventId")),
        ("missing affiliateSlug", body_without("affiliateSlug"), 400, "validation_failed", Some("affiliateSlug")),
        ("unknown field", body_with("bogus", json!(1)), 400, "validation_failed", Some("bogus")),
        ("empty externalEventId", body_with("externalEventId", json!("")), 400, "validation_failed", Some("externalEventId")),
        ("long externalEventId", body_with("externalEventId", json!(long)), 400, "validation_failed", Some("externalEventId")),
        ("numeric externalEventId", body_with("externalEventId", json!(12)), 400, "validation_failed", Some("externalEventId")),
        ("fractional amount", body_with("amountCents", json!(99.5)), 400, "validation_failed", Some("amountCents")),
        ("string amount", body_with("amountCents", json!("9900")), 400, "validation_failed", Some("amountCents")),
        ("zero amount", body_with("amountCents", json!(0)), 400, "validation_failed", Some("amountCents")),
        ("negative amount", body_with("amountCents", json!(-1)), 400, "validation_failed", Some("amountCents")),
        ("huge amount", body_with("amountCents", json!(1_000_000_000_000_i64)), 400, "validation_failed", Some("amountCents")),
        (
            "overflowing amount",
            br#"{"externalEventId":"e","affiliateSlug":"jane-recommends","amountCents":99999999999999999999,"currency":"USD"}"#.to_vec(),
            400,
            "validation_failed",
            Some("amountCents"),
        ),
        ("unknown currency", body_with("currency", json!("XYZ")), 400, "unsupported_currency", Some("currency")),
        ("null currency", body_with("currency", Value::Null), 400, "validation_failed", Some("currency")),
        ("empty customerId", body_with("customerId", json!("")), 400, "validation_failed", Some("customerId")),
        ("oversized", vec![b' '; 70 * 1024], 413, "payload_too_large", None),
    ];
    for (case, body, status, code, field) in table {
        let answer = post_raw(&app, &brand.key, Some(&sign(&brand.secret, now(), &body)), &body).await;
        assert_eq!((answer.status, answer.error_code()), (status, Some(code)), "{case}: {}", answer.text);
        if let Some(field) = field {
            assert_eq!(answer.field(), Some(field), "{case}: {}", answer.text);
        }
    }
    let body = serde_json::to_vec(&sale("ct")).unwrap();
    let request = app
        .request(Method::POST, S2S)
        .header("x-rekomi-api-key", &brand.key)
        .header("content-type", "text/plain")
        .header("x-rekomi-signature", sign(&brand.secret, now(), &body))
        .body(body);
    app.send(request).await.expect_error(415, "unsupported_media_type");
    assert_eq!(everything(&app).await, before, "bad input writes nothing");
}

fn body_with(field: &str, value: Value) -> Vec<u8> {
    let mut body = sale("bad-1");
    body[field] = value;
    serde_json::to_vec(&body).unwrap()
}

fn body_without(field: &str) -> Vec<u8> {
    let mut body = sale("bad-1");
    body.as_object_mut().unwrap().remove(field);
    serde_json::to_vec(&body).unwrap()
}

// ---- server leads: POST /api/tracking/lead -------------------------------------------------

const LEAD: &str = "/api/tracking/lead";

async fn post_lead(app: &TestApp, brand: &Brand, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap();
    let request = app
        .request(Method::POST, LEAD)
        .header("x-rekomi-api-key", &brand.key)
        .header("content-type", "application/json")
        .header("x-rekomi-signature", sign(&brand.secret, now(), &bytes))
        .body(bytes);
    app.send(request).await
}

#[tokio::test]
async fn a_signed_server_lead_is_recorded_once_and_refused_like_a_sale() {
    let Some(app) = TestApp::spawn().await else { return };
    let brand = new_brand(&app, PlanTier::Growth).await;
    let body =
        json!({ "affiliateSlug": "Jane-Recommends", "email": "User@Example.com", "name": "Jane Doe", "externalEventId": "signup_abc123" });
    let answer = post_lead(&app, &brand, &body).await;
    let lead_id = answer.expect(200)["leadId"].as_str().unwrap().to_owned();
    let lead = app.get(&format!("/api/v1/conversions/{lead_id}"), &brand.key).await.expect(200).clone();
    assert_eq!((lead["type"].as_str(), lead["affiliateId"].as_str()), (Some("LeadReward"), Some(brand.affiliate_id.as_str())), "{lead}");
    assert_eq!((lead["amountCents"].as_i64(), lead["commissionCents"].as_i64()), (Some(0), Some(0)), "a Cps program pays nothing per lead");
    assert_eq!(lead["externalEventId"], "signup_abc123");
    let org = &brand.org_id;
    assert_eq!(count(&app, format!("SELECT count(*) FROM outbox_events WHERE org_id = '{org}' AND event_type = 'lead.created'")).await, 1);

    // The same signup again, and the same email for the same affiliate without an id, are one lead.
    let before = everything(&app).await;
    assert_eq!(post_lead(&app, &brand, &body).await.expect(200)["deduped"], true);
    assert_eq!(everything(&app).await, before, "a repeat writes nothing");
    let no_id = json!({ "affiliateSlug": "jane-recommends", "email": "other@example.com" });
    post_lead(&app, &brand, &no_id).await.expect(200);
    assert_eq!(post_lead(&app, &brand, &no_id).await.expect(200)["deduped"], true);

    // Refusals: an unknown slug, bad fields, a bad signature, no key.
    let before = everything(&app).await;
    post_lead(&app, &brand, &json!({ "affiliateSlug": "nobody", "email": "a@b.co" })).await.expect_error(404, "affiliate_not_found");
    for (bad, field) in [
        (json!({ "affiliateSlug": "jane-recommends", "email": "not-an-email" }), "email"),
        (json!({ "affiliateSlug": "jane-recommends" }), "email"),
        (json!({ "affiliateSlug": "", "email": "a@b.co" }), "affiliateSlug"),
        (json!({ "affiliateSlug": "jane-recommends", "email": "a@b.co", "externalEventId": "" }), "externalEventId"),
        (json!({ "affiliateSlug": "jane-recommends", "email": "a@b.co", "extra": true }), "extra"),
    ] {
        post_lead(&app, &brand, &bad).await.expect_field_error(400, "validation_failed", field);
    }
    let bytes = serde_json::to_vec(&no_id).unwrap();
    let forged = app
        .request(Method::POST, LEAD)
        .header("x-rekomi-api-key", &brand.key)
        .header("content-type", "application/json")
        .header("x-rekomi-signature", sign("rks_0000000000000000000000000000000000000000", now(), &bytes))
        .body(bytes.clone());
    app.send(forged).await.expect_error(401, "signature_mismatch");
    app.send(app.request(Method::POST, LEAD).header("content-type", "application/json").body(bytes))
        .await
        .expect_error(401, "unauthorized");
    assert_eq!(everything(&app).await, before, "refused leads write nothing");
}

#[tokio::test]
async fn server_to_server_requests_have_their_own_per_key_limit() {
    let Some(app) = TestApp::spawn_with(|config| config.s2s_limit_per_minute = 2).await else { return };
    let brand = new_brand(&app, PlanTier::Growth).await;
    post_signed(&app, &brand, &sale("limit_1")).await.expect(200);
    post_signed(&app, &brand, &sale("limit_2")).await.expect(200);
    let limited = post_signed(&app, &brand, &sale("limit_3")).await;
    limited.expect_error(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
    // The rest of the API keeps its own budget.
    app.get("/api/v1/conversions", &brand.key).await.expect(200);
}
