//! SQLite implementation of [`Outbox`].
//!
//! Purpose: the SQL for the `outbox` table, its leases and the events its outcomes append.
//! Non-goal: choosing what is due beyond "due now, oldest first"; rate limits and back-off are the
//! worker's.
//! Key decision: every state change runs in one `BEGIN IMMEDIATE` transaction and matches the
//! row on `status = 'sending' AND lease_id = ?`, so two workers can never both finish one claim,
//! and a claim is the select and the update together (SQLite has one writer: no `SKIP LOCKED`
//! is needed).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqliteExecutor};

use super::events::insert_event;
use super::{
    begin_write, decode_json, from_millis, from_optional_millis, is_foreign_key_violation,
    parse_stored, to_count, to_millis,
};
use crate::outbox::{EVENT_MESSAGE_FAILED, EVENT_MESSAGE_SENT, IDEMPOTENCY_WINDOW};
use crate::{
    AccountId, ClaimedOutboxItem, Enqueued, NewEvent, NewOutboxItem, Outbox, OutboxCancel,
    OutboxId, OutboxItem, OutboxLease, OutboxQuery, OutboxStatus, RecipientResult, SmtpEnvelope,
    StoreError,
};

/// `SELECT <every column of an OutboxItem> FROM outbox <tail>`, as one static string; the
/// message bytes are read only where they are needed.
macro_rules! select_items {
    ($tail:literal) => {
        concat!(
            "SELECT id, account_id, status, envelope_from, envelope_to, message_id, \
             length(raw) AS size, send_at, attempts, next_attempt_at, lease_expires_at, \
             last_error, recipients, idempotency_key, sent_at, created_at, updated_at \
             FROM outbox ",
            $tail
        )
    };
}

pub(super) struct SqliteOutbox {
    db: super::Pools,
    /// Woken after a commit that appended events (see `EventSignal`).
    appended: super::events::EventSignal,
}

impl SqliteOutbox {
    pub(super) fn new(db: super::Pools, appended: super::events::EventSignal) -> Self {
        SqliteOutbox { db, appended }
    }
}

/// One `outbox` row as SQLite returns it (without `raw`).
#[derive(sqlx::FromRow)]
struct ItemRow {
    id: String,
    account_id: String,
    status: String,
    envelope_from: String,
    envelope_to: String,
    message_id: String,
    size: i64,
    send_at: i64,
    attempts: i64,
    next_attempt_at: i64,
    lease_expires_at: Option<i64>,
    last_error: Option<String>,
    recipients: String,
    idempotency_key: Option<String>,
    sent_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl ItemRow {
    fn into_item(self) -> Result<OutboxItem, StoreError> {
        let what = |column: &str| format!("outbox.{column} of item {}", self.id);
        Ok(OutboxItem {
            id: parse_stored(&self.id, || what("id"))?,
            account_id: parse_stored(&self.account_id, || what("account_id"))?,
            status: parse_stored(&self.status, || what("status"))?,
            envelope: SmtpEnvelope {
                from: self.envelope_from,
                recipients: decode_json(&self.envelope_to, || what("envelope_to"))?,
            },
            message_id: self.message_id,
            size: to_count(self.size, &what("size"))?,
            send_at: from_millis(self.send_at, || what("send_at"))?,
            attempts: u32::try_from(self.attempts)
                .map_err(|_| StoreError::corrupt(what("attempts")))?,
            next_attempt_at: from_millis(self.next_attempt_at, || what("next_attempt_at"))?,
            lease_expires_at: from_optional_millis(self.lease_expires_at, || {
                what("lease_expires_at")
            })?,
            last_error: self.last_error,
            recipients: decode_json(&self.recipients, || what("recipients"))?,
            idempotency_key: self.idempotency_key,
            sent_at: from_optional_millis(self.sent_at, || what("sent_at"))?,
            created_at: from_millis(self.created_at, || what("created_at"))?,
            updated_at: from_millis(self.updated_at, || what("updated_at"))?,
        })
    }
}

async fn fetch_item<'e>(
    executor: impl SqliteExecutor<'e>,
    id: &OutboxId,
) -> Result<Option<OutboxItem>, StoreError> {
    let row: Option<ItemRow> = sqlx::query_as(select_items!("WHERE id = ?"))
        .bind(id.as_str().to_owned())
        .fetch_optional(executor)
        .await?;
    row.map(ItemRow::into_item).transpose()
}

async fn fetch_existing_item<'e>(
    executor: impl SqliteExecutor<'e>,
    id: &OutboxId,
) -> Result<OutboxItem, StoreError> {
    fetch_item(executor, id)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("outbox item {id}")))
}

/// The item this account queued with `key`, if the key is still on a row.
async fn item_with_key(
    conn: &mut SqliteConnection,
    account_id: &AccountId,
    key: &str,
) -> Result<Option<OutboxItem>, StoreError> {
    let row: Option<ItemRow> = sqlx::query_as(select_items!(
        "WHERE account_id = ? AND idempotency_key = ?"
    ))
    .bind(account_id.as_str().to_owned())
    .bind(key.to_owned())
    .fetch_optional(conn)
    .await?;
    row.map(ItemRow::into_item).transpose()
}

/// Takes a stale key off its old row so the unique index lets a new item use it.
async fn retire_key(conn: &mut SqliteConnection, id: &OutboxId) -> Result<(), StoreError> {
    sqlx::query("UPDATE outbox SET idempotency_key = NULL WHERE id = ?")
        .bind(id.as_str().to_owned())
        .execute(conn)
        .await?;
    Ok(())
}

async fn insert_item(
    conn: &mut SqliteConnection,
    new: &NewOutboxItem,
    now: i64,
) -> Result<(), StoreError> {
    let pending: Vec<RecipientResult> = new
        .envelope
        .recipients
        .iter()
        .map(RecipientResult::pending)
        .collect();
    let send_at = to_millis(new.send_at);
    let result = sqlx::query(
        "INSERT INTO outbox (id, account_id, status, raw, envelope_from, envelope_to, message_id, \
         send_at, attempts, next_attempt_at, recipients, idempotency_key, created_at, updated_at) \
         VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
    )
    .bind(new.id.as_str().to_owned())
    .bind(new.account_id.as_str().to_owned())
    .bind(new.raw.clone())
    .bind(new.envelope.from.clone())
    .bind(Json(&new.envelope.recipients))
    .bind(new.message_id.clone())
    .bind(send_at)
    .bind(send_at)
    .bind(Json(&pending))
    .bind(new.idempotency_key.clone())
    .bind(now)
    .bind(now)
    .execute(conn)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) if is_foreign_key_violation(&err) => {
            Err(StoreError::not_found(format!("account {}", new.account_id)))
        }
        Err(err) => Err(err.into()),
    }
}

/// Ids to claim: lapsed leases first (their worker died), then due queued items.
async fn claimable_ids(
    conn: &mut SqliteConnection,
    now: i64,
    limit: u32,
) -> Result<Vec<String>, StoreError> {
    let mut ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM outbox WHERE status = 'sending' AND lease_expires_at <= ? \
         ORDER BY lease_expires_at, id LIMIT ?",
    )
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    let remaining = i64::from(limit) - i64::try_from(ids.len()).unwrap_or(i64::MAX);
    if remaining > 0 {
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= ? \
             ORDER BY next_attempt_at, id LIMIT ?",
        )
        .bind(now)
        .bind(remaining)
        .fetch_all(&mut *conn)
        .await?;
        ids.extend(due);
    }
    Ok(ids)
}

/// Puts one item under a new lease and returns it with its bytes.
async fn claim_one(
    conn: &mut SqliteConnection,
    id: String,
    now: i64,
    expires_at: DateTime<Utc>,
) -> Result<ClaimedOutboxItem, StoreError> {
    let lease_id = uuid::Uuid::new_v4().simple().to_string();
    sqlx::query(
        "UPDATE outbox SET status = 'sending', lease_id = ?, lease_expires_at = ?, \
         attempts = attempts + 1, updated_at = ? WHERE id = ?",
    )
    .bind(lease_id.clone())
    .bind(to_millis(expires_at))
    .bind(now)
    .bind(id.clone())
    .execute(&mut *conn)
    .await?;
    let item_id: OutboxId = parse_stored(&id, || format!("outbox.id of item {id}"))?;
    let item = fetch_existing_item(&mut *conn, &item_id).await?;
    let raw = fetch_raw(&mut *conn, &item_id)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("outbox item {id}")))?;
    Ok(ClaimedOutboxItem {
        item,
        raw,
        lease: OutboxLease {
            item_id,
            lease_id,
            expires_at,
        },
    })
}

async fn fetch_raw<'e>(
    executor: impl SqliteExecutor<'e>,
    id: &OutboxId,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(sqlx::query_scalar("SELECT raw FROM outbox WHERE id = ?")
        .bind(id.as_str().to_owned())
        .fetch_optional(executor)
        .await?)
}

/// How an attempt ends: the row's new values.
struct Finish<'a> {
    status: OutboxStatus,
    next_attempt_at: Option<DateTime<Utc>>,
    error: Option<&'a str>,
    recipients: Option<Vec<RecipientResult>>,
    /// Whether the claim counts as an attempt (false for [`Outbox::release`]).
    counts: bool,
    /// The event kind to append, if the outcome is announced.
    event: Option<&'static str>,
}

impl SqliteOutbox {
    /// Applies `finish` if `lease` still holds; `None` (and nothing written) otherwise.
    async fn finish(
        &self,
        lease: &OutboxLease,
        finish: Finish<'_>,
    ) -> Result<Option<OutboxItem>, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        let now = Utc::now();
        let updated = update_finished(&mut tx, lease, &finish, now).await?;
        if !updated {
            return Ok(None);
        }
        let item = fetch_existing_item(&mut *tx, &lease.item_id).await?;
        if let Some(kind) = finish.event {
            insert_event(&mut *tx, outcome_event(kind, &item)).await?;
        }
        tx.commit().await?;
        self.appended.notify_waiters();
        Ok(Some(item))
    }
}

async fn update_finished(
    conn: &mut SqliteConnection,
    lease: &OutboxLease,
    finish: &Finish<'_>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sent_at = (finish.status == OutboxStatus::Sent).then(|| to_millis(now));
    let result = sqlx::query(
        "UPDATE outbox SET status = ?, lease_id = NULL, lease_expires_at = NULL, \
         next_attempt_at = COALESCE(?, next_attempt_at), \
         last_error = CASE WHEN ? THEN ? ELSE last_error END, \
         recipients = COALESCE(?, recipients), \
         attempts = CASE WHEN ? THEN attempts ELSE max(attempts - 1, 0) END, \
         sent_at = COALESCE(?, sent_at), updated_at = ? \
         WHERE id = ? AND status = 'sending' AND lease_id = ?",
    )
    .bind(finish.status.as_str())
    .bind(finish.next_attempt_at.map(to_millis))
    .bind(finish.status != OutboxStatus::Queued || finish.error.is_some())
    .bind(finish.error.map(str::to_owned))
    .bind(finish.recipients.as_ref().map(Json))
    .bind(finish.counts)
    .bind(sent_at)
    .bind(to_millis(now))
    .bind(lease.item_id.as_str().to_owned())
    .bind(lease.lease_id.clone())
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The `message.sent` / `message.failed` event of an item as it now stands.
fn outcome_event(kind: &str, item: &OutboxItem) -> NewEvent {
    let mut payload = json!({
        "outbox_id": item.id.to_string(),
        "account_id": item.account_id.to_string(),
        "message_id": item.message_id,
        "status": item.status.as_str(),
        "attempts": item.attempts,
        "recipients": item.recipients,
    });
    if item.status == OutboxStatus::Failed
        && let Some(object) = payload.as_object_mut()
    {
        object.insert("error".into(), item.last_error.clone().into());
    }
    NewEvent {
        account_id: Some(item.account_id.to_string()),
        kind: kind.to_owned(),
        payload,
    }
}

#[async_trait]
impl Outbox for SqliteOutbox {
    async fn enqueue(&self, new: NewOutboxItem) -> Result<Enqueued, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        let now = Utc::now();
        if let Some(key) = &new.idempotency_key
            && let Some(existing) = item_with_key(&mut tx, &new.account_id, key).await?
        {
            if now - existing.created_at < IDEMPOTENCY_WINDOW {
                return Ok(Enqueued::Existing(existing));
            }
            retire_key(&mut tx, &existing.id).await?;
        }
        insert_item(&mut tx, &new, to_millis(now)).await?;
        let item = fetch_existing_item(&mut *tx, &new.id).await?;
        tx.commit().await?;
        Ok(Enqueued::Created(item))
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedOutboxItem>, StoreError> {
        let expires_at = now + TimeDelta::from_std(lease).unwrap_or(TimeDelta::MAX);
        let mut tx = begin_write(&self.db).await?;
        let ids = claimable_ids(&mut tx, to_millis(now), limit).await?;
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            claimed.push(claim_one(&mut tx, id, to_millis(now), expires_at).await?);
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn mark_sent(
        &self,
        lease: &OutboxLease,
        recipients: Vec<RecipientResult>,
    ) -> Result<Option<OutboxItem>, StoreError> {
        let finish = Finish {
            status: OutboxStatus::Sent,
            next_attempt_at: None,
            error: None,
            recipients: Some(recipients),
            counts: true,
            event: Some(EVENT_MESSAGE_SENT),
        };
        self.finish(lease, finish).await
    }

    async fn mark_retry(
        &self,
        lease: &OutboxLease,
        next_attempt_at: DateTime<Utc>,
        error: &str,
        recipients: Vec<RecipientResult>,
    ) -> Result<Option<OutboxItem>, StoreError> {
        let finish = Finish {
            status: OutboxStatus::Queued,
            next_attempt_at: Some(next_attempt_at),
            error: Some(error),
            recipients: Some(recipients),
            counts: true,
            event: None,
        };
        self.finish(lease, finish).await
    }

    async fn mark_failed(
        &self,
        lease: &OutboxLease,
        error: &str,
        recipients: Vec<RecipientResult>,
    ) -> Result<Option<OutboxItem>, StoreError> {
        let finish = Finish {
            status: OutboxStatus::Failed,
            next_attempt_at: None,
            error: Some(error),
            recipients: Some(recipients),
            counts: true,
            event: Some(EVENT_MESSAGE_FAILED),
        };
        self.finish(lease, finish).await
    }

    async fn release(
        &self,
        lease: &OutboxLease,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<Option<OutboxItem>, StoreError> {
        let finish = Finish {
            status: OutboxStatus::Queued,
            next_attempt_at: Some(next_attempt_at),
            error: None,
            recipients: None,
            counts: false,
            event: None,
        };
        self.finish(lease, finish).await
    }

    async fn cancel(&self, id: &OutboxId) -> Result<OutboxCancel, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        let Some(item) = fetch_item(&mut *tx, id).await? else {
            return Ok(OutboxCancel::NotFound);
        };
        if item.status != OutboxStatus::Queued {
            return Ok(OutboxCancel::NotQueued(item));
        }
        sqlx::query("UPDATE outbox SET status = 'cancelled', updated_at = ? WHERE id = ?")
            .bind(to_millis(Utc::now()))
            .bind(id.as_str().to_owned())
            .execute(&mut *tx)
            .await?;
        let item = fetch_existing_item(&mut *tx, id).await?;
        tx.commit().await?;
        Ok(OutboxCancel::Cancelled(item))
    }

    async fn get(&self, id: &OutboxId) -> Result<Option<OutboxItem>, StoreError> {
        fetch_item(&self.db.read, id).await
    }

    async fn raw(&self, id: &OutboxId) -> Result<Option<Vec<u8>>, StoreError> {
        fetch_raw(&self.db.read, id).await
    }

    async fn list(&self, query: &OutboxQuery) -> Result<Vec<OutboxItem>, StoreError> {
        let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new(select_items!("WHERE 1 = 1"));
        if let Some(account_id) = &query.account_id {
            sql.push(" AND account_id = ")
                .push_bind(account_id.as_str().to_owned());
        }
        if let Some(status) = query.status {
            sql.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(before) = &query.before {
            sql.push(" AND id < ").push_bind(before.as_str().to_owned());
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(query.limit));
        let rows: Vec<ItemRow> = sql.build_query_as().fetch_all(&self.db.read).await?;
        rows.into_iter().map(ItemRow::into_item).collect()
    }
}
