//! The payout rail port (the payouts capability's own): the Stripe Connect calls that pay affiliates. The installation's own
//! Stripe account (`REKOMI_STRIPE_SECRET_KEY`) is the Connect platform: affiliates' Express
//! accounts are created on it and transfers leave its balance, so no call here names a
//! `Stripe-Account`. Implemented by `rekomi-stripe` (Stripe or its HTTP double), by its offline
//! rail for local mode, and by `rekomi-fakes` for tests.
//!
//! As on the payment gateway, every mutating call carries an idempotency key derived from a
//! Rekomi id, implementations retry 429 and 5xx themselves, and a [`GatewayError::Unavailable`]
//! means the outcome is unknown: the same call with the same key may already have succeeded.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::kernel::money::Money;
use crate::kernel::stripe_ids::{StripeAccountId, StripeTransferId};
use crate::ports::gateway::GatewayError;

/// `POST /v1/accounts` for an Express account that can receive transfers
/// (`type=express`, `capabilities[transfers][requested]=true`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateExpressAccount {
    /// Sent as the `Idempotency-Key` header (derived from the affiliate id).
    pub idempotency_key: String,
    /// `email`, prefilled in Stripe's onboarding.
    pub email: String,
    /// `metadata[k]=v`, carrying the Rekomi ids.
    pub metadata: Vec<(String, String)>,
}

/// A connected account as Stripe reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectedAccount {
    /// `acct_…`.
    pub id: StripeAccountId,
    /// `payouts_enabled`.
    pub payouts_enabled: bool,
    /// `details_submitted`.
    pub details_submitted: bool,
}

/// `POST /v1/account_links` (`type=account_onboarding`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateAccountLink {
    /// `account`.
    pub account: StripeAccountId,
    /// `refresh_url`: where Stripe sends an affiliate whose link expired.
    pub refresh_url: String,
    /// `return_url`: where Stripe sends an affiliate who finished (or left) onboarding.
    pub return_url: String,
}

/// An onboarding link: single-use, short-lived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountLink {
    /// `url`.
    pub url: String,
    /// `expires_at`.
    pub expires_at: OffsetDateTime,
}

/// `POST /v1/transfers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateTransfer {
    /// Sent as the `Idempotency-Key` header: the payout id and its attempt, so a retried or
    /// reconciled attempt never makes a second transfer.
    pub idempotency_key: String,
    /// `destination`.
    pub destination: StripeAccountId,
    /// `amount` and `currency`.
    pub amount: Money,
    /// `transfer_group`: one per payout, which is also how the reconciler finds a transfer
    /// after Stripe's idempotency window (24 hours) has passed.
    pub transfer_group: String,
    /// `metadata[k]=v`, carrying the payout id.
    pub metadata: Vec<(String, String)>,
}

/// A transfer as Stripe reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// `tr_…`.
    pub id: StripeTransferId,
    /// `reversed`: fully reversed.
    pub reversed: bool,
}

/// The Stripe Connect calls Rekomi makes to pay affiliates.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait PayoutRail: Send + Sync + 'static {
    /// Creates an Express account.
    ///
    /// # Errors
    /// [`GatewayError::Rejected`] for a 4xx answer, [`GatewayError::Unavailable`] when retries
    /// are exhausted, [`GatewayError::Unknown`] otherwise.
    async fn create_express_account(&self, request: &CreateExpressAccount) -> Result<ConnectedAccount, GatewayError>;

    /// A fresh onboarding link for an account. Links are single-use, so no idempotency key.
    ///
    /// # Errors
    /// As [`PayoutRail::create_express_account`]; [`GatewayError::NotFound`] for an unknown
    /// account.
    async fn create_account_link(&self, request: &CreateAccountLink) -> Result<AccountLink, GatewayError>;

    /// `GET /v1/accounts/{id}`: the account's current state.
    ///
    /// # Errors
    /// As [`PayoutRail::create_account_link`].
    async fn retrieve_account(&self, account: &StripeAccountId) -> Result<ConnectedAccount, GatewayError>;

    /// Creates a transfer to a connected account.
    ///
    /// # Errors
    /// [`GatewayError::Rejected`] when Stripe refused it (insufficient balance, an account that
    /// cannot receive transfers): final, no money moved. [`GatewayError::Unavailable`] or
    /// [`GatewayError::Unknown`]: the outcome is unknown.
    async fn create_transfer(&self, request: &CreateTransfer) -> Result<Transfer, GatewayError>;

    /// The transfer of a transfer group, if one exists: `GET /v1/transfers?transfer_group=…`.
    ///
    /// # Errors
    /// As [`PayoutRail::create_account_link`].
    async fn transfer_of_group(&self, transfer_group: &str) -> Result<Option<Transfer>, GatewayError>;
}
