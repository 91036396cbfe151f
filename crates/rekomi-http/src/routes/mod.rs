//! Route handlers: thin translations between DTOs and use cases.

pub mod affiliates;
pub mod coupons;
pub mod org;
pub mod programs;
