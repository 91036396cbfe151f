//! The storage port's slice for reference rates.

use time::Date;

use crate::fx::model::ReferenceRate;
use crate::kernel::money::Currency;
use crate::ports::store::StoreError;

/// The ECB reference rates.
pub trait FxRepo {
    /// The latest rate of one euro in `currency` published on a day in `[from, on]`.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn reference_rate(&mut self, currency: Currency, from: Date, on: Date) -> Result<Option<ReferenceRate>, StoreError>;
    /// Inserts rates, replacing those of the same currency and day. Returns how many were
    /// written.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    fn upsert_reference_rates(&mut self, rates: &[ReferenceRate]) -> Result<usize, StoreError>;
}
