//! Outbound webhooks: endpoints, the transactional outbox, signed deliveries and their worker.

mod delivery;
mod endpoints;
mod model;
pub mod outbox;
pub mod sender;
mod store;

pub use delivery::*;
pub use endpoints::*;
pub use model::*;
pub use sender::*;
pub use store::*;
