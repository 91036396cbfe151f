//! What every capability's request and response bodies share: timestamps, the list envelope
//! and its cursors, exact decimals, enum fields decoded as text, PATCH fields that tell absent
//! from null, the value sets of the OpenAPI document, and the error envelope's schema. Each
//! capability's own bodies live in its folder (`programs::dto`, `coupons::dto`, …). Requests
//! refuse unknown fields so a misspelled key is reported instead of ignored. Enum fields are
//! decoded as text and parsed so an unknown value answers 400 naming the field and listing the
//! accepted values.

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rekomi_domain::kernel::money::SUPPORTED_CURRENCIES;
use rekomi_domain::kernel::page::{Page, PageRequest};
use rekomi_domain::kernel::plan::PlanTier;
use rekomi_domain::programs::Hundredths;
use serde::{Deserialize, Deserializer, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime};
use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

// ---- timestamps and field decoding ------------------------------------------------------

/// Formats a timestamp as RFC 3339 in UTC with whole seconds (`2026-05-01T12:00:00Z`).
pub fn ts(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())
}

/// [`ts`] for optional timestamps.
pub fn ts_opt(t: Option<OffsetDateTime>) -> Option<String> {
    t.map(ts)
}

/// Parses an RFC 3339 timestamp request field (body fields such as `expiresAt`, where a bare
/// date would leave open which instant of the day is meant).
///
/// # Errors
/// 400 naming `field`.
pub fn parse_ts(field: &str, raw: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    raw.map(|s| {
        OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|_| ApiError::invalid(field, format!("{field} must be an RFC 3339 timestamp such as 2026-12-31T23:59:59Z")))
    })
    .transpose()
}

/// Parses a query parameter that takes a time (`since`, `until`, `before`): an RFC 3339
/// timestamp with its offset (`2026-04-01T09:30:00+02:00`), or a calendar date (`2026-04-01`)
/// meaning that day's start in UTC. Every such parameter goes through here, so they all take
/// the same shapes; its schema in the document is [`TimeParam`].
///
/// # Errors
/// 400 naming `field` for anything else, an impossible date (`2026-02-30`) or time
/// (`T25:00:00Z`) included.
pub fn parse_time_param(field: &str, raw: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    raw.map(|s| {
        calendar_date(s).map(|d| d.midnight().assume_utc()).or_else(|| OffsetDateTime::parse(s, &Rfc3339).ok()).ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("{field} must be a date such as 2026-04-01 or an RFC 3339 timestamp such as 2026-04-01T09:30:00Z"),
            )
        })
    })
    .transpose()
}

/// `YYYY-MM-DD` exactly: four-digit year, two-digit month and day, a day the month has. The
/// shape is checked by hand because `time`'s ISO 8601 parser also takes week and ordinal dates.
fn calendar_date(s: &str) -> Option<Date> {
    let number = |part: &str, len: usize| -> Option<u16> {
        if part.len() == len && part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let mut parts = s.splitn(3, '-');
    let (year, month, day) = (number(parts.next()?, 4)?, number(parts.next()?, 2)?, number(parts.next()?, 2)?);
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    Date::from_calendar_date(i32::from(year), month, u8::try_from(day).ok()?).ok()
}

/// The schema of a time query parameter: a date or a timestamp, as [`parse_time_param`] takes.
pub struct TimeParam;

impl utoipa::PartialSchema for TimeParam {
    fn schema() -> RefOr<Schema> {
        let string = |format| ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(format)));
        AnyOfBuilder::new().item(string(KnownFormat::Date)).item(string(KnownFormat::DateTime)).into()
    }
}

impl ToSchema for TimeParam {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("TimeParam")
    }
}

/// Deserializes an optional field that must not be `null` when present (PATCH fields that
/// cannot be cleared): absent is `None`, `null` is a type error naming the field.
pub fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Deserializes a field that distinguishes "absent" (`None`) from "null" (`Some(None)`).
pub fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Parses an enum field from its exact API name.
///
/// # Errors
/// 400 naming `field` and listing the accepted values.
pub fn enum_field<T: Copy>(
    field: &str,
    raw: &str,
    parse: fn(&str) -> Option<T>,
    all: &[T],
    name: fn(&T) -> &'static str,
) -> Result<T, ApiError> {
    parse(raw).ok_or_else(|| {
        let accepted: Vec<&str> = all.iter().map(name).collect();
        ApiError::invalid(field, format!("{field} must be one of {}", accepted.join(", ")))
    })
}

// ---- value sets of the OpenAPI document -------------------------------------------------

/// A string schema accepting exactly `values`.
pub fn string_enum(description: &str, values: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values)).description(Some(description)).into()
}

/// Declares a schema type for a text field that takes one of a fixed set of values. Enum fields
/// are decoded as text and parsed (so an unknown value answers 400 naming the field); these
/// types only give the document their values, taken from the domain so the two cannot drift.
/// Each capability declares its own next to its bodies.
macro_rules! value_set {
    ($(#[$doc:meta])* $ty:ident = $name:literal, $description:literal, $values:expr) => {
        $(#[$doc])*
        pub struct $ty;

        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::dto::string_enum($description, $values)
            }
        }

        impl utoipa::ToSchema for $ty {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($name)
            }
        }
    };
}
pub(crate) use value_set;

value_set!(/// A supported ISO 4217 code, as answers show it.
    CurrencyValue = "Currency", "An ISO 4217 currency code from the supported list.",
    SUPPORTED_CURRENCIES.iter().copied());
value_set!(/// A plan tier.
    PlanTierValue = "PlanTier", "A plan tier, lowest first.",
    [PlanTier::Trial, PlanTier::Starter, PlanTier::Growth, PlanTier::Pro].iter().map(PlanTier::as_str));

// ---- numbers, lists, cursors ------------------------------------------------------------

/// A JSON number kept as the exact text the client sent, for two-place values such as 20.5:
/// it never passes through a float, and `1e1` or `"20"` are refused as what they are.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(value_type = f64)]
pub struct Decimal(Box<serde_json::value::RawValue>);

impl Decimal {
    /// The value in hundredths.
    ///
    /// # Errors
    /// 400 naming `field` for anything but a non-negative number with at most two decimals.
    pub fn hundredths(&self, field: &str) -> Result<Hundredths, ApiError> {
        Ok(Hundredths::parse_decimal(field, self.0.get().trim())?)
    }
}

/// A two-place value as answers show it (20.5).
pub fn decimal_out(h: Hundredths) -> f64 {
    h.get() as f64 / 100.0
}

/// A cursor-paginated list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// Whether another page exists.
    pub has_more: bool,
}

impl<T> ListResponse<T> {
    /// Builds the envelope from a domain page.
    pub fn from_page<U>(page: Page<U>, f: impl FnMut(U) -> T) -> Self {
        let next_cursor = page.next_after.map(encode_cursor);
        let has_more = next_cursor.is_some();
        Self { items: page.items.into_iter().map(f).collect(), next_cursor, has_more }
    }
}

#[derive(Serialize, Deserialize)]
struct CursorBody {
    id: Uuid,
}

/// Encodes an opaque cursor (`base64url({"id":"…"})`).
pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&CursorBody { id }).unwrap_or_default())
}

/// Builds a page request from `take` and `cursor` query values.
///
/// # Errors
/// 400 naming `take` or `cursor`.
pub fn page_request(take: Option<i64>, cursor: Option<&str>) -> Result<PageRequest, ApiError> {
    let after = cursor
        .filter(|c| !c.is_empty())
        .map(|c| {
            URL_SAFE_NO_PAD
                .decode(c.trim_end_matches('='))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<CursorBody>(&bytes).ok())
                .map(|b| b.id)
                .ok_or_else(|| ApiError::invalid("cursor", "cursor is not a value returned as nextCursor"))
        })
        .transpose()?;
    PageRequest::parse(take, after).map_err(|e| ApiError::invalid("take", e.to_string()))
}

/// `take` and `cursor`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub take: Option<i64>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

// ---- bodies every capability uses --------------------------------------------------------

// Shared: approve, archive, rotate-secret and redeliver all take it. (The doc line below is the
// schema description the published document carries.)
/// `POST /api/v1/affiliates/{id}/approve` takes `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

/// The error envelope of every 4xx and 5xx answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable error code, e.g. `validation_failed`, `code_already_taken`.
    pub error: String,
    /// A human-readable explanation.
    pub message: String,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub field: Option<String>,
}

/// The envelope of `402 plan_tier_required`: the error envelope with the plan that passes the
/// gate and the organization's own.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanRequiredBody {
    /// `plan_tier_required`.
    pub error: String,
    /// A human-readable explanation.
    pub message: String,
    /// The lowest plan that passes the gate.
    #[schema(value_type = PlanTierValue)]
    pub required: &'static str,
    /// The organization's plan.
    #[schema(value_type = PlanTierValue)]
    pub current: &'static str,
    /// Whether the organization is in a trial.
    pub trialing: bool,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use time::macros::datetime;

    use super::*;

    fn time_param(raw: &str) -> Result<OffsetDateTime, ApiError> {
        parse_time_param("since", Some(raw)).map(Option::unwrap)
    }

    #[test]
    fn a_date_is_that_days_start_in_utc() {
        assert_eq!(time_param("2026-04-01").unwrap(), datetime!(2026-04-01 00:00 UTC));
        assert_eq!(time_param("2024-02-29").unwrap(), datetime!(2024-02-29 00:00 UTC), "a leap day");
        assert_eq!(time_param("2026-12-31").unwrap(), datetime!(2026-12-31 00:00 UTC));
    }

    #[test]
    fn a_timestamp_keeps_its_instant_whatever_its_offset() {
        assert_eq!(time_param("2026-04-01T09:30:00Z").unwrap(), datetime!(2026-04-01 09:30 UTC));
        assert_eq!(time_param("2026-04-01T09:30:00+02:00").unwrap(), datetime!(2026-04-01 07:30 UTC));
        assert_eq!(time_param("2026-03-31T22:00:00-05:00").unwrap(), datetime!(2026-04-01 03:00 UTC));
        assert_eq!(time_param("2026-04-01T00:00:00.250Z").unwrap(), datetime!(2026-04-01 00:00:00.25 UTC));
        assert_eq!(parse_time_param("since", None).unwrap(), None, "absent stays absent");
    }

    #[test]
    fn impossible_dates_and_times_and_other_shapes_are_refused_naming_the_parameter() {
        for raw in [
            "2026-13-01",
            "2026-00-10",
            "2026-02-30",
            "2025-02-29",
            "2026-04-31",
            "2026-04-00",
            "2026-04-01T25:00:00Z",
            "2026-04-01T12:60:00Z",
            "2026-02-30T00:00:00Z",
            "yesterday",
            "",
            "2026-4-1",
            "26-04-01",
            "20260401",
            "+2026-04-01",
            "2026-04-01 ",
            "2026-04-01Z",
            "2026-04-01-01",
            "2026-W14-3",
            "2026-091",
            "2026-04-01T09:30:00",
            "2026-04-01T09:30Z",
            "1775000000",
        ] {
            let err = parse_time_param("until", Some(raw)).expect_err(raw);
            assert_eq!(err.status(), actix_web::http::StatusCode::BAD_REQUEST, "{raw:?}");
            assert_eq!(err.code(), "validation_failed", "{raw:?}");
            assert_eq!(err.field(), Some("until"), "{raw:?}");
        }
    }

    #[test]
    fn body_timestamps_still_take_rfc_3339_only() {
        assert_eq!(parse_ts("expiresAt", Some("2026-04-01T00:00:00Z")).unwrap(), Some(datetime!(2026-04-01 00:00 UTC)));
        assert_eq!(parse_ts("expiresAt", Some("2026-04-01")).unwrap_err().field(), Some("expiresAt"));
    }
}
