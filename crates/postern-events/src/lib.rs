//! Postern's event-log readers: signed webhook delivery with retries, and the pull stream.
//!
//! The event log (`postern-store`'s `Events`) is written by the sync engine, the token manager and
//! the outbox, each in the transaction of the change it announces. This crate reads it:
//!
//! - [`WebhookService`]: webhooks (URL, event patterns, optional account binding, a signing secret
//!   sealed by the vault), test events, the delivery log and redelivery, and
//!   [`WebhookService::spawn_workers`], one delivery task per webhook.
//! - [`EventStream`]: `events_after(after, limit, scope, wait)`, the long-poll core of
//!   `GET /v1/events`.
//! - [`signature`]: `Postern-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`, with
//!   [`signature::verify`] for receivers and the check they must make.
//!
//! ```no_run
//! # async fn demo(store: postern_store::Store, vault: std::sync::Arc<postern_vault::Vault>)
//! # -> Result<(), postern_events::WebhookError> {
//! use std::sync::Arc;
//! use postern_events::{NewWebhookInput, WebhookConfig, WebhookService};
//! use tokio::sync::{Notify, watch};
//!
//! let wake = Arc::new(Notify::new()); // appenders call `wake.notify_waiters()` after a commit
//! let service = WebhookService::new(store, vault, WebhookConfig::default(), wake.clone())?;
//! let (stop, shutdown) = watch::channel(false);
//! let workers = service.spawn_workers(shutdown);
//! let created = service
//!     .create(NewWebhookInput {
//!         url: "https://hooks.example.com/postern".into(),
//!         events: vec!["message.new".into(), "account.*".into()],
//!         account_ids: None,
//!         secret: None,
//!         enabled: None,
//!     })
//!     .await?;
//! // show `created.secret` to the caller once
//! # let _ = created;
//! let _ = stop.send(true);
//! let _ = workers.await;
//! # Ok(())
//! # }
//! ```
//!
//! Guarantees: each event a webhook wants is delivered at least once (receivers deduplicate by the
//! `Postern-Event-Id` header or the body's `id`); events of one account arrive in log order, a
//! later one never before an earlier one was delivered or declared dead; failures are retried
//! with exponential backoff and jitter for `max_age` (24 h by default), then the delivery is dead
//! until redelivered; a slow or failing receiver delays only its own webhook.
//!
//! Non-goals: HTTP routes (the API's), event retention, and producing events.
//! Key decision: the store's cursor-plus-deliveries tables, not memory, hold every piece of
//! delivery state, so a restart resumes exactly where it stopped; memory holds only tasks.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod delivery;
mod error;
pub mod filter;
mod input;
mod payload;
pub mod retry;
mod service;
pub mod signature;
pub mod ssrf;
mod stream;

pub use config::WebhookConfig;
pub use error::{FieldError, SignatureError, TargetError, WebhookError};
pub use input::{NewWebhookInput, WebhookUpdateInput};
pub use payload::EventBody;
pub use service::{CreatedWebhook, MAX_DELIVERY_PAGE, WebhookService};
pub use stream::{AccountScope, EventPage, EventStream, MAX_PAGE, MAX_WAIT};
