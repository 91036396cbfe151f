//! Ports shared by several capabilities: the storage port's unit of work (each capability
//! brings its own repository slice, composed here into `Tx`) and the Stripe API gateway. A
//! capability's own ports live with it (`outbound::WebhookSender`,
//! `stripe_inbox::facts::EventDecoder`), as do the kernel's `Clock` and `Entropy`.

pub mod gateway;
pub mod store;

pub use gateway::{CreateCoupon, CreatePromotionCode, GatewayContext, GatewayError, PaymentGateway, Settlement};
pub use store::{transact, Savepoints, StoreError, Tx, TxOutcome, TxWork, UnitOfWork};
