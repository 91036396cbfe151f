//! Traffic end to end: a program's `landingUrl`, Short links (`GET /r/{slug}`) answered by the
//! real server with a 302 and a click written by the batching click sink to PostgreSQL, the
//! links that must not be followed, the anonymous tracking limit, and a signed Stripe checkout
//! whose `client_reference_id` names a click crediting the click's affiliate (inside the
//! cookie window, in the click's organization only).
//!
//! Clicks are written asynchronously, so the tests poll with a deadline ([`WITHIN`]); to prove
//! that a refused visit wrote nothing, they follow one good link afterwards and wait for it:
//! the sink writes in order, so anything submitted before it would be stored by then.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rekomi_domain::kernel::plan::PlanTier;
use rekomi_domain::kernel::signature;
use rekomi_e2e::app::{id_of, Response, TestApp};
use rekomi_e2e::stripe_events::fixture;
use reqwest::Method;
use serde_json::{json, Value};

const SECRET: &str = "whsec_rekomi_e2e_traffic_0123456789";
const WITHIN: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(40);
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
const LANDING: &str = "https://shop.example.com/pricing?plan=pro";

async fn spawn() -> Option<TestApp> {
    TestApp::spawn_with(|config| {
        config.stripe_webhook_secrets = vec![SECRET.to_owned()];
        config.inbox_interval_ms = 50;
        config.country_header = Some("CF-IPCountry".to_owned());
    })
    .await
}

struct Brand {
    key: String,
    org_id: String,
    program_id: String,
}

/// A Growth organization with a 20 % program landing on [`LANDING`].
async fn brand(app: &TestApp) -> Brand {
    let (org_id, key) = app.org(PlanTier::Growth).await;
    let body =
        json!({ "name": "Pro partners", "defaultCommissionType": "Percentage", "defaultCommissionValue": 20.0, "landingUrl": LANDING });
    let program = app.post("/api/v1/programs", &key, &body).await.expect(201).clone();
    assert_eq!(program["landingUrl"], LANDING, "{program}");
    Brand { key, org_id, program_id: id_of(&program) }
}

/// An affiliate of `brand` with the link slug `slug`; returns its id.
async fn affiliate(app: &TestApp, brand: &Brand, email: &str, slug: &str, status: &str) -> String {
    let body = json!({ "programId": brand.program_id, "email": email, "fullName": "Jane Doe", "status": status, "customAlias": slug });
    id_of(app.post("/api/v1/affiliates", &brand.key, &body).await.expect(201))
}

/// A client that does not follow redirects.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().unwrap()
}

/// `GET /r/{path}` as an iPhone coming from a newsletter in Germany.
async fn follow(app: &TestApp, path: &str) -> Response {
    let request = browser()
        .get(app.url(&format!("/r/{path}")))
        .header("user-agent", IPHONE)
        .header("referer", "https://News.Example/issue/7")
        .header("cf-ipcountry", "de");
    app.send(request).await
}

/// The click id a 302 carries in its `Location`.
fn click_of(answer: &Response) -> String {
    assert_eq!(answer.status, 302, "{}", answer.text);
    let location = url::Url::parse(answer.header("location").unwrap()).unwrap();
    let click = location.query_pairs().find(|(k, _)| k == "rk_click").map(|(_, v)| v.into_owned());
    click.unwrap_or_else(|| panic!("no rk_click in {location}"))
}

/// The stored click `rkc_…` as `field|field|…`, waiting until the sink has written it.
async fn stored_click(app: &TestApp, click: &str) -> String {
    let uuid = uuid::Uuid::parse_str(click.strip_prefix("rkc_").unwrap()).unwrap();
    let sql = format!(
        "SELECT coalesce((SELECT concat_ws('|', org_id, affiliate_id, referrer_host, coalesce(landing_url, '-'), coalesce(utm_source, '-'), \
         coalesce(utm_medium, '-'), coalesce(utm_campaign, '-'), coalesce(sub_id, '-'), coalesce(country, '-'), device, is_unique, is_bot, \
         length(visitor_hash)) FROM clicks WHERE id = '{uuid}'), 'missing') AS digest"
    );
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let row = app.single_text(sql.clone()).await;
        if row != "missing" {
            return row;
        }
        assert!(tokio::time::Instant::now() < deadline, "click {click} was never written");
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test]
async fn a_landing_url_is_an_https_url_set_cleared_and_validated() {
    let Some(app) = spawn().await else { return };
    let (_, key) = app.org(PlanTier::Growth).await;
    let program = app.create_program(&key, "No landing yet").await;
    assert_eq!(program["landingUrl"], Value::Null);
    let path = format!("/api/v1/programs/{}", id_of(&program));
    let before = app.fingerprints().await;
    for bad in [
        json!("http://shop.example.com"),
        json!("shop.example.com"),
        json!("https://user:pw@shop.example.com/"),
        json!("https://shop.example.com/#x"),
        json!(7),
        json!(format!("https://shop.example.com/{}", "a".repeat(2100))),
    ] {
        app.patch(&path, &key, &json!({ "landingUrl": bad })).await.expect_field_error(400, "validation_failed", "landingUrl");
        let body = json!({ "name": "Bad", "defaultCommissionType": "Percentage", "defaultCommissionValue": 20.0, "landingUrl": bad });
        app.post("/api/v1/programs", &key, &body).await.expect_field_error(400, "validation_failed", "landingUrl");
    }
    assert_eq!(app.fingerprints().await, before, "a refused landing URL writes nothing");
    let set = app.patch(&path, &key, &json!({ "landingUrl": "https://shop.example.com/start?ref=partners" })).await;
    assert_eq!(set.expect(200)["landingUrl"], "https://shop.example.com/start?ref=partners");
    assert_eq!(app.get(&path, &key).await.expect(200)["landingUrl"], "https://shop.example.com/start?ref=partners");
    let cleared = app.patch(&path, &key, &json!({ "landingUrl": null })).await;
    assert_eq!(cleared.expect(200)["landingUrl"], Value::Null);
}

#[tokio::test]
async fn a_short_link_records_the_click_and_sends_the_visitor_to_the_landing_page_with_the_referral() {
    let Some(app) = spawn().await else { return };
    let brand = brand(&app).await;
    let jane = affiliate(&app, &brand, "jane@creator.test", "jane-deals", "Approved").await;

    let answer =
        follow(&app, "jane-deals?sub1=post-42&utm_source=newsletter&utm_medium=email&utm_campaign=spring&via=forged&rk_click=rkc_forged")
            .await;
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let click = click_of(&answer);
    assert!(click.len() == 36 && click[4..].bytes().all(|b| b.is_ascii_hexdigit()), "{click}");
    let location = url::Url::parse(answer.header("location").unwrap()).unwrap();
    assert_eq!((location.scheme(), location.host_str(), location.path()), ("https", Some("shop.example.com"), "/pricing"));
    let query: Vec<(String, String)> = location.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let want: Vec<(String, String)> = [
        ("plan", "pro"),
        ("sub1", "post-42"),
        ("utm_source", "newsletter"),
        ("utm_medium", "email"),
        ("utm_campaign", "spring"),
        ("via", "jane-deals"),
        ("rk_click", click.as_str()),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(query, want, "the landing page's own query, the visitor's, then the referral; forged referral params dropped");

    let row = stored_click(&app, &click).await;
    assert_eq!(
        row,
        format!("{}|{jane}|news.example|{LANDING}|newsletter|email|spring|post-42|DE|Mobile|t|f|32", brand.org_id),
        "the click as stored"
    );

    // The same visitor again within 30 minutes is a click, not a unique one; any case of the
    // slug is the same link.
    let again = click_of(&follow(&app, "JANE-DEALS").await);
    assert!(stored_click(&app, &again).await.ends_with("|Mobile|f|f|32"), "a repeat visit is not unique");

    // A crawler's click is recorded as a bot, from no referrer.
    let bot = browser()
        .get(app.url("/r/jane-deals"))
        .header("user-agent", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)");
    let bot = click_of(&app.send(bot).await);
    let row = stored_click(&app, &bot).await;
    assert!(row.contains("|(direct)|") && row.ends_with("|Bot|t|t|32"), "{row}");
    assert_eq!(app.count_rows("clicks").await, 3);
}

#[tokio::test]
async fn links_that_must_not_be_followed_answer_404_and_record_nothing() {
    let Some(app) = spawn().await else { return };
    let brand = brand(&app).await;
    affiliate(&app, &brand, "pending@creator.test", "pending-pat", "Pending").await;
    let paused = affiliate(&app, &brand, "paused@creator.test", "paused-paul", "Approved").await;
    let bulk = app.post("/api/v1/affiliates/bulk-action", &brand.key, &json!({ "action": "pause", "affiliateIds": [paused] })).await;
    bulk.expect(200);

    // A program without a landing URL, and one switched off.
    let bare = app.create_program(&brand.key, "No landing").await;
    let body = json!({ "programId": id_of(&bare), "email": "bare@creator.test", "status": "Approved", "customAlias": "bare-bob" });
    app.post("/api/v1/affiliates", &brand.key, &body).await.expect(201);
    let off = app
        .post(
            "/api/v1/programs",
            &brand.key,
            &json!({ "name": "Off", "defaultCommissionType": "Percentage", "defaultCommissionValue": 5.0, "landingUrl": LANDING }),
        )
        .await
        .expect(201)
        .clone();
    let body = json!({ "programId": id_of(&off), "email": "off@creator.test", "status": "Approved", "customAlias": "off-olga" });
    app.post("/api/v1/affiliates", &brand.key, &body).await.expect(201);
    app.patch(&format!("/api/v1/programs/{}", id_of(&off)), &brand.key, &json!({ "isActive": false })).await.expect(200);

    for slug in ["nobody-here", "pending-pat", "paused-paul", "off-olga", "a%20b", &"x".repeat(65)] {
        let answer = follow(&app, slug).await;
        answer.expect_error(404, "link_not_found");
        assert_eq!(answer.header("location"), None, "{slug}");
    }
    follow(&app, "bare-bob").await.expect_error(404, "landing_url_not_set");

    // One good click, written in order after anything the refused visits could have queued.
    affiliate(&app, &brand, "jane@creator.test", "jane-deals", "Approved").await;
    let click = click_of(&follow(&app, "jane-deals").await);
    stored_click(&app, &click).await;
    assert_eq!(app.count_rows("clicks").await, 1, "only the good link recorded a click");
}

#[tokio::test]
async fn anonymous_tracking_is_limited_per_client_address() {
    let Some(app) = TestApp::spawn_with(|config| config.tracking_limit_per_minute = 3).await else { return };
    let brand = brand(&app).await;
    affiliate(&app, &brand, "jane@creator.test", "jane-deals", "Approved").await;
    for _ in 0..3 {
        assert_eq!(follow(&app, "jane-deals").await.status, 302);
    }
    let limited = follow(&app, "jane-deals").await;
    limited.expect_error(429, "rate_limited");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Unknown slugs spend the same budget (no free probing).
    follow(&app, "nobody-here").await.expect_error(429, "rate_limited");
}

// ---- a click credits a checkout --------------------------------------------------------

/// A paid `payment`-mode checkout of `customer` on `account` naming `reference`.
fn checkout(event: &str, account: &str, reference: &str, customer: &str, amount: i64) -> Vec<u8> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let body = fixture(
        "checkout.session.completed.json",
        &[
            ("EVENT_ID", json!(event)),
            ("CREATED", json!(now)),
            ("SESSION_ID", json!(format!("cs_{}", event.trim_start_matches("evt_")))),
            ("PAYMENT_STATUS", json!("paid")),
            ("REF", json!(reference)),
            ("AMOUNT", json!(amount)),
            ("CUSTOMER_ID", json!(customer)),
            ("EMAIL", json!(format!("{customer}@buyers.example"))),
            ("PAYMENT_INTENT_ID", json!(format!("pi_{}", event.trim_start_matches("evt_")))),
        ],
    );
    let mut value: Value = serde_json::from_slice(&body).unwrap();
    value["account"] = json!(account);
    serde_json::to_vec(&value).unwrap()
}

/// Posts a signed event and waits until the worker has processed it; returns its stored
/// `status|last_error`.
async fn deliver(app: &TestApp, body: &[u8]) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let request = app
        .request(Method::POST, "/api/webhooks/stripe")
        .header("content-type", "application/json")
        .header("stripe-signature", signature::header(SECRET, now, body))
        .body(body.to_vec());
    let answer = app.send(request).await;
    let id = answer.expect(200)["id"].as_str().unwrap().to_owned();
    let sql = format!(
        "SELECT coalesce((SELECT status || '|' || coalesce(last_error, '') FROM inbox_events WHERE id = '{id}'), 'missing') AS digest"
    );
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let row = app.single_text(sql.clone()).await;
        if !row.starts_with("Pending") && row != "missing" {
            return row;
        }
        assert!(tokio::time::Instant::now() < deadline, "event {id} was never processed: {row}");
        tokio::time::sleep(POLL).await;
    }
}

async fn conversions(app: &TestApp, key: &str) -> Vec<Value> {
    app.get("/api/v1/conversions?take=200", key).await.expect(200)["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_checkout_naming_a_click_credits_its_affiliate_within_the_cookie_window_and_organization() {
    let Some(app) = spawn().await else { return };
    let acme = brand(&app).await;
    let globex = brand(&app).await;
    app.link_stripe_account(&acme.org_id, "acct_e2e_acme").await;
    app.link_stripe_account(&globex.org_id, "acct_e2e_globex").await;
    let jane = affiliate(&app, &acme, "jane@creator.test", "jane-deals", "Approved").await;
    affiliate(&app, &globex, "gus@creator.test", "gus-globex", "Approved").await;
    let click = click_of(&follow(&app, "jane-deals").await);
    stored_click(&app, &click).await;

    // Another organization's checkout naming Acme's click credits nobody there.
    let nobody = "Done|no affiliate is attributed";
    assert_eq!(deliver(&app, &checkout("evt_e2e_click_globex", "acct_e2e_globex", &click, "cus_e2e_g", 5000)).await, nobody);
    assert!(conversions(&app, &globex.key).await.is_empty());
    assert!(conversions(&app, &acme.key).await.is_empty());

    // Acme's checkout naming it credits Jane, through the click.
    assert_eq!(
        deliver(&app, &checkout("evt_e2e_click_acme", "acct_e2e_acme", &click, "cus_e2e_a", 10000)).await,
        "Done|conversion created"
    );
    let sales = conversions(&app, &acme.key).await;
    assert_eq!(sales.len(), 1, "{sales:#?}");
    let sale = &sales[0];
    assert_eq!(sale["affiliateId"], json!(jane));
    assert_eq!(sale["clickId"], json!(click));
    assert_eq!((sale["attributionMethod"].as_str(), sale["commissionCents"].as_i64()), (Some("metadata_or_customer"), Some(2000)));
    let attribution = app.get(&format!("/api/v1/conversions/{}/attribution", id_of(sale)), &acme.key).await;
    let trace = &attribution.expect(200)["trace"];
    assert_eq!(trace["rule"], "referral_click", "{trace}");
    assert_eq!(trace["clicks"][0]["withinWindow"], true, "{trace}");
    assert_eq!(app.get(&format!("/api/v1/conversions/{}", id_of(sale)), &acme.key).await.expect(200)["clickId"], json!(click));

    // A click older than the program's cookie window (30 days) credits nothing; nor does an
    // id no click has.
    let old = click_of(&follow(&app, "jane-deals").await);
    stored_click(&app, &old).await;
    let uuid = old.trim_start_matches("rkc_");
    app.execute_sql(&format!(
        "UPDATE clicks SET clicked_at = now() - interval '31 days' WHERE id = '{}'",
        uuid::Uuid::parse_str(uuid).unwrap()
    ))
    .await;
    assert_eq!(deliver(&app, &checkout("evt_e2e_click_old", "acct_e2e_acme", &old, "cus_e2e_b", 10000)).await, nobody);
    let unknown = format!("rkc_{}", "0".repeat(32));
    assert_eq!(deliver(&app, &checkout("evt_e2e_click_none", "acct_e2e_acme", &unknown, "cus_e2e_c", 10000)).await, nobody);
    assert_eq!(conversions(&app, &acme.key).await.len(), 1, "an expired or unknown click credits no one");
}

// ---- leads: the loader's signup, email match, Cpl ---------------------------------------

async fn lead_signup(app: &TestApp, body: &Value) -> Response {
    let request =
        app.request(Method::POST, "/api/v1/r/lead/signup").header("content-type", "text/plain;charset=UTF-8").body(body.to_string());
    app.send(request).await
}

#[tokio::test]
async fn a_signup_is_an_opaque_lead_and_a_later_sale_by_its_email_is_credited_within_the_window() {
    let Some(app) = spawn().await else { return };
    let acme = brand(&app).await;
    app.link_stripe_account(&acme.org_id, "acct_e2e_acme").await;
    let jane = affiliate(&app, &acme, "jane@creator.test", "jane-deals", "Approved").await;
    affiliate(&app, &acme, "bob@creator.test", "bob-deals", "Approved").await;
    // The visits behind the signups: the loader sends its referral's click with them.
    let click = click_of(&follow(&app, "jane-deals").await);
    let bobs = click_of(&follow(&app, "bob-deals").await);
    stored_click(&app, &click).await;
    stored_click(&app, &bobs).await;

    // Every well-formed signup answers the same, recorded or not.
    let email = "cus_e2e_m@buyers.example";
    for body in [
        json!({ "slug": "jane-deals", "email": email, "name": "Pat Buyer", "programId": acme.program_id, "clickId": click }),
        json!({ "slug": "jane-deals", "email": email.to_uppercase(), "clickId": click }),
        json!({ "slug": "nobody-here", "email": "x@buyers.example", "clickId": click }),
        json!({ "slug": "jane-deals", "email": "y@buyers.example", "programId": "00000000-0000-0000-0000-000000000000", "clickId": click }),
        // Without the visit, or with another affiliate's, a signup is not Jane's lead.
        json!({ "slug": "jane-deals", "email": "z@buyers.example" }),
        json!({ "slug": "jane-deals", "email": "z@buyers.example", "clickId": bobs }),
        json!({ "slug": "jane-deals", "email": "z@buyers.example", "clickId": format!("rkc_{}", "0".repeat(32)) }),
    ] {
        let answer = lead_signup(&app, &body).await;
        assert_eq!((answer.status, answer.body.clone()), (200, json!({ "ok": true })), "{body}");
        assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    }
    let leads = conversions(&app, &acme.key).await;
    assert_eq!(
        leads.len(),
        1,
        "one lead: the repeat (any case), the unknown slug or program, a missing or foreign click wrote nothing: {leads:#?}"
    );
    assert_eq!((leads[0]["type"].as_str(), leads[0]["affiliateId"].clone()), (Some("LeadReward"), json!(jane)));
    for (body, field) in [
        (json!({ "slug": "jane-deals", "email": "nope" }), "email"),
        (json!({ "slug": "jane-deals", "email": email, "programId": "x" }), "programId"),
        (json!({ "email": email }), "slug"),
        (json!({ "slug": "jane-deals", "email": email, "clickId": "jane-deals" }), "clickId"),
    ] {
        lead_signup(&app, &body).await.expect_field_error(400, "validation_failed", field);
    }

    // A checkout by that customer email, naming no referral, is Jane's through the lead.
    assert_eq!(deliver(&app, &checkout("evt_e2e_lead_sale", "acct_e2e_acme", "", "cus_e2e_m", 10000)).await, "Done|conversion created");
    let sale = conversions(&app, &acme.key).await.into_iter().find(|c| c["type"] == "OneTime").unwrap();
    assert_eq!((sale["affiliateId"].clone(), sale["attributionMethod"].as_str()), (json!(jane), Some("email_match")));
    assert_eq!(sale["commissionCents"], 2000);
    let trace = app.get(&format!("/api/v1/conversions/{}/attribution", id_of(&sale)), &acme.key).await.expect(200)["trace"].clone();
    assert_eq!((trace["rule"].as_str(), trace["emailMatch"]["withinWindow"].as_bool()), (Some("email_match"), Some(true)), "{trace}");

    // A lead older than the cookie window no longer decides.
    lead_signup(&app, &json!({ "slug": "jane-deals", "email": "cus_e2e_old@buyers.example", "clickId": click })).await.expect(200);
    app.execute_sql("UPDATE conversions SET created_at = now() - interval '31 days' WHERE customer_email = 'cus_e2e_old@buyers.example'")
        .await;
    assert_eq!(
        deliver(&app, &checkout("evt_e2e_old_lead", "acct_e2e_acme", "", "cus_e2e_old", 10000)).await,
        "Done|no affiliate is attributed"
    );
}

#[tokio::test]
async fn a_cpl_program_pays_its_fixed_value_for_the_first_lead_of_an_email() {
    let Some(app) = spawn().await else { return };
    let (_, key) = app.org(PlanTier::Growth).await;
    let body = json!({ "name": "Signups", "defaultCommissionType": "Fixed", "defaultCommissionValue": 2.5, "defaultCommissionModel": "Cpl",
                       "landingUrl": LANDING });
    let program = id_of(app.post("/api/v1/programs", &key, &body).await.expect(201));
    let mut clicks = std::collections::HashMap::new();
    for (email, slug) in [("jane@creator.test", "jane-cpl"), ("bob@creator.test", "bob-cpl")] {
        let body = json!({ "programId": program, "email": email, "status": "Approved", "customAlias": slug });
        app.post("/api/v1/affiliates", &key, &body).await.expect(201);
        let click = click_of(&follow(&app, slug).await);
        stored_click(&app, &click).await;
        clicks.insert(slug, click);
    }
    for (slug, email) in [
        ("jane-cpl", "first@buyers.example"),
        ("bob-cpl", "first@buyers.example"),
        ("bob-cpl", "second@buyers.example"),
        ("jane-cpl", "jane@creator.test"),
    ] {
        lead_signup(&app, &json!({ "slug": slug, "email": email, "programId": program, "clickId": clicks[slug] })).await.expect(200);
    }
    let earned = app
        .single_text("SELECT string_agg(customer_email || ':' || commission_minor, ',' ORDER BY customer_email, commission_minor) AS digest FROM conversions".to_owned())
        .await;
    assert_eq!(
        earned, "first@buyers.example:0,first@buyers.example:250,jane@creator.test:0,second@buyers.example:250",
        "2.50 for each email's first lead in the program, nothing for a second affiliate's lead of the same email, \
         nothing for an affiliate's own email (a self-referral)"
    );
    let ledger = app.single_text("SELECT coalesce(sum(commission_minor), 0)::text AS digest FROM ledger_events".to_owned()).await;
    assert_eq!(ledger, "500", "the paid leads are on the ledger");
}

#[tokio::test]
async fn a_cpc_program_pays_each_days_unique_human_clicks_once_as_a_click_reward() {
    let Some(app) = spawn().await else { return };
    let (_, key) = app.org(PlanTier::Growth).await;
    let body = json!({ "name": "Per click", "defaultCommissionType": "Fixed", "defaultCommissionValue": 0.1, "defaultCommissionModel": "Cpc", "landingUrl": LANDING });
    let program = id_of(app.post("/api/v1/programs", &key, &body).await.expect(201));
    let body = json!({ "programId": program, "email": "jane@creator.test", "status": "Approved", "customAlias": "jane-cpc" });
    let jane = id_of(app.post("/api/v1/affiliates", &key, &body).await.expect(201));
    // Three visitors, one of whom comes back, and a crawler: three paid clicks.
    let mut last = String::new();
    for agent in [
        IPHONE,
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
        "Mozilla/5.0 (Windows NT 10.0) Chrome/131.0",
        IPHONE,
        "Googlebot/2.1 (+http://www.google.com/bot.html)",
    ] {
        last = click_of(&app.send(browser().get(app.url("/r/jane-cpc")).header("user-agent", agent)).await);
    }
    stored_click(&app, &last).await;
    assert_eq!(app.count_rows("clicks").await, 5);

    // The UTC day the clicks were stamped on (not "now": the test may straddle midnight).
    let day = app.single_text("SELECT min((clicked_at AT TIME ZONE 'UTC')::date)::text AS digest FROM clicks".to_owned()).await;
    let today = time::Date::parse(&day, time::macros::format_description!("[year]-[month]-[day]")).unwrap();
    assert_eq!(app.services.aggregate_click_rewards(today).await.unwrap(), 1);
    assert_eq!(app.services.aggregate_click_rewards(today).await.unwrap(), 0, "a day is paid once");
    let rewards = conversions(&app, &key).await;
    assert_eq!(rewards.len(), 1, "{rewards:#?}");
    let reward = &rewards[0];
    assert_eq!((reward["type"].as_str(), reward["affiliateId"].clone()), (Some("ClickReward"), json!(jane)));
    assert_eq!((reward["attributionMethod"].as_str(), reward["commissionCents"].as_i64()), (Some("cpc_aggregation"), Some(30)), "3 × 0.10");
    let ledger = app.single_text("SELECT coalesce(sum(commission_minor), 0)::text AS digest FROM ledger_events".to_owned()).await;
    assert_eq!(ledger, "30");
    // Yesterday had no clicks.
    assert_eq!(app.services.aggregate_click_rewards(today.previous_day().unwrap()).await.unwrap(), 0);
}
