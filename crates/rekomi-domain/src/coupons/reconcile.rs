//! The reconciler: finishes Stripe provisioning that a crash, a timeout or an outage
//! interrupted, with the same idempotency keys.

use crate::kernel::actor::AuditActor;
use crate::kernel::error::DomainError;
use crate::ports::GatewayError;

use crate::services::Services;

use super::usecases::*;

impl Services {
    /// Finishes reservations whose Stripe call did not complete (a crash, a timeout, Stripe
    /// down) more than `RECONCILE_AFTER` (5 minutes) ago, with the same idempotency keys, so Stripe
    /// returns the objects it may already have created.
    ///
    /// # Errors
    /// Storage failures; gateway failures are counted as `pending` and retried next pass.
    pub async fn reconcile_provisioning(&self) -> Result<ReconcileReport, DomainError> {
        let before = self.now() - RECONCILE_AFTER;
        let mut report = ReconcileReport::default();
        let campaigns = self
            .tx(move |tx| {
                let mut out = Vec::new();
                for c in tx.unprovisioned_campaign_coupons(before, 50)? {
                    let account = tx.org(c.org_id)?.and_then(|o| o.stripe_account_id);
                    out.push((c, account));
                }
                Ok(out)
            })
            .await?;
        for (coupon, account) in campaigns {
            let outcome = self.provision_campaign_coupon(coupon, account, AuditActor::System).await.map(|_| ());
            tally(&mut report, outcome);
        }
        let codes = self
            .tx(move |tx| {
                let mut out = Vec::new();
                for c in tx.unprovisioned_affiliate_coupons(before, 50)? {
                    let org = c.org_id;
                    let campaign = tx.campaign_coupon(org, c.campaign_coupon_id)?;
                    let affiliate = tx.affiliate(org, c.affiliate_id)?;
                    let account = tx.org(org)?.and_then(|o| o.stripe_account_id);
                    match (campaign, affiliate) {
                        (Some(campaign), Some(affiliate)) if campaign.stripe_coupon_id.is_some() => {
                            out.push(Reserved { coupon: c, campaign, affiliate, stripe_account: account });
                        }
                        // Its parent is gone or was never provisioned: nothing to finish.
                        _ => tx.delete_affiliate_coupon(org, c.id)?,
                    }
                }
                Ok(out)
            })
            .await?;
        for reserved in codes {
            let outcome = self.provision_affiliate_coupon(reserved, AuditActor::System).await.map(|_| ());
            tally(&mut report, outcome);
        }
        Ok(report)
    }
}

/// Counts one reconciled reservation. One failing reservation never stops the pass: it is
/// logged and retried on the next one.
fn tally(report: &mut ReconcileReport, outcome: Result<(), DomainError>) {
    match outcome {
        Ok(()) => report.provisioned += 1,
        Err(DomainError::Gateway(GatewayError::Rejected { .. })) | Err(DomainError::Unprocessable { .. }) => report.released += 1,
        Err(e) => {
            tracing::warn!(error.cause = %e, "a reservation could not be reconciled; retrying next pass");
            report.pending += 1;
        }
    }
}
