//! What operators see of a running server: `GET /metrics` in the Prometheus text format (with
//! the request, queue, pool and database series the operations guide names), and the
//! `X-Request-Id` every answer carries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rekomi_domain::kernel::plan::PlanTier;
use rekomi_e2e::app::TestApp;
use reqwest::Method;

/// Polls `/metrics` until every `wanted` series shows, and returns the page.
async fn metrics_showing(app: &TestApp, wanted: &[&str]) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let page = app.send(app.request(Method::GET, "/metrics")).await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert!(page.header("content-type").is_some_and(|t| t.starts_with("text/plain")), "{:?}", page.headers);
        let missing: Vec<&&str> = wanted.iter().filter(|w| !page.text.contains(**w)).collect();
        if missing.is_empty() {
            return page.text;
        }
        assert!(tokio::time::Instant::now() < deadline, "never showed {missing:?}:\n{}", page.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn metrics_show_requests_by_route_and_status_queues_the_pool_and_database_statements() {
    let Some(app) = TestApp::spawn().await else { return };
    let (_, key) = app.org(PlanTier::Growth).await;
    app.get("/api/v1/programs", &key).await.expect(200);
    app.get("/api/v1/programs/not-a-uuid", &key).await.expect_error(400, "validation_failed");
    let page = metrics_showing(
        &app,
        &[
            r#"rekomi_http_requests_total{method="GET",route="/api/v1/programs",status="200"}"#,
            // The matched pattern, not the raw path: ids never multiply the series.
            r#"route="/api/v1/programs/{id}",status="400""#,
            "rekomi_http_request_duration_seconds_bucket",
            r#"rekomi_queue_pending{queue="stripe_inbox"}"#,
            r#"rekomi_queue_oldest_due_seconds{queue="webhook_deliveries"}"#,
            r#"rekomi_db_pool_connections{state="in_use"}"#,
            "rekomi_db_pool_max_connections",
            "rekomi_db_statements_total",
        ],
    )
    .await;
    assert!(!page.contains("not-a-uuid"), "raw paths never become labels");
}

#[tokio::test]
async fn a_metrics_token_guards_the_page() {
    let Some(app) = TestApp::spawn_with(|config| config.metrics_token = Some("scrape-secret".to_owned())).await else { return };
    app.send(app.request(Method::GET, "/metrics")).await.expect_error(401, "unauthorized");
    app.get("/metrics", "wrong").await.expect_error(401, "unauthorized");
    let page = app.get("/metrics", "scrape-secret").await;
    assert_eq!(page.status, 200, "{}", page.text);
}

#[tokio::test]
async fn every_answer_carries_a_request_id_the_clients_when_usable() {
    let Some(app) = TestApp::spawn().await else { return };
    let echoed = app.send(app.request(Method::GET, "/healthz").header("x-request-id", "support-ticket-4711")).await;
    assert_eq!(echoed.header("x-request-id"), Some("support-ticket-4711"));
    // Errors carry one too, and a client id that could forge a log line is replaced.
    for sent in [None, Some("two words"), Some(&*"x".repeat(200))] {
        let mut request = app.request(Method::GET, "/api/v1/programs");
        if let Some(id) = sent {
            request = request.header("x-request-id", id);
        }
        let answer = app.send(request.header("x-rekomi-source", "zapier")).await;
        answer.expect_error(401, "unauthorized");
        let id = answer.header("x-request-id").expect("a request id");
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{sent:?} gave {id}");
    }
}
