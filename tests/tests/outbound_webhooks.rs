//! Outbound webhooks end to end: the real server (with its delivery worker) over PostgreSQL
//! delivers an `affiliate.created` event to a local receiver on 127.0.0.1, signed as
//! docs/webhooks.md tells receivers to check; a 500 is recorded and retried (by the worker's
//! schedule, and by redelivery through the API); private targets are refused in strict mode.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rekomi_domain::kernel::plan::PlanTier;
use rekomi_e2e::app::{id_of, TestApp};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---- a local receiver -----------------------------------------------------------------

#[derive(Clone, Debug)]
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {name}"))
    }
}

/// Answers each request with the next status of its script (the last one repeats).
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(statuses: &[u16]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}/hooks/rekomi", listener.local_addr().unwrap().port());
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(statuses.iter().copied().collect::<VecDeque<u16>>()));
        let log = Arc::clone(&received);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (log, script) = (Arc::clone(&log), Arc::clone(&script));
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut stream).await else { return };
                    let status = {
                        let mut script = script.lock().unwrap();
                        if script.len() > 1 {
                            script.pop_front()
                        } else {
                            script.front().copied()
                        }
                    }
                    .unwrap_or(200);
                    log.lock().unwrap().push(request);
                    let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    let _ = stream.write_all(answer.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Receiver { url, received }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let headers: Vec<(String, String)> =
        head.split("\r\n").skip(1).filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect();
    let len: usize = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Received { headers, body: String::from_utf8_lossy(&body).to_string() })
}

// ---- the receiver's side of the signature (docs/webhooks.md), written independently ------

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&ipad).chain_update(message).finalize();
    Sha256::new().chain_update(&opad).chain_update(inner).finalize().to_vec()
}

/// Checks `X-Rekomi-Signature` as a receiver would: split, recompute over `"{t}.{body}"`,
/// compare, and refuse a timestamp older than five minutes.
fn verify(header: &str, body: &str, secret: &str) -> Result<i64, String> {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1.push(v.to_owned()),
            _ => {}
        }
    }
    let t = t.ok_or("no timestamp")?;
    let expected = hex::encode(hmac_sha256(secret.as_bytes(), format!("{t}.{body}").as_bytes()));
    if !v1.contains(&expected) {
        return Err(format!("no v1 matches {expected}"));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if now - t > 300 {
        return Err("stale".into());
    }
    Ok(t)
}

// ---- helpers ----------------------------------------------------------------------------

async fn deliveries(app: &TestApp, key: &str, endpoint: &str) -> Vec<Value> {
    let list = app.get(&format!("/api/v1/webhook-endpoints/{endpoint}/deliveries"), key).await;
    list.expect(200)["items"].as_array().unwrap().clone()
}

/// Polls the delivery log until `done` holds for the only delivery.
async fn wait_for_delivery(app: &TestApp, key: &str, endpoint: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let items = deliveries(app, key, endpoint).await;
        if let [only] = items.as_slice() {
            if done(only) {
                return only.clone();
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "the delivery never reached the expected state: {items:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn spawn_allowing_private_targets() -> Option<TestApp> {
    TestApp::spawn_with(|config| {
        config.webhook_allow_private_targets = true;
        config.delivery_interval_ms = 50;
    })
    .await
}

/// Registers an `affiliate.*` endpoint at `url` and creates a Pending affiliate (one
/// `affiliate.created` event). Returns the endpoint and the affiliate.
async fn endpoint_and_affiliate(app: &TestApp, key: &str, url: &str) -> (Value, Value) {
    let created = app.post("/api/v1/webhook-endpoints", key, &json!({ "url": url, "events": ["affiliate.*"], "description": "e2e" })).await;
    let endpoint = created.expect(201).clone();
    let program = app.create_program(key, "Webhooks").await;
    let affiliate = app.create_affiliate(key, &id_of(&program), "sarah@creator.com", "Pending").await;
    (endpoint, affiliate)
}

// ---- tests ------------------------------------------------------------------------------

#[tokio::test]
async fn an_event_reaches_a_local_receiver_signed_and_a_500_is_recorded_then_redelivered() {
    let Some(app) = spawn_allowing_private_targets().await else { return };
    let receiver = Receiver::start(&[500, 200]).await;
    let (_, key) = app.org(PlanTier::Starter).await;
    let (endpoint, affiliate) = endpoint_and_affiliate(&app, &key, &receiver.url).await;
    let ep = id_of(&endpoint);
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{endpoint}");
    assert_eq!(endpoint["events"], json!(["affiliate.*"]));
    assert_eq!(endpoint["status"], "Enabled");

    // First attempt: the receiver answers 500, and the log says so.
    let first = receiver.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(first.len(), 1, "the worker never delivered");
    // (The claim counts the attempt; the outcome is recorded once the answer is in.)
    let failed = wait_for_delivery(&app, &key, &ep, Duration::from_secs(10), |d| d["lastStatus"] == 500).await;
    assert_eq!(failed["status"], "Pending");
    assert_eq!(failed["attempts"], 1);
    assert_eq!(failed["eventType"], "affiliate.created");
    assert!(failed["nextAttemptAt"].is_string());
    let delivery_id = failed["id"].as_str().unwrap().to_owned();
    assert_eq!(delivery_id.len(), 26);

    let request = &first[0];
    assert_eq!(request.header("x-rekomi-event"), "affiliate.created");
    assert_eq!(request.header("x-rekomi-delivery-id"), delivery_id);
    assert_eq!(request.header("content-type"), "application/json");
    assert!(request.header("user-agent").starts_with("Rekomi-Webhooks/"));
    verify(request.header("x-rekomi-signature"), &request.body, &secret).unwrap();
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["type"], "affiliate.created");
    assert_eq!(body["data"]["id"], affiliate["id"]);
    assert_eq!(body["data"]["email"], "sarah@creator.com");

    // Redelivery: the same delivery again, now answered 200.
    let redeliver = app.post_empty(&format!("/api/v1/webhook-endpoints/{ep}/deliveries/{delivery_id}/redeliver"), &key).await;
    let queued = redeliver.expect(202);
    assert_eq!((queued["id"].as_str(), queued["status"].as_str()), (Some(delivery_id.as_str()), Some("Pending")));
    let both = receiver.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(both.len(), 2, "the redelivery never arrived");
    let done = wait_for_delivery(&app, &key, &ep, Duration::from_secs(10), |d| d["status"] == "Succeeded").await;
    assert_eq!(done["lastStatus"], 200);
    assert!(done["deliveredAt"].is_string());
    assert!(done["nextAttemptAt"].is_null());

    let second = &both[1];
    assert_eq!(second.body, request.body, "every attempt sends the same bytes");
    assert_eq!(second.header("x-rekomi-delivery-id"), delivery_id, "receivers deduplicate on it");
    verify(second.header("x-rekomi-signature"), &second.body, &secret).unwrap();
    assert!(verify(second.header("x-rekomi-signature"), &second.body, "whsec_wrong").is_err());
    assert_eq!(receiver.received().len(), 2, "nothing else was sent");
}

#[tokio::test]
async fn the_worker_retries_a_500_on_its_own_after_the_first_delay() {
    let Some(app) = spawn_allowing_private_targets().await else { return };
    let receiver = Receiver::start(&[500, 200]).await;
    let (_, key) = app.org(PlanTier::Starter).await;
    let (endpoint, _) = endpoint_and_affiliate(&app, &key, &receiver.url).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();

    // The first retry is due 10 s (plus at most 20 % jitter) after the failure.
    let got = receiver.wait_for(2, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 2, "the worker did not retry after the 500");
    assert_eq!(got[0].header("x-rekomi-delivery-id"), got[1].header("x-rekomi-delivery-id"));
    assert_eq!(got[0].body, got[1].body);
    let t0 = verify(got[0].header("x-rekomi-signature"), &got[0].body, &secret).unwrap();
    let t1 = verify(got[1].header("x-rekomi-signature"), &got[1].body, &secret).unwrap();
    assert!((9..=14).contains(&(t1 - t0)), "retried after {} s", t1 - t0);
    let done = wait_for_delivery(&app, &key, &id_of(&endpoint), Duration::from_secs(10), |d| d["status"] == "Succeeded").await;
    assert_eq!((done["attempts"].as_i64(), done["lastStatus"].as_i64()), (Some(2), Some(200)));
}

#[tokio::test]
async fn strict_mode_refuses_private_targets_and_the_api_manages_endpoints() {
    let Some(app) = TestApp::spawn().await else { return };
    let (org, key) = app.org(PlanTier::Starter).await;

    // Private, loopback and link-local targets are refused, naming the reason.
    for url in
        ["http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://10.1.2.3/hook", "http://169.254.169.254/latest", "http://[::1]/"]
    {
        let refused = app.post("/api/v1/webhook-endpoints", &key, &json!({ "url": url })).await;
        let body = refused.expect_field_error(400, "validation_failed", "url");
        assert!(body["message"].as_str().unwrap().contains("refused"), "{url}: {body}");
    }
    assert_eq!(app.count_rows("webhook_endpoints").await, 0);

    // Validation.
    let bad = app.post("/api/v1/webhook-endpoints", &key, &json!({ "url": "ftp://93.184.216.34/" })).await;
    bad.expect_field_error(400, "validation_failed", "url");
    let bad = app.post("/api/v1/webhook-endpoints", &key, &json!({ "url": "https://93.184.216.34/", "events": ["payout.sent"] })).await;
    bad.expect_field_error(400, "validation_failed", "events");
    let bad = app.post("/api/v1/webhook-endpoints", &key, &json!({ "url": "https://93.184.216.34/", "secret": "mine" })).await;
    bad.expect_field_error(400, "validation_failed", "secret");

    // A public literal address is accepted (no DNS needed); the secret is shown once.
    let created = app
        .post(
            "/api/v1/webhook-endpoints",
            &key,
            &json!({ "url": "https://93.184.216.34/hook", "events": ["affiliate_coupon.*", "conversion.created"] }),
        )
        .await;
    let endpoint = created.expect(201).clone();
    let ep = id_of(&endpoint);
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let fetched = app.get(&format!("/api/v1/webhook-endpoints/{ep}"), &key).await;
    assert!(fetched.expect(200).get("secret").is_none(), "{}", fetched.text);
    let listed = app.get("/api/v1/webhook-endpoints", &key).await;
    let listed = listed.expect(200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(listed["items"][0].get("secret").is_none());
    assert_eq!(listed["hasMore"], false);

    // Update, disable, re-enable.
    let patched = app.patch(&format!("/api/v1/webhook-endpoints/{ep}"), &key, &json!({ "description": "main", "enabled": false })).await;
    let patched = patched.expect(200);
    assert_eq!((patched["status"].as_str(), patched["description"].as_str()), (Some("Disabled"), Some("main")));
    assert!(patched["disabledReason"].is_string());
    let patched = app.patch(&format!("/api/v1/webhook-endpoints/{ep}"), &key, &json!({ "enabled": true, "description": null })).await;
    let patched = patched.expect(200);
    assert_eq!(patched["status"], "Enabled");
    assert!(patched["description"].is_null() && patched["disabledReason"].is_null());
    app.patch(&format!("/api/v1/webhook-endpoints/{ep}"), &key, &json!({ "url": "http://192.168.0.10/" })).await.expect_field_error(
        400,
        "validation_failed",
        "url",
    );

    // Rotation shows the new secret once.
    let rotated = app.post_empty(&format!("/api/v1/webhook-endpoints/{ep}/rotate-secret"), &key).await;
    let new_secret = rotated.expect(200)["secret"].as_str().unwrap().to_owned();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);

    // Deliveries: empty; a malformed delivery id is a 400 naming it; an unknown one a 404.
    assert!(deliveries(&app, &key, &ep).await.is_empty());
    app.post_empty(&format!("/api/v1/webhook-endpoints/{ep}/deliveries/not-a-ulid/redeliver"), &key).await.expect_field_error(
        400,
        "validation_failed",
        "deliveryId",
    );
    app.post_empty(&format!("/api/v1/webhook-endpoints/{ep}/deliveries/01JC0000000000000000000000/redeliver"), &key)
        .await
        .expect_error(404, "delivery_not_found");

    // Another organization sees none of it.
    let (_, other) = app.org(PlanTier::Starter).await;
    for (method, path) in [
        (reqwest::Method::GET, format!("/api/v1/webhook-endpoints/{ep}")),
        (reqwest::Method::DELETE, format!("/api/v1/webhook-endpoints/{ep}")),
        (reqwest::Method::POST, format!("/api/v1/webhook-endpoints/{ep}/rotate-secret")),
        (reqwest::Method::GET, format!("/api/v1/webhook-endpoints/{ep}/deliveries")),
    ] {
        let answer = app.send(app.request(method, &path).bearer_auth(&other)).await;
        answer.expect_error(404, "webhook_endpoint_not_found");
    }
    let theirs = app.get("/api/v1/webhook-endpoints", &other).await;
    assert!(theirs.expect(200)["items"].as_array().unwrap().is_empty());

    // Viewers read but do not write.
    let viewer = app.jwt_dashboard(&org, "Viewer");
    app.get("/api/v1/webhook-endpoints", &viewer).await.expect(200);
    app.post("/api/v1/webhook-endpoints", &viewer, &json!({ "url": "https://93.184.216.34/" }))
        .await
        .expect_error(403, "insufficient_role");

    // The audit log never holds a secret.
    let audit = app.single_text("SELECT coalesce(string_agg(coalesce(before::text, '') || coalesce(after::text, ''), '|'), '') AS digest FROM audit_log WHERE entity_type = 'webhook_endpoint'".to_owned()).await;
    assert!(audit.contains(&ep) && !audit.contains("whsec_"), "{audit}");

    // The routes are in the OpenAPI document.
    let doc = app.send(app.request(reqwest::Method::GET, "/api/v1/openapi.json")).await;
    let paths = doc.expect(200)["paths"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    for path in [
        "/api/v1/webhook-endpoints",
        "/api/v1/webhook-endpoints/{id}",
        "/api/v1/webhook-endpoints/{id}/rotate-secret",
        "/api/v1/webhook-endpoints/{id}/deliveries",
        "/api/v1/webhook-endpoints/{id}/deliveries/{deliveryId}/redeliver",
    ] {
        assert!(paths.iter().any(|p| p == path), "{path} is not in the OpenAPI document");
    }

    app.delete(&format!("/api/v1/webhook-endpoints/{ep}"), &key).await.expect(204);
    app.get(&format!("/api/v1/webhook-endpoints/{ep}"), &key).await.expect_error(404, "webhook_endpoint_not_found");
}
