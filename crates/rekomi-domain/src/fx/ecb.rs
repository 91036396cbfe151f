//! The ECB's euro reference-rate CSV, in both of its published shapes: the history file
//! (`eurofxref-hist.csv`: `Date,USD,JPY,…` then `2026-10-30,1.1172,175.68,…`) and the daily file
//! (`eurofxref.csv`: `Date, USD, …` then `30 October 2026, 1.1172, …`). `N/A` and empty cells
//! (currencies the ECB stopped or had not started publishing) are skipped, as are currencies
//! outside Rekomi's supported list.

use time::macros::format_description;
use time::Date;

use crate::fx::model::{FxRate, ReferenceRate};
use crate::kernel::money::Currency;

/// The file is not an ECB reference-rate CSV.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct EcbParseError {
    /// 1-based.
    pub line: usize,
    /// Why.
    pub reason: String,
}

fn day(raw: &str) -> Option<Date> {
    Date::parse(raw, format_description!("[year]-[month]-[day]"))
        .or_else(|_| Date::parse(raw, format_description!("[day padding:none] [month repr:long] [year]")))
        .ok()
}

/// Every supported currency's rate of every day in the file.
///
/// # Errors
/// [`EcbParseError`] for a missing `Date` header, a row whose date does not parse, or a rate
/// that is not a positive decimal.
pub fn parse_ecb_csv(text: &str) -> Result<Vec<ReferenceRate>, EcbParseError> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or(EcbParseError { line: 1, reason: "the file is empty".to_owned() })?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    if columns.first().is_none_or(|c| !c.eq_ignore_ascii_case("date")) {
        return Err(EcbParseError { line: 1, reason: "the header does not start with Date".to_owned() });
    }
    let currencies: Vec<Option<Currency>> = columns.iter().skip(1).map(|c| Currency::parse(c).ok()).collect();
    let mut rates = Vec::new();
    for (index, line) in lines {
        let number = index + 1;
        let mut cells = line.split(',').map(str::trim);
        let raw_day = cells.next().unwrap_or_default();
        let on = day(raw_day).ok_or_else(|| EcbParseError { line: number, reason: format!("{raw_day:?} is not a date") })?;
        for (cell, currency) in cells.zip(currencies.iter()) {
            let Some(currency) = currency else { continue };
            if cell.is_empty() || cell.eq_ignore_ascii_case("N/A") {
                continue;
            }
            let rate = FxRate::parse(cell).map_err(|e| EcbParseError { line: number, reason: e.to_string() })?;
            rates.push(ReferenceRate { currency: *currency, day: on, rate });
        }
    }
    Ok(rates)
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn the_history_file_skips_missing_cells_and_unsupported_currencies() {
        let csv = "Date,USD,JPY,CYP,GBP,\n2026-10-30,1.1172,175.68,N/A,0.8338,\n2026-10-29,1.113,175.92,N/A,,\n";
        let rates = parse_ecb_csv(csv).unwrap();
        let got: Vec<(&str, Date, String)> = rates.iter().map(|r| (r.currency.code(), r.day, r.rate.to_string())).collect();
        assert_eq!(
            got,
            vec![
                ("USD", date!(2026 - 10 - 30), "1.1172".to_owned()),
                ("JPY", date!(2026 - 10 - 30), "175.68".to_owned()),
                ("GBP", date!(2026 - 10 - 30), "0.8338".to_owned()),
                ("USD", date!(2026 - 10 - 29), "1.113".to_owned()),
                ("JPY", date!(2026 - 10 - 29), "175.92".to_owned()),
            ]
        );
    }

    #[test]
    fn the_daily_file_with_its_long_dates_and_spaces_parses() {
        let csv = "Date, USD, JPY, GBP, \n30 October 2026, 1.1172, 175.68, 0.83380, \n";
        let rates = parse_ecb_csv(csv).unwrap();
        assert_eq!(rates.len(), 3);
        assert_eq!((rates[2].day, rates[2].rate.to_string()), (date!(2026 - 10 - 30), "0.8338".to_owned()));
    }

    #[test]
    fn a_file_that_is_not_an_ecb_csv_is_refused_with_its_line() {
        assert_eq!(parse_ecb_csv("").unwrap_err().line, 1);
        assert_eq!(parse_ecb_csv("Currency,USD\n").unwrap_err().line, 1);
        assert_eq!(parse_ecb_csv("Date,USD\nyesterday,1.1\n").unwrap_err().line, 2);
        assert_eq!(parse_ecb_csv("Date,USD\n2026-10-30,-1\n").unwrap_err().line, 2);
    }
}
