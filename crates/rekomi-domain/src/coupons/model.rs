//! Coupons. A campaign coupon holds the discount semantics and maps 1:1 to a Stripe coupon;
//! an affiliate coupon is one affiliate's redeemable code and maps 1:1 to a Stripe promotion
//! code.
//!
//! Both are provisioned in two steps: the row is reserved first (its id fixed, its code's
//! uniqueness claimed) with no Stripe id, then Stripe is called with an idempotency key derived
//! from that id, then the Stripe id is recorded. A crash between the steps leaves a reserved
//! row that a retry or the reconciler finishes with the same key, so Stripe never holds two
//! objects for one Rekomi record.
//!
//! Longer than 600 lines: the last 230 are the rule tables of codes, restrictions and coupons,
//! kept beside the rules they check.

use time::OffsetDateTime;

use crate::affiliates::Email;
use crate::kernel::entropy::Entropy;
use crate::kernel::error::FieldError;
use crate::kernel::ids::{AffiliateCouponId, AffiliateId, CampaignCouponId, OrgId, ProgramId};
use crate::kernel::money::{Currency, Money};
use crate::kernel::stripe_ids::{StripeCouponId, StripeCustomerId, StripePromotionCodeId};
use crate::kernel::text::api_enum;

api_enum!(/// The kind of discount.
    DiscountType { PercentOff, AmountOff });
api_enum!(/// How long the discount applies.
    DurationKind { Once, Repeating, Forever });

/// Largest `amount_off` accepted, in minor units (Stripe's own ceiling is 8 digits).
pub const MAX_AMOUNT_OFF: i64 = 99_999_999;
/// Stripe accepts coupon names of at most this many characters.
pub const STRIPE_COUPON_NAME_MAX: usize = 40;

/// A campaign coupon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignCoupon {
    /// Id.
    pub id: CampaignCouponId,
    /// Owning organization.
    pub org_id: OrgId,
    /// The program whose affiliates get codes of this coupon.
    pub program_id: ProgramId,
    /// Name, 1–200 characters (Stripe gets the first 40).
    pub name: String,
    /// The discount (immutable).
    pub discount: DiscountSpec,
    /// The duration (immutable).
    pub duration: CouponDuration,
    /// Default and ceiling of each code's `maxRedemptions`.
    pub max_redemptions_per_code: Option<u32>,
    /// No redemptions after this instant (Stripe `redeem_by`).
    pub expires_at: Option<OffsetDateTime>,
    /// Whether approved affiliates may mint their own codes.
    pub allow_affiliate_self_mint: bool,
    /// Whether a redeemed code beats a referral click.
    pub overrides_click_attribution: bool,
    /// False once archived.
    pub is_active: bool,
    /// The Stripe coupon id; `None` while provisioning.
    pub stripe_coupon_id: Option<StripeCouponId>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Archive time.
    pub archived_at: Option<OffsetDateTime>,
}

/// The raw fields of a campaign coupon create request, after JSON decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignCouponInput {
    /// `name`.
    pub name: String,
    /// `discountType`.
    pub discount_type: DiscountType,
    /// `discountValue`.
    pub discount_value: i64,
    /// `discountCurrency`.
    pub discount_currency: Option<String>,
    /// `duration`.
    pub duration: DurationKind,
    /// `durationInMonths`.
    pub duration_in_months: Option<i64>,
    /// `maxRedemptionsPerCode`.
    pub max_redemptions_per_code: Option<i64>,
    /// `expiresAt`.
    pub expires_at: Option<OffsetDateTime>,
    /// `allowAffiliateSelfMint` (default false).
    pub allow_affiliate_self_mint: Option<bool>,
    /// `overridesClickAttribution` (default true, as the spec's attribution section says).
    pub overrides_click_attribution: Option<bool>,
}

/// A validated campaign coupon create request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCampaignCoupon {
    /// Name.
    pub name: String,
    /// Discount.
    pub discount: DiscountSpec,
    /// Duration.
    pub duration: CouponDuration,
    /// Per-code redemption cap.
    pub max_redemptions_per_code: Option<u32>,
    /// Expiry.
    pub expires_at: Option<OffsetDateTime>,
    /// Self-mint toggle.
    pub allow_affiliate_self_mint: bool,
    /// Attribution toggle.
    pub overrides_click_attribution: bool,
}

impl NewCampaignCoupon {
    /// Applies every validation rule of the spec.
    ///
    /// # Errors
    /// A [`FieldError`] on the first field at fault.
    pub fn parse(input: CampaignCouponInput, now: OffsetDateTime) -> Result<Self, FieldError> {
        let name = crate::kernel::text::validate_name("name", &input.name, 200)?;
        let discount = match input.discount_type {
            DiscountType::PercentOff => {
                if input.discount_currency.is_some() {
                    return Err(FieldError::invalid("discountCurrency", "must be null for PercentOff"));
                }
                if !(1..=100).contains(&input.discount_value) {
                    return Err(FieldError::invalid("discountValue", "PercentOff takes a whole percentage from 1 to 100"));
                }
                DiscountSpec::PercentOff(input.discount_value as u8)
            }
            DiscountType::AmountOff => {
                if !(1..=MAX_AMOUNT_OFF).contains(&input.discount_value) {
                    return Err(FieldError::invalid("discountValue", "AmountOff takes a positive amount in cents"));
                }
                let code = input
                    .discount_currency
                    .as_deref()
                    .ok_or_else(|| FieldError::invalid("discountCurrency", "is required for AmountOff (ISO 4217)"))?;
                let currency =
                    Currency::parse(code).map_err(|e| FieldError::coded("discountCurrency", "unsupported_currency", e.to_string()))?;
                DiscountSpec::AmountOff(Money::new(input.discount_value, currency))
            }
        };
        let duration = match (input.duration, input.duration_in_months) {
            (DurationKind::Repeating, Some(m)) if (1..=94).contains(&m) => CouponDuration::Repeating(m as u8),
            (DurationKind::Repeating, _) => {
                return Err(FieldError::invalid("durationInMonths", "is required for Repeating and must be 1-94"))
            }
            (_, Some(_)) => return Err(FieldError::invalid("durationInMonths", "is only allowed when duration is Repeating")),
            (DurationKind::Once, None) => CouponDuration::Once,
            (DurationKind::Forever, None) => CouponDuration::Forever,
        };
        let max_redemptions_per_code = validate_max_redemptions("maxRedemptionsPerCode", input.max_redemptions_per_code)?;
        let expires_at = validate_future("expiresAt", input.expires_at, now)?;
        Ok(Self {
            name,
            discount,
            duration,
            max_redemptions_per_code,
            expires_at,
            allow_affiliate_self_mint: input.allow_affiliate_self_mint.unwrap_or(false),
            overrides_click_attribution: input.overrides_click_attribution.unwrap_or(true),
        })
    }
}

fn validate_max_redemptions(field: &str, raw: Option<i64>) -> Result<Option<u32>, FieldError> {
    match raw {
        None => Ok(None),
        Some(n) if n >= 1 && n <= i64::from(u32::MAX) => Ok(Some(n as u32)),
        Some(_) => Err(FieldError::invalid(field, "must be at least 1")),
    }
}

fn validate_future(field: &str, at: Option<OffsetDateTime>, now: OffsetDateTime) -> Result<Option<OffsetDateTime>, FieldError> {
    match at {
        Some(t) if t <= now => Err(FieldError::invalid(field, "must be in the future")),
        other => Ok(other),
    }
}

/// The fields PATCH may change; everything else is immutable (Stripe rule).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CampaignCouponPatch {
    /// New name.
    pub name: Option<String>,
    /// Self-mint toggle.
    pub allow_affiliate_self_mint: Option<bool>,
    /// Attribution toggle.
    pub overrides_click_attribution: Option<bool>,
}

impl CampaignCoupon {
    /// Closes the coupon to new codes (archived here, or deleted at Stripe). Returns whether it
    /// was open.
    pub fn archive(&mut self, now: OffsetDateTime) -> bool {
        if !self.is_active {
            return false;
        }
        self.is_active = false;
        self.archived_at = Some(now);
        self.updated_at = now;
        true
    }

    /// Builds a reserved (not yet provisioned) campaign coupon.
    pub fn reserve(id: CampaignCouponId, org_id: OrgId, program_id: ProgramId, new: NewCampaignCoupon, now: OffsetDateTime) -> Self {
        Self {
            id,
            org_id,
            program_id,
            name: new.name,
            discount: new.discount,
            duration: new.duration,
            max_redemptions_per_code: new.max_redemptions_per_code,
            expires_at: new.expires_at,
            allow_affiliate_self_mint: new.allow_affiliate_self_mint,
            overrides_click_attribution: new.overrides_click_attribution,
            is_active: true,
            stripe_coupon_id: None,
            created_at: now,
            updated_at: now,
            archived_at: None,
        }
    }

    /// Applies a PATCH.
    ///
    /// # Errors
    /// `name` when the new name is blank or too long.
    pub fn apply(&mut self, patch: CampaignCouponPatch, now: OffsetDateTime) -> Result<(), FieldError> {
        if let Some(name) = patch.name {
            self.name = crate::kernel::text::validate_name("name", &name, 200)?;
        }
        if let Some(v) = patch.allow_affiliate_self_mint {
            self.allow_affiliate_self_mint = v;
        }
        if let Some(v) = patch.overrides_click_attribution {
            self.overrides_click_attribution = v;
        }
        self.updated_at = now;
        Ok(())
    }

    /// The name Stripe gets (its limit is 40 characters).
    pub fn stripe_name(&self) -> String {
        self.name.chars().take(STRIPE_COUPON_NAME_MAX).collect()
    }

    /// The idempotency key of this coupon's Stripe creation.
    pub fn creation_key(&self) -> String {
        format!("rekomi-campaign-coupon-{}", self.id)
    }

    /// The idempotency key of this coupon's Stripe deletion.
    pub fn deletion_key(&self) -> String {
        format!("rekomi-campaign-coupon-{}-delete", self.id)
    }

    /// Whether new codes may be minted from this coupon now.
    pub fn accepts_new_codes(&self, now: OffsetDateTime) -> bool {
        self.is_active && self.stripe_coupon_id.is_some() && self.expires_at.is_none_or(|t| t > now)
    }
}

/// A customer-facing promotion code: upper-case, `^[A-Z0-9_-]{3,32}$`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CouponCode(String);

/// The characters of generated codes: Crockford's base-32 alphabet without 0 and 1, so no
/// 0/O or 1/I/L can be confused when a code is read aloud or typed from print.
pub const GENERATED_CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ";
/// The length of generated codes.
pub const GENERATED_CODE_LENGTH: usize = 8;

impl CouponCode {
    /// Upper-cases `raw`, then checks it against `^[A-Z0-9_-]{3,32}$` (so `sarah20` is
    /// `SARAH20`).
    ///
    /// # Errors
    /// A `validation_failed` [`FieldError`] on `code`.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let upper = raw.to_ascii_uppercase();
        let ok = (3..=32).contains(&upper.len())
            && upper.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(upper))
        } else {
            Err(FieldError::invalid("code", "must match ^[A-Z0-9_-]{3,32}$ (letters are upper-cased)"))
        }
    }

    /// Draws an 8-character code from [`GENERATED_CODE_ALPHABET`].
    pub fn generate(entropy: &dyn Entropy) -> Self {
        let s =
            (0..GENERATED_CODE_LENGTH).map(|_| char::from(GENERATED_CODE_ALPHABET[entropy.index(GENERATED_CODE_ALPHABET.len())])).collect();
        Self(s)
    }

    /// The code text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Per-code restrictions from the promotional-codes document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodeRestrictions {
    /// Only customers without a prior successful payment (`first_time_transaction`).
    pub first_time_order: bool,
    /// Minimum order amount with its currency.
    pub minimum_amount: Option<Money>,
    /// Whether the code is limited to specific customers.
    pub limit_to_customers: bool,
    /// The one Stripe customer (`cus_…`) the code is limited to.
    pub customer_id: Option<StripeCustomerId>,
    /// Whether only the affiliate (as that customer) may use the code.
    pub limit_to_affiliate: bool,
}

/// The raw per-code fields of a create request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AffiliateCouponInput {
    /// `code`; generated when absent.
    pub code: Option<String>,
    /// `maxRedemptions`.
    pub max_redemptions: Option<i64>,
    /// `expiresAt`.
    pub expires_at: Option<OffsetDateTime>,
    /// `firstTimeOrder`.
    pub first_time_order: Option<bool>,
    /// `minimumAmount`.
    pub minimum_amount: Option<i64>,
    /// `minimumAmountCurrency`.
    pub minimum_amount_currency: Option<String>,
    /// `limitToCustomers`.
    pub limit_to_customers: Option<bool>,
    /// `customerId`.
    pub customer_id: Option<String>,
    /// `limitToAffiliate`.
    pub limit_to_affiliate: Option<bool>,
}

/// Validated per-code settings, with the campaign coupon's defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeSettings {
    /// The vanity code, or `None` to generate one.
    pub code: Option<CouponCode>,
    /// Redemption cap.
    pub max_redemptions: Option<u32>,
    /// Expiry.
    pub expires_at: Option<OffsetDateTime>,
    /// Restrictions.
    pub restrictions: CodeRestrictions,
}

impl CodeSettings {
    /// Validates the per-code fields against the campaign coupon: `maxRedemptions` defaults to
    /// and may not exceed `maxRedemptionsPerCode`; `expiresAt` must be in the future and not
    /// after the coupon's own expiry (which it defaults to); a minimum amount needs its
    /// currency; a customer limit needs a `cus_…` id.
    ///
    /// # Errors
    /// A [`FieldError`] on the first field at fault.
    pub fn parse(input: AffiliateCouponInput, coupon: &CampaignCoupon, now: OffsetDateTime) -> Result<Self, FieldError> {
        let code = input.code.as_deref().map(CouponCode::parse).transpose()?;
        let max_redemptions = match validate_max_redemptions("maxRedemptions", input.max_redemptions)? {
            None => coupon.max_redemptions_per_code,
            Some(n) => match coupon.max_redemptions_per_code {
                Some(cap) if n > cap => {
                    return Err(FieldError::invalid(
                        "maxRedemptions",
                        format!("must not exceed the campaign coupon's maxRedemptionsPerCode ({cap})"),
                    ))
                }
                _ => Some(n),
            },
        };
        let expires_at = match validate_future("expiresAt", input.expires_at, now)? {
            None => coupon.expires_at,
            Some(t) => match coupon.expires_at {
                Some(limit) if t > limit => {
                    return Err(FieldError::invalid("expiresAt", "must not be after the campaign coupon's expiresAt"))
                }
                _ => Some(t),
            },
        };
        let minimum_amount = match (input.minimum_amount, input.minimum_amount_currency.as_deref()) {
            (None, None) => None,
            (Some(amount), Some(code)) => {
                if !(1..=MAX_AMOUNT_OFF).contains(&amount) {
                    return Err(FieldError::invalid("minimumAmount", "must be a positive amount in cents"));
                }
                let currency =
                    Currency::parse(code).map_err(|e| FieldError::coded("minimumAmountCurrency", "unsupported_currency", e.to_string()))?;
                Some(Money::new(amount, currency))
            }
            (Some(_), None) => return Err(FieldError::invalid("minimumAmountCurrency", "is required with minimumAmount")),
            (None, Some(_)) => return Err(FieldError::invalid("minimumAmount", "is required with minimumAmountCurrency")),
        };
        // Stricter than a customer id read from Stripe: a request's id must be in Stripe's own
        // alphabet, as every id Stripe makes is.
        let customer_id = match input.customer_id.as_deref() {
            None => None,
            Some(id) => match StripeCustomerId::parse(id) {
                Ok(id) if id.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => Some(id),
                _ => return Err(FieldError::invalid("customerId", "must be a Stripe customer id (cus_…)")),
            },
        };
        let limit_to_affiliate = input.limit_to_affiliate.unwrap_or(false);
        let limit_to_customers = input.limit_to_customers.unwrap_or(customer_id.is_some());
        if (limit_to_customers || limit_to_affiliate) && customer_id.is_none() {
            return Err(FieldError::invalid("customerId", "is required when the code is limited to a customer or to the affiliate"));
        }
        if customer_id.is_some() && !limit_to_customers && !limit_to_affiliate {
            return Err(FieldError::invalid("limitToCustomers", "cannot be false when customerId is set"));
        }
        Ok(Self {
            code,
            max_redemptions,
            expires_at,
            restrictions: CodeRestrictions {
                first_time_order: input.first_time_order.unwrap_or(false),
                minimum_amount,
                limit_to_customers,
                customer_id,
                limit_to_affiliate,
            },
        })
    }
}

/// An affiliate coupon (promotion code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffiliateCoupon {
    /// Id.
    pub id: AffiliateCouponId,
    /// Owning organization.
    pub org_id: OrgId,
    /// The affiliate's program (same as the campaign coupon's).
    pub program_id: ProgramId,
    /// Owner.
    pub affiliate_id: AffiliateId,
    /// Parent campaign coupon.
    pub campaign_coupon_id: CampaignCouponId,
    /// The code, unique per organization regardless of case.
    pub code: CouponCode,
    /// The Stripe promotion code id; `None` while provisioning.
    pub stripe_promotion_code_id: Option<StripePromotionCodeId>,
    /// False once revoked.
    pub is_active: bool,
    /// Redemption cap.
    pub max_redemptions: Option<u32>,
    /// Expiry.
    pub expires_at: Option<OffsetDateTime>,
    /// Restrictions.
    pub restrictions: CodeRestrictions,
    /// How many times the code was redeemed on a paid or lead conversion.
    pub times_redeemed: i64,
    /// Last redemption.
    pub last_redeemed_at: Option<OffsetDateTime>,
    /// Whether Rekomi generated the code text.
    pub is_auto_generated: bool,
    /// Whether the affiliate minted the code themselves.
    pub self_minted: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Revocation time.
    pub revoked_at: Option<OffsetDateTime>,
}

impl AffiliateCoupon {
    /// The idempotency key of this code's Stripe creation.
    pub fn creation_key(&self) -> String {
        format!("rekomi-affiliate-coupon-{}", self.id)
    }

    /// The idempotency key of this code's Stripe deactivation.
    pub fn deactivation_key(&self) -> String {
        format!("rekomi-affiliate-coupon-{}-deactivate", self.id)
    }

    /// Marks the code revoked. Returns whether it was active.
    pub fn revoke(&mut self, now: OffsetDateTime) -> bool {
        if !self.is_active {
            return false;
        }
        self.is_active = false;
        self.revoked_at = Some(now);
        self.updated_at = now;
        true
    }
}

/// Which affiliate coupons to list (exactly one selector).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CouponSelector {
    /// Codes of one affiliate.
    Affiliate(AffiliateId),
    /// Codes of one campaign coupon.
    CampaignCoupon(CampaignCouponId),
    /// Codes of every affiliate row with this email (one person across programs).
    AffiliateEmail(Email),
}

/// The discount of a Stripe coupon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscountSpec {
    /// `percent_off`, 1–100.
    PercentOff(u8),
    /// `amount_off` in minor units with its `currency`.
    AmountOff(Money),
}

/// How long a coupon's discount applies to a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CouponDuration {
    /// `duration=once`.
    Once,
    /// `duration=repeating` with `duration_in_months`.
    Repeating(u8),
    /// `duration=forever`.
    Forever,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn input() -> CampaignCouponInput {
        CampaignCouponInput {
            name: "Summer 20% off".into(),
            discount_type: DiscountType::PercentOff,
            discount_value: 20,
            discount_currency: None,
            duration: DurationKind::Once,
            duration_in_months: None,
            max_redemptions_per_code: None,
            expires_at: None,
            allow_affiliate_self_mint: Some(false),
            overrides_click_attribution: Some(true),
        }
    }

    fn field_of(r: Result<NewCampaignCoupon, FieldError>) -> Option<String> {
        r.err().map(|e| e.field)
    }

    #[test]
    fn campaign_coupon_validation_rule_table() {
        type Edit = fn(&mut CampaignCouponInput);
        let table: Vec<(&str, Edit, Option<&str>)> = vec![
            ("spec example", |_| {}, None),
            ("percent 1", |i| i.discount_value = 1, None),
            ("percent 100", |i| i.discount_value = 100, None),
            ("percent 0", |i| i.discount_value = 0, Some("discountValue")),
            ("percent 101", |i| i.discount_value = 101, Some("discountValue")),
            ("percent with currency", |i| i.discount_currency = Some("USD".into()), Some("discountCurrency")),
            (
                "amount with currency",
                |i| {
                    i.discount_type = DiscountType::AmountOff;
                    i.discount_value = 500;
                    i.discount_currency = Some("usd".into());
                },
                None,
            ),
            (
                "amount without currency",
                |i| {
                    i.discount_type = DiscountType::AmountOff;
                    i.discount_value = 500;
                },
                Some("discountCurrency"),
            ),
            (
                "amount bad currency",
                |i| {
                    i.discount_type = DiscountType::AmountOff;
                    i.discount_value = 500;
                    i.discount_currency = Some("XXX".into());
                },
                Some("discountCurrency"),
            ),
            (
                "amount zero",
                |i| {
                    i.discount_type = DiscountType::AmountOff;
                    i.discount_value = 0;
                    i.discount_currency = Some("USD".into());
                },
                Some("discountValue"),
            ),
            (
                "amount negative",
                |i| {
                    i.discount_type = DiscountType::AmountOff;
                    i.discount_value = -5;
                    i.discount_currency = Some("USD".into());
                },
                Some("discountValue"),
            ),
            (
                "repeating 1",
                |i| {
                    i.duration = DurationKind::Repeating;
                    i.duration_in_months = Some(1);
                },
                None,
            ),
            (
                "repeating 94",
                |i| {
                    i.duration = DurationKind::Repeating;
                    i.duration_in_months = Some(94);
                },
                None,
            ),
            (
                "repeating 95",
                |i| {
                    i.duration = DurationKind::Repeating;
                    i.duration_in_months = Some(95);
                },
                Some("durationInMonths"),
            ),
            (
                "repeating 0",
                |i| {
                    i.duration = DurationKind::Repeating;
                    i.duration_in_months = Some(0);
                },
                Some("durationInMonths"),
            ),
            ("repeating missing months", |i| i.duration = DurationKind::Repeating, Some("durationInMonths")),
            ("once with months", |i| i.duration_in_months = Some(3), Some("durationInMonths")),
            (
                "forever with months",
                |i| {
                    i.duration = DurationKind::Forever;
                    i.duration_in_months = Some(3);
                },
                Some("durationInMonths"),
            ),
            ("forever", |i| i.duration = DurationKind::Forever, None),
            ("expires in future", |i| i.expires_at = Some(datetime!(2026-12-31 23:59:59 UTC)), None),
            ("expires now", |i| i.expires_at = Some(NOW), Some("expiresAt")),
            ("expires in past", |i| i.expires_at = Some(datetime!(2020-01-01 0:00 UTC)), Some("expiresAt")),
            ("max redemptions 1", |i| i.max_redemptions_per_code = Some(1), None),
            ("max redemptions 0", |i| i.max_redemptions_per_code = Some(0), Some("maxRedemptionsPerCode")),
            ("blank name", |i| i.name = "  ".into(), Some("name")),
            ("long name", |i| i.name = "x".repeat(201), Some("name")),
        ];
        for (case, edit, want) in table {
            let mut i = input();
            edit(&mut i);
            assert_eq!(field_of(NewCampaignCoupon::parse(i, NOW)).as_deref(), want, "{case}");
        }
    }

    #[test]
    fn an_unsupported_discount_currency_has_its_own_error_code() {
        let mut i = input();
        i.discount_type = DiscountType::AmountOff;
        i.discount_value = 500;
        i.discount_currency = Some("BTC".into());
        assert_eq!(NewCampaignCoupon::parse(i, NOW).unwrap_err().code, "unsupported_currency");
    }

    #[test]
    fn vanity_codes_are_upper_cased_then_checked() {
        assert_eq!(CouponCode::parse("sarah20").map(|c| c.as_str().to_owned()), Ok("SARAH20".to_owned()));
        for ok in ["ABC", "SARAH-SPRING", "A_B-C", &"X".repeat(32)] {
            assert!(CouponCode::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["AB", "", "SARAH 20", "SARAH!", "ÉTÉ20", &"X".repeat(33)] {
            assert!(CouponCode::parse(bad).is_err(), "{bad}");
        }
    }

    struct Seq(std::sync::atomic::AtomicU8);
    impl Entropy for Seq {
        fn fill(&self, buf: &mut [u8]) {
            for b in buf {
                *b = self.0.fetch_add(37, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    #[test]
    fn generated_codes_are_eight_characters_without_confusable_ones() {
        assert_eq!(GENERATED_CODE_ALPHABET.len(), 30);
        for c in b"0O1IL" {
            assert!(!GENERATED_CODE_ALPHABET.contains(c));
        }
        let entropy = Seq(0.into());
        for _ in 0..500 {
            let code = CouponCode::generate(&entropy);
            assert_eq!(code.as_str().len(), 8);
            assert!(code.as_str().bytes().all(|b| GENERATED_CODE_ALPHABET.contains(&b)));
            assert_eq!(CouponCode::parse(code.as_str()).as_ref(), Ok(&code));
        }
    }

    fn coupon(max: Option<u32>, expires: Option<OffsetDateTime>) -> CampaignCoupon {
        let mut new = NewCampaignCoupon::parse(input(), NOW).unwrap();
        new.max_redemptions_per_code = max;
        new.expires_at = expires;
        CampaignCoupon::reserve(
            CampaignCouponId::from_uuid(uuid::Uuid::nil()),
            OrgId::from_uuid(uuid::Uuid::nil()),
            ProgramId::from_uuid(uuid::Uuid::nil()),
            new,
            NOW,
        )
    }

    #[test]
    fn code_settings_inherit_and_respect_the_campaign_limits() {
        let expiry = datetime!(2026-12-31 0:00 UTC);
        let c = coupon(Some(100), Some(expiry));
        let s = CodeSettings::parse(AffiliateCouponInput::default(), &c, NOW).unwrap();
        assert_eq!((s.max_redemptions, s.expires_at), (Some(100), Some(expiry)));
        let over = AffiliateCouponInput { max_redemptions: Some(101), ..Default::default() };
        assert_eq!(CodeSettings::parse(over, &c, NOW).unwrap_err().field, "maxRedemptions");
        let late = AffiliateCouponInput { expires_at: Some(datetime!(2027-01-01 0:00 UTC)), ..Default::default() };
        assert_eq!(CodeSettings::parse(late, &c, NOW).unwrap_err().field, "expiresAt");
    }

    #[test]
    fn code_restriction_rule_table() {
        let c = coupon(None, None);
        let cases: Vec<(AffiliateCouponInput, Option<&str>)> = vec![
            (AffiliateCouponInput { first_time_order: Some(true), ..Default::default() }, None),
            (AffiliateCouponInput { minimum_amount: Some(5000), minimum_amount_currency: Some("usd".into()), ..Default::default() }, None),
            (AffiliateCouponInput { minimum_amount: Some(5000), ..Default::default() }, Some("minimumAmountCurrency")),
            (AffiliateCouponInput { minimum_amount_currency: Some("USD".into()), ..Default::default() }, Some("minimumAmount")),
            (
                AffiliateCouponInput { minimum_amount: Some(0), minimum_amount_currency: Some("USD".into()), ..Default::default() },
                Some("minimumAmount"),
            ),
            (AffiliateCouponInput { customer_id: Some("cus_123".into()), ..Default::default() }, None),
            (AffiliateCouponInput { customer_id: Some("bob".into()), ..Default::default() }, Some("customerId")),
            (AffiliateCouponInput { limit_to_customers: Some(true), ..Default::default() }, Some("customerId")),
            (AffiliateCouponInput { limit_to_affiliate: Some(true), ..Default::default() }, Some("customerId")),
            (
                AffiliateCouponInput { limit_to_customers: Some(false), customer_id: Some("cus_1".into()), ..Default::default() },
                Some("limitToCustomers"),
            ),
            (AffiliateCouponInput { max_redemptions: Some(0), ..Default::default() }, Some("maxRedemptions")),
            (AffiliateCouponInput { expires_at: Some(NOW), ..Default::default() }, Some("expiresAt")),
            (AffiliateCouponInput { code: Some("x".into()), ..Default::default() }, Some("code")),
        ];
        for (i, (input, want)) in cases.into_iter().enumerate() {
            assert_eq!(CodeSettings::parse(input, &c, NOW).err().map(|e| e.field).as_deref(), want, "case {i}");
        }
        let s = CodeSettings::parse(AffiliateCouponInput { customer_id: Some("cus_9".into()), ..Default::default() }, &c, NOW).unwrap();
        assert!(s.restrictions.limit_to_customers, "a customer id implies limitToCustomers");
    }
}
