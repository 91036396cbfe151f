//! Home currency and exchange rates: the rate each ledger entry stores to its organization's
//! home currency, from the ECB's daily euro reference rates (loaded by `rekomi-server admin fx
//! import`) or, when a charge settled in another currency, Stripe's own balance-transaction
//! rate. A rate that is not known is stored as unknown, never guessed. See docs/payouts.md.

mod ecb;
mod model;
mod store;
mod usecases;

pub use ecb::{parse_ecb_csv, EcbParseError};
pub use model::{FxRate, FxSource, InvalidRate, ReferenceRate, RATE_SCALE};
pub use store::FxRepo;
pub use usecases::{rate_to_home, FxImport, REFERENCE_LOOKBACK_DAYS};
