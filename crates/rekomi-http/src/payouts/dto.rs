//! The payouts capability's bodies: the preview and run requests, a payout with its line items,
//! the preview, the list query, mark-paid, and payout accounts. Inbound adapter side of
//! `rekomi_domain::payouts`.

use rekomi_domain::affiliates::Email;
use rekomi_domain::kernel::error::FieldError;
use rekomi_domain::kernel::ids::AffiliateId;
use rekomi_domain::kernel::money::Currency;
use rekomi_domain::payouts::{
    CandidateView, IneligibilityCode, PayoutAccount, PayoutFilter, PayoutLineItem, PayoutMethod, PayoutPreview, PayoutSelection,
    PayoutStatus, PayoutView, RecordPayoutAccount, RunPayouts,
};
use serde::{Deserialize, Serialize};
use time::macros::format_description;
use time::Date;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::dto::{enum_field, ts, ts_opt, value_set, CurrencyValue};
use crate::error::ApiError;

value_set!(/// A payout method.
    PayoutMethodValue = "PayoutMethod", "How a payout is paid.",
    PayoutMethod::ALL.iter().map(PayoutMethod::as_str));
value_set!(/// A payout status.
    PayoutStatusValue = "PayoutStatus", "Where a payout stands.",
    PayoutStatus::ALL.iter().map(PayoutStatus::as_str));
value_set!(/// Why a candidate cannot be paid now.
    IneligibilityValue = "IneligibilityReason", "Why a candidate cannot be paid now.",
    IneligibilityCode::ALL.iter().map(IneligibilityCode::as_str));

/// The longest `notes` and `externalTransactionId` accepted.
const MAX_TEXT: usize = 1_000;
/// The most `affiliateIds` one request may name.
const MAX_AFFILIATE_IDS: usize = 10_000;

fn method(raw: &str) -> Result<PayoutMethod, ApiError> {
    enum_field("method", raw, PayoutMethod::parse, PayoutMethod::ALL, PayoutMethod::as_str)
}

fn date(field: &str, raw: Option<&str>) -> Result<Option<Date>, ApiError> {
    raw.map(|r| {
        Date::parse(r, format_description!("[year]-[month]-[day]"))
            .map_err(|_| ApiError::invalid(field, format!("{field} must be a date such as 2026-04-30")))
    })
    .transpose()
}

fn text(field: &str, raw: Option<String>) -> Result<Option<String>, ApiError> {
    match raw {
        Some(t) if t.chars().count() > MAX_TEXT => Err(ApiError::invalid(field, format!("{field} must be at most {MAX_TEXT} characters"))),
        Some(t) if t.contains('\0') => Err(ApiError::invalid(field, format!("{field} must not contain NUL"))),
        Some(t) if t.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn selection(
    method_raw: &str,
    affiliate_ids: Option<Vec<Uuid>>,
    period_start: Option<&str>,
    period_end: Option<&str>,
    currency: Option<&str>,
) -> Result<PayoutSelection, ApiError> {
    if affiliate_ids.as_ref().is_some_and(|ids| ids.len() > MAX_AFFILIATE_IDS) {
        return Err(ApiError::invalid("affiliateIds", format!("affiliateIds names at most {MAX_AFFILIATE_IDS} affiliates")));
    }
    let selection = PayoutSelection {
        method: method(method_raw)?,
        affiliate_ids: affiliate_ids.map(|ids| ids.into_iter().map(AffiliateId::from_uuid).collect()),
        period_start: date("periodStart", period_start)?,
        period_end: date("periodEnd", period_end)?,
        currency: currency
            .map(|c| Currency::parse(c).map_err(|e| ApiError::from(FieldError::coded("currency", "unsupported_currency", e.to_string()))))
            .transpose()?,
    };
    selection.validate()?;
    Ok(selection)
}

/// `POST /api/v1/payouts/preview`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewRequest {
    #[schema(value_type = PayoutMethodValue)]
    pub method: String,
    /// Only these affiliates; null or absent: everyone with a payable balance.
    pub affiliate_ids: Option<Vec<Uuid>>,
    /// Credits payable from this day (UTC), `YYYY-MM-DD`.
    pub period_start: Option<String>,
    /// Entries payable up to the end of this day (UTC); absent: up to now.
    pub period_end: Option<String>,
    /// The currency to pay (one per run); absent: the organization's home currency.
    #[schema(value_type = Option<CurrencyValue>)]
    pub currency: Option<String>,
}

impl PreviewRequest {
    pub(crate) fn into_domain(self) -> Result<PayoutSelection, ApiError> {
        selection(&self.method, self.affiliate_ids, self.period_start.as_deref(), self.period_end.as_deref(), self.currency.as_deref())
    }
}

/// `POST /api/v1/payouts/run`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunRequest {
    #[schema(value_type = PayoutMethodValue)]
    pub method: String,
    pub affiliate_ids: Option<Vec<Uuid>>,
    /// Must equal the server's total (the preview's `totalCents`), else 409.
    pub confirm_total_cents: i64,
    pub period_start: Option<String>,
    pub period_end: Option<String>,
    #[schema(value_type = Option<CurrencyValue>)]
    pub currency: Option<String>,
    /// Stored on every payout of the run (at most 1,000 characters).
    pub notes: Option<String>,
}

impl RunRequest {
    pub(crate) fn into_domain(self) -> Result<RunPayouts, ApiError> {
        if self.confirm_total_cents < 0 {
            return Err(ApiError::invalid("confirmTotalCents", "confirmTotalCents must not be negative"));
        }
        Ok(RunPayouts {
            selection: selection(
                &self.method,
                self.affiliate_ids,
                self.period_start.as_deref(),
                self.period_end.as_deref(),
                self.currency.as_deref(),
            )?,
            confirm_total_minor: self.confirm_total_cents,
            notes: text("notes", self.notes)?,
        })
    }
}

/// `POST /api/v1/payouts/{id}/mark-paid`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MarkPaidRequest {
    /// The payment's reference at PayPal, Wise or the bank.
    pub external_transaction_id: String,
    pub notes: Option<String>,
}

impl MarkPaidRequest {
    pub(crate) fn into_parts(self) -> Result<(String, Option<String>), ApiError> {
        let id = text("externalTransactionId", Some(self.external_transaction_id))?
            .ok_or_else(|| ApiError::invalid("externalTransactionId", "externalTransactionId must not be empty"))?;
        Ok((id, text("notes", self.notes)?))
    }
}

/// `GET /api/v1/payouts` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PayoutQuery {
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub take: Option<i64>,
    pub cursor: Option<String>,
    pub affiliate_id: Option<Uuid>,
    #[param(value_type = Option<PayoutStatusValue>, inline)]
    pub status: Option<String>,
    #[param(value_type = Option<PayoutMethodValue>, inline)]
    pub method: Option<String>,
}

impl PayoutQuery {
    pub(crate) fn filter(&self) -> Result<PayoutFilter, ApiError> {
        Ok(PayoutFilter {
            affiliate_id: self.affiliate_id.map(AffiliateId::from_uuid),
            status: self
                .status
                .as_deref()
                .map(|s| enum_field("status", s, PayoutStatus::parse, PayoutStatus::ALL, PayoutStatus::as_str))
                .transpose()?,
            method: self.method.as_deref().map(method).transpose()?,
        })
    }
}

/// `GET /api/v1/payouts/export.csv` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only `PayPal` (the PayPal Payouts bulk-upload format).
    #[param(value_type = PayoutMethodValue, inline)]
    pub method: String,
}

/// A line item: one ledger entry the payout pays.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineItemResponse {
    pub id: Uuid,
    pub conversion_id: Uuid,
    /// The entry's commission (negative for a clawback netted here).
    pub amount_cents: i64,
}

impl From<&PayoutLineItem> for LineItemResponse {
    fn from(i: &PayoutLineItem) -> Self {
        Self { id: i.id.as_uuid(), conversion_id: i.conversion_id.as_uuid(), amount_cents: i.amount_minor }
    }
}

/// A payout.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayoutResponse {
    pub id: Uuid,
    pub affiliate_id: Uuid,
    pub amount_cents: i64,
    #[schema(value_type = CurrencyValue)]
    pub currency: &'static str,
    #[schema(value_type = PayoutMethodValue)]
    pub method: &'static str,
    #[schema(value_type = PayoutStatusValue)]
    pub status: &'static str,
    pub stripe_transfer_id: Option<String>,
    pub external_transaction_id: Option<String>,
    pub notes: Option<String>,
    pub failure_reason: Option<String>,
    /// `YYYY-MM-DD`.
    pub period_start: Option<String>,
    /// `YYYY-MM-DD`.
    pub period_end: String,
    pub created_at: String,
    pub paid_at: Option<String>,
    pub failed_at: Option<String>,
    pub line_items: Vec<LineItemResponse>,
}

impl From<&PayoutView> for PayoutResponse {
    fn from(v: &PayoutView) -> Self {
        let p = &v.payout;
        Self {
            id: p.id.as_uuid(),
            affiliate_id: p.affiliate_id.as_uuid(),
            amount_cents: p.amount_minor,
            currency: p.currency.code(),
            method: p.method.as_str(),
            status: p.status.as_str(),
            stripe_transfer_id: p.stripe_transfer_id.as_ref().map(|t| t.as_str().to_owned()),
            external_transaction_id: p.external_transaction_id.clone(),
            notes: p.notes.clone(),
            failure_reason: p.failure_reason.clone(),
            period_start: p.period_start.map(|d| d.to_string()),
            period_end: p.period_end.to_string(),
            created_at: ts(p.created_at),
            paid_at: ts_opt(p.paid_at),
            failed_at: ts_opt(p.failed_at),
            line_items: v.line_items.iter().map(LineItemResponse::from).collect(),
        }
    }
}

/// A preview candidate.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CandidateResponse {
    pub affiliate_id: Uuid,
    pub amount_cents: i64,
    pub line_item_count: usize,
    pub is_eligible: bool,
    #[schema(value_type = Option<IneligibilityValue>)]
    pub ineligibility_reason: Option<&'static str>,
}

impl From<&CandidateView> for CandidateResponse {
    fn from(c: &CandidateView) -> Self {
        Self {
            affiliate_id: c.affiliate_id.as_uuid(),
            amount_cents: c.amount_minor,
            line_item_count: c.line_item_count,
            is_eligible: c.ineligible.is_none(),
            ineligibility_reason: c.ineligible.map(|r| r.as_str()),
        }
    }
}

/// `POST /api/v1/payouts/preview` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewResponse {
    /// The sum of the eligible candidates: send it as the run's `confirmTotalCents`.
    pub total_cents: i64,
    #[schema(value_type = CurrencyValue)]
    pub currency: &'static str,
    pub eligible_count: usize,
    pub ineligible_count: usize,
    pub candidates: Vec<CandidateResponse>,
}

impl From<&PayoutPreview> for PreviewResponse {
    fn from(p: &PayoutPreview) -> Self {
        Self {
            total_cents: p.total_minor,
            currency: p.currency.code(),
            eligible_count: p.eligible_count,
            ineligible_count: p.ineligible_count,
            candidates: p.candidates.iter().map(CandidateResponse::from).collect(),
        }
    }
}

/// Where an affiliate is paid.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayoutAccountResponse {
    pub affiliate_id: Uuid,
    pub stripe_account_id: Option<String>,
    /// Whether Stripe lets the account receive payouts.
    pub payouts_enabled: bool,
    /// Whether the affiliate finished Stripe's onboarding.
    pub details_submitted: bool,
    pub paypal_email: Option<String>,
    pub wise_email: Option<String>,
    pub updated_at: String,
}

impl From<&PayoutAccount> for PayoutAccountResponse {
    fn from(a: &PayoutAccount) -> Self {
        Self {
            affiliate_id: a.affiliate_id.as_uuid(),
            stripe_account_id: a.stripe_account_id.as_ref().map(|s| s.as_str().to_owned()),
            payouts_enabled: a.payouts_enabled,
            details_submitted: a.details_submitted,
            paypal_email: a.paypal_email.as_ref().map(|e| e.as_str().to_owned()),
            wise_email: a.wise_email.as_ref().map(|e| e.as_str().to_owned()),
            updated_at: ts(a.updated_at),
        }
    }
}

/// `POST /api/me/payout-account/stripe` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnboardingResponse {
    pub account: PayoutAccountResponse,
    /// Stripe's onboarding page (single-use; ask again for a fresh one).
    pub onboarding_url: String,
    pub expires_at: String,
}

/// `POST /api/me/payout-account/stripe` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectStripeRequest {
    /// The caller's membership to connect.
    pub affiliate_id: Uuid,
}

/// `GET /api/me/payout-account` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MyAccountQuery {
    /// The caller's membership.
    pub affiliate_id: Uuid,
}

/// `PUT /api/v1/affiliates/{id}/payout-account` body: every field replaces the stored one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordAccountRequest {
    /// An existing Stripe account connected to this installation's platform account.
    pub stripe_account_id: Option<String>,
    pub paypal_email: Option<String>,
    pub wise_email: Option<String>,
}

impl RecordAccountRequest {
    pub(crate) fn into_domain(self) -> Result<RecordPayoutAccount, ApiError> {
        let email = |field: &str, raw: Option<String>| raw.map(|e| Email::parse(field, &e)).transpose();
        Ok(RecordPayoutAccount {
            stripe_account_id: self
                .stripe_account_id
                .map(|s| {
                    s.parse().map_err(|e: rekomi_domain::kernel::stripe_ids::InvalidStripeId| {
                        ApiError::invalid("stripeAccountId", e.to_string())
                    })
                })
                .transpose()?,
            paypal_email: email("paypalEmail", self.paypal_email)?,
            wise_email: email("wiseEmail", self.wise_email)?,
        })
    }
}
