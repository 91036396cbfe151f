//! Stripe's ids, typed: what crosses the payment gateway port, the decoded facts of Stripe
//! events and the storage port is a `StripeInvoiceId` or a `StripeCustomerId`, never a bare
//! string, so an invoice id cannot be passed where a customer id is expected.
//!
//! Every id is checked the same way by its `parse`: not empty, at most
//! [`MAX_STRIPE_ID_LEN`] bytes, no control character (PostgreSQL cannot even store a NUL), and,
//! where Stripe's prefix is fixed, that prefix followed by at least one character. The rest of an
//! id is not checked further: Stripe documents no alphabet for its ids (a coupon id is whatever
//! its creator chose), so the edges that take ids from people (request fields, the command line)
//! and the adapter that puts one in a URL check what they need. The prefixes are Stripe's:
//!
//! | Type | Prefix |
//! |---|---|
//! | [`StripeAccountId`] | `acct_` |
//! | [`StripeCouponId`] | none: a coupon id is any id the creator chose (`SPRING25`), or Stripe's random one |
//! | [`StripePromotionCodeId`] | `promo_` |
//! | [`StripeCustomerId`] | `cus_` |
//! | [`StripeSubscriptionId`] | `sub_` |
//! | [`StripeInvoiceId`] | `in_` |
//! | [`StripeChargeId`] | `ch_`, or `py_` (charges of some payment methods, and on connected accounts) |
//! | [`StripePaymentIntentId`] | `pi_` |
//! | [`StripeCheckoutSessionId`] | `cs_` (`cs_test_…`, `cs_live_…`) |
//! | [`StripeEventId`] | `evt_` |
//!
//! Local mode and the test fakes make their own ids within these rules (`coupon_local_…`,
//! `promo_local_…`, `promo_fake_1`).
//!
//! [`StripePaymentRef`] is the payment a sale is recorded under and a refund looks for.

use std::fmt;
use std::str::FromStr;

/// The longest Stripe id accepted, in bytes. Stripe's own ids are far shorter; the bound keeps a
/// forged one out of the store, as the bound on idempotency keys does.
pub const MAX_STRIPE_ID_LEN: usize = 255;

/// Why a text is not a Stripe id of the expected kind. The message names the kind, never the
/// text (ids come from webhook payloads and requests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidStripeId {
    /// Empty.
    #[error("a Stripe {kind} id must not be empty")]
    Empty {
        /// e.g. `customer`.
        kind: &'static str,
    },
    /// Longer than [`MAX_STRIPE_ID_LEN`] bytes.
    #[error("a Stripe {kind} id must be at most 255 bytes")]
    TooLong {
        /// e.g. `customer`.
        kind: &'static str,
    },
    /// Holds a control character.
    #[error("a Stripe {kind} id must not contain control characters")]
    ControlCharacter {
        /// e.g. `customer`.
        kind: &'static str,
    },
    /// Lacks the kind's prefix, or has nothing after it.
    #[error("a Stripe {kind} id must be {expected} followed by the id")]
    WrongPrefix {
        /// e.g. `customer`.
        kind: &'static str,
        /// e.g. `cus_…`, or `ch_… or py_…`.
        expected: &'static str,
    },
}

impl InvalidStripeId {
    /// The kind of id that was expected, e.g. `customer`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Empty { kind } | Self::TooLong { kind } | Self::ControlCharacter { kind } | Self::WrongPrefix { kind, .. } => kind,
        }
    }
}

/// The rules every Stripe id shares; `prefixes` empty means any prefix.
fn check(raw: &str, kind: &'static str, prefixes: &[&str], expected: &'static str) -> Result<(), InvalidStripeId> {
    if raw.is_empty() {
        return Err(InvalidStripeId::Empty { kind });
    }
    if raw.len() > MAX_STRIPE_ID_LEN {
        return Err(InvalidStripeId::TooLong { kind });
    }
    if raw.chars().any(char::is_control) {
        return Err(InvalidStripeId::ControlCharacter { kind });
    }
    let prefixed = prefixes.is_empty() || prefixes.iter().any(|p| raw.len() > p.len() && raw.starts_with(p));
    if !prefixed {
        return Err(InvalidStripeId::WrongPrefix { kind, expected });
    }
    Ok(())
}

macro_rules! stripe_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, [$($prefix:literal),*], $expected:literal) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// What kind of Stripe id this is, as error messages name it.
            pub const KIND: &'static str = $kind;
            /// The prefixes Stripe gives this kind of id (none: any).
            pub const PREFIXES: &'static [&'static str] = &[$($prefix),*];

            /// Checks `raw` against the rules of Stripe ids (see the module docs).
            ///
            /// # Errors
            /// [`InvalidStripeId`] saying which rule `raw` breaks.
            pub fn parse(raw: &str) -> Result<Self, InvalidStripeId> {
                check(raw, $kind, Self::PREFIXES, $expected)?;
                Ok(Self(raw.to_owned()))
            }

            /// The id as Stripe writes it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidStripeId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidStripeId;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        /// Compares the id as Stripe writes it with a text; ids of different kinds never compare.
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

stripe_id!(
    /// A Stripe (Connect) account, `acct_…`: the `Stripe-Account` an organization's calls act on,
    /// and the `account` of a connected account's events.
    StripeAccountId, "account", ["acct_"], "acct_…");
stripe_id!(
    /// A Stripe coupon. Free-form: whoever creates a coupon may choose its id (`SPRING25`,
    /// `free-1-month`), and Stripe makes a random one otherwise; only the shared rules apply.
    StripeCouponId, "coupon", [], "any id");
stripe_id!(
    /// A Stripe promotion code, `promo_…` (local mode's are `promo_local_…`).
    StripePromotionCodeId, "promotion code", ["promo_"], "promo_…");
stripe_id!(
    /// A Stripe customer, `cus_…`.
    StripeCustomerId, "customer", ["cus_"], "cus_…");
stripe_id!(
    /// A Stripe subscription, `sub_…`.
    StripeSubscriptionId, "subscription", ["sub_"], "sub_…");
stripe_id!(
    /// A Stripe invoice, `in_…`.
    StripeInvoiceId, "invoice", ["in_"], "in_…");
stripe_id!(
    /// A Stripe charge: `ch_…`, or `py_…` for the charges of some payment methods (bank debits)
    /// and those a platform's destination charge creates on a connected account.
    StripeChargeId, "charge", ["ch_", "py_"], "ch_… or py_…");
stripe_id!(
    /// A Stripe payment intent, `pi_…`.
    StripePaymentIntentId, "payment intent", ["pi_"], "pi_…");
stripe_id!(
    /// A Stripe Checkout session, `cs_…` (`cs_test_…` or `cs_live_…`).
    StripeCheckoutSessionId, "checkout session", ["cs_"], "cs_…");
stripe_id!(
    /// A Stripe Connect transfer, `tr_…` (local mode's are `tr_local_…`).
    StripeTransferId, "transfer", ["tr_"], "tr_…");
stripe_id!(
    /// A Stripe event, `evt_…`: the inbox's idempotency key.
    StripeEventId, "event", ["evt_"], "evt_…");

/// The payment a sale is recorded under in the commission ledger, and that a refund looks for.
///
/// The rule: a sale is keyed by its invoice when it has one, else by its payment intent, else
/// (a Checkout session paid without a payment intent) by its session; a refunded charge names
/// its payment the same way — its invoice when known, else its payment intent, else the charge
/// itself. Stored and shown as the id alone; [`StripePaymentRef::parse`] tells the kinds apart
/// by Stripe's prefixes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StripePaymentRef {
    /// An invoice's payment.
    Invoice(StripeInvoiceId),
    /// A payment intent without an invoice.
    PaymentIntent(StripePaymentIntentId),
    /// A charge without a payment intent.
    Charge(StripeChargeId),
    /// A Checkout session's payment without a payment intent.
    CheckoutSession(StripeCheckoutSessionId),
}

impl StripePaymentRef {
    /// What kind of Stripe id this is, as error messages name it.
    pub const KIND: &'static str = "payment";

    /// Reads an invoice (`in_…`), payment intent (`pi_…`), charge (`ch_…`, `py_…`) or Checkout
    /// session (`cs_…`) id, by its prefix.
    ///
    /// # Errors
    /// [`InvalidStripeId`] (of kind `payment`) for any other text.
    pub fn parse(raw: &str) -> Result<Self, InvalidStripeId> {
        check(raw, Self::KIND, &[], "")?;
        let parsed = if let Ok(id) = StripeInvoiceId::parse(raw) {
            Self::Invoice(id)
        } else if let Ok(id) = StripePaymentIntentId::parse(raw) {
            Self::PaymentIntent(id)
        } else if let Ok(id) = StripeChargeId::parse(raw) {
            Self::Charge(id)
        } else if let Ok(id) = StripeCheckoutSessionId::parse(raw) {
            Self::CheckoutSession(id)
        } else {
            return Err(InvalidStripeId::WrongPrefix { kind: Self::KIND, expected: "in_…, pi_…, ch_…, py_… or cs_…" });
        };
        Ok(parsed)
    }

    /// The id as Stripe writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Invoice(id) => id.as_str(),
            Self::PaymentIntent(id) => id.as_str(),
            Self::Charge(id) => id.as_str(),
            Self::CheckoutSession(id) => id.as_str(),
        }
    }
}

impl fmt::Display for StripePaymentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StripePaymentRef {
    type Err = InvalidStripeId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<StripeInvoiceId> for StripePaymentRef {
    fn from(id: StripeInvoiceId) -> Self {
        Self::Invoice(id)
    }
}

impl From<StripePaymentIntentId> for StripePaymentRef {
    fn from(id: StripePaymentIntentId) -> Self {
        Self::PaymentIntent(id)
    }
}

impl From<StripeChargeId> for StripePaymentRef {
    fn from(id: StripeChargeId) -> Self {
        Self::Charge(id)
    }
}

impl From<StripeCheckoutSessionId> for StripePaymentRef {
    fn from(id: StripeCheckoutSessionId) -> Self {
        Self::CheckoutSession(id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

    use super::*;

    #[test]
    fn ids_with_their_prefix_are_accepted_and_read_back_as_written() {
        assert_eq!(StripeAccountId::parse("acct_1RekomiConnected").unwrap().as_str(), "acct_1RekomiConnected");
        assert_eq!(StripePromotionCodeId::parse("promo_1MiM6KLkdIwHu7ix").unwrap().to_string(), "promo_1MiM6KLkdIwHu7ix");
        assert_eq!(StripeCustomerId::parse("cus_NffrFeUfNV2Hib").unwrap().as_str(), "cus_NffrFeUfNV2Hib");
        assert_eq!(StripeSubscriptionId::parse("sub_1MowQVLkdIwHu7ix").unwrap().as_str(), "sub_1MowQVLkdIwHu7ix");
        assert_eq!(StripeInvoiceId::parse("in_1MtHbELkdIwHu7ixl4OzzPMv").unwrap().as_str(), "in_1MtHbELkdIwHu7ixl4OzzPMv");
        assert_eq!(StripeChargeId::parse("ch_3MmlLrLkdIwHu7ix0snN0B15").unwrap().as_str(), "ch_3MmlLrLkdIwHu7ix0snN0B15");
        assert_eq!(StripeChargeId::parse("py_1").unwrap().as_str(), "py_1");
        assert_eq!(StripePaymentIntentId::parse("pi_3MtwBwLkdIwHu7ix28a3tqPa").unwrap().as_str(), "pi_3MtwBwLkdIwHu7ix28a3tqPa");
        assert_eq!(StripeCheckoutSessionId::parse("cs_test_a1b2").unwrap().as_str(), "cs_test_a1b2");
        assert_eq!(StripeEventId::parse("evt_1").unwrap().as_str(), "evt_1");
        assert_eq!("cus_1".parse::<StripeCustomerId>().unwrap(), StripeCustomerId::parse("cus_1").unwrap());
    }

    #[test]
    fn a_coupon_id_is_free_form() {
        for id in ["jMT0WJUD", "SPRING25", "free-1-month", "coupon_local_vab5RpW6i5Hzn7YMlm3bwca0", "coupon_fake_1", "10OFF", "x"] {
            assert_eq!(StripeCouponId::parse(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn the_ids_local_mode_and_the_fakes_make_are_accepted() {
        StripePromotionCodeId::parse("promo_local_vab5RpW6i5Hzn7YMlm3bwca0").unwrap();
        StripePromotionCodeId::parse("promo_fake_1").unwrap();
        StripeCouponId::parse("coupon_local_vab5RpW6i5Hzn7YMlm3bwca0").unwrap();
    }

    #[test]
    fn a_wrong_or_bare_prefix_is_refused_naming_the_kind() {
        let err = StripeCustomerId::parse("in_1").unwrap_err();
        assert_eq!(err, InvalidStripeId::WrongPrefix { kind: "customer", expected: "cus_…" });
        assert_eq!(err.to_string(), "a Stripe customer id must be cus_… followed by the id");
        assert_eq!(err.kind(), "customer");
        for (raw, result) in [
            ("acct_", StripeAccountId::parse("acct_").err()),
            ("bogus", StripeAccountId::parse("bogus").err()),
            ("ACCT_1", StripeAccountId::parse("ACCT_1").err()),
            ("prom_1", StripePromotionCodeId::parse("prom_1").err()),
            ("sub1", StripeSubscriptionId::parse("sub1").err()),
            ("cus_1", StripeInvoiceId::parse("cus_1").err()),
            ("pi_1", StripeChargeId::parse("pi_1").err()),
            ("ch_1", StripePaymentIntentId::parse("ch_1").err()),
            ("in_1", StripeCheckoutSessionId::parse("in_1").err()),
            ("1", StripeEventId::parse("1").err()),
            (" cus_1", StripeCustomerId::parse(" cus_1").err()),
        ] {
            assert!(matches!(result, Some(InvalidStripeId::WrongPrefix { .. })), "{raw:?}: {result:?}");
        }
    }

    #[test]
    fn empty_overlong_and_control_character_ids_are_refused_whatever_the_kind() {
        assert_eq!(StripeCouponId::parse(""), Err(InvalidStripeId::Empty { kind: "coupon" }));
        assert_eq!(StripeCustomerId::parse(""), Err(InvalidStripeId::Empty { kind: "customer" }));
        let longest = format!("cus_{}", "a".repeat(MAX_STRIPE_ID_LEN - 4));
        assert!(StripeCustomerId::parse(&longest).is_ok());
        assert_eq!(StripeCustomerId::parse(&format!("{longest}a")), Err(InvalidStripeId::TooLong { kind: "customer" }));
        assert_eq!(StripeCouponId::parse(&"c".repeat(256)), Err(InvalidStripeId::TooLong { kind: "coupon" }));
        for raw in ["cus_\u{0}1", "cus_1\n", "cus_\u{7f}", "cus_\u{85}x"] {
            assert_eq!(StripeCustomerId::parse(raw), Err(InvalidStripeId::ControlCharacter { kind: "customer" }), "{raw:?}");
        }
        assert_eq!(StripeCouponId::parse("SPRING\t25"), Err(InvalidStripeId::ControlCharacter { kind: "coupon" }));
    }

    #[test]
    fn error_messages_never_repeat_the_text() {
        let raw = "secret\u{0}value";
        for message in [
            StripeCouponId::parse(raw).unwrap_err().to_string(),
            StripeInvoiceId::parse("secretvalue").unwrap_err().to_string(),
            StripePaymentRef::parse("secretvalue").unwrap_err().to_string(),
        ] {
            assert!(!message.contains("secret"), "{message}");
        }
    }

    #[test]
    fn a_payment_is_told_apart_by_its_prefix() {
        assert_eq!(StripePaymentRef::parse("in_1").unwrap(), StripePaymentRef::Invoice(StripeInvoiceId::parse("in_1").unwrap()));
        assert_eq!(
            StripePaymentRef::parse("pi_1").unwrap(),
            StripePaymentRef::PaymentIntent(StripePaymentIntentId::parse("pi_1").unwrap())
        );
        assert_eq!(StripePaymentRef::parse("ch_1").unwrap(), StripePaymentRef::Charge(StripeChargeId::parse("ch_1").unwrap()));
        assert_eq!(StripePaymentRef::parse("py_1").unwrap(), StripePaymentRef::Charge(StripeChargeId::parse("py_1").unwrap()));
        assert_eq!(
            StripePaymentRef::parse("cs_test_1").unwrap(),
            StripePaymentRef::CheckoutSession(StripeCheckoutSessionId::parse("cs_test_1").unwrap())
        );
        for raw in ["in_1", "pi_1", "ch_1", "py_1", "cs_live_1"] {
            assert_eq!(StripePaymentRef::parse(raw).unwrap().as_str(), raw);
            assert_eq!(StripePaymentRef::parse(raw).unwrap().to_string(), raw);
        }
        let invoice = StripeInvoiceId::parse("in_9").unwrap();
        assert_eq!(StripePaymentRef::from(invoice.clone()), StripePaymentRef::Invoice(invoice));
    }

    #[test]
    fn anything_but_a_payment_is_refused_as_one() {
        for raw in ["cus_1", "sub_1", "promo_1", "in_", "pi_", "evt_1", "SPRING25"] {
            let err = StripePaymentRef::parse(raw).unwrap_err();
            assert!(matches!(err, InvalidStripeId::WrongPrefix { kind: "payment", .. }), "{raw:?}: {err:?}");
        }
        assert_eq!(StripePaymentRef::parse(""), Err(InvalidStripeId::Empty { kind: "payment" }));
        assert_eq!(StripePaymentRef::parse("in_\u{0}"), Err(InvalidStripeId::ControlCharacter { kind: "payment" }));
        assert_eq!(StripePaymentRef::parse(&format!("in_{}", "1".repeat(253))), Err(InvalidStripeId::TooLong { kind: "payment" }));
    }
}
