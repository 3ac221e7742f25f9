//! Postern's persistence layer: one small repository trait per aggregate, behind a [`Store`] handle.
//!
//! ```no_run
//! # async fn demo() -> Result<(), postern_store::StoreError> {
//! use postern_store::{NewEvent, Store};
//!
//! let store = Store::open("sqlite:///var/lib/postern/postern.db").await?;
//! let event = store
//!     .events()
//!     .append(NewEvent {
//!         account_id: Some("acc-1".into()),
//!         kind: "account.connected".into(),
//!         payload: serde_json::json!({ "ok": true }),
//!     })
//!     .await?;
//! let newer = store.events().list_after(event.id.0 - 1, 100, None).await?;
//! # let _ = newer;
//! # Ok(())
//! # }
//! ```
//!
//! Purpose: durable state for the server — API tokens, vault keys, sealed secrets, the event log,
//! OAuth apps, accounts (with their per-account settings), their OAuth2 grants and pending authorizations, mailboxes and messages
//! (with their sync cursors), the outbox of messages to send (with leases) — with migrations
//! applied at open and a refusal to open a database a newer Postern migrated.
//! Non-goals: no network I/O, no cryptography (secrets arrive already sealed by `postern-vault`),
//! no business rules beyond what keeps the data consistent.
//! Key decision: callers only see [`Store`] and the `&dyn` repository traits; everything that knows
//! the database is SQLite lives in the private `sqlite` module, so PostgreSQL can be added later as
//! another backend without changing a caller. SQL is written for the runtime query API (no
//! compile-time `query!` macros), so building needs no database.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ids;

mod account_settings;
mod accounts;
mod api_tokens;
mod audit;
mod authorizations;
mod error;
mod events;
mod expiry;
mod grants;
mod mailboxes;
mod messages;
mod oauth_apps;
mod outbox;
mod prepared;
mod schema;
mod search;
mod secrets;
mod sqlite;
mod store;
mod vault_keys;
mod webhooks;

pub use account_settings::{AccountSettings, SentCopyMode};
pub use accounts::{
    Account, AccountAuth, AccountId, AccountState, Accounts, Endpoint, NewAccount, SaslMechanism,
    Security, Transition, TransitionOutcome,
};
pub use api_tokens::{ApiToken, ApiTokenId, ApiTokens, NewApiToken};
pub use audit::{
    ACTOR_BROWSER, ACTOR_CLI, ACTOR_SYSTEM, Audit, AuditAction, AuditEntry, AuditId, AuditOutcome,
    AuditQuery, NewAuditEntry,
};
pub use authorizations::{
    AUTHORIZATION_LIFETIME, Authorizations, NewAuthorization, PendingAuthorization, TakeOutcome,
};
pub use error::{StoreError, UnknownVariant};
pub use events::{Event, EventId, Events, NewEvent};
pub use expiry::{Expiry, ExpiryNotice, GrantLifetime, NoticeSubject, PublishingStatus};
pub use grants::{Grant, Grants, TokenSet};
pub use mailboxes::{Mailbox, MailboxId, MailboxRole, Mailboxes, NewMailbox, SyncState};
pub use messages::{
    AttachmentSummary, BatchOutcome, EmailAddress, Envelope, FlagUpdate, InvalidCursor, ListCursor,
    Message, MessageFilter, MessageId, MessagePage, MessageQuery, Messages, MimeSummary,
    NewMessage, SyncBatch,
};
pub use oauth_apps::{AppId, AppStatus, NewOAuthApp, OAuthApp, OAuthApps};
pub use outbox::{
    ClaimedOutboxItem, EVENT_MESSAGE_FAILED, EVENT_MESSAGE_SENT, Enqueued, IDEMPOTENCY_WINDOW,
    NewOutboxItem, Outbox, OutboxCancel, OutboxId, OutboxItem, OutboxLease, OutboxQuery,
    OutboxStatus, RecipientResult, RecipientStatus, SmtpEnvelope,
};
pub use prepared::PreparedBatch;
pub use search::{
    EmptySearch, MAX_SEARCH_RESULTS, Search, SearchHit, SearchQuery, SearchText, indexable_text,
};
pub use secrets::{SecretRef, Secrets};
pub use store::Store;
pub use vault_keys::{Reseal, RotationReport, StoredKey, VaultKeys};
pub use webhooks::{
    AttemptOutcome, AttemptRecord, Delivery, DeliveryId, DeliveryStatus, DueDelivery,
    EnqueueOutcome, NewWebhook, Webhook, WebhookChange, WebhookId, Webhooks,
};
