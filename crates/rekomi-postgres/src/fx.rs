//! Reference rates in PostgreSQL: [`FxRepo`] for [`PgTx`] over `fx_reference_rates`.

use diesel::prelude::*;
use diesel::upsert::excluded;
use rekomi_domain::fx::{FxRate, FxRepo, ReferenceRate};
use rekomi_domain::kernel::money::Currency;
use rekomi_domain::ports::store::StoreError;
use time::Date;

use crate::columns::currency;
use crate::error::bad_row;
use crate::schema::fx_reference_rates as fx;
use crate::tx::PgTx;

impl FxRepo for PgTx<'_> {
    fn reference_rate(&mut self, code: Currency, from: Date, on: Date) -> Result<Option<ReferenceRate>, StoreError> {
        let row: Option<(String, Date, String)> = self.read(|c| {
            fx::table
                .filter(fx::currency.eq(code.code()))
                .filter(fx::day.between(from, on))
                .order(fx::day.desc())
                .select((fx::currency, fx::day, fx::rate))
                .first(c)
                .optional()
        })?;
        row.map(|(cur, day, rate)| {
            Ok(ReferenceRate {
                currency: currency("fx_reference_rates", "currency", &cur)?,
                day,
                rate: FxRate::parse(&rate).map_err(|e| bad_row("fx_reference_rates", "rate", e))?,
            })
        })
        .transpose()
    }

    fn upsert_reference_rates(&mut self, rates: &[ReferenceRate]) -> Result<usize, StoreError> {
        let rows: Vec<_> =
            rates.iter().map(|r| (fx::currency.eq(r.currency.code()), fx::day.eq(r.day), fx::rate.eq(r.rate.to_string()))).collect();
        self.write(|c| {
            diesel::insert_into(fx::table)
                .values(&rows)
                .on_conflict((fx::currency, fx::day))
                .do_update()
                .set(fx::rate.eq(excluded(fx::rate)))
                .execute(c)
        })
    }
}
