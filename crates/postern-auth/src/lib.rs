//! Authentication for Postern's mail connections.
//!
//! This crate is where an account's credentials become something a mail server accepts. It is meant to
//! hold four parts:
//!
//! - **OAuth2 apps and provider presets**: the client registrations an operator adds, and the known
//!   endpoints and scopes of Google, Microsoft and Yahoo (see `PROVIDERS.md`).
//! - **Flows**: authorization code with PKCE and `state`, device code, client credentials.
//! - **The token manager**: proactive and reactive refresh, one refresh at a time per account, persisting a
//!   rotated refresh token before the new access token is used.
//! - **SASL** ([`sasl`]): the XOAUTH2, OAUTHBEARER, PLAIN and LOGIN byte strings, the decoding of the
//!   server's OAuth error challenge, and a sans-I/O exchange that IMAP and SMTP code drive.
//!
//! Only the SASL part exists today; the others follow.
//!
//! Non-goal: talking to mail servers. Sockets live in the IMAP and SMTP crates; this crate hands them bytes
//! and interprets the bytes they get back, so everything here is testable without a network.
//!
//! Key decision: secrets cross this crate only inside `secrecy` types (`SecretString`, `SecretBox`), and
//! are exposed at the last moment, while building the bytes that go on the wire.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod sasl;

pub use error::SaslError;
