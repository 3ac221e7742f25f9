//! Postern's outbox: send requests become durable queue items, and workers deliver them over SMTP
//! with OAuth2 or passwords, retrying what may succeed later and never losing a message.
//!
//! ```no_run
//! # async fn demo(
//! #     store: postern_store::Store,
//! #     vault: std::sync::Arc<postern_vault::Vault>,
//! #     tokens: postern_auth::token_manager::TokenManager,
//! #     account_id: postern_store::AccountId,
//! # ) -> Result<(), postern_outbox::SubmitError> {
//! use postern_outbox::{OutboxConfig, OutboxService, SendRequest};
//!
//! let outbox = OutboxService::new(store, vault, tokens, OutboxConfig::default());
//! let (stop, shutdown) = tokio::sync::watch::channel(false);
//! let workers = outbox.spawn_workers(shutdown);
//! let request = SendRequest {
//!     to: vec!["bob@example.com".into()],
//!     subject: Some("Hello".into()),
//!     text: Some("Hi Bob".into()),
//!     ..SendRequest::default()
//! };
//! let queued = outbox.submit(&account_id, request, Some("order-42".into()), None).await?;
//! println!("{} queued as <{}>", queued.id, queued.message_id);
//! let _ = stop.send(true);
//! workers.join().await;
//! # Ok(()) }
//! ```
//!
//! The parts, from the request down to the wire:
//!
//! - [`compose`] (pure): a structured [`SendRequest`] checked field by field and built with
//!   mail-builder, or a [`RawRequest`] taken as given ([`raw`]); Bcc only in the envelope.
//! - [`service`]: [`OutboxService`] queues in the store (`postern_store::Outbox`) before
//!   answering, honours idempotency keys and schedules, and starts the workers.
//! - `worker`: claims due items under a lease, applies the account's [`policy`] (its settings,
//!   else its provider's [`presets`], else [`OutboxConfig`]): the daily limit counted from the
//!   store (`daily`) and the per-minute [`rate`]; an item over either waits in the queue. It
//!   sends, and records the outcome with back-off; `message.sent` / `message.failed` are
//!   appended in the same transaction as the status.
//! - `sender`: the login for an account (one token refresh when the server rejects the token)
//!   and pooled connections per account.
//! - [`sent_copy`]: after a send, the same bytes are appended (`\Seen`) to the account's Sent
//!   mailbox over IMAP, unless the provider files a copy itself (Gmail); best effort.
//! - [`smtp`]: the SMTP client (implicit TLS or STARTTLS over tokio-rustls, SASL through
//!   `postern-auth`, per-recipient replies, dot-stuffing); [`classify`] (pure) says what its
//!   replies mean.
//!
//! Non-goals for now: DSN parameters, recipient-based limits (daily limits count messages), and
//! HTTP (the API crate maps the service's types).
//!
//! Key decision: delivery is at least once. A message is committed to the store before the
//! caller hears "queued", a claim is a lease that expires when a worker dies, and a retry only
//! goes to the recipients that did not accept it yet. The one duplicate left is a crash between
//! the server's acceptance and the local commit; it carries the same Message-ID.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod address;
pub mod classify;
pub mod compose;
mod config;
mod daily;
pub mod error;
pub mod policy;
mod pool;
pub mod presets;
pub mod rate;
pub mod raw;
mod sender;
pub mod sent_copy;
pub mod service;
pub mod smtp;
pub mod tls;
mod worker;

pub use classify::Outcome;
pub use compose::{
    Address, Attachment, Composed, EnvelopeInput, InReplyTo, RawRequest, SendRequest, Submission,
    compose, compose_submission,
};
pub use config::OutboxConfig;
pub use daily::{DAILY_WINDOW, IN_FLIGHT_RECHECK};
pub use error::{CancelError, SentCopyError, SmtpError, Stage, SubmitError};
pub use policy::SendPolicy;
pub use presets::{PROVIDER_PRESETS, ProviderPreset, provider_preset};
pub use rate::RateLimit;
pub use sent_copy::{SentCopy, provider_saves_sent};
pub use service::{OutboxService, QueuedItem, Workers};
pub use smtp::{SmtpEndpoint, SmtpSession, SmtpTimeouts, Transaction};
