//! Ports: the traits the domain needs from the outside world. Adapters implement them;
//! use cases are generic over them.

pub mod clock;
pub mod entropy;
pub mod events;
pub mod gateway;
pub mod sender;
pub mod store;

pub use clock::Clock;
pub use entropy::Entropy;
pub use events::{EventDecoder, StripeFact};
pub use gateway::{CouponDuration, CreateCoupon, CreatePromotionCode, DiscountSpec, GatewayContext, GatewayError, PaymentGateway};
pub use sender::{OutboundRequest, SendOutcome, WebhookSender};
pub use store::{transact, StoreError, Tx, TxOutcome, TxWork, UnitOfWork};
