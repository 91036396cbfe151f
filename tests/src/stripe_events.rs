//! Stripe events for end-to-end tests, built from the project's templates in
//! `tests/fixtures/stripe/` (their `"{{NAME}}"` placeholders are described in that folder's
//! README) and sent signed as Stripe signs them.

use std::path::Path;

use serde_json::{json, Value};

/// One of the project's templates with every `"{{NAME}}"` replaced by the JSON value given
/// (and `{{NAME}}` inside a longer string by the text). Fails on a placeholder left over.
pub fn fixture(name: &str, vars: &[(&str, Value)]) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join("stripe").join(name);
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (key, value) in vars {
        text = text.replace(&format!("\"{{{{{key}}}}}\""), &value.to_string());
        if let Some(inner) = value.as_str() {
            let escaped = Value::String(inner.to_owned()).to_string();
            text = text.replace(&format!("{{{{{key}}}}}"), &escaped[1..escaped.len() - 1]);
        }
    }
    assert!(!text.contains("{{"), "{name}: a placeholder was not filled:\n{text}");
    let parsed: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON once filled: {e}"));
    assert_eq!(parsed["object"], "event");
    text.into_bytes()
}

/// `charge.refunded` in the current shape (`charge.refunded.json`): a charge of
/// `payment_intent` naming no `invoice`, `amount_refunded` cumulative with `previously` refunded
/// before, created `created` (unix seconds).
pub fn charge_refunded(
    event: &str,
    payment_intent: &str,
    customer: &str,
    amount: i64,
    refunded: i64,
    previously: i64,
    created: i64,
) -> Vec<u8> {
    fixture(
        "charge.refunded.json",
        &[
            ("EVENT_ID", json!(event)),
            ("CREATED", json!(created)),
            ("CHARGE_ID", json!(format!("ch_{}", payment_intent.trim_start_matches("pi_")))),
            ("PAYMENT_INTENT_ID", json!(payment_intent)),
            ("CUSTOMER_ID", json!(customer)),
            ("AMOUNT", json!(amount)),
            ("AMOUNT_REFUNDED", json!(refunded)),
            ("FULLY_REFUNDED", json!(refunded >= amount)),
            ("PREVIOUSLY_REFUNDED", json!(previously)),
        ],
    )
}
