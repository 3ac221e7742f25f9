//! The event log: the durable, ordered spine that webhooks and the pull stream read.
//!
//! Purpose: append events with a strictly increasing id and let readers page through them with a
//! cursor (`list_after(last_seen_id, …)`).
//! Non-goal: delivery, retries, signing; `postern-events` does that on top of `list_after`.
//! Key decision: the id is the cursor. It is assigned by the database (never reused, even after
//! deletes), so readers need no clock and never miss or repeat an event. That needs ids to become
//! visible in order: SQLite commits one writer at a time, so it holds; the PostgreSQL backend will
//! have to serialize appends (sequences may commit out of order there).
//!
//! Appending in the same transaction as the state change that caused it: a repository whose
//! change must be announced takes the event as a parameter (e.g. [`crate::Accounts::transition`])
//! and its backend appends it on the same transaction, with the same insert code `append` uses.
//! A general unit of work (`store.begin() -> Tx` handing out repositories bound to it) can come
//! when a caller needs to combine changes of several aggregates.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::StoreError;

/// The id of an event; also the readers' cursor. Ids only grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub i64);

/// What `append` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The account the event is about; `None` for server-wide events.
    pub account_id: Option<String>,
    /// The event type, e.g. `"message.received"`.
    pub kind: String,
    /// The event body as delivered to webhooks.
    pub payload: serde_json::Value,
}

/// A stored event. `created_at` has millisecond precision and is informative only: order by `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its position in the log.
    pub id: EventId,
    /// The account it is about, if any.
    pub account_id: Option<String>,
    /// The event type.
    pub kind: String,
    /// The event body.
    pub payload: serde_json::Value,
    /// When it was appended.
    pub created_at: DateTime<Utc>,
}

/// The event-log repository.
#[async_trait]
pub trait Events: Send + Sync {
    /// Appends one event and returns it with its id.
    async fn append(&self, new: NewEvent) -> Result<Event, StoreError>;

    /// Up to `limit` events with an id greater than `after`, in id order; only those of
    /// `account_id` when given. Start with `after = 0`.
    async fn list_after(
        &self,
        after: i64,
        limit: u32,
        account_id: Option<&str>,
    ) -> Result<Vec<Event>, StoreError>;
}
