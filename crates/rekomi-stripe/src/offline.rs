//! [`OfflineGateway`]: the [`PaymentGateway`] for local mode, when the server runs without a
//! Stripe secret. Nothing leaves the process.
//!
//! Ids are derived from the idempotency key rather than drawn at random, so a retried call gets
//! the id the first call got, as it would from Stripe. That keeps the adapter stateless: no map
//! of keys to ids to lose on restart.

use async_trait::async_trait;
use rekomi_domain::kernel::stripe_ids::{
    StripeChargeId, StripeCouponId, StripeCustomerId, StripeInvoiceId, StripePaymentIntentId, StripePromotionCodeId, StripeSubscriptionId,
};
use rekomi_domain::ports::gateway::{CreateCoupon, CreatePromotionCode, GatewayContext, GatewayError, PaymentGateway};
use rekomi_domain::stripe_inbox::facts::PromotionCodeRef;
use sha2::{Digest, Sha256};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Length of the random-looking part of an id; 24 base-62 digits carry ~142 bits of the hash.
const ID_DIGITS: usize = 24;

/// Same bounds as Stripe (and async-stripe) put on an `Idempotency-Key`, so that a key that
/// works locally also works against Stripe.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The [`PaymentGateway`] for local mode: returns `coupon_local_…` and `promo_local_…` ids
/// derived from the idempotency key; deactivating and deleting always succeed. Without Stripe no
/// invoice, subscription, payment or customer exists, so the reads find nothing: no promotion
/// codes, no invoice, no customer referral.
#[derive(Clone, Copy, Debug, Default)]
pub struct OfflineGateway;

impl OfflineGateway {
    /// The offline gateway.
    pub fn new() -> Self {
        Self
    }
}

/// `{prefix}{24 base-62 digits of sha256(key)}`.
fn local_id(prefix: &str, key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    // Long division of the 256-bit digest by 62, least significant digit first: unlike
    // `byte % 62` it gives every digit the same odds.
    let mut number: Vec<u8> = digest.iter().copied().collect();
    let mut id = String::with_capacity(prefix.len() + ID_DIGITS);
    id.push_str(prefix);
    for _ in 0..ID_DIGITS {
        let mut remainder = 0_u32;
        for byte in &mut number {
            let value = (remainder << 8) | u32::from(*byte);
            // `value < 62 · 256`, so the quotient fits a byte.
            *byte = u8::try_from(value / 62).unwrap_or(u8::MAX);
            remainder = value % 62;
        }
        id.push(char::from(BASE62[remainder as usize]));
    }
    id
}

/// [`local_id`] as the id type of its kind; the ids are within every kind's rules (a prefix,
/// then base-62 digits), so this never fails in practice.
fn typed_local_id<T: std::str::FromStr>(prefix: &str, key: &str) -> Result<T, GatewayError> {
    local_id(prefix, key).parse().map_err(|_| GatewayError::Unknown(anyhow::anyhow!("a local {prefix}… id is malformed")))
}

fn check_key(key: &str) -> Result<(), GatewayError> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(GatewayError::Unknown(anyhow::anyhow!(
            "invalid idempotency key: expected 1 to {MAX_IDEMPOTENCY_KEY_LEN} bytes, got {}",
            key.len()
        )));
    }
    Ok(())
}

#[async_trait]
impl PaymentGateway for OfflineGateway {
    async fn create_coupon(&self, _ctx: &GatewayContext, request: &CreateCoupon) -> Result<StripeCouponId, GatewayError> {
        check_key(&request.idempotency_key)?;
        typed_local_id("coupon_local_", &request.idempotency_key)
    }

    async fn create_promotion_code(
        &self,
        _ctx: &GatewayContext,
        request: &CreatePromotionCode,
    ) -> Result<StripePromotionCodeId, GatewayError> {
        check_key(&request.idempotency_key)?;
        typed_local_id("promo_local_", &request.idempotency_key)
    }

    async fn deactivate_promotion_code(
        &self,
        _ctx: &GatewayContext,
        _promotion_code_id: &StripePromotionCodeId,
        idempotency_key: &str,
    ) -> Result<(), GatewayError> {
        check_key(idempotency_key)
    }

    async fn invoice_promotion_codes(
        &self,
        _ctx: &GatewayContext,
        _invoice_id: &StripeInvoiceId,
    ) -> Result<Vec<PromotionCodeRef>, GatewayError> {
        Ok(Vec::new())
    }

    async fn subscription_promotion_codes(
        &self,
        _ctx: &GatewayContext,
        _subscription_id: &StripeSubscriptionId,
    ) -> Result<Vec<PromotionCodeRef>, GatewayError> {
        Ok(Vec::new())
    }

    async fn invoice_of_payment(
        &self,
        _ctx: &GatewayContext,
        _charge_id: &StripeChargeId,
        _payment_intent_id: Option<StripePaymentIntentId>,
    ) -> Result<Option<StripeInvoiceId>, GatewayError> {
        Ok(None)
    }

    async fn customer_referral(&self, _ctx: &GatewayContext, _customer_id: &StripeCustomerId) -> Result<Option<String>, GatewayError> {
        Ok(None)
    }

    async fn delete_coupon(&self, _ctx: &GatewayContext, _coupon_id: &StripeCouponId, idempotency_key: &str) -> Result<(), GatewayError> {
        check_key(idempotency_key)
    }
}

#[cfg(test)]
mod tests {
    use rekomi_domain::coupons::{CouponDuration, DiscountSpec};
    use rekomi_domain::kernel::money::{Currency, Money};
    use rekomi_domain::kernel::stripe_ids::StripeAccountId;

    use super::*;

    fn coupon(key: &str) -> CreateCoupon {
        CreateCoupon {
            idempotency_key: key.to_owned(),
            name: "20% off".to_owned(),
            discount: DiscountSpec::PercentOff(20),
            duration: CouponDuration::Once,
            redeem_by: None,
            metadata: Vec::new(),
        }
    }

    fn promotion_code(key: &str) -> Result<CreatePromotionCode, Box<dyn std::error::Error>> {
        Ok(CreatePromotionCode {
            idempotency_key: key.to_owned(),
            coupon_id: StripeCouponId::parse("coupon_local_x")?,
            code: "ALICE20".to_owned(),
            max_redemptions: Some(5),
            expires_at: None,
            first_time_transaction: true,
            minimum_amount: Some(Money::new(1000, Currency::parse("usd")?)),
            customer: None,
            metadata: Vec::new(),
        })
    }

    fn assert_local_id(id: &str, prefix: &str) {
        let digits = id.strip_prefix(prefix).unwrap_or_else(|| panic!("{id} lacks {prefix}"));
        assert_eq!(digits.len(), ID_DIGITS, "{id}");
        assert!(digits.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    }

    #[tokio::test]
    async fn offline_ids_are_deterministic_per_idempotency_key() -> Result<(), Box<dyn std::error::Error>> {
        let gateway = OfflineGateway::new();
        let ctx = GatewayContext::default();

        let first = gateway.create_coupon(&ctx, &coupon("coupon:org1:aff1")).await?;
        let again = gateway.create_coupon(&ctx, &coupon("coupon:org1:aff1")).await?;
        let other = gateway.create_coupon(&ctx, &coupon("coupon:org1:aff2")).await?;
        assert_eq!(first, again);
        assert_ne!(first, other);
        assert_local_id(first.as_str(), "coupon_local_");
        assert_local_id(other.as_str(), "coupon_local_");

        let promo = gateway.create_promotion_code(&ctx, &promotion_code("promo:1")?).await?;
        let promo_again = gateway.create_promotion_code(&ctx, &promotion_code("promo:1")?).await?;
        assert_eq!(promo, promo_again);
        assert_local_id(promo.as_str(), "promo_local_");
        Ok(())
    }

    #[test]
    fn offline_ids_do_not_change_between_releases() {
        // Local databases keep these ids; a change in the derivation would orphan them.
        // Expected value: the 24 least significant base-62 digits of sha256("abc"), checked
        // independently (Python: int.from_bytes(sha256(b"abc").digest(), "big")).
        assert_eq!(local_id("coupon_local_", "abc"), "coupon_local_vab5RpW6i5Hzn7YMlm3bwca0");
        assert_eq!(local_id("promo_local_", "abc"), "promo_local_vab5RpW6i5Hzn7YMlm3bwca0");
    }

    #[test]
    fn offline_ids_parse_as_the_stripe_ids_of_their_kind() {
        // Local databases hold these ids, and every row read back goes through `parse`.
        let coupon: Result<StripeCouponId, _> = typed_local_id("coupon_local_", "abc");
        let promo: Result<StripePromotionCodeId, _> = typed_local_id("promo_local_", "abc");
        assert_eq!(coupon.ok().map(|id| id.to_string()).as_deref(), Some("coupon_local_vab5RpW6i5Hzn7YMlm3bwca0"));
        assert_eq!(promo.ok().map(|id| id.to_string()).as_deref(), Some("promo_local_vab5RpW6i5Hzn7YMlm3bwca0"));
    }

    #[tokio::test]
    async fn offline_deactivation_and_deletion_succeed() -> Result<(), Box<dyn std::error::Error>> {
        let gateway = OfflineGateway::new();
        let ctx = GatewayContext { stripe_account: Some(StripeAccountId::parse("acct_1")?) };
        gateway.deactivate_promotion_code(&ctx, &StripePromotionCodeId::parse("promo_local_x")?, "deactivate:1").await?;
        gateway.delete_coupon(&ctx, &StripeCouponId::parse("coupon_local_x")?, "delete:1").await?;
        Ok(())
    }

    #[tokio::test]
    async fn offline_reads_find_nothing_because_no_stripe_exists() -> Result<(), Box<dyn std::error::Error>> {
        let gateway = OfflineGateway::new();
        let ctx = GatewayContext { stripe_account: Some(StripeAccountId::parse("acct_1")?) };
        let charge = StripeChargeId::parse("ch_1")?;
        assert!(gateway.invoice_promotion_codes(&ctx, &StripeInvoiceId::parse("in_1")?).await?.is_empty());
        assert!(gateway.subscription_promotion_codes(&ctx, &StripeSubscriptionId::parse("sub_1")?).await?.is_empty());
        assert_eq!(gateway.invoice_of_payment(&ctx, &charge, Some(StripePaymentIntentId::parse("pi_1")?)).await?, None);
        assert_eq!(gateway.invoice_of_payment(&ctx, &charge, None).await?, None);
        assert_eq!(gateway.customer_referral(&ctx, &StripeCustomerId::parse("cus_1")?).await?, None);
        Ok(())
    }

    #[tokio::test]
    async fn offline_gateway_rejects_keys_stripe_would_reject() {
        let gateway = OfflineGateway::new();
        let ctx = GatewayContext::default();
        assert!(gateway.create_coupon(&ctx, &coupon("")).await.is_err());
        assert!(gateway.create_coupon(&ctx, &coupon(&"k".repeat(256))).await.is_err());
        assert!(gateway.create_coupon(&ctx, &coupon(&"k".repeat(255))).await.is_ok());
    }
}
