//! Local full-text search over stored messages: subject, From/To, snippet and, when the raw
//! message is stored, its text.
//!
//! Purpose: turn what a user typed into a safe FTS query and find the best-matching messages of
//! the accounts a caller may see.
//! Non-goal: a query language. No operators, prefixes, columns or phrases are offered: every
//! word the user typed is matched as plain text, all of them required (AND).
//! Key decision: [`SearchText::parse`] quotes every term as an FTS5 string (a `"` doubled), so
//! `"`, `*`, `-`, `:`, `(`, `NEAR`, `OR`, `NOT` in user input are text and can never change the
//! query's meaning or make it fail to parse; a query with no word at all is refused here, before
//! it reaches the database. The index is kept in the transaction that changes `messages`.

use std::sync::LazyLock;

use async_trait::async_trait;
use mail_parser::MessageParser;

use crate::{AccountId, MessageId, StoreError};

/// The largest result list [`Search::search`] returns.
pub const MAX_SEARCH_RESULTS: u32 = 500;

/// The user's search text, made safe for FTS5: each whitespace-separated term quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText {
    fts: String,
}

/// The error of parsing a [`SearchText`] with no letter or digit in it (nothing to look for).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the search text has no word to look for")]
pub struct EmptySearch;

impl SearchText {
    /// Quotes every term of `text`; refuses a text without any letter or digit (empty, blanks,
    /// or punctuation only), which the index could never match.
    pub fn parse(text: &str) -> Result<SearchText, EmptySearch> {
        let terms: Vec<String> = text
            .split_whitespace()
            .filter(|term| term.chars().any(char::is_alphanumeric))
            .map(|term| format!("\"{}\"", term.replace('"', "\"\"")))
            .collect();
        if terms.is_empty() {
            return Err(EmptySearch);
        }
        Ok(SearchText {
            fts: terms.join(" "),
        })
    }

    /// The FTS5 query string: quoted terms separated by spaces (FTS5's implicit AND).
    pub fn as_fts(&self) -> &str {
        &self.fts
    }
}

/// What to search for, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The text.
    pub text: SearchText,
    /// Only messages of these accounts; `None` searches every account.
    pub account_ids: Option<Vec<AccountId>>,
    /// At most this many (clamped to `1..=MAX_SEARCH_RESULTS`).
    pub limit: u32,
}

/// One message found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchHit {
    /// The message.
    pub id: MessageId,
    /// FTS5's bm25 rank: lower is a better match. Comparable only within one result list.
    pub rank: f64,
}

/// The full-text search repository.
#[async_trait]
pub trait Search: Send + Sync {
    /// The messages matching every term, best match first (then newest first).
    async fn search(&self, query: SearchQuery) -> Result<Vec<SearchHit>, StoreError>;
}

/// Body text beyond this many bytes is not indexed: enough for any real letter, and a huge
/// generated text cannot bloat the index.
const MAX_INDEXED_BODY: usize = 256 * 1024;

/// What the full-text index keeps of a message's body: its text parts (text/plain, and text/html
/// as text), joined, at most 256 KiB. Public so that a caller that has parsed the message already
/// (the sync engine) hands the text over instead of the store parsing it a second time.
pub fn indexable_text(message: &mail_parser::Message<'_>) -> String {
    let mut text = String::new();
    for part in (0..).map_while(|index| message.body_text(index)) {
        text.push_str(&part);
        text.push('\n');
        if text.len() >= MAX_INDEXED_BODY {
            break;
        }
    }
    truncate_at_char(&mut text, MAX_INDEXED_BODY);
    text
}

/// A parser for the text parts alone: the MIME fields that find and decode them, every other
/// header field skipped unparsed (the sync's own parser does the same for what it stores).
static BODY_PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .with_mime_headers()
        .default_header_ignore()
});

/// [`indexable_text`] of a raw message; empty when it does not parse as a message.
pub(crate) fn raw_body_text(raw: &[u8]) -> String {
    BODY_PARSER
        .parse(raw)
        .map(|message| indexable_text(&message))
        .unwrap_or_default()
}

pub(crate) fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}
