//! Applying one decoded Stripe fact for its organization, inside its batch's transaction (see
//! `worker.rs`): the dispatch to the capability that records it (a sale, lead or refund in
//! `conversions`, a code or coupon change in `coupons`), and the context they share — the
//! batch's cached lookups and the effects deferred to the end of the batch.
//!
//! Facts are idempotent: each sale, checkout and lead source is claimed once per organization,
//! and refunds are applied as the difference from what the ledger already holds.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::affiliates::Affiliate;
use crate::audit::{AuditAction, AuditEntry};
use crate::conversions::record::{record_sale, record_subscription, SaleInput};
use crate::conversions::refund::record_refund;
use crate::conversions::SubAffiliateConfig;
use crate::coupons::sync::{sync_deleted_coupon, sync_promotion_code};
use crate::coupons::{AffiliateCoupon, CampaignCoupon};
use crate::kernel::actor::AuditActor;
use crate::kernel::entropy::Entropy;
use crate::kernel::error::DomainError;
use crate::kernel::ids::{AffiliateCouponId, AffiliateId, AuditId, CampaignCouponId, OrgId, ProgramId};
use crate::kernel::stripe_ids::{StripeAccountId, StripePaymentRef, StripePromotionCodeId};
use crate::orgs::Organization;
use crate::outbound::outbox::{self};
use crate::outbound::{Delivery, EventType, OutboxEvent, WebhookEndpoint};
use crate::ports::{StoreError, Tx};
use crate::programs::Program;
use crate::stripe_inbox::facts::StripeFact;

/// What applying one event leaves for the end of its batch's transaction (see
/// `stripe_worker`): counter changes on rows many events share, refunds to wake, and the
/// append-only rows (audit entries, outbox events and their deliveries) that nothing in the
/// batch reads back, written as one multi-row insert each.
#[derive(Default)]
pub(crate) struct Effects {
    /// The organization the event was applied for.
    pub(crate) org: Option<OrgId>,
    /// Redemption count changes, by code.
    pub(crate) redemptions: BTreeMap<(OrgId, AffiliateCouponId), i64>,
    /// Refunds to wake: the Stripe account, the organization of the sale, its payments.
    pub(crate) wakes: Vec<(Option<StripeAccountId>, OrgId, Vec<StripePaymentRef>)>,
    /// Audit entries.
    pub(crate) audit: Vec<AuditEntry>,
    /// Outbox events.
    pub(crate) outbox: Vec<OutboxEvent>,
    /// Their deliveries.
    pub(crate) deliveries: Vec<Delivery>,
}

/// Rows a batch reads again and again (the code every sale of a popular link redeems, its
/// coupon, affiliate and program, the organization's endpoints), read once per batch. Only the
/// sale path reads through it; anything that changes such rows forgets it all, and so does an
/// event whose savepoint is undone.
#[derive(Default)]
pub(crate) struct Lookups {
    codes: HashMap<(OrgId, StripePromotionCodeId), Option<AffiliateCoupon>>,
    campaign_coupons: HashMap<(OrgId, CampaignCouponId), Option<CampaignCoupon>>,
    affiliates: HashMap<(OrgId, AffiliateId), Option<Affiliate>>,
    programs: HashMap<(OrgId, ProgramId), Option<Program>>,
    sub_affiliate_configs: HashMap<(OrgId, ProgramId), SubAffiliateConfig>,
    endpoints: HashMap<OrgId, Vec<WebhookEndpoint>>,
}

/// Looks `key` up in `map`, else reads it with `read` and remembers it.
fn cached<K: std::hash::Hash + Eq, V: Clone>(
    cell: &RefCell<Lookups>,
    map: fn(&mut Lookups) -> &mut HashMap<K, V>,
    key: K,
    read: impl FnOnce() -> Result<V, StoreError>,
) -> Result<V, StoreError> {
    if let Some(found) = map(&mut cell.borrow_mut()).get(&key) {
        return Ok(found.clone());
    }
    let value = read()?;
    map(&mut cell.borrow_mut()).insert(key, value.clone());
    Ok(value)
}

/// Everything `apply` needs besides the transaction.
pub(crate) struct ApplyCtx<'b> {
    pub(crate) org: Organization,
    pub(crate) now: OffsetDateTime,
    pub(crate) entropy: Arc<dyn Entropy>,
    pub(crate) effects: RefCell<Effects>,
    pub(crate) lookups: &'b RefCell<Lookups>,
}

impl<'b> ApplyCtx<'b> {
    pub(crate) fn new(org: Organization, now: OffsetDateTime, entropy: Arc<dyn Entropy>, lookups: &'b RefCell<Lookups>) -> Self {
        let effects = RefCell::new(Effects { org: Some(org.id), ..Effects::default() });
        Self { org, now, entropy, effects, lookups }
    }

    pub(crate) fn into_effects(self) -> Effects {
        self.effects.into_inner()
    }

    /// Changes a code's redemption count when the batch commits.
    pub(crate) fn redeem(&self, code: AffiliateCouponId, delta: i64) {
        *self.effects.borrow_mut().redemptions.entry((self.org.id, code)).or_default() += delta;
    }

    /// An audit entry by the system, written when the batch commits.
    pub(crate) fn record(&self, action: AuditAction, entity_type: &'static str, entity_id: String, after: Option<Value>) {
        self.effects.borrow_mut().audit.push(AuditEntry {
            id: AuditId::from_uuid(self.uuid()),
            org_id: self.org.id,
            actor: AuditActor::System,
            action,
            entity_type,
            entity_id,
            before: None,
            after,
            created_at: self.now,
        });
    }

    /// An outbound event, fanned out to the organization's endpoints, written when the batch
    /// commits.
    pub(crate) fn emit(&self, tx: &mut dyn Tx, event_type: EventType, data: Value) -> Result<(), StoreError> {
        let org = self.org.id;
        let endpoints = cached(self.lookups, |l| &mut l.endpoints, org, || tx.endpoints(org))?;
        let (event, deliveries) = outbox::fan_out(org, event_type, data, &endpoints, self.now, self.entropy.as_ref());
        let mut effects = self.effects.borrow_mut();
        effects.outbox.push(event);
        effects.deliveries.extend(deliveries);
        Ok(())
    }

    pub(crate) fn code_by_stripe_id(
        &self,
        tx: &mut dyn Tx,
        stripe_id: &StripePromotionCodeId,
    ) -> Result<Option<AffiliateCoupon>, StoreError> {
        let org = self.org.id;
        cached(self.lookups, |l| &mut l.codes, (org, stripe_id.clone()), || tx.affiliate_coupon_by_stripe_id(org, stripe_id))
    }

    pub(crate) fn campaign_coupon(&self, tx: &mut dyn Tx, id: CampaignCouponId) -> Result<Option<CampaignCoupon>, StoreError> {
        let org = self.org.id;
        cached(self.lookups, |l| &mut l.campaign_coupons, (org, id), || tx.campaign_coupon(org, id))
    }

    pub(crate) fn affiliate(&self, tx: &mut dyn Tx, id: AffiliateId) -> Result<Option<Affiliate>, StoreError> {
        let org = self.org.id;
        cached(self.lookups, |l| &mut l.affiliates, (org, id), || tx.affiliate(org, id))
    }

    pub(crate) fn program(&self, tx: &mut dyn Tx, id: ProgramId) -> Result<Option<Program>, StoreError> {
        let org = self.org.id;
        cached(self.lookups, |l| &mut l.programs, (org, id), || tx.program(org, id))
    }

    pub(crate) fn sub_affiliate_config(&self, tx: &mut dyn Tx, program: ProgramId) -> Result<SubAffiliateConfig, StoreError> {
        let org = self.org.id;
        cached(self.lookups, |l| &mut l.sub_affiliate_configs, (org, program), || tx.sub_affiliate_config(org, program))
    }

    /// Forgets every row read through [`Lookups`] (something may have changed them).
    pub(crate) fn forget_lookups(&self) {
        *self.lookups.borrow_mut() = Lookups::default();
    }

    pub(crate) fn uuid(&self) -> uuid::Uuid {
        self.entropy.uuid_v7(self.now)
    }

    pub(crate) fn approve_after(&self) -> OffsetDateTime {
        self.now + Duration::days(i64::from(self.org.payout_grace_days))
    }

    /// When a credit for a sale at `occurred_at` becomes payable: the grace period counts from
    /// the sale, with the organization's grace days as they are now (entries keep theirs).
    pub(crate) fn payable_after(&self, occurred_at: OffsetDateTime) -> OffsetDateTime {
        occurred_at + Duration::days(i64::from(self.org.payout_grace_days))
    }
}

/// What applying a fact did.
pub(crate) enum Applied {
    Done(Option<String>),
    Skipped(String),
    /// A refund whose sale is not recorded yet.
    Wait {
        payment: StripePaymentRef,
        why: String,
    },
}

pub(crate) fn done(note: &str) -> Result<Applied, DomainError> {
    Ok(Applied::Done(Some(note.to_owned())))
}

pub(crate) fn ts(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub(crate) fn apply(tx: &mut dyn Tx, ctx: &ApplyCtx<'_>, fact: &StripeFact) -> Result<Applied, DomainError> {
    match fact {
        StripeFact::InvoicePaid(invoice) => record_sale(tx, ctx, SaleInput::from_invoice(invoice)),
        StripeFact::CheckoutCompleted(checkout) => match SaleInput::from_checkout(checkout) {
            Some(input) => record_sale(tx, ctx, input),
            None => done("checkout not paid, or its subscription invoice carries the sale"),
        },
        StripeFact::SubscriptionCreated(sub) => record_subscription(tx, ctx, sub),
        StripeFact::ChargeRefunded(refund) => record_refund(tx, ctx, refund),
        StripeFact::PromotionCodeUpdated { id, active } => sync_promotion_code(tx, ctx, id, *active),
        StripeFact::CouponDeleted { id } => sync_deleted_coupon(tx, ctx, id),
        StripeFact::AccountUpdated(account) => crate::payouts::events::account_updated(tx, ctx, account),
        StripeFact::TransferReversed { transfer, payout_id, fully_reversed, .. } => {
            crate::payouts::events::transfer_reversed(tx, ctx, transfer, *payout_id, *fully_reversed)
        }
        StripeFact::Ignored => done("ignored"),
    }
}
