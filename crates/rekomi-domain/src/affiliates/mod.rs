//! Affiliates of a program, their links, applications and sub-affiliate recruitment.

mod model;
mod store;
mod usecases;

pub use model::*;
pub use store::*;
pub use usecases::*;
