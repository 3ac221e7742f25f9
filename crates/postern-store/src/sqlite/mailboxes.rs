//! SQLite implementation of [`Mailboxes`], and the cursor helpers [`super::messages`] shares.
//!
//! Purpose: the SQL for the `mailboxes` table and the events a mailbox change appends.
//! Non-goal: messages; deleting a mailbox removes them through `ON DELETE CASCADE`.
//! Key decision: every write that must not land on a stale mailbox (a cursor for another
//! UIDVALIDITY, a mailbox deleted meanwhile) reads the row inside its `BEGIN IMMEDIATE`
//! transaction first, so the check and the write cannot be separated by another writer.

use async_trait::async_trait;
use chrono::Utc;
use serde_json::json;
use sqlx::{SqliteConnection, SqliteExecutor};

use super::events::insert_event;
use super::{begin_write, from_millis, is_foreign_key_violation, parse_stored, to_millis};
use crate::prepared::modseq_column;
use crate::{
    AccountId, Mailbox, MailboxId, MailboxRole, Mailboxes, NewEvent, NewMailbox, StoreError,
    SyncState,
};

/// `SELECT <every column> FROM mailboxes <tail>`, as one static string.
macro_rules! select_mailboxes {
    ($tail:literal) => {
        concat!(
            "SELECT id, account_id, name, delimiter, role, uidvalidity, uidnext, highestmodseq, \
             lowest_uid, initial_done, server_exists, server_unseen, created_at, updated_at \
             FROM mailboxes ",
            $tail
        )
    };
}

pub(super) struct SqliteMailboxes {
    db: super::Pools,
    /// Woken after a commit that appended events (see `EventSignal`).
    appended: super::events::EventSignal,
}

impl SqliteMailboxes {
    pub(super) fn new(db: super::Pools, appended: super::events::EventSignal) -> Self {
        SqliteMailboxes { db, appended }
    }
}

/// One `mailboxes` row as SQLite returns it.
#[derive(sqlx::FromRow)]
struct MailboxRow {
    id: i64,
    account_id: String,
    name: String,
    delimiter: Option<String>,
    role: Option<String>,
    uidvalidity: Option<i64>,
    uidnext: Option<i64>,
    highestmodseq: Option<i64>,
    lowest_uid: Option<i64>,
    initial_done: bool,
    server_exists: i64,
    server_unseen: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl MailboxRow {
    fn what(&self, column: &str) -> String {
        format!("mailboxes.{column} of mailbox {}", self.id)
    }

    fn u32_column(&self, value: i64, column: &str) -> Result<u32, StoreError> {
        u32::try_from(value).map_err(|_| StoreError::corrupt(self.what(column)))
    }

    fn sync_state(&self) -> Result<Option<SyncState>, StoreError> {
        let (Some(uidvalidity), Some(uidnext), Some(lowest_uid)) =
            (self.uidvalidity, self.uidnext, self.lowest_uid)
        else {
            return Ok(None);
        };
        let highest_modseq = self
            .highestmodseq
            .map(|modseq| u64::try_from(modseq).map_err(|_| self.what("highestmodseq")))
            .transpose()
            .map_err(StoreError::corrupt)?;
        let unseen = self
            .server_unseen
            .map(|unseen| self.u32_column(unseen, "server_unseen"))
            .transpose()?;
        Ok(Some(SyncState {
            uidvalidity: self.u32_column(uidvalidity, "uidvalidity")?,
            uidnext: self.u32_column(uidnext, "uidnext")?,
            highest_modseq,
            lowest_uid: self.u32_column(lowest_uid, "lowest_uid")?,
            initial_done: self.initial_done,
            exists: self.u32_column(self.server_exists, "server_exists")?,
            unseen,
        }))
    }

    fn into_mailbox(self) -> Result<Mailbox, StoreError> {
        let role = self
            .role
            .as_deref()
            .map(|role| parse_stored::<MailboxRole>(role, || self.what("role")))
            .transpose()?;
        Ok(Mailbox {
            id: MailboxId(self.id),
            account_id: parse_stored(&self.account_id, || self.what("account_id"))?,
            sync: self.sync_state()?,
            role,
            created_at: from_millis(self.created_at, || self.what("created_at"))?,
            updated_at: from_millis(self.updated_at, || self.what("updated_at"))?,
            name: self.name,
            delimiter: self.delimiter,
        })
    }
}

/// The mailbox with this id, read on any executor (pool or transaction).
pub(super) async fn fetch_mailbox<'e>(
    executor: impl SqliteExecutor<'e>,
    id: MailboxId,
) -> Result<Option<Mailbox>, StoreError> {
    let row: Option<MailboxRow> = sqlx::query_as(select_mailboxes!("WHERE id = ?"))
        .bind(id.0)
        .fetch_optional(executor)
        .await?;
    row.map(MailboxRow::into_mailbox).transpose()
}

/// The mailbox, which must exist and hold no cursor of another UIDVALIDITY than `uidvalidity`.
pub(super) async fn fetch_current_mailbox(
    conn: &mut SqliteConnection,
    id: MailboxId,
    uidvalidity: u32,
) -> Result<Mailbox, StoreError> {
    let mailbox = fetch_mailbox(&mut *conn, id)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("mailbox {id}")))?;
    match mailbox.sync {
        Some(stored) if stored.uidvalidity != uidvalidity => Err(StoreError::not_found(format!(
            "mailbox {id} at UIDVALIDITY {uidvalidity} (it is at {})",
            stored.uidvalidity
        ))),
        _ => Ok(mailbox),
    }
}

/// Writes the cursor columns of a mailbox.
pub(super) async fn write_sync_state(
    conn: &mut SqliteConnection,
    id: MailboxId,
    state: &SyncState,
) -> Result<(), StoreError> {
    let modseq = modseq_column(state.highest_modseq);
    sqlx::query(
        "UPDATE mailboxes SET uidvalidity = ?, uidnext = ?, highestmodseq = ?, lowest_uid = ?, \
         initial_done = ?, server_exists = ?, server_unseen = ?, updated_at = ? WHERE id = ?",
    )
    .bind(i64::from(state.uidvalidity))
    .bind(i64::from(state.uidnext))
    .bind(modseq)
    .bind(i64::from(state.lowest_uid))
    .bind(state.initial_done)
    .bind(i64::from(state.exists))
    .bind(state.unseen.map(i64::from))
    .bind(to_millis(Utc::now()))
    .bind(id.0)
    .execute(conn)
    .await?;
    Ok(())
}

/// The event announcing a change of `mailbox`, with the fields every mailbox event carries.
pub(super) fn mailbox_event(
    kind: &str,
    mailbox: &Mailbox,
    mut extra: serde_json::Value,
) -> NewEvent {
    let mut payload = json!({
        "account_id": mailbox.account_id.as_str(),
        "mailbox_id": mailbox.id.0,
        "mailbox": mailbox.name,
        "role": mailbox.role.map(MailboxRole::as_str),
    });
    if let (Some(payload), Some(extra)) = (payload.as_object_mut(), extra.as_object_mut()) {
        payload.append(extra);
    }
    NewEvent {
        account_id: Some(mailbox.account_id.to_string()),
        kind: kind.to_owned(),
        payload,
    }
}

async fn insert_mailbox(conn: &mut SqliteConnection, new: &NewMailbox) -> Result<i64, StoreError> {
    let now = to_millis(Utc::now());
    let inserted = sqlx::query_scalar(
        "INSERT INTO mailboxes (account_id, name, delimiter, role, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(new.account_id.as_str().to_owned())
    .bind(new.name.clone())
    .bind(new.delimiter.clone())
    .bind(new.role.map(MailboxRole::as_str))
    .bind(now)
    .bind(now)
    .fetch_one(conn)
    .await;
    match inserted {
        Err(err) if is_foreign_key_violation(&err) => {
            Err(StoreError::not_found(format!("account {}", new.account_id)))
        }
        other => Ok(other?),
    }
}

async fn existing_mailbox(
    conn: &mut SqliteConnection,
    id: MailboxId,
) -> Result<Mailbox, StoreError> {
    fetch_mailbox(conn, id)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("mailbox {id}")))
}

#[async_trait]
impl Mailboxes for SqliteMailboxes {
    async fn create(&self, new: NewMailbox) -> Result<Mailbox, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        let id = MailboxId(insert_mailbox(&mut tx, &new).await?);
        let mailbox = existing_mailbox(&mut tx, id).await?;
        insert_event(
            &mut *tx,
            mailbox_event("mailbox.created", &mailbox, json!({})),
        )
        .await?;
        tx.commit().await?;
        self.appended.notify_waiters();
        Ok(mailbox)
    }

    async fn get(&self, id: MailboxId) -> Result<Option<Mailbox>, StoreError> {
        fetch_mailbox(&self.db.read, id).await
    }

    async fn list(&self, account_id: &AccountId) -> Result<Vec<Mailbox>, StoreError> {
        let rows: Vec<MailboxRow> =
            sqlx::query_as(select_mailboxes!("WHERE account_id = ? ORDER BY name"))
                .bind(account_id.as_str().to_owned())
                .fetch_all(&self.db.read)
                .await?;
        rows.into_iter().map(MailboxRow::into_mailbox).collect()
    }

    async fn set_attributes(
        &self,
        id: MailboxId,
        delimiter: Option<String>,
        role: Option<MailboxRole>,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE mailboxes SET delimiter = ?, role = ?, updated_at = ? WHERE id = ?",
        )
        .bind(delimiter)
        .bind(role.map(MailboxRole::as_str))
        .bind(to_millis(Utc::now()))
        .bind(id.0)
        .execute(&mut *self.db.write().await?)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn set_sync_state(&self, id: MailboxId, state: SyncState) -> Result<(), StoreError> {
        let mut tx = begin_write(&self.db).await?;
        fetch_current_mailbox(&mut tx, id, state.uidvalidity).await?;
        write_sync_state(&mut tx, id, &state).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete(&self, id: MailboxId) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        let Some(mailbox) = fetch_mailbox(&mut *tx, id).await? else {
            return Ok(false);
        };
        sqlx::query("DELETE FROM mailboxes WHERE id = ?")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        insert_event(
            &mut *tx,
            mailbox_event("mailbox.deleted", &mailbox, json!({})),
        )
        .await?;
        tx.commit().await?;
        self.appended.notify_waiters();
        Ok(true)
    }

    async fn reset(&self, id: MailboxId, new_uidvalidity: u32) -> Result<u64, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        let mailbox = existing_mailbox(&mut tx, id).await?;
        let deleted = sqlx::query("DELETE FROM messages WHERE mailbox_id = ?")
            .bind(id.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "UPDATE mailboxes SET uidvalidity = NULL, uidnext = NULL, highestmodseq = NULL, \
             lowest_uid = NULL, initial_done = 0, updated_at = ? WHERE id = ?",
        )
        .bind(to_millis(Utc::now()))
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        let extra = json!({
            "old_uidvalidity": mailbox.sync.map(|sync| sync.uidvalidity),
            "new_uidvalidity": new_uidvalidity,
            "deleted_messages": deleted,
        });
        insert_event(&mut *tx, mailbox_event("mailbox.reset", &mailbox, extra)).await?;
        tx.commit().await?;
        self.appended.notify_waiters();
        Ok(deleted)
    }
}
