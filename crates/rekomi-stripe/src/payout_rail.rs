//! [`StripePayoutRail`]: the [`PayoutRail`] port over Stripe Connect. Every call acts on the
//! platform, the account of the installation's own key: affiliates' Express accounts are made
//! on it and transfers leave its balance, so no call names a `Stripe-Account`.
//!
//! The client, the retry loop (the caller's idempotency key on every attempt) and the error
//! mapping are the gateway's ([`crate::client`]). The requests are built with async-stripe's
//! low-level `RequestBuilder`: its generated Connect request types live in async-stripe-connect,
//! a further large crate, for five small calls. The answers are parsed with miniserde, as
//! async-stripe parses everything, into structs of only the fields the port reports: accounts
//! and transfers are large objects whose other fields Rekomi never reads, and a field Stripe
//! reshapes there must not make an answer unparseable.
//!
//! Form bodies and the transfer-group query are percent-encoded here, leaving only RFC 3986's
//! unreserved characters as they are, so e-mail addresses (`+`), metadata values and any
//! transfer group text travel intact.

use std::fmt::Write as _;

use async_trait::async_trait;
use rekomi_domain::kernel::stripe_ids::StripeAccountId;
use rekomi_domain::payouts::rail::{
    AccountLink, ConnectedAccount, CreateAccountLink, CreateExpressAccount, CreateTransfer, PayoutRail, Transfer,
};
use rekomi_domain::ports::gateway::GatewayError;
use stripe::RequestStrategy;
use stripe_client_core::{CustomizableStripeRequest, RequestBuilder, StripeMethod};
use time::OffsetDateTime;

use crate::client::{answered, get, idempotency_key, idempotent, path_id, StripeApi};
use crate::config::{InvalidStripeConfig, StripeConfig};

/// How many transfers of a group are asked for. A group is one payout; it holds one transfer
/// per attempt that reached Stripe, which is far fewer than this.
const TRANSFERS_PER_GROUP: u32 = 10;

/// The [`PayoutRail`] that calls Stripe Connect.
///
/// Built once at startup from the same [`StripeConfig`] as
/// [`StripeGateway`](crate::StripeGateway); the secret key is never logged.
#[derive(Debug)]
pub struct StripePayoutRail {
    api: StripeApi,
}

impl StripePayoutRail {
    /// Builds the client. No request is made.
    ///
    /// # Errors
    /// [`InvalidStripeConfig`] when the key is empty or not a valid header value, or the API
    /// base is not a valid URL.
    pub fn new(config: StripeConfig) -> Result<Self, InvalidStripeConfig> {
        Ok(Self { api: StripeApi::new(config)? })
    }
}

/// An `application/x-www-form-urlencoded` body, fields in the order added.
#[derive(Default)]
struct Form(String);

impl Form {
    fn field(mut self, key: &str, value: &str) -> Self {
        if !self.0.is_empty() {
            self.0.push('&');
        }
        percent_encode_into(&mut self.0, key);
        self.0.push('=');
        percent_encode_into(&mut self.0, value);
        self
    }

    /// `metadata[k]=v` for each pair.
    fn metadata(self, pairs: &[(String, String)]) -> Self {
        pairs.iter().fold(self, |form, (key, value)| form.field(&format!("metadata[{key}]"), value))
    }
}

/// Appends `text` with every byte but the unreserved ones (`A–Z a–z 0–9 - . _ ~`) as `%XX`,
/// which is valid in a query and in a form body alike.
fn percent_encode_into(out: &mut String, text: &str) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

/// One attempt of `POST /v1{path}` with `form`, on the platform.
fn post<T>(path: &str, form: &Form) -> CustomizableStripeRequest<T> {
    let mut request = RequestBuilder::new(StripeMethod::Post, path);
    request.body = Some(form.0.clone());
    request.customize()
}

/// The fields of an account that [`ConnectedAccount`] reports.
#[derive(miniserde::Deserialize)]
struct AccountFields {
    id: String,
    /// Absent until Stripe has evaluated the account; not enabled until then.
    payouts_enabled: Option<bool>,
    details_submitted: Option<bool>,
}

impl AccountFields {
    fn into_account(self) -> Result<ConnectedAccount, GatewayError> {
        Ok(ConnectedAccount {
            id: answered(&self.id)?,
            payouts_enabled: self.payouts_enabled.unwrap_or(false),
            details_submitted: self.details_submitted.unwrap_or(false),
        })
    }
}

#[derive(miniserde::Deserialize)]
struct AccountLinkFields {
    url: String,
    expires_at: i64,
}

#[derive(miniserde::Deserialize)]
struct TransferFields {
    id: String,
    reversed: Option<bool>,
}

impl TransferFields {
    fn into_transfer(self) -> Result<Transfer, GatewayError> {
        Ok(Transfer { id: answered(&self.id)?, reversed: self.reversed.unwrap_or(false) })
    }
}

#[derive(miniserde::Deserialize)]
struct TransferList {
    data: Vec<TransferFields>,
}

impl TransferList {
    /// The group's transfer. A group is one payout, but each of its attempts may have made a
    /// transfer; one that was reversed no longer pays it, the one still standing does.
    fn current(self) -> Option<TransferFields> {
        let standing = self.data.iter().position(|transfer| transfer.reversed != Some(true)).unwrap_or(0);
        self.data.into_iter().nth(standing)
    }
}

#[async_trait]
impl PayoutRail for StripePayoutRail {
    async fn create_express_account(&self, request: &CreateExpressAccount) -> Result<ConnectedAccount, GatewayError> {
        let key = idempotency_key(&request.idempotency_key)?;
        let form = Form::default()
            .field("type", "express")
            .field("email", &request.email)
            .field("capabilities[transfers][requested]", "true")
            .metadata(&request.metadata);
        let account: AccountFields = self.api.send("create account", || idempotent(post("/accounts", &form), &key)).await?;
        account.into_account()
    }

    async fn create_account_link(&self, request: &CreateAccountLink) -> Result<AccountLink, GatewayError> {
        let form = Form::default()
            .field("account", path_id(request.account.as_str())?)
            .field("refresh_url", &request.refresh_url)
            .field("return_url", &request.return_url)
            .field("type", "account_onboarding");
        // A link is single-use, so a retry simply makes another: no idempotency key.
        let link: AccountLinkFields =
            self.api.send("create account link", || post("/account_links", &form).request_strategy(RequestStrategy::Once)).await?;
        let expires_at = OffsetDateTime::from_unix_timestamp(link.expires_at)
            .map_err(|err| GatewayError::Unknown(anyhow::anyhow!("unparseable answer from Stripe: expires_at {err}")))?;
        Ok(AccountLink { url: link.url, expires_at })
    }

    async fn retrieve_account(&self, account: &StripeAccountId) -> Result<ConnectedAccount, GatewayError> {
        let path = format!("/accounts/{}", path_id(account.as_str())?);
        let account: AccountFields = self.api.send("retrieve account", || get(&path, "", None)).await?;
        account.into_account()
    }

    async fn create_transfer(&self, request: &CreateTransfer) -> Result<Transfer, GatewayError> {
        let key = idempotency_key(&request.idempotency_key)?;
        let form = Form::default()
            .field("amount", &request.amount.minor().to_string())
            .field("currency", &request.amount.currency().stripe_code())
            .field("destination", path_id(request.destination.as_str())?)
            .field("transfer_group", &request.transfer_group)
            .metadata(&request.metadata);
        let transfer: TransferFields = self.api.send("create transfer", || idempotent(post("/transfers", &form), &key)).await?;
        transfer.into_transfer()
    }

    async fn transfer_of_group(&self, transfer_group: &str) -> Result<Option<Transfer>, GatewayError> {
        // An empty filter may be taken as no filter, and any transfer would pass for the group's.
        if transfer_group.is_empty() {
            return Err(GatewayError::Unknown(anyhow::anyhow!("an empty transfer group names no payout")));
        }
        let mut query = String::from("transfer_group=");
        percent_encode_into(&mut query, transfer_group);
        query.push_str(&format!("&limit={TRANSFERS_PER_GROUP}"));
        let transfers: TransferList = self.api.send("list transfers", || get("/transfers", &query, None)).await?;
        transfers.current().map(TransferFields::into_transfer).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_keep_only_unreserved_characters_unescaped() {
        let form = Form::default().field("email", "sarah+payouts@creators.example").field("metadata[note]", "50% off & more/é~");
        assert_eq!(form.0, "email=sarah%2Bpayouts%40creators.example&metadata%5Bnote%5D=50%25%20off%20%26%20more%2F%C3%A9~");
    }

    #[test]
    fn the_standing_transfer_of_a_group_is_preferred_over_reversed_ones() {
        let list = |reversed: &[Option<bool>]| TransferList {
            data: reversed.iter().enumerate().map(|(i, reversed)| TransferFields { id: format!("tr_{i}"), reversed: *reversed }).collect(),
        };
        let current = |reversed: &[Option<bool>]| list(reversed).current().map(|t| t.id);
        assert_eq!(current(&[Some(true), Some(false), None]).as_deref(), Some("tr_1"));
        assert_eq!(current(&[Some(true), None]).as_deref(), Some("tr_1"));
        assert_eq!(current(&[Some(true), Some(true)]).as_deref(), Some("tr_0"));
        assert_eq!(current(&[]), None);
    }
}
