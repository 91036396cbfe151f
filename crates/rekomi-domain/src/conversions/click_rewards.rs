//! Daily click rewards: a program whose commission model is `Cpc` pays its fixed commission per
//! unique, non-bot click. Once a day, each affiliate's paid clicks of the previous UTC day become
//! one `ClickReward` conversion (`attributionMethod` `cpc_aggregation`) with a ledger entry,
//! claimed once per affiliate and day, so a repeated or concurrent run pays nothing twice.

use std::cell::RefCell;
use std::sync::Arc;

use serde_json::json;
use time::{Date, OffsetDateTime, Time};

use crate::audit::AuditAction;
use crate::conversions::attribution::{Decision, Method, Signals};
use crate::conversions::commission;
use crate::conversions::record::{annotate, credited_conversion, denial, insert_ledger, Credit, SaleInput};
use crate::conversions::{ConversionType, LedgerKind};
use crate::kernel::error::{DomainError, FieldError};
use crate::kernel::money::Money;
use crate::outbound::outbox::conversion_data;
use crate::outbound::EventType;
use crate::ports::Tx;
use crate::services::Services;
use crate::stripe_inbox::apply::{ApplyCtx, Lookups};
use crate::traffic::CpcClicks;

/// How long after midnight (UTC) a day's clicks are paid.
pub const SETTLE_AFTER: time::Duration = time::Duration::minutes(15);

/// The commission of `clicks` paid clicks at `per_click` minor units, or `None` on overflow.
pub fn click_reward(per_click: i64, clicks: i64) -> Option<i64> {
    per_click.checked_mul(clicks)
}

/// Records one affiliate's reward for `day`; `false` when it was already recorded.
fn reward(tx: &mut dyn Tx, ctx: &ApplyCtx<'_>, day: Date, counted: &CpcClicks) -> Result<bool, DomainError> {
    let source = format!("cpc:{}:{day}", counted.affiliate_id);
    if !tx.claim_source(ctx.org.id, &source, ctx.now)? {
        return Ok(false);
    }
    let (Some(affiliate), Some(program)) = (ctx.affiliate(tx, counted.affiliate_id)?, ctx.program(tx, counted.program_id)?) else {
        return Ok(false);
    };
    let currency = ctx.org.home_currency;
    let rate = affiliate.custom_commission.unwrap_or(program.default_commission);
    let per_click = commission::commission_for(Money::new(0, currency), rate).minor();
    let denied = denial(&affiliate, &program, None);
    let earned = if denied.is_none() {
        click_reward(per_click, counted.clicks)
            .ok_or_else(|| DomainError::Validation(FieldError::invalid("clicks", "the day's click reward overflows")))?
    } else {
        0
    };
    let occurred_at = OffsetDateTime::new_utc(day, Time::MIDNIGHT);
    let input = SaleInput::from_reward(source, format!("cpc:{day}"), currency, occurred_at);
    let decision = Decision { affiliate: affiliate.id, method: Method::CpcAggregation, coupon: None, rule: "cpc_aggregation", click: None };
    let signals = Signals::default();
    let mut trace = json!({ "source": "cpc_aggregation", "day": day.to_string(), "clicks": counted.clicks, "perClickCents": per_click });
    annotate(&mut trace, &decision, denied, Some((rate.kind.as_str(), rate.value.to_decimal_string(), true)));
    let credit = Credit { affiliate: &affiliate, program: &program, decision: &decision, signals: &signals, denied };
    let conversion = credited_conversion(ctx, &input, &credit, ConversionType::ClickReward, currency, 0, earned, 0, trace);
    tx.insert_conversion(&conversion)?;
    if earned != 0 {
        insert_ledger(tx, ctx, &conversion, LedgerKind::Initial, 0, earned, None, None, occurred_at, ctx.payable_after(occurred_at), None)?;
    }
    ctx.record(AuditAction::ConversionCreated, "conversion", conversion.id.to_string(), Some(conversion_data(&conversion)));
    ctx.emit(tx, EventType::ConversionCreated, conversion_data(&conversion))?;
    Ok(true)
}

impl Services {
    /// Pays the `Cpc` programs' clicks of `day` (UTC): one `ClickReward` per affiliate with
    /// paid clicks, each in its own transaction. Returns how many were recorded now.
    ///
    /// # Errors
    /// Storage failures (rewards recorded before the failure stay recorded; a rerun records
    /// the rest).
    pub async fn aggregate_click_rewards(&self, day: Date) -> Result<usize, DomainError> {
        let counts = self.tx(move |tx| Ok(tx.cpc_click_counts(day)?)).await?;
        let mut recorded = 0;
        let mut failed = None;
        for counted in counts {
            let (now, entropy) = (self.now(), Arc::clone(&self.entropy));
            let outcome = self
                .tx(move |tx| {
                    let Some(org) = tx.org(counted.org_id)? else { return Ok(false) };
                    let lookups = RefCell::new(Lookups::default());
                    let apply = ApplyCtx::new(org, now, entropy, &lookups);
                    let done = reward(tx, &apply, day, &counted)?;
                    apply.into_effects().commit(tx, now)?;
                    Ok(done)
                })
                .await;
            // One affiliate's failure does not hold back the others; the next run retries it.
            match outcome {
                Ok(done) => recorded += usize::from(done),
                Err(e) => {
                    tracing::warn!(affiliate = %counted.affiliate_id, error.cause = %e, "click reward not recorded");
                    failed = Some(e);
                }
            }
        }
        match failed {
            Some(e) if recorded == 0 => Err(e),
            _ => Ok(recorded),
        }
    }

    /// Pays yesterday's clicks (UTC) once the day has been over for [`SETTLE_AFTER`], so that
    /// the last clicks of the day (still buffered by a process, retried by the sink, stamped
    /// by a clock a little behind) are stored first. `None` before then (nothing recorded).
    ///
    /// # Errors
    /// As [`aggregate_click_rewards`](Self::aggregate_click_rewards).
    pub async fn aggregate_yesterdays_click_rewards(&self) -> Result<Option<usize>, DomainError> {
        let now = self.now();
        if now - now.replace_time(Time::MIDNIGHT) < SETTLE_AFTER {
            return Ok(None);
        }
        match now.date().previous_day() {
            Some(yesterday) => self.aggregate_click_rewards(yesterday).await.map(Some),
            None => Ok(Some(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_days_reward_is_the_per_click_commission_times_the_paid_clicks() {
        for (per_click, clicks, want) in [(25, 0, Some(0)), (25, 4, Some(100)), (0, 1000, Some(0)), (i64::MAX, 2, None)] {
            assert_eq!(click_reward(per_click, clicks), want, "{per_click} × {clicks}");
        }
    }
}
