//! Bad input over HTTP, as tables over every endpoint that takes a body, a path id or query
//! parameters: each case names the answer it must get (status, `error`, `field`), none may be
//! a 500, and after each one no row of `programs`, `affiliates`, `affiliate_links`,
//! `campaign_coupons`, `affiliate_coupons` or `audit_log` has changed and nothing reached
//! Stripe. Every mismatch of a table is reported at once.
//!
//! Longer than 600 lines: the matrix of refused inputs is one table per kind of input, kept
//! together so a new endpoint is added to every table at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rekomi_domain::kernel::plan::PlanTier;
use rekomi_domain::orgs::ApiKeyScope;
use rekomi_e2e::app::{id_of, merge, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

/// What a case sends as its body.
#[derive(Clone, Debug)]
enum Body {
    None,
    /// Serialized, with `Content-Type: application/json`.
    Json(Value),
    /// As is, with this `Content-Type` (or none).
    Raw(Option<&'static str>, Vec<u8>),
}

#[derive(Clone, Debug)]
struct Case {
    what: String,
    method: Method,
    path: String,
    token: String,
    body: Body,
    status: u16,
    code: &'static str,
    /// `Some(name)`: the envelope must name it; `None`: not checked.
    field: Option<String>,
}

/// A Growth organization with one of everything, and the valid body of each endpoint.
struct Fixture {
    keys: Vec<String>,
    affiliate_token: String,
    program: String,
    affiliate: String,
    pending: String,
    coupon: String,
    self_mint_coupon: String,
    code: String,
}

async fn fixture(app: &TestApp) -> Fixture {
    let (org, key) = app.org(PlanTier::Growth).await;
    let program = id_of(&app.create_program(&key, "Default program").await);
    let affiliate = id_of(&app.create_affiliate(&key, &program, "sarah@creator.com", "Approved").await);
    let pending = id_of(&app.create_affiliate(&key, &program, "pat@creator.com", "Pending").await);
    let coupon =
        id_of(&app.create_campaign_coupon(&key, &program, json!({"maxRedemptionsPerCode": 10, "expiresAt": "2099-12-31T23:59:59Z"})).await);
    let self_mint_coupon =
        id_of(&app.create_campaign_coupon(&key, &program, json!({"name": "Open", "allowAffiliateSelfMint": true})).await);
    let code = id_of(&app.create_code(&key, &affiliate, &coupon, Some("SARAH20")).await);
    // Spread the cases over keys so the 600/min limit never interferes.
    let mut keys = vec![key];
    for _ in 0..2 {
        keys.push(app.api_key(&org, ApiKeyScope::ReadWrite).await);
    }
    let affiliate_token = app.jwt_affiliate("user_sarah", "sarah@creator.com");
    Fixture { keys, affiliate_token, program, affiliate, pending, coupon, self_mint_coupon, code }
}

/// A JSON endpoint and a body it accepts.
struct Endpoint {
    name: &'static str,
    method: Method,
    path: String,
    affiliate_side: bool,
    valid: Value,
}

impl Fixture {
    fn endpoints(&self) -> Vec<Endpoint> {
        let (p, a, c) = (&self.program, &self.affiliate, &self.coupon);
        let brand = |name, method, path: String, valid| Endpoint { name, method, path, affiliate_side: false, valid };
        vec![
            brand(
                "POST programs",
                Method::POST,
                "/api/v1/programs".into(),
                json!({"name": "Spring", "defaultCommissionType": "Percentage", "defaultCommissionValue": 10}),
            ),
            brand("PATCH programs", Method::PATCH, format!("/api/v1/programs/{p}"), json!({"name": "Renamed"})),
            brand("POST affiliates", Method::POST, "/api/v1/affiliates".into(), json!({"programId": p, "email": "new@creator.com"})),
            brand("PATCH affiliates", Method::PATCH, format!("/api/v1/affiliates/{a}"), json!({"notes": "hello"})),
            brand(
                "bulk-action",
                Method::POST,
                "/api/v1/affiliates/bulk-action".into(),
                json!({"affiliateIds": [self.pending], "action": "approve"}),
            ),
            brand("approve", Method::POST, format!("/api/v1/affiliates/{}/approve", self.pending), json!({})),
            brand("reject", Method::POST, format!("/api/v1/affiliates/{}/reject", self.pending), json!({"reason": "not a fit"})),
            brand(
                "POST campaign coupons",
                Method::POST,
                format!("/api/v1/campaigns/{p}/coupons"),
                json!({"name": "X", "discountType": "PercentOff", "discountValue": 20, "duration": "Once"}),
            ),
            brand("PATCH campaign coupons", Method::PATCH, format!("/api/v1/campaigns/{p}/coupons/{c}"), json!({"name": "Renamed"})),
            brand(
                "POST affiliate coupons",
                Method::POST,
                format!("/api/v1/affiliates/{a}/coupons"),
                json!({"campaignCouponId": c, "code": "NEW20"}),
            ),
            Endpoint {
                name: "self-mint",
                method: Method::POST,
                path: "/api/me/coupons/mint".into(),
                affiliate_side: true,
                valid: json!({"campaignCouponId": self.self_mint_coupon, "code": "NEW21"}),
            },
        ]
    }

    fn endpoint(&self, name: &str) -> Endpoint {
        self.endpoints().into_iter().find(|e| e.name == name).unwrap_or_else(|| panic!("no endpoint {name}"))
    }

    fn token(&self, endpoint: &Endpoint) -> String {
        if endpoint.affiliate_side {
            self.affiliate_token.clone()
        } else {
            self.keys[0].clone()
        }
    }

    /// A case sending `endpoint`'s valid body with `edit` merged in.
    fn edited(&self, endpoint: &str, edit: Value, status: u16, code: &'static str, field: &str) -> Case {
        let e = self.endpoint(endpoint);
        let mut body = e.valid.clone();
        merge(&mut body, edit.clone());
        Case {
            what: format!("{} with {edit}", e.name),
            method: e.method.clone(),
            token: self.token(&e),
            path: e.path,
            body: Body::Json(body),
            status,
            code,
            field: Some(field.to_owned()),
        }
    }

    /// `edited` expecting `400 validation_failed` on `field`.
    fn invalid(&self, endpoint: &str, edit: Value, field: &str) -> Case {
        self.edited(endpoint, edit, 400, "validation_failed", field)
    }

    /// A case sending `endpoint`'s valid body without the key `field`.
    fn without(&self, endpoint: &str, field: &str) -> Case {
        let e = self.endpoint(endpoint);
        let mut body = e.valid.clone();
        body.as_object_mut().unwrap().remove(field);
        Case {
            what: format!("{} without {field}", e.name),
            method: e.method.clone(),
            token: self.token(&e),
            path: e.path,
            body: Body::Json(body),
            status: 400,
            code: "validation_failed",
            field: Some(field.to_owned()),
        }
    }

    /// A GET (or body-less) request expecting `400 validation_failed` on `field`.
    fn request(&self, method: Method, path: String, field: &str) -> Case {
        Case {
            what: format!("{method} {path}"),
            method,
            path,
            token: self.keys[0].clone(),
            body: Body::None,
            status: 400,
            code: "validation_failed",
            field: Some(field.to_owned()),
        }
    }

    /// A request with a valid body of `endpoint` sent to another path, expecting a 400 on `field`.
    fn at_path(&self, endpoint: &str, path: String, field: &str) -> Case {
        let e = self.endpoint(endpoint);
        Case {
            what: format!("{} at {path}", e.name),
            method: e.method.clone(),
            token: self.token(&e),
            path,
            body: Body::Json(e.valid),
            status: 400,
            code: "validation_failed",
            field: Some(field.to_owned()),
        }
    }
}

/// Runs every case, checking after each that no row changed; fails listing every mismatch.
async fn run(app: &TestApp, fx: &Fixture, cases: Vec<Case>) {
    let mut rows = app.fingerprints().await;
    let counts = app.counts().await;
    let stripe = app.stripe.request_count();
    let mut wrong = Vec::new();
    let total = cases.len();
    for (i, case) in cases.into_iter().enumerate() {
        let token = if fx.keys.contains(&case.token) { fx.keys[i % fx.keys.len()].clone() } else { case.token.clone() };
        let mut request = app.request(case.method.clone(), &case.path).bearer_auth(&token);
        request = match &case.body {
            Body::None => request,
            Body::Json(value) => request.json(value),
            Body::Raw(content_type, bytes) => {
                let request = request.body(bytes.clone());
                match content_type {
                    Some(content_type) => request.header("content-type", *content_type),
                    None => request,
                }
            }
        };
        let answer = app.send(request).await;
        let field_ok = case.field.as_deref().is_none_or(|f| answer.field() == Some(f));
        if answer.status >= 500 || answer.status != case.status || answer.error_code() != Some(case.code) || !field_ok {
            let expected = format!("{} {} {}", case.status, case.code, case.field.as_deref().unwrap_or("(any field)"));
            let text: String = answer.text.chars().take(300).collect();
            wrong.push(format!("{} {} — {}: expected {expected}, got {} {text}", case.method, case.path, case.what, answer.status));
        }
        let now = app.fingerprints().await;
        if now != rows {
            let changed: Vec<&str> = rows.iter().zip(&now).filter(|(a, b)| a != b).map(|(a, _)| a.0).collect();
            wrong.push(format!("{} {} — {}: CHANGED ROWS of {changed:?}", case.method, case.path, case.what));
            // Judge the next cases against the new state.
            rows = now;
        }
    }
    assert!(wrong.is_empty(), "{} problems in {total} cases:\n{}", wrong.len(), wrong.join("\n"));
    assert_eq!(app.counts().await, counts);
    assert_eq!(app.stripe.request_count(), stripe, "refused input reached Stripe");
}

#[tokio::test]
async fn malformed_oversized_and_untyped_bodies_are_refused_on_every_json_endpoint() {
    let Some(app) = TestApp::spawn().await else { return };
    let fx = fixture(&app).await;
    let mut cases = Vec::new();
    for e in fx.endpoints() {
        let token = fx.token(&e);
        let case = |what: &str, body: Body, status: u16, code: &'static str, field: Option<&str>| Case {
            what: format!("{}: {what}", e.name),
            method: e.method.clone(),
            path: e.path.clone(),
            token: token.clone(),
            body,
            status,
            code,
            field: field.map(str::to_owned),
        };
        let json_ct = Some("application/json");
        let valid = serde_json::to_vec(&e.valid).unwrap();
        let unterminated = match e.valid.as_object().and_then(|o| o.keys().next()) {
            Some(key) => format!(r#"{{"{key}": "abc"#),
            None => r#"{"abc"#.to_owned(),
        };
        let mut huge = e.valid.clone();
        merge(&mut huge, json!({"padding": "x".repeat(70 * 1024)}));
        cases.extend([
            case("truncated JSON", Body::Raw(json_ct, valid[..valid.len() - 1].to_vec()), 400, "invalid_json", None),
            case("an unterminated string", Body::Raw(json_ct, unterminated.into_bytes()), 400, "invalid_json", None),
            case("not JSON", Body::Raw(json_ct, b"name=Spring".to_vec()), 400, "invalid_json", None),
            case("trailing garbage", Body::Raw(json_ct, [valid.clone(), b"}".to_vec()].concat()), 400, "invalid_json", None),
            case("null", Body::Raw(json_ct, b"null".to_vec()), 400, "validation_failed", None),
            case("a string", Body::Raw(json_ct, br#""hello""#.to_vec()), 400, "validation_failed", None),
            case("an empty array", Body::Raw(json_ct, b"[]".to_vec()), 400, "validation_failed", None),
            case(
                "an unknown field",
                Body::Json({
                    let mut b = e.valid.clone();
                    merge(&mut b, json!({"unexpectedField": 1}));
                    b
                }),
                400,
                "validation_failed",
                Some("unexpectedField"),
            ),
            case(
                "a misspelled field",
                Body::Json({
                    let mut b = e.valid.clone();
                    merge(&mut b, json!({"Name": "x"}));
                    b
                }),
                400,
                "validation_failed",
                Some("Name"),
            ),
            case("a body over 64 KiB", Body::Json(huge), 413, "payload_too_large", None),
            case("no Content-Type", Body::Raw(None, valid.clone()), 415, "unsupported_media_type", None),
            case("text/plain", Body::Raw(Some("text/plain"), valid.clone()), 415, "unsupported_media_type", None),
            case(
                "form encoded",
                Body::Raw(Some("application/x-www-form-urlencoded"), b"name=Spring".to_vec()),
                415,
                "unsupported_media_type",
                None,
            ),
        ]);
        if !matches!(e.name, "approve" | "reject") {
            cases.push(case("an empty body", Body::Raw(json_ct, Vec::new()), 400, "invalid_json", None));
        }
    }
    run(&app, &fx, cases).await;
}

#[tokio::test]
async fn a_json_array_is_not_accepted_as_an_object_with_its_fields_in_order() {
    let Some(app) = TestApp::spawn().await else { return };
    let fx = fixture(&app).await;
    // serde lets a struct be read from a sequence of its fields in declaration order; the API's
    // bodies are objects, so a positional array must be refused like any other wrong type.
    let mut cases = Vec::new();
    for (endpoint, positional) in [
        ("POST programs", json!(["Array program", null, null, null, "Percentage", 10, null, null, null, null, null, null, null, null])),
        ("PATCH programs", json!(["Renamed by array"])),
        ("POST affiliates", json!([fx.program, "array@creator.com", null, null, null, null, null])),
        ("PATCH campaign coupons", json!(["Renamed by array", null, null])),
        ("POST affiliate coupons", json!([fx.coupon, "ARRAY20", null, null, null, null, null, null, null, null])),
        ("bulk-action", json!([[fx.pending], "approve"])),
        ("self-mint", json!([fx.self_mint_coupon, "ARRAY21"])),
    ] {
        let e = fx.endpoint(endpoint);
        cases.push(Case {
            what: format!("{endpoint} with the positional array {positional}"),
            method: e.method.clone(),
            token: fx.token(&e),
            path: e.path,
            body: Body::Json(positional),
            status: 400,
            code: "validation_failed",
            field: None,
        });
    }
    run(&app, &fx, cases).await;
}

#[tokio::test]
async fn wrong_types_unknown_enum_values_and_missing_fields_are_refused_naming_the_field() {
    let Some(app) = TestApp::spawn().await else { return };
    let fx = fixture(&app).await;
    let cases = vec![
        // programs
        fx.invalid("POST programs", json!({"name": 5}), "name"),
        fx.invalid("POST programs", json!({"defaultCommissionValue": "20"}), "defaultCommissionValue"),
        fx.invalid("POST programs", json!({"defaultCommissionType": "Bogus"}), "defaultCommissionType"),
        fx.invalid("POST programs", json!({"defaultCommissionType": "percentage"}), "defaultCommissionType"),
        fx.invalid("POST programs", json!({"defaultCommissionModel": "Cpx"}), "defaultCommissionModel"),
        fx.invalid("POST programs", json!({"attributionModel": "MiddleTouch"}), "attributionModel"),
        fx.invalid("POST programs", json!({"networkVisibility": "Public"}), "networkVisibility"),
        fx.invalid("POST programs", json!({"cookieWindowDays": "30"}), "cookieWindowDays"),
        fx.invalid("POST programs", json!({"cookieWindowDays": 30.5}), "cookieWindowDays"),
        fx.invalid("POST programs", json!({"autoApprove": "yes"}), "autoApprove"),
        fx.invalid("POST programs", json!({"isPubliclyDiscoverable": 1}), "isPubliclyDiscoverable"),
        fx.invalid("POST programs", json!({"name": null}), "name"),
        fx.without("POST programs", "name"),
        fx.without("POST programs", "defaultCommissionType"),
        fx.without("POST programs", "defaultCommissionValue"),
        fx.edited("POST programs", json!({"defaultCommissionModel": "Cpa"}), 400, "unsupported_value", "defaultCommissionModel"),
        fx.invalid("PATCH programs", json!({"isActive": "yes"}), "isActive"),
        fx.invalid("PATCH programs", json!({"networkVisibility": "Public"}), "networkVisibility"),
        fx.invalid("PATCH programs", json!({"attributionModel": 1}), "attributionModel"),
        fx.invalid("PATCH programs", json!({"name": ["x"]}), "name"),
        // affiliates
        fx.invalid("POST affiliates", json!({"email": 42}), "email"),
        fx.invalid("POST affiliates", json!({"status": "Bogus"}), "status"),
        fx.edited("POST affiliates", json!({"status": "Banned"}), 400, "unsupported_value", "status"),
        fx.invalid("POST affiliates", json!({"customCommissionType": "Bogus", "customCommissionValue": 5}), "customCommissionType"),
        fx.without("POST affiliates", "email"),
        fx.without("POST affiliates", "programId"),
        fx.invalid("PATCH affiliates", json!({"status": "Deleted"}), "status"),
        fx.invalid("PATCH affiliates", json!({"tags": "vip"}), "tags"),
        fx.invalid("PATCH affiliates", json!({"tags": [1]}), "tags[0]"),
        fx.invalid("PATCH affiliates", json!({"notes": 5}), "notes"),
        fx.invalid("bulk-action", json!({"action": "explode"}), "action"),
        fx.invalid("bulk-action", json!({"action": 1}), "action"),
        fx.invalid("bulk-action", json!({"affiliateIds": fx.pending}), "affiliateIds"),
        fx.without("bulk-action", "action"),
        fx.invalid("reject", json!({"reason": 5}), "reason"),
        fx.invalid("approve", json!({"note": "ok"}), "note"),
        // campaign coupons
        fx.invalid("POST campaign coupons", json!({"discountType": "Free"}), "discountType"),
        fx.invalid("POST campaign coupons", json!({"discountType": "percentOff"}), "discountType"),
        fx.invalid("POST campaign coupons", json!({"duration": "Weekly"}), "duration"),
        fx.invalid("POST campaign coupons", json!({"discountValue": "20"}), "discountValue"),
        fx.invalid("POST campaign coupons", json!({"discountValue": 20.5}), "discountValue"),
        fx.invalid("POST campaign coupons", json!({"maxRedemptionsPerCode": "many"}), "maxRedemptionsPerCode"),
        fx.invalid("POST campaign coupons", json!({"allowAffiliateSelfMint": "yes"}), "allowAffiliateSelfMint"),
        fx.invalid("POST campaign coupons", json!({"expiresAt": 1_900_000_000}), "expiresAt"),
        fx.invalid("POST campaign coupons", json!({"expiresAt": "next tuesday"}), "expiresAt"),
        fx.invalid("POST campaign coupons", json!({"stripeCouponId": "Z4OV52SU"}), "stripeCouponId"),
        fx.without("POST campaign coupons", "discountType"),
        fx.without("POST campaign coupons", "discountValue"),
        fx.without("POST campaign coupons", "duration"),
        fx.without("POST campaign coupons", "name"),
        fx.invalid("PATCH campaign coupons", json!({"name": 5}), "name"),
        fx.invalid("PATCH campaign coupons", json!({"discountValue": 30}), "discountValue"),
        fx.invalid("PATCH campaign coupons", json!({"discountCurrency": "USD"}), "discountCurrency"),
        fx.invalid("PATCH campaign coupons", json!({"isActive": true}), "isActive"),
        fx.invalid("PATCH campaign coupons", json!({"overridesClickAttribution": "no"}), "overridesClickAttribution"),
        // a key twice
        Case {
            what: "a duplicated key".into(),
            method: Method::POST,
            path: "/api/v1/programs".into(),
            token: fx.keys[0].clone(),
            body: Body::Raw(
                Some("application/json"),
                br#"{"name": "A", "name": "B", "defaultCommissionType": "Percentage", "defaultCommissionValue": 10}"#.to_vec(),
            ),
            status: 400,
            code: "validation_failed",
            field: Some("name".into()),
        },
        // affiliate coupons
        fx.invalid("POST affiliate coupons", json!({"code": 20}), "code"),
        fx.invalid("POST affiliate coupons", json!({"firstTimeOrder": "yes"}), "firstTimeOrder"),
        fx.invalid("POST affiliate coupons", json!({"minimumAmount": "5000", "minimumAmountCurrency": "USD"}), "minimumAmount"),
        fx.invalid("POST affiliate coupons", json!({"maxRedemptions": 1.5}), "maxRedemptions"),
        fx.invalid("POST affiliate coupons", json!({"stripePromotionCodeId": "promo_x"}), "stripePromotionCodeId"),
        fx.without("POST affiliate coupons", "campaignCouponId"),
        // self-mint
        fx.without("self-mint", "code"),
        fx.without("self-mint", "campaignCouponId"),
        fx.invalid("self-mint", json!({"code": null}), "code"),
        fx.invalid("self-mint", json!({"code": 21}), "code"),
        fx.invalid("self-mint", json!({"affiliateId": fx.affiliate}), "affiliateId"),
    ];
    run(&app, &fx, cases).await;
}

#[tokio::test]
async fn invalid_uuids_in_paths_bodies_and_queries_are_refused_naming_the_parameter() {
    let Some(app) = TestApp::spawn().await else { return };
    let fx = fixture(&app).await;
    let (p, a, c) = (fx.program.clone(), fx.affiliate.clone(), fx.coupon.clone());
    let bad = "not-a-uuid";
    let cases = vec![
        // paths
        fx.request(Method::GET, format!("/api/v1/programs/{bad}"), "id"),
        fx.at_path("PATCH programs", format!("/api/v1/programs/{bad}"), "id"),
        fx.request(Method::DELETE, format!("/api/v1/programs/{bad}"), "id"),
        fx.request(Method::GET, "/api/v1/programs/123".to_owned(), "id"),
        // A Stripe event id of another kind, or outside Stripe's alphabet.
        fx.request(Method::POST, "/api/v1/webhooks/stripe/events/in_1/replay".to_owned(), "id"),
        fx.request(Method::POST, "/api/v1/webhooks/stripe/events/evt-1/replay".to_owned(), "id"),
        fx.request(Method::GET, format!("/api/v1/affiliates/{bad}"), "id"),
        fx.at_path("PATCH affiliates", format!("/api/v1/affiliates/{bad}"), "id"),
        fx.request(Method::POST, format!("/api/v1/affiliates/{bad}/approve"), "id"),
        fx.request(Method::POST, format!("/api/v1/affiliates/{bad}/reject"), "id"),
        fx.request(Method::GET, format!("/api/v1/campaigns/{bad}/coupons"), "programId"),
        fx.at_path("POST campaign coupons", format!("/api/v1/campaigns/{bad}/coupons"), "programId"),
        fx.request(Method::GET, format!("/api/v1/campaigns/{p}/coupons/{bad}"), "id"),
        fx.request(Method::GET, format!("/api/v1/campaigns/{bad}/coupons/{c}"), "programId"),
        fx.at_path("PATCH campaign coupons", format!("/api/v1/campaigns/{p}/coupons/{bad}"), "id"),
        fx.at_path("PATCH campaign coupons", format!("/api/v1/campaigns/{bad}/coupons/{c}"), "programId"),
        fx.request(Method::POST, format!("/api/v1/campaigns/{p}/coupons/{bad}/archive"), "id"),
        fx.request(Method::DELETE, format!("/api/v1/campaigns/{p}/coupons/{bad}"), "id"),
        fx.request(Method::DELETE, format!("/api/v1/campaigns/{bad}/coupons/{c}"), "programId"),
        fx.request(Method::GET, format!("/api/v1/affiliates/{bad}/coupons"), "affiliateId"),
        fx.at_path("POST affiliate coupons", format!("/api/v1/affiliates/{bad}/coupons"), "affiliateId"),
        fx.request(Method::DELETE, format!("/api/v1/affiliates/{a}/coupons/{bad}"), "id"),
        fx.request(Method::DELETE, format!("/api/v1/affiliates/{bad}/coupons/{}", fx.code), "affiliateId"),
        // bodies
        fx.invalid("POST affiliates", json!({"programId": bad}), "programId"),
        fx.invalid("POST affiliates", json!({"programId": 7}), "programId"),
        fx.invalid("bulk-action", json!({"affiliateIds": [fx.pending, bad]}), "affiliateIds[1]"),
        fx.invalid("POST affiliate coupons", json!({"campaignCouponId": bad}), "campaignCouponId"),
        fx.invalid("POST affiliate coupons", json!({"campaignCouponId": null}), "campaignCouponId"),
        fx.invalid("self-mint", json!({"campaignCouponId": bad}), "campaignCouponId"),
        // queries
        fx.request(Method::GET, format!("/api/v1/affiliates?programId={bad}"), "programId"),
        fx.request(Method::GET, format!("/api/v1/promotional-codes?id={bad}"), "id"),
        fx.request(Method::GET, format!("/api/v1/promotional-codes?couponId={bad}"), "couponId"),
        fx.request(Method::GET, format!("/api/v1/promotional-codes?affiliateId={bad}"), "affiliateId"),
    ];
    run(&app, &fx, cases).await;
}

#[tokio::test]
async fn out_of_range_values_are_refused_naming_the_field() {
    let Some(app) = TestApp::spawn().await else { return };
    let fx = fixture(&app).await;
    let many: Vec<String> = (0..201).map(|i| format!("00000000-0000-7000-8000-{i:012}")).collect();
    let cases = vec![
        // programs
        fx.invalid("POST programs", json!({"name": ""}), "name"),
        fx.invalid("POST programs", json!({"name": "   "}), "name"),
        fx.invalid("POST programs", json!({"name": "x".repeat(201)}), "name"),
        fx.invalid("POST programs", json!({"defaultCommissionValue": 100.5}), "defaultCommissionValue"),
        fx.invalid("POST programs", json!({"defaultCommissionValue": 1.234}), "defaultCommissionValue"),
        fx.invalid("POST programs", json!({"defaultCommissionValue": -1}), "defaultCommissionValue"),
        fx.invalid(
            "POST programs",
            json!({"defaultCommissionType": "Fixed", "defaultCommissionValue": 1_000_000.01}),
            "defaultCommissionValue",
        ),
        fx.invalid("POST programs", json!({"cookieWindowDays": 0}), "cookieWindowDays"),
        fx.invalid("POST programs", json!({"cookieWindowDays": 366}), "cookieWindowDays"),
        fx.invalid("POST programs", json!({"recurringMonths": 121}), "recurringMonths"),
        fx.invalid("POST programs", json!({"recurringMonths": -1}), "recurringMonths"),
        fx.invalid("POST programs", json!({"recurringDelayInvoices": 121}), "recurringDelayInvoices"),
        fx.invalid("POST programs", json!({"slug": "Not A Slug!"}), "slug"),
        fx.invalid("POST programs", json!({"termsUrl": "not a url"}), "termsUrl"),
        fx.invalid("POST programs", json!({"description": "x".repeat(2001)}), "description"),
        fx.invalid("PATCH programs", json!({"name": ""}), "name"),
        fx.invalid("PATCH programs", json!({"cookieWindowDays": 0}), "cookieWindowDays"),
        fx.invalid("PATCH programs", json!({"recurringMonths": -2}), "recurringMonths"),
        fx.invalid("PATCH programs", json!({"recurringMonths": 121}), "recurringMonths"),
        fx.invalid("PATCH programs", json!({"defaultCommissionValue": 100.01}), "defaultCommissionValue"),
        fx.invalid("PATCH programs", json!({"customDomain": "not a domain"}), "customDomain"),
        // affiliates
        fx.invalid("POST affiliates", json!({"email": "not-an-email"}), "email"),
        fx.invalid("POST affiliates", json!({"email": ""}), "email"),
        fx.invalid("POST affiliates", json!({"fullName": "x".repeat(201)}), "fullName"),
        fx.invalid("POST affiliates", json!({"customAlias": "No Spaces"}), "customAlias"),
        fx.invalid("POST affiliates", json!({"customAlias": "ab"}), "customAlias"),
        fx.invalid("POST affiliates", json!({"customCommissionType": "Percentage"}), "customCommissionValue"),
        fx.invalid("POST affiliates", json!({"customCommissionValue": 10}), "customCommissionType"),
        fx.invalid("POST affiliates", json!({"customCommissionType": "Percentage", "customCommissionValue": 101}), "customCommissionValue"),
        fx.invalid(
            "PATCH affiliates",
            json!({"tags": vec!["t"; 21].iter().enumerate().map(|(i, t)| format!("{t}{i}")).collect::<Vec<_>>()}),
            "tags",
        ),
        fx.invalid("PATCH affiliates", json!({"tags": ["x".repeat(51)]}), "tags"),
        fx.invalid("PATCH affiliates", json!({"tags": [""]}), "tags"),
        fx.invalid("PATCH affiliates", json!({"notes": "x".repeat(5001)}), "notes"),
        fx.invalid("PATCH affiliates", json!({"customCommissionType": "Fixed", "customCommissionValue": -5}), "customCommissionValue"),
        fx.invalid("PATCH affiliates", json!({"customCommissionType": "Fixed"}), "customCommissionValue"),
        fx.invalid("bulk-action", json!({"affiliateIds": []}), "affiliateIds"),
        fx.invalid("bulk-action", json!({"affiliateIds": many}), "affiliateIds"),
        fx.invalid("reject", json!({"reason": "x".repeat(1001)}), "reason"),
        // campaign coupons
        fx.invalid("POST campaign coupons", json!({"discountValue": 0}), "discountValue"),
        fx.invalid("POST campaign coupons", json!({"discountValue": 101}), "discountValue"),
        fx.invalid("POST campaign coupons", json!({"discountValue": -20}), "discountValue"),
        fx.invalid("POST campaign coupons", json!({"discountCurrency": "USD"}), "discountCurrency"),
        fx.invalid("POST campaign coupons", json!({"discountType": "AmountOff", "discountValue": 500}), "discountCurrency"),
        fx.invalid(
            "POST campaign coupons",
            json!({"discountType": "AmountOff", "discountValue": 0, "discountCurrency": "USD"}),
            "discountValue",
        ),
        fx.invalid(
            "POST campaign coupons",
            json!({"discountType": "AmountOff", "discountValue": 100_000_000, "discountCurrency": "USD"}),
            "discountValue",
        ),
        fx.edited(
            "POST campaign coupons",
            json!({"discountType": "AmountOff", "discountValue": 500, "discountCurrency": "XYZ"}),
            400,
            "unsupported_currency",
            "discountCurrency",
        ),
        fx.invalid("POST campaign coupons", json!({"duration": "Repeating", "durationInMonths": 95}), "durationInMonths"),
        fx.invalid("POST campaign coupons", json!({"duration": "Repeating", "durationInMonths": 0}), "durationInMonths"),
        fx.invalid("POST campaign coupons", json!({"duration": "Repeating"}), "durationInMonths"),
        fx.invalid("POST campaign coupons", json!({"duration": "Once", "durationInMonths": 3}), "durationInMonths"),
        fx.invalid("POST campaign coupons", json!({"expiresAt": "2020-01-01T00:00:00Z"}), "expiresAt"),
        fx.invalid("POST campaign coupons", json!({"maxRedemptionsPerCode": 0}), "maxRedemptionsPerCode"),
        fx.invalid("POST campaign coupons", json!({"name": ""}), "name"),
        fx.invalid("POST campaign coupons", json!({"name": "x".repeat(201)}), "name"),
        fx.invalid("PATCH campaign coupons", json!({"name": ""}), "name"),
        fx.invalid("PATCH campaign coupons", json!({"name": "x".repeat(201)}), "name"),
        // affiliate coupons (the campaign coupon caps codes at 10 redemptions, until 2099-12-31)
        fx.invalid("POST affiliate coupons", json!({"code": "AB"}), "code"),
        fx.invalid("POST affiliate coupons", json!({"code": "X".repeat(33)}), "code"),
        fx.invalid("POST affiliate coupons", json!({"code": "SARAH 20"}), "code"),
        fx.invalid("POST affiliate coupons", json!({"code": "ÉTÉ20"}), "code"),
        fx.invalid("POST affiliate coupons", json!({"code": ""}), "code"),
        fx.invalid("POST affiliate coupons", json!({"maxRedemptions": 11}), "maxRedemptions"),
        fx.invalid("POST affiliate coupons", json!({"maxRedemptions": 0}), "maxRedemptions"),
        fx.invalid("POST affiliate coupons", json!({"expiresAt": "2020-01-01T00:00:00Z"}), "expiresAt"),
        fx.invalid("POST affiliate coupons", json!({"expiresAt": "2100-01-01T00:00:00Z"}), "expiresAt"),
        fx.invalid("POST affiliate coupons", json!({"minimumAmount": 5000}), "minimumAmountCurrency"),
        fx.invalid("POST affiliate coupons", json!({"minimumAmountCurrency": "USD"}), "minimumAmount"),
        fx.invalid("POST affiliate coupons", json!({"minimumAmount": 0, "minimumAmountCurrency": "USD"}), "minimumAmount"),
        fx.edited(
            "POST affiliate coupons",
            json!({"minimumAmount": 5000, "minimumAmountCurrency": "XYZ"}),
            400,
            "unsupported_currency",
            "minimumAmountCurrency",
        ),
        fx.invalid("POST affiliate coupons", json!({"customerId": "bob"}), "customerId"),
        fx.invalid("POST affiliate coupons", json!({"customerId": "cus_a/../b"}), "customerId"),
        fx.invalid("POST affiliate coupons", json!({"limitToCustomers": true}), "customerId"),
        fx.invalid("POST affiliate coupons", json!({"limitToAffiliate": true}), "customerId"),
        fx.invalid("POST affiliate coupons", json!({"customerId": "cus_1", "limitToCustomers": false}), "limitToCustomers"),
        // self-mint
        fx.invalid("self-mint", json!({"code": "AB"}), "code"),
        fx.invalid("self-mint", json!({"code": "no spaces"}), "code"),
    ];
    run(&app, &fx, cases).await;
}

#[tokio::test]
async fn list_and_lookup_queries_validate_take_cursor_filters_and_selectors() {
    let Some(app) = TestApp::spawn().await else { return };
    let fx = fixture(&app).await;
    let (p, a) = (fx.program.clone(), fx.affiliate.clone());
    let lists = [
        "/api/v1/programs".to_owned(),
        "/api/v1/affiliates".to_owned(),
        "/api/v1/affiliates/applications".to_owned(),
        format!("/api/v1/campaigns/{p}/coupons"),
        format!("/api/v1/affiliates/{a}/coupons"),
    ];
    // A well-formed cursor of something that is not a cursor: base64url of `{"x":1}`.
    let not_a_cursor = "eyJ4IjoxfQ";
    let mut cases = Vec::new();
    for list in &lists {
        for (query, field) in [
            ("take=0", "take"),
            ("take=201", "take"),
            ("take=-1", "take"),
            ("take=ten", "take"),
            ("take=", "take"),
            ("cursor=%%%", "cursor"),
            ("cursor=garbage!", "cursor"),
            (&format!("cursor={not_a_cursor}") as &str, "cursor"),
            ("tkae=10", "tkae"),
        ] {
            cases.push(fx.request(Method::GET, format!("{list}?{query}"), field));
        }
    }
    for (query, field) in [
        ("status=Bogus", "status"),
        ("status=approved", "status"),
        (&format!("q={}", "x".repeat(201)) as &str, "q"),
        ("programId=", "programId"),
    ] {
        cases.push(fx.request(Method::GET, format!("/api/v1/affiliates?{query}"), field));
    }
    for (query, field) in [
        ("code=AB", "code"),
        ("code=SARAH%2020", "code"),
        ("affiliateEmail=not-an-email", "affiliateEmail"),
        ("externalId=", "externalId"),
        (&format!("externalId={}", "p".repeat(256)) as &str, "externalId"),
        // A Stripe id of another kind is no promotion code id.
        ("externalId=cus_1", "externalId"),
        ("bogus=1", "bogus"),
        ("code=SARAH20&code=OTHER20", "code"),
    ] {
        cases.push(fx.request(Method::GET, format!("/api/v1/promotional-codes?{query}"), field));
    }
    let mut none = fx.request(Method::GET, "/api/v1/promotional-codes".to_owned(), "");
    none.field = None;
    let mut two = fx.request(Method::GET, format!("/api/v1/promotional-codes?code=SARAH20&affiliateId={a}"), "");
    two.field = None;
    cases.extend([none, two]);
    run(&app, &fx, cases).await;
}

#[tokio::test]
async fn control_characters_nulls_and_nulls_for_required_patch_fields_are_refused_never_a_500() {
    let Some(app) = TestApp::spawn().await else { return };
    let fx = fixture(&app).await;
    let nul = "Spring\u{0}sale".to_owned();
    let bell = "Spring\u{7}".to_owned();
    let cases = vec![
        fx.invalid("POST programs", json!({"name": nul}), "name"),
        fx.invalid("POST programs", json!({"description": bell}), "description"),
        fx.invalid("POST programs", json!({"termsUrl": "https://x.com/\u{0}"}), "termsUrl"),
        fx.invalid("PATCH programs", json!({"name": nul}), "name"),
        fx.invalid("PATCH programs", json!({"name": null}), "name"),
        fx.invalid("PATCH programs", json!({"isActive": null}), "isActive"),
        fx.invalid("POST affiliates", json!({"fullName": nul}), "fullName"),
        fx.invalid("PATCH affiliates", json!({"notes": "a\u{0}b"}), "notes"),
        fx.invalid("PATCH affiliates", json!({"tags": ["ok", "bad\u{0}"]}), "tags"),
        fx.invalid("PATCH affiliates", json!({"status": null}), "status"),
        fx.invalid("POST campaign coupons", json!({"name": nul}), "name"),
        fx.invalid("PATCH campaign coupons", json!({"name": null}), "name"),
        fx.request(Method::GET, "/api/v1/affiliates?q=%00".to_owned(), "q"),
        fx.request(Method::GET, "/api/v1/promotional-codes?externalId=promo%00x".to_owned(), "externalId"),
    ];
    run(&app, &fx, cases).await;
}

#[tokio::test]
async fn names_with_bidi_overrides_or_zero_width_characters_are_refused_like_control_characters() {
    let Some(app) = TestApp::spawn().await else { return };
    let fx = fixture(&app).await;
    // "Spring sale" shown reversed after U+202E; "Sarah" and "Sar\u{200B}ah" look the same.
    let override_ = "\u{202E}elas gnirpS".to_owned();
    let zero_width = "Sar\u{200B}ah".to_owned();
    let isolate = "Spring \u{2067}sale\u{2069}".to_owned();
    let cases = vec![
        fx.invalid("POST programs", json!({"name": override_}), "name"),
        fx.invalid("PATCH programs", json!({"name": zero_width}), "name"),
        fx.invalid("POST affiliates", json!({"fullName": zero_width}), "fullName"),
        fx.invalid("POST affiliates", json!({"fullName": "Sarah\nSmith"}), "fullName"),
        fx.invalid("PATCH affiliates", json!({"fullName": override_}), "fullName"),
        fx.invalid("PATCH affiliates", json!({"tags": ["ok", "vip\u{FEFF}"]}), "tags"),
        fx.invalid("POST campaign coupons", json!({"name": isolate}), "name"),
        fx.invalid("PATCH campaign coupons", json!({"name": override_}), "name"),
    ];
    run(&app, &fx, cases).await;
}
