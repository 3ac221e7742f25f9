//! SQLite implementation of [`Outbox`].
//!
//! Purpose: the SQL for the `outbox` table, its leases and the events its outcomes append.
//! Non-goal: choosing what is due beyond "due now, oldest first"; rate limits and back-off are the
//! worker's.
//! Key decision: each frequent state change is one statement (enqueue without a key, claim, end of
//! a lease), because SQLite has one writer and a multi-step transaction holds the write lock
//! across round trips while every other write waits. Ending a lease matches the row on
//! `status = 'sending' AND lease_id = ?`, so two workers can never both finish one claim; a claim
//! is the select and the update together (one writer: no `SKIP LOCKED` is needed); the outcome
//! event comes from the `outbox_outcome_event` trigger, atomic with the status change.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::types::Json;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqliteExecutor};

use super::{
    begin_write, decode_json, from_millis, from_optional_millis, is_foreign_key_violation,
    parse_stored, to_count, to_millis,
};
use crate::outbox::IDEMPOTENCY_WINDOW;
use crate::{
    AccountId, ClaimedOutboxItem, Enqueued, NewOutboxItem, Outbox, OutboxCancel, OutboxId,
    OutboxItem, OutboxLease, OutboxQuery, OutboxStatus, RecipientResult, SmtpEnvelope, StoreError,
};

/// Every column of an [`OutboxItem`], for a `SELECT` or a `RETURNING` clause; the message bytes
/// are read only where they are needed.
macro_rules! item_columns {
    () => {
        "id, account_id, status, envelope_from, envelope_to, message_id, \
         length(raw) AS size, send_at, attempts, next_attempt_at, lease_expires_at, \
         last_error, recipients, idempotency_key, sent_at, created_at, updated_at"
    };
}

/// `SELECT <every column of an OutboxItem> FROM outbox <tail>`, as one static string.
macro_rules! select_items {
    ($tail:literal) => {
        concat!("SELECT ", item_columns!(), " FROM outbox ", $tail)
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

/// Inserts a queued item and returns it as stored.
async fn insert_item(
    executor: impl SqliteExecutor<'_>,
    new: &NewOutboxItem,
    now: i64,
) -> Result<OutboxItem, StoreError> {
    let pending: Vec<RecipientResult> = new
        .envelope
        .recipients
        .iter()
        .map(RecipientResult::pending)
        .collect();
    let send_at = to_millis(new.send_at);
    let result: Result<ItemRow, _> = sqlx::query_as(concat!(
        "INSERT INTO outbox (id, account_id, status, raw, envelope_from, envelope_to, message_id, \
         send_at, attempts, next_attempt_at, recipients, idempotency_key, created_at, updated_at) \
         VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?) RETURNING ",
        item_columns!()
    ))
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
    .fetch_one(executor)
    .await;
    match result {
        Ok(row) => row.into_item(),
        Err(err) if is_foreign_key_violation(&err) => {
            Err(StoreError::not_found(format!("account {}", new.account_id)))
        }
        Err(err) => Err(err.into()),
    }
}

/// One `outbox` row with its message bytes, as a claim returns it.
#[derive(sqlx::FromRow)]
struct ClaimedRow {
    #[sqlx(flatten)]
    item: ItemRow,
    raw: Vec<u8>,
}

/// Puts up to `limit` items under one new lease in a single statement (lapsed leases first:
/// their worker died; then due queued items, oldest first) and returns them with their bytes,
/// in the order they became due.
async fn claim_rows(
    executor: impl SqliteExecutor<'_>,
    now: i64,
    limit: u32,
    lease_id: &str,
    expires_at: i64,
) -> Result<Vec<ClaimedRow>, StoreError> {
    let mut rows: Vec<ClaimedRow> = sqlx::query_as(concat!(
        "UPDATE outbox SET status = 'sending', lease_id = ?1, lease_expires_at = ?2, \
         attempts = attempts + 1, updated_at = ?3 \
         WHERE id IN (SELECT id FROM ( \
             SELECT id, 0 AS lapsed_last, lease_expires_at AS since FROM outbox \
                 WHERE status = 'sending' AND lease_expires_at <= ?3 \
             UNION ALL \
             SELECT id, 1, next_attempt_at FROM outbox \
                 WHERE status = 'queued' AND next_attempt_at <= ?3) \
           ORDER BY lapsed_last, since, id LIMIT ?4) \
         RETURNING ",
        item_columns!(),
        ", raw"
    ))
    .bind(lease_id)
    .bind(expires_at)
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(executor)
    .await?;
    rows.sort_by(|a, b| {
        (a.item.next_attempt_at, &a.item.id).cmp(&(b.item.next_attempt_at, &b.item.id))
    });
    Ok(rows)
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
}

impl SqliteOutbox {
    /// Applies `finish` if `lease` still holds; `None` (and nothing written) otherwise.
    async fn finish(
        &self,
        lease: &OutboxLease,
        finish: Finish<'_>,
    ) -> Result<Option<OutboxItem>, StoreError> {
        // One statement: the `outbox_outcome_event` trigger appends `message.sent` /
        // `message.failed` with it, atomically.
        let item =
            update_finished(&mut *self.db.write().await?, lease, &finish, Utc::now()).await?;
        if item
            .as_ref()
            .is_some_and(|item| matches!(item.status, OutboxStatus::Sent | OutboxStatus::Failed))
        {
            self.appended.notify_waiters();
        }
        Ok(item)
    }
}

/// Ends the lease as `finish` says; the item as it now stands, `None` when the lease was lost.
async fn update_finished(
    executor: impl SqliteExecutor<'_>,
    lease: &OutboxLease,
    finish: &Finish<'_>,
    now: DateTime<Utc>,
) -> Result<Option<OutboxItem>, StoreError> {
    let sent_at = (finish.status == OutboxStatus::Sent).then(|| to_millis(now));
    let row: Option<ItemRow> = sqlx::query_as(concat!(
        "UPDATE outbox SET status = ?, lease_id = NULL, lease_expires_at = NULL, \
         next_attempt_at = COALESCE(?, next_attempt_at), \
         last_error = CASE WHEN ? THEN ? ELSE last_error END, \
         recipients = COALESCE(?, recipients), \
         attempts = CASE WHEN ? THEN attempts ELSE max(attempts - 1, 0) END, \
         sent_at = COALESCE(?, sent_at), updated_at = ? \
         WHERE id = ? AND status = 'sending' AND lease_id = ? RETURNING ",
        item_columns!()
    ))
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
    .fetch_optional(executor)
    .await?;
    row.map(ItemRow::into_item).transpose()
}

#[async_trait]
impl Outbox for SqliteOutbox {
    async fn enqueue(&self, new: NewOutboxItem) -> Result<Enqueued, StoreError> {
        let now = Utc::now();
        let Some(key) = &new.idempotency_key else {
            // One statement: no transaction needed around it.
            let item = insert_item(&mut *self.db.write().await?, &new, to_millis(now)).await?;
            return Ok(Enqueued::Created(item));
        };
        let mut tx = begin_write(&self.db).await?;
        if let Some(existing) = item_with_key(&mut tx, &new.account_id, key).await? {
            if now - existing.created_at < IDEMPOTENCY_WINDOW {
                return Ok(Enqueued::Existing(existing));
            }
            retire_key(&mut tx, &existing.id).await?;
        }
        let item = insert_item(&mut *tx, &new, to_millis(now)).await?;
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
        let lease_id = uuid::Uuid::new_v4().simple().to_string();
        let rows = claim_rows(
            &mut *self.db.write().await?,
            to_millis(now),
            limit,
            &lease_id,
            to_millis(expires_at),
        )
        .await?;
        rows.into_iter()
            .map(|row| {
                let item = row.item.into_item()?;
                let lease = OutboxLease {
                    item_id: item.id.clone(),
                    lease_id: lease_id.clone(),
                    expires_at,
                };
                Ok(ClaimedOutboxItem {
                    item,
                    raw: row.raw,
                    lease,
                })
            })
            .collect()
    }

    async fn count_by_status(&self) -> Result<Vec<(OutboxStatus, u64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, count(*) FROM outbox GROUP BY status")
                .fetch_all(&self.db.read)
                .await?;
        OutboxStatus::ALL
            .iter()
            .map(|status| {
                let count = rows
                    .iter()
                    .find(|(name, _)| name == status.as_str())
                    .map_or(Ok(0), |(_, count)| to_count(*count, "outbox count"))?;
                Ok((*status, count))
            })
            .collect()
    }

    async fn count_sent_since(
        &self,
        account_id: &AccountId,
        since: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        // Served by the partial index `outbox_sent_by_account`.
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox \
             WHERE account_id = ? AND status = 'sent' AND sent_at >= ?",
        )
        .bind(account_id.as_str().to_owned())
        .bind(to_millis(since))
        .fetch_one(&self.db.read)
        .await?;
        to_count(count, "count of sent items")
    }

    async fn nth_sent_since(
        &self,
        account_id: &AccountId,
        since: DateTime<Utc>,
        n: u64,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let offset = i64::try_from(n).unwrap_or(i64::MAX);
        let sent_at: Option<i64> = sqlx::query_scalar(
            "SELECT sent_at FROM outbox \
             WHERE account_id = ? AND status = 'sent' AND sent_at >= ? \
             ORDER BY sent_at LIMIT 1 OFFSET ?",
        )
        .bind(account_id.as_str().to_owned())
        .bind(to_millis(since))
        .bind(offset)
        .fetch_optional(&self.db.read)
        .await?;
        sent_at
            .map(|at| from_millis(at, || format!("outbox.sent_at of account {account_id}")))
            .transpose()
    }

    async fn recover_abandoned(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let now = to_millis(now);
        let released = sqlx::query(
            "UPDATE outbox SET status = 'queued', lease_id = NULL, lease_expires_at = NULL, \
             next_attempt_at = ?1, updated_at = ?1 WHERE status = 'sending'",
        )
        .bind(now)
        .execute(&mut *self.db.write().await?)
        .await?;
        Ok(released.rows_affected())
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
        };
        self.finish(lease, finish).await
    }

    async fn make_limited_due(
        &self,
        account_id: &AccountId,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let due = sqlx::query(
            "UPDATE outbox SET next_attempt_at = ?1, updated_at = ?1 \
             WHERE account_id = ?2 AND status = 'queued' AND attempts = 0 \
               AND send_at <= ?1 AND next_attempt_at > ?1",
        )
        .bind(to_millis(now))
        .bind(account_id.as_str())
        .execute(&mut *self.db.write().await?)
        .await?;
        Ok(due.rows_affected())
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
