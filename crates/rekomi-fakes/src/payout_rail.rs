//! [`FakePayoutRail`]: the payout rail port in memory. Keeps Express accounts and transfers as
//! Stripe would (an idempotency key replays its first answer; a transfer group finds its
//! transfers), records every call, and fails on demand, including the case that matters most
//! for money: a transfer Stripe made whose answer was lost (a timeout after the fact).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use rekomi_domain::kernel::money::Money;
use rekomi_domain::kernel::stripe_ids::{StripeAccountId, StripeTransferId};
use rekomi_domain::payouts::rail::{
    AccountLink, ConnectedAccount, CreateAccountLink, CreateExpressAccount, CreateTransfer, PayoutRail, Transfer,
};
use rekomi_domain::ports::gateway::GatewayError;
use time::{Duration, OffsetDateTime};

/// How the next transfer call fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferFailure {
    /// Stripe refuses it (nothing is created).
    Rejected(String),
    /// Stripe is unreachable (nothing is created).
    Unavailable,
    /// Stripe creates the transfer but the answer is lost: the caller sees `Unavailable`.
    LostAnswer,
}

/// A transfer the fake made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeTransfer {
    /// `tr_…`.
    pub id: StripeTransferId,
    /// The destination.
    pub destination: StripeAccountId,
    /// Amount and currency.
    pub amount: Money,
    /// The transfer group.
    pub transfer_group: String,
    /// The idempotency key it was created with.
    pub idempotency_key: String,
    /// Reversed since.
    pub reversed: bool,
}

#[derive(Default)]
struct Inner {
    accounts: BTreeMap<String, ConnectedAccount>,
    account_keys: BTreeMap<String, StripeAccountId>,
    transfers: Vec<FakeTransfer>,
    transfer_failures: VecDeque<TransferFailure>,
    calls: Vec<String>,
    next: u64,
}

/// An in-memory [`PayoutRail`]. Clones share state.
#[derive(Clone, Default)]
pub struct FakePayoutRail {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for FakePayoutRail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakePayoutRail").finish_non_exhaustive()
    }
}

impl FakePayoutRail {
    /// A rail with no accounts.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets an account's state (creating it), as `account.updated` would report.
    pub fn set_account(&self, id: &StripeAccountId, payouts_enabled: bool) {
        self.lock()
            .accounts
            .insert(id.as_str().to_owned(), ConnectedAccount { id: id.clone(), payouts_enabled, details_submitted: payouts_enabled });
    }

    /// Makes the next transfer calls fail, in order.
    pub fn fail_next_transfer(&self, failure: TransferFailure) {
        self.lock().transfer_failures.push_back(failure);
    }

    /// Every transfer made.
    pub fn transfers(&self) -> Vec<FakeTransfer> {
        self.lock().transfers.clone()
    }

    /// Marks a transfer reversed.
    pub fn reverse(&self, id: &StripeTransferId) {
        if let Some(t) = self.lock().transfers.iter_mut().find(|t| &t.id == id) {
            t.reversed = true;
        }
    }

    /// The calls made, as `name key-or-id`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }
}

fn answer(t: &FakeTransfer) -> Transfer {
    Transfer { id: t.id.clone(), reversed: t.reversed }
}

#[async_trait]
impl PayoutRail for FakePayoutRail {
    async fn create_express_account(&self, request: &CreateExpressAccount) -> Result<ConnectedAccount, GatewayError> {
        let mut inner = self.lock();
        inner.calls.push(format!("create_express_account {}", request.idempotency_key));
        if let Some(id) = inner.account_keys.get(&request.idempotency_key).cloned() {
            return inner.accounts.get(id.as_str()).cloned().ok_or(GatewayError::NotFound);
        }
        inner.next += 1;
        let id: StripeAccountId =
            format!("acct_fake{:08}", inner.next).parse().map_err(|e| GatewayError::Unknown(anyhow::anyhow!("{e}")))?;
        let account = ConnectedAccount { id: id.clone(), payouts_enabled: false, details_submitted: false };
        inner.accounts.insert(id.as_str().to_owned(), account.clone());
        inner.account_keys.insert(request.idempotency_key.clone(), id);
        Ok(account)
    }

    async fn create_account_link(&self, request: &CreateAccountLink) -> Result<AccountLink, GatewayError> {
        let mut inner = self.lock();
        inner.calls.push(format!("create_account_link {}", request.account));
        if !inner.accounts.contains_key(request.account.as_str()) {
            return Err(GatewayError::NotFound);
        }
        inner.next += 1;
        Ok(AccountLink {
            url: format!("https://connect.stripe.test/setup/e/{}/{}", request.account, inner.next),
            expires_at: OffsetDateTime::UNIX_EPOCH + Duration::days(30_000),
        })
    }

    async fn retrieve_account(&self, account: &StripeAccountId) -> Result<ConnectedAccount, GatewayError> {
        let mut inner = self.lock();
        inner.calls.push(format!("retrieve_account {account}"));
        inner.accounts.get(account.as_str()).cloned().ok_or(GatewayError::NotFound)
    }

    async fn create_transfer(&self, request: &CreateTransfer) -> Result<Transfer, GatewayError> {
        let mut inner = self.lock();
        inner.calls.push(format!("create_transfer {}", request.idempotency_key));
        if let Some(t) = inner.transfers.iter().find(|t| t.idempotency_key == request.idempotency_key) {
            return Ok(answer(t));
        }
        let failure = inner.transfer_failures.pop_front();
        match &failure {
            Some(TransferFailure::Rejected(message)) => {
                return Err(GatewayError::Rejected { code: Some("insufficient_funds".to_owned()), param: None, message: message.clone() })
            }
            Some(TransferFailure::Unavailable) => return Err(GatewayError::Unavailable("injected by FakePayoutRail".to_owned())),
            Some(TransferFailure::LostAnswer) | None => {}
        }
        if !inner.accounts.get(request.destination.as_str()).is_some_and(|a| a.payouts_enabled) {
            return Err(GatewayError::Rejected {
                code: Some("account_invalid".to_owned()),
                param: Some("destination".to_owned()),
                message: "the destination cannot receive transfers".to_owned(),
            });
        }
        inner.next += 1;
        let id: StripeTransferId =
            format!("tr_fake{:08}", inner.next).parse().map_err(|e| GatewayError::Unknown(anyhow::anyhow!("{e}")))?;
        let transfer = FakeTransfer {
            id,
            destination: request.destination.clone(),
            amount: request.amount,
            transfer_group: request.transfer_group.clone(),
            idempotency_key: request.idempotency_key.clone(),
            reversed: false,
        };
        let out = answer(&transfer);
        inner.transfers.push(transfer);
        if failure == Some(TransferFailure::LostAnswer) {
            return Err(GatewayError::Unavailable("the answer was lost (injected by FakePayoutRail)".to_owned()));
        }
        Ok(out)
    }

    async fn transfer_of_group(&self, transfer_group: &str) -> Result<Option<Transfer>, GatewayError> {
        let mut inner = self.lock();
        inner.calls.push(format!("transfer_of_group {transfer_group}"));
        let mut found: Vec<&FakeTransfer> = inner.transfers.iter().filter(|t| t.transfer_group == transfer_group).collect();
        found.sort_by_key(|t| t.reversed);
        Ok(found.first().map(|t| answer(t)))
    }
}
