//! Server-to-server tracking: conversions a brand's own backend reports
//! (`POST /api/tracking/s2s`) for sales Stripe does not see. Each request carries an API key
//! and an HMAC signature made with the organization's `rks_…` signing secret
//! ([`SigningSecret`]); a rotated secret keeps verifying for [`ROTATION_OVERLAP_HOURS`] hours.
//! The conversion itself is recorded through the conversions capability's sale path
//! (commission, ledger, override, outbound `conversion.created`), deduplicated per
//! organization by its `externalEventId`.

pub mod cache;
pub mod model;
pub mod signature;
pub mod store;
pub mod usecases;

pub use cache::SecretCache;
pub use model::{IssuedTrackingSecret, S2sConversion, SigningSecret, TrackingSecret, ROTATION_OVERLAP_HOURS, SIGNING_SECRET_PREFIX};
pub use signature::{S2sSignature, SignatureRefusal};
pub use store::TrackingRepo;
pub use usecases::{S2sError, S2sOutcome};
