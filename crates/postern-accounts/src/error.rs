//! The account service's errors: each variant says what the caller can do about it.
//!
//! Non-goal: HTTP status codes; the API maps variants to them.

use postern_auth::flows::FlowError;
use postern_auth::token_manager::TokenError;
use postern_store::StoreError;

/// One wrong field of a request, for field-level error details.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field, e.g. `imap.security` or `auth.app_id`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why an account-service operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// Occurs when the request has wrong fields; nothing was stored.
    #[error("the request is invalid: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// Occurs when the account or app does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// Occurs when an app is still used by accounts.
    #[error("{0}")]
    InUse(String),
    /// Occurs when the mail server refused the credentials; nothing was stored (password accounts)
    /// or the account records the failure (OAuth accounts).
    #[error("the mail server refused the login: {reason}")]
    LoginRefused {
        /// The server's words, decoded.
        reason: String,
    },
    /// Occurs when the mail server could not be reached or failed; trying later may help.
    #[error("could not reach the mail server: {reason}")]
    MailServerUnavailable {
        /// What failed.
        reason: String,
    },
    /// Occurs when the operation does not apply to the account (e.g. re-authorizing a password account).
    #[error("{0}")]
    NotApplicable(String),
    /// Occurs when an OAuth flow fails (a bad callback, a declined consent, a refused exchange).
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// Occurs when no access token could be had.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Occurs when the store fails.
    #[error(transparent)]
    Store(StoreError),
    /// Occurs when a secret cannot be sealed or opened.
    #[error(transparent)]
    Vault(#[from] postern_vault::VaultError),
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { what } => ServiceError::NotFound(what),
            StoreError::InUse { what, count } => ServiceError::InUse(format!(
                "{what} is still used by {count} account(s); remove them first"
            )),
            other => ServiceError::Store(other),
        }
    }
}
