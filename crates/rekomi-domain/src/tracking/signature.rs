//! The `X-Rekomi-Signature` of server-to-server requests: `t=<unix>,sig=<hex>`, where `sig` is
//! `hex(HMAC-SHA256(rks_secret, "<t>.<raw body bytes>"))` (the kernel's
//! [`crate::kernel::signature`] HMAC, under the `sig` scheme rather than the
//! webhooks' `v1`). A request verifies when any live secret of the organization matches and
//! `t` is within [`TOLERANCE_SECS`] of now, in either direction.

use time::OffsetDateTime;

use crate::kernel::signature::{self, TOLERANCE_SECS};
use crate::tracking::model::TrackingSecret;

/// The longest header accepted; a real one is about 80 bytes.
const MAX_HEADER_LEN: usize = 256;

/// Why a signature was refused (each is a `401`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureRefusal {
    /// No `X-Rekomi-Signature` header.
    #[error("send X-Rekomi-Signature: t=<unix>,sig=<hex HMAC-SHA256 of \"<t>.<body>\">")]
    Missing,
    /// The header is not `t=<unix>,sig=<64 hex digits>`.
    #[error("X-Rekomi-Signature must be t=<unix seconds>,sig=<64 hex digits>")]
    Malformed,
    /// The organization has no signing secret yet.
    #[error("the organization has no signing secret; create one with POST /api/v1/settings/tracking-secret")]
    NoSecret,
    /// No live secret produces this signature over this body and timestamp.
    #[error("the signature does not match the body with any current signing secret")]
    Mismatch,
    /// The signature matches but `t` is more than 300 seconds from now.
    #[error("the signature timestamp is more than 300 seconds from the server's clock")]
    Expired,
}

/// A parsed `X-Rekomi-Signature` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S2sSignature {
    /// `t`, unix seconds.
    pub timestamp: i64,
    /// `sig`, decoded.
    pub signature: Vec<u8>,
}

impl S2sSignature {
    /// Parses `t=<unix>,sig=<hex>`: each key exactly once, in any order, spaces around the
    /// parts allowed, `sig` exactly 64 hex digits (SHA-256).
    ///
    /// # Errors
    /// [`SignatureRefusal::Malformed`].
    pub fn parse(header: &str) -> Result<Self, SignatureRefusal> {
        if header.len() > MAX_HEADER_LEN {
            return Err(SignatureRefusal::Malformed);
        }
        let (mut timestamp, mut signature) = (None, None);
        for part in header.split(',') {
            let (key, value) = part.trim().split_once('=').ok_or(SignatureRefusal::Malformed)?;
            match key {
                "t" if timestamp.is_none() && !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                    timestamp = Some(value.parse::<i64>().map_err(|_| SignatureRefusal::Malformed)?);
                }
                "sig" if signature.is_none() && value.len() == 64 => {
                    signature = Some(hex::decode(value).map_err(|_| SignatureRefusal::Malformed)?);
                }
                _ => return Err(SignatureRefusal::Malformed),
            }
        }
        match (timestamp, signature) {
            (Some(timestamp), Some(signature)) => Ok(Self { timestamp, signature }),
            _ => Err(SignatureRefusal::Malformed),
        }
    }
}

/// The header value that signs `body` with `secret` at `timestamp` (for senders' tests and the
/// docs' examples).
pub fn header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},sig={}", signature::sign(secret, timestamp, body))
}

/// Verifies a request's signature header against the organization's `secrets`, of which only
/// those live at `now` count. Returns the signed timestamp.
///
/// # Errors
/// [`SignatureRefusal`]: `Missing` without a header, `Malformed`, `NoSecret` when no secret is
/// live, `Mismatch`, or `Expired` for a genuine signature outside the tolerance (checked after
/// a match, so a forgery is never reported as merely late).
pub fn verify(header: Option<&str>, body: &[u8], secrets: &[TrackingSecret], now: OffsetDateTime) -> Result<i64, SignatureRefusal> {
    let header = header.ok_or(SignatureRefusal::Missing)?;
    let parsed = S2sSignature::parse(header)?;
    let mut live = secrets.iter().filter(|s| s.is_live_at(now)).peekable();
    if live.peek().is_none() {
        return Err(SignatureRefusal::NoSecret);
    }
    if !live.any(|s| signature::matches(s.secret.expose(), parsed.timestamp, body, &parsed.signature)) {
        return Err(SignatureRefusal::Mismatch);
    }
    if now.unix_timestamp().abs_diff(parsed.timestamp) > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureRefusal::Expired);
    }
    Ok(parsed.timestamp)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use time::Duration;

    use super::*;
    use crate::kernel::ids::{OrgId, TrackingSecretId};
    use crate::tracking::model::SigningSecret;

    const NOW: i64 = 1_715_366_423;

    fn secret(n: u8, expires_at: Option<OffsetDateTime>) -> TrackingSecret {
        let text = format!("rks_{}", char::from(b'a' + n).to_string().repeat(40));
        TrackingSecret {
            id: TrackingSecretId::from_uuid(uuid::Uuid::from_u128(u128::from(n))),
            org_id: OrgId::from_uuid(uuid::Uuid::nil()),
            secret: SigningSecret::parse(&text).unwrap(),
            created_at: now() - Duration::days(2),
            expires_at,
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(NOW).unwrap()
    }

    #[test]
    fn signature_rule_table() {
        let body = br#"{"externalEventId":"purchase_abc123","affiliateSlug":"jane","amountCents":9900,"currency":"USD"}"#;
        let reserialized = br#"{"externalEventId": "purchase_abc123", "affiliateSlug": "jane", "amountCents": 9900, "currency": "USD"}"#;
        let current = secret(0, None);
        let other = secret(1, None);
        let rotated_inside = secret(2, Some(now() + Duration::hours(1)));
        let rotated_after = secret(3, Some(now() - Duration::seconds(1)));
        let key = |s: &TrackingSecret| s.secret.expose().to_owned();
        let sign = |s: &TrackingSecret, t: i64| header(&key(s), t, body);
        let all = vec![current.clone(), rotated_inside.clone(), rotated_after.clone()];
        let good = sign(&current, NOW);
        // (case, header, body, secrets, outcome)
        type Case<'a> = (&'a str, Option<String>, &'a [u8], Vec<TrackingSecret>, Result<i64, SignatureRefusal>);
        let table: Vec<Case<'_>> = vec![
            ("good", Some(good.clone()), body, all.clone(), Ok(NOW)),
            ("good, parts reordered and spaced", Some(format!("sig={} , t={NOW}", &good[good.len() - 64..])), body, all.clone(), Ok(NOW)),
            ("wrong secret", Some(sign(&other, NOW)), body, all.clone(), Err(SignatureRefusal::Mismatch)),
            ("300 s old", Some(sign(&current, NOW - 300)), body, all.clone(), Ok(NOW - 300)),
            ("stale", Some(sign(&current, NOW - 301)), body, all.clone(), Err(SignatureRefusal::Expired)),
            ("300 s ahead", Some(sign(&current, NOW + 300)), body, all.clone(), Ok(NOW + 300)),
            ("future", Some(sign(&current, NOW + 301)), body, all.clone(), Err(SignatureRefusal::Expired)),
            ("re-serialized body", Some(good.clone()), reserialized, all.clone(), Err(SignatureRefusal::Mismatch)),
            ("rotated, inside the overlap", Some(sign(&rotated_inside, NOW)), body, all.clone(), Ok(NOW)),
            ("rotated, after the overlap", Some(sign(&rotated_after, NOW)), body, all.clone(), Err(SignatureRefusal::Mismatch)),
            ("no live secret", Some(sign(&rotated_after, NOW)), body, vec![rotated_after.clone()], Err(SignatureRefusal::NoSecret)),
            ("no secret at all", Some(good.clone()), body, vec![], Err(SignatureRefusal::NoSecret)),
            ("missing header", None, body, all.clone(), Err(SignatureRefusal::Missing)),
            ("empty header", Some(String::new()), body, all.clone(), Err(SignatureRefusal::Malformed)),
            ("webhook scheme", Some(good.replace("sig=", "v1=")), body, all.clone(), Err(SignatureRefusal::Malformed)),
            ("no timestamp", Some(good[good.find("sig=").unwrap()..].to_owned()), body, all.clone(), Err(SignatureRefusal::Malformed)),
            ("no sig", Some(format!("t={NOW}")), body, all.clone(), Err(SignatureRefusal::Malformed)),
            ("non-numeric t", Some(good.replace(&format!("t={NOW}"), "t=soon")), body, all.clone(), Err(SignatureRefusal::Malformed)),
            ("negative t", Some(good.replace(&format!("t={NOW}"), "t=-1")), body, all.clone(), Err(SignatureRefusal::Malformed)),
            ("short sig", Some(good[..good.len() - 2].to_owned()), body, all.clone(), Err(SignatureRefusal::Malformed)),
            ("non-hex sig", Some(format!("{}zz", &good[..good.len() - 2])), body, all.clone(), Err(SignatureRefusal::Malformed)),
            ("sig twice", Some(format!("{good},sig={}", "0".repeat(64))), body, all.clone(), Err(SignatureRefusal::Malformed)),
            ("t twice", Some(format!("t=1,{good}")), body, all.clone(), Err(SignatureRefusal::Malformed)),
            ("overlong", Some(format!("{good},{}", "x".repeat(300))), body, all.clone(), Err(SignatureRefusal::Malformed)),
            ("forged and stale", Some(sign(&other, NOW - 1000)), body, all.clone(), Err(SignatureRefusal::Mismatch)),
        ];
        for (case, header, body, secrets, want) in table {
            assert_eq!(verify(header.as_deref(), body, &secrets, now()), want, "{case}");
        }
    }

    #[test]
    fn the_header_is_the_kernel_hmac_under_the_sig_scheme() {
        let h = header("rks_key", 5, b"x");
        assert_eq!(h, format!("t=5,sig={}", signature::sign("rks_key", 5, b"x")));
        let parsed = S2sSignature::parse(&h).unwrap();
        assert!(signature::matches("rks_key", 5, b"x", &parsed.signature));
        assert!(!signature::matches("rks_key", 6, b"x", &parsed.signature));
    }
}
