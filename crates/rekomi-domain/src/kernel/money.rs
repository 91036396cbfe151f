//! Money and currencies. Amounts are integer minor units (cents for USD, yen for JPY); there
//! is no floating point anywhere money is computed.

use std::fmt;
use std::str::FromStr;

/// The ISO-4217 currencies Rekomi accepts (the spec's home-currency allowlist).
pub const SUPPORTED_CURRENCIES: [&str; 31] = [
    "AED", "AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "IDR", "ILS", "INR", "JPY", "KRW", "MXN", "MYR",
    "NOK", "NZD", "PHP", "PLN", "RON", "SAR", "SEK", "SGD", "THB", "TRY", "USD", "ZAR",
];

/// The largest amount accepted where money enters, in minor units: Stripe's own limit (twelve
/// digits), for Stripe events and server-to-server conversions alike.
pub const MAX_AMOUNT_MINOR: i64 = 999_999_999_999;

/// A supported ISO-4217 currency, always upper-case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Currency(&'static str);

/// The text is not a currency on the allowlist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported currency {0:?}: expected an ISO-4217 code from the supported list")]
pub struct UnsupportedCurrency(pub String);

impl Currency {
    /// US dollars, the default home currency.
    pub const USD: Currency = Currency("USD");

    /// Parses a currency code case-insensitively (Stripe reports them lower-case).
    ///
    /// # Errors
    /// [`UnsupportedCurrency`] when the code is not on the allowlist.
    pub fn parse(code: &str) -> Result<Self, UnsupportedCurrency> {
        let upper = code.trim().to_ascii_uppercase();
        SUPPORTED_CURRENCIES.iter().find(|c| **c == upper).map(|c| Self(c)).ok_or_else(|| UnsupportedCurrency(code.to_owned()))
    }

    /// The upper-case ISO code, as the API shows it.
    pub fn code(&self) -> &'static str {
        self.0
    }

    /// How many decimal places the currency's minor unit has (Stripe's convention: JPY and
    /// KRW are zero-decimal, every other supported currency has cents).
    pub fn exponent(&self) -> u32 {
        match self.0 {
            "JPY" | "KRW" => 0,
            _ => 2,
        }
    }

    /// The lower-case code, as Stripe expects it.
    pub fn stripe_code(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl FromStr for Currency {
    type Err = UnsupportedCurrency;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// An amount in integer minor units of one currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// An amount of `minor` units (may be negative: clawbacks are negative ledger amounts).
    pub const fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// The amount in minor units.
    pub const fn minor(&self) -> i64 {
        self.minor
    }

    /// The currency.
    pub const fn currency(&self) -> Currency {
        self.currency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_parse_case_insensitively_and_display_upper_case() {
        assert_eq!(Currency::parse("usd").map(|c| c.code()), Ok("USD"));
        assert_eq!(Currency::parse(" EUR ").map(|c| c.code()), Ok("EUR"));
        assert_eq!(Currency::parse("jpy").map(|c| c.stripe_code()), Ok("jpy".to_owned()));
    }

    #[test]
    fn currencies_outside_the_allowlist_are_rejected() {
        for bad in ["", "US", "XXX", "BTC", "usdd", "EURO"] {
            assert!(Currency::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn the_allowlist_is_sorted_and_has_the_spec_size() {
        let mut sorted = SUPPORTED_CURRENCIES;
        sorted.sort_unstable();
        assert_eq!(sorted, SUPPORTED_CURRENCIES);
        assert_eq!(SUPPORTED_CURRENCIES.len(), 31);
    }
}
