//! The error every use case returns. Variants map one-to-one onto the spec's HTTP statuses
//! (400, 402, 403, 404, 409, 422, 502/503, 500) in the HTTP adapter; the `code` strings are the
//! spec's `error` values.

use crate::kernel::plan::PlanRequired;
use crate::ports::{GatewayError, StoreError};

/// A request value at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The request field (camelCase, as the API names it).
    pub field: String,
    /// The spec's error code, e.g. `validation_failed` or `unsupported_currency`.
    pub code: &'static str,
    /// What is wrong, for a human.
    pub message: String,
}

impl FieldError {
    /// A `validation_failed` error on `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self { field: field.to_owned(), code: "validation_failed", message: message.into() }
    }

    /// An error with a specific code on `field`.
    pub fn coded(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self { field: field.to_owned(), code, message: message.into() }
    }
}

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The request breaks a validation rule (400).
    #[error(transparent)]
    Validation(#[from] FieldError),
    /// The entity does not exist in the caller's organization (404). The payload is the
    /// spec's code, e.g. `program_not_found`.
    #[error("{0}")]
    NotFound(&'static str),
    /// The request conflicts with current state (409).
    #[error("{message}")]
    Conflict {
        /// e.g. `coupon_has_codes`.
        code: &'static str,
        /// For a human.
        message: String,
    },
    /// The request is well-formed but cannot be applied (422), e.g. `code_already_taken`.
    #[error("{message}")]
    Unprocessable {
        /// e.g. `code_already_taken`.
        code: &'static str,
        /// For a human.
        message: String,
        /// The field at fault.
        field: Option<String>,
    },
    /// The caller may not do this (403).
    #[error("{message}")]
    Forbidden {
        /// e.g. `insufficient_role`.
        code: &'static str,
        /// For a human.
        message: String,
    },
    /// The organization's plan does not include this (402).
    #[error(transparent)]
    PlanRequired(#[from] PlanRequired),
    /// Stripe failed (502 when it refused, 503 when unreachable).
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// Storage failed (503 when unavailable, 500 otherwise).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DomainError {
    /// A 409 with `code`.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }

    /// A 403 for a role the caller lacks.
    pub fn insufficient_role(required: &str) -> Self {
        Self::Forbidden { code: "insufficient_role", message: format!("this action requires the {required} role") }
    }
}
