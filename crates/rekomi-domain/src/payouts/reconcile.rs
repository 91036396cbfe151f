//! The reconciler: payouts left `Processing` (a transfer timed out, Stripe kept failing, the
//! server died between asking and recording) are settled by asking Stripe again. First by the
//! payout's transfer group, which finds a transfer however old; when none exists, by creating
//! it with the same idempotency key as before, which Stripe answers with the original transfer
//! if the first request did reach it. Either way a payout is paid once.

use time::Duration;

use crate::kernel::actor::AuditActor;
use crate::kernel::error::DomainError;
use crate::payouts::usecases::TransferOutcome;
use crate::services::Services;

/// A payout is reconciled once it has been `Processing` this long untouched: long enough for
/// the run that asked for its transfer to have recorded the answer.
pub const RECONCILE_AFTER: Duration = Duration::minutes(1);

impl Services {
    /// Settles up to `limit` payouts left Processing and untouched for `after` (normally
    /// [`RECONCILE_AFTER`]); returns how many were looked at. Payouts whose outcome is still
    /// unknown stay Processing for the next pass.
    ///
    /// # Errors
    /// Storage.
    pub async fn reconcile_payouts(&self, limit: i64, after: Duration) -> Result<usize, DomainError> {
        let before = self.now() - after;
        let stuck = self.tx(move |tx| Ok(tx.processing_payouts(before, limit)?)).await?;
        for payout in &stuck {
            match self.payout_rail.transfer_of_group(&payout.transfer_group()).await {
                Ok(Some(transfer)) => {
                    self.settle_transfer(payout.org_id, payout.id, payout.attempt, TransferOutcome::Made(transfer), AuditActor::System)
                        .await?;
                }
                Ok(None) => self.transfer(payout, AuditActor::System).await?,
                Err(e) => tracing::warn!(payout = %payout.id, error = %e, "could not look the payout's transfer up; trying again later"),
            }
        }
        Ok(stuck.len())
    }
}
