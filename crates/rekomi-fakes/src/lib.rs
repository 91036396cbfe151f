//! Test doubles for Rekomi's ports: adapters on the outer ring of the hexagon that live in
//! memory, so use-case and HTTP tests run without PostgreSQL or Stripe.
//!
//! - [`InMemoryStore`]: the storage port ([`UnitOfWork`](rekomi_domain::ports::store::UnitOfWork)).
//!   Each transaction works on a copy of the state that replaces the committed state only on
//!   commit, so rollback is as real as in PostgreSQL; the named unique constraints are enforced
//!   and reported under the same names. The storage contract suite (`tests/`, package
//!   `rekomi-e2e`) runs against it and against `PgStore`, so the two agree.
//! - [`FakeGateway`]: the payment gateway port; records every call, returns deterministic
//!   Stripe-like ids, replays idempotency keys like Stripe, and fails on demand.
//! - [`FakePayoutRail`]: the payout rail port; keeps accounts and transfers like Stripe
//!   Connect, replays idempotency keys, and loses a transfer's answer on demand.
//! - [`FakeWebhookSender`]: the outbound webhook transport; records requests, answers from a
//!   script (then 200), and refuses targets on demand.
//! - [`StoreClickSink`]: the click sink; writes each click into an `InMemoryStore` at once.
//! - [`ScriptedDecoder`]: the Stripe event decoder; answers the fact a test scripted per event id.
//! - [`FixedClock`] and [`SeededEntropy`]: time and randomness that tests pin.

mod click_sink;
mod clock;
mod decoder;
mod entropy;
mod gateway;
mod payout_rail;
mod sender;
mod store;

pub use click_sink::StoreClickSink;
pub use clock::FixedClock;
pub use decoder::ScriptedDecoder;
pub use entropy::SeededEntropy;
pub use gateway::{FailureRule, FakeCoupon, FakeGateway, FakePromotionCode, GatewayCall};
pub use payout_rail::{FakePayoutRail, FakeTransfer, TransferFailure};
pub use sender::FakeWebhookSender;
pub use store::InMemoryStore;

/// Drives a future that never waits on I/O (every future of these fakes) to completion on the
/// current thread, for synchronous unit tests.
#[cfg(test)]
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}
