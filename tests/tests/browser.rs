//! The loader in a real browser: headless Chromium (Debian's `chromium`, which `make test`
//! installs through `scripts/chromium.sh`) opens a brand's page, served by this test on its own
//! port, that carries the install snippet rendered by the real server; the page's URL carries
//! `?via=<slug>`. The loader records the click across origins (CORS), sets its first-party
//! cookie and `window.Rekomi.referral`; the page reports what it sees to this test, then follows
//! a link to a second page without the parameter, where the cookie still names the referral and
//! `Rekomi.convert()` records a lead for it.
//!
//! The browser is found through `REKOMI_CHROMIUM` (set by `scripts/test.sh`) or at
//! `/usr/bin/chromium`; without one the test is skipped, except under `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rekomi_domain::kernel::plan::PlanTier;
use rekomi_e2e::app::{id_of, TestApp};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WITHIN: Duration = Duration::from_secs(45);

fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("REKOMI_CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/usr/bin/chromium")])
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "Chromium is required under CI (scripts/chromium.sh installs it)");
        eprintln!("skipping: no Chromium (set REKOMI_CHROMIUM or run scripts/chromium.sh)");
    }
    found
}

/// What the pages reported, by kind (`ready`, `second`).
type Reports = Arc<Mutex<Vec<(String, Value)>>>;

/// The brand's site: `GET /landing…` and `GET /second` serve pages carrying `snippet`;
/// `POST /report/<kind>` records what a page saw.
async fn brand_site(snippet: String) -> (String, Reports) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let reports: Reports = Arc::default();
    let seen = Arc::clone(&reports);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (snippet, seen) = (snippet.clone(), Arc::clone(&seen));
            tokio::spawn(async move { serve(stream, &snippet, &seen).await });
        }
    });
    (address, reports)
}

async fn serve(mut stream: TcpStream, snippet: &str, reports: &Reports) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head, body) = loop {
        let Ok(n) = stream.read(&mut chunk).await else { return };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..at]).into_owned();
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                .unwrap_or(0);
            let mut body = buf[at + 4..].to_vec();
            while body.len() < length {
                let Ok(n) = stream.read(&mut chunk).await else { return };
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            break (head, body);
        }
    };
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let (content_type, page) = if let Some(kind) = target.strip_prefix("/report/") {
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        reports.lock().unwrap().push((kind.to_owned(), value));
        ("text/plain", String::new())
    } else if target.starts_with("/landing") {
        ("text/html; charset=utf-8", page(snippet, "ready", "location.href = '/second';"))
    } else if target.starts_with("/second") {
        let convert = "return Rekomi.convert({ email: 'Pat@Buyers.example', name: 'Pat Buyer' }).then(function (sent) { \
                       return fetch('/report/converted', { method: 'POST', body: JSON.stringify({ sent: sent }) }); });";
        ("text/html; charset=utf-8", page(snippet, "second", convert))
    } else if target.starts_with("/journey") {
        ("text/html; charset=utf-8", journey_page(snippet))
    } else {
        ("text/plain", String::new())
    };
    let answer =
        format!("HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}", page.len());
    let _ = stream.write_all(answer.as_bytes()).await;
}

/// A page with the snippet that reports `window.Rekomi` once ready, then runs `then`.
fn page(snippet: &str, kind: &str, then: &str) -> String {
    format!(
        r#"<!doctype html><html><head><title>Shop</title>
{snippet}
<script>
function whenLoaded() {{
  if (!window.Rekomi) {{ return setTimeout(whenLoaded, 20); }}
  Rekomi.ready.then(function (r) {{
    return fetch('/report/{kind}', {{ method: 'POST', body: JSON.stringify({{ referral: r.referral, slug: r.slug, cookie: document.cookie }}) }});
  }}).then(function () {{ {then} }});
}}
whenLoaded();
</script></head><body><h1>Pro plan</h1></body></html>"#
    )
}

/// A page of a visit in steps: it reports under its `report` parameter, then goes to its
/// `next` parameter (a path of this site), if any.
fn journey_page(snippet: &str) -> String {
    let then = "var next = new URLSearchParams(location.search).get('next'); if (next) { location.href = next; }";
    page(snippet, "' + new URLSearchParams(location.search).get('report') + '", then)
}

/// Starts headless Chromium on `url` with a fresh profile (removed when the guard drops).
fn start_chromium(browser: &PathBuf, url: &str) -> (tokio::process::Child, TempProfile) {
    let profile = TempProfile(std::env::temp_dir().join(format!("rekomi-chromium-{}", uuid::Uuid::new_v4())));
    let child = tokio::process::Command::new(browser)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starting Chromium");
    (child, profile)
}

/// A browser profile directory, removed on drop.
struct TempProfile(PathBuf);

impl Drop for TempProfile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn wait_for_report(reports: &Reports, kind: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        if let Some((_, value)) = reports.lock().unwrap().iter().find(|(k, _)| k == kind) {
            return value.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "the {kind} page never reported; reports: {:?}", reports.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_visitor_arriving_with_via_gets_a_recorded_click_a_cookie_and_rekomi_referral() {
    let Some(browser) = chromium() else { return };
    let Some(app) = TestApp::spawn().await else { return };
    let (_, key) = app.org(PlanTier::Growth).await;
    let program_id = id_of(&app.create_program(&key, "Partners").await);
    let body = json!({ "programId": program_id, "email": "jane@creator.test", "status": "Approved", "customAlias": "jane-deals" });
    let jane = id_of(app.post("/api/v1/affiliates", &key, &body).await.expect(201));
    let snippet = app.get("/api/v1/r/install-snippet", &key).await.expect(200)["snippet"].as_str().unwrap().to_owned();
    assert!(snippet.contains(&app.address), "the snippet points at this server: {snippet}");

    let (site, reports) = brand_site(snippet).await;
    let landing = format!("{site}/landing?via=jane-deals&utm_source=newsletter");
    let (mut chrome, _profile) = start_chromium(&browser, &landing);

    let ready = wait_for_report(&reports, "ready").await;
    let second = wait_for_report(&reports, "second").await;
    let converted = wait_for_report(&reports, "converted").await;

    let referral = ready["referral"].as_str().unwrap_or_else(|| panic!("no Rekomi.referral: {ready}")).to_owned();
    assert!(referral.starts_with("rkc_"), "{ready}");
    assert_eq!(ready["slug"], "jane-deals");
    let cookie_name = format!("rkmi_{}", program_id.replace('-', ""));
    let cookie = ready["cookie"].as_str().unwrap();
    let value = cookie
        .split("; ")
        .find_map(|c| c.strip_prefix(&format!("{cookie_name}=")))
        .unwrap_or_else(|| panic!("no {cookie_name} in {cookie:?}"));
    assert!(value.starts_with(&format!("{referral}%7Cjane-deals%7C")), "{value}");
    assert_eq!(
        (second["referral"].as_str(), second["slug"].as_str()),
        (Some(referral.as_str()), Some("jane-deals")),
        "the cookie carries the referral to the next page"
    );

    let uuid = uuid::Uuid::parse_str(referral.trim_start_matches("rkc_")).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let row = loop {
        let row = app
            .single_text(format!("SELECT coalesce((SELECT concat_ws('|', affiliate_id, landing_url, utm_source, device, is_bot) FROM clicks WHERE id = '{uuid}'), 'missing') AS digest"))
            .await;
        if row != "missing" || tokio::time::Instant::now() >= deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    };
    assert_eq!(row, format!("{jane}|{landing}|newsletter|Desktop|f"), "headless Chromium is a desktop browser, not a crawler");
    assert_eq!(app.count_rows("clicks").await, 1, "the second page recorded no click");

    assert_eq!(converted["sent"], true, "{converted}");
    // The beacon is queued by the browser; it may land after the page's report.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let lead = loop {
        let lead = app
            .single_text(
                "SELECT coalesce((SELECT concat_ws('|', affiliate_id, kind, customer_email) FROM conversions), 'missing') AS digest"
                    .to_owned(),
            )
            .await;
        if lead != "missing" || tokio::time::Instant::now() >= deadline {
            break lead;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    };
    let _ = chrome.kill().await;
    assert_eq!(lead, format!("{jane}|LeadReward|pat@buyers.example"), "Rekomi.convert() recorded the lead for the referral");
}

#[tokio::test]
async fn first_touch_keeps_the_first_referral_and_last_touch_replaces_it() {
    let Some(browser) = chromium() else { return };
    let Some(app) = TestApp::spawn().await else { return };
    let (_, key) = app.org(PlanTier::Growth).await;
    for (model, keeps) in [("FirstTouch", "jane"), ("LastTouch", "bob")] {
        let body =
            json!({ "name": model, "defaultCommissionType": "Percentage", "defaultCommissionValue": 20.0, "attributionModel": model });
        let program_id = id_of(app.post("/api/v1/programs", &key, &body).await.expect(201));
        for name in ["jane", "bob"] {
            let slug = format!("{name}-{}", model.to_ascii_lowercase());
            let body = json!({ "programId": program_id, "email": format!("{name}.{model}@creator.test"), "status": "Approved", "customAlias": slug });
            app.post("/api/v1/affiliates", &key, &body).await.expect(201);
        }
        let snippet = app.get(&format!("/api/v1/r/install-snippet?programId={program_id}"), &key).await.expect(200)["snippet"]
            .as_str()
            .unwrap()
            .to_owned();
        let (site, reports) = brand_site(snippet).await;
        let m = model.to_ascii_lowercase();
        // jane's link, then bob's, then a page with no referral.
        let third = "/journey?report=third".to_owned();
        let second = format!("/journey?via=bob-{m}&report=second&next={}", urlencode(&third));
        let first = format!("{site}/journey?via=jane-{m}&report=first&next={}", urlencode(&second));
        let (mut chrome, _profile) = start_chromium(&browser, &first);
        let (one, two, three) =
            (wait_for_report(&reports, "first").await, wait_for_report(&reports, "second").await, wait_for_report(&reports, "third").await);
        let _ = chrome.kill().await;
        assert_eq!(one["slug"], format!("jane-{m}"), "{model}: {one}");
        assert_eq!(two["slug"], format!("{keeps}-{m}"), "{model}: {two}");
        assert_eq!(three["slug"], format!("{keeps}-{m}"), "{model}: the cookie keeps it: {three}");
        assert_ne!(one["referral"], Value::Null);
        if model == "FirstTouch" {
            assert_eq!(three["referral"], one["referral"], "{model}: the first click stays the referral");
        } else {
            assert_eq!(three["referral"], two["referral"], "{model}: the last click is the referral");
        }
    }
    // Every visit with a referral recorded its click, whichever the model kept.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.count_rows("clicks").await < 4 {
        assert!(tokio::time::Instant::now() < deadline, "the four clicks were not all written");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

fn urlencode(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}
