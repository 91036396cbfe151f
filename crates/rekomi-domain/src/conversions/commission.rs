//! Commission arithmetic, exact in integer minor units.
//!
//! **Rounding rule**: every division rounds half away from zero to the nearest minor unit
//! (`divide_rounding`). 0.5 cent becomes 1 cent and -0.5 becomes -1, so a refund claws back
//! exactly what the matching sale earned. Intermediates are `i128`, so no product overflows.
//!
//! Clawbacks are computed from cumulative totals, not per refund: after a refund the total
//! clawed back is `round(commission × refunded / amount)`, and the new ledger entry is that
//! total minus what was already clawed. Partial refunds therefore never drift by rounding, and
//! a full refund always claws back the whole commission.

use crate::kernel::money::{Currency, Money};
use crate::programs::{Commission, CommissionType, Hundredths};

/// `numerator / denominator`, rounded half away from zero. `denominator` must be positive.
pub fn divide_rounding(numerator: i128, denominator: i128) -> i128 {
    debug_assert!(denominator > 0);
    let half = denominator / 2;
    if numerator >= 0 {
        (numerator + half) / denominator
    } else {
        -((-numerator + half) / denominator)
    }
}

fn clamp(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// `rate` percent (in hundredths: `2000` is 20 %) of `amount_minor`.
pub fn percentage_of(amount_minor: i64, rate: Hundredths) -> i64 {
    clamp(divide_rounding(i128::from(amount_minor) * i128::from(rate.get()), 10_000))
}

/// A fixed amount given in hundredths of the currency's major unit, in minor units
/// (20.00 is 2000 cents, or 20 yen).
pub fn fixed_amount(value: Hundredths, currency: Currency) -> i64 {
    let per_major = 10_i128.pow(currency.exponent());
    clamp(divide_rounding(i128::from(value.get()) * per_major, 100))
}

/// The commission a sale of `amount` earns at `rate`.
pub fn commission_for(amount: Money, rate: Commission) -> Money {
    let minor = match rate.kind {
        CommissionType::Percentage => percentage_of(amount.minor(), rate.value),
        CommissionType::Fixed => fixed_amount(rate.value, amount.currency()),
    };
    Money::new(minor, amount.currency())
}

/// The (negative) ledger amount that brings the commission clawed back for one invoice in line
/// with `refunded_total` of its `invoice_amount`: the cumulative target minus what was already
/// clawed (`already_clawed`, negative or zero). Zero when nothing new is due, so a replayed or
/// stale refund event changes nothing.
pub fn clawback_delta(commission: i64, invoice_amount: i64, refunded_total: i64, already_clawed: i64) -> i64 {
    if invoice_amount <= 0 || commission == 0 {
        return 0;
    }
    let refunded = refunded_total.clamp(0, invoice_amount);
    let target = -clamp(divide_rounding(i128::from(commission) * i128::from(refunded), i128::from(invoice_amount)));
    // Only ever claw back further: an event reporting less than already seen is stale.
    (target - already_clawed).min(0)
}

/// Whether the `index`-th paid invoice (1 = the first) of a subscription earns commission:
/// the first `delay_invoices` earn nothing; `recurring_months` `None` pays every renewal, `Some(0)`
/// only the first invoice, `Some(n)` the first invoice and the first `n` renewals.
pub fn invoice_earns(index: u32, recurring_months: Option<u16>, delay_invoices: u16) -> bool {
    if index == 0 || index <= u32::from(delay_invoices) {
        return false;
    }
    let renewal = index - 1;
    recurring_months.is_none_or(|n| renewal <= u32::from(n))
}

/// The override a recruiter earns on a recruit's commission (`percent` in hundredths).
pub fn override_of(recruit_commission: i64, percent: Hundredths) -> i64 {
    percentage_of(recruit_commission, percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::USD
    }

    #[test]
    fn division_rounds_half_away_from_zero() {
        let table =
            [(5, 10, 1), (4, 10, 0), (15, 10, 2), (25, 10, 3), (-5, 10, -1), (-4, 10, 0), (-15, 10, -2), (0, 7, 0), (1, 3, 0), (2, 3, 1)];
        for (n, d, want) in table {
            assert_eq!(divide_rounding(n, d), want, "{n}/{d}");
        }
    }

    #[test]
    fn percentage_commission_table() {
        // (amount, rate in hundredths of a percent, commission)
        let table = [
            (9900, 2000, 1980), // spec example: 20 % of 99.00
            (1500, 2000, 300),
            (1, 5000, 1), // 0.5 cent rounds up
            (1, 4999, 0),
            (3, 3333, 1),        // 0.9999 cents
            (12345, 1250, 1543), // 154.3125 -> 154.31 ... in cents 1543.125 -> 1543
            (10, 2500, 3),       // 2.5 -> 3
            (0, 2000, 0),
            (9900, 0, 0),
            (9900, 10_000, 9900), // 100 %
        ];
        for (amount, rate, want) in table {
            assert_eq!(percentage_of(amount, Hundredths::new(rate)), want, "{amount} at {rate}");
        }
    }

    #[test]
    fn fixed_commissions_follow_the_currency_minor_unit() {
        assert_eq!(fixed_amount(Hundredths::new(2000), usd()), 2000);
        assert_eq!(fixed_amount(Hundredths::new(2050), Currency::parse("JPY").unwrap()), 21, "20.50 yen rounds to 21");
        assert_eq!(fixed_amount(Hundredths::new(2000), Currency::parse("JPY").unwrap()), 20);
        let c = Commission { kind: CommissionType::Fixed, value: Hundredths::new(500) };
        assert_eq!(commission_for(Money::new(100, usd()), c), Money::new(500, usd()), "a flat fee ignores the sale amount");
    }

    #[test]
    fn partial_refunds_claw_back_exactly_the_commission_in_total() {
        // Sale 1000, commission 333 (33.3 %); refunds of 1, 1, 1, then the rest.
        let (commission, amount) = (333, 1000);
        let mut clawed = 0;
        for refunded_total in [1, 2, 3, 500, 1000] {
            clawed += clawback_delta(commission, amount, refunded_total, clawed);
        }
        assert_eq!(clawed, -333);
    }

    #[test]
    fn a_replayed_or_stale_refund_claws_back_nothing_more() {
        let clawed = clawback_delta(1980, 9900, 4950, 0);
        assert_eq!(clawed, -990);
        assert_eq!(clawback_delta(1980, 9900, 4950, clawed), 0, "same cumulative amount again");
        assert_eq!(clawback_delta(1980, 9900, 1000, clawed), 0, "an older, smaller amount");
        assert_eq!(clawback_delta(1980, 9900, 9900, clawed), -990, "the rest");
        assert_eq!(clawback_delta(1980, 9900, 20_000, -1980), 0, "never beyond the whole commission");
    }

    #[test]
    fn recurring_rule_table() {
        // (index, recurring_months, delay, earns)
        let table = [
            (1, None, 0, true),
            (2, None, 0, true),
            (50, None, 0, true),
            (1, Some(0), 0, true),
            (2, Some(0), 0, false),
            (1, Some(2), 0, true),
            (2, Some(2), 0, true),
            (3, Some(2), 0, true),
            (4, Some(2), 0, false),
            (1, None, 1, false),
            (2, None, 1, true),
            (1, Some(0), 1, false),
            (2, Some(0), 1, false),
            (2, Some(2), 2, false),
            (3, Some(2), 2, true),
            (4, Some(2), 2, false),
            (0, None, 0, false),
        ];
        for (index, months, delay, earns) in table {
            assert_eq!(invoice_earns(index, months, delay), earns, "invoice {index}, months {months:?}, delay {delay}");
        }
    }

    #[test]
    fn overrides_are_a_percentage_of_the_recruits_commission() {
        assert_eq!(override_of(1980, Hundredths::new(1000)), 198);
        assert_eq!(override_of(-1980, Hundredths::new(1000)), -198);
    }
}
