//! The use cases' common ground: [`Services`] (the ports every use case needs; each
//! capability adds its operations to it in its own `usecases.rs`), the authenticated
//! [`BrandContext`], and the audit helper. Each public method of `Services` is one operation of
//! the product, runs its storage work in one transaction, and never holds a transaction across
//! a Stripe call.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::audit::{AuditAction, AuditEntry};
use crate::kernel::actor::{AuditActor, BrandActor, Role};
use crate::kernel::clock::Clock;
use crate::kernel::entropy::Entropy;
use crate::kernel::error::DomainError;
use crate::kernel::ids::{AuditId, OrgId};
use crate::kernel::plan::{check_plan, PlanTier};
use crate::orgs::Organization;
use crate::outbound::{outbox, EventType, WebhookSender};
use crate::ports::gateway::PaymentGateway;
use crate::ports::{StoreError, Tx, UnitOfWork};
use crate::stripe_inbox::facts::EventDecoder;

/// The ports every use case needs.
#[derive(Clone)]
pub struct Services {
    /// Storage.
    pub store: Arc<dyn UnitOfWork>,
    /// Stripe.
    pub gateway: Arc<dyn PaymentGateway>,
    /// Stripe Connect, for paying affiliates.
    pub payout_rail: Arc<dyn crate::payouts::PayoutRail>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub entropy: Arc<dyn Entropy>,
    /// Stripe event decoding.
    pub events: Arc<dyn EventDecoder>,
    /// Outbound webhook transport.
    pub webhooks: Arc<dyn WebhookSender>,
}

/// An authenticated brand-side caller with its organization loaded.
#[derive(Clone, Debug)]
pub struct BrandContext {
    /// Who is calling.
    pub actor: BrandActor,
    /// The caller's organization.
    pub org: Organization,
    /// When the caller was authenticated (a trial that ended before then passes no gate).
    pub now: OffsetDateTime,
}

impl BrandContext {
    /// The organization every query is scoped to.
    pub fn org_id(&self) -> OrgId {
        self.org.id
    }

    /// Checks the plan gate of a resource family.
    ///
    /// # Errors
    /// [`DomainError::PlanRequired`].
    pub fn require_plan(&self, tier: PlanTier) -> Result<(), DomainError> {
        check_plan(self.org.plan_tier, self.org.status_at(self.now), tier, self.actor.channel())?;
        Ok(())
    }

    /// Checks a dashboard role (API keys pass).
    ///
    /// # Errors
    /// [`DomainError::Forbidden`] with `insufficient_role`.
    pub fn require_role(&self, role: Role) -> Result<(), DomainError> {
        if self.actor.has_role(role) {
            Ok(())
        } else {
            Err(DomainError::insufficient_role(match role {
                Role::Owner => "Owner",
                Role::Manager => "Manager",
                Role::Viewer => "Viewer",
            }))
        }
    }
}

/// Builds an audit entry; the caller appends it inside its transaction.
pub(crate) struct Audit {
    pub org: OrgId,
    pub actor: AuditActor,
    pub now: OffsetDateTime,
    pub entropy: Arc<dyn Entropy>,
}

impl Audit {
    /// Writes an outbound event (and its deliveries) in the same transaction.
    pub(crate) fn emit(&self, tx: &mut dyn Tx, event_type: EventType, data: serde_json::Value) -> Result<(), StoreError> {
        outbox::emit(tx, self.org, event_type, data, self.now, self.entropy.as_ref())
    }

    pub(crate) fn record(
        &self,
        tx: &mut dyn Tx,
        action: AuditAction,
        entity_type: &'static str,
        entity_id: String,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<(), StoreError> {
        tx.append_audit(&self.entry(action, entity_type, entity_id, before, after))
    }

    /// The audit entry [`Audit::record`] appends, for callers that append many at once.
    pub(crate) fn entry(
        &self,
        action: AuditAction,
        entity_type: &'static str,
        entity_id: String,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> AuditEntry {
        AuditEntry {
            id: AuditId::from_uuid(self.entropy.uuid_v7(self.now)),
            org_id: self.org,
            actor: self.actor.clone(),
            action,
            entity_type,
            entity_id,
            before,
            after,
            created_at: self.now,
        }
    }
}

impl Services {
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub(crate) fn new_uuid(&self, now: OffsetDateTime) -> uuid::Uuid {
        self.entropy.uuid_v7(now)
    }

    /// An audit writer for `actor` in `org` at `now`, movable into a transaction closure.
    pub(crate) fn audit(&self, org: OrgId, actor: AuditActor, now: OffsetDateTime) -> Audit {
        Audit { org, actor, now, entropy: Arc::clone(&self.entropy) }
    }

    /// Runs `f` in one transaction.
    pub(crate) async fn tx<R, F>(&self, f: F) -> Result<R, DomainError>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<R, DomainError> + Send + 'static,
    {
        crate::ports::transact(self.store.as_ref(), f).await
    }
}
