//! The outbound webhook transport: one HTTP POST per delivery attempt. Implemented by
//! `rekomi-webhooks` (reqwest, no redirects, a timeout, private targets refused unless
//! allowed) and by `rekomi-fakes` for tests.

use async_trait::async_trait;

/// One attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundRequest {
    /// The endpoint URL.
    pub url: String,
    /// The JSON body.
    pub body: String,
    /// Extra headers (`X-Rekomi-Signature`, `X-Rekomi-Event`, `X-Rekomi-Delivery-Id`).
    pub headers: Vec<(String, String)>,
}

/// What the attempt got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// A 2xx answer.
    Delivered {
        /// The status.
        status: u16,
    },
    /// Any other answer, a redirect (never followed), a timeout or a connection failure.
    Failed {
        /// The status, when an answer came.
        status: Option<u16>,
        /// What went wrong, for the delivery log.
        error: String,
    },
}

/// Sends webhook deliveries.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait WebhookSender: Send + Sync + 'static {
    /// Sends one attempt.
    async fn send(&self, request: &OutboundRequest) -> SendOutcome;

    /// Whether `url` may receive webhooks: http(s), and its host does not resolve to a
    /// private, loopback or link-local address unless the operator allowed such targets.
    ///
    /// # Errors
    /// Why the target is refused, for the API's error message.
    async fn check_target(&self, url: &str) -> Result<(), String>;
}
