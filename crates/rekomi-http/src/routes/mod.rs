//! Route handlers: thin translations between DTOs and use cases.

pub mod affiliates;
pub mod conversions;
pub mod coupons;
pub mod org;
pub mod programs;
pub mod stripe_webhooks;
pub mod webhook_endpoints;
