//! Affiliate programs (campaigns): commission defaults, cookie window, recurring rules.
//!
//! Longer than 600 lines: the last 100 are the rule tables, kept beside the rules they check.

use time::OffsetDateTime;

use crate::kernel::error::FieldError;
use crate::kernel::ids::{OrgId, ProgramId};

use crate::kernel::text::{api_enum, validate_name, validate_text, validate_url};

api_enum!(/// How a commission is expressed.
    CommissionType { Percentage, Fixed });
api_enum!(/// What earns a commission. `Cpa`, `RevShare` and `Hybrid` are legacy values that
    /// behave like `Cps`; existing programs may keep them but new programs cannot choose them.
    CommissionModel { Cps, Cpc, Cpl, Cpa, RevShare, Hybrid });
api_enum!(/// Which touch wins when several links were clicked.
    AttributionModel { FirstTouch, LastTouch });
api_enum!(/// Whether the program is listed in the affiliate network.
    NetworkVisibility { Private, Networked, InviteOnly });

impl CommissionModel {
    /// Whether new programs may choose this model.
    pub fn is_offered(&self) -> bool {
        matches!(self, Self::Cps | Self::Cpc | Self::Cpl)
    }
}

/// A non-negative decimal with exactly two places, stored as hundredths: `20.5` is `2050`.
/// Commission percentages (`20.5` %) and fixed amounts (`20.50` in major units) use it, so no
/// floating point reaches money arithmetic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hundredths(i64);

impl Hundredths {
    /// From a count of hundredths.
    pub const fn new(hundredths: i64) -> Self {
        Self(hundredths)
    }

    /// The count of hundredths.
    pub const fn get(&self) -> i64 {
        self.0
    }

    /// Parses the decimal text of a JSON number (`"20"`, `"20.5"`, `"20.25"`, `"1e1"` is
    /// refused). Parsing the text rather than an `f64` keeps `0.1 + 0.2` style drift out.
    ///
    /// # Errors
    /// A `validation_failed` [`FieldError`] on `field` for negative numbers, more than two
    /// decimal places, or numbers too large.
    pub fn parse_decimal(field: &str, text: &str) -> Result<Self, FieldError> {
        let err = || FieldError::invalid(field, "must be a non-negative number with at most 2 decimal places");
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, f),
            None => (text, ""),
        };
        // Digits are checked first, so the byte slicing below only ever sees ASCII.
        if int.is_empty() || int.len() > 12 || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        if frac.len() > 2 && frac.as_bytes()[2..].iter().any(|b| *b != b'0') {
            return Err(err());
        }
        let int: i64 = int.parse().map_err(|_| err())?;
        let frac_digits: String = frac.chars().chain("00".chars()).take(2).collect();
        let frac: i64 = frac_digits.parse().map_err(|_| err())?;
        Ok(Self(int * 100 + frac))
    }

    /// The value as decimal text with two places (`"20.50"`).
    pub fn to_decimal_string(&self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// A commission rate: a percentage of the sale, or a fixed amount in the sale's currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Commission {
    /// Percentage or Fixed.
    pub kind: CommissionType,
    /// The percentage (0–100) or the fixed amount in major units, in hundredths.
    pub value: Hundredths,
}

/// 100 % in hundredths.
const ONE_HUNDRED_PERCENT: i64 = 10_000;
/// Largest fixed commission, in major units (one million).
const MAX_FIXED_HUNDREDTHS: i64 = 100_000_000;

impl Commission {
    /// Validates a commission.
    ///
    /// # Errors
    /// A `validation_failed` [`FieldError`] on `value_field` when a percentage exceeds 100 or a
    /// fixed amount exceeds one million.
    pub fn new(kind: CommissionType, value: Hundredths, value_field: &str) -> Result<Self, FieldError> {
        match kind {
            CommissionType::Percentage if value.get() > ONE_HUNDRED_PERCENT => {
                Err(FieldError::invalid(value_field, "a percentage must be between 0 and 100"))
            }
            CommissionType::Fixed if value.get() > MAX_FIXED_HUNDREDTHS => {
                Err(FieldError::invalid(value_field, "a fixed commission must be at most 1000000"))
            }
            _ => Ok(Self { kind, value }),
        }
    }
}

/// A program slug: `[a-z0-9-]{1,64}`, no leading or trailing hyphen; unique per organization.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProgramSlug(String);

impl ProgramSlug {
    /// Validates a slug.
    ///
    /// # Errors
    /// A `validation_failed` [`FieldError`] on `slug`.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if is_slug(raw, 1, 64) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::invalid("slug", "must be 1-64 characters of a-z, 0-9 and '-', not starting or ending with '-'"))
        }
    }

    /// Derives a slug from a name: lower-case ASCII letters and digits, other runs become '-'.
    pub fn from_name(name: &str) -> Option<Self> {
        let slug = slugify(name, 64);
        Self::parse(&slug).ok()
    }

    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This slug with a random 4-character suffix (`holiday-2026-k3m9`), trimmed to fit.
    pub fn with_suffix(&self, entropy: &dyn crate::kernel::entropy::Entropy) -> Option<Self> {
        const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
        let suffix: String = (0..4).map(|_| char::from(ALPHABET[entropy.index(ALPHABET.len())])).collect();
        let stem: String = self.0.chars().take(64 - 5).collect();
        Self::parse(&format!("{}-{suffix}", stem.trim_end_matches('-'))).ok()
    }
}

/// Whether `s` is `min..=max` characters of `[a-z0-9-]` without a leading or trailing '-'.
/// How far before a window's opening a moment may be stamped and still count as inside it: the
/// clocks of Stripe, a brand's server and Rekomi disagree by a little.
pub const CLOCK_SKEW: time::Duration = time::Duration::minutes(10);

/// Whether something that happened at `at` is inside a cookie window of `days` days opened at
/// `opened` (a click, a signup). A moment stamped up to [`CLOCK_SKEW`] before `opened` is
/// inside too; one earlier (a sale paid before the visit) is not.
pub fn within_cookie_window(opened: OffsetDateTime, at: OffsetDateTime, days: u16) -> bool {
    let since = at - opened;
    since >= -CLOCK_SKEW && since <= time::Duration::days(i64::from(days))
}

pub(crate) fn is_slug(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Lower-cases and hyphenates free text into at most `max` slug characters.
pub(crate) fn slugify(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut pending_dash = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c.to_ascii_lowercase());
        } else {
            pending_dash = true;
        }
        if out.len() >= max {
            break;
        }
    }
    out.truncate(max);
    out.trim_end_matches('-').to_owned()
}

/// An affiliate program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// Id.
    pub id: ProgramId,
    /// Owning organization.
    pub org_id: OrgId,
    /// Name, 1–200 characters.
    pub name: String,
    /// Slug, unique per organization.
    pub slug: ProgramSlug,
    /// Description for affiliates.
    pub description: Option<String>,
    /// Terms URL (http or https).
    pub terms_url: Option<String>,
    /// Whether the program accepts new sales and affiliates.
    pub is_active: bool,
    /// Default commission.
    pub default_commission: Commission,
    /// What earns a commission.
    pub default_commission_model: CommissionModel,
    /// Click cookie lifetime, 1–365 days.
    pub cookie_window_days: u16,
    /// `None` = every renewal (lifetime); `Some(0)` = first invoice only; `Some(n)` = the first
    /// `n` renewals.
    pub recurring_months: Option<u16>,
    /// The first N paid invoices earn nothing.
    pub recurring_delay_invoices: u16,
    /// Which touch wins.
    pub attribution_model: AttributionModel,
    /// Whether applications are approved automatically.
    pub auto_approve: bool,
    /// A custom domain for the landing page.
    pub custom_domain: Option<String>,
    /// Whether the custom domain was verified (reset when it changes).
    pub custom_domain_verified: bool,
    /// Network listing.
    pub network_visibility: NetworkVisibility,
    /// Whether the public landing page may be indexed.
    pub is_publicly_discoverable: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Soft-deletion time.
    pub archived_at: Option<OffsetDateTime>,
    /// The https page Short links (`/r/{slug}`) redirect to, with the referral appended.
    pub landing_url: Option<LandingUrl>,
}

/// The validated fields of a new program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewProgram {
    /// Name.
    pub name: String,
    /// Slug; derived from the name when absent.
    pub slug: Option<ProgramSlug>,
    /// Description.
    pub description: Option<String>,
    /// Terms URL.
    pub terms_url: Option<String>,
    /// Default commission.
    pub default_commission: Commission,
    /// Model (must be offered).
    pub default_commission_model: CommissionModel,
    /// Cookie window.
    pub cookie_window_days: u16,
    /// Recurring months.
    pub recurring_months: Option<u16>,
    /// Delay invoices.
    pub recurring_delay_invoices: u16,
    /// Attribution model.
    pub attribution_model: AttributionModel,
    /// Auto-approve.
    pub auto_approve: bool,
    /// Network visibility.
    pub network_visibility: NetworkVisibility,
    /// Indexable landing page.
    pub is_publicly_discoverable: bool,
    /// Landing URL of Short links.
    pub landing_url: Option<LandingUrl>,
}

/// The fields of a program create request, after JSON decoding (enums already parsed);
/// [`NewProgram::parse`] validates them and applies the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramInput {
    /// `name`.
    pub name: String,
    /// `slug`; derived from the name when absent.
    pub slug: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `termsUrl`.
    pub terms_url: Option<String>,
    /// `defaultCommissionType`.
    pub default_commission_type: CommissionType,
    /// `defaultCommissionValue`.
    pub default_commission_value: Hundredths,
    /// `defaultCommissionModel` (default `Cps`).
    pub default_commission_model: Option<CommissionModel>,
    /// `cookieWindowDays` (default 30).
    pub cookie_window_days: Option<i64>,
    /// `recurringMonths` (default lifetime).
    pub recurring_months: Option<i64>,
    /// `recurringDelayInvoices` (default 0).
    pub recurring_delay_invoices: Option<i64>,
    /// `attributionModel` (default `LastTouch`).
    pub attribution_model: Option<AttributionModel>,
    /// `autoApprove` (default false).
    pub auto_approve: Option<bool>,
    /// `networkVisibility` (default `Private`).
    pub network_visibility: Option<NetworkVisibility>,
    /// `isPubliclyDiscoverable` (default true).
    pub is_publicly_discoverable: Option<bool>,
    /// `landingUrl` (https).
    pub landing_url: Option<String>,
}

/// Default click cookie lifetime, in days.
pub const DEFAULT_COOKIE_WINDOW_DAYS: u16 = 30;

impl NewProgram {
    /// Validates a create request and applies the defaults.
    ///
    /// # Errors
    /// A [`FieldError`] on the first field at fault.
    pub fn parse(input: ProgramInput) -> Result<Self, FieldError> {
        Ok(Self {
            name: validate_name("name", &input.name, 200)?,
            slug: input.slug.as_deref().map(ProgramSlug::parse).transpose()?,
            description: validate_text("description", input.description, 2000)?,
            terms_url: validate_url("termsUrl", input.terms_url)?,
            default_commission: Commission::new(input.default_commission_type, input.default_commission_value, "defaultCommissionValue")?,
            default_commission_model: input.default_commission_model.unwrap_or(CommissionModel::Cps),
            cookie_window_days: input.cookie_window_days.map(validate_cookie_window).transpose()?.unwrap_or(DEFAULT_COOKIE_WINDOW_DAYS),
            recurring_months: validate_recurring_months(input.recurring_months, false)?,
            recurring_delay_invoices: input.recurring_delay_invoices.map(validate_delay_invoices).transpose()?.unwrap_or(0),
            attribution_model: input.attribution_model.unwrap_or(AttributionModel::LastTouch),
            auto_approve: input.auto_approve.unwrap_or(false),
            network_visibility: input.network_visibility.unwrap_or(NetworkVisibility::Private),
            is_publicly_discoverable: input.is_publicly_discoverable.unwrap_or(true),
            landing_url: input.landing_url.map(|u| LandingUrl::parse(&u)).transpose()?,
        })
    }
}

/// A change to a program: `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgramPatch {
    /// New name.
    pub name: Option<String>,
    /// New slug.
    pub slug: Option<ProgramSlug>,
    /// New description (`Some(None)` clears).
    pub description: Option<Option<String>>,
    /// New terms URL (`Some(None)` clears).
    pub terms_url: Option<Option<String>>,
    /// Active flag.
    pub is_active: Option<bool>,
    /// Commission type.
    pub default_commission_type: Option<CommissionType>,
    /// Commission value.
    pub default_commission_value: Option<Hundredths>,
    /// Commission model.
    pub default_commission_model: Option<CommissionModel>,
    /// Cookie window.
    pub cookie_window_days: Option<u16>,
    /// `Some(None)` clears the cap back to lifetime (the API's `-1`).
    pub recurring_months: Option<Option<u16>>,
    /// Delay invoices.
    pub recurring_delay_invoices: Option<u16>,
    /// Attribution model.
    pub attribution_model: Option<AttributionModel>,
    /// Auto-approve.
    pub auto_approve: Option<bool>,
    /// Custom domain (`Some(None)` clears).
    pub custom_domain: Option<Option<String>>,
    /// Network visibility.
    pub network_visibility: Option<NetworkVisibility>,
    /// Indexable landing page.
    pub is_publicly_discoverable: Option<bool>,
    /// Landing URL of Short links (`Some(None)` clears).
    pub landing_url: Option<Option<LandingUrl>>,
}

/// The page a program's Short links redirect to: an absolute `https` URL with a host, no
/// credentials and no fragment (the referral is appended to its query; a `Hash` link adds its
/// own fragment), at most 2,048 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LandingUrl(url::Url);

impl LandingUrl {
    /// Parses and checks a landing URL.
    ///
    /// # Errors
    /// A `validation_failed` [`FieldError`] on `landingUrl`.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let bad = |why: &str| FieldError::invalid("landingUrl", format!("must be an https URL {why}"));
        if raw.len() > 2048 || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("of at most 2048 characters without spaces or control characters"));
        }
        let url = url::Url::parse(raw).map_err(|_| bad("such as https://yourbrand.com/pricing"))?;
        if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
            return Err(bad("with a host"));
        }
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(bad("without credentials or a #fragment"));
        }
        Ok(Self(url))
    }

    /// The URL.
    pub fn as_url(&self) -> &url::Url {
        &self.0
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Validates a custom domain: a lower-case host name with at least one dot.
///
/// # Errors
/// A `validation_failed` [`FieldError`] on `customDomain`.
pub fn validate_domain(raw: Option<String>) -> Result<Option<String>, FieldError> {
    match raw {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => {
            let host = s.trim().to_ascii_lowercase();
            let labels_ok = host.split('.').all(|l| is_slug(l, 1, 63));
            if host.len() <= 253 && host.contains('.') && labels_ok {
                Ok(Some(host))
            } else {
                Err(FieldError::invalid("customDomain", "must be a host name such as go.yourbrand.com"))
            }
        }
    }
}

/// Validates a cookie window (1–365 days).
///
/// # Errors
/// A `validation_failed` [`FieldError`] on `cookieWindowDays`.
pub fn validate_cookie_window(days: i64) -> Result<u16, FieldError> {
    if (1..=365).contains(&days) {
        Ok(days as u16)
    } else {
        Err(FieldError::invalid("cookieWindowDays", "must be between 1 and 365"))
    }
}

/// Validates `recurringMonths` as sent on create (`null`, or 0–120) or on PATCH (also `-1`,
/// which clears the cap back to lifetime). Returns `None` for lifetime.
///
/// # Errors
/// A `validation_failed` [`FieldError`] on `recurringMonths`.
pub fn validate_recurring_months(raw: Option<i64>, allow_clear: bool) -> Result<Option<u16>, FieldError> {
    match raw {
        None => Ok(None),
        Some(-1) if allow_clear => Ok(None),
        Some(n) if (0..=120).contains(&n) => Ok(Some(n as u16)),
        Some(_) => Err(FieldError::invalid(
            "recurringMonths",
            if allow_clear { "must be null, -1 (lifetime) or 0-120" } else { "must be null (lifetime) or 0-120" },
        )),
    }
}

/// Validates `recurringDelayInvoices` (0–120).
///
/// # Errors
/// A `validation_failed` [`FieldError`] on `recurringDelayInvoices`.
pub fn validate_delay_invoices(raw: i64) -> Result<u16, FieldError> {
    if (0..=120).contains(&raw) {
        Ok(raw as u16)
    } else {
        Err(FieldError::invalid("recurringDelayInvoices", "must be between 0 and 120"))
    }
}

impl Program {
    /// Builds a new program.
    ///
    /// # Errors
    /// `defaultCommissionModel` when a legacy model is chosen for a new program.
    pub fn create(id: ProgramId, org_id: OrgId, new: NewProgram, slug: ProgramSlug, now: OffsetDateTime) -> Result<Self, FieldError> {
        if !new.default_commission_model.is_offered() {
            return Err(FieldError::coded(
                "defaultCommissionModel",
                "unsupported_value",
                "new programs take Cps, Cpc or Cpl; Cpa, RevShare and Hybrid are legacy values",
            ));
        }
        Ok(Self {
            id,
            org_id,
            name: new.name,
            slug,
            description: new.description,
            terms_url: new.terms_url,
            is_active: true,
            default_commission: new.default_commission,
            default_commission_model: new.default_commission_model,
            cookie_window_days: new.cookie_window_days,
            recurring_months: new.recurring_months,
            recurring_delay_invoices: new.recurring_delay_invoices,
            attribution_model: new.attribution_model,
            auto_approve: new.auto_approve,
            custom_domain: None,
            custom_domain_verified: false,
            network_visibility: new.network_visibility,
            is_publicly_discoverable: new.is_publicly_discoverable,
            created_at: now,
            updated_at: now,
            archived_at: None,
            landing_url: new.landing_url,
        })
    }

    /// Applies a patch. The commission type and value are validated together, so switching
    /// to `Percentage` with a value above 100 is refused.
    ///
    /// # Errors
    /// A `validation_failed` [`FieldError`] on the field at fault.
    pub fn apply(&mut self, patch: ProgramPatch, now: OffsetDateTime) -> Result<(), FieldError> {
        let kind = patch.default_commission_type.unwrap_or(self.default_commission.kind);
        let value = patch.default_commission_value.unwrap_or(self.default_commission.value);
        self.default_commission = Commission::new(kind, value, "defaultCommissionValue")?;
        if let Some(v) = patch.name {
            self.name = v;
        }
        if let Some(v) = patch.slug {
            self.slug = v;
        }
        if let Some(v) = patch.description {
            self.description = v;
        }
        if let Some(v) = patch.terms_url {
            self.terms_url = v;
        }
        if let Some(v) = patch.is_active {
            self.is_active = v;
        }
        if let Some(v) = patch.default_commission_model {
            self.default_commission_model = v;
        }
        if let Some(v) = patch.cookie_window_days {
            self.cookie_window_days = v;
        }
        if let Some(v) = patch.recurring_months {
            self.recurring_months = v;
        }
        if let Some(v) = patch.recurring_delay_invoices {
            self.recurring_delay_invoices = v;
        }
        if let Some(v) = patch.attribution_model {
            self.attribution_model = v;
        }
        if let Some(v) = patch.auto_approve {
            self.auto_approve = v;
        }
        if let Some(v) = patch.custom_domain {
            if v != self.custom_domain {
                self.custom_domain_verified = false;
            }
            self.custom_domain = v;
        }
        if let Some(v) = patch.network_visibility {
            self.network_visibility = v;
        }
        if let Some(v) = patch.is_publicly_discoverable {
            self.is_publicly_discoverable = v;
        }
        if let Some(v) = patch.landing_url {
            self.landing_url = v;
        }
        self.updated_at = now;
        Ok(())
    }

    /// Whether the program is archived (soft-deleted).
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::text::validate_optional_name;

    #[test]
    fn a_minimal_program_request_gets_the_documented_defaults() {
        let input = ProgramInput {
            name: " Holiday Promo ".into(),
            slug: None,
            description: None,
            terms_url: None,
            default_commission_type: CommissionType::Percentage,
            default_commission_value: Hundredths::new(3000),
            default_commission_model: None,
            cookie_window_days: None,
            recurring_months: None,
            recurring_delay_invoices: None,
            attribution_model: None,
            auto_approve: None,
            network_visibility: None,
            is_publicly_discoverable: None,
            landing_url: None,
        };
        let new = NewProgram::parse(input.clone()).unwrap();
        assert_eq!(new.name, "Holiday Promo");
        assert_eq!(
            (new.default_commission_model, new.cookie_window_days, new.recurring_months, new.recurring_delay_invoices),
            (CommissionModel::Cps, 30, None, 0)
        );
        assert_eq!(
            (new.attribution_model, new.auto_approve, new.network_visibility, new.is_publicly_discoverable),
            (AttributionModel::LastTouch, false, NetworkVisibility::Private, true)
        );
        let too_much = ProgramInput { default_commission_value: Hundredths::new(10_001), ..input };
        assert_eq!(NewProgram::parse(too_much).unwrap_err().field, "defaultCommissionValue");
    }

    #[test]
    fn decimals_parse_exactly_into_hundredths() {
        let ok = [("20", 2000), ("20.0", 2000), ("20.5", 2050), ("20.25", 2025), ("0", 0), ("35.00", 3500), ("1.250", 125)];
        for (text, want) in ok {
            assert_eq!(Hundredths::parse_decimal("v", text), Ok(Hundredths::new(want)), "{text}");
        }
        for bad in ["-1", "20.255", "1e3", "", ".5", "abc", "1.2.3", "9999999999999", "1.aé", "1.é0", "\"20\""] {
            assert!(Hundredths::parse_decimal("v", bad).is_err(), "{bad}");
        }
        assert_eq!(Hundredths::new(2050).to_decimal_string(), "20.50");
    }

    #[test]
    fn percentages_are_capped_at_one_hundred() {
        assert!(Commission::new(CommissionType::Percentage, Hundredths::new(10_000), "v").is_ok());
        assert!(Commission::new(CommissionType::Percentage, Hundredths::new(10_001), "v").is_err());
        assert!(Commission::new(CommissionType::Fixed, Hundredths::new(50_000), "v").is_ok());
    }

    #[test]
    fn recurring_months_null_zero_and_n_and_minus_one_only_on_patch() {
        assert_eq!(validate_recurring_months(None, false), Ok(None));
        assert_eq!(validate_recurring_months(Some(0), false), Ok(Some(0)));
        assert_eq!(validate_recurring_months(Some(12), false), Ok(Some(12)));
        assert!(validate_recurring_months(Some(-1), false).is_err());
        assert_eq!(validate_recurring_months(Some(-1), true), Ok(None));
        assert!(validate_recurring_months(Some(-2), true).is_err());
        assert!(validate_recurring_months(Some(121), true).is_err());
    }

    #[test]
    fn slugs_are_derived_from_names() {
        assert_eq!(ProgramSlug::from_name("Holiday Promo 2026!").map(|s| s.as_str().to_owned()), Some("holiday-promo-2026".to_owned()));
        assert_eq!(ProgramSlug::from_name("***"), None);
        assert!(ProgramSlug::parse("holiday-2026").is_ok());
        assert!(ProgramSlug::parse("Holiday").is_err());
    }

    #[test]
    fn enums_parse_only_their_exact_api_names() {
        assert_eq!(CommissionType::parse("Percentage"), Some(CommissionType::Percentage));
        assert_eq!(CommissionType::parse("percentage"), None);
        assert_eq!(NetworkVisibility::parse("Public"), None);
        assert!(!CommissionModel::Hybrid.is_offered());
    }

    #[test]
    fn control_characters_are_refused_but_line_breaks_are_allowed_in_free_text() {
        assert!(validate_name("name", "a\u{0}b", 200).is_err());
        for invisible in ["\u{202E}evil", "pay\u{200B}pal", "a\u{2066}b\u{2069}", "\u{FEFF}bom", "soft\u{AD}hyphen", "tag\u{E0041}"] {
            let refused = validate_name("name", invisible, 200).unwrap_err();
            assert!(refused.message.contains("invisible"), "{invisible:?}: {refused:?}");
        }
        for visible in ["Zoë Ångström", "李小龍", "Café 20 % off", "👩\u{1F3FD} Creator", "עברית", "مرحبا"] {
            assert_eq!(validate_name("name", visible, 200).as_deref(), Ok(visible), "{visible:?}");
        }
        assert_eq!(validate_optional_name("fullName", Some("  ".into()), 200), Ok(None));
        assert!(validate_optional_name("fullName", Some("Sarah\nSmith".into()), 200).is_err(), "a name has no line breaks");
        assert!(validate_text("notes", Some("a\u{7}b".into()), 200).is_err());
        assert_eq!(validate_text("notes", Some("line one\nline two".into()), 200), Ok(Some("line one\nline two".to_owned())));
        assert!(validate_url("termsUrl", Some("https://x.com/\u{0}".into())).is_err());
    }

    #[test]
    fn urls_and_domains_are_checked() {
        assert!(validate_url("termsUrl", Some("https://x.com/terms".into())).is_ok());
        assert!(validate_url("termsUrl", Some("javascript:alert(1)".into())).is_err());
        assert_eq!(validate_domain(Some("Go.YourBrand.com".into())), Ok(Some("go.yourbrand.com".into())));
        assert!(validate_domain(Some("localhost".into())).is_err());
    }
}
