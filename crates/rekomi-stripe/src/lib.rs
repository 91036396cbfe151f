//! Rekomi's Stripe adapter: an outbound adapter implementing the domain's
//! [`PaymentGateway`](rekomi_domain::ports::PaymentGateway) port.
//!
//! Two implementations, named by technology:
//!
//! - [`StripeGateway`] talks to the Stripe API (or to any double listening on
//!   [`StripeConfig::api_base`]) through async-stripe 1.0. It sends the caller's idempotency key
//!   on every attempt, retries 429/5xx/connection failures itself and maps Stripe's answers onto
//!   [`GatewayError`](rekomi_domain::ports::GatewayError).
//! - [`OfflineGateway`] serves local mode, where the server runs without a Stripe secret: no
//!   network, Stripe-like ids derived from the idempotency key.
//!
//! Nothing else in the hexagon depends on this crate except the server that wires it in.

#![forbid(unsafe_code)]

mod config;
mod gateway;
mod offline;

pub use config::{InvalidStripeConfig, StripeConfig};
pub use gateway::StripeGateway;
pub use offline::OfflineGateway;
