//! The append-only audit log.

mod model;
mod store;

pub use model::*;
pub use store::*;
