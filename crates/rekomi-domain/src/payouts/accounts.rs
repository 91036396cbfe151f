//! Where affiliates are paid: an affiliate connects a Stripe Express account (created once per
//! membership, on the installation's platform account) and finishes Stripe's onboarding; a
//! brand records an existing account or a PayPal/Wise email for migrated affiliates; Stripe's
//! `account.updated` keeps `payoutsEnabled` in step.

use serde_json::json;
use time::OffsetDateTime;

use crate::affiliates::{Affiliate, Email};
use crate::audit::AuditAction;
use crate::kernel::actor::{AffiliateActor, AuditActor, Role};
use crate::kernel::error::DomainError;
use crate::kernel::ids::AffiliateId;
use crate::kernel::stripe_ids::StripeAccountId;
use crate::payouts::model::PayoutAccount;
use crate::payouts::rail::{ConnectedAccount, CreateAccountLink, CreateExpressAccount};
use crate::ports::gateway::GatewayError;
use crate::services::{BrandContext, Services};

/// A fresh Stripe onboarding link for an affiliate's account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnboardingLink {
    /// The account as stored after the call.
    pub account: PayoutAccount,
    /// The link (single-use).
    pub url: String,
    /// When the link stops working.
    pub expires_at: OffsetDateTime,
}

/// What a brand records for an affiliate: every field replaces the stored one (`None` clears).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordPayoutAccount {
    /// An existing Stripe account connected to the platform.
    pub stripe_account_id: Option<StripeAccountId>,
    /// PayPal email.
    pub paypal_email: Option<Email>,
    /// Wise email.
    pub wise_email: Option<Email>,
}

fn account_data(a: &PayoutAccount) -> serde_json::Value {
    json!({
        "stripeAccountId": a.stripe_account_id.as_ref().map(StripeAccountId::as_str),
        "payoutsEnabled": a.payouts_enabled,
        "detailsSubmitted": a.details_submitted,
        "paypalEmail": a.paypal_email.as_ref().map(Email::as_str),
        "wiseEmail": a.wise_email.as_ref().map(Email::as_str),
    })
}

fn stripe_state(account: &mut PayoutAccount, found: &ConnectedAccount, now: OffsetDateTime) -> bool {
    let changed = account.payouts_enabled != found.payouts_enabled || account.details_submitted != found.details_submitted;
    account.payouts_enabled = found.payouts_enabled;
    account.details_submitted = found.details_submitted;
    if changed {
        account.updated_at = now;
    }
    changed
}

impl Services {
    /// The caller's membership `affiliate_id` (matched by the token's user or email).
    async fn own_membership(&self, caller: &AffiliateActor, affiliate_id: AffiliateId) -> Result<Affiliate, DomainError> {
        let email = Email::parse("email", &caller.email).map_err(|_| DomainError::Forbidden {
            code: "invalid_affiliate_token",
            message: "the affiliate token carries no valid email".to_owned(),
        })?;
        let user = caller.user_id.clone();
        self.tx(move |tx| {
            tx.affiliates_of_user(&user, &email)?
                .into_iter()
                .find(|a| a.id == affiliate_id)
                .ok_or(DomainError::NotFound("affiliate_not_found"))
        })
        .await
    }

    /// Connects the caller's membership to a Stripe Express account: creates the account the
    /// first time (idempotency key from the affiliate id, so a retry after a timeout finds the
    /// same account) and returns a fresh onboarding link whose return and refresh URLs are
    /// under `public_url`.
    ///
    /// # Errors
    /// `affiliate_not_found`, `invalid_affiliate_token`, Stripe (`stripe_unavailable`, …),
    /// storage.
    pub async fn connect_stripe_payout_account(
        &self,
        caller: &AffiliateActor,
        affiliate_id: AffiliateId,
        public_url: &str,
    ) -> Result<OnboardingLink, DomainError> {
        let affiliate = self.own_membership(caller, affiliate_id).await?;
        let org = affiliate.org_id;
        let existing = self.tx(move |tx| Ok(tx.payout_account(org, affiliate_id)?)).await?;
        let now = self.now();
        let mut account = existing.clone().unwrap_or_else(|| PayoutAccount::empty(org, affiliate_id, now));
        if account.stripe_account_id.is_none() {
            let created = self
                .payout_rail
                .create_express_account(&CreateExpressAccount {
                    idempotency_key: format!("rekomi-affiliate-{affiliate_id}-express"),
                    email: affiliate.email.as_str().to_owned(),
                    metadata: vec![
                        ("rekomi_affiliate_id".to_owned(), affiliate_id.to_string()),
                        ("rekomi_org_id".to_owned(), org.to_string()),
                    ],
                })
                .await?;
            account.stripe_account_id = Some(created.id.clone());
            stripe_state(&mut account, &created, now);
            account.updated_at = now;
            let audit = self.audit(org, AuditActor::User(caller.user_id.clone()), now);
            let saved = account.clone();
            account = self
                .tx(move |tx| {
                    // Two first calls at once create one account at Stripe (same key); the
                    // second to get here keeps what the first stored.
                    if let Some(stored) = tx.payout_account(org, affiliate_id)?.filter(|a| a.stripe_account_id.is_some()) {
                        return Ok(stored);
                    }
                    tx.save_payout_account(&saved)?;
                    audit.record(
                        tx,
                        AuditAction::PayoutAccountStripeCreated,
                        "affiliate",
                        affiliate_id.to_string(),
                        None,
                        Some(account_data(&saved)),
                    )?;
                    Ok(saved)
                })
                .await?;
        }
        let stripe_account = account.stripe_account_id.clone().ok_or(DomainError::NotFound("payout_account_not_found"))?;
        let base = public_url.trim_end_matches('/');
        let link = self
            .payout_rail
            .create_account_link(&CreateAccountLink {
                account: stripe_account,
                refresh_url: format!("{base}/affiliate/payout-account/refresh?affiliateId={affiliate_id}"),
                return_url: format!("{base}/affiliate/payout-account/return?affiliateId={affiliate_id}"),
            })
            .await?;
        Ok(OnboardingLink { account, url: link.url, expires_at: link.expires_at })
    }

    /// The caller's payout account for a membership. A Stripe account that cannot receive
    /// payouts yet is asked for its state first (the affiliate may have just finished
    /// onboarding); when Stripe cannot be reached the stored state is shown.
    ///
    /// # Errors
    /// `affiliate_not_found` (also when nothing is recorded), `invalid_affiliate_token`, storage.
    pub async fn my_payout_account(&self, caller: &AffiliateActor, affiliate_id: AffiliateId) -> Result<PayoutAccount, DomainError> {
        let affiliate = self.own_membership(caller, affiliate_id).await?;
        let org = affiliate.org_id;
        let stored = self.tx(move |tx| Ok(tx.payout_account(org, affiliate_id)?)).await?;
        let mut account = stored.ok_or(DomainError::NotFound("payout_account_not_found"))?;
        if let (Some(id), false) = (account.stripe_account_id.clone(), account.payouts_enabled) {
            match self.payout_rail.retrieve_account(&id).await {
                Ok(found) => {
                    let now = self.now();
                    if stripe_state(&mut account, &found, now) {
                        self.apply_account_state(found, AuditActor::System).await?;
                    }
                }
                Err(e) => tracing::info!(account = %id, error = %e, "could not refresh the payout account from Stripe"),
            }
        }
        Ok(account)
    }

    /// Records where a brand pays an affiliate (Owner): an existing Stripe account (asked
    /// for its state, so `payoutsEnabled` is Stripe's), a PayPal and a Wise email.
    ///
    /// # Errors
    /// `affiliate_not_found`, `stripe_account_not_found` (422), the gates, Stripe, storage.
    pub async fn record_payout_account(
        &self,
        ctx: &BrandContext,
        affiliate_id: AffiliateId,
        record: RecordPayoutAccount,
    ) -> Result<PayoutAccount, DomainError> {
        ctx.require_plan(crate::payouts::PAYOUTS_PLAN)?;
        ctx.require_role(Role::Owner)?;
        let org = ctx.org_id();
        self.tx(move |tx| tx.affiliate(org, affiliate_id)?.map(|_| ()).ok_or(DomainError::NotFound("affiliate_not_found"))).await?;
        let state = match &record.stripe_account_id {
            Some(id) => Some(self.payout_rail.retrieve_account(id).await.map_err(|e| match e {
                GatewayError::NotFound => DomainError::Unprocessable {
                    code: "stripe_account_not_found",
                    message: format!("Stripe knows no account {id} connected to this platform"),
                    field: Some("stripeAccountId".to_owned()),
                },
                other => other.into(),
            })?),
            None => None,
        };
        let now = self.now();
        let audit = self.audit(org, ctx.actor.audit_actor(), now);
        self.tx(move |tx| {
            let before = tx.payout_account(org, affiliate_id)?;
            let mut account = before.clone().unwrap_or_else(|| PayoutAccount::empty(org, affiliate_id, now));
            account.stripe_account_id = record.stripe_account_id;
            match &state {
                Some(found) => {
                    stripe_state(&mut account, found, now);
                }
                None => {
                    account.payouts_enabled = false;
                    account.details_submitted = false;
                }
            }
            account.paypal_email = record.paypal_email;
            account.wise_email = record.wise_email;
            account.updated_at = now;
            if before.as_ref() != Some(&account) {
                tx.save_payout_account(&account)?;
                audit.record(
                    tx,
                    AuditAction::PayoutAccountRecorded,
                    "affiliate",
                    affiliate_id.to_string(),
                    before.as_ref().map(account_data),
                    Some(account_data(&account)),
                )?;
            }
            Ok(account)
        })
        .await
    }

    /// Applies a Stripe account's state (`account.updated`, or a refresh) to every payout
    /// account that names it. Returns how many changed.
    ///
    /// # Errors
    /// Storage.
    pub async fn apply_account_state(&self, found: ConnectedAccount, actor: AuditActor) -> Result<usize, DomainError> {
        let now = self.now();
        let entropy = std::sync::Arc::clone(&self.entropy);
        self.tx(move |tx| {
            let mut changed = 0;
            for mut account in tx.payout_accounts_by_stripe_account(&found.id)? {
                let before = account_data(&account);
                if stripe_state(&mut account, &found, now) {
                    tx.save_payout_account(&account)?;
                    let audit =
                        crate::services::Audit { org: account.org_id, actor: actor.clone(), now, entropy: std::sync::Arc::clone(&entropy) };
                    audit.record(
                        tx,
                        AuditAction::PayoutAccountUpdated,
                        "affiliate",
                        account.affiliate_id.to_string(),
                        Some(before),
                        Some(account_data(&account)),
                    )?;
                    changed += 1;
                }
            }
            Ok(changed)
        })
        .await
    }
}
