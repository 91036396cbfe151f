//! Organizations (tenants) and their API keys.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::kernel::entropy::Entropy;
use crate::kernel::error::FieldError;
use crate::kernel::ids::{ApiKeyId, OrgId};
use crate::kernel::money::Currency;
use crate::kernel::plan::{PlanTier, SubscriptionStatus};
use crate::kernel::stripe_ids::StripeAccountId;

/// An organization: a brand running affiliate programs on Rekomi.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    /// Id.
    pub id: OrgId,
    /// Display name.
    pub name: String,
    /// The branded subdomain (`{handle}.rekomi.com`), unique.
    pub handle: Handle,
    /// Billing contact.
    pub billing_email: Option<String>,
    /// IANA time zone name.
    pub timezone: String,
    /// Plan tier.
    pub plan_tier: PlanTier,
    /// Rekomi subscription status.
    pub subscription_status: SubscriptionStatus,
    /// End of the trial, for trialing organizations.
    pub trial_ends_at: Option<OffsetDateTime>,
    /// Currency dashboards normalize to.
    pub home_currency: Currency,
    /// When the home currency last changed (`None`: never).
    pub home_currency_changed_at: Option<OffsetDateTime>,
    /// Days a conversion stays Pending before it becomes Approved.
    pub payout_grace_days: u16,
    /// The smallest payout (minor units of the payout's currency); smaller balances wait.
    pub minimum_payout_minor: i64,
    /// The connected Stripe account (`acct_…`) when linked through Stripe Connect.
    pub stripe_account_id: Option<StripeAccountId>,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

impl Organization {
    /// The subscription status at `now`: a trial whose end has passed counts as `None`.
    pub fn status_at(&self, now: OffsetDateTime) -> SubscriptionStatus {
        match (self.subscription_status, self.trial_ends_at) {
            (SubscriptionStatus::Trialing, Some(end)) if end <= now => SubscriptionStatus::None,
            (status, _) => status,
        }
    }
}

/// An organization handle: `[a-z0-9-]{3,63}`, no leading or trailing hyphen.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Handle(String);

impl Handle {
    /// Validates a handle.
    ///
    /// # Errors
    /// A `validation_failed` [`FieldError`] on `handle`.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let ok = (3..=63).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-')
            && !raw.ends_with('-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::invalid("handle", "must be 3-63 characters of a-z, 0-9 and '-', not starting or ending with '-'"))
        }
    }

    /// The handle text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an API key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiKeyScope {
    /// GET/HEAD/OPTIONS.
    Read,
    /// Every method.
    ReadWrite,
}

impl ApiKeyScope {
    /// The name as the API shows it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::ReadWrite => "read_write",
        }
    }

    /// Parses `read` or `read_write`.
    ///
    /// # Errors
    /// A `validation_failed` [`FieldError`] on `scope`.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        match raw {
            "read" => Ok(Self::Read),
            "read_write" => Ok(Self::ReadWrite),
            _ => Err(FieldError::invalid("scope", "must be read or read_write")),
        }
    }

    /// Whether a key of this scope satisfies `required`.
    pub fn satisfies(&self, required: ApiKeyScope) -> bool {
        *self >= required
    }
}

/// A stored API key. The secret itself is never stored: only its SHA-256 hash and a short
/// display prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// Id.
    pub id: ApiKeyId,
    /// Owning organization.
    pub org_id: OrgId,
    /// Scope.
    pub scope: ApiKeyScope,
    /// The first characters of the secret, for display (`rk_live_ab12`).
    pub prefix: String,
    /// Hex SHA-256 of the whole secret.
    pub hash: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Revocation time; a revoked key authenticates nothing.
    pub revoked_at: Option<OffsetDateTime>,
}

/// The prefix of every API key secret.
pub const API_KEY_PREFIX: &str = "rk_live_";
const KEY_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const KEY_RANDOM_CHARS: usize = 40;

/// A freshly generated API key secret, shown to its owner exactly once.
pub struct ApiKeySecret(String);

impl std::fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeySecret(<redacted>)")
    }
}

impl ApiKeySecret {
    /// Draws a new secret: `rk_live_` and 40 base-62 characters (about 238 bits).
    pub fn generate(entropy: &dyn Entropy) -> Self {
        let mut s = String::with_capacity(API_KEY_PREFIX.len() + KEY_RANDOM_CHARS);
        s.push_str(API_KEY_PREFIX);
        for _ in 0..KEY_RANDOM_CHARS {
            s.push(char::from(KEY_ALPHABET[entropy.index(KEY_ALPHABET.len())]));
        }
        Self(s)
    }

    /// The secret text (for the one response that shows it).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The display prefix stored beside the hash.
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(API_KEY_PREFIX.len() + 4).collect()
    }
}

/// The stored hash of an API key secret (hex SHA-256).
pub fn hash_api_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Usage counts shown in the billing state's plan-limits snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrgUsage {
    /// Affiliates (not deleted).
    pub affiliates: i64,
    /// Programs (not archived).
    pub campaigns: i64,
}

#[cfg(test)]
mod tests {
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
    fn api_key_secrets_have_the_live_prefix_and_hash_to_sha256_hex() {
        let secret = ApiKeySecret::generate(&Counter(0.into()));
        assert!(secret.expose().starts_with("rk_live_"));
        assert_eq!(secret.expose().len(), 48);
        assert_eq!(secret.display_prefix().len(), 12);
        assert_eq!(hash_api_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(!format!("{secret:?}").contains("rk_live_"));
    }

    #[test]
    fn read_write_satisfies_read_but_not_the_reverse() {
        assert!(ApiKeyScope::ReadWrite.satisfies(ApiKeyScope::Read));
        assert!(ApiKeyScope::Read.satisfies(ApiKeyScope::Read));
        assert!(!ApiKeyScope::Read.satisfies(ApiKeyScope::ReadWrite));
    }

    #[test]
    fn handles_follow_the_subdomain_rule() {
        for ok in ["acme", "acme-co", "a1b"] {
            assert!(Handle::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "-acme", "acme-", "Acme", "ac me", "acme_co"] {
            assert!(Handle::parse(bad).is_err(), "{bad}");
        }
    }
}
