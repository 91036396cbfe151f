//! An entry's rate to its home currency, and loading the ECB's rates.

use time::{Date, Duration};

use crate::fx::ecb::parse_ecb_csv;
use crate::fx::model::{FxRate, FxSource};
use crate::kernel::error::{DomainError, FieldError};
use crate::kernel::money::Currency;
use crate::ports::store::StoreError;
use crate::ports::Tx;
use crate::services::Services;

/// The ECB publishes on TARGET working days only; a sale on a weekend or holiday takes the
/// last rate published at most this many days before it.
pub const REFERENCE_LOOKBACK_DAYS: i64 = 7;

/// What an import loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FxImport {
    /// Rates written.
    pub rates: usize,
    /// The first and last day in the file.
    pub days: Option<(Date, Date)>,
}

fn euro_rate(tx: &mut dyn Tx, currency: Currency, on: Date) -> Result<Option<FxRate>, StoreError> {
    if currency.code() == "EUR" {
        return Ok(Some(FxRate::ONE));
    }
    let from = on - Duration::days(REFERENCE_LOOKBACK_DAYS);
    Ok(tx.reference_rate(currency, from, on)?.map(|r| r.rate))
}

/// Units of `home` per unit of `from` on `on` from the reference rates, with its source;
/// `None` when either currency has no rate published in the week before `on`.
///
/// # Errors
/// Storage.
pub fn rate_to_home(tx: &mut dyn Tx, from: Currency, home: Currency, on: Date) -> Result<Option<(FxRate, FxSource)>, StoreError> {
    if from == home {
        return Ok(Some((FxRate::ONE, FxSource::Identity)));
    }
    let (Some(eur_from), Some(eur_home)) = (euro_rate(tx, from, on)?, euro_rate(tx, home, on)?) else {
        return Ok(None);
    };
    Ok(FxRate::cross(eur_home, eur_from).map(|r| (r, FxSource::EcbReference)))
}

impl Services {
    /// Loads an ECB reference-rate CSV (admin command); rates already stored for the same
    /// currency and day are replaced.
    ///
    /// # Errors
    /// `validation_failed` naming the line for a file that is not an ECB CSV; storage.
    pub async fn import_fx_rates(&self, csv: &str) -> Result<FxImport, DomainError> {
        let rates = parse_ecb_csv(csv).map_err(|e| FieldError::invalid("file", e.to_string()))?;
        let days = rates.iter().map(|r| r.day).min().zip(rates.iter().map(|r| r.day).max());
        let written = self
            .tx(move |tx| {
                let mut written = 0;
                for chunk in rates.chunks(2_000) {
                    written += tx.upsert_reference_rates(chunk)?;
                }
                Ok(written)
            })
            .await?;
        Ok(FxImport { rates: written, days })
    }
}
