//! Tenancy over HTTP: every id of one organization, used by another, is answered exactly as
//! an id that does not exist (404 with the resource's code, empty lists for list-style
//! lookups), and nothing of the first organization changes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rekomi_domain::kernel::plan::PlanTier;
use rekomi_e2e::app::{id_of, TestApp};
use rekomi_e2e::stripe_double::PLATFORM;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn every_resource_of_one_organization_is_invisible_and_untouchable_for_another() {
    let Some(app) = TestApp::spawn().await else { return };

    // Organization A: a program, an approved and a pending affiliate, a coupon with a code.
    let (_, a) = app.org(PlanTier::Growth).await;
    let program = app.create_program(&a, "A program").await;
    let pa = id_of(&program);
    let approved = app.create_affiliate(&a, &pa, "sarah@creator.com", "Approved").await;
    let aa = id_of(&approved);
    let pending = app.create_affiliate(&a, &pa, "pat@creator.com", "Pending").await;
    let ap = id_of(&pending);
    let coupon = app.create_campaign_coupon(&a, &pa, json!({"allowAffiliateSelfMint": true})).await;
    let ca = id_of(&coupon);
    let code = app.create_code(&a, &aa, &ca, Some("SARAH20")).await;
    let code_id = id_of(&code);
    let promo_id = code["externalId"].as_str().unwrap().to_owned();

    // Organization B, on its own Stripe Connect account, with resources of its own to aim A's
    // ids from.
    let (b_org, b) = app.org(PlanTier::Growth).await;
    app.link_stripe_account(&b_org, "acct_1OrgBConnected").await;
    let b_owner = app.jwt_dashboard(&b_org, "Owner");
    let pb = id_of(&app.create_program(&b, "B program").await);
    let ab = id_of(&app.create_affiliate(&b, &pb, "bob@creator.com", "Approved").await);
    let b_coupon = app.create_campaign_coupon(&b, &pb, json!({})).await;
    let cb = id_of(&b_coupon);
    let b_stripe_coupon = b_coupon["stripeCouponId"].as_str().unwrap();
    assert_eq!(app.stripe.coupon_account(b_stripe_coupon).as_deref(), Some("acct_1OrgBConnected"), "B's coupon lives on B's account");
    let a_stripe_coupon = coupon["stripeCouponId"].as_str().unwrap();
    assert_eq!(app.stripe.coupon_account(a_stripe_coupon).as_deref(), Some(PLATFORM), "A's coupon lives on the platform account");

    // Bob's first affiliate call would link his own (org B) row to his user id; link it up
    // front so the fingerprints below show only what B's requests did to A's data.
    app.single_text("UPDATE affiliates SET user_id = 'user_bob' WHERE email = 'bob@creator.com' RETURNING 'linked' AS digest".to_owned())
        .await;
    let rows_before = app.fingerprints().await;
    let stripe_before = app.stripe.request_count();
    let a_before = a_views(&app, &a, &pa, &aa, &ap, &ca, &code_id).await;

    let coupon_body = json!({"name": "Hijack", "discountType": "PercentOff", "discountValue": 50, "duration": "Forever"});
    let cases: Vec<(Method, String, Value, &str)> = vec![
        // programs
        (Method::GET, format!("/api/v1/programs/{pa}"), Value::Null, "program_not_found"),
        (Method::PATCH, format!("/api/v1/programs/{pa}"), json!({"name": "Hijacked"}), "program_not_found"),
        (Method::DELETE, format!("/api/v1/programs/{pa}"), Value::Null, "program_not_found"),
        // affiliates
        (Method::GET, format!("/api/v1/affiliates/{aa}"), Value::Null, "affiliate_not_found"),
        (Method::PATCH, format!("/api/v1/affiliates/{aa}"), json!({"status": "Banned"}), "affiliate_not_found"),
        (Method::POST, format!("/api/v1/affiliates/{ap}/approve"), Value::Null, "affiliate_not_found"),
        (Method::POST, format!("/api/v1/affiliates/{ap}/reject"), json!({"reason": "no"}), "affiliate_not_found"),
        (Method::POST, "/api/v1/affiliates".to_owned(), json!({"programId": pa, "email": "mole@b.com"}), "program_not_found"),
        // campaign coupons, through A's program and through B's own
        (Method::GET, format!("/api/v1/campaigns/{pa}/coupons"), Value::Null, "program_not_found"),
        (Method::POST, format!("/api/v1/campaigns/{pa}/coupons"), coupon_body.clone(), "program_not_found"),
        (Method::GET, format!("/api/v1/campaigns/{pa}/coupons/{ca}"), Value::Null, "campaign_coupon_not_found"),
        (Method::GET, format!("/api/v1/campaigns/{pb}/coupons/{ca}"), Value::Null, "campaign_coupon_not_found"),
        (Method::PATCH, format!("/api/v1/campaigns/{pa}/coupons/{ca}"), json!({"name": "Hijacked"}), "campaign_coupon_not_found"),
        (Method::PATCH, format!("/api/v1/campaigns/{pb}/coupons/{ca}"), json!({"name": "Hijacked"}), "campaign_coupon_not_found"),
        (Method::POST, format!("/api/v1/campaigns/{pa}/coupons/{ca}/archive"), Value::Null, "campaign_coupon_not_found"),
        (Method::POST, format!("/api/v1/campaigns/{pb}/coupons/{ca}/archive"), Value::Null, "campaign_coupon_not_found"),
        (Method::DELETE, format!("/api/v1/campaigns/{pa}/coupons/{ca}"), Value::Null, "campaign_coupon_not_found"),
        (Method::DELETE, format!("/api/v1/campaigns/{pb}/coupons/{ca}"), Value::Null, "campaign_coupon_not_found"),
        // affiliate coupons
        (Method::GET, format!("/api/v1/affiliates/{aa}/coupons"), Value::Null, "affiliate_not_found"),
        (
            Method::POST,
            format!("/api/v1/affiliates/{aa}/coupons"),
            json!({"campaignCouponId": ca, "code": "MOLE20"}),
            "affiliate_not_found",
        ),
        (
            Method::POST,
            format!("/api/v1/affiliates/{aa}/coupons"),
            json!({"campaignCouponId": cb, "code": "MOLE21"}),
            "affiliate_not_found",
        ),
        (
            Method::POST,
            format!("/api/v1/affiliates/{ab}/coupons"),
            json!({"campaignCouponId": ca, "code": "MOLE22"}),
            "campaign_coupon_not_found",
        ),
        (Method::DELETE, format!("/api/v1/affiliates/{aa}/coupons/{code_id}"), Value::Null, "promotional_code_not_found"),
        (Method::DELETE, format!("/api/v1/affiliates/{ab}/coupons/{code_id}"), Value::Null, "promotional_code_not_found"),
        // single-object promotional-code lookups
        (Method::GET, format!("/api/v1/promotional-codes?id={code_id}"), Value::Null, "promotional_code_not_found"),
        (Method::GET, "/api/v1/promotional-codes?code=SARAH20".to_owned(), Value::Null, "promotional_code_not_found"),
        (Method::GET, format!("/api/v1/promotional-codes?externalId={promo_id}"), Value::Null, "promotional_code_not_found"),
    ];
    for token in [&b, &b_owner] {
        for (method, path, body, code) in &cases {
            let mut request = app.request(method.clone(), path).bearer_auth(token);
            if !body.is_null() {
                request = request.json(body);
            }
            let answer = app.send(request).await;
            assert_eq!((answer.status, answer.error_code()), (404, Some(*code)), "{method} {path}: {}", answer.text);
        }
        // List-style lookups are empty, not errors.
        for query in [format!("couponId={ca}"), format!("affiliateId={aa}"), "affiliateEmail=sarah%40creator.com".to_owned()] {
            let found = app.get(&format!("/api/v1/promotional-codes?{query}"), token).await;
            assert_eq!(found.expect(200), &json!([]), "{query}");
        }
        // Bulk actions count A's ids but affect none of them.
        for action in ["approve", "pause", "delete"] {
            let bulk = app.post("/api/v1/affiliates/bulk-action", token, &json!({"affiliateIds": [aa, ap], "action": action})).await;
            assert_eq!(bulk.expect(200), &json!({"affected": 0, "total": 2, "action": action}));
        }
        // Lists show only B's own records.
        let programs = app.get("/api/v1/programs", token).await.expect(200).clone();
        assert_eq!(ids(&programs["items"]), vec![pb.clone()]);
        let affiliates = app.get("/api/v1/affiliates", token).await.expect(200).clone();
        assert_eq!(ids(&affiliates["items"]), vec![ab.clone()]);
        let filtered = app.get(&format!("/api/v1/affiliates?programId={pa}"), token).await.expect(200).clone();
        assert_eq!(filtered["items"], json!([]));
        let applications = app.get("/api/v1/affiliates/applications", token).await.expect(200).clone();
        assert_eq!(applications["items"], json!([]));
    }

    // An affiliate of B cannot mint from A's coupon, even one that allows self-mint.
    let bob = app.jwt_affiliate("user_bob", "bob@creator.com");
    app.post("/api/me/coupons/mint", &bob, &json!({"campaignCouponId": ca, "code": "BOB-MOLE"}))
        .await
        .expect_error(404, "campaign_coupon_not_found");

    assert_eq!(app.fingerprints().await, rows_before, "B's requests changed rows");
    assert_eq!(app.stripe.request_count(), stripe_before, "B's requests reached Stripe");
    assert_eq!(a_views(&app, &a, &pa, &aa, &ap, &ca, &code_id).await, a_before, "A's records as A reads them changed");
    assert_eq!(app.stripe.promotion_code(&promo_id).unwrap()["active"], true);

    // Codes are unique per organization, not across organizations: B, on its own Stripe
    // account, may use A's code text.
    let b_code = app.create_code(&b, &ab, &cb, Some("SARAH20")).await;
    let b_sent = app.stripe.requests_to("POST", "/v1/promotion_codes").pop().unwrap();
    assert_eq!(b_sent.header("stripe-account"), Some("acct_1OrgBConnected"), "{b_sent:#?}");
    assert!(app.stripe.requests_to("POST", "/v1/promotion_codes")[0].header("stripe-account").is_none(), "A is on the platform account");
    assert_eq!(b_code["code"], "SARAH20");
    assert_ne!(b_code["id"], code["id"]);
    assert_eq!(app.get("/api/v1/promotional-codes?code=SARAH20", &a).await.expect(200)["id"], code["id"]);
    assert_eq!(app.get("/api/v1/promotional-codes?code=SARAH20", &b).await.expect(200)["id"], b_code["id"]);
}

fn ids(items: &Value) -> Vec<String> {
    items.as_array().unwrap().iter().map(id_of).collect()
}

/// Everything A can read about its records.
async fn a_views(app: &TestApp, a: &str, pa: &str, aa: &str, ap: &str, ca: &str, code_id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for path in [
        format!("/api/v1/programs/{pa}"),
        format!("/api/v1/affiliates/{aa}"),
        format!("/api/v1/affiliates/{ap}"),
        format!("/api/v1/campaigns/{pa}/coupons/{ca}"),
        format!("/api/v1/affiliates/{aa}/coupons"),
        format!("/api/v1/promotional-codes?id={code_id}"),
        "/api/v1/programs".to_owned(),
        "/api/v1/affiliates".to_owned(),
    ] {
        out.push(app.get(&path, a).await.expect(200).clone());
    }
    out
}

#[tokio::test]
async fn a_recruiter_of_another_organization_no_affiliate_or_an_unapproved_one_is_refused_and_nothing_is_created() {
    // The probe found these silently ignored on the admin path: the affiliate was created
    // without its recruiter, so the overrides the brand expected never happened.
    let Some(app) = TestApp::spawn().await else { return };
    let (_, a) = app.org(PlanTier::Growth).await;
    let pa = id_of(&app.create_program(&a, "A program").await);
    let sarah = id_of(&app.create_affiliate(&a, &pa, "sarah@creator.com", "Approved").await);
    let pat = id_of(&app.create_affiliate(&a, &pa, "pat@creator.com", "Pending").await);
    let (_, b) = app.org(PlanTier::Growth).await;
    let pb = id_of(&app.create_program(&b, "B program").await);
    let bob = id_of(&app.create_affiliate(&b, &pb, "bob@creator.com", "Approved").await);

    let before = app.counts().await;
    let recruits = |recruiter: &str| json!({"programId": pa, "email": "new@creator.com", "recruitedByAffiliateId": recruiter});
    app.post("/api/v1/affiliates", &a, &recruits(&bob)).await.expect_error(404, "affiliate_not_found");
    app.post("/api/v1/affiliates", &a, &recruits("019e8000-0000-7000-8000-000000000001")).await.expect_error(404, "affiliate_not_found");
    app.post("/api/v1/affiliates", &a, &recruits(&pat)).await.expect_field_error(422, "recruiter_not_approved", "recruitedByAffiliateId");
    assert_eq!(app.counts().await, before, "a refused recruit creates nothing");

    let recruit = app.post("/api/v1/affiliates", &a, &recruits(&sarah)).await.expect(201).clone();
    let listed = app.get(&format!("/api/v1/affiliates/{sarah}/sub-affiliates"), &a).await.expect(200).clone();
    assert_eq!(listed.as_array().map(|l| l.iter().map(|r| r["id"].clone()).collect::<Vec<_>>()), Some(vec![recruit["id"].clone()]));
}
