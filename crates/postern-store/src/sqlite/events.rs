//! SQLite implementation of [`Events`].
//!
//! Purpose: the SQL for the `events` table.
//! Non-goal: pruning old events; retention comes with the webhook deliverer.
//! Key decision: `INSERT … RETURNING` hands back the id SQLite assigned in the same statement, so
//! concurrent appenders never read each other's ids. The insert is one function over any
//! executor, shared by `append` and by repositories that append inside their own transaction.

use async_trait::async_trait;
use chrono::Utc;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqliteExecutor};

use super::{from_millis, to_millis};
use crate::{Event, EventId, Events, NewEvent, StoreError};

pub(super) struct SqliteEvents {
    db: super::Pools,
    /// Woken after a commit that appended events (see `EventSignal`).
    appended: super::events::EventSignal,
}

impl SqliteEvents {
    pub(super) fn new(db: super::Pools, appended: super::events::EventSignal) -> Self {
        SqliteEvents { db, appended }
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    account_id: Option<String>,
    kind: String,
    payload: String,
    created_at: i64,
}

impl EventRow {
    fn into_event(self) -> Result<Event, StoreError> {
        let id = self.id;
        let payload = serde_json::from_str(&self.payload)
            .map_err(|_| StoreError::corrupt(format!("events.payload of event {id}")))?;
        Ok(Event {
            id: EventId(id),
            account_id: self.account_id,
            kind: self.kind,
            payload,
            created_at: from_millis(self.created_at, || {
                format!("events.created_at of event {id}")
            })?,
        })
    }
}

/// Appends one event on any executor: the pool for [`Events::append`], a transaction for a
/// repository whose change and event must commit together.
/// Woken (all waiters at once) after every commit that appended events, so readers of the log
/// (webhook workers, the long-poll stream) see new events within milliseconds without polling hard.
/// Notified after the commit, never inside the transaction: a woken reader always finds the rows.
pub(crate) type EventSignal = std::sync::Arc<tokio::sync::Notify>;

pub(super) async fn insert_event<'e>(
    executor: impl SqliteExecutor<'e>,
    new: NewEvent,
) -> Result<Event, StoreError> {
    let row: EventRow = sqlx::query_as(
        "INSERT INTO events (account_id, kind, payload, created_at) VALUES (?, ?, ?, ?) \
         RETURNING id, account_id, kind, payload, created_at",
    )
    .bind(new.account_id)
    .bind(new.kind)
    .bind(Json(new.payload))
    .bind(to_millis(Utc::now()))
    .fetch_one(executor)
    .await?;
    row.into_event()
}

#[async_trait]
impl Events for SqliteEvents {
    async fn append(&self, new: NewEvent) -> Result<Event, StoreError> {
        let event = insert_event(&mut *self.db.write().await?, new).await?;
        self.appended.notify_waiters();
        Ok(event)
    }

    async fn list_after(
        &self,
        after: i64,
        limit: u32,
        account_id: Option<&str>,
    ) -> Result<Vec<Event>, StoreError> {
        // Two statements rather than `(? IS NULL OR account_id = ?)` so each uses its index.
        let query = match account_id {
            None => sqlx::query_as(
                "SELECT id, account_id, kind, payload, created_at FROM events \
                 WHERE id > ? ORDER BY id LIMIT ?",
            )
            .bind(after)
            .bind(i64::from(limit)),
            Some(account_id) => sqlx::query_as(
                "SELECT id, account_id, kind, payload, created_at FROM events \
                 WHERE account_id = ? AND id > ? ORDER BY id LIMIT ?",
            )
            .bind(account_id.to_owned())
            .bind(after)
            .bind(i64::from(limit)),
        };
        let rows: Vec<EventRow> = query.fetch_all(&self.db.read).await?;
        rows.into_iter().map(EventRow::into_event).collect()
    }
}

/// Appends events of one account and kind whose payloads are JSON text already, in order, with
/// one statement, inside the caller's transaction (the sync's `message.new`, serialized ahead of
/// the transaction).
pub(super) async fn insert_serialized_events(
    conn: &mut SqliteConnection,
    account_id: &str,
    kind: &str,
    payloads: Vec<String>,
) -> Result<(), StoreError> {
    if payloads.is_empty() {
        return Ok(());
    }
    let created_at = to_millis(Utc::now());
    let mut insert =
        QueryBuilder::<Sqlite>::new("INSERT INTO events (account_id, kind, payload, created_at) ");
    insert.push_values(payloads, |mut row, payload| {
        row.push_bind(account_id)
            .push_bind(kind)
            .push_bind(payload)
            .push_bind(created_at);
    });
    insert.build().execute(conn).await?;
    Ok(())
}
