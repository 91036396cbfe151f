//! Shared fixtures of the domain's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use rekomi_domain::coupons::{CampaignCouponInput, DiscountType, DurationKind};
use rekomi_domain::programs::{AttributionModel, Commission, CommissionModel, CommissionType, Hundredths, NetworkVisibility, NewProgram};
use rekomi_domain::stripe_inbox::facts::{DecodeError, EventDecoder, EventEnvelope, StripeFact};

/// Use cases over `store` and `clock`, with the fakes' offline Stripe gateway and webhook
/// sender, no Stripe events, and entropy seeded with `seed`.
pub fn offline_services(
    store: &rekomi_fakes::InMemoryStore,
    clock: &rekomi_fakes::FixedClock,
    seed: u64,
) -> rekomi_domain::services::Services {
    use std::sync::Arc;
    rekomi_domain::services::Services {
        store: Arc::new(store.clone()),
        gateway: Arc::new(rekomi_fakes::FakeGateway::new()),
        payout_rail: Arc::new(rekomi_fakes::FakePayoutRail::new()),
        clock: Arc::new(clock.clone()),
        entropy: Arc::new(rekomi_fakes::SeededEntropy::new(seed)),
        events: Arc::new(NoEvents),
        webhooks: Arc::new(rekomi_fakes::FakeWebhookSender::new()),
    }
}

/// Drives a future that never waits on I/O (every port of the fakes) to completion.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// A 20 % program named `name`.
pub fn new_program(name: &str) -> NewProgram {
    NewProgram {
        name: name.to_owned(),
        slug: None,
        description: None,
        terms_url: None,
        default_commission: Commission::new(CommissionType::Percentage, Hundredths::new(2000), "v").unwrap(),
        default_commission_model: CommissionModel::Cps,
        cookie_window_days: 30,
        recurring_months: None,
        recurring_delay_invoices: 0,
        attribution_model: AttributionModel::LastTouch,
        auto_approve: false,
        network_visibility: NetworkVisibility::Private,
        is_publicly_discoverable: true,
        landing_url: None,
    }
}

/// The spec's "Summer 20% off" coupon, with a per-code cap of 100.
pub fn summer_coupon(self_mint: bool) -> CampaignCouponInput {
    CampaignCouponInput {
        name: "Summer 20% off".into(),
        discount_type: DiscountType::PercentOff,
        discount_value: 20,
        discount_currency: None,
        duration: DurationKind::Once,
        duration_in_months: None,
        max_redemptions_per_code: Some(100),
        expires_at: None,
        allow_affiliate_self_mint: Some(self_mint),
        overrides_click_attribution: Some(true),
    }
}

/// A Stripe id of the type the call site needs (`stripe_id::<StripeInvoiceId>("in_1")`); the
/// test's own text, so it panics on a typo.
pub fn stripe_id<T: std::str::FromStr>(raw: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    raw.parse().unwrap_or_else(|e| panic!("{raw:?} is no such Stripe id: {e:?}"))
}

/// A decoder for tests that never ingest Stripe events.
pub struct NoEvents;

impl EventDecoder for NoEvents {
    fn envelope(&self, _: &[u8]) -> Result<EventEnvelope, DecodeError> {
        Err(DecodeError("these tests send no Stripe events".into()))
    }
    fn decode(&self, _: &[u8]) -> Result<StripeFact, DecodeError> {
        Err(DecodeError("these tests send no Stripe events".into()))
    }
}
