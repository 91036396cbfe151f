//! The project's Stripe fixtures themselves (`tests/fixtures/`): every object parses in
//! async-stripe's typed models, as the gateway parses Stripe's answers; every file is described
//! in the folder's README; every event names its API version. As an optional cross-check, when
//! the shared reference folder is present, the fixtures use only field names that Stripe's
//! published objects and the shared events use (so they follow the documented shapes).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::{fixtures_dir, json_files, StripeEvents, StripeObjects};

/// Parses `name.json` of the objects fixtures into `T` with miniserde, as async-stripe parses
/// an answer; its errors say nothing more than that the shape was refused.
fn parses_as<T: miniserde::Deserialize>(name: &str) {
    let path = fixtures_dir().join("objects").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    if miniserde::json::from_str::<T>(&text).is_err() {
        panic!("objects/{name}.json does not parse as async-stripe's {}", std::any::type_name::<T>());
    }
}

#[test]
fn every_object_parses_in_async_stripes_typed_models() {
    parses_as::<stripe_shared::Coupon>("coupon");
    parses_as::<stripe_shared::DeletedCoupon>("deleted_coupon");
    parses_as::<stripe_shared::PromotionCode>("promotion_code");
    parses_as::<stripe_shared::Discount>("discount");
    parses_as::<stripe_shared::Invoice>("invoice");
    parses_as::<stripe_shared::Subscription>("subscription");
    parses_as::<stripe_shared::InvoicePayment>("invoice_payment");
    parses_as::<stripe_shared::Customer>("customer");
    parses_as::<stripe_shared::DeletedCustomer>("deleted_customer");
    parses_as::<stripe_shared::Account>("account");
    parses_as::<AccountLinkFields>("account_link");
    parses_as::<stripe_shared::Transfer>("transfer");
    // Nothing else in the folder goes untested.
    assert_eq!(json_files(&fixtures_dir().join("objects")).len(), 12, "a new object fixture needs a line here");
}

/// What the payout rail reads of an account link; async-stripe's model of one is in
/// async-stripe-connect, which Rekomi does not depend on.
#[derive(miniserde::Deserialize)]
#[allow(dead_code)] // Parsing is the check; nothing reads the fields.
struct AccountLinkFields {
    object: String,
    url: String,
    created: i64,
    expires_at: i64,
}

#[test]
fn every_fixture_is_described_in_the_readme() {
    let readme = std::fs::read_to_string(fixtures_dir().join("README.md")).expect("tests/fixtures/README.md");
    for folder in ["objects", "events/current", "events/older"] {
        for file in json_files(&fixtures_dir().join(folder)) {
            assert!(readme.contains(&format!("`{file}`")), "tests/fixtures/README.md does not describe {folder}/{file}");
        }
    }
}

#[test]
fn every_event_names_its_api_version_and_an_older_one_in_its_file_name() {
    let events = StripeEvents::in_repo();
    for set in ["current", "older"] {
        for file in events.files(set) {
            let event: Value = serde_json::from_slice(&events.bytes(set, &file)).unwrap();
            let version = event["api_version"].as_str().unwrap_or_else(|| panic!("{set}/{file} has no api_version"));
            if set == "current" {
                // The current shapes are those of 2025-09-30.clover and later.
                assert!(version >= "2025-09-30", "{set}/{file}: {version}");
            } else {
                assert!(version < "2025-03-31", "{set}/{file}: {version} is not an older version");
                assert!(file.contains(&format!("__{version}")), "{set}/{file} should name {version}");
            }
            assert_eq!(event["livemode"], false, "{set}/{file}: test mode only");
        }
    }
}

// ---- optional cross-check against the shared reference folder ----------------------------

/// Adds to `names` every field path of `value` (`invoice.lines.data[].id`), skipping the
/// contents of `metadata`, whose keys are free-form.
fn field_paths(value: &Value, path: &str, names: &mut BTreeSet<String>) {
    match value {
        Value::Object(object) => {
            for (key, field) in object {
                let at = format!("{path}.{key}");
                names.insert(at.clone());
                if key != "metadata" {
                    field_paths(field, &at, names);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                field_paths(item, &format!("{path}[]"), names);
            }
        }
        _ => {}
    }
}

/// Fields that Stripe documents but that its published examples leave out, so the cross-check
/// cannot find them there.
const DOCUMENTED_BUT_NOT_IN_THE_EXAMPLES: &[&str] = &[
    // `payment.payment_intent` is set when `payment.type` is `payment_intent`; Stripe's example
    // invoice payment only has the type.
    "invoice_payment.payment.payment_intent",
];

/// The object fixtures, each of a type Stripe's published objects show too.
const OBJECTS: [&str; 10] = [
    "coupon",
    "promotion_code",
    "discount",
    "invoice",
    "subscription",
    "invoice_payment",
    "customer",
    "account",
    "account_link",
    "transfer",
];

#[test]
fn the_fixtures_use_only_field_names_of_stripes_published_shapes_when_the_shared_folder_is_present() {
    let Some(objects) = StripeObjects::shared() else { return };
    let Some(shared) = StripeEvents::shared() else { return };
    // What Stripe's published objects and the shared current events hold, by object type.
    let mut known = BTreeSet::new();
    for name in OBJECTS.iter().chain(&["charge"]) {
        field_paths(&objects.object(name), name, &mut known);
    }
    field_paths(&objects.object("checkout_session"), "checkout.session", &mut known);
    for file in shared.files("current") {
        let event: Value = serde_json::from_slice(&shared.bytes("current", &file)).unwrap();
        if let Some(kind) = event["data"]["object"]["object"].as_str() {
            field_paths(&event["data"]["object"], kind, &mut known);
        }
    }
    known.extend(DOCUMENTED_BUT_NOT_IN_THE_EXAMPLES.iter().map(|name| (*name).to_owned()));

    let mut unknown = Vec::new();
    let own = StripeObjects::load();
    for name in OBJECTS {
        let mut names = BTreeSet::new();
        field_paths(&own.object(name), name, &mut names);
        unknown.extend(names.into_iter().filter(|n| !known.contains(n)).map(|n| format!("objects/{name}.json: {n}")));
    }
    let own = StripeEvents::in_repo();
    for file in own.files("current") {
        let event: Value = serde_json::from_slice(&own.bytes("current", &file)).unwrap();
        let kind = event["data"]["object"]["object"].as_str().unwrap_or_else(|| panic!("current/{file}: no data.object.object"));
        let mut names = BTreeSet::new();
        field_paths(&event["data"]["object"], kind, &mut names);
        unknown.extend(names.into_iter().filter(|n| !known.contains(n)).map(|n| format!("events/current/{file}: {n}")));
    }
    assert!(unknown.is_empty(), "fields Stripe's published shapes do not have:\n{}", unknown.join("\n"));
}
