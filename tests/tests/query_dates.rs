//! Time query parameters over HTTP: `since` and `until` of the conversions list and export,
//! `before` of the Stripe inbox. Each takes a date (`2026-04-01`, that day's start in UTC) as
//! well as an RFC 3339 timestamp with any offset, and refuses an impossible date or time with
//! `400 validation_failed` naming the parameter.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use rekomi_domain::kernel::plan::PlanTier;
use rekomi_e2e::app::{id_of, TestApp};
use serde_json::Value;

/// Just before, exactly at, and just after 2026-04-01 00:00 UTC.
const AROUND_APRIL_FIRST: [(&str, &str); 3] = [
    ("0190a2b3-0000-7000-8000-000000000001", "2026-03-31T23:30:00Z"),
    ("0190a2b3-0000-7000-8000-000000000002", "2026-04-01T00:00:00Z"),
    ("0190a2b3-0000-7000-8000-000000000003", "2026-04-01T22:30:00Z"),
];

/// A Growth organization with one conversion and one stored Stripe event at each instant of
/// [`AROUND_APRIL_FIRST`]; returns its API key and an Owner's dashboard token (the inbox is
/// Owner-only).
async fn organization_with_records_around_april_first(app: &TestApp) -> (String, String) {
    let (org, key) = app.org(PlanTier::Growth).await;
    let program = id_of(&app.create_program(&key, "Default program").await);
    let affiliate = id_of(&app.create_affiliate(&key, &program, "sarah@creator.com", "Approved").await);
    // Conversions and inbox events are written by the Stripe pipeline only; rows placed at
    // chosen instants are what these filters are about.
    for (n, (id, at)) in AROUND_APRIL_FIRST.iter().enumerate() {
        app.execute_sql(&format!(
            "insert into conversions (id, org_id, program_id, affiliate_id, kind, status, amount_minor, currency, \
             commission_minor, attribution_trace, paid_invoices, approve_after, created_at, updated_at) \
             values ('{id}', '{org}', '{program}', '{affiliate}', 'OneTime', 'Pending', 1000, 'USD', 100, '{{}}'::jsonb, 1, \
             '{at}', '{at}', '{at}')"
        ))
        .await;
        app.execute_sql(&format!(
            "insert into inbox_events (id, org_id, event_type, payload, status, attempts, next_attempt_at, received_at, processed_at) \
             values ('evt_dates_{n}', '{org}', 'customer.created', '{{}}', 'Done', 1, '{at}', '{at}', '{at}')"
        ))
        .await;
    }
    (key, app.jwt_dashboard(&org, "Owner"))
}

fn ids(items: &Value) -> BTreeSet<String> {
    items.as_array().unwrap().iter().map(|item| item["id"].as_str().unwrap().to_owned()).collect()
}

fn conversions(which: &[usize]) -> BTreeSet<String> {
    which.iter().map(|&i| AROUND_APRIL_FIRST[i].0.to_owned()).collect()
}

fn events(which: &[usize]) -> BTreeSet<String> {
    which.iter().map(|&i| format!("evt_dates_{i}")).collect()
}

#[tokio::test]
async fn since_until_and_before_take_a_date_as_that_days_start_in_utc() {
    let Some(app) = TestApp::spawn().await else { return };
    let (key, owner) = organization_with_records_around_april_first(&app).await;

    let listed = app.get("/api/v1/conversions?since=2026-04-01", &key).await;
    assert_eq!(ids(&listed.expect(200)["items"]), conversions(&[1, 2]), "at or after midnight UTC");
    // The same instant as a timestamp, and an earlier one in another offset (`+` encoded).
    let listed = app.get("/api/v1/conversions?since=2026-04-01T00:00:00Z", &key).await;
    assert_eq!(ids(&listed.expect(200)["items"]), conversions(&[1, 2]));
    let listed = app.get("/api/v1/conversions?since=2026-04-01T01:00:00%2B02:00", &key).await;
    assert_eq!(ids(&listed.expect(200)["items"]), conversions(&[0, 1, 2]), "01:00+02:00 is 23:00 UTC the day before");
    let listed = app.get("/api/v1/conversions?since=2026-04-02", &key).await;
    assert_eq!(ids(&listed.expect(200)["items"]), conversions(&[]));

    let export = app.get("/api/v1/conversions/export.csv?since=2026-03-31&until=2026-04-01", &key).await;
    assert_eq!(export.status, 200, "{}", export.text);
    let rows: Vec<&str> = export.text.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "before midnight UTC only: {rows:?}");
    assert!(rows[0].starts_with(AROUND_APRIL_FIRST[0].0), "{rows:?}");

    let inbox = app.get("/api/v1/webhooks/stripe/events?before=2026-04-01", &owner).await;
    assert_eq!(ids(inbox.expect(200)), events(&[0]), "received before midnight UTC");
    let inbox = app.get("/api/v1/webhooks/stripe/events?before=2026-04-02", &owner).await;
    assert_eq!(ids(inbox.expect(200)), events(&[0, 1, 2]));
}

#[tokio::test]
async fn impossible_dates_and_times_are_refused_naming_the_parameter() {
    let Some(app) = TestApp::spawn().await else { return };
    let (key, owner) = organization_with_records_around_april_first(&app).await;
    let mut wrong = Vec::new();
    for raw in ["2026-02-30", "2026-13-01", "2026-04-01T25:00:00Z", "yesterday", "2026-4-1", "2026-04-01T09:30:00"] {
        for (path, field, token) in [
            (format!("/api/v1/conversions?since={raw}"), "since", &key),
            (format!("/api/v1/conversions/export.csv?since={raw}"), "since", &key),
            (format!("/api/v1/conversions/export.csv?until={raw}"), "until", &key),
            (format!("/api/v1/webhooks/stripe/events?before={raw}"), "before", &owner),
        ] {
            let answer = app.get(&path, token).await;
            if answer.status != 400 || answer.error_code() != Some("validation_failed") || answer.field() != Some(field) {
                wrong.push(format!("GET {path}: expected 400 validation_failed {field}, got {} {}", answer.status, answer.text));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // A date the calendar has, then one it does not.
    app.get("/api/v1/conversions?since=2026-04-01", &key).await.expect(200);
    app.get("/api/v1/conversions?since=2026-02-30", &key).await.expect_field_error(400, "validation_failed", "since");
}
