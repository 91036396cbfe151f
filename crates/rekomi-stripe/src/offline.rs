//! Local mode, when the server runs without a Stripe secret: [`OfflineGateway`] (the
//! [`PaymentGateway`]) and [`OfflinePayoutRail`] (the [`PayoutRail`]). Nothing leaves the
//! process.
//!
//! Ids are derived from the idempotency key rather than drawn at random, so a retried call gets
//! the id the first call got, as it would from Stripe. That keeps the gateway stateless: no map
//! of keys to ids to lose on restart. The payout rail keeps its transfers in memory only
//! because a transfer must be found again by its group, which no id derivation can give.

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use rekomi_domain::kernel::stripe_ids::{
    StripeAccountId, StripeChargeId, StripeCouponId, StripeCustomerId, StripeInvoiceId, StripePaymentIntentId, StripePromotionCodeId,
    StripeSubscriptionId,
};
use rekomi_domain::payouts::rail::{
    AccountLink, ConnectedAccount, CreateAccountLink, CreateExpressAccount, CreateTransfer, PayoutRail, Transfer,
};
use rekomi_domain::ports::gateway::{CreateCoupon, CreatePromotionCode, GatewayContext, GatewayError, PaymentGateway, Settlement};
use rekomi_domain::stripe_inbox::facts::PromotionCodeRef;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

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

    // Local mode converts nothing: entries in a foreign currency take the ECB rate.
    async fn invoice_settlement(&self, _ctx: &GatewayContext, _invoice_id: &StripeInvoiceId) -> Result<Option<Settlement>, GatewayError> {
        Ok(None)
    }

    async fn delete_coupon(&self, _ctx: &GatewayContext, _coupon_id: &StripeCouponId, idempotency_key: &str) -> Result<(), GatewayError> {
        check_key(idempotency_key)
    }
}

/// The prefix of the Express accounts [`OfflinePayoutRail`] makes.
const LOCAL_ACCOUNT_PREFIX: &str = "acct_local_";

/// How long a local onboarding link is said to last: as long as Stripe's own.
const LOCAL_LINK_LIFETIME: time::Duration = time::Duration::minutes(5);

/// The [`PayoutRail`] for local mode.
///
/// Express accounts are `acct_local_…`, derived from the idempotency key, and always able to
/// receive transfers: there is nobody to onboard them, and a local payout should go through.
/// So every `acct_local_…` account exists, across restarts too, and other accounts do not. An
/// onboarding link leads straight to the `return_url` (Rekomi's own page), as a finished
/// onboarding would. Transfers are `tr_local_…`, derived from the idempotency key; a repeated
/// key replays the first answer, and the transfer is found again by its group until the
/// process ends (no money moved, so a group forgotten on restart only makes the reconciler
/// see no transfer).
#[derive(Debug, Default)]
pub struct OfflinePayoutRail {
    transfers: Mutex<Vec<LocalTransfer>>,
}

#[derive(Debug)]
struct LocalTransfer {
    idempotency_key: String,
    transfer_group: String,
    transfer: Transfer,
}

impl OfflinePayoutRail {
    /// An offline rail that has made no transfer yet.
    pub fn new() -> Self {
        Self::default()
    }
}

fn local_account(id: StripeAccountId) -> ConnectedAccount {
    ConnectedAccount { id, payouts_enabled: true, details_submitted: true }
}

fn is_local_account(id: &StripeAccountId) -> bool {
    id.as_str().starts_with(LOCAL_ACCOUNT_PREFIX)
}

/// What Stripe answers for a request it refuses, in the shape [`GatewayError::Rejected`] has.
fn refused(code: &str, param: &str, message: String) -> GatewayError {
    GatewayError::Rejected { code: Some(code.to_owned()), param: Some(param.to_owned()), message }
}

#[async_trait]
impl PayoutRail for OfflinePayoutRail {
    async fn create_express_account(&self, request: &CreateExpressAccount) -> Result<ConnectedAccount, GatewayError> {
        check_key(&request.idempotency_key)?;
        typed_local_id(LOCAL_ACCOUNT_PREFIX, &request.idempotency_key).map(local_account)
    }

    async fn create_account_link(&self, request: &CreateAccountLink) -> Result<AccountLink, GatewayError> {
        if !is_local_account(&request.account) {
            return Err(GatewayError::NotFound);
        }
        Ok(AccountLink { url: request.return_url.clone(), expires_at: OffsetDateTime::now_utc() + LOCAL_LINK_LIFETIME })
    }

    async fn retrieve_account(&self, account: &StripeAccountId) -> Result<ConnectedAccount, GatewayError> {
        if !is_local_account(account) {
            return Err(GatewayError::NotFound);
        }
        Ok(local_account(account.clone()))
    }

    async fn create_transfer(&self, request: &CreateTransfer) -> Result<Transfer, GatewayError> {
        check_key(&request.idempotency_key)?;
        let mut transfers = self.transfers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(made) = transfers.iter().find(|made| made.idempotency_key == request.idempotency_key) {
            return Ok(made.transfer.clone());
        }
        // Refused as Stripe would: final, and nothing is recorded.
        if request.amount.minor() <= 0 {
            return Err(refused("parameter_invalid_integer", "amount", "This value must be greater than or equal to 1.".to_owned()));
        }
        if !is_local_account(&request.destination) {
            let message = format!("No such destination: '{}' (local mode pays only its own acct_local_ accounts)", request.destination);
            return Err(refused("account_invalid", "destination", message));
        }
        let transfer = Transfer { id: typed_local_id("tr_local_", &request.idempotency_key)?, reversed: false };
        transfers.push(LocalTransfer {
            idempotency_key: request.idempotency_key.clone(),
            transfer_group: request.transfer_group.clone(),
            transfer: transfer.clone(),
        });
        Ok(transfer)
    }

    async fn transfer_of_group(&self, transfer_group: &str) -> Result<Option<Transfer>, GatewayError> {
        let transfers = self.transfers.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(transfers.iter().find(|made| made.transfer_group == transfer_group).map(|made| made.transfer.clone()))
    }
}

#[cfg(test)]
mod tests {
    use rekomi_domain::coupons::{CouponDuration, DiscountSpec};
    use rekomi_domain::kernel::money::{Currency, Money};

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

    // ---- OfflinePayoutRail ----------------------------------------------------------------

    fn express_account(key: &str) -> CreateExpressAccount {
        CreateExpressAccount {
            idempotency_key: key.to_owned(),
            email: "sarah@creators.example".to_owned(),
            metadata: vec![("rekomi_affiliate_id".to_owned(), "aff_1".to_owned())],
        }
    }

    fn transfer(key: &str, destination: &StripeAccountId, group: &str) -> Result<CreateTransfer, Box<dyn std::error::Error>> {
        Ok(CreateTransfer {
            idempotency_key: key.to_owned(),
            destination: destination.clone(),
            amount: Money::new(4_000, Currency::parse("usd")?),
            transfer_group: group.to_owned(),
            metadata: vec![("rekomi_payout_id".to_owned(), "pay_1".to_owned())],
        })
    }

    #[tokio::test]
    async fn offline_accounts_are_derived_from_the_key_and_can_be_paid_at_once() -> Result<(), Box<dyn std::error::Error>> {
        let rail = OfflinePayoutRail::new();
        let account = rail.create_express_account(&express_account("rekomi-affiliate-1-express")).await?;
        let again = rail.create_express_account(&express_account("rekomi-affiliate-1-express")).await?;
        let other = rail.create_express_account(&express_account("rekomi-affiliate-2-express")).await?;

        assert_eq!(account, again);
        assert_ne!(account.id, other.id);
        assert_local_id(account.id.as_str(), "acct_local_");
        assert!(account.payouts_enabled && account.details_submitted, "{account:?}");
        // A fresh rail (a restarted server) still knows the account.
        assert_eq!(OfflinePayoutRail::new().retrieve_account(&account.id).await?, account);
        Ok(())
    }

    #[tokio::test]
    async fn offline_onboarding_links_lead_back_to_rekomi_and_unknown_accounts_do_not_exist() -> Result<(), Box<dyn std::error::Error>> {
        let rail = OfflinePayoutRail::new();
        let account = rail.create_express_account(&express_account("k")).await?;
        let request = CreateAccountLink {
            account: account.id.clone(),
            refresh_url: "http://localhost:8080/affiliate/payout-account/refresh?affiliateId=aff_1".to_owned(),
            return_url: "http://localhost:8080/affiliate/payout-account/return?affiliateId=aff_1".to_owned(),
        };

        let link = rail.create_account_link(&request).await?;

        assert_eq!(link.url, request.return_url);
        assert!(link.expires_at > OffsetDateTime::now_utc(), "{link:?}");
        let stripe_account = StripeAccountId::parse("acct_1RealStripe")?;
        assert!(matches!(rail.retrieve_account(&stripe_account).await, Err(GatewayError::NotFound)));
        let link = rail.create_account_link(&CreateAccountLink { account: stripe_account, ..request }).await;
        assert!(matches!(link, Err(GatewayError::NotFound)), "{link:?}");
        Ok(())
    }

    #[tokio::test]
    async fn offline_transfers_replay_per_idempotency_key_and_are_found_by_group() -> Result<(), Box<dyn std::error::Error>> {
        let rail = OfflinePayoutRail::new();
        let destination = rail.create_express_account(&express_account("k")).await?.id;
        assert_eq!(rail.transfer_of_group("rekomi_payout_1").await?, None);

        let first = rail.create_transfer(&transfer("payout-1-attempt-1", &destination, "rekomi_payout_1")?).await?;
        let replay = rail.create_transfer(&transfer("payout-1-attempt-1", &destination, "rekomi_payout_1")?).await?;
        let other = rail.create_transfer(&transfer("payout-2-attempt-1", &destination, "rekomi_payout_2")?).await?;

        assert_eq!(first, replay);
        assert!(!first.reversed);
        assert_ne!(first.id, other.id);
        assert_local_id(first.id.as_str(), "tr_local_");
        assert_eq!(rail.transfer_of_group("rekomi_payout_1").await?, Some(first));
        assert_eq!(rail.transfer_of_group("rekomi_payout_2").await?, Some(other));
        assert_eq!(rail.transfer_of_group("rekomi_payout_3").await?, None);
        Ok(())
    }

    #[tokio::test]
    async fn offline_transfers_are_refused_as_stripe_would_and_leave_nothing() -> Result<(), Box<dyn std::error::Error>> {
        let rail = OfflinePayoutRail::new();
        let local = rail.create_express_account(&express_account("k")).await?.id;
        let stripe_account = StripeAccountId::parse("acct_1RealStripe")?;

        let foreign = rail.create_transfer(&transfer("t1", &stripe_account, "rekomi_payout_1")?).await;
        let nothing = rail
            .create_transfer(&CreateTransfer { amount: Money::new(0, Currency::USD), ..transfer("t2", &local, "rekomi_payout_1")? })
            .await;
        let bad_key = rail.create_transfer(&transfer("", &local, "rekomi_payout_1")?).await;

        assert!(matches!(&foreign, Err(GatewayError::Rejected { code: Some(code), .. }) if code == "account_invalid"), "{foreign:?}");
        assert!(matches!(&nothing, Err(GatewayError::Rejected { param: Some(param), .. }) if param == "amount"), "{nothing:?}");
        assert!(matches!(bad_key, Err(GatewayError::Unknown(_))), "{bad_key:?}");
        assert_eq!(rail.transfer_of_group("rekomi_payout_1").await?, None);
        // A refused key was not used up: the corrected request goes through.
        assert!(rail.create_transfer(&transfer("t1", &local, "rekomi_payout_1")?).await.is_ok());
        Ok(())
    }

    #[test]
    fn offline_account_and_transfer_ids_parse_as_their_kinds() {
        let account: Result<StripeAccountId, _> = typed_local_id(LOCAL_ACCOUNT_PREFIX, "abc");
        let transfer: Result<rekomi_domain::kernel::stripe_ids::StripeTransferId, _> = typed_local_id("tr_local_", "abc");
        assert_eq!(account.ok().map(|id| id.to_string()).as_deref(), Some("acct_local_vab5RpW6i5Hzn7YMlm3bwca0"));
        assert_eq!(transfer.ok().map(|id| id.to_string()).as_deref(), Some("tr_local_vab5RpW6i5Hzn7YMlm3bwca0"));
    }
}
