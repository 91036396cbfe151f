//! Rekomi's domain: the centre of the hexagon. One folder per capability, each holding its
//! model, pure rules, use cases and the slice of the storage port it needs; `kernel` holds
//! what they share. No I/O crate is a dependency here: storage, Stripe, HTTP and the runtime
//! live in the adapters. See docs/architecture.md for the map.

pub mod kernel;

pub mod affiliates;
pub mod audit;
pub mod conversions;
pub mod coupons;
pub mod fx;
pub mod idempotency;
pub mod jobs;
pub mod orgs;
pub mod outbound;
pub mod payouts;
pub mod ports;
pub mod programs;
pub mod services;
pub mod stripe_inbox;
pub mod tracking;
pub mod traffic;
