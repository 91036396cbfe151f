//! Rekomi's Stripe adapter: implements the domain's
//! [`PaymentGateway`](rekomi_domain::ports::PaymentGateway) port (outbound) and its
//! [`EventDecoder`](rekomi_domain::stripe_inbox::facts::EventDecoder) port (webhook payloads into facts).
//!
//! Two gateways, named by technology:
//!
//! - [`StripeGateway`] talks to the Stripe API (or to any double listening on
//!   [`StripeConfig::api_base`]) through async-stripe 1.0. It sends the caller's idempotency key
//!   on every attempt, retries 429/5xx/connection failures itself and maps Stripe's answers onto
//!   [`GatewayError`](rekomi_domain::ports::GatewayError).
//! - [`OfflineGateway`] serves local mode, where the server runs without a Stripe secret: no
//!   network, Stripe-like ids derived from the idempotency key.
//!
//! [`StripeEventDecoder`] reads webhook payloads of every Stripe API version Rekomi may receive
//! (the account's or the endpoint's version) into [`StripeFact`](rekomi_domain::stripe_inbox::facts::StripeFact)s.
//!
//! Nothing else in the hexagon depends on this crate except the server that wires it in.

#![forbid(unsafe_code)]

mod config;
mod events;
mod gateway;
mod offline;

pub use config::{InvalidStripeConfig, StripeConfig};
pub use events::StripeEventDecoder;
pub use gateway::StripeGateway;
pub use offline::OfflineGateway;
