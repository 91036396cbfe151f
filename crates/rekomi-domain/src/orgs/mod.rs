//! Organizations (tenants) and their API keys.

mod model;
mod settings;
mod store;
mod usecases;

pub use model::*;
pub use settings::*;
pub use store::*;
pub use usecases::*;
