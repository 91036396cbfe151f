//! Text rules every capability shares: API enums, names, free text and URLs. Names refuse
//! control and Unicode format characters (a name holding a bidi override can pass for
//! another); free text allows line breaks.

use crate::kernel::error::FieldError;

macro_rules! api_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $(#[allow(missing_docs)] $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name as the API shows it.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => stringify!($variant)),+ }
            }

            /// Parses the exact API name.
            pub fn parse(raw: &str) -> Option<Self> {
                match raw { $(stringify!($variant) => Some($name::$variant),)+ _ => None }
            }
        }
    };
}
pub(crate) use api_enum;

/// A closed set of dotted names (`program.created`): the typed names of audit actions and
/// outbound events, which cross the storage port and the webhook wire as text.
macro_rules! dotted_names {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* #[allow(missing_docs)] $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The dotted name.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the dotted name.
            pub fn parse(raw: &str) -> Option<Self> {
                match raw { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use dotted_names;

/// Whether `s` holds a control character (NUL included, which PostgreSQL cannot store);
/// `allow_breaks` permits line breaks and tabs in free text.
pub fn has_control(s: &str, allow_breaks: bool) -> bool {
    s.chars().any(|c| c.is_control() && !(allow_breaks && matches!(c, '\n' | '\r' | '\t')))
}

/// Whether `c` is a Unicode format character (general category Cf): invisible characters
/// that change how the text around them shows (bidi overrides and isolates, zero-width
/// spaces and joiners, the BOM, tag characters), so a name holding one can pass for another.
pub fn is_format(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F)
}

/// Validates a name (of a program, coupon, organization, person or tag): 1 to `max`
/// characters after trimming, no control and no format characters.
///
/// # Errors
/// A `validation_failed` [`FieldError`] on `field`.
pub fn validate_name(field: &str, raw: &str, max: usize) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max {
        return Err(FieldError::invalid(field, format!("must be 1-{max} characters")));
    }
    if has_control(trimmed, false) {
        return Err(FieldError::invalid(field, "must not contain control characters"));
    }
    if trimmed.chars().any(is_format) {
        return Err(FieldError::invalid(field, "must not contain invisible formatting characters (bidi overrides, zero-width characters)"));
    }
    Ok(trimmed.to_owned())
}

/// [`validate_name`] for an optional name: absent or blank is `None`.
///
/// # Errors
/// As [`validate_name`].
pub fn validate_optional_name(field: &str, raw: Option<String>, max: usize) -> Result<Option<String>, FieldError> {
    match raw {
        Some(s) if !s.trim().is_empty() => validate_name(field, &s, max).map(Some),
        _ => Ok(None),
    }
}

/// Validates an optional free-text field (at most `max` characters; blank becomes `None`).
///
/// # Errors
/// A `validation_failed` [`FieldError`] on `field`.
pub fn validate_text(field: &str, raw: Option<String>, max: usize) -> Result<Option<String>, FieldError> {
    match raw {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) if s.chars().count() > max => Err(FieldError::invalid(field, format!("must be at most {max} characters"))),
        Some(s) if has_control(&s, true) => Err(FieldError::invalid(field, "must not contain control characters")),
        Some(s) => Ok(Some(s)),
    }
}

/// Validates an http(s) URL of at most 2048 characters.
///
/// # Errors
/// A `validation_failed` [`FieldError`] on `field`.
pub fn validate_url(field: &str, raw: Option<String>) -> Result<Option<String>, FieldError> {
    match raw {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => {
            let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
            match rest {
                Some(host) if !host.is_empty() && s.len() <= 2048 && !s.chars().any(|c| c.is_whitespace() || c.is_control()) => Ok(Some(s)),
                _ => Err(FieldError::invalid(field, "must be an http or https URL")),
            }
        }
    }
}
