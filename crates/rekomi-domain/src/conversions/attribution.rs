//! Attribution: which affiliate a payment credits, and why. Pure rules over the signals the
//! webhook pipeline gathered; the decision and the signals are stored with the conversion as
//! its attribution trace.

use crate::kernel::ids::{AffiliateCouponId, AffiliateId};
use crate::traffic::ClickId;

/// A redeemed promotion code that maps to an affiliate coupon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CouponSignal {
    /// The code's owner.
    pub affiliate: AffiliateId,
    /// The code.
    pub coupon: AffiliateCouponId,
    /// Its text.
    pub code: String,
    /// The campaign coupon's `overridesClickAttribution`.
    pub overrides_click: bool,
}

/// Everything that may point at an affiliate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signals {
    /// The redeemed code, if it is one of Rekomi's.
    pub coupon: Option<CouponSignal>,
    /// The affiliate named by referral metadata (`metadata.rekomi_ref` slug or click, or the
    /// checkout `client_reference_id`).
    pub referral: Option<AffiliateId>,
    /// The click the referral named, when it was a click id inside its cookie window rather
    /// than a slug.
    pub click: Option<ClickId>,
    /// The affiliate already credited for this customer (an earlier sale or lead).
    pub customer_history: Option<AffiliateId>,
    /// The affiliate of an identified signup (a browser or server lead) with the customer's
    /// email, inside its program's cookie window.
    pub email_match: Option<AffiliateId>,
}

/// How a conversion was attributed (`attributionMethod`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The redeemed code decided.
    Coupon,
    /// The code decided and the referral or history pointed at the same affiliate.
    CouponWithMetadata,
    /// Referral metadata or customer history decided.
    MetadataOrCustomer,
    /// The customer's email matched an identified signup (a lead) inside the program's cookie
    /// window.
    EmailMatch,
    /// A day's paid clicks of a `Cpc` program, aggregated into one reward.
    CpcAggregation,
}

impl Method {
    /// The API value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Coupon => "coupon",
            Self::CouponWithMetadata => "coupon_with_metadata",
            Self::MetadataOrCustomer => "metadata_or_customer",
            Self::EmailMatch => "email_match",
            Self::CpcAggregation => "cpc_aggregation",
        }
    }

    /// Parses the stored value.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "coupon" => Some(Self::Coupon),
            "coupon_with_metadata" => Some(Self::CouponWithMetadata),
            "metadata_or_customer" => Some(Self::MetadataOrCustomer),
            "email_match" => Some(Self::EmailMatch),
            "cpc_aggregation" => Some(Self::CpcAggregation),
            _ => None,
        }
    }
}

/// The outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The credited affiliate.
    pub affiliate: AffiliateId,
    /// How.
    pub method: Method,
    /// The code, when the decision involved one.
    pub coupon: Option<CouponSignal>,
    /// The rule that decided, for the trace.
    pub rule: &'static str,
    /// The click credited, when the referral that decided (or agreed) was one.
    pub click: Option<ClickId>,
}

/// Applies the spec's precedence:
/// - a code whose campaign coupon overrides click attribution wins;
/// - otherwise referral metadata (a click or a slug), then customer history, then an email
///   match with a lead, decide, and the code is the fallback;
/// - a code and a referral, history or email match pointing at the same affiliate is
///   `coupon_with_metadata`.
pub fn decide(signals: &Signals) -> Option<Decision> {
    let (other, other_rule, other_click, other_method) =
        match (signals.referral, signals.click, signals.customer_history, signals.email_match) {
            (Some(a), Some(click), _, _) => (Some(a), "referral_click", Some(click), Method::MetadataOrCustomer),
            (Some(a), None, _, _) => (Some(a), "referral_metadata", None, Method::MetadataOrCustomer),
            (None, _, Some(a), _) => (Some(a), "customer_history", None, Method::MetadataOrCustomer),
            (None, _, None, Some(a)) => (Some(a), "email_match", None, Method::EmailMatch),
            (None, _, None, None) => (None, "", None, Method::MetadataOrCustomer),
        };
    match (&signals.coupon, other) {
        (Some(coupon), Some(a)) if a == coupon.affiliate => Some(Decision {
            affiliate: a,
            method: Method::CouponWithMetadata,
            coupon: Some(coupon.clone()),
            rule: "coupon_and_metadata_agree",
            click: other_click,
        }),
        (Some(coupon), _) if coupon.overrides_click => Some(Decision {
            affiliate: coupon.affiliate,
            method: Method::Coupon,
            coupon: Some(coupon.clone()),
            rule: "coupon_overrides_click_attribution",
            click: None,
        }),
        (_, Some(a)) => Some(Decision { affiliate: a, method: other_method, coupon: None, rule: other_rule, click: other_click }),
        (Some(coupon), None) => Some(Decision {
            affiliate: coupon.affiliate,
            method: Method::Coupon,
            coupon: Some(coupon.clone()),
            rule: "coupon_fallback",
            click: None,
        }),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn aff(n: u128) -> AffiliateId {
        AffiliateId::from_uuid(Uuid::from_u128(n))
    }

    fn coupon(owner: u128, overrides: bool) -> CouponSignal {
        CouponSignal {
            affiliate: aff(owner),
            coupon: AffiliateCouponId::from_uuid(Uuid::from_u128(99)),
            code: "SARAH20".into(),
            overrides_click: overrides,
        }
    }

    #[test]
    fn attribution_precedence_table() {
        // (coupon (owner, overrides), referral, history) -> (affiliate, method, rule); the
        // referral is a slug here (see the click table below).
        type Row = (Option<(u128, bool)>, Option<u128>, Option<u128>, Option<(u128, Method, &'static str)>);
        let table: Vec<Row> = vec![
            (Some((1, true)), None, None, Some((1, Method::Coupon, "coupon_overrides_click_attribution"))),
            (Some((1, true)), Some(2), None, Some((1, Method::Coupon, "coupon_overrides_click_attribution"))),
            (Some((1, true)), None, Some(2), Some((1, Method::Coupon, "coupon_overrides_click_attribution"))),
            (Some((1, true)), Some(1), None, Some((1, Method::CouponWithMetadata, "coupon_and_metadata_agree"))),
            (Some((1, false)), Some(2), None, Some((2, Method::MetadataOrCustomer, "referral_metadata"))),
            (Some((1, false)), None, Some(3), Some((3, Method::MetadataOrCustomer, "customer_history"))),
            (Some((1, false)), Some(2), Some(3), Some((2, Method::MetadataOrCustomer, "referral_metadata"))),
            (Some((1, false)), None, None, Some((1, Method::Coupon, "coupon_fallback"))),
            (Some((1, false)), Some(1), None, Some((1, Method::CouponWithMetadata, "coupon_and_metadata_agree"))),
            (Some((1, false)), None, Some(1), Some((1, Method::CouponWithMetadata, "coupon_and_metadata_agree"))),
            (None, Some(2), None, Some((2, Method::MetadataOrCustomer, "referral_metadata"))),
            (None, None, Some(3), Some((3, Method::MetadataOrCustomer, "customer_history"))),
            (None, None, None, None),
        ];
        for (i, (c, referral, history, want)) in table.into_iter().enumerate() {
            let signals = Signals {
                coupon: c.map(|(o, ov)| coupon(o, ov)),
                referral: referral.map(aff),
                click: None,
                customer_history: history.map(aff),
                email_match: None,
            };
            let got = decide(&signals).map(|d| (d.affiliate, d.method, d.rule, d.click));
            assert_eq!(got, want.map(|(a, m, r)| (aff(a), m, r, None)), "row {i}");
        }
    }

    #[test]
    fn a_click_referral_decides_like_a_slug_and_is_credited_with_its_click() {
        let click = ClickId::from_uuid(Uuid::from_u128(7));
        // (coupon (owner, overrides), click's affiliate, history) -> (affiliate, method, rule, click credited)
        type Row = (Option<(u128, bool)>, u128, Option<u128>, (u128, Method, &'static str, bool));
        let table: Vec<Row> = vec![
            (None, 2, None, (2, Method::MetadataOrCustomer, "referral_click", true)),
            (None, 2, Some(3), (2, Method::MetadataOrCustomer, "referral_click", true)),
            (Some((1, false)), 2, None, (2, Method::MetadataOrCustomer, "referral_click", true)),
            (Some((1, true)), 2, None, (1, Method::Coupon, "coupon_overrides_click_attribution", false)),
            (Some((2, true)), 2, None, (2, Method::CouponWithMetadata, "coupon_and_metadata_agree", true)),
        ];
        for (i, (c, referral, history, (a, m, r, credited))) in table.into_iter().enumerate() {
            let signals = Signals {
                coupon: c.map(|(o, ov)| coupon(o, ov)),
                referral: Some(aff(referral)),
                click: Some(click),
                customer_history: history.map(aff),
                email_match: None,
            };
            let got = decide(&signals).map(|d| (d.affiliate, d.method, d.rule, d.click));
            assert_eq!(got, Some((aff(a), m, r, credited.then_some(click))), "row {i}");
        }
    }

    #[test]
    fn an_email_match_with_a_lead_comes_after_referrals_and_history() {
        // (coupon (owner, overrides), referral, history, lead's affiliate) -> (affiliate, method, rule)
        type Row = (Option<(u128, bool)>, Option<u128>, Option<u128>, u128, (u128, Method, &'static str));
        let table: Vec<Row> = vec![
            (None, None, None, 4, (4, Method::EmailMatch, "email_match")),
            (None, Some(2), None, 4, (2, Method::MetadataOrCustomer, "referral_metadata")),
            (None, None, Some(3), 4, (3, Method::MetadataOrCustomer, "customer_history")),
            (Some((1, false)), None, None, 4, (4, Method::EmailMatch, "email_match")),
            (Some((1, true)), None, None, 4, (1, Method::Coupon, "coupon_overrides_click_attribution")),
            (Some((4, true)), None, None, 4, (4, Method::CouponWithMetadata, "coupon_and_metadata_agree")),
        ];
        for (i, (c, referral, history, lead, (a, m, r))) in table.into_iter().enumerate() {
            let signals = Signals {
                coupon: c.map(|(o, ov)| coupon(o, ov)),
                referral: referral.map(aff),
                click: None,
                customer_history: history.map(aff),
                email_match: Some(aff(lead)),
            };
            let got = decide(&signals).map(|d| (d.affiliate, d.method, d.rule));
            assert_eq!(got, Some((aff(a), m, r)), "row {i}");
        }
    }

    #[test]
    fn methods_round_trip_their_api_names() {
        for m in [Method::Coupon, Method::CouponWithMetadata, Method::MetadataOrCustomer, Method::EmailMatch, Method::CpcAggregation] {
            assert_eq!(Method::parse(m.as_str()), Some(m));
        }
    }
}
