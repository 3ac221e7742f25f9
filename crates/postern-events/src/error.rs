//! The errors of `postern-events`: one enum per kind of caller.
//!
//! Purpose: let the API tell a caller's mistake ([`WebhookError::Invalid`], [`WebhookError::NotFound`])
//! from Postern's own trouble ([`WebhookError::Store`]), and let a webhook receiver tell why a
//! signature was refused ([`SignatureError`]).
//! Non-goal: HTTP statuses; `postern-api` maps the variants.
//! Key decision: a refused target URL ([`TargetError`]) names the host and the address range, never
//! the whole URL, because a URL's query string may carry a receiver's credentials.

use std::net::IpAddr;

use postern_store::StoreError;
use postern_vault::VaultError;

/// One wrong field of a request, for field-level error details.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field, e.g. `url` or `events[2]`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why a webhook-service operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// Occurs when the request has wrong fields (a bad URL, a refused target, an unknown event
    /// pattern, a short secret); nothing was stored. Every problem is listed.
    #[error("the request is invalid: {}", describe_fields(.0))]
    Invalid(Vec<FieldError>),

    /// Occurs when the webhook or the delivery does not exist (or the id is not a valid id).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `webhook 0190…`.
        what: String,
    },

    /// Occurs when a test delivery is asked of a disabled webhook; enable it first.
    #[error("webhook {id} is disabled; enable it before sending a test")]
    Disabled {
        /// The webhook's id.
        id: String,
    },

    /// Occurs when a webhook's signing secret is missing from the store (corrupt data).
    #[error("the signing secret of webhook {id} is missing")]
    MissingSecret {
        /// The webhook's id.
        id: String,
    },

    /// Occurs when the store fails.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// Occurs when a secret cannot be opened (wrong master key, corrupt ciphertext).
    #[error(transparent)]
    Vault(#[from] VaultError),

    /// Occurs when the HTTP client cannot be built (the TLS backend failed to start).
    #[error("cannot build the webhook HTTP client")]
    HttpClient(#[source] reqwest::Error),
}

fn describe_fields(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|error| format!("{}: {}", error.field, error.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a webhook target URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// Occurs when the URL does not parse, is not `http`/`https`, has no host, or carries a user
    /// name or password (they would be stored and listed in clear; use the signing secret).
    #[error("invalid webhook URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Occurs when the host is, or resolves to, a loopback, private, link-local or otherwise
    /// internal address and private targets are not allowed (`webhooks.allow_private_targets`).
    #[error(
        "{host} resolves to {address}, a {range} address; webhooks may not target internal \
         networks unless webhooks.allow_private_targets is set"
    )]
    PrivateAddress {
        /// The host as written in the URL.
        host: String,
        /// The refused address.
        address: IpAddr,
        /// The kind of range, e.g. `loopback`.
        range: &'static str,
    },

    /// Occurs when the host name does not resolve to any address.
    #[error("cannot resolve {host}: {reason}")]
    Unresolvable {
        /// The host as written in the URL.
        host: String,
        /// The resolver's words.
        reason: String,
    },
}

/// Why [`crate::signature::verify`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// Occurs when the header is not `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`.
    #[error("malformed Postern-Signature header: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Occurs when the timestamp is further from now than the tolerance (a replayed or delayed
    /// request, or a clock that is off).
    #[error("the signature timestamp is {age_secs} s away from now (tolerance {tolerance_secs} s)")]
    Stale {
        /// How far the timestamp is from now, in seconds (absolute).
        age_secs: u64,
        /// The accepted distance.
        tolerance_secs: u64,
    },

    /// Occurs when no `v1` signature matches the body and secret.
    #[error("no signature matches the body")]
    Mismatch,
}
