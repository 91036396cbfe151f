//! Interactions with the narrow gateway port, pinned with mockall: exactly which Stripe calls a
//! use case makes, with which arguments, and which it must not make.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use mockall::predicate::always;
use rekomi_domain::affiliates::{AffiliateStatus, Email, NewAffiliate};
use rekomi_domain::coupons::{AffiliateCouponInput, CampaignCouponInput, CouponDuration, DiscountSpec, DiscountType, DurationKind};
use rekomi_domain::kernel::actor::BrandActor;
use rekomi_domain::kernel::ids::ApiKeyId;
use rekomi_domain::kernel::money::{Currency, Money};
use rekomi_domain::kernel::plan::PlanTier;
use rekomi_domain::kernel::stripe_ids::StripePromotionCodeId;
use rekomi_domain::orgs::{Handle, NewOrganization};
use rekomi_domain::ports::gateway::MockPaymentGateway;
use rekomi_domain::services::{BrandContext, Services};
use rekomi_fakes::{FixedClock, InMemoryStore, SeededEntropy};
use support::{block_on, new_program, stripe_id};
use time::macros::datetime;

fn services(gateway: MockPaymentGateway) -> Services {
    Services {
        store: Arc::new(InMemoryStore::new()),
        gateway: Arc::new(gateway),
        payout_rail: Arc::new(rekomi_fakes::FakePayoutRail::new()),
        clock: Arc::new(FixedClock::new(datetime!(2026-06-01 12:00 UTC))),
        entropy: Arc::new(SeededEntropy::new(1)),
        events: Arc::new(support::NoEvents),
        webhooks: Arc::new(rekomi_fakes::FakeWebhookSender::new()),
    }
}

fn org(services: &Services, account: Option<&str>) -> BrandContext {
    let (mut org, _) = block_on(services.create_organization(NewOrganization {
        name: "Acme".into(),
        handle: Handle::parse("acme").unwrap(),
        plan: PlanTier::Growth,
    }))
    .unwrap();
    org.stripe_account_id = account.map(stripe_id);
    BrandContext {
        actor: BrandActor::ApiKey { org: org.id, key: ApiKeyId::from_uuid(uuid::Uuid::nil()) },
        org,
        now: datetime!(2026-06-01 12:00 UTC),
    }
}

fn program(services: &Services, ctx: &BrandContext) -> rekomi_domain::kernel::ids::ProgramId {
    block_on(services.create_program(ctx, new_program("Default"))).unwrap().id
}

fn amount_off_input() -> CampaignCouponInput {
    CampaignCouponInput {
        name: "A very long campaign coupon name that Stripe would refuse".into(),
        discount_type: DiscountType::AmountOff,
        discount_value: 500,
        discount_currency: Some("eur".into()),
        duration: DurationKind::Repeating,
        duration_in_months: Some(3),
        max_redemptions_per_code: Some(10),
        expires_at: Some(datetime!(2026-12-31 23:59:59 UTC)),
        allow_affiliate_self_mint: Some(false),
        overrides_click_attribution: Some(true),
    }
}

#[test]
fn creating_a_campaign_coupon_sends_one_stripe_coupon_on_the_connected_account() {
    let mut gateway = MockPaymentGateway::new();
    gateway
        .expect_create_coupon()
        .withf(|ctx, req| {
            ctx.stripe_account.as_ref().map(|a| a.as_str()) == Some("acct_123")
                && req.name.chars().count() == 40
                && req.discount == DiscountSpec::AmountOff(Money::new(500, Currency::parse("EUR").unwrap()))
                && req.duration == CouponDuration::Repeating(3)
                && req.redeem_by == Some(datetime!(2026-12-31 23:59:59 UTC))
                && req.idempotency_key.starts_with("rekomi-campaign-coupon-")
                && req.metadata.iter().any(|(k, _)| k == "rekomi_org_id")
        })
        .times(1)
        .returning(|_, _| Ok(stripe_id("coupon_123")));
    let services = services(gateway);
    let ctx = org(&services, Some("acct_123"));
    let program = program(&services, &ctx);
    let coupon = block_on(services.create_campaign_coupon(&ctx, program, amount_off_input())).unwrap();
    assert_eq!(coupon.stripe_coupon_id.as_ref().map(|id| id.as_str()), Some("coupon_123"));
}

#[test]
fn a_code_carries_its_restrictions_and_rekomi_ids_to_stripe_and_revoking_twice_calls_once() {
    let mut gateway = MockPaymentGateway::new();
    gateway.expect_create_coupon().times(1).returning(|_, _| Ok(stripe_id("coupon_1")));
    gateway
        .expect_create_promotion_code()
        .withf(|_, req| {
            req.coupon_id.as_str() == "coupon_1"
                && req.code == "SARAH20"
                && req.max_redemptions == Some(5)
                && req.first_time_transaction
                && req.minimum_amount == Some(Money::new(5000, Currency::USD))
                && req.customer.as_ref().map(|c| c.as_str()) == Some("cus_42")
                && req.metadata.iter().any(|(k, _)| k == "rekomi_affiliate_id")
        })
        .times(1)
        .returning(|_, _| Ok(stripe_id("promo_1")));
    gateway
        .expect_deactivate_promotion_code()
        .with(always(), mockall::predicate::eq(stripe_id::<StripePromotionCodeId>("promo_1")), always())
        .times(1)
        .returning(|_, _, _| Ok(()));
    gateway.expect_delete_coupon().never();
    let services = services(gateway);
    let ctx = org(&services, None);
    let program = program(&services, &ctx);
    let affiliate = block_on(services.create_affiliate(
        &ctx,
        NewAffiliate {
            program_id: program,
            email: Email::parse("e", "sarah@creator.com").unwrap(),
            full_name: None,
            status: Some(AffiliateStatus::Approved),
            custom_commission: None,
            custom_alias: None,
            recruited_by: None,
        },
    ))
    .unwrap()
    .affiliate
    .id;
    let coupon = block_on(services.create_campaign_coupon(&ctx, program, amount_off_input())).unwrap();
    let input = AffiliateCouponInput {
        code: Some("sarah20".into()),
        max_redemptions: Some(5),
        first_time_order: Some(true),
        minimum_amount: Some(5000),
        minimum_amount_currency: Some("USD".into()),
        customer_id: Some("cus_42".into()),
        ..Default::default()
    };
    let view = block_on(services.create_affiliate_coupon(&ctx, affiliate, coupon.id, input)).unwrap();
    block_on(services.revoke_affiliate_coupon(&ctx, affiliate, view.coupon.id)).unwrap();
    block_on(services.revoke_affiliate_coupon(&ctx, affiliate, view.coupon.id)).unwrap();
}

#[test]
fn an_invalid_request_never_reaches_stripe() {
    let mut gateway = MockPaymentGateway::new();
    gateway.expect_create_coupon().never();
    let services = services(gateway);
    let ctx = org(&services, None);
    let program = program(&services, &ctx);
    let mut input = amount_off_input();
    input.discount_currency = None;
    assert!(block_on(services.create_campaign_coupon(&ctx, program, input)).is_err());
}
