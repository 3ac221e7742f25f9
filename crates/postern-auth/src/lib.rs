//! Authentication for Postern's mail connections.
//!
//! This crate is where an account's credentials become something a mail server accepts. It is meant to
//! hold four parts:
//!
//! - **OAuth2 apps and provider presets** ([`presets`]): the known endpoints, scopes and mail-server facts
//!   of Google, Microsoft and Yahoo (see `PROVIDERS.md`), and the checking of an operator's app definition.
//! - **Flows** ([`oauth`]): authorization code with PKCE and `state`, refresh, device code, client
//!   credentials, revocation, with every provider error classified (retry, re-authorize, fix the app).
//! - **Grant flows** ([`flows`]): the authorization-code flow split around the browser (state and
//!   PKCE verifier kept single-use in the store), the device flow and app-only access, each ending
//!   with the tokens sealed in the store.
//! - **The token manager** ([`token_manager`]): proactive and reactive refresh, one refresh at a time per
//!   account, persisting a rotated refresh token before the new access token is used.
//! - **SASL** ([`sasl`]): the XOAUTH2, OAUTHBEARER, PLAIN and LOGIN byte strings, the decoding of the
//!   server's OAuth error challenge, and a sans-I/O exchange that IMAP and SMTP code drive.
//!
//! Non-goal: talking to mail servers. Sockets live in the IMAP and SMTP crates; this crate hands them bytes
//! and interprets the bytes they get back. The only network calls here are to OAuth endpoints ([`oauth`]).
//!
//! Key decision: secrets cross this crate only inside `secrecy` types (`SecretString`, `SecretBox`), and
//! are exposed at the last moment, while building the bytes that go on the wire.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod context;
pub mod error;
pub mod flows;
pub mod oauth;
pub mod presets;
pub mod sasl;
#[cfg(feature = "testing")]
pub mod testing;
pub mod token_manager;

pub use error::{FieldError, OAuthError, Rejection, SaslError};
