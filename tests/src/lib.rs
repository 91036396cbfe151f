//! Rekomi's cross-crate tests. This library holds what the test binaries in `tests/` share:
//!
//! - [`contract`]: the storage contract suite, written once against the storage port and run
//!   against every store implementation (`tests/store_contract.rs`), one module per capability;
//! - [`db`]: a fresh PostgreSQL database per test, cloned from a migrated template;
//! - [`app`]: the end-to-end harness, the real server over HTTP on a fresh database
//!   (`tests/coupon_walkthrough.rs`, `auth_and_plans.rs`, `tenant_isolation.rs`,
//!   `bad_input.rs`);
//! - [`stripe_double`]: the stateful Stripe HTTP double that server talks to;
//! - [`stripe_events`]: signed Stripe events from the project's templates.

pub mod app;
pub mod contract;
pub mod db;
pub mod stripe_double;
pub mod stripe_events;
