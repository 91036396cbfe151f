//! Configuration of [`StripeGateway`](crate::StripeGateway) and
//! [`StripePayoutRail`](crate::StripePayoutRail).

use std::fmt;
use std::time::Duration;

/// How [`StripeGateway`](crate::StripeGateway) and [`StripePayoutRail`](crate::StripePayoutRail)
/// reach Stripe.
///
/// Start from [`StripeConfig::new`] and override fields with struct-update syntax:
///
/// ```
/// # use std::time::Duration;
/// # use rekomi_stripe::StripeConfig;
/// let config = StripeConfig {
///     api_base: "http://127.0.0.1:12111/".to_owned(),
///     base_backoff: Duration::from_millis(1),
///     ..StripeConfig::new("sk_test_123")
/// };
/// assert_eq!(config.max_retries, 3);
/// ```
#[derive(Clone)]
pub struct StripeConfig {
    /// The secret (`sk_…`) or restricted (`rk_…`) key. Redacted from `Debug`.
    pub secret_key: String,
    /// Where the API lives; requests go to `{api_base}v1/…`.
    /// [`StripeConfig::DEFAULT_API_BASE`] unless a test points it at a double.
    pub api_base: String,
    /// How many times a 429, 5xx or connection failure is retried after the first attempt.
    pub max_retries: u32,
    /// The first retry waits about this long; each further retry doubles it, plus jitter.
    pub base_backoff: Duration,
    /// Upper bound for one HTTP attempt. async-stripe has no default, and a hung connection
    /// would otherwise hold the caller forever; a timed-out attempt is retried like a 5xx.
    pub request_timeout: Duration,
}

impl StripeConfig {
    /// Stripe's production API.
    pub const DEFAULT_API_BASE: &'static str = "https://api.stripe.com/";
    /// Default for [`StripeConfig::max_retries`].
    pub const DEFAULT_MAX_RETRIES: u32 = 3;
    /// Default for [`StripeConfig::base_backoff`].
    pub const DEFAULT_BASE_BACKOFF: Duration = Duration::from_millis(200);
    /// Default for [`StripeConfig::request_timeout`].
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

    /// The production defaults for `secret_key`.
    pub fn new(secret_key: impl Into<String>) -> Self {
        Self {
            secret_key: secret_key.into(),
            api_base: Self::DEFAULT_API_BASE.to_owned(),
            max_retries: Self::DEFAULT_MAX_RETRIES,
            base_backoff: Self::DEFAULT_BASE_BACKOFF,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

impl fmt::Debug for StripeConfig {
    // Hand-written so the secret key can never reach a log line through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeConfig")
            .field("secret_key", &"[redacted]")
            .field("api_base", &self.api_base)
            .field("max_retries", &self.max_retries)
            .field("base_backoff", &self.base_backoff)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// The configuration cannot produce a working client (empty key, key or URL not usable in an
/// HTTP request). The message never contains the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Stripe configuration: {0}")]
pub struct InvalidStripeConfig(pub String);
