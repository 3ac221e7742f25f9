//! SQLite implementation of [`Search`], and the indexing the message writes call.
//!
//! Purpose: the SQL of the `message_search` FTS5 table (migration 0008) and the extraction of a
//! raw message's text for it.
//! Non-goal: indexing attachments; only the text parts (text/plain, and text/html as text) of a
//! raw message are indexed.
//! Key decision: the index is written by the same connection and transaction as the message
//! (`insert_messages`, `put_body`), and removed by a trigger on `messages`, so it can never list
//! a message that is gone or miss one that committed. New messages are indexed from the values
//! being stored (no read-back, no JSON decoding in SQL: the sync's bulk path); a body stored
//! later reindexes from the `messages` row with the SQL of the migration's back-fill. Both
//! build the same text (tested).

use async_trait::async_trait;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::prepared::SearchText;
use crate::search::raw_body_text;
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

/// One row of `message_search`: what a message is found by.
pub(super) struct SearchRow {
    pub id: i64,
    pub text: SearchText,
}

/// The `people` text of a `messages` row, from its JSON address columns (as migration 0008's
/// back-fill builds it). A macro so the statements using it stay literal SQL.
macro_rules! people_of_messages_row {
    () => {
        "(SELECT coalesce(group_concat( \
             coalesce(json_extract(value, '$.name'), '') || ' ' || \
             coalesce(json_extract(value, '$.address'), ''), ' '), '') \
           FROM (SELECT value FROM json_each(messages.from_addrs) \
                 UNION ALL SELECT value FROM json_each(messages.to_addrs)))"
    };
}

/// Reindexes the stored message `id` after its raw message arrived: header fields and snippet
/// read back from `messages`, the text of `raw`. Call inside the transaction that stored it.
pub(super) async fn reindex_message(
    conn: &mut SqliteConnection,
    id: i64,
    raw: &[u8],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM message_search WHERE rowid = ?")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let body = raw_body_text(raw);
    sqlx::query(concat!(
        "INSERT INTO message_search (rowid, subject, people, snippet, body) \
         SELECT id, coalesce(subject, ''), ",
        people_of_messages_row!(),
        ", CASE WHEN ?1 = '' THEN coalesce(snippet, '') ELSE '' END, ?1 \
           FROM messages WHERE id = ?2"
    ))
    .bind(body)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Indexes messages inserted in the current transaction, with one statement. A new id was never
/// indexed (ids are never reused), so nothing is deleted first.
pub(super) async fn index_new_messages(
    conn: &mut SqliteConnection,
    rows: Vec<SearchRow>,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO message_search (rowid, subject, people, snippet, body) ",
    );
    insert.push_values(rows, |mut values, row| {
        values
            .push_bind(row.id)
            .push_bind(row.text.subject)
            .push_bind(row.text.people)
            .push_bind(row.text.snippet)
            .push_bind(row.text.body);
    });
    insert.build().execute(&mut *conn).await?;
    Ok(())
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
    use crate::EmailAddress;
    use crate::prepared::people_text;

    #[test]
    fn the_text_parts_of_a_message_are_extracted() {
        let raw = b"From: a@example.test\r\nSubject: hi\r\nContent-Type: text/plain\r\n\r\n\
                    The quarterly figures are attached.\r\n";
        let text = raw_body_text(raw);
        assert!(text.contains("quarterly figures"), "{text}");
        assert!(!text.contains("Subject"), "{text}");
    }

    #[tokio::test]
    async fn people_text_is_the_same_from_rust_and_from_the_stored_json() {
        use sqlx::Connection;
        let address = |name: Option<&str>, address: Option<&str>| EmailAddress {
            name: name.map(str::to_owned),
            address: address.map(str::to_owned),
        };
        let from = vec![address(Some("Zoë Ä"), Some("zoe@example.test"))];
        let to = vec![
            address(None, Some("bob@example.test")),
            address(Some("Undisclosed"), None),
            address(Some("Carol"), Some("carol@example.test")),
        ];
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE messages (from_addrs TEXT, to_addrs TEXT)")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO messages VALUES (?, ?)")
            .bind(Json(&from))
            .bind(Json(&to))
            .execute(&mut conn)
            .await
            .unwrap();
        let from_sql: String = sqlx::query_scalar(concat!(
            "SELECT ",
            people_of_messages_row!(),
            " FROM messages"
        ))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let from_rust = people_text(from.iter().chain(&to));
        assert_eq!(from_rust, from_sql);
        assert_eq!(
            from_rust,
            "Zoë Ä zoe@example.test  bob@example.test Undisclosed  Carol carol@example.test"
        );
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        let mut text = "ééé".to_owned();
        crate::search::truncate_at_char(&mut text, 3);
        assert_eq!(text, "é");
    }
}
