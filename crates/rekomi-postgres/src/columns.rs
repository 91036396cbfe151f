//! Column decoding shared by the rows of every capability module: the PostgreSQL adapter's
//! side of the domain's value types. A row reads back through the domain's own `parse`
//! functions, so a value the domain would refuse surfaces as `StoreError::Unexpected`
//! (naming its table and column) instead of a value that breaks an invariant later.

use std::str::FromStr;

use rekomi_domain::kernel::money::Currency;
use rekomi_domain::kernel::stripe_ids::InvalidStripeId;
use rekomi_domain::ports::store::StoreError;
use rekomi_domain::programs::{Commission, CommissionType, Hundredths};

use crate::error::bad_row;

/// Decodes one of the domain's `api_enum!` values (`X::parse(&str) -> Option<X>`).
pub(crate) fn api_enum<T>(table: &str, column: &str, raw: &str, parse: fn(&str) -> Option<T>) -> Result<T, StoreError> {
    parse(raw).ok_or_else(|| bad_row(table, column, format!("unknown value {raw:?}")))
}

/// Narrows an `integer` column to the domain's `u16`.
pub(crate) fn to_u16(table: &str, column: &str, v: i32) -> Result<u16, StoreError> {
    u16::try_from(v).map_err(|_| bad_row(table, column, format!("{v} is outside 0..=65535")))
}

/// Narrows a `bigint` column to the domain's `u32`.
pub(crate) fn to_u32(table: &str, column: &str, v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| bad_row(table, column, format!("{v} is outside the u32 range")))
}

/// Narrows a column to the domain's `u8`.
pub(crate) fn to_u8(table: &str, column: &str, v: i64) -> Result<u8, StoreError> {
    u8::try_from(v).map_err(|_| bad_row(table, column, format!("{v} is outside 0..=255")))
}

/// Decodes a currency column through [`Currency::parse`].
pub(crate) fn currency(table: &str, column: &str, raw: &str) -> Result<Currency, StoreError> {
    Currency::parse(raw).map_err(|e| bad_row(table, column, e))
}

/// Decodes a Stripe id column through the id type's `parse` (a `StripeCustomerId`, a
/// `StripePaymentRef`, …).
pub(crate) fn stripe_id<T: FromStr<Err = InvalidStripeId>>(table: &str, column: &str, raw: &str) -> Result<T, StoreError> {
    raw.parse().map_err(|e: InvalidStripeId| bad_row(table, column, e))
}

/// [`stripe_id`] for a nullable column.
pub(crate) fn stripe_id_opt<T: FromStr<Err = InvalidStripeId>>(
    table: &str,
    column: &str,
    raw: Option<&str>,
) -> Result<Option<T>, StoreError> {
    raw.map(|raw| stripe_id(table, column, raw)).transpose()
}

/// Decodes a commission stored as a type column and a value column, through
/// [`Commission::new`] (a percentage above 100 or an oversized fixed amount is refused).
pub(crate) fn commission(table: &str, column: &str, kind: &str, value: i64) -> Result<Commission, StoreError> {
    let kind = api_enum(table, column, kind, CommissionType::parse)?;
    Commission::new(kind, Hundredths::new(value), column).map_err(|e| bad_row(table, column, e))
}
