//! Stripe events about payouts, applied by the inbox worker inside its batch transaction:
//! `account.updated` keeps a payout account's `payoutsEnabled` in step, and `transfer.reversed`
//! (a full reversal) fails the payout it paid, returning its entries to the balance.

use crate::audit::AuditAction;
use crate::kernel::error::DomainError;
use crate::kernel::ids::PayoutId;
use crate::kernel::stripe_ids::StripeTransferId;
use crate::outbound::EventType;
use crate::payouts::model::PayoutStatus;
use crate::payouts::rail::ConnectedAccount;
use crate::payouts::usecases::payout_data;
use crate::ports::Tx;
use crate::stripe_inbox::apply::{done, Applied, ApplyCtx};

pub(crate) fn account_updated(tx: &mut dyn Tx, ctx: &ApplyCtx<'_>, found: &ConnectedAccount) -> Result<Applied, DomainError> {
    let mut changed = 0;
    for mut account in tx.payout_accounts_by_stripe_account(&found.id)?.into_iter().filter(|a| a.org_id == ctx.org.id) {
        if account.payouts_enabled == found.payouts_enabled && account.details_submitted == found.details_submitted {
            continue;
        }
        account.payouts_enabled = found.payouts_enabled;
        account.details_submitted = found.details_submitted;
        account.updated_at = ctx.now;
        tx.save_payout_account(&account)?;
        ctx.record(
            AuditAction::PayoutAccountUpdated,
            "affiliate",
            account.affiliate_id.to_string(),
            Some(serde_json::json!({"stripeAccountId": found.id.as_str(), "payoutsEnabled": found.payouts_enabled, "detailsSubmitted": found.details_submitted})),
        );
        changed += 1;
    }
    done(if changed == 0 { "payout account already in step" } else { "payout account updated" })
}

pub(crate) fn transfer_reversed(
    tx: &mut dyn Tx,
    ctx: &ApplyCtx<'_>,
    transfer: &StripeTransferId,
    payout_id: Option<PayoutId>,
    fully_reversed: bool,
) -> Result<Applied, DomainError> {
    let org = ctx.org.id;
    // Part of the money stays with the affiliate: failing the payout would let its entries be
    // paid again in full. It is left for the brand to settle, visibly.
    if !fully_reversed {
        return Ok(Applied::Skipped(format!(
            "transfer {transfer} was partially reversed; the payout stays Paid (record the difference as an adjustment)"
        )));
    }
    let found = match tx.payout_of_transfer(transfer)? {
        Some(p) => Some(p),
        None => payout_id.map(|id| tx.payout_for_update(org, id)).transpose()?.flatten(),
    };
    let Some(mut payout) = found.filter(|p| p.org_id == org) else {
        return Ok(Applied::Skipped(format!("no payout of the organization made transfer {transfer}")));
    };
    if payout.status == PayoutStatus::Failed {
        return done("the payout had already failed");
    }
    payout.stripe_transfer_id = Some(transfer.clone());
    payout.failed("reversed", ctx.now);
    tx.update_payout(&payout)?;
    tx.release_line_items(org, payout.id)?;
    tx.unmark_conversions_paid(org, payout.id, ctx.now)?;
    ctx.record(AuditAction::PayoutReversed, "payout", payout.id.to_string(), Some(payout_data(&payout)));
    ctx.emit(tx, EventType::PayoutFailed, payout_data(&payout))?;
    done("payout reversed: its entries are back in the balance")
}
