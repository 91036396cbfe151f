//! Server-to-server sales (`POST /api/tracking/s2s`): the sender names the affiliate, so there
//! is nothing to attribute; the sale is claimed once per organization under
//! `s2s:<externalEventId>` and credited through the Stripe sales' own [`credit_sale`] (the
//! program's commission rules, the ledger, the recruiter's override, `conversion.created`).

use serde_json::json;

use crate::affiliates::Affiliate;
use crate::conversions::attribution::{Decision, Method, Signals};
use crate::conversions::record::{credit_sale, Credit, SaleInput};
use crate::conversions::Conversion;
use crate::kernel::error::DomainError;
use crate::ports::Tx;
use crate::stripe_inbox::apply::ApplyCtx;
use crate::tracking::S2sConversion;

/// Records `sale` for `affiliate`. `None` when its `externalEventId` was already recorded for
/// the organization (nothing is written then).
///
/// # Errors
/// `affiliate_not_found` when the affiliate's program is gone; storage failures.
pub(crate) fn record_s2s_sale(
    tx: &mut dyn Tx,
    ctx: &ApplyCtx<'_>,
    sale: &S2sConversion,
    affiliate: &Affiliate,
) -> Result<Option<Conversion>, DomainError> {
    let input = SaleInput::from_s2s(sale, ctx.now);
    if !tx.claim_source(ctx.org.id, input.source(), ctx.now)? {
        return Ok(None);
    }
    let program = ctx.program(tx, affiliate.program_id)?.ok_or(DomainError::NotFound("affiliate_not_found"))?;
    // The method is not stored for a direct sale (`attributionMethod` is null); the rule names
    // the path in the trace.
    let decision = Decision { affiliate: affiliate.id, method: Method::MetadataOrCustomer, coupon: None, rule: "s2s", click: None };
    let signals = Signals::default();
    let trace = json!({
        "source": "s2s",
        "externalEventId": sale.external_event_id(),
        "affiliateSlug": sale.affiliate_slug(),
        "customerId": sale.customer_id(),
    });
    let credit = Credit { affiliate, program: &program, decision: &decision, signals: &signals, denied: None };
    credit_sale(tx, ctx, &input, credit, sale.currency(), None, trace).map(Some)
}
