//! Organizations (tenants) and their API keys.

mod model;
mod store;
mod usecases;

pub use model::*;
pub use store::*;
pub use usecases::*;
