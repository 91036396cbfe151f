//! Money out: the payable side of the commission ledger, payouts that pay its entries (Manual,
//! PayPal, Wise out of band; Stripe Connect by transfer), affiliates' payout accounts, and the
//! reconciler that settles transfers whose outcome was not known. See docs/payouts.md.

mod accounts;
pub(crate) mod events;
pub mod ledger;
mod model;
pub mod rail;
mod reconcile;
mod store;
mod usecases;

pub use accounts::{OnboardingLink, RecordPayoutAccount};
pub use ledger::{Balance, EntryClaim, IneligibilityCode, PayableWindow};
pub use model::{PayableEntry, Payout, PayoutAccount, PayoutFilter, PayoutLineItem, PayoutMethod, PayoutStatus, PayoutView};
pub use rail::PayoutRail;
pub use reconcile::RECONCILE_AFTER;
pub use store::{PayableQuery, PayoutRepo};
pub use usecases::{CandidateView, PayoutPreview, PayoutSelection, RunPayouts, PAYOUTS_PLAN};
