//! Conversions: credited sales and leads, their commission ledger, attribution and commission
//! rules, refunds and sub-affiliate overrides, server-to-server sales, and the read side (lists,
//! export).

pub mod attribution;
pub mod click_rewards;
pub mod commission;
pub mod leads;
mod model;
pub(crate) mod record;
pub(crate) mod refund;
pub(crate) mod s2s;
mod store;
mod usecases;

pub use model::*;
pub use store::*;
pub use usecases::*;
