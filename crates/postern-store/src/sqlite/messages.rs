//! SQLite implementation of [`Messages`]: the sync engine's batch writes and the readers' pages.
//!
//! Purpose: the SQL for the `messages` and `message_bodies` tables and the message events.
//! Non-goal: full-text search itself (see `search.rs`); this module only keeps its index in step
//! when it inserts a message or stores a body.
//! Key decision: a batch is applied inside one `BEGIN IMMEDIATE` transaction. New messages go in
//! with multi-row statements (messages, bodies, search rows, events: a few statements per hundred
//! messages, since each statement is a round trip to sqlx's SQLite worker thread); `RETURNING`
//! says which UIDs were really inserted, which decides their events. Flag updates and deletes
//! stay row by row: each must say whether it changed anything, and they are few.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::events::{insert_event, insert_serialized_events};
use super::mailboxes::{fetch_current_mailbox, write_sync_state};
use super::search::{SearchRow, index_new_messages, reindex_message};
use super::{begin_write, decode_json, from_millis, from_optional_millis, to_count, to_millis};
use crate::prepared::{
    PreparedMessage, SearchText, modseq_column, normalized_flags, object_members,
};
use crate::{
    BatchOutcome, EmailAddress, Envelope, FlagUpdate, ListCursor, Mailbox, MailboxId, Message,
    MessageId, MessagePage, MessageQuery, Messages, MimeSummary, NewEvent, PreparedBatch,
    StoreError, SyncBatch,
};

/// The largest page [`Messages::list`] returns.
const MAX_PAGE: u32 = 1000;

/// `SELECT <every column but the body> FROM messages <tail>`, as one static string.
/// The listing filters, each a no-op when its parameter is NULL / false (see `MessageFilter`).
/// Parameters in order: unseen, from pattern (twice), since (twice), before (twice).
macro_rules! filter_conditions {
    () => {
        "(? = 0 OR NOT EXISTS (SELECT 1 FROM json_each(messages.flags) WHERE value = '\\Seen')) \
         AND (? IS NULL OR from_addrs LIKE ? ESCAPE '\\') \
         AND (? IS NULL OR internaldate >= ?) \
         AND (? IS NULL OR internaldate < ?)"
    };
}

/// `%text%` for LIKE, with LIKE's own wildcards in `text` taken literally.
fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

macro_rules! select_messages {
    ($($tail:expr),+ $(,)?) => {
        concat!(
            "SELECT id, account_id, mailbox_id, uidvalidity, uid, modseq, message_id, in_reply_to, \
             refs, from_addrs, to_addrs, cc_addrs, subject, sent_at, internaldate, size, flags, \
             snippet, mime, parse_problems, created_at, \
             EXISTS (SELECT 1 FROM message_bodies WHERE message_id = messages.id) AS has_body \
             FROM messages ",
            $($tail),+
        )
    };
}

pub(super) struct SqliteMessages {
    db: super::Pools,
    /// Woken after a commit that appended events (see `EventSignal`).
    appended: super::events::EventSignal,
}

impl SqliteMessages {
    pub(super) fn new(db: super::Pools, appended: super::events::EventSignal) -> Self {
        SqliteMessages { db, appended }
    }
}

/// One `messages` row as SQLite returns it.
#[derive(sqlx::FromRow)]
struct MessageRow {
    id: i64,
    account_id: String,
    mailbox_id: i64,
    uidvalidity: i64,
    uid: i64,
    modseq: Option<i64>,
    message_id: Option<String>,
    in_reply_to: Option<String>,
    refs: String,
    from_addrs: String,
    to_addrs: String,
    cc_addrs: String,
    subject: Option<String>,
    sent_at: Option<i64>,
    internaldate: i64,
    size: i64,
    flags: String,
    snippet: Option<String>,
    mime: String,
    parse_problems: Option<String>,
    created_at: i64,
    has_body: bool,
}

impl MessageRow {
    fn what(&self, column: &str) -> String {
        format!("messages.{column} of message {}", self.id)
    }

    fn u32_column(&self, value: i64, column: &str) -> Result<u32, StoreError> {
        u32::try_from(value).map_err(|_| StoreError::corrupt(self.what(column)))
    }

    fn addresses(&self, json: &str, column: &str) -> Result<Vec<EmailAddress>, StoreError> {
        decode_json(json, || self.what(column))
    }

    fn envelope(&self) -> Result<Envelope, StoreError> {
        Ok(Envelope {
            message_id: self.message_id.clone(),
            in_reply_to: self.in_reply_to.clone(),
            references: decode_json(&self.refs, || self.what("refs"))?,
            from: self.addresses(&self.from_addrs, "from_addrs")?,
            to: self.addresses(&self.to_addrs, "to_addrs")?,
            cc: self.addresses(&self.cc_addrs, "cc_addrs")?,
            subject: self.subject.clone(),
            date: from_optional_millis(self.sent_at, || self.what("sent_at"))?,
        })
    }

    fn into_message(self) -> Result<Message, StoreError> {
        let modseq = self
            .modseq
            .map(|modseq| {
                u64::try_from(modseq).map_err(|_| StoreError::corrupt(self.what("modseq")))
            })
            .transpose()?;
        Ok(Message {
            id: MessageId(self.id),
            account_id: super::parse_stored(&self.account_id, || self.what("account_id"))?,
            mailbox_id: MailboxId(self.mailbox_id),
            uidvalidity: self.u32_column(self.uidvalidity, "uidvalidity")?,
            uid: self.u32_column(self.uid, "uid")?,
            modseq,
            flags: decode_json(&self.flags, || self.what("flags"))?,
            internaldate: from_millis(self.internaldate, || self.what("internaldate"))?,
            size: self.u32_column(self.size, "size")?,
            envelope: self.envelope()?,
            mime: decode_json::<MimeSummary>(&self.mime, || self.what("mime"))?,
            created_at: from_millis(self.created_at, || self.what("created_at"))?,
            has_body: self.has_body,
            snippet: self.snippet,
            parse_problems: self.parse_problems,
        })
    }
}

/// The event about one message, with the fields every message event carries.
fn message_event(
    kind: &str,
    mailbox: &Mailbox,
    id: i64,
    uid: u32,
    mut extra: serde_json::Value,
) -> NewEvent {
    // Plain strings and numbers: serializing them cannot fail.
    let mut payload = serde_json::to_value(MailboxFields::of(mailbox)).unwrap_or_default();
    if let Some(payload) = payload.as_object_mut() {
        payload.insert("message_id".to_owned(), id.into());
        payload.insert("uid".to_owned(), uid.into());
        if let Some(extra) = extra.as_object_mut() {
            payload.append(extra);
        }
    }
    NewEvent {
        account_id: Some(mailbox.account_id.to_string()),
        kind: kind.to_owned(),
        payload,
    }
}

/// Rows per multi-row statement: a whole default batch (at 20 parameters a message, 10,000 stay
/// below SQLite's 32,766). Each statement is a round trip to the connection's thread, and on a
/// busy machine every hand-off waits for a core: one statement per table per batch, not five.
const ROWS_PER_STATEMENT: usize = 500;

/// What is left of a prepared message once its row is bound: what is stored after its id is known.
struct AfterInsert {
    uid: u32,
    body: Option<Vec<u8>>,
    search: SearchText,
    event_fields: String,
}

/// Inserts the messages whose UIDs are not stored yet, in one statement, then their bodies and
/// search rows; returns the inserted ones with their new ids (the first of two equal UIDs wins,
/// as row by row).
async fn insert_messages(
    conn: &mut SqliteConnection,
    mailbox: &Mailbox,
    uidvalidity: u32,
    messages: Vec<PreparedMessage>,
) -> Result<Vec<(i64, AfterInsert)>, StoreError> {
    let created_at = to_millis(Utc::now());
    let mut rest = Vec::with_capacity(messages.len());
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO messages (account_id, mailbox_id, uidvalidity, uid, modseq, message_id, \
         in_reply_to, refs, from_addrs, to_addrs, cc_addrs, subject, sent_at, internaldate, size, \
         flags, snippet, mime, parse_problems, created_at) ",
    );
    insert.push_values(messages, |mut row, message| {
        let columns = message.row;
        row.push_bind(mailbox.account_id.as_str())
            .push_bind(mailbox.id.0)
            .push_bind(i64::from(uidvalidity))
            .push_bind(i64::from(message.uid))
            .push_bind(columns.modseq)
            .push_bind(columns.message_id)
            .push_bind(columns.in_reply_to)
            .push_bind(columns.refs)
            .push_bind(columns.from)
            .push_bind(columns.to)
            .push_bind(columns.cc)
            .push_bind(columns.subject)
            .push_bind(columns.sent_at)
            .push_bind(columns.internaldate)
            .push_bind(columns.size)
            .push_bind(columns.flags)
            .push_bind(columns.snippet)
            .push_bind(columns.mime)
            .push_bind(columns.parse_problems)
            .push_bind(created_at);
        rest.push(AfterInsert {
            uid: message.uid,
            body: message.body,
            search: message.search,
            event_fields: message.event_fields,
        });
    });
    insert.push(" ON CONFLICT (mailbox_id, uidvalidity, uid) DO NOTHING RETURNING uid, id");
    let inserted: Vec<(i64, i64)> = insert.build_query_as().fetch_all(&mut *conn).await?;
    let mut ids: HashMap<i64, i64> = inserted.into_iter().collect();
    let mut stored: Vec<(i64, AfterInsert)> = rest
        .into_iter()
        .filter_map(|message| Some((ids.remove(&i64::from(message.uid))?, message)))
        .collect();
    insert_bodies(conn, &mut stored).await?;
    let indexed = stored.iter_mut().map(|(id, message)| SearchRow {
        id: *id,
        text: std::mem::take(&mut message.search),
    });
    index_new_messages(conn, indexed.collect()).await?;
    Ok(stored)
}

/// Stores the bodies of the messages just inserted, moving them out.
async fn insert_bodies(
    conn: &mut SqliteConnection,
    stored: &mut [(i64, AfterInsert)],
) -> Result<(), StoreError> {
    let bodies: Vec<(i64, Vec<u8>)> = stored
        .iter_mut()
        .filter_map(|(id, message)| Some((*id, message.body.take()?)))
        .collect();
    if bodies.is_empty() {
        return Ok(());
    }
    let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO message_bodies (message_id, raw) ");
    insert.push_values(bodies, |mut row, (id, raw)| {
        row.push_bind(id).push_bind(raw);
    });
    insert.build().execute(&mut *conn).await?;
    Ok(())
}

/// Applies new flags to one stored message; its id and its flags as stored when they really
/// changed.
async fn update_flags(
    conn: &mut SqliteConnection,
    mailbox_id: MailboxId,
    uidvalidity: u32,
    update: &FlagUpdate,
) -> Result<Option<(i64, Vec<String>)>, StoreError> {
    let stored: Option<(i64, String)> = sqlx::query_as(
        "SELECT id, flags FROM messages WHERE mailbox_id = ? AND uidvalidity = ? AND uid = ?",
    )
    .bind(mailbox_id.0)
    .bind(i64::from(uidvalidity))
    .bind(i64::from(update.uid))
    .fetch_optional(&mut *conn)
    .await?;
    let Some((id, stored_flags)) = stored else {
        return Ok(None);
    };
    let normalized = normalized_flags(update.flags.clone());
    let flags = serde_json::to_string(&normalized)
        .map_err(|_| StoreError::corrupt(format!("flags of message {id}")))?;
    let changed = flags != stored_flags;
    sqlx::query("UPDATE messages SET flags = ?, modseq = COALESCE(?, modseq) WHERE id = ?")
        .bind(flags)
        .bind(modseq_column(update.modseq))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(changed.then_some((id, normalized)))
}

async fn delete_uid(
    conn: &mut SqliteConnection,
    mailbox_id: MailboxId,
    uidvalidity: u32,
    uid: u32,
) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "DELETE FROM messages WHERE mailbox_id = ? AND uidvalidity = ? AND uid = ? RETURNING id",
    )
    .bind(mailbox_id.0)
    .bind(i64::from(uidvalidity))
    .bind(i64::from(uid))
    .fetch_optional(conn)
    .await?)
}

/// Inserts the batch's new messages, announcing each one actually inserted.
async fn apply_new(
    conn: &mut SqliteConnection,
    mailbox: &Mailbox,
    uidvalidity: u32,
    messages: Vec<PreparedMessage>,
) -> Result<u32, StoreError> {
    let mailbox_fields = object_members(&MailboxFields::of(mailbox));
    let mut inserted = 0;
    let mut messages = messages.into_iter().peekable();
    while messages.peek().is_some() {
        let chunk: Vec<PreparedMessage> = messages.by_ref().take(ROWS_PER_STATEMENT).collect();
        let stored = insert_messages(conn, mailbox, uidvalidity, chunk).await?;
        inserted += u32::try_from(stored.len()).unwrap_or(u32::MAX);
        let payloads = stored
            .into_iter()
            .map(|(id, message)| {
                format!(
                    "{{{mailbox_fields},\"message_id\":{id},{}}}",
                    message.event_fields
                )
            })
            .collect();
        let account_id = mailbox.account_id.as_str();
        insert_serialized_events(conn, account_id, "message.new", payloads).await?;
    }
    Ok(inserted)
}

/// The members every message event's payload starts with (then `message_id` and `uid`).
#[derive(Serialize)]
struct MailboxFields<'m> {
    account_id: &'m str,
    mailbox_id: i64,
    mailbox: &'m str,
}

impl<'m> MailboxFields<'m> {
    fn of(mailbox: &'m Mailbox) -> MailboxFields<'m> {
        MailboxFields {
            account_id: mailbox.account_id.as_str(),
            mailbox_id: mailbox.id.0,
            mailbox: &mailbox.name,
        }
    }
}

async fn apply_flag_updates(
    conn: &mut SqliteConnection,
    mailbox: &Mailbox,
    batch: &SyncBatch,
) -> Result<u32, StoreError> {
    let mut updated = 0;
    for update in &batch.flag_updates {
        let changed = update_flags(conn, mailbox.id, batch.state.uidvalidity, update).await?;
        let Some((id, flags)) = changed else { continue };
        updated += 1;
        let extra = json!({ "flags": flags });
        let event = message_event("message.updated", mailbox, id, update.uid, extra);
        insert_event(&mut *conn, event).await?;
    }
    Ok(updated)
}

async fn apply_vanished(
    conn: &mut SqliteConnection,
    mailbox: &Mailbox,
    batch: &SyncBatch,
) -> Result<u32, StoreError> {
    let mut deleted = 0;
    for &uid in &batch.vanished {
        let Some(id) = delete_uid(conn, mailbox.id, batch.state.uidvalidity, uid).await? else {
            continue;
        };
        deleted += 1;
        let event = message_event("message.deleted", mailbox, id, uid, json!({}));
        insert_event(&mut *conn, event).await?;
    }
    Ok(deleted)
}

#[async_trait]
impl Messages for SqliteMessages {
    async fn apply_prepared(&self, prepared: PreparedBatch) -> Result<BatchOutcome, StoreError> {
        let PreparedBatch { batch, messages } = prepared;
        let uidvalidity = batch.state.uidvalidity;
        let mut tx = begin_write(&self.db).await?;
        let mailbox = fetch_current_mailbox(&mut tx, batch.mailbox_id, uidvalidity).await?;
        let outcome = BatchOutcome {
            inserted: apply_new(&mut tx, &mailbox, uidvalidity, messages).await?,
            updated: apply_flag_updates(&mut tx, &mailbox, &batch).await?,
            deleted: apply_vanished(&mut tx, &mailbox, &batch).await?,
        };
        write_sync_state(&mut tx, mailbox.id, &batch.state).await?;
        tx.commit().await?;
        self.appended.notify_waiters();
        Ok(outcome)
    }

    async fn get(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        let row: Option<MessageRow> = sqlx::query_as(select_messages!("WHERE id = ?"))
            .bind(id.0)
            .fetch_optional(&self.db.read)
            .await?;
        row.map(MessageRow::into_message).transpose()
    }

    async fn get_by_uid(
        &self,
        mailbox_id: MailboxId,
        uid: u32,
    ) -> Result<Option<Message>, StoreError> {
        let row: Option<MessageRow> = sqlx::query_as(select_messages!(
            "WHERE mailbox_id = ? AND uid = ? AND uidvalidity = \
             (SELECT uidvalidity FROM mailboxes WHERE id = ?)"
        ))
        .bind(mailbox_id.0)
        .bind(i64::from(uid))
        .bind(mailbox_id.0)
        .fetch_optional(&self.db.read)
        .await?;
        row.map(MessageRow::into_message).transpose()
    }

    async fn body(&self, id: MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT raw FROM message_bodies WHERE message_id = ?")
                .bind(id.0)
                .fetch_optional(&self.db.read)
                .await?,
        )
    }

    async fn put_body(&self, id: MessageId, raw: &[u8]) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM messages WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Ok(false);
        }
        let stored = sqlx::query(
            "INSERT INTO message_bodies (message_id, raw) VALUES (?, ?) \
             ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(id.0)
        .bind(raw)
        .execute(&mut *tx)
        .await?;
        if stored.rows_affected() == 1 {
            reindex_message(&mut tx, id.0, raw).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn get_by_uids(
        &self,
        mailbox_id: MailboxId,
        uids: &[u32],
    ) -> Result<Vec<Message>, StoreError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        // One statement whatever the count: the UIDs travel as one JSON array.
        let rows: Vec<MessageRow> = sqlx::query_as(select_messages!(
            "WHERE mailbox_id = ? AND uidvalidity = (SELECT uidvalidity FROM mailboxes WHERE id = ?) \
             AND uid IN (SELECT value FROM json_each(?)) ORDER BY internaldate DESC, id DESC"
        ))
        .bind(mailbox_id.0)
        .bind(mailbox_id.0)
        .bind(Json(uids))
        .fetch_all(&self.db.read)
        .await?;
        rows.into_iter().map(MessageRow::into_message).collect()
    }

    async fn list(&self, query: MessageQuery) -> Result<MessagePage, StoreError> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        // No cursor: start above every possible position.
        let (before_date, before_id) = query.after.map_or((i64::MAX, i64::MAX), |cursor| {
            (cursor.internaldate_ms, cursor.id.0)
        });
        // Two statements rather than `(? IS NULL OR mailbox_id = ?)` so each uses its index.
        let statement = match query.mailbox_id {
            None => sqlx::query_as(select_messages!(
                "WHERE account_id = ? AND (internaldate, id) < (?, ?) AND ",
                filter_conditions!(),
                " ORDER BY internaldate DESC, id DESC LIMIT ?"
            ))
            .bind(query.account_id.as_str().to_owned()),
            Some(mailbox_id) => sqlx::query_as(select_messages!(
                "WHERE mailbox_id = ? AND (internaldate, id) < (?, ?) AND ",
                filter_conditions!(),
                " ORDER BY internaldate DESC, id DESC LIMIT ?"
            ))
            .bind(mailbox_id.0),
        };
        let filter = &query.filter;
        let from_pattern = filter.from.as_deref().map(like_pattern);
        // One more than asked tells whether another page follows.
        let rows: Vec<MessageRow> = statement
            .bind(before_date)
            .bind(before_id)
            .bind(filter.unseen)
            .bind(from_pattern.clone())
            .bind(from_pattern)
            .bind(filter.since.map(to_millis))
            .bind(filter.since.map(to_millis))
            .bind(filter.before.map(to_millis))
            .bind(filter.before.map(to_millis))
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.db.read)
            .await?;
        let mut messages = rows
            .into_iter()
            .map(MessageRow::into_message)
            .collect::<Result<Vec<_>, _>>()?;
        let more = messages.len() > limit as usize;
        messages.truncate(limit as usize);
        let next = more
            .then(|| messages.last())
            .flatten()
            .map(|last| ListCursor {
                internaldate_ms: to_millis(last.internaldate),
                id: last.id,
            });
        Ok(MessagePage { messages, next })
    }

    async fn uids(&self, mailbox_id: MailboxId) -> Result<Vec<u32>, StoreError> {
        let uids: Vec<i64> =
            sqlx::query_scalar("SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid")
                .bind(mailbox_id.0)
                .fetch_all(&self.db.read)
                .await?;
        uids.into_iter()
            .map(|uid| {
                u32::try_from(uid).map_err(|_| {
                    StoreError::corrupt(format!("messages.uid in mailbox {mailbox_id}"))
                })
            })
            .collect()
    }

    async fn flags_in_range(
        &self,
        mailbox_id: MailboxId,
        first: u32,
        last: u32,
    ) -> Result<Vec<(u32, Vec<String>)>, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT uid, flags FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ? \
             ORDER BY uid",
        )
        .bind(mailbox_id.0)
        .bind(i64::from(first))
        .bind(i64::from(last))
        .fetch_all(&self.db.read)
        .await?;
        let what = || format!("messages of mailbox {mailbox_id}");
        rows.into_iter()
            .map(|(uid, flags)| {
                let uid = u32::try_from(uid).map_err(|_| StoreError::corrupt(what()))?;
                Ok((uid, decode_json(&flags, what)?))
            })
            .collect()
    }

    async fn count(&self, mailbox_id: MailboxId) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE mailbox_id = ?")
            .bind(mailbox_id.0)
            .fetch_one(&self.db.read)
            .await?;
        to_count(count, "message count")
    }
}

#[cfg(test)]
#[path = "messages_tests.rs"]
mod tests;
