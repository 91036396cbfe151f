//! The Stripe inbox: verified webhook events stored on arrival and processed by leased workers
//! into the other capabilities' facts.

pub(crate) mod apply;
pub(crate) mod enrich;
pub mod facts;
mod ingest;
mod model;
mod store;
mod usecases;
mod worker;

pub use ingest::*;
pub use model::*;
pub use store::*;
pub use worker::*;
