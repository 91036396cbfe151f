//! Campaign coupons (Stripe coupons) and affiliate codes (Stripe promotion codes): creation in
//! two phases, archiving, the promotional-codes lookup, the reconciler, and the changes Stripe
//! reports about them.

mod campaigns;
mod codes;
mod lookup;
mod model;
mod reconcile;
mod store;
pub(crate) mod sync;
mod usecases;

pub(crate) use lookup::active_codes;
pub use model::*;
pub use store::*;
pub use usecases::*;
