//! The fake store's slice for reference rates: the domain's `FxRepo` over `fx_rates`.

use rekomi_domain::fx::{FxRepo, ReferenceRate};
use rekomi_domain::kernel::money::Currency;
use rekomi_domain::ports::store::StoreError;
use time::Date;

use super::State;

impl FxRepo for State {
    fn reference_rate(&mut self, currency: Currency, from: Date, on: Date) -> Result<Option<ReferenceRate>, StoreError> {
        Ok(self.fx_rates.range((currency.code(), from)..=(currency.code(), on)).next_back().map(|(_, r)| *r))
    }

    fn upsert_reference_rates(&mut self, rates: &[ReferenceRate]) -> Result<usize, StoreError> {
        for r in rates {
            self.fx_rates.insert((r.currency.code(), r.day), *r);
        }
        Ok(rates.len())
    }
}
