//! Webhook signatures: `t=<unix>,v1=<hex>` headers, HMAC-SHA256 over `"{t}.{body}"`.
//! Stripe signs inbound events this way (`Stripe-Signature`), and Rekomi signs its outbound
//! deliveries the same way (`X-Rekomi-Signature`). Server-to-server conversions use the same
//! HMAC under their own header scheme (`t=…,sig=…`, see `tracking::signature`), through
//! [`sign`] and [`matches()`].

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The most `v1` values a header may carry (Stripe sends one, two during a rotation).
const MAX_CANDIDATES: usize = 8;

/// How far a signature's timestamp may be from now, in seconds.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No header, or no `t=` in it.
    #[error("the signature header is missing or has no timestamp")]
    Malformed,
    /// The timestamp is outside the tolerance.
    #[error("the signature timestamp is outside the tolerance")]
    Stale,
    /// No `v1` matched any secret.
    #[error("no signature matches")]
    Mismatch,
}

/// `hex(HMAC-SHA256(secret, "{timestamp}.{body}"))`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = mac_for(secret);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature` (raw bytes, not hex) is `HMAC-SHA256(secret, "{timestamp}.{body}")`,
/// compared in constant time.
pub fn matches(secret: &str, timestamp: i64, body: &[u8], signature: &[u8]) -> bool {
    let mut mac = mac_for(secret);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(signature).is_ok()
}

fn mac_for(secret: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable_hmac(),
    }
}

#[allow(clippy::panic)]
fn unreachable_hmac() -> HmacSha256 {
    panic!("HMAC-SHA256 accepts keys of every length")
}

/// The header value for an outbound delivery: `t=<unix>,v1=<hex>`.
pub fn header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

/// Verifies a `t=…,v1=…[,v1=…]` header against any of `secrets` (several during rotation),
/// comparing in constant time. Other schemes (`v0`) are ignored. Returns the timestamp.
///
/// # Errors
/// [`SignatureError`].
pub fn verify(header: &str, body: &[u8], secrets: &[String], now_unix: i64) -> Result<i64, SignatureError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => candidates.push(v),
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    // The body is hashed once per secret, and only a few candidates are compared, so a header
    // stuffed with `v1` values cannot make an unauthenticated request expensive.
    if candidates.is_empty() || candidates.len() > MAX_CANDIDATES {
        return Err(SignatureError::Mismatch);
    }
    let decoded: Vec<Vec<u8>> = candidates.iter().filter_map(|c| hex::decode(c).ok()).collect();
    for secret in secrets {
        let mut mac = mac_for(secret);
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        for candidate in &decoded {
            if mac.clone().verify_slice(candidate).is_ok() {
                // The age is checked after a match so a stale but genuine event is reported
                // as stale rather than as forged.
                if (now_unix - t).abs() > TOLERANCE_SECS {
                    return Err(SignatureError::Stale);
                }
                return Ok(t);
            }
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_body_verifies_and_a_changed_one_does_not() {
        let secrets = vec!["whsec_a".to_owned()];
        let h = header("whsec_a", 1000, b"{}");
        assert_eq!(verify(&h, b"{}", &secrets, 1000), Ok(1000));
        assert_eq!(verify(&h, b"{ }", &secrets, 1000), Err(SignatureError::Mismatch));
        assert_eq!(verify(&h, b"{}", &["whsec_b".to_owned()], 1000), Err(SignatureError::Mismatch));
        assert_eq!(verify(&h, b"{}", &secrets, 1301), Err(SignatureError::Stale));
        assert_eq!(verify(&h, b"{}", &secrets, 700), Ok(1000));
        assert_eq!(verify("v1=abc", b"{}", &secrets, 1000), Err(SignatureError::Malformed));
        assert_eq!(verify("t=1000", b"{}", &secrets, 1000), Err(SignatureError::Mismatch));
    }

    #[test]
    fn a_header_stuffed_with_candidates_is_refused_without_trying_them() {
        let good = sign("whsec_a", 5, b"x");
        let stuffed = format!("t=5,{}v1={good}", "v1=00,".repeat(8));
        assert_eq!(verify(&stuffed, b"x", &["whsec_a".to_owned()], 5), Err(SignatureError::Mismatch));
    }

    #[test]
    fn any_v1_and_any_secret_may_match_during_rotation() {
        let good = sign("whsec_new", 5, b"x");
        let h = format!("t=5,v1=deadbeef,v1={good},v0=ignored");
        assert_eq!(verify(&h, b"x", &["whsec_old".to_owned(), "whsec_new".to_owned()], 5), Ok(5));
    }
}
