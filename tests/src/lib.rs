//! Rekomi's cross-crate tests. This library holds what the test binaries in `tests/` share:
//!
//! - [`contract`]: the storage contract suite, written once against the storage port and run
//!   against every store implementation (`tests/store_contract.rs`);
//! - [`db`]: a fresh PostgreSQL database per test, cloned from a migrated template.

pub mod contract;
pub mod db;
