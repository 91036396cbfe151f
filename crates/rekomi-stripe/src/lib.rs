//! Rekomi's Stripe adapter: implements the domain's
//! [`PaymentGateway`](rekomi_domain::ports::PaymentGateway) port (coupons, promotion codes and
//! the reads of the webhook pipeline), its [`PayoutRail`](rekomi_domain::payouts::rail::PayoutRail)
//! port (the Stripe Connect calls that pay affiliates) and its
//! [`EventDecoder`](rekomi_domain::stripe_inbox::facts::EventDecoder) port (webhook payloads into facts).
//!
//! Two implementations of each outbound port, named by technology:
//!
//! - [`StripeGateway`] and [`StripePayoutRail`] talk to the Stripe API (or to any double
//!   listening on [`StripeConfig::api_base`]) through async-stripe 1.0, both built from the same
//!   [`StripeConfig`]. They send the caller's idempotency key on every attempt, retry
//!   429/5xx/connection failures themselves and map Stripe's answers onto
//!   [`GatewayError`](rekomi_domain::ports::GatewayError). The rail acts on the platform account
//!   only: affiliates' Express accounts and the transfers to them.
//! - [`OfflineGateway`] and [`OfflinePayoutRail`] serve local mode, where the server runs
//!   without a Stripe secret: no network, Stripe-like ids derived from the idempotency key,
//!   local Express accounts that can be paid at once.
//!
//! [`StripeEventDecoder`] reads webhook payloads of every Stripe API version Rekomi may receive
//! (the account's or the endpoint's version) into [`StripeFact`](rekomi_domain::stripe_inbox::facts::StripeFact)s.
//!
//! Nothing else in the hexagon depends on this crate except the server that wires it in.

#![forbid(unsafe_code)]

mod client;
mod config;
mod events;
mod gateway;
mod offline;
mod payout_rail;

pub use config::{InvalidStripeConfig, StripeConfig};
pub use events::StripeEventDecoder;
pub use gateway::StripeGateway;
pub use offline::{OfflineGateway, OfflinePayoutRail};
pub use payout_rail::StripePayoutRail;
