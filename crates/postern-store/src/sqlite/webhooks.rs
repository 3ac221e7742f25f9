//! SQLite implementation of [`Webhooks`].
//!
//! Purpose: the SQL for the `webhooks` and `webhook_deliveries` tables and the webhook's secret.
//! Non-goal: matching events to webhooks or computing retry times; the caller decides both.
//! Key decision: the per-account ordering rule lives in one statement ([`Webhooks::due`]'s
//! `NOT EXISTS`): an account whose queue holds a delivery waiting for its retry time is left out
//! entirely, so a later event of that account can never overtake the one being retried. Both
//! questions it asks are answered by partial indexes over pending rows only.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use postern_vault::Sealed;
use sqlx::types::Json;
use sqlx::{SqliteConnection, SqliteExecutor};

use super::secrets::{delete_owner_secrets, put_secret};
use super::{begin_write, decode_json, from_millis, from_optional_millis, parse_stored, to_millis};
use crate::webhooks::WEBHOOK_OWNER;
use crate::{
    AttemptOutcome, AttemptRecord, Delivery, DeliveryId, DeliveryStatus, DueDelivery,
    EnqueueOutcome, Event, EventId, NewWebhook, StoreError, Webhook, WebhookChange, WebhookId,
    Webhooks,
};

/// `SELECT <every column> FROM webhooks <tail>`, as one static string.
macro_rules! select_webhooks {
    ($tail:literal) => {
        concat!(
            "SELECT id, url, events, account_ids, enabled, cursor, created_at, updated_at \
             FROM webhooks ",
            $tail
        )
    };
}

/// Every column of `webhook_deliveries`, each prefixed with `$prefix` (a table alias and a dot,
/// or nothing).
#[rustfmt::skip]
macro_rules! delivery_columns {
    ($prefix:literal) => {
        concat!(
            $prefix, "id, ",
            $prefix, "webhook_id, ",
            $prefix, "event_id, ",
            $prefix, "account_id, ",
            $prefix, "status, ",
            $prefix, "attempts, ",
            $prefix, "next_attempt_at, ",
            $prefix, "pending_since, ",
            $prefix, "last_attempt_at, ",
            $prefix, "last_status_code, ",
            $prefix, "last_error, ",
            $prefix, "created_at, ",
            $prefix, "updated_at",
        )
    };
}

pub(super) struct SqliteWebhooks {
    db: super::Pools,
}

impl SqliteWebhooks {
    pub(super) fn new(db: super::Pools) -> Self {
        SqliteWebhooks { db }
    }
}

/// One `webhooks` row as SQLite returns it.
#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: String,
    url: String,
    events: String,
    account_ids: Option<String>,
    enabled: bool,
    cursor: i64,
    created_at: i64,
    updated_at: i64,
}

impl WebhookRow {
    fn into_webhook(self) -> Result<Webhook, StoreError> {
        let what = |column: &str| format!("webhooks.{column} of webhook {}", self.id);
        let account_ids = self
            .account_ids
            .as_deref()
            .map(|json| decode_json(json, || what("account_ids")))
            .transpose()?;
        Ok(Webhook {
            events: decode_json(&self.events, || what("events"))?,
            account_ids,
            enabled: self.enabled,
            cursor: EventId(self.cursor),
            created_at: from_millis(self.created_at, || what("created_at"))?,
            updated_at: from_millis(self.updated_at, || what("updated_at"))?,
            id: parse_stored(&self.id, || what("id"))?,
            url: self.url,
        })
    }
}

/// One `webhook_deliveries` row as SQLite returns it.
#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: String,
    webhook_id: String,
    event_id: i64,
    account_id: Option<String>,
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    pending_since: i64,
    last_attempt_at: Option<i64>,
    last_status_code: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl DeliveryRow {
    fn into_delivery(self) -> Result<Delivery, StoreError> {
        let what = |column: &str| format!("webhook_deliveries.{column} of delivery {}", self.id);
        let last_status_code = self
            .last_status_code
            .map(|code| u16::try_from(code).map_err(|_| StoreError::corrupt(what("status"))))
            .transpose()?;
        Ok(Delivery {
            webhook_id: parse_stored(&self.webhook_id, || what("webhook_id"))?,
            event_id: EventId(self.event_id),
            status: parse_stored(&self.status, || what("status"))?,
            attempts: u32::try_from(self.attempts)
                .map_err(|_| StoreError::corrupt(what("attempts")))?,
            next_attempt_at: from_millis(self.next_attempt_at, || what("next_attempt_at"))?,
            pending_since: from_millis(self.pending_since, || what("pending_since"))?,
            last_attempt_at: from_optional_millis(self.last_attempt_at, || {
                what("last_attempt_at")
            })?,
            last_status_code,
            created_at: from_millis(self.created_at, || what("created_at"))?,
            updated_at: from_millis(self.updated_at, || what("updated_at"))?,
            id: parse_stored(&self.id, || what("id"))?,
            account_id: self.account_id,
            last_error: self.last_error,
        })
    }
}

/// A delivery joined with its event, as [`Webhooks::due`] reads it.
#[derive(sqlx::FromRow)]
struct DueRow {
    #[sqlx(flatten)]
    delivery: DeliveryRow,
    event_kind: String,
    event_payload: String,
    event_created_at: i64,
}

impl DueRow {
    fn into_due(self) -> Result<DueDelivery, StoreError> {
        let event_id = self.delivery.event_id;
        let what = |column: &str| format!("events.{column} of event {event_id}");
        let event = Event {
            id: EventId(event_id),
            account_id: self.delivery.account_id.clone(),
            kind: self.event_kind,
            payload: decode_json(&self.event_payload, || what("payload"))?,
            created_at: from_millis(self.event_created_at, || what("created_at"))?,
        };
        Ok(DueDelivery {
            delivery: self.delivery.into_delivery()?,
            event,
        })
    }
}

async fn fetch_webhook<'e>(
    executor: impl SqliteExecutor<'e>,
    id: &WebhookId,
) -> Result<Option<Webhook>, StoreError> {
    let row: Option<WebhookRow> = sqlx::query_as(select_webhooks!("WHERE id = ?"))
        .bind(id.as_str().to_owned())
        .fetch_optional(executor)
        .await?;
    row.map(WebhookRow::into_webhook).transpose()
}

async fn insert_webhook(
    conn: &mut SqliteConnection,
    new: &NewWebhook,
    now: i64,
) -> Result<(), StoreError> {
    // The newest event id, read inside the write transaction: no append can slip in between.
    sqlx::query(
        "INSERT INTO webhooks (id, url, events, account_ids, enabled, cursor, created_at, \
         updated_at) VALUES (?, ?, ?, ?, ?, (SELECT COALESCE(MAX(id), 0) FROM events), ?, ?)",
    )
    .bind(new.id.as_str().to_owned())
    .bind(new.url.clone())
    .bind(Json(new.events.clone()))
    .bind(new.account_ids.clone().map(Json))
    .bind(new.enabled)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

async fn write_change(
    conn: &mut SqliteConnection,
    current: Webhook,
    change: WebhookChange,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE webhooks SET url = ?, events = ?, account_ids = ?, enabled = ?, updated_at = ? \
         WHERE id = ?",
    )
    .bind(change.url.unwrap_or(current.url))
    .bind(Json(change.events.unwrap_or(current.events)))
    .bind(change.account_ids.unwrap_or(current.account_ids).map(Json))
    .bind(change.enabled.unwrap_or(current.enabled))
    .bind(to_millis(Utc::now()))
    .bind(current.id.as_str().to_owned())
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert_delivery(
    conn: &mut SqliteConnection,
    webhook: &WebhookId,
    event: &Event,
    now: i64,
) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, account_id, status, \
         next_attempt_at, pending_since, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (webhook_id, event_id) DO NOTHING",
    )
    .bind(DeliveryId::generate().as_str().to_owned())
    .bind(webhook.as_str().to_owned())
    .bind(event.id.0)
    .bind(event.account_id.clone())
    .bind(DeliveryStatus::Pending.as_str())
    .bind(now)
    .bind(now)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

/// Writes one attempt's outcome to its delivery, if that is still pending.
async fn record_one(
    conn: &mut SqliteConnection,
    attempt: &AttemptRecord,
) -> Result<u64, StoreError> {
    let at = to_millis(attempt.at);
    let (status, code, error, next) = match &attempt.outcome {
        AttemptOutcome::Delivered { status_code } => {
            (DeliveryStatus::Delivered, Some(*status_code), None, at)
        }
        AttemptOutcome::Failed {
            status_code,
            error,
            retry_at,
        } => match retry_at {
            Some(retry_at) => (
                DeliveryStatus::Pending,
                *status_code,
                Some(error.clone()),
                to_millis(*retry_at),
            ),
            None => (DeliveryStatus::Dead, *status_code, Some(error.clone()), at),
        },
    };
    let result = sqlx::query(
        "UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, \
         next_attempt_at = ?, last_attempt_at = ?, last_status_code = ?, last_error = ?, \
         updated_at = ? WHERE id = ? AND status = 'pending'",
    )
    .bind(status.as_str())
    .bind(next)
    .bind(at)
    .bind(code.map(i64::from))
    .bind(error)
    .bind(at)
    .bind(attempt.delivery.as_str().to_owned())
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

#[async_trait]
impl Webhooks for SqliteWebhooks {
    async fn create(&self, new: NewWebhook, secret: &Sealed) -> Result<Webhook, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        insert_webhook(&mut tx, &new, to_millis(Utc::now())).await?;
        put_secret(&mut *tx, &new.id.signing_secret_ref(), secret).await?;
        let webhook = fetch_webhook(&mut *tx, &new.id)
            .await?
            .ok_or_else(|| StoreError::corrupt(format!("webhook {} vanished", new.id)))?;
        tx.commit().await?;
        Ok(webhook)
    }

    async fn get(&self, id: &WebhookId) -> Result<Option<Webhook>, StoreError> {
        fetch_webhook(&self.db.read, id).await
    }

    async fn list(&self) -> Result<Vec<Webhook>, StoreError> {
        let rows: Vec<WebhookRow> = sqlx::query_as(select_webhooks!("ORDER BY created_at, id"))
            .fetch_all(&self.db.read)
            .await?;
        rows.into_iter().map(WebhookRow::into_webhook).collect()
    }

    async fn update(
        &self,
        id: &WebhookId,
        change: WebhookChange,
        secret: Option<&Sealed>,
    ) -> Result<Option<Webhook>, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        let Some(current) = fetch_webhook(&mut *tx, id).await? else {
            return Ok(None);
        };
        write_change(&mut tx, current, change).await?;
        if let Some(sealed) = secret {
            put_secret(&mut *tx, &id.signing_secret_ref(), sealed).await?;
        }
        let updated = fetch_webhook(&mut *tx, id).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn delete(&self, id: &WebhookId) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        delete_owner_secrets(&mut *tx, WEBHOOK_OWNER, id.as_str()).await?;
        // Its deliveries go with it (ON DELETE CASCADE).
        let deleted = sqlx::query("DELETE FROM webhooks WHERE id = ?")
            .bind(id.as_str().to_owned())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn enqueue(
        &self,
        id: &WebhookId,
        after: EventId,
        up_to: EventId,
        matched: &[Event],
    ) -> Result<EnqueueOutcome, StoreError> {
        debug_assert!(matched.iter().all(|e| e.id > after && e.id <= up_to));
        let mut tx = begin_write(&self.db).await?;
        let cursor: Option<i64> = sqlx::query_scalar("SELECT cursor FROM webhooks WHERE id = ?")
            .bind(id.as_str().to_owned())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(cursor) = cursor else {
            return Err(StoreError::not_found(format!("webhook {id}")));
        };
        if cursor != after.0 {
            return Ok(EnqueueOutcome::CursorMoved {
                current: EventId(cursor),
            });
        }
        let now = to_millis(Utc::now());
        let mut count = 0;
        for event in matched {
            count += insert_delivery(&mut tx, id, event, now).await?;
        }
        sqlx::query("UPDATE webhooks SET cursor = ? WHERE id = ?")
            .bind(up_to.0)
            .bind(id.as_str().to_owned())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(EnqueueOutcome::Enqueued { count })
    }

    async fn due(
        &self,
        id: &WebhookId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        // `IS` rather than `=`: server-wide events (NULL account) form one queue of their own.
        let rows: Vec<DueRow> = sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!("d."),
            ", e.kind AS event_kind, e.payload AS event_payload, \
             e.created_at AS event_created_at \
             FROM webhook_deliveries d JOIN events e ON e.id = d.event_id \
             WHERE d.webhook_id = ?1 AND d.status = 'pending' \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries w \
                 WHERE w.webhook_id = ?1 AND w.status = 'pending' \
                 AND w.account_id IS d.account_id AND w.next_attempt_at > ?2) \
             ORDER BY d.event_id LIMIT ?3"
        ))
        .bind(id.as_str().to_owned())
        .bind(to_millis(now))
        .bind(i64::from(limit))
        .fetch_all(&self.db.read)
        .await?;
        rows.into_iter().map(DueRow::into_due).collect()
    }

    async fn next_retry_at(
        &self,
        id: &WebhookId,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM webhook_deliveries \
             WHERE webhook_id = ? AND status = 'pending' AND next_attempt_at > ?",
        )
        .bind(id.as_str().to_owned())
        .bind(to_millis(now))
        .fetch_one(&self.db.read)
        .await?;
        from_optional_millis(at, || format!("next retry of webhook {id}"))
    }

    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> Result<u64, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        let mut changed = 0;
        for attempt in attempts {
            changed += record_one(&mut tx, attempt).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn list_deliveries(
        &self,
        id: &WebhookId,
        before: Option<EventId>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!("d."),
            " FROM webhook_deliveries d WHERE d.webhook_id = ? AND d.event_id < ? \
             ORDER BY d.event_id DESC LIMIT ?"
        ))
        .bind(id.as_str().to_owned())
        .bind(before.map_or(i64::MAX, |before| before.0))
        .bind(i64::from(limit))
        .fetch_all(&self.db.read)
        .await?;
        rows.into_iter().map(DeliveryRow::into_delivery).collect()
    }

    async fn get_delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>, StoreError> {
        let row: Option<DeliveryRow> = sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!("d."),
            " FROM webhook_deliveries d WHERE d.id = ?"
        ))
        .bind(id.as_str().to_owned())
        .fetch_optional(&self.db.read)
        .await?;
        row.map(DeliveryRow::into_delivery).transpose()
    }

    async fn redeliver(
        &self,
        webhook: &WebhookId,
        delivery: &DeliveryId,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError> {
        let now = to_millis(now);
        let row: Option<DeliveryRow> = sqlx::query_as(concat!(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, \
             next_attempt_at = ?1, pending_since = ?1, updated_at = ?1 \
             WHERE id = ?2 AND webhook_id = ?3 RETURNING ",
            delivery_columns!("")
        ))
        .bind(now)
        .bind(delivery.as_str().to_owned())
        .bind(webhook.as_str().to_owned())
        .fetch_optional(&mut *self.db.write().await?)
        .await?;
        row.map(DeliveryRow::into_delivery).transpose()
    }
}
