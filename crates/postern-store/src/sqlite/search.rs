//! SQLite implementation of [`Search`], and the indexing the message writes call.
//!
//! Purpose: the SQL of the `message_search` FTS5 table (migration 0008) and the extraction of a
//! raw message's text for it.
//! Non-goal: indexing attachments; only the text parts (text/plain, and text/html as text) of a
//! raw message are indexed.
//! Key decision: the index is written by the same connection and transaction as the message
//! (`insert_message`, `put_body`), and removed by a trigger on `messages`, so it can never list
//! a message that is gone or miss one that committed. Header fields are read back from the
//! `messages` row with the same SQL the migration's back-fill uses, so both index alike.

use async_trait::async_trait;
use mail_parser::MessageParser;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::search::indexable_text;
use crate::{MAX_SEARCH_RESULTS, MessageId, Search, SearchHit, SearchQuery, StoreError};

/// The [`Search`] repository over the shared pool.
pub(crate) struct SqliteSearch {
    db: super::Pools,
}

impl SqliteSearch {
    pub(crate) fn new(db: super::Pools) -> Self {
        SqliteSearch { db }
    }
}

/// (Re)indexes the stored message `id`: its header fields and snippet from `messages`, and the
/// text of `raw` when given. Call inside the transaction that wrote the message or its body.
pub(super) async fn index_message(
    conn: &mut SqliteConnection,
    id: i64,
    raw: Option<&[u8]>,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM message_search WHERE rowid = ?")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    index_new_messages(conn, &[(id, raw.map(body_text).unwrap_or_default())]).await
}

/// Indexes messages inserted in the current transaction, with one statement: `(id, body text)`
/// pairs. A new id was never indexed (ids are never reused), so nothing is deleted first;
/// [`index_message`] deletes, then calls this. The header fields come from `messages` with the same SQL.
pub(super) async fn index_new_messages(
    conn: &mut SqliteConnection,
    messages: &[(i64, String)],
) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO message_search (rowid, subject, people, snippet, body) \
         SELECT id, coalesce(subject, ''), \
                (SELECT coalesce(group_concat( \
                     coalesce(json_extract(value, '$.name'), '') || ' ' || \
                     coalesce(json_extract(value, '$.address'), ''), ' '), '') \
                   FROM (SELECT value FROM json_each(messages.from_addrs) \
                         UNION ALL SELECT value FROM json_each(messages.to_addrs))), \
                coalesce(snippet, ''), new.column2 \
           FROM (",
    );
    insert.push_values(messages, |mut row, (id, text)| {
        row.push_bind(*id).push_bind(text.as_str());
    });
    insert.push(") AS new JOIN messages ON messages.id = new.column1");
    insert.build().execute(&mut *conn).await?;
    Ok(())
}

/// The text parts of a raw message, joined; empty when it does not parse as a message.
pub(super) fn body_text(raw: &[u8]) -> String {
    MessageParser::default()
        .parse(raw)
        .map(|message| indexable_text(&message))
        .unwrap_or_default()
}

#[async_trait]
impl Search for SqliteSearch {
    async fn search(&self, query: SearchQuery) -> Result<Vec<SearchHit>, StoreError> {
        if query.account_ids.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let accounts: Option<Vec<&str>> = query
            .account_ids
            .as_ref()
            .map(|ids| ids.iter().map(|id| id.as_str()).collect());
        let accounts = accounts.map(Json);
        let limit = query.limit.clamp(1, MAX_SEARCH_RESULTS);
        // Weights: a word in the subject counts most, then From/To, then snippet and body.
        let rows: Vec<(i64, f64)> = sqlx::query_as(
            "SELECT messages.id, bm25(message_search, 3.0, 2.0, 1.0, 1.0) AS score \
               FROM message_search JOIN messages ON messages.id = message_search.rowid \
              WHERE message_search MATCH ? \
                AND (? IS NULL OR messages.account_id IN (SELECT value FROM json_each(?))) \
              ORDER BY score, messages.internaldate DESC, messages.id DESC \
              LIMIT ?",
        )
        .bind(query.text.as_fts())
        .bind(accounts.clone())
        .bind(accounts)
        .bind(i64::from(limit))
        .fetch_all(&self.db.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, rank)| SearchHit {
                id: MessageId(id),
                rank,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_parts_of_a_message_are_extracted() {
        let raw = b"From: a@example.test\r\nSubject: hi\r\nContent-Type: text/plain\r\n\r\n\
                    The quarterly figures are attached.\r\n";
        let text = body_text(raw);
        assert!(text.contains("quarterly figures"), "{text}");
        assert!(!text.contains("Subject"), "{text}");
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        let mut text = "ééé".to_owned();
        crate::search::truncate_at_char(&mut text, 3);
        assert_eq!(text, "é");
    }
}
