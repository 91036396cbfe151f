//! Affiliates (a person's membership in one program) and their tracking links.

use time::OffsetDateTime;

use crate::kernel::entropy::Entropy;
use crate::kernel::error::FieldError;
use crate::kernel::ids::{AffiliateId, LinkId, OrgId, ProgramId};
use crate::kernel::text::api_enum;
use crate::programs::{is_slug, slugify, Commission};

api_enum!(/// An affiliate's standing in its program.
    AffiliateStatus { Pending, Approved, Rejected, Paused, Banned });
api_enum!(/// How the affiliate joined.
    AffiliateSource { Direct, Public, Invite, Network });
api_enum!(/// How a link is rendered.
    LinkFormat { Short, Query, Path, Hash });

impl AffiliateStatus {
    /// The legal status changes. `Banned` is final; a rejected applicant may be reconsidered.
    pub fn can_become(&self, next: AffiliateStatus) -> bool {
        use AffiliateStatus::*;
        if *self == next {
            return true;
        }
        matches!(
            (self, next),
            (Pending, Approved | Rejected | Banned)
                | (Approved, Paused | Banned)
                | (Paused, Approved | Banned)
                | (Rejected, Approved | Banned)
        )
    }
}

/// A normalized email address (trimmed, lower-cased, one '@', a dot in the domain).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Validates and normalizes an email address.
    ///
    /// # Errors
    /// A `validation_failed` [`FieldError`] on `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let e = raw.trim().to_lowercase();
        let valid = e.len() <= 254
            && !e.chars().any(|c| c.is_whitespace() || c.is_control())
            && match e.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty() && !domain.contains('@') && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
                }
                None => false,
            };
        if valid {
            Ok(Self(e))
        } else {
            Err(FieldError::invalid(field, "must be an email address"))
        }
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An affiliate in one program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Affiliate {
    /// Id.
    pub id: AffiliateId,
    /// Owning organization.
    pub org_id: OrgId,
    /// Program.
    pub program_id: ProgramId,
    /// Email, unique per program.
    pub email: Email,
    /// Full name.
    pub full_name: Option<String>,
    /// Status.
    pub status: AffiliateStatus,
    /// Commission overriding the program default.
    pub custom_commission: Option<Commission>,
    /// Brand-side tags.
    pub tags: Vec<String>,
    /// Brand-side notes (never shown to the affiliate).
    pub notes: Option<String>,
    /// How the affiliate joined.
    pub source: AffiliateSource,
    /// The affiliate-side user (`sub` of the affiliate JWT) once linked.
    pub user_id: Option<String>,
    /// Why an application was rejected.
    pub rejection_reason: Option<String>,
    /// When the affiliate applied (or was added).
    pub applied_at: OffsetDateTime,
    /// When the affiliate was (last) approved.
    pub approved_at: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A status change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an affiliate cannot go from {from} to {to}")]
pub struct IllegalTransition {
    /// Current status name.
    pub from: &'static str,
    /// Requested status name.
    pub to: &'static str,
}

impl Affiliate {
    /// Moves the affiliate to `next`, stamping `approved_at` on approval.
    ///
    /// # Errors
    /// [`IllegalTransition`] when the move is not in the transition table.
    pub fn transition(&mut self, next: AffiliateStatus, now: OffsetDateTime) -> Result<(), IllegalTransition> {
        if !self.status.can_become(next) {
            return Err(IllegalTransition { from: self.status.as_str(), to: next.as_str() });
        }
        if next == AffiliateStatus::Approved && self.status != AffiliateStatus::Approved {
            self.approved_at = Some(now);
            self.rejection_reason = None;
        }
        self.status = next;
        self.updated_at = now;
        Ok(())
    }
}

/// Validates tags: at most 20, each 1–50 characters, trimmed, duplicates dropped.
///
/// # Errors
/// A `validation_failed` [`FieldError`] on `tags`.
pub fn validate_tags(raw: Vec<String>) -> Result<Vec<String>, FieldError> {
    if raw.len() > 20 {
        return Err(FieldError::invalid("tags", "at most 20 tags"));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for tag in raw {
        let t = crate::kernel::text::validate_name("tags", &tag, 50).map_err(|_| {
            FieldError::invalid("tags", "each tag must be 1-50 characters without control or invisible formatting characters")
        })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// Validates a custom alias: `[a-z0-9-]{3,64}`.
///
/// # Errors
/// A `validation_failed` [`FieldError`] on `customAlias`.
pub fn validate_alias(raw: &str) -> Result<String, FieldError> {
    if is_slug(raw, 3, 64) {
        Ok(raw.to_owned())
    } else {
        Err(FieldError::invalid("customAlias", "must be 3-64 characters of a-z, 0-9 and '-'"))
    }
}

/// A tracking link of an affiliate. Slugs are unique per organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffiliateLink {
    /// Id.
    pub id: LinkId,
    /// Owning organization.
    pub org_id: OrgId,
    /// Affiliate.
    pub affiliate_id: AffiliateId,
    /// The slug in `?via={slug}` and the Stripe `rekomi_ref` metadata.
    pub slug: String,
    /// The alias the brand or affiliate chose, when the slug is one.
    pub custom_alias: Option<String>,
    /// Whether this is the affiliate's default link.
    pub is_default: bool,
    /// Rendering.
    pub format: LinkFormat,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

const SLUG_SUFFIX_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// Generates a default link slug: a readable stem from the name (or the email's local part)
/// and a 5-character random suffix, e.g. `jane-doe-k3m9p`.
pub fn generate_link_slug(full_name: Option<&str>, email: &Email, entropy: &dyn Entropy) -> String {
    let local = email.as_str().split('@').next().unwrap_or("aff");
    let mut stem = slugify(full_name.unwrap_or(local), 40);
    if stem.len() < 2 {
        stem = slugify(local, 40);
    }
    if stem.len() < 2 {
        stem = "aff".to_owned();
    }
    let suffix: String = (0..5).map(|_| char::from(SLUG_SUFFIX_ALPHABET[entropy.index(SLUG_SUFFIX_ALPHABET.len())])).collect();
    format!("{stem}-{suffix}")
}

/// Filters of the affiliate list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AffiliateFilter {
    /// Only this program.
    pub program_id: Option<ProgramId>,
    /// Only this status.
    pub status: Option<AffiliateStatus>,
    /// Case-insensitive substring of email or full name.
    pub q: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use AffiliateStatus::*;

    #[test]
    fn status_transition_table() {
        let legal = [
            (Pending, Approved),
            (Pending, Rejected),
            (Pending, Banned),
            (Approved, Paused),
            (Approved, Banned),
            (Paused, Approved),
            (Paused, Banned),
            (Rejected, Approved),
            (Rejected, Banned),
        ];
        for from in AffiliateStatus::ALL {
            for to in AffiliateStatus::ALL {
                let expected = from == to || legal.contains(&(*from, *to));
                assert_eq!(from.can_become(*to), expected, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(Email::parse("e", " Jane@Creator.COM ").map(|e| e.as_str().to_owned()), Ok("jane@creator.com".to_owned()));
        for bad in ["", "jane", "jane@", "@x.com", "jane@x", "ja ne@x.com", "a@b@c.com", "jane@.com"] {
            assert!(Email::parse("e", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_are_trimmed_deduplicated_and_bounded() {
        assert_eq!(
            validate_tags(vec![" youtube ".into(), "youtube".into(), "vip".into()]),
            Ok(vec!["youtube".to_owned(), "vip".to_owned()])
        );
        assert!(validate_tags(vec!["".into()]).is_err());
        assert!(validate_tags(vec!["x".repeat(51)]).is_err());
        assert!(validate_tags((0..21).map(|i| i.to_string()).collect()).is_err());
    }

    #[test]
    fn aliases_follow_the_lower_case_slug_rule() {
        assert!(validate_alias("newaff-fit").is_ok());
        assert!(validate_alias("ab").is_err());
        assert!(validate_alias("New-Aff").is_err());
    }
}
