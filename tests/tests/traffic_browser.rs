//! Browser tracking end to end over real HTTP and PostgreSQL: the attribution-parameter
//! settings (public defaults, GET/PATCH with every spec code and an audit row), the pixel key
//! and the install snippet, the loader script's headers, the loader's click endpoint (CORS,
//! `text/plain` beacons, custom parameters, other organizations' links) and the no-script pixel.
//! The loader itself runs in Chromium in `tests/browser.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rekomi_domain::kernel::plan::PlanTier;
use rekomi_e2e::app::{id_of, Response, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

const WITHIN: Duration = Duration::from_secs(10);

async fn spawn() -> Option<TestApp> {
    TestApp::spawn_with(|config| config.public_url = Some("https://track.example.com".to_owned())).await
}

/// An organization with a program and an approved affiliate whose link slug is `slug`.
async fn brand(app: &TestApp, slug: &str) -> (String, String, String, String) {
    let (org_id, key) = app.org(PlanTier::Growth).await;
    let program = app.create_program(&key, "Partners").await;
    let program_id = id_of(&program);
    let body = json!({ "programId": program_id, "email": format!("{slug}@creator.test"), "status": "Approved", "customAlias": slug });
    let affiliate = id_of(app.post("/api/v1/affiliates", &key, &body).await.expect(201));
    (org_id, key, program_id, affiliate)
}

async fn click(app: &TestApp, content_type: &str, body: &Value) -> Response {
    let request =
        app.request(Method::POST, "/api/v1/r/click").header("content-type", content_type).header("origin", "https://shop.example.com");
    app.send(request.body(body.to_string())).await
}

async fn wait_for_clicks(app: &TestApp, n: i64) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    while app.count_rows("clicks").await < n {
        assert!(tokio::time::Instant::now() < deadline, "fewer than {n} clicks were written");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

#[tokio::test]
async fn attribution_params_are_validated_audited_and_merged_before_the_defaults() {
    let Some(app) = spawn().await else { return };
    let defaults = app.send(app.request(Method::GET, "/api/v1/settings/attribution-params/defaults")).await;
    let defaults = defaults.expect(200).clone();
    assert_eq!(defaults["defaults"].as_array().unwrap().len(), 16);
    assert_eq!(defaults["defaults"][0], "via");
    assert_eq!(
        (&defaults["maxCustomEntries"], &defaults["maxTotalChars"], &defaults["minParamLength"], &defaults["maxParamLength"]),
        (&json!(10), &json!(256), &json!(2), &json!(32))
    );

    let (org_id, key, _, _) = brand(&app, "jane-deals").await;
    let path = "/api/v1/settings/attribution-params";
    let initial = app.get(path, &key).await.expect(200).clone();
    assert_eq!(initial["custom"], Value::Null);
    assert_eq!(initial["effectiveOrder"], initial["defaults"]);

    let before = app.fingerprints().await;
    let eleven = (0..11).map(|i| format!("p{i}")).collect::<Vec<_>>().join(",");
    app.patch(path, &key, &json!({ "custom": "a".repeat(257) })).await.expect_error(400, "attribution_params_too_long");
    app.patch(path, &key, &json!({ "custom": eleven })).await.expect_error(400, "too_many_attribution_params");
    let invalid = app.patch(path, &key, &json!({ "custom": "ok_one,Bad,x" })).await;
    assert_eq!(invalid.expect_error(400, "invalid_attribution_param")["invalid"], json!(["Bad", "x"]));
    app.patch(path, &key, &json!({ "custom": 7 })).await.expect_field_error(400, "validation_failed", "custom");
    app.patch(path, &key, &json!({})).await.expect_field_error(400, "validation_failed", "custom");
    app.patch(path, &key, &json!({ "custom": "a", "other": 1 })).await.expect_field_error(400, "validation_failed", "other");
    let manager = app.jwt_dashboard(&org_id, "Manager");
    app.patch(path, &manager, &json!({ "custom": "my_aff" })).await.expect_error(403, "insufficient_role");
    assert_eq!(app.fingerprints().await, before, "refused changes write nothing");

    let set = app.patch(path, &key, &json!({ "custom": "my_aff, ref ,brand-ref" })).await.expect(200).clone();
    assert_eq!(set["custom"], "my_aff,ref,brand-ref");
    let order: Vec<&str> = set["effectiveOrder"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(&order[..3], ["my_aff", "brand-ref", "via"]);
    assert_eq!(order.len(), 18, "ref is a default and appears once");
    assert_eq!(app.get(path, &key).await.expect(200)["custom"], "my_aff,ref,brand-ref");
    let audit = app
        .single_text("SELECT coalesce(string_agg(action || ' ' || before::text || ' ' || after::text, ';'), '-') AS digest FROM audit_log WHERE action = 'org.attribution_params_changed'".to_owned())
        .await;
    assert_eq!(audit, r#"org.attribution_params_changed {"custom": null} {"custom": "my_aff,ref,brand-ref"}"#);
    let cleared = app.patch(path, &key, &json!({ "custom": "" })).await.expect(200).clone();
    assert_eq!(cleared["custom"], Value::Null);
    app.patch(path, &key, &json!({ "custom": null })).await.expect(200);
    let changes =
        app.single_text("SELECT count(*)::text AS digest FROM audit_log WHERE action = 'org.attribution_params_changed'".to_owned()).await;
    assert_eq!(changes, "2", "setting then clearing; clearing again changes nothing");

    // Another organization sees its own (default) settings.
    let (_, other_key, _, _) = brand(&app, "gus-globex").await;
    app.patch(path, &key, &json!({ "custom": "my_aff" })).await.expect(200);
    assert_eq!(app.get(path, &other_key).await.expect(200)["custom"], Value::Null);
}

#[tokio::test]
async fn the_install_snippet_embeds_the_program_the_params_and_the_pixel_key_once_provisioned() {
    let Some(app) = spawn().await else { return };
    let (org_id, key, program_id, _) = brand(&app, "jane-deals").await;
    let snippet = app.get("/api/v1/r/install-snippet", &key).await.expect(200).clone();
    assert_eq!(snippet["programId"], json!(program_id));
    assert_eq!((snippet["withPixel"].clone(), snippet["hasCustomAttributionParams"].clone()), (json!(false), json!(false)));
    assert_eq!(
        snippet["snippet"],
        format!("<!-- Rekomi tracking -->\n<script async src=\"https://track.example.com/api/v1/r/loader.js\" data-program-id=\"{program_id}\"></script>\n<noscript>\n <img src=\"https://track.example.com/api/v1/r/c.gif\" width=\"1\" height=\"1\" alt=\"\" />\n</noscript>")
    );

    app.get("/api/v1/r/install-snippet?withPixel=true", &key).await.expect_error(409, "pixel_not_provisioned");
    assert_eq!(app.get("/api/v1/settings/pixel-key", &key).await.expect(200)["pixelPublicKey"], Value::Null);
    let manager = app.jwt_dashboard(&org_id, "Manager");
    app.post_empty("/api/v1/settings/pixel-key", &manager).await.expect_error(403, "insufficient_role");
    let created = app.post_empty("/api/v1/settings/pixel-key", &key).await;
    let pixel = created.expect(201)["pixelPublicKey"].as_str().unwrap().to_owned();
    assert!(pixel.starts_with("rkp_") && pixel.len() == 36, "{pixel}");
    assert_eq!(app.post_empty("/api/v1/settings/pixel-key", &key).await.expect(200)["pixelPublicKey"], json!(pixel), "provisioned once");

    app.patch("/api/v1/settings/attribution-params", &key, &json!({ "custom": "my_aff,brand_ref" })).await.expect(200);
    // A newer program is the default once active; an inactive one is skipped.
    let newer = app.create_program(&key, "Newer").await;
    let newest = app.create_program(&key, "Newest, off").await;
    app.patch(&format!("/api/v1/programs/{}", id_of(&newest)), &key, &json!({ "isActive": false })).await.expect(200);
    let with_pixel = app.get("/api/v1/r/install-snippet?withPixel=true", &key).await.expect(200).clone();
    assert_eq!(with_pixel["programId"], json!(id_of(&newer)));
    assert_eq!(with_pixel["customAttributionParams"], "my_aff,brand_ref");
    let html = with_pixel["snippet"].as_str().unwrap();
    assert!(
        html.contains(&format!("data-program-id=\"{}\" data-rkmi-params=\"my_aff,brand_ref\" data-rekomi-org=\"{pixel}\"", id_of(&newer))),
        "{html}"
    );
    let chosen = app.get(&format!("/api/v1/r/install-snippet?programId={program_id}"), &key).await.expect(200).clone();
    assert_eq!(chosen["programSlug"], json!(app.get(&format!("/api/v1/programs/{program_id}"), &key).await.body["slug"]));

    // Unknown, inactive, another organization's and malformed programs.
    let (_, other_key, other_program, _) = brand(&app, "gus-globex").await;
    app.get(&format!("/api/v1/r/install-snippet?programId={other_program}"), &key).await.expect_error(404, "no_program_found");
    app.get(&format!("/api/v1/r/install-snippet?programId={}", id_of(&newest)), &key).await.expect_error(404, "no_program_found");
    app.get("/api/v1/r/install-snippet?programId=nope", &key).await.expect_field_error(400, "validation_failed", "programId");
    app.get("/api/v1/r/install-snippet?withPixel=maybe", &key).await.expect_field_error(400, "validation_failed", "withPixel");
    app.get("/api/v1/r/install-snippet?withPixel=true", &other_key).await.expect_error(409, "pixel_not_provisioned");
    let (_, empty_key) = app.org(PlanTier::Growth).await;
    app.get("/api/v1/r/install-snippet", &empty_key).await.expect_error(404, "no_program_found");
}

#[tokio::test]
async fn the_loader_is_public_cacheable_javascript() {
    let Some(app) = spawn().await else { return };
    let loader = app.send(app.request(Method::GET, "/api/v1/r/loader.js")).await;
    assert_eq!(loader.status, 200);
    assert_eq!(loader.header("content-type"), Some("text/javascript; charset=utf-8"));
    assert_eq!(loader.header("cache-control"), Some("public, max-age=3600"));
    assert!(loader.text.contains("window.Rekomi = Rekomi"));
}

#[tokio::test]
async fn the_loaders_click_endpoint_records_a_click_for_the_programs_params_only() {
    let Some(app) = spawn().await else { return };
    let (_, key, program_id, jane) = brand(&app, "jane-deals").await;
    let (_, _, other_program, _) = brand(&app, "gus-globex").await;

    // The CORS preflight.
    let preflight = app
        .send(
            app.request(Method::OPTIONS, "/api/v1/r/click")
                .header("origin", "https://shop.example.com")
                .header("access-control-request-method", "POST"),
        )
        .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert_eq!(preflight.header("access-control-allow-headers"), Some("Content-Type"));

    let page = "https://shop.example.com/pricing?utm_source=newsletter&via=jane-deals&sub1=yt";
    let recorded =
        click(&app, "application/json", &json!({ "programId": program_id, "url": page, "referrer": "https://news.example/a" })).await;
    assert_eq!(recorded.header("access-control-allow-origin"), Some("*"));
    let body = recorded.expect(200).clone();
    let click_id = body["clickId"].as_str().unwrap().to_owned();
    assert!(click_id.starts_with("rkc_"));
    assert_eq!(
        (&body["slug"], &body["programId"], &body["cookieWindowDays"], &body["attributionModel"]),
        (&json!("jane-deals"), &json!(program_id), &json!(30), &json!("LastTouch"))
    );
    wait_for_clicks(&app, 1).await;
    let uuid = uuid::Uuid::parse_str(click_id.trim_start_matches("rkc_")).unwrap();
    let row = app
        .single_text(format!(
            "SELECT concat_ws('|', affiliate_id, referrer_host, landing_url, utm_source, sub_id) AS digest FROM clicks WHERE id = '{uuid}'"
        ))
        .await;
    assert_eq!(row, format!("{jane}|news.example|{page}|newsletter|yt"));

    // A beacon's text/plain body is taken too; custom params are looked for first.
    // (A program the tracker has not read yet: it trusts what it read for 5 seconds.)
    app.patch("/api/v1/settings/attribution-params", &key, &json!({ "custom": "my_aff" })).await.expect(200);
    let second = id_of(&app.create_program(&key, "Second").await);
    let custom = click(
        &app,
        "text/plain;charset=UTF-8",
        &json!({ "programId": second, "url": "https://shop.example.com/?via=nobody&my_aff=jane-deals" }),
    )
    .await;
    assert_eq!(custom.expect(200)["slug"], "jane-deals");
    // A Hash link's referral is in the fragment.
    let url = "https://shop.example.com/pricing#via=jane-deals";
    assert_eq!(click(&app, "application/json", &json!({ "programId": program_id, "url": url })).await.expect(200)["slug"], "jane-deals");

    // Nothing to record: no parameter, an unknown slug, another organization's program naming
    // this link, an unknown program.
    for (program, url) in [
        (program_id.as_str(), "https://shop.example.com/pricing"),
        (program_id.as_str(), "https://shop.example.com/?via=nobody-here"),
        (other_program.as_str(), "https://shop.example.com/?via=jane-deals"),
        ("00000000-0000-0000-0000-000000000000", "https://shop.example.com/?via=jane-deals"),
    ] {
        let answer = click(&app, "application/json", &json!({ "programId": program, "url": url })).await;
        assert_eq!(answer.status, 204, "{program} {url}: {}", answer.text);
    }

    // Bad input: 400/413/415 envelopes, with CORS so the loader could read them.
    for (content_type, body, status, code) in [
        ("application/json", "{".to_owned(), 400, "invalid_json"),
        ("application/json", json!({ "programId": "nope", "url": page }).to_string(), 400, "validation_failed"),
        ("application/json", json!({ "programId": program_id, "url": "javascript:alert(1)" }).to_string(), 400, "validation_failed"),
        (
            "application/json",
            json!({ "programId": program_id, "url": format!("https://x.com/?q={}", "a".repeat(2100)) }).to_string(),
            400,
            "validation_failed",
        ),
        ("application/json", json!({ "programId": program_id, "url": page, "extra": 1 }).to_string(), 400, "validation_failed"),
        ("application/xml", "<a/>".to_owned(), 415, "unsupported_media_type"),
        ("application/json", format!("{{\"url\":\"{}\"}}", "a".repeat(70_000)), 413, "payload_too_large"),
    ] {
        let request = app.request(Method::POST, "/api/v1/r/click").header("content-type", content_type).body(body);
        let answer = app.send(request).await;
        answer.expect_error(status, code);
        assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    }
    // One more good click, then exactly the three recorded so far plus it.
    click(&app, "application/json", &json!({ "programId": program_id, "url": page })).await.expect(200);
    wait_for_clicks(&app, 4).await;
    assert_eq!(app.count_rows("clicks").await, 4);
}

#[tokio::test]
async fn the_pixel_always_answers_its_gif_and_records_a_click_from_its_query_or_referer() {
    let Some(app) = spawn().await else { return };
    let (_, _, program_id, _) = brand(&app, "jane-deals").await;
    let gif = |path: &str, referer: Option<&str>| {
        let mut request = app.request(Method::GET, path);
        if let Some(r) = referer {
            request = request.header("referer", r);
        }
        request
    };
    for (path, referer) in [
        ("/api/v1/r/c.gif?via=jane-deals", None),
        ("/api/v1/r/c.gif", Some("https://shop.example.com/landing?ref=jane-deals")),
        (&*format!("/api/v1/r/c.gif?pid={program_id}&via=jane-deals"), None),
        ("/api/v1/r/c.gif", None),
        ("/api/v1/r/c.gif?via=nobody-here", None),
        ("/api/v1/r/c.gif?pid=garbage&via=jane-deals", None),
        ("/api/v1/r/c.gif?via=%FF%FE", Some("not a url")),
    ] {
        let answer = app.send(gif(path, referer)).await;
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.header("content-type"), Some("image/gif"), "{path}");
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{path}");
        assert!(answer.text.as_bytes().starts_with(b"GIF89a"), "{path}");
    }
    wait_for_clicks(&app, 3).await;
    let referred = app.single_text("SELECT landing_url AS digest FROM clicks WHERE landing_url IS NOT NULL".to_owned()).await;
    assert_eq!(referred, "https://shop.example.com/landing?ref=jane-deals");
    // One more, and no others were queued.
    app.send(gif("/api/v1/r/c.gif?via=jane-deals", None)).await;
    wait_for_clicks(&app, 4).await;
    assert_eq!(app.count_rows("clicks").await, 4);
}

#[tokio::test]
async fn a_short_links_landing_page_reuses_its_click_and_a_visitors_parameter_cannot_redirect_it() {
    let Some(app) = spawn().await else { return };
    let (_, key, program_id, _) = brand(&app, "jane-deals").await;
    app.patch(&format!("/api/v1/programs/{program_id}"), &key, &json!({ "landingUrl": "https://shop.example.com/pricing" }))
        .await
        .expect(200);
    let body = json!({ "programId": program_id, "email": "mallory@creator.test", "status": "Approved", "customAlias": "mallory" });
    app.post("/api/v1/affiliates", &key, &body).await.expect(201);
    app.patch("/api/v1/settings/attribution-params", &key, &json!({ "custom": "my_aff" })).await.expect(200);

    // A visitor follows Jane's Short link with a parameter of their own that names Mallory.
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().unwrap();
    let answer = app.send(no_redirects.get(app.url("/r/jane-deals?my_aff=mallory"))).await;
    assert_eq!(answer.status, 302, "{}", answer.text);
    let landing = answer.header("location").unwrap().to_owned();
    let short_click = url::Url::parse(&landing).unwrap().query_pairs().find(|(k, _)| k == "rk_click").unwrap().1.into_owned();
    wait_for_clicks(&app, 1).await;

    // The loader on the landing page reports the visit: it is the Short link's click, Jane's.
    let seen = click(&app, "application/json", &json!({ "programId": program_id, "url": landing })).await;
    let seen = seen.expect(200).clone();
    assert_eq!((seen["clickId"].as_str(), seen["slug"].as_str()), (Some(short_click.as_str()), Some("jane-deals")), "{seen}");
    // A forged click id is judged like any other visit (here by the custom parameter).
    let forged = landing.replace(&short_click[4..], &"0".repeat(32));
    let other = click(&app, "application/json", &json!({ "programId": program_id, "url": forged })).await.expect(200).clone();
    assert_ne!(other["clickId"], json!(short_click));
    wait_for_clicks(&app, 2).await;
    assert_eq!(app.count_rows("clicks").await, 2, "the landing page counted no second click for the Short link");
}

#[tokio::test]
async fn concurrent_pixel_key_requests_provision_one_key() {
    let Some(app) = spawn().await else { return };
    let (_, key, _, _) = brand(&app, "jane-deals").await;
    let answers = concurrent_provisioning(&app, &key, 10).await;
    let created = answers.iter().filter(|(status, _)| *status == 201).count();
    let mut keys: Vec<&str> = answers.iter().map(|(_, k)| k.as_str()).collect();
    keys.dedup();
    assert_eq!((created, keys.len()), (1, 1), "{answers:?}");
    let audits =
        app.single_text("SELECT count(*)::text AS digest FROM audit_log WHERE action = 'org.pixel_key_provisioned'".to_owned()).await;
    assert_eq!(audits, "1");
}

/// `n` concurrent `POST /api/v1/settings/pixel-key`: (status, key) each.
async fn concurrent_provisioning(app: &TestApp, key: &str, n: usize) -> Vec<(u16, String)> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let request = app.request(Method::POST, "/api/v1/settings/pixel-key").bearer_auth(key);
        tasks.spawn(request.send());
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let response = done.unwrap().unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        out.push((status, body["pixelPublicKey"].as_str().unwrap().to_owned()));
    }
    out
}
