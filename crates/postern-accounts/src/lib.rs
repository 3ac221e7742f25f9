//! Postern's account service: OAuth apps and mail accounts, from an API request to a verified
//! connection, and back out again.
//!
//! The API and the CLI call this crate; it orchestrates the layers below: the OAuth flows and the
//! token manager (`postern-auth`), the IMAP login that proves a grant or a password really works
//! (`postern-sync`), and persistence (`postern-store`, secrets sealed by `postern-vault`).
//!
//! - [`apps`]: register an OAuth client from a provider preset, list it, remove it.
//! - [`accounts`]: create an account (starting authorization for OAuth2, verifying the login for a
//!   password or app-only account), finish the browser callback, re-authorize, remove (revoking the
//!   grant at the provider first).
//!
//! Non-goal: HTTP. Inputs are plain structs the API deserializes into; errors carry enough for the API
//! to pick a status and field-level details ([`ServiceError`]).
//!
//! Key decision: an account becomes `connected` only after a real IMAP login with its credentials
//! succeeded; storing tokens is not proof that a mail server accepts them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod accounts;
pub mod apps;
mod error;
mod input;

pub use accounts::{AccountService, CreatedAccount, DEFAULT_ACTOR};
pub use error::{FieldError, ServiceError};
pub use input::{AuthInput, EndpointInput, NewAccountInput, NewAppInput};
