//! Signing secrets and the server-to-server conversion a request reports.

use time::{Duration, OffsetDateTime};

use crate::kernel::entropy::Entropy;
use crate::kernel::error::FieldError;
use crate::kernel::ids::{OrgId, TrackingSecretId};
use crate::kernel::money::{Currency, MAX_AMOUNT_MINOR};
use crate::kernel::text::{has_control, is_format};

/// The prefix of every signing secret.
pub const SIGNING_SECRET_PREFIX: &str = "rks_";
const SECRET_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_RANDOM_CHARS: usize = 40;
/// How many characters of a secret are shown after it was issued (`rks_` and four more).
const DISPLAY_PREFIX_CHARS: usize = SIGNING_SECRET_PREFIX.len() + 4;

/// How long a rotated-out secret keeps verifying, so senders can switch without downtime.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;

/// The longest `externalEventId`, in bytes.
pub const MAX_EXTERNAL_EVENT_ID: usize = 255;
/// The longest `customerId`, in bytes.
pub const MAX_CUSTOMER_ID: usize = 255;
/// The longest `affiliateSlug`, in bytes (link slugs are far shorter).
pub const MAX_AFFILIATE_SLUG: usize = 255;

/// An HMAC signing secret: `rks_` and 40 base-62 characters (about 238 bits). It is stored as
/// it is (an HMAC cannot be verified from a hash of its key) and shown in full only in the
/// answer that issued it; its `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningSecret({}…)", self.display_prefix())
    }
}

/// The text is not a signing secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a signing secret is rks_ followed by 40 letters and digits")]
pub struct InvalidSigningSecret;

impl SigningSecret {
    /// Draws a new secret from `entropy`.
    pub fn generate(entropy: &dyn Entropy) -> Self {
        let mut s = String::with_capacity(SIGNING_SECRET_PREFIX.len() + SECRET_RANDOM_CHARS);
        s.push_str(SIGNING_SECRET_PREFIX);
        for _ in 0..SECRET_RANDOM_CHARS {
            s.push(char::from(SECRET_ALPHABET[entropy.index(SECRET_ALPHABET.len())]));
        }
        Self(s)
    }

    /// Parses a stored secret.
    ///
    /// # Errors
    /// [`InvalidSigningSecret`] unless it is `rks_` and 40 base-62 characters.
    pub fn parse(raw: &str) -> Result<Self, InvalidSigningSecret> {
        let random = raw.strip_prefix(SIGNING_SECRET_PREFIX).ok_or(InvalidSigningSecret)?;
        if random.len() == SECRET_RANDOM_CHARS && random.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidSigningSecret)
        }
    }

    /// The secret text: the HMAC key, and the one answer that issues it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The first characters (`rks_ab12`), safe to show and log.
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(DISPLAY_PREFIX_CHARS).collect()
    }
}

/// A stored signing secret of an organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackingSecret {
    /// Id.
    pub id: TrackingSecretId,
    /// Organization.
    pub org_id: OrgId,
    /// The HMAC key.
    pub secret: SigningSecret,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// When it stops verifying: `None` for the current secret, set when it is rotated out.
    pub expires_at: Option<OffsetDateTime>,
}

impl TrackingSecret {
    /// Whether it still verifies signatures at `now`.
    pub fn is_live_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_none_or(|end| end > now)
    }

    /// When a secret rotated out at `now` stops verifying.
    pub fn overlap_end(now: OffsetDateTime) -> OffsetDateTime {
        now + Duration::hours(ROTATION_OVERLAP_HOURS)
    }
}

/// A newly issued secret, shown once.
#[derive(Debug)]
pub struct IssuedTrackingSecret {
    /// The stored record.
    pub record: TrackingSecret,
    /// The secret it replaced, with the expiry it was given (`None` for a first secret).
    pub previous: Option<TrackingSecret>,
}

/// A conversion reported by a brand's server: the request body, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S2sConversion {
    external_event_id: String,
    affiliate_slug: String,
    amount_minor: i64,
    currency: Currency,
    customer_id: Option<String>,
}

/// An identifier field: 1 to `max` bytes, no surrounding whitespace, no control or invisible
/// formatting characters (the value is stored and compared as it is).
fn identifier(field: &str, raw: &str, max: usize) -> Result<String, FieldError> {
    if raw.is_empty() || raw.len() > max {
        return Err(FieldError::invalid(field, format!("must be 1-{max} bytes")));
    }
    if raw.trim() != raw {
        return Err(FieldError::invalid(field, "must not start or end with whitespace"));
    }
    if has_control(raw, false) || raw.chars().any(is_format) {
        return Err(FieldError::invalid(field, "must not contain control or invisible formatting characters"));
    }
    Ok(raw.to_owned())
}

impl S2sConversion {
    /// Validates a reported conversion: `externalEventId` 1–255 bytes, `affiliateSlug` given,
    /// `amountCents` from 1 to [`MAX_AMOUNT_MINOR`], `currency` on the supported list,
    /// `customerId` (optional) 1–255 bytes.
    ///
    /// # Errors
    /// `validation_failed` naming the field, or `unsupported_currency` on `currency`.
    pub fn parse(
        external_event_id: &str,
        affiliate_slug: &str,
        amount_minor: i64,
        currency: &str,
        customer_id: Option<&str>,
    ) -> Result<Self, FieldError> {
        let external_event_id = identifier("externalEventId", external_event_id, MAX_EXTERNAL_EVENT_ID)?;
        let affiliate_slug = identifier("affiliateSlug", affiliate_slug, MAX_AFFILIATE_SLUG)?;
        if !(1..=MAX_AMOUNT_MINOR).contains(&amount_minor) {
            return Err(FieldError::invalid("amountCents", format!("must be an integer from 1 to {MAX_AMOUNT_MINOR}")));
        }
        let currency = Currency::parse(currency).map_err(|e| FieldError::coded("currency", "unsupported_currency", e.to_string()))?;
        let customer_id = customer_id.map(|c| identifier("customerId", c, MAX_CUSTOMER_ID)).transpose()?;
        Ok(Self { external_event_id, affiliate_slug, amount_minor, currency, customer_id })
    }

    /// The sender's id of the sale, unique per organization (the dedupe key).
    pub fn external_event_id(&self) -> &str {
        &self.external_event_id
    }

    /// The credited affiliate's link slug.
    pub fn affiliate_slug(&self) -> &str {
        &self.affiliate_slug
    }

    /// The sale amount in minor units.
    pub fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    /// The sale currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The sender's customer id, when given.
    pub fn customer_id(&self) -> Option<&str> {
        self.customer_id.as_deref()
    }

    /// The source claimed once per organization.
    pub(crate) fn source(&self) -> String {
        format!("s2s:{}", self.external_event_id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    struct Counter(std::sync::atomic::AtomicU8);
    impl Entropy for Counter {
        fn fill(&self, buf: &mut [u8]) {
            for b in buf {
                *b = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    #[test]
    fn a_generated_secret_parses_back_and_never_prints_itself() {
        let secret = SigningSecret::generate(&Counter(0.into()));
        assert!(secret.expose().starts_with("rks_"));
        assert_eq!(secret.expose().len(), 44);
        assert_eq!(SigningSecret::parse(secret.expose()), Ok(secret.clone()));
        assert_eq!(secret.display_prefix().len(), 8);
        assert!(!format!("{secret:?}").contains(secret.expose()));
        for bad in ["", "rks_", "rk_live_abc", &format!("rks_{}", "a".repeat(39)), &format!("rks_{}-", "a".repeat(39))] {
            assert_eq!(SigningSecret::parse(bad), Err(InvalidSigningSecret), "{bad}");
        }
    }

    #[test]
    fn a_rotated_secret_verifies_until_its_overlap_ends() {
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let mut s = TrackingSecret {
            id: TrackingSecretId::from_uuid(uuid::Uuid::nil()),
            org_id: OrgId::from_uuid(uuid::Uuid::nil()),
            secret: SigningSecret::generate(&Counter(0.into())),
            created_at: t0,
            expires_at: None,
        };
        assert!(s.is_live_at(t0 + Duration::days(365)));
        s.expires_at = Some(TrackingSecret::overlap_end(t0));
        assert!(s.is_live_at(t0 + Duration::hours(23)));
        assert!(!s.is_live_at(t0 + Duration::hours(24)));
    }

    #[test]
    fn reported_conversions_are_validated_field_by_field() {
        let ok = S2sConversion::parse("purchase_abc123", "jane", 9900, "usd", Some("cus_external_xyz")).unwrap();
        assert_eq!((ok.external_event_id(), ok.amount_minor(), ok.currency().code()), ("purchase_abc123", 9900, "USD"));
        assert_eq!(ok.source(), "s2s:purchase_abc123");
        let long = "x".repeat(256);
        // (externalEventId, affiliateSlug, amountCents, currency, customerId, field, code)
        type Case<'a> = (&'a str, &'a str, i64, &'a str, Option<&'a str>, &'a str, &'a str);
        let table: [Case<'_>; 10] = [
            ("", "jane", 1, "USD", None, "externalEventId", "validation_failed"),
            (&long, "jane", 1, "USD", None, "externalEventId", "validation_failed"),
            (" id", "jane", 1, "USD", None, "externalEventId", "validation_failed"),
            ("a\u{0}b", "jane", 1, "USD", None, "externalEventId", "validation_failed"),
            ("id", "", 1, "USD", None, "affiliateSlug", "validation_failed"),
            ("id", "jane", 0, "USD", None, "amountCents", "validation_failed"),
            ("id", "jane", -5, "USD", None, "amountCents", "validation_failed"),
            ("id", "jane", MAX_AMOUNT_MINOR + 1, "USD", None, "amountCents", "validation_failed"),
            ("id", "jane", 1, "XYZ", None, "currency", "unsupported_currency"),
            ("id", "jane", 1, "USD", Some(""), "customerId", "validation_failed"),
        ];
        for (event, slug, amount, currency, customer, field, code) in table {
            let err = S2sConversion::parse(event, slug, amount, currency, customer).unwrap_err();
            assert_eq!((err.field.as_str(), err.code), (field, code), "{event:?} {slug:?} {amount} {currency} {customer:?}");
        }
        assert!(S2sConversion::parse(&"x".repeat(255), "jane", MAX_AMOUNT_MINOR, "JPY", None).is_ok());
    }
}
