//! Exchange rates as exact decimals.

use std::fmt;

use time::Date;

use crate::kernel::money::Currency;

/// Decimal places a rate keeps: ECB rates have at most 6 significant digits, Stripe's up to 10;
/// a cross rate is rounded half up to this many places.
pub const RATE_SCALE: u32 = 12;
const SCALE: u128 = 10u128.pow(RATE_SCALE);

/// Units of one currency per unit of another, as an exact decimal (`1.0956`), never a float.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FxRate {
    /// The rate times 10^12.
    scaled: u128,
}

/// The text is not a positive decimal rate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a positive decimal rate with at most 12 decimal places")]
pub struct InvalidRate(pub String);

impl FxRate {
    /// One (the rate of a currency to itself).
    pub const ONE: FxRate = FxRate { scaled: SCALE };

    /// Parses `1.0956` (digits, an optional point and at most 12 decimals; positive).
    ///
    /// # Errors
    /// [`InvalidRate`].
    pub fn parse(raw: &str) -> Result<Self, InvalidRate> {
        let bad = || InvalidRate(raw.to_owned());
        let raw_trimmed = raw.trim();
        let (int, frac) = raw_trimmed.split_once('.').unwrap_or((raw_trimmed, ""));
        if int.is_empty()
            || int.len() > 12
            || frac.len() > RATE_SCALE as usize
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let int: u128 = int.parse().map_err(|_| bad())?;
        let frac_value: u128 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| bad())? };
        let scaled = int * SCALE + frac_value * 10u128.pow(RATE_SCALE - frac.len() as u32);
        if scaled == 0 {
            return Err(bad());
        }
        Ok(Self { scaled })
    }

    /// `numerator / denominator` rounded half up to 12 places: the rate of B per A from the
    /// euro's rates of A (`denominator`) and B (`numerator`). `None` below the smallest rate.
    pub fn cross(numerator: FxRate, denominator: FxRate) -> Option<FxRate> {
        let scaled = (numerator.scaled * SCALE * 2 / denominator.scaled).div_ceil(2);
        (scaled > 0).then_some(Self { scaled })
    }
}

impl fmt::Display for FxRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let int = self.scaled / SCALE;
        let frac = self.scaled % SCALE;
        if frac == 0 {
            return write!(f, "{int}");
        }
        let digits = format!("{frac:012}");
        write!(f, "{int}.{}", digits.trim_end_matches('0'))
    }
}

/// Where an entry's rate came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FxSource {
    /// The entry is in the home currency (rate 1).
    Identity,
    /// Stripe's balance transaction of the charge, which settled in the home currency.
    StripeBalanceTransaction,
    /// The ECB's reference rates of the sale's day (or the last published day before it).
    EcbReference,
}

impl FxSource {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::StripeBalanceTransaction => "stripe_balance_transaction",
            Self::EcbReference => "ecb_reference",
        }
    }

    /// Parses the stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "identity" => Some(Self::Identity),
            "stripe_balance_transaction" => Some(Self::StripeBalanceTransaction),
            "ecb_reference" => Some(Self::EcbReference),
            _ => None,
        }
    }
}

/// One ECB reference rate: one euro in `currency` on `day`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReferenceRate {
    /// The currency.
    pub currency: Currency,
    /// The publication day.
    pub day: Date,
    /// Units of `currency` per euro.
    pub rate: FxRate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print_exactly() {
        for (raw, shown) in [("1.0956", "1.0956"), ("175.68", "175.68"), ("1", "1"), ("0.000001", "0.000001"), ("20275.17", "20275.17")] {
            assert_eq!(FxRate::parse(raw).unwrap().to_string(), shown);
        }
        for bad in ["", "0", "0.0", "-1", "1e3", "1.0000000000001", "N/A", "1,2", ".5"] {
            assert!(FxRate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_cross_rate_rounds_half_up_at_twelve_places() {
        let usd = FxRate::parse("1.1172").unwrap();
        let gbp = FxRate::parse("0.8338").unwrap();
        // GBP per USD = 0.8338 / 1.1172 = 0.746330110991...;
        assert_eq!(FxRate::cross(gbp, usd).unwrap().to_string(), "0.746330110992");
        assert_eq!(FxRate::cross(usd, usd), Some(FxRate::ONE));
        let three = FxRate::parse("3").unwrap();
        assert_eq!(FxRate::cross(FxRate::ONE, three).unwrap().to_string(), "0.333333333333");
        assert_eq!(FxRate::cross(FxRate::parse("2").unwrap(), three).unwrap().to_string(), "0.666666666667");
    }
}
