//! Ingestion of Stripe webhooks: verify the signature over the raw bytes, read the envelope,
//! store the event in the inbox (one short transaction), so Stripe gets its 200 at once and a
//! redelivered event id changes nothing. The worker (`worker.rs`) processes it later.

use crate::kernel::error::{DomainError, FieldError};
use crate::kernel::signature;
use crate::kernel::stripe_ids::StripeEventId;
use crate::services::Services;
use crate::stripe_inbox::{InboxEvent, InboxStatus};

/// What ingestion did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestOutcome {
    /// The Stripe event id.
    pub event_id: StripeEventId,
    /// Whether the id was already stored (a redelivery: nothing changed).
    pub duplicate: bool,
}

fn invalid_signature(message: &str) -> DomainError {
    FieldError::coded("Stripe-Signature", "invalid_signature", message).into()
}

impl Services {
    /// Verifies a Stripe webhook (`Stripe-Signature` over the raw bytes, any of `secrets`) and
    /// stores it in the inbox. A redelivered event id is accepted and changes nothing.
    ///
    /// # Errors
    /// `invalid_signature` (400) for a missing, forged or stale signature; `invalid_payload`
    /// (400) for a body that is not a Stripe event. Nothing is stored on error.
    /// `expected_livemode`: `Some(true)` on an installation with a live Stripe key (test-mode
    /// events are then skipped), `Some(false)` with a test key, `None` in local mode.
    pub async fn ingest_stripe_event(
        &self,
        secrets: &[String],
        expected_livemode: Option<bool>,
        signature_header: Option<&str>,
        body: &[u8],
    ) -> Result<IngestOutcome, DomainError> {
        if secrets.is_empty() {
            return Err(invalid_signature("no Stripe webhook signing secret is configured (REKOMI_STRIPE_WEBHOOK_SECRET)"));
        }
        let header = signature_header.ok_or_else(|| invalid_signature("the Stripe-Signature header is missing"))?;
        let now = self.now();
        signature::verify(header, body, secrets, now.unix_timestamp()).map_err(|e| invalid_signature(&e.to_string()))?;
        let envelope = self.events.envelope(body).map_err(|e| FieldError::coded("body", "invalid_payload", e.to_string()))?;
        let payload =
            String::from_utf8(body.to_vec()).map_err(|_| FieldError::coded("body", "invalid_payload", "the body is not UTF-8"))?;
        let event_id = envelope.id.clone();
        let mut event = InboxEvent {
            id: envelope.id,
            org_id: None,
            account: envelope.account,
            event_type: envelope.event_type,
            payload,
            status: InboxStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            locked_until: None,
            last_error: None,
            received_at: now,
            processed_at: None,
            waiting_for: None,
            replays: 0,
        };
        // A test-mode event reaching a live installation (or the reverse) must never create
        // commissions: it is kept, answered 200 so Stripe stops resending, and skipped.
        if expected_livemode.is_some_and(|live| live != envelope.livemode) {
            event.status = InboxStatus::Skipped;
            event.last_error = Some(format!(
                "{} event on a {} installation",
                if envelope.livemode { "live-mode" } else { "test-mode" },
                if envelope.livemode { "test" } else { "live" }
            ));
            event.processed_at = Some(now);
        }
        let inserted = self
            .tx(move |tx| {
                if let Some(account) = &event.account {
                    event.org_id = tx.org_by_stripe_account(account)?.map(|o| o.id);
                }
                Ok(tx.insert_inbox_event(&event)?)
            })
            .await?;
        Ok(IngestOutcome { event_id, duplicate: !inserted })
    }
}
