//! Attribution parameters: the query parameters whose value names a referral on a brand's page
//! (`?via=jane`). The spec's 16 defaults are always recognized; an organization may put up to
//! 10 custom ones before them (a drop-in migration from another platform's links).

/// The canonical defaults, in priority order.
pub const DEFAULT_PARAMS: [&str; 16] = [
    "via",
    "ref",
    "fpr",
    "aff",
    "rfsn",
    "a_aid",
    "awc",
    "sscid",
    "cjevent",
    "irclickid",
    "partner_key",
    "affid",
    "affiliate_id",
    "affcode",
    "idev",
    "mbsy",
];
/// Custom entries an organization may configure, at most.
pub const MAX_CUSTOM_ENTRIES: usize = 10;
/// Length of the comma-separated custom list, at most.
pub const MAX_TOTAL_CHARS: usize = 256;
/// Shortest parameter name.
pub const MIN_PARAM_LENGTH: usize = 2;
/// Longest parameter name.
pub const MAX_PARAM_LENGTH: usize = 32;

/// Why a custom list was refused (each is its own spec code).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// Over [`MAX_TOTAL_CHARS`]: `attribution_params_too_long`.
    #[error("the list exceeds {MAX_TOTAL_CHARS} characters")]
    TooLong,
    /// Over [`MAX_CUSTOM_ENTRIES`]: `too_many_attribution_params`.
    #[error("at most {MAX_CUSTOM_ENTRIES} custom parameters")]
    TooMany,
    /// Entries not matching `[a-z0-9_-]{2,32}`: `invalid_attribution_param`.
    #[error("every parameter must match [a-z0-9_-]{{2,32}}")]
    Invalid(Vec<String>),
}

impl ParamsError {
    /// The spec's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLong => "attribution_params_too_long",
            Self::TooMany => "too_many_attribution_params",
            Self::Invalid(_) => "invalid_attribution_param",
        }
    }
}

/// An organization's custom parameters: 1 to 10 distinct valid names, in the brand's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomParams(Vec<String>);

impl CustomParams {
    /// Parses the comma-separated list of `PATCH /api/v1/settings/attribution-params`.
    /// Entries are trimmed, empty ones skipped and repeats kept once; an empty list is `None`
    /// (defaults only).
    ///
    /// # Errors
    /// [`ParamsError`], checked in the spec's order: length, count, then every entry.
    pub fn parse(raw: &str) -> Result<Option<Self>, ParamsError> {
        if raw.len() > MAX_TOTAL_CHARS {
            return Err(ParamsError::TooLong);
        }
        let mut entries: Vec<String> = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if !entries.iter().any(|e| e == entry) {
                entries.push(entry.to_owned());
            }
        }
        if entries.len() > MAX_CUSTOM_ENTRIES {
            return Err(ParamsError::TooMany);
        }
        let invalid: Vec<String> = entries.iter().filter(|e| !is_param_name(e)).cloned().collect();
        if !invalid.is_empty() {
            return Err(ParamsError::Invalid(invalid));
        }
        Ok((!entries.is_empty()).then_some(Self(entries)))
    }

    /// The entries.
    pub fn entries(&self) -> &[String] {
        &self.0
    }

    /// The list as stored and shown: `a,b`.
    pub fn to_csv(&self) -> String {
        self.0.join(",")
    }
}

/// Whether `name` matches `[a-z0-9_-]{2,32}`.
pub fn is_param_name(name: &str) -> bool {
    (MIN_PARAM_LENGTH..=MAX_PARAM_LENGTH).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The parameters the loader and the pixel look for, first match wins: the custom ones not
/// already defaults, then the defaults.
pub fn effective_order(custom: Option<&CustomParams>) -> Vec<String> {
    let extra = custom.map(CustomParams::entries).unwrap_or_default().iter().filter(|c| !DEFAULT_PARAMS.contains(&c.as_str())).cloned();
    extra.chain(DEFAULT_PARAMS.iter().map(|d| (*d).to_owned())).collect()
}

/// The first parameter of `order` present in `query` with a non-empty value, and that value.
pub fn referral_in<'a>(order: &[String], query: &'a [(String, String)]) -> Option<&'a str> {
    order.iter().find_map(|name| query.iter().find(|(k, v)| k == name && !v.trim().is_empty()).map(|(_, v)| v.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn custom_lists_are_checked_for_length_then_count_then_each_entry() {
        let long = format!("{},x", "a".repeat(MAX_TOTAL_CHARS));
        let overlong = "a".repeat(33);
        let eleven = (0..11).map(|i| format!("p{i}")).collect::<Vec<_>>().join(",");
        type Row<'a> = (&'a str, Result<Option<Vec<String>>, ParamsError>);
        let table: Vec<Row> = vec![
            ("", Ok(None)),
            (" , ,", Ok(None)),
            ("myparam,brand_ref", Ok(Some(strings(&["myparam", "brand_ref"])))),
            (" my-aff , my-aff,via ", Ok(Some(strings(&["my-aff", "via"])))),
            (&long, Err(ParamsError::TooLong)),
            (&eleven, Err(ParamsError::TooMany)),
            ("ok,X,a,bad param,ümlaut", Err(ParamsError::Invalid(strings(&["X", "a", "bad param", "ümlaut"])))),
            (&overlong, Err(ParamsError::Invalid(strings(&[&overlong])))),
        ];
        for (raw, want) in table {
            let got = CustomParams::parse(raw).map(|p| p.map(|p| p.entries().to_vec()));
            assert_eq!(got, want, "{raw:?}");
        }
        assert_eq!(ParamsError::Invalid(vec![]).code(), "invalid_attribution_param");
    }

    #[test]
    fn the_effective_order_puts_custom_params_first_without_repeating_defaults() {
        assert_eq!(effective_order(None), strings(&DEFAULT_PARAMS));
        let custom = CustomParams::parse("myparam,ref,brand_ref").unwrap().unwrap();
        let order = effective_order(Some(&custom));
        assert_eq!(&order[..3], &strings(&["myparam", "brand_ref", "via"])[..]);
        assert_eq!(order.len(), 18);
        assert_eq!(order.iter().filter(|p| *p == "ref").count(), 1);
    }

    #[test]
    fn the_first_effective_param_with_a_value_names_the_referral() {
        let order = effective_order(CustomParams::parse("my_aff").unwrap().as_ref());
        let q = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
        assert_eq!(referral_in(&order, &q(&[("ref", "bob"), ("via", "jane")])), Some("jane"), "via outranks ref");
        assert_eq!(referral_in(&order, &q(&[("via", "jane"), ("my_aff", "sam")])), Some("sam"), "custom first");
        assert_eq!(referral_in(&order, &q(&[("via", " "), ("ref", "bob")])), Some("bob"), "empty values skipped");
        assert_eq!(referral_in(&order, &q(&[("utm_source", "x")])), None);
    }
}
