//! The OpenAPI 3.1 document, generated from the handlers' annotations and the DTO types, served
//! at `GET /api/v1/openapi.json`.
//!
//! The annotations name each operation's own error answers (`402` plan gates, `404`, `409`,
//! `422`, Stripe's `502`/`503`) with their `error` codes. The `ErrorAnswers` modifier then adds the answers
//! every operation of a kind shares, decided by what the operation takes and how it
//! authenticates (so a new endpoint cannot forget them), and gives every error answer the
//! envelope's schema.

use actix_web::http::StatusCode;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi};

use crate::conversions::{export, sub_affiliates};
use crate::stripe_inbox::{inbox, webhook};
use crate::{affiliates, conversions, coupons, dto, health, orgs, outbound, programs};

/// The security scheme of brand-side callers (API keys and dashboard JWTs).
pub const BRAND_AUTH: &str = "bearer";
/// The security scheme of affiliate-side callers.
pub const AFFILIATE_AUTH: &str = "affiliate_jwt";

/// Operations whose body is read as raw bytes rather than decoded as a JSON object (Stripe's
/// webhook: its signature covers the exact bytes), so they answer neither `415` nor the
/// JSON decoding errors.
const RAW_BODY_PATHS: &[&str] = &["/api/webhooks/stripe"];

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BRAND_AUTH,
            SecurityScheme::Http(
                Http::builder().scheme(HttpAuthScheme::Bearer).description(Some("rk_live_… API key or dashboard JWT")).build(),
            ),
        );
        components.add_security_scheme(
            AFFILIATE_AUTH,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("affiliate-side JWT (aud = affiliate)"))
                    .build(),
            ),
        );
    }
}

/// Who may call an operation, read from its `security`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Brand,
    Affiliate,
    Anonymous,
}

fn caller_of(op: &Operation) -> Caller {
    let schemes: Vec<String> = op
        .security
        .iter()
        .flatten()
        .filter_map(|req| serde_json::to_value(req).ok())
        .filter_map(|v| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()))
        .flatten()
        .collect();
    if schemes.iter().any(|s| s == BRAND_AUTH) {
        Caller::Brand
    } else if schemes.iter().any(|s| s == AFFILIATE_AUTH) {
        Caller::Affiliate
    } else {
        Caller::Anonymous
    }
}

/// Every operation of a path item with its lower-case method.
fn operations_mut(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    let PathItem { get, put, post, delete, options, head, patch, trace, .. } = item;
    [
        ("get", get),
        ("put", put),
        ("post", post),
        ("delete", delete),
        ("options", options),
        ("head", head),
        ("patch", patch),
        ("trace", trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
    .collect()
}

/// The error answers an operation shares with every operation of its kind.
fn shared_answers(path: &str, method: &str, op: &Operation) -> Vec<(u16, String)> {
    let caller = caller_of(op);
    let params = op.parameters.iter().flatten().filter_map(|p| match p {
        RefOr::T(p) => Some(&p.parameter_in),
        RefOr::Ref(_) => None,
    });
    let (mut in_path, mut in_query) = (false, false);
    for place in params {
        match place {
            ParameterIn::Path => in_path = true,
            ParameterIn::Query => in_query = true,
            _ => {}
        }
    }
    let json_body = op.request_body.is_some() && !RAW_BODY_PATHS.contains(&path);
    let mut out = Vec::new();
    if in_path || in_query || json_body {
        let mut causes = Vec::new();
        if in_path {
            causes.push("a malformed path id");
        }
        if in_query {
            causes.push("an unknown or malformed query parameter");
        }
        if json_body {
            causes.push("a wrong, unknown, missing or duplicate body field");
        }
        let mut text = format!("`validation_failed` (naming `field`): {}", causes.join(", "));
        if json_body {
            text.push_str("; `invalid_json`: a body that is not one JSON object");
        }
        out.push((400, text));
    }
    match caller {
        Caller::Brand => out.push((
            401,
            "`unauthorized`: no or malformed `Authorization`; `invalid_api_key`: an unknown or revoked API key; \
             `invalid_token`: an invalid or expired dashboard JWT"
                .to_owned(),
        )),
        Caller::Affiliate => out.push((
            401,
            "`unauthorized`: no or malformed `Authorization`; `invalid_token`: not a valid affiliate JWT (API keys are refused)".to_owned(),
        )),
        Caller::Anonymous => {}
    }
    if caller == Caller::Brand && method != "get" {
        out.push((
            403,
            "`insufficient_scope`: an API key with `read` scope on a writing method; `insufficient_role`: the dashboard \
             user's role is too low"
                .to_owned(),
        ));
    }
    if json_body {
        out.push((413, format!("`payload_too_large`: the body exceeds {} bytes", crate::extract::MAX_JSON_BODY)));
        out.push((415, "`unsupported_media_type`: a body sent without `Content-Type: application/json`".to_owned()));
    }
    if caller != Caller::Anonymous {
        out.push((
            429,
            "`rate_limited`: more than 600 requests in a minute for this key or user, or too many failed \
             authentications from this address; retry after `Retry-After` seconds"
                .to_owned(),
        ));
        out.push((500, "`internal_error`: an unexpected failure (the body says nothing more)".to_owned()));
        out.push((503, "`service_unavailable`: the database is unavailable; retry shortly".to_owned()));
    }
    out
}

fn integer_header(description: &str, minimum: i64) -> RefOr<utoipa::openapi::header::Header> {
    RefOr::T(
        HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(minimum))))
            .description(Some(description))
            .build(),
    )
}

/// Adds the shared error answers to every operation and gives every error answer the envelope.
struct ErrorAnswers;

impl Modify for ErrorAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, op) in operations_mut(item) {
                let caller = caller_of(op);
                for (status, description) in shared_answers(path, method, op) {
                    let entry = op.responses.responses.entry(status.to_string()).or_insert_with(|| RefOr::T(Response::new("")));
                    if let RefOr::T(response) = entry {
                        response.description = match response.description.trim() {
                            "" => description,
                            own => format!("{description}; {own}"),
                        };
                    }
                }
                for (status, response) in op.responses.responses.iter_mut() {
                    let RefOr::T(response) = response else { continue };
                    let status: u16 = status.parse().unwrap_or_default();
                    if status >= 400 && response.content.is_empty() {
                        let schema = if status == 402 { "PlanRequiredBody" } else { "ErrorBody" };
                        response.content.insert("application/json".to_owned(), RefOr::T(Content::new(Some(Ref::from_schema_name(schema)))));
                    }
                    if status == 429 {
                        response.headers.insert("Retry-After".to_owned(), integer_header("Seconds to wait before retrying.", 1));
                    }
                    if caller != Caller::Anonymous && ((200..300).contains(&status) || status == 429) {
                        response.headers.insert(
                            "X-RateLimit-Remaining".to_owned(),
                            integer_header("Requests left in the caller's current one-minute window.", 0),
                        );
                    }
                }
            }
        }
    }
}

/// Unique operation ids, a description on every answer, and optional bodies that are sent or
/// left out but never `null` (the decoder refuses a `null` body).
struct Operations;

fn snake(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

fn is_null_schema(schema: &RefOr<Schema>) -> bool {
    serde_json::to_value(schema).is_ok_and(|v| v == serde_json::json!({ "type": "null" }))
}

impl Modify for Operations {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for (_, op) in operations_mut(item) {
                // utoipa names operations after their handler (`list`, `get`, …), which repeat
                // across resources; the tag makes them unique.
                if let (Some(tag), Some(id)) = (op.tags.as_ref().and_then(|t| t.first()), op.operation_id.as_ref()) {
                    op.operation_id = Some(format!("{}_{}", snake(tag), id));
                }
                for (status, response) in op.responses.responses.iter_mut() {
                    if let RefOr::T(response) = response {
                        if response.description.trim().is_empty() {
                            let reason = status.parse::<u16>().ok().and_then(|s| StatusCode::from_u16(s).ok()?.canonical_reason());
                            response.description = reason.unwrap_or("Answer").to_owned();
                        }
                    }
                }
                let Some(RefOr::T(body)) = op.request_body.as_mut() else { continue };
                if body.required == Some(Required::True) {
                    continue;
                }
                for content in body.content.values_mut() {
                    let RefOr::T(content) = content else { continue };
                    if let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema {
                        let mut kept: Vec<RefOr<Schema>> = one_of.items.iter().filter(|s| !is_null_schema(s)).cloned().collect();
                        if kept.len() == 1 {
                            content.schema = kept.pop();
                        }
                    }
                }
            }
        }
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Rekomi API", description = "Open-source affiliate-program backend: programs, affiliates and Stripe-backed coupon codes. \
        Every 4xx and 5xx answer is the envelope `{ \"error\", \"message\", \"field\"? }`; each operation lists the statuses it can \
        answer with their `error` codes."),
    paths(
        programs::handlers::list, programs::handlers::create, programs::handlers::get, programs::handlers::update,
        programs::handlers::delete,
        affiliates::handlers::list, affiliates::handlers::applications, affiliates::handlers::create, affiliates::handlers::get,
        affiliates::handlers::update, affiliates::handlers::approve, affiliates::handlers::reject, affiliates::handlers::bulk,
        coupons::handlers::create_campaign, coupons::handlers::list_campaign, coupons::handlers::get_campaign,
        coupons::handlers::update_campaign, coupons::handlers::archive_campaign, coupons::handlers::delete_campaign,
        coupons::handlers::create_affiliate, coupons::handlers::list_affiliate, coupons::handlers::revoke_affiliate,
        coupons::handlers::lookup, coupons::handlers::self_mint,
        orgs::handlers::me, orgs::handlers::update, orgs::handlers::get_home_currency, orgs::handlers::put_home_currency, orgs::handlers::billing, health::healthz, health::readyz, health::metrics, crate::openapi_json,
        outbound::handlers::list, outbound::handlers::create, outbound::handlers::get, outbound::handlers::update,
        outbound::handlers::delete, outbound::handlers::rotate_secret, outbound::handlers::deliveries, outbound::handlers::redeliver,
        conversions::handlers::list, conversions::handlers::get, conversions::handlers::attribution, export::export,
        sub_affiliates::get_sub_config, sub_affiliates::put_sub_config, sub_affiliates::sub_affiliates,
        inbox::list_events, inbox::replay_event, webhook::receive,
        crate::traffic::handlers::follow, crate::traffic::browser::loader, crate::traffic::browser::click, crate::traffic::browser::click_preflight,
        crate::traffic::browser::pixel, crate::traffic::browser::lead_signup, crate::traffic::browser::lead_preflight,
        crate::traffic::settings::install_snippet, crate::traffic::settings::defaults, crate::traffic::settings::get_params,
        crate::traffic::settings::patch_params, crate::traffic::settings::get_pixel_key, crate::traffic::settings::provision_pixel_key,
        crate::tracking::handlers::s2s, crate::tracking::handlers::lead, crate::tracking::handlers::rotate_secret,
        crate::payouts::handlers::list, crate::payouts::handlers::get, crate::payouts::handlers::preview, crate::payouts::handlers::run,
        crate::payouts::handlers::retry, crate::payouts::handlers::mark_paid, crate::payouts::export::export,
        crate::payouts::accounts::connect_stripe, crate::payouts::accounts::mine, crate::payouts::accounts::record,
    ),
    components(schemas(
        dto::ErrorBody, dto::PlanRequiredBody, dto::CurrencyValue, dto::PlanTierValue,
        programs::dto::CommissionTypeValue, programs::dto::CommissionModelValue, programs::dto::OfferedCommissionModelValue,
        programs::dto::AttributionModelValue, programs::dto::NetworkVisibilityValue,
        affiliates::dto::AffiliateStatusValue, affiliates::dto::NewAffiliateStatusValue, affiliates::dto::AffiliateSourceValue,
        affiliates::dto::LinkFormatValue, affiliates::dto::BulkActionValue,
        coupons::dto::DiscountTypeValue, coupons::dto::DurationValue,
        conversions::dto::ConversionStatusValue, conversions::dto::ConversionTypeValue, conversions::dto::LedgerKindValue,
        crate::stripe_inbox::dto::InboxStatusValue,
        outbound::dto::EndpointStatusValue, outbound::dto::DeliveryStatusValue, orgs::dto::SubscriptionStatusValue,
        crate::payouts::dto::PayoutMethodValue, crate::payouts::dto::PayoutStatusValue, crate::payouts::dto::IneligibilityValue,
    )),
    modifiers(&Security, &ErrorAnswers, &Operations),
)]
pub struct ApiDoc;

/// The document as JSON.
pub fn document() -> String {
    ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeSet;

    use rekomi_domain::affiliates::{AffiliateStatus, BulkAction};
    use rekomi_domain::conversions::LedgerKind;
    use rekomi_domain::kernel::page::{PageRequest, DEFAULT_TAKE, MAX_TAKE};
    use rekomi_domain::kernel::plan::{PlanTier, SubscriptionStatus};
    use rekomi_domain::programs::CommissionModel;
    use rekomi_domain::stripe_inbox::InboxStatus;
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::from_str(&super::document()).unwrap()
    }

    /// `(path, method, operation)` for every operation.
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                out.push((path.clone(), method.clone(), op.clone()));
            }
        }
        out
    }

    fn statuses(op: &Value) -> BTreeSet<u16> {
        op["responses"].as_object().unwrap().keys().map(|s| s.parse().unwrap()).collect()
    }

    fn params<'a>(op: &'a Value, place: &str) -> Vec<&'a Value> {
        op["parameters"].as_array().map(|ps| ps.iter().filter(|p| p["in"] == place).collect()).unwrap_or_default()
    }

    fn security(op: &Value) -> Option<String> {
        op["security"].as_array()?.first()?.as_object()?.keys().next().cloned()
    }

    /// Resolves a `$ref` to its component.
    fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
            None => schema,
        }
    }

    /// The `enum` of a schema that may be a `$ref`, or `oneOf` a `$ref`/enum and `null`.
    fn enum_values(doc: &Value, schema: &Value) -> Vec<String> {
        let schema = schema["oneOf"].as_array().and_then(|items| items.iter().find(|i| i["type"] != "null")).unwrap_or(schema);
        resolve(doc, schema)["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    }

    fn names<T>(all: &[T], name: fn(&T) -> &'static str) -> Vec<String> {
        all.iter().map(|v| name(v).to_owned()).collect()
    }

    #[test]
    fn every_error_answer_carries_the_envelope_and_every_answer_a_description() {
        let doc = doc();
        for (path, method, op) in operations(&doc) {
            for (status, response) in op["responses"].as_object().unwrap() {
                assert!(response["description"].as_str().is_some_and(|d| !d.is_empty()), "{method} {path} {status}: no description");
                if status.as_str() >= "400" {
                    let expected = if status == "402" { "PlanRequiredBody" } else { "ErrorBody" };
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        format!("#/components/schemas/{expected}"),
                        "{method} {path} {status}"
                    );
                }
            }
        }
        let envelope = &doc["components"]["schemas"]["ErrorBody"];
        assert_eq!(envelope["required"], serde_json::json!(["error", "message"]));
        let plan = &doc["components"]["schemas"]["PlanRequiredBody"];
        for field in ["error", "message", "required", "current", "trialing"] {
            assert!(plan["required"].as_array().unwrap().iter().any(|r| r == field), "{field}");
        }
    }

    #[test]
    fn operations_document_the_errors_their_kind_can_answer() {
        let doc = doc();
        for (path, method, op) in operations(&doc) {
            let got = statuses(&op);
            let mut expected = BTreeSet::new();
            match security(&op).as_deref() {
                Some(super::BRAND_AUTH) => {
                    expected.extend([401, 429, 500, 503]);
                    if method != "get" {
                        expected.insert(403);
                    }
                }
                Some(super::AFFILIATE_AUTH) => expected.extend([401, 429, 500, 503]),
                _ => {}
            }
            let json_body = !op["requestBody"].is_null() && !super::RAW_BODY_PATHS.contains(&path.as_str());
            if json_body {
                expected.extend([400, 413, 415]);
            }
            if !params(&op, "query").is_empty() {
                expected.insert(400);
            }
            if !params(&op, "path").is_empty() {
                // A malformed id, and an id that is not the caller's.
                expected.extend([400, 404]);
            }
            let missing: Vec<_> = expected.difference(&got).collect();
            assert!(missing.is_empty(), "{method} {path} does not document {missing:?}");
            if let Some(rate) = op["responses"].get("429") {
                assert!(rate["headers"]["Retry-After"].is_object(), "{method} {path}: 429 without Retry-After");
            }
            if !json_body {
                assert!(!got.contains(&415), "{method} {path} takes no JSON body but documents 415");
            }
        }
    }

    #[test]
    fn plan_gates_are_documented_where_the_use_cases_check_them() {
        let doc = doc();
        // Not gated: the profile and billing state (a lapsed organization can still see why),
        // the Owner-only Stripe inbox, and the anonymous endpoints.
        let ungated = [
            "/api/organizations/me",
            "/api/billing/state",
            "/api/v1/webhooks/stripe/events",
            "/api/v1/webhooks/stripe/events/{id}/replay",
            "/api/webhooks/stripe",
            "/r/{slug}",
            "/api/v1/r/loader.js",
            "/api/v1/r/click",
            "/api/v1/r/c.gif",
            "/api/v1/r/lead/signup",
            "/api/v1/settings/attribution-params/defaults",
            "/healthz",
            "/metrics",
            "/readyz",
            "/api/v1/openapi.json",
            // An affiliate connects and reads where it is paid whatever the brand's plan.
            "/api/me/payout-account",
            "/api/me/payout-account/stripe",
        ];
        // Reading the home currency is ungated; changing it needs Pro.
        let ungated_operations = [("get", "/api/v1/settings/home-currency")];
        for (path, method, op) in operations(&doc) {
            let gated = statuses(&op).contains(&402);
            let expected = !ungated.contains(&path.as_str()) && !ungated_operations.contains(&(method.as_str(), path.as_str()));
            assert_eq!(gated, expected, "{method} {path}: 402 documented = {gated}");
        }
    }

    #[test]
    fn path_ids_are_uuids_except_the_delivery_ulid_the_stripe_event_id_and_the_link_slug() {
        let doc = doc();
        for (path, method, op) in operations(&doc) {
            for p in params(&op, "path") {
                let name = p["name"].as_str().unwrap();
                let schema = &p["schema"];
                assert_eq!(p["required"], true, "{method} {path} {name}");
                match (path.as_str(), name) {
                    ("/api/v1/webhook-endpoints/{id}/deliveries/{deliveryId}/redeliver", "deliveryId") => {
                        assert_eq!(schema["type"], "string");
                    }
                    ("/api/v1/webhooks/stripe/events/{id}/replay", "id") => {
                        assert_eq!(schema["pattern"], "^[A-Za-z0-9_]{1,255}$");
                    }
                    ("/r/{slug}", "slug") => assert_eq!(schema["pattern"], "^[A-Za-z0-9-]{1,64}$"),
                    _ => assert_eq!(schema["format"], "uuid", "{method} {path} {name}: {schema}"),
                }
            }
        }
    }

    #[test]
    fn take_is_documented_with_the_bounds_the_page_request_enforces() {
        let (min, max) = (1, i64::from(MAX_TAKE));
        assert!(PageRequest::parse(Some(min), None).is_ok() && PageRequest::parse(Some(min - 1), None).is_err());
        assert!(PageRequest::parse(Some(max), None).is_ok() && PageRequest::parse(Some(max + 1), None).is_err());
        assert_eq!(PageRequest::parse(None, None).unwrap().take(), DEFAULT_TAKE);
        let doc = doc();
        let mut seen = 0;
        for (path, method, op) in operations(&doc) {
            for p in params(&op, "query").into_iter().filter(|p| p["name"] == "take") {
                let schema = &p["schema"];
                assert_eq!(schema["minimum"], min, "{method} {path}");
                assert_eq!(schema["maximum"], max, "{method} {path}");
                assert_eq!(schema["default"], DEFAULT_TAKE, "{method} {path}");
                assert_eq!(schema["type"], "integer", "{method} {path}: a query parameter is never null");
                seen += 1;
            }
        }
        assert!(seen >= 9, "{seen} take parameters");
    }

    #[test]
    fn time_query_parameters_document_a_date_or_a_timestamp() {
        let doc = doc();
        let mut seen = BTreeSet::new();
        for (path, method, op) in operations(&doc) {
            for p in params(&op, "query").into_iter().filter(|p| p["schema"].to_string().contains("date")) {
                let name = p["name"].as_str().unwrap();
                let formats: Vec<&str> =
                    p["schema"]["anyOf"].as_array().map_or(Vec::new(), |a| a.iter().filter_map(|s| s["format"].as_str()).collect());
                assert_eq!(formats, ["date", "date-time"], "{method} {path} {name}: {}", p["schema"]);
                let description = p["description"].as_str().unwrap_or_default();
                assert!(description.contains("RFC 3339") && description.contains("that day's start in UTC"), "{method} {path} {name}");
                seen.insert(format!("{path} {name}"));
            }
        }
        let expected = [
            "/api/v1/conversions since",
            "/api/v1/conversions/export.csv since",
            "/api/v1/conversions/export.csv until",
            "/api/v1/conversions until",
            "/api/v1/webhooks/stripe/events before",
        ];
        assert_eq!(seen, expected.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
    }

    #[test]
    fn enum_fields_list_the_values_the_domain_accepts() {
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        let query = |path: &str, name: &str| {
            let op = &doc["paths"][path]["get"];
            params(op, "query").into_iter().find(|p| p["name"] == name).unwrap()["schema"].clone()
        };
        assert_eq!(enum_values(&doc, &query("/api/v1/affiliates", "status")), names(AffiliateStatus::ALL, AffiliateStatus::as_str));
        assert_eq!(enum_values(&doc, &query("/api/v1/webhooks/stripe/events", "status")), names(InboxStatus::ALL, InboxStatus::as_str));
        let offered: Vec<String> = CommissionModel::ALL.iter().filter(|m| m.is_offered()).map(|m| m.as_str().to_owned()).collect();
        assert_eq!(enum_values(&doc, &schemas["CreateProgramRequest"]["properties"]["defaultCommissionModel"]), offered);
        assert_eq!(
            enum_values(&doc, &schemas["PatchProgramRequest"]["properties"]["defaultCommissionModel"]),
            names(CommissionModel::ALL, CommissionModel::as_str)
        );
        assert_eq!(enum_values(&doc, &schemas["CreateAffiliateRequest"]["properties"]["status"]), ["Approved", "Pending"]);
        assert_eq!(enum_values(&doc, &schemas["BulkActionRequest"]["properties"]["action"]), ["approve", "pause", "delete"]);
        for (schema, field) in [
            ("CreateProgramRequest", "defaultCommissionType"),
            ("CreateProgramRequest", "attributionModel"),
            ("CreateProgramRequest", "networkVisibility"),
            ("PatchAffiliateRequest", "status"),
            ("CreateCampaignCouponRequest", "discountType"),
            ("CreateCampaignCouponRequest", "duration"),
            ("AffiliateResponse", "status"),
            ("ConversionResponse", "status"),
            ("StripeEventResponse", "status"),
            ("PlanRequiredBody", "required"),
        ] {
            assert!(!enum_values(&doc, &schemas[schema]["properties"][field]).is_empty(), "{schema}.{field}");
        }
    }

    #[test]
    fn value_sets_without_an_all_array_name_every_variant() {
        // Exhaustive matches: a new variant fails to compile here until its value set has it.
        let tier = |t: PlanTier| matches!(t, PlanTier::Trial | PlanTier::Starter | PlanTier::Growth | PlanTier::Pro);
        let status = |s: SubscriptionStatus| match s {
            SubscriptionStatus::None
            | SubscriptionStatus::Trialing
            | SubscriptionStatus::Active
            | SubscriptionStatus::PastDue
            | SubscriptionStatus::Canceled => true,
        };
        let ledger = |k: LedgerKind| match k {
            LedgerKind::Initial | LedgerKind::Renewal | LedgerKind::Refund | LedgerKind::Adjustment => true,
        };
        let bulk = |a: BulkAction| match a {
            BulkAction::Approve | BulkAction::Pause | BulkAction::Delete => true,
        };
        assert!(tier(PlanTier::Pro) && status(SubscriptionStatus::None) && ledger(LedgerKind::Refund) && bulk(BulkAction::Delete));
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(enum_values(&doc, &schemas["PlanTier"]).len(), 4);
        assert_eq!(enum_values(&doc, &schemas["SubscriptionStatus"]).len(), 5);
        assert_eq!(enum_values(&doc, &schemas["LedgerEventType"]).len(), 4);
        assert_eq!(enum_values(&doc, &schemas["BulkAction"]).len(), 3);
    }

    #[test]
    fn operation_ids_are_unique_and_optional_bodies_are_never_null() {
        let doc = doc();
        let mut ids = BTreeSet::new();
        for (path, method, op) in operations(&doc) {
            let id = op["operationId"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "{method} {path}: operationId {id} repeats");
            let body = &op["requestBody"];
            if !body.is_null() && body["required"] != true {
                let schema = &body["content"]["application/json"]["schema"];
                assert!(schema["oneOf"].is_null() && schema["$ref"].is_string(), "{method} {path}: {schema}");
            }
        }
    }
}
