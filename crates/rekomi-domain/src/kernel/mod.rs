//! The shared kernel: what every capability speaks — ids, money and currencies, time and
//! randomness (the `Clock` and `Entropy` ports), actors and roles, plans, the error type,
//! pagination, text rules, webhook signatures and Stripe's ids.

pub mod actor;
pub mod clock;
pub mod entropy;
pub mod error;
pub mod ids;
pub mod money;
pub mod page;
pub mod plan;
pub mod signature;
pub mod stripe_ids;
pub mod text;
pub mod ttl_cache;
