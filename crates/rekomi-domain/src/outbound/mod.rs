//! Outbound webhooks: endpoints, the transactional outbox, signed deliveries and their worker.

mod model;
pub mod outbox;
pub mod sender;
mod store;
mod usecases;

pub use model::*;
pub use sender::*;
pub use store::*;
pub use usecases::*;
