//! Rekomi's domain: the centre of the hexagon. Pure value objects, entities and rules, the use
//! cases that orchestrate them, and the ports (traits) that adapters implement. No I/O crate is
//! a dependency here: storage, Stripe, HTTP and the runtime live in the adapters.

pub mod actor;
pub mod affiliate;
pub mod attribution;
pub mod audit;
pub mod commission;
pub mod conversion;
pub mod coupon;
pub mod error;
pub mod ids;
pub mod inbox;
pub mod jobs;
pub mod money;
pub mod org;
pub mod outbound;
pub mod page;
pub mod plan;
pub mod ports;
pub mod program;
pub mod signature;
pub mod usecases;
