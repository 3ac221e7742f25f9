//! The IMAP side of Postern: connections, the per-account supervisor, initial and incremental sync, IDLE.
//!
//! Three layers, top down.
//!
//! The **supervisors**, [`supervisor`]: a [`SyncService`] owns one task per account that opens a
//! session, runs the first pass, then keeps the account in step (IDLE on INBOX, a periodic resync,
//! reconnects with back-off) and moves its state `connecting` → `syncing` → `connected` / `error`.
//!
//! The **sync engine**, [`engine`]: [`sync_account`] runs one pass over an account on a session,
//! bringing the store's mailboxes and messages (with their events) in step with the server, resumable
//! batch by batch. Its decisions are pure functions ([`engine::plan`], [`engine::discovery`],
//! [`engine::interpret`], [`engine::parse`]), tested without sockets.
//!
//! The **connection layer**, which the engine is built on:
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
//! Non-goal: deciding which accounts run. The connection layer gets endpoints and credentials handed
//! in and reports typed errors; the engine is handed a logged-in session and the store, and reports
//! [`SyncError`]; the supervisor decides what happens next (with `postern-auth`'s token manager for
//! tokens); the caller of [`SyncService`] decides which accounts to start and stop.
//!
//! Key decision: async-imap does the protocol work, wrapped so that no caller sees its quirks (no STARTTLS,
//! untyped `NO` text, SASL error challenges, no timeouts); `postern-auth` builds every SASL byte.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod account;
pub mod append;
pub mod capabilities;
pub mod conn;
pub mod engine;
pub mod error;
pub mod login;
pub mod metrics;
pub mod ops;
mod response;
pub mod session;
pub mod supervisor;
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
pub use supervisor::{AccountProgress, ServiceError, SyncConfig, SyncLag, SyncService};
