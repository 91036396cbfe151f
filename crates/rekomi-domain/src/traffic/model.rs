//! The facts of traffic: a click, the visit it came from, and the view of a link a click needs.

use std::fmt;
use std::net::IpAddr;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::affiliates::AffiliateStatus;
use crate::kernel::ids::{AffiliateId, LinkId, OrgId, ProgramId};
use crate::kernel::text::api_enum;
use crate::programs::{AttributionModel, CommissionModel, LandingUrl};
use crate::traffic::params::CustomParams;

/// A click's id as it travels to Stripe and back: `rkc_` and the 32 hex digits of a UUID v7.
/// The prefix tells it apart from a link slug (`[a-z0-9-]`, never `_`) in the same metadata
/// field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClickId(Uuid);

impl ClickId {
    /// The prefix of the text form.
    pub const PREFIX: &'static str = "rkc_";

    /// Wraps a UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID.
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// Parses the text form (`rkc_` + 32 lower-case hex digits); anything else is no click id.
    pub fn parse(raw: &str) -> Option<Self> {
        let hex = raw.strip_prefix(Self::PREFIX)?;
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return None;
        }
        Uuid::try_parse(hex).ok().map(Self)
    }
}

impl fmt::Display for ClickId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, self.0.simple())
    }
}

api_enum!(/// The visitor's device, from its User-Agent.
    DeviceClass { Mobile, Tablet, Desktop, Bot });

/// One recorded click.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Click {
    /// Id, sent to Stripe.
    pub id: ClickId,
    /// Organization of the link.
    pub org_id: OrgId,
    /// Program of the affiliate.
    pub program_id: ProgramId,
    /// The affiliate credited.
    pub affiliate_id: AffiliateId,
    /// The link followed.
    pub link_id: LinkId,
    /// When.
    pub clicked_at: OffsetDateTime,
    /// The page the visitor was sent to or landed on.
    pub landing_url: Option<String>,
    /// The referring page's host, lower-case; `(direct)` when there was none.
    pub referrer_host: String,
    /// `utm_source`.
    pub utm_source: Option<String>,
    /// `utm_medium`.
    pub utm_medium: Option<String>,
    /// `utm_campaign`.
    pub utm_campaign: Option<String>,
    /// The affiliate's own tracking id (`sub1`, `sub_id` or `subid`).
    pub sub_id: Option<String>,
    /// ISO country code from the trusted CDN header, when configured.
    pub country: Option<String>,
    /// Device class.
    pub device: DeviceClass,
    /// A salted hash of the visitor's address and User-Agent; the salt changes every day, so
    /// visitors cannot be followed across days and the address is never stored.
    pub visitor_hash: String,
    /// The first click of this visitor on this link in its 30-minute window.
    pub is_unique: bool,
    /// The User-Agent is a crawler's.
    pub is_bot: bool,
}

impl Click {
    /// Whether a sale at `at` is inside the click's cookie window of `days` days (a sale
    /// stamped a little before the click, by another clock, is inside too; see
    /// [`within_cookie_window`](crate::programs::within_cookie_window)).
    pub fn is_within_cookie_window(&self, days: u16, at: OffsetDateTime) -> bool {
        crate::programs::within_cookie_window(self.clicked_at, at, days)
    }
}

/// What a click needs to know about the link it follows, resolved from the slug and cached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkTarget {
    /// Organization.
    pub org_id: OrgId,
    /// Program of the affiliate.
    pub program_id: ProgramId,
    /// Affiliate.
    pub affiliate_id: AffiliateId,
    /// Link.
    pub link_id: LinkId,
    /// The slug.
    pub slug: String,
    /// The affiliate's status: only approved affiliates' links are followed.
    pub affiliate_status: AffiliateStatus,
    /// The program is active and not archived.
    pub program_live: bool,
    /// Where Short links go.
    pub landing_url: Option<LandingUrl>,
    /// How long the click cookie lives.
    pub cookie_window_days: u16,
    /// Which touch wins.
    pub attribution_model: AttributionModel,
    /// What earns a commission.
    pub commission_model: CommissionModel,
}

impl LinkTarget {
    /// Whether a click on this link is recorded (and a Short link followed).
    pub fn is_trackable(&self) -> bool {
        self.affiliate_status == AffiliateStatus::Approved && self.program_live
    }
}

/// A visitor's request, as the HTTP adapter read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Visit {
    /// The client address (from the socket, or `X-Forwarded-For` behind a trusted proxy).
    pub ip: IpAddr,
    /// `User-Agent`, possibly empty.
    pub user_agent: String,
    /// The device class of the User-Agent (parsed by the adapter).
    pub device: DeviceClass,
    /// `Referer` (or the page's `document.referrer`).
    pub referrer: Option<String>,
    /// The trusted country header's value.
    pub country: Option<String>,
    /// The query parameters the visitor arrived with, in order.
    pub params: Vec<(String, String)>,
    /// The page the visitor landed on, when it is not the program's landing URL.
    pub page_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use time::Duration;

    #[test]
    fn cookie_window_table() {
        let at = datetime!(2026-12-01 12:00 UTC);
        let click = Click {
            id: ClickId::from_uuid(Uuid::from_u128(1)),
            org_id: OrgId::from_uuid(Uuid::from_u128(2)),
            program_id: ProgramId::from_uuid(Uuid::from_u128(3)),
            affiliate_id: AffiliateId::from_uuid(Uuid::from_u128(4)),
            link_id: LinkId::from_uuid(Uuid::from_u128(5)),
            clicked_at: at,
            landing_url: None,
            referrer_host: "(direct)".into(),
            utm_source: None,
            utm_medium: None,
            utm_campaign: None,
            sub_id: None,
            country: None,
            device: DeviceClass::Desktop,
            visitor_hash: "h".into(),
            is_unique: true,
            is_bot: false,
        };
        // (window days, sale after the click) -> credited?
        let table = [
            (30, Duration::ZERO, true),
            (30, Duration::days(29), true),
            (30, Duration::days(30), true),
            (30, Duration::days(30) + Duration::seconds(1), false),
            (1, Duration::hours(25), false),
            (365, Duration::days(365), true),
            (30, -Duration::minutes(5), true),
            (30, -Duration::minutes(11), false),
            (30, -Duration::days(2), false),
        ];
        for (i, (days, after, want)) in table.into_iter().enumerate() {
            assert_eq!(click.is_within_cookie_window(days, at + after), want, "row {i}");
        }
    }

    #[test]
    fn click_ids_round_trip_and_refuse_slugs_and_other_shapes() {
        let id = ClickId::from_uuid(Uuid::from_u128(0x0191_2345_6789_7abc_8def_0123_4567_89ab));
        let text = id.to_string();
        assert_eq!(text, "rkc_0191234567897abc8def0123456789ab");
        assert_eq!(ClickId::parse(&text), Some(id));
        for bad in [
            "jane-recommends",
            "rkc_",
            "rkc_019123456789-7abc-8def-0123-456789ab",
            "rkc_0191234567897ABC8DEF0123456789AB",
            "rkc_0191234567897abc8def0123456789a",
            "RKC_0191234567897abc8def0123456789ab",
            "rkc_0191234567897abc8def0123456789abc",
            " rkc_0191234567897abc8def0123456789ab",
        ] {
            assert_eq!(ClickId::parse(bad), None, "{bad}");
        }
    }
}

/// An organization's web-tracking settings (defaults when it has none stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebTrackingSettings {
    /// The organization.
    pub org_id: OrgId,
    /// Custom attribution parameters, recognized before the defaults.
    pub custom_params: Option<CustomParams>,
    /// The browser pixel's public key (`rkp_…`), once provisioned.
    pub pixel_public_key: Option<String>,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl WebTrackingSettings {
    /// The settings of an organization that changed nothing.
    pub fn defaults(org_id: OrgId, now: OffsetDateTime) -> Self {
        Self { org_id, custom_params: None, pixel_public_key: None, updated_at: now }
    }
}

/// What a page visit on a brand's site needs to know of the program the loader names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageScope {
    /// The program's organization.
    pub org_id: OrgId,
    /// The organization's custom attribution parameters.
    pub custom_params: Option<CustomParams>,
}
