//! Affiliate programs (campaigns): commission defaults, cookie window, recurring rules.

mod model;
mod store;
mod usecases;

pub use model::*;
pub use store::*;
