//! The spec's error envelope, `{ "error", "message", "field" }`, for every 4xx and 5xx.
//! Domain errors map onto it here; 5xx bodies are opaque and their cause is logged once.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use rekomi_domain::kernel::error::{DomainError, FieldError};
use rekomi_domain::ports::gateway::GatewayError;
use rekomi_domain::ports::store::StoreError;
use rekomi_domain::tracking::{S2sError, SignatureRefusal};
use serde::Serialize;

/// An HTTP error answered with the spec's envelope. Boxed so `Result<_, ApiError>` stays one
/// pointer wide on the happy path.
#[derive(Debug, Clone)]
pub struct ApiError(Box<Inner>);

#[derive(Debug, Clone)]
struct Inner {
    status: StatusCode,
    code: String,
    message: String,
    field: Option<String>,
    plan: Option<PlanBody>,
    retry_after: Option<u64>,
    invalid: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
struct PlanBody {
    required: &'static str,
    current: &'static str,
    trialing: bool,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    plan: Option<&'a PlanBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invalid: Option<&'a [String]>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        debug_assert!(
            crate::catalogue::entry(code).is_some_and(|e| e.status == status.as_u16()),
            "error code {code} with status {status} is not in the catalogue (crates/rekomi-http/src/catalogue.rs)"
        );
        Self(Box::new(Inner {
            status,
            code: code.to_owned(),
            message: message.into(),
            field: None,
            plan: None,
            retry_after: None,
            invalid: None,
        }))
    }

    /// A 400 `validation_failed` on `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_failed", message).with_field(field)
    }

    /// Names the field at fault.
    pub fn with_field(mut self, field: &str) -> Self {
        if !field.is_empty() {
            self.0.field = Some(field.to_owned());
        }
        self
    }

    /// Lists the rejected entries of a list field (`invalid`).
    pub fn with_invalid(mut self, entries: Vec<String>) -> Self {
        self.0.invalid = Some(entries);
        self
    }

    /// A 401.
    pub fn unauthorized(code: &str, message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// A 429 with `Retry-After`.
    pub fn rate_limited(retry_after: u64) -> Self {
        Self::rate_limited_because(retry_after, "rate limit of 600 requests per minute exceeded")
    }

    /// A 429 with `Retry-After` and its own message.
    pub fn rate_limited_because(retry_after: u64, message: &str) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
        e.0.retry_after = Some(retry_after.max(1));
        e
    }

    /// A 404 with a specific code.
    pub fn not_found(code: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, "not found")
    }

    /// A 500 whose cause is logged here, once, and never sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error.cause = %cause, "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "an internal error occurred")
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The code.
    pub fn code(&self) -> &str {
        &self.0.code
    }

    /// The field at fault, when one is named.
    pub fn field(&self) -> Option<&str> {
        self.0.field.as_deref()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.0.status.as_u16(), self.0.code, self.0.message)
    }
}

impl ApiError {
    fn envelope(&self) -> Envelope<'_> {
        let e = &self.0;
        Envelope { error: &e.code, message: &e.message, field: e.field.as_deref(), plan: e.plan.as_ref(), invalid: e.invalid.as_deref() }
    }

    /// The envelope as JSON text, for answers that are stored and replayed (idempotency keys).
    pub fn body_json(&self) -> String {
        serde_json::to_string(&self.envelope()).unwrap_or_default()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.0.status);
        if let Some(secs) = self.0.retry_after {
            builder.insert_header((header::RETRY_AFTER, secs.to_string()));
            builder.insert_header(("X-RateLimit-Remaining", "0"));
        }
        builder.json(self.envelope())
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, e.code, e.message).with_field(&e.field)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => {
                tracing::warn!(error.cause = %cause, "store unavailable");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", "the service is temporarily unavailable; retry shortly")
            }
            other => Self::internal(&other),
        }
    }
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::Rejected { message, param, .. } => {
                // Stripe refuses what the caller asked for (an unknown customer, a minimum amount
                // below its floor): a client error, named with the API's own field where one maps.
                tracing::info!(stripe.message = %message, "stripe rejected a request");
                let err = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "payment_provider_rejected",
                    format!("Stripe refused the request: {message}"),
                );
                match param.as_deref().and_then(api_field_of_stripe_param) {
                    Some(field) => err.with_field(field),
                    None => err,
                }
            }
            GatewayError::NotFound => {
                Self::new(StatusCode::BAD_GATEWAY, "stripe_request_failed", "Stripe does not know the referenced object")
            }
            GatewayError::Unavailable(cause) => {
                tracing::warn!(error.cause = %cause, "stripe unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "stripe_unavailable",
                    "Stripe is unavailable; Rekomi finishes this record automatically once Stripe answers (retrying the same vanity code resumes it)",
                )
            }
            GatewayError::Unknown(cause) => Self::internal(&cause),
        }
    }
}

/// The API field behind a Stripe request parameter.
fn api_field_of_stripe_param(param: &str) -> Option<&'static str> {
    Some(match param {
        "code" => "code",
        "customer" => "customerId",
        "max_redemptions" => "maxRedemptions",
        "expires_at" => "expiresAt",
        "redeem_by" => "expiresAt",
        "restrictions[minimum_amount]" => "minimumAmount",
        "restrictions[minimum_amount_currency]" | "currency" => "minimumAmountCurrency",
        "restrictions[first_time_transaction]" => "firstTimeOrder",
        "amount_off" | "percent_off" => "discountValue",
        "duration_in_months" => "durationInMonths",
        "name" => "name",
        _ => return None,
    })
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Validation(f) => f.into(),
            DomainError::NotFound(code) => Self::not_found(code),
            DomainError::Conflict { code, message } => Self::new(StatusCode::CONFLICT, code, message),
            DomainError::Unprocessable { code, message, field } => {
                let err = Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message);
                match field {
                    Some(f) => err.with_field(&f),
                    None => err,
                }
            }
            DomainError::Forbidden { code, message } => Self::new(StatusCode::FORBIDDEN, code, message),
            DomainError::PlanRequired(p) => {
                let mut err = Self::new(StatusCode::PAYMENT_REQUIRED, "plan_tier_required", p.to_string());
                err.0.plan = Some(PlanBody { required: p.required.as_str(), current: p.current.as_str(), trialing: p.trialing });
                err
            }
            DomainError::Gateway(g) => g.into(),
            DomainError::Store(s) => s.into(),
        }
    }
}

impl From<S2sError> for ApiError {
    fn from(e: S2sError) -> Self {
        match e {
            S2sError::Signature(refusal) => {
                let code = match refusal {
                    SignatureRefusal::Missing => "signature_missing",
                    SignatureRefusal::Malformed => "signature_malformed",
                    SignatureRefusal::NoSecret => "tracking_secret_not_set",
                    SignatureRefusal::Mismatch => "signature_mismatch",
                    SignatureRefusal::Expired => "signature_expired",
                };
                Self::new(StatusCode::UNAUTHORIZED, code, refusal.to_string())
            }
            S2sError::Domain(e) => e.into(),
        }
    }
}

/// Handler results.
pub type ApiResult<T> = Result<T, ApiError>;
