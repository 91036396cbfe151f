//! The Stripe lookups an event may need before it can be applied, made outside any
//! transaction: promotion codes named only by discount ids, the invoice of a refunded charge,
//! the customer's referral metadata, and how a payment in a foreign currency settled.

use crate::kernel::stripe_ids::{StripeAccountId, StripeCustomerId};
use crate::orgs::Organization;
use crate::ports::gateway::{GatewayContext, GatewayError};
use crate::services::Services;
use crate::stripe_inbox::facts::{PromotionCodeRef, StripeFact};

impl Services {
    /// Stripe lookups a fact needs, made outside any transaction: promotion codes that the
    /// payload names only as discount ids, the invoice of a refunded charge, and then the
    /// customer's referral metadata for a new sale whose payload names no referral.
    pub(crate) async fn enrich(&self, stripe_account: Option<StripeAccountId>, fact: StripeFact) -> Result<StripeFact, GatewayError> {
        let ctx = GatewayContext { stripe_account };
        let fact = match fact {
            StripeFact::InvoicePaid(mut invoice) if invoice.discounts.unresolved && invoice.discounts.promotion_codes.is_empty() => {
                invoice.discounts.promotion_codes =
                    not_found_as_empty(self.gateway.invoice_promotion_codes(&ctx, &invoice.invoice_id).await)?;
                StripeFact::InvoicePaid(invoice)
            }
            StripeFact::SubscriptionCreated(mut sub) if sub.discounts.unresolved && sub.discounts.promotion_codes.is_empty() => {
                sub.discounts.promotion_codes =
                    not_found_as_empty(self.gateway.subscription_promotion_codes(&ctx, &sub.subscription_id).await)?;
                StripeFact::SubscriptionCreated(sub)
            }
            StripeFact::ChargeRefunded(mut refund) if refund.invoice_id.is_none() => {
                refund.invoice_id = match self.gateway.invoice_of_payment(&ctx, &refund.charge_id, refund.payment_intent_id.clone()).await {
                    Ok(invoice) => invoice,
                    Err(GatewayError::NotFound) => None,
                    Err(e) => return Err(e),
                };
                StripeFact::ChargeRefunded(refund)
            }
            other => other,
        };
        // Payloads never carry the customer's metadata. Renewals are left out: they join the
        // subscription's conversion, whose attribution is already decided.
        Ok(match fact {
            StripeFact::InvoicePaid(mut invoice) if invoice.referral.is_none() && !invoice.renewal => {
                invoice.referral = self.customer_referral(&ctx, invoice.customer_id.as_ref()).await?;
                StripeFact::InvoicePaid(invoice)
            }
            // An unpaid checkout credits nobody, so it needs no lookup.
            StripeFact::CheckoutCompleted(mut checkout)
                if checkout.referral.is_none() && checkout.client_reference_id.is_none() && checkout.paid =>
            {
                checkout.referral = self.customer_referral(&ctx, checkout.customer_id.as_ref()).await?;
                StripeFact::CheckoutCompleted(checkout)
            }
            other => other,
        })
    }

    /// The settlement of a paid invoice in another currency than the organization's home
    /// currency, so its ledger entries store Stripe's own rate when the Stripe balance received
    /// the home currency. Looked up once the organization is known; an unknown invoice has none.
    pub(crate) async fn settle(&self, org: &Organization, fact: StripeFact) -> Result<StripeFact, GatewayError> {
        match fact {
            StripeFact::InvoicePaid(mut invoice)
                if invoice.amount_paid > 0
                    && invoice.settlement.is_none()
                    && !invoice.currency.eq_ignore_ascii_case(org.home_currency.code()) =>
            {
                let ctx = GatewayContext { stripe_account: org.stripe_account_id.clone() };
                invoice.settlement = match self.gateway.invoice_settlement(&ctx, &invoice.invoice_id).await {
                    Err(GatewayError::NotFound) => None,
                    other => other?,
                };
                Ok(StripeFact::InvoicePaid(invoice))
            }
            other => Ok(other),
        }
    }

    /// `metadata.rekomi_ref` of the customer, if there is one; an unknown customer has none.
    async fn customer_referral(
        &self,
        ctx: &GatewayContext,
        customer_id: Option<&StripeCustomerId>,
    ) -> Result<Option<String>, GatewayError> {
        let Some(customer_id) = customer_id else { return Ok(None) };
        match self.gateway.customer_referral(ctx, customer_id).await {
            Err(GatewayError::NotFound) => Ok(None),
            other => other,
        }
    }
}

pub(crate) fn not_found_as_empty(result: Result<Vec<PromotionCodeRef>, GatewayError>) -> Result<Vec<PromotionCodeRef>, GatewayError> {
    match result {
        Err(GatewayError::NotFound) => Ok(Vec::new()),
        other => other,
    }
}

pub(crate) fn customer_of(fact: &StripeFact) -> Option<StripeCustomerId> {
    match fact {
        StripeFact::InvoicePaid(i) => i.customer_id.clone(),
        StripeFact::SubscriptionCreated(s) => s.customer_id.clone(),
        StripeFact::CheckoutCompleted(c) => c.customer_id.clone(),
        StripeFact::ChargeRefunded(r) => r.customer_id.clone(),
        _ => None,
    }
}

pub(crate) fn promotion_codes_of(fact: &StripeFact) -> &[PromotionCodeRef] {
    match fact {
        StripeFact::InvoicePaid(i) => &i.discounts.promotion_codes,
        StripeFact::SubscriptionCreated(s) => &s.discounts.promotion_codes,
        StripeFact::CheckoutCompleted(c) => &c.discounts.promotion_codes,
        _ => &[],
    }
}
