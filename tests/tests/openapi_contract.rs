//! The router and the OpenAPI document agree, over real HTTP: a method a resource does not
//! take answers `405 method_not_allowed` with an `Allow` header naming exactly the methods the
//! document lists for that path, and every documented operation is routed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use rekomi_domain::kernel::plan::PlanTier;
use rekomi_e2e::app::TestApp;
use reqwest::Method;

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

fn allow_set(value: Option<&str>) -> BTreeSet<String> {
    value.unwrap_or_default().split(',').map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()).collect()
}

/// The path with every `{param}` replaced by a well-formed id.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').map_or(rest.len(), |e| start + e + 1);
        out.push_str(if rest[start..end].contains("deliveryId") {
            "01J0000000000000000000000A"
        } else {
            "0190a2b3-c4d5-7e6f-8091-a2b3c4d5e6f7"
        });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn a_method_a_resource_does_not_take_answers_405_with_allow_naming_the_ones_it_does() {
    let Some(app) = TestApp::spawn().await else { return };
    let (_, key) = app.org(PlanTier::Growth).await;
    let program = "0190a2b3-c4d5-7e6f-8091-a2b3c4d5e6f7";
    for (method, path, allow) in [
        (Method::PUT, "/api/v1/programs".to_owned(), "GET, POST"),
        (Method::POST, format!("/api/v1/programs/{program}"), "GET, PATCH, DELETE"),
        (Method::GET, format!("/api/v1/affiliates/{program}/approve"), "POST"),
        (Method::DELETE, "/api/v1/conversions/export.csv".to_owned(), "GET"),
        (Method::GET, "/api/webhooks/stripe".to_owned(), "POST"),
    ] {
        // Credentials or not, the method is refused before anything else.
        for token in [None, Some(key.as_str())] {
            let mut request = app.request(method.clone(), &path);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let res = app.send(request).await;
            res.expect_error(405, "method_not_allowed");
            assert_eq!(res.header("allow"), Some(allow), "{method} {path}: {:?}", res.headers);
        }
    }
}

#[tokio::test]
async fn every_documented_path_routes_its_methods_and_allows_exactly_them() {
    let Some(app) = TestApp::spawn().await else { return };
    let doc = app.send(app.request(Method::GET, "/api/v1/openapi.json")).await;
    let paths = doc.expect(200)["paths"].as_object().expect("paths").clone();
    let mut mismatches = Vec::new();
    for (path, item) in &paths {
        let documented: BTreeSet<String> = item.as_object().unwrap().keys().map(|m| m.to_ascii_uppercase()).collect();
        let url = concrete(path);
        for method in METHODS {
            let res = app.send(app.request(Method::from_bytes(method.as_bytes()).unwrap(), &url)).await;
            if documented.contains(method) {
                if res.status == 405 || res.error_code() == Some("not_found") {
                    mismatches.push(format!("{method} {path} is documented but answers {} {:?}", res.status, res.error_code()));
                }
            } else if res.status != 405 || allow_set(res.header("allow")) != documented {
                mismatches.push(format!(
                    "{method} {path} is not documented: expected 405 with Allow {documented:?}, got {} with Allow {:?}",
                    res.status,
                    res.header("allow")
                ));
            } else if method != "HEAD" && res.error_code() != Some("method_not_allowed") {
                mismatches.push(format!("{method} {path}: 405 without the envelope: {}", res.text));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
