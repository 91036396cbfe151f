//! The inbox as Owners and operators see it: listing events and replaying one.

use crate::audit::AuditAction;
use serde_json::json;
use time::OffsetDateTime;

use crate::kernel::actor::Role;
use crate::kernel::error::DomainError;
use crate::kernel::stripe_ids::StripeEventId;
use crate::services::{BrandContext, Services};
use crate::stripe_inbox::{InboxEvent, InboxStatus};

impl Services {
    /// The organization's inbound Stripe events, newest first (Owner).
    ///
    /// # Errors
    /// `insufficient_role`.
    pub async fn list_stripe_events(
        &self,
        ctx: &BrandContext,
        status: Option<InboxStatus>,
        before: Option<OffsetDateTime>,
        limit: i64,
    ) -> Result<Vec<InboxEvent>, DomainError> {
        ctx.require_role(Role::Owner)?;
        let org = ctx.org_id();
        self.tx(move |tx| Ok(tx.list_inbox_events(Some(org), status, before, limit)?)).await
    }

    /// Puts one of the organization's inbound events back in the queue (Owner): a failed or
    /// skipped event is processed again; effects already recorded are not repeated.
    ///
    /// # Errors
    /// `stripe_event_not_found`.
    pub async fn replay_stripe_event(&self, ctx: &BrandContext, id: StripeEventId) -> Result<InboxEvent, DomainError> {
        ctx.require_role(Role::Owner)?;
        let org = ctx.org_id();
        let now = self.now();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            let mut event =
                tx.inbox_event(&id)?.filter(|e| e.org_id == Some(org)).ok_or(DomainError::NotFound("stripe_event_not_found"))?;
            event.replay(now, true)?;
            tx.update_inbox_event(&event)?;
            audit.record(
                tx,
                AuditAction::StripeEventReplayed,
                "stripe_event",
                event.id.to_string(),
                None,
                Some(json!({"replays": event.replays})),
            )?;
            tracing::info!(event.id = %event.id, org.id = %org, replays = event.replays, "stripe event replayed by an owner");
            Ok(event)
        })
        .await
    }

    /// Operator view of every organization's inbound events (admin command).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn list_all_stripe_events(&self, status: Option<InboxStatus>, limit: i64) -> Result<Vec<InboxEvent>, DomainError> {
        self.tx(move |tx| Ok(tx.list_inbox_events(None, status, None, limit)?)).await
    }

    /// Operator replay of any inbound event (admin command), including ones whose organization
    /// could not be identified.
    ///
    /// # Errors
    /// `stripe_event_not_found`.
    pub async fn replay_any_stripe_event(&self, id: StripeEventId) -> Result<InboxEvent, DomainError> {
        let now = self.now();
        self.tx(move |tx| {
            let mut event = tx.inbox_event(&id)?.ok_or(DomainError::NotFound("stripe_event_not_found"))?;
            event.replay(now, false)?;
            tx.update_inbox_event(&event)?;
            tracing::warn!(event.id = %event.id, "stripe event replayed by an operator");
            Ok(event)
        })
        .await
    }
}
