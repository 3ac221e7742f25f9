//! The IMAP side of Postern: connections, the per-account supervisor, initial and incremental sync, IDLE.
//!
//! Today only the **connection layer** exists, the part the sync engine is built on:
//!
//! - [`conn`]: [`connect`] an [`ImapEndpoint`] (implicit TLS, STARTTLS, or plaintext to loopback only)
//!   and [`authenticate`] with a [`Login`] (OAuth XOAUTH2 / OAUTHBEARER or a password), every step under
//!   a [`Timeouts`] bound.
//! - [`tls`]: the rustls configuration per trust setting (webpki roots, or only a configured CA file).
//! - [`session`]: the authenticated [`ImapSession`], its [`Capabilities`], an INBOX health check.
//! - [`error`]: [`ImapError`], classified for the supervisor (`is_transient`, `token_rejected`,
//!   `insufficient_scope`, `untrusted_certificate`).
//!
//! ```no_run
//! use postern_sync::{Login, OAuthMechanism, ImapEndpoint, Security, Timeouts, authenticate, connect};
//! # async fn demo(token: secrecy::SecretString) -> Result<(), postern_sync::ImapError> {
//! let endpoint = ImapEndpoint::new("imap.gmail.com", 993, Security::Tls);
//! let client = connect(&endpoint, &Timeouts::default()).await?;
//! let login = Login::OAuth {
//!     user: "alice@gmail.com".into(),
//!     token,
//!     mechanism: OAuthMechanism::XOAuth2,
//! };
//! match authenticate(client, &login).await {
//!     Ok(mut session) => {
//!         let inbox = session.select_inbox_check().await?;
//!         println!("{} messages", inbox.exists);
//!         session.logout().await?;
//!     }
//!     Err(error) if error.token_rejected() => { /* refresh the token once, reconnect, retry */ }
//!     Err(error) => return Err(error),
//! }
//! # Ok(()) }
//! ```
//!
//! Non-goal: talking to the store or the token manager. This crate gets endpoints and credentials handed
//! in and reports typed errors; deciding to refresh, back off or mark an account belongs to its callers
//! (the supervisor, later in this crate, and `postern-auth`'s token manager).
//!
//! Key decision: async-imap does the protocol work, wrapped so that no caller sees its quirks (no STARTTLS,
//! untyped `NO` text, SASL error challenges, no timeouts); `postern-auth` builds every SASL byte.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod account;
pub mod capabilities;
pub mod conn;
pub mod engine;
pub mod error;
pub mod login;
mod response;
pub mod session;
pub mod tls;

pub use capabilities::Capabilities;
pub use conn::{
    BoxedStream, ImapClient, ImapEndpoint, Security, Timeouts, Transport, authenticate, connect,
};
pub use engine::{
    BodiesMode, MailboxSelection, NoObserver, SyncObserver, SyncOptions, SyncReport, SyncWindow,
    sync_account, sync_mailbox,
};
pub use error::{ImapError, Stage, SyncError, TlsFailure};
pub use login::{Login, LoginMethod, OAuthMechanism};
pub use session::{ImapSession, InboxCheck};
