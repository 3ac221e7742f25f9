//! Messages of a mailbox: what the sync engine stores, and how readers page through it.
//!
//! Purpose: apply one sync batch (new messages, flag changes, vanished UIDs, the mailbox's new
//! cursor and every event they cause) atomically, read messages one by one or newest first with
//! a cursor, answer the questions incremental sync asks (stored UIDs, stored flags), and keep a
//! body fetched on demand ([`Messages::put_body`]).
//! Non-goal: parsing mail or talking IMAP; messages arrive already parsed by `postern-sync`.
//! Key decisions:
//! - [`Messages::apply`] is the one write path of the sync engine: a `kill -9` between two
//!   batches leaves each batch either fully stored with its cursor and events, or not at all.
//! - `message.new` is appended only for rows really inserted (an already stored UID is left
//!   alone), and `message.updated` only when the flags really change, so replaying a batch after
//!   a crash announces nothing twice.
//! - The listing cursor is `(internaldate, id)`, both descending: a message inserted while a
//!   reader pages sorts either before the cursor (seen on a refresh) or after it (seen on a later
//!   page), never twice and never in place of another.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{AccountId, MailboxId, PreparedBatch, StoreError, SyncState};

/// The id of a stored message: an integer the database assigns, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub i64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One address of a From/To/Cc header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAddress {
    /// The display name, decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The address, e.g. `alice@example.com`; `None` for a group name or a broken header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// The envelope of a message, from its header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// In-Reply-To, without angle brackets (the first one when there are several).
    pub in_reply_to: Option<String>,
    /// References, without angle brackets, oldest first.
    pub references: Vec<String>,
    /// From.
    pub from: Vec<EmailAddress>,
    /// To.
    pub to: Vec<EmailAddress>,
    /// Cc.
    pub cc: Vec<EmailAddress>,
    /// Subject, decoded.
    pub subject: Option<String>,
    /// The Date header.
    pub date: Option<DateTime<Utc>>,
}

/// One attachment (or other non-body part) of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentSummary {
    /// The IMAP section number, e.g. `2` or `1.3`: what `BODY[<part>]` fetches.
    pub part: String,
    /// The file name, when the part has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// The content type, lower-case, e.g. `application/pdf`.
    pub content_type: String,
    /// Its size in bytes: decoded when the whole message was parsed, as transferred (base64
    /// included) when only the server's BODYSTRUCTURE was.
    pub size: u64,
}

/// The MIME structure of a message, as much as a list needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MimeSummary {
    /// The message's own content type, lower-case, e.g. `multipart/mixed`.
    #[serde(default)]
    pub content_type: String,
    /// Whether it has a text/plain body.
    #[serde(default)]
    pub has_text: bool,
    /// Whether it has a text/html body.
    #[serde(default)]
    pub has_html: bool,
    /// Its attachments, in message order.
    #[serde(default)]
    pub attachments: Vec<AttachmentSummary>,
}

/// A message as the sync engine hands it to [`Messages::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Its UID in the mailbox.
    pub uid: u32,
    /// Its MODSEQ (CONDSTORE servers).
    pub modseq: Option<u64>,
    /// Its flags, e.g. `\Seen`; stored sorted and without duplicates.
    pub flags: Vec<String>,
    /// The server's INTERNALDATE (arrival time).
    pub internaldate: DateTime<Utc>,
    /// RFC822.SIZE.
    pub size: u32,
    /// From its header.
    pub envelope: Envelope,
    /// The first ~200 characters of its text, whitespace collapsed.
    pub snippet: Option<String>,
    /// Its MIME structure.
    pub mime: MimeSummary,
    /// What could not be parsed, for people; `None` when everything parsed.
    pub parse_problems: Option<String>,
    /// The raw message, when the bodies mode stores it.
    pub body: Option<Vec<u8>>,
    /// The body's text for the full-text index ([`crate::indexable_text`]), when the caller has
    /// parsed `body` already; `None` makes the store extract it from `body` itself.
    pub body_text: Option<String>,
}

/// A stored message (without its raw body: see [`Messages::body`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its id.
    pub id: MessageId,
    /// The account it belongs to.
    pub account_id: AccountId,
    /// The mailbox it is in.
    pub mailbox_id: MailboxId,
    /// The mailbox's UIDVALIDITY when it was stored.
    pub uidvalidity: u32,
    /// Its UID.
    pub uid: u32,
    /// Its MODSEQ, when known.
    pub modseq: Option<u64>,
    /// Its flags, sorted.
    pub flags: Vec<String>,
    /// INTERNALDATE, millisecond precision.
    pub internaldate: DateTime<Utc>,
    /// RFC822.SIZE.
    pub size: u32,
    /// From its header.
    pub envelope: Envelope,
    /// A text snippet.
    pub snippet: Option<String>,
    /// Its MIME structure.
    pub mime: MimeSummary,
    /// What could not be parsed.
    pub parse_problems: Option<String>,
    /// Whether the raw message is stored.
    pub has_body: bool,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// New flags for a stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagUpdate {
    /// The message's UID.
    pub uid: u32,
    /// Its flags now.
    pub flags: Vec<String>,
    /// Its MODSEQ now, when known.
    pub modseq: Option<u64>,
}

/// Everything one step of a mailbox's sync changes, applied in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncBatch {
    /// The mailbox.
    pub mailbox_id: MailboxId,
    /// Messages fetched in this step; a UID already stored is left as it is.
    pub new_messages: Vec<NewMessage>,
    /// Flag changes of stored messages.
    pub flag_updates: Vec<FlagUpdate>,
    /// UIDs the server no longer has.
    pub vanished: Vec<u32>,
    /// The mailbox's cursor after this step. Its `uidvalidity` is the one every UID above
    /// belongs to.
    pub state: SyncState,
    /// True during the initial sync: `message.new` events say so, for consumers that only want
    /// mail that arrived after the account was connected.
    pub initial: bool,
}

impl SyncBatch {
    /// A batch that changes nothing but the cursor.
    pub fn cursor_only(mailbox_id: MailboxId, state: SyncState) -> SyncBatch {
        SyncBatch {
            mailbox_id,
            new_messages: Vec::new(),
            flag_updates: Vec::new(),
            vanished: Vec::new(),
            state,
            initial: false,
        }
    }
}

/// What [`Messages::apply`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Messages inserted (each announced by `message.new`).
    pub inserted: u32,
    /// Messages whose flags changed (each announced by `message.updated`).
    pub updated: u32,
    /// Messages deleted (each announced by `message.deleted`).
    pub deleted: u32,
}

/// A position in a newest-first listing: the last message of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor {
    /// Its INTERNALDATE, Unix milliseconds.
    pub internaldate_ms: i64,
    /// Its id.
    pub id: MessageId,
}

impl fmt::Display for ListCursor {
    /// An opaque token for URLs: `<internaldate ms>_<id>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.internaldate_ms, self.id.0)
    }
}

/// The error of parsing a [`ListCursor`] token that was not made by its `Display`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid message cursor")]
pub struct InvalidCursor;

impl FromStr for ListCursor {
    type Err = InvalidCursor;

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        let (date, id) = token.split_once('_').ok_or(InvalidCursor)?;
        Ok(ListCursor {
            internaldate_ms: date.parse().map_err(|_| InvalidCursor)?,
            id: MessageId(id.parse().map_err(|_| InvalidCursor)?),
        })
    }
}

/// Which messages to list, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageQuery {
    /// The account.
    pub account_id: AccountId,
    /// Only this mailbox, when given.
    pub mailbox_id: Option<MailboxId>,
    /// At most this many (capped at 1000).
    pub limit: u32,
    /// Start after this position (the previous page's `next`).
    pub after: Option<ListCursor>,
    /// Narrowing conditions; the default lists everything.
    pub filter: MessageFilter,
}

/// Conditions a listing can narrow by; all that are set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    /// Only messages without the `\Seen` flag.
    pub unseen: bool,
    /// Only messages whose From contains this text (name or address, ASCII case-insensitive).
    pub from: Option<String>,
    /// Only messages that arrived (INTERNALDATE) at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only messages that arrived before this time.
    pub before: Option<DateTime<Utc>>,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePage {
    /// The messages, newest first.
    pub messages: Vec<Message>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<ListCursor>,
}

/// The message repository.
#[async_trait]
pub trait Messages: Send + Sync {
    /// Applies one sync step in one transaction: inserts the new messages (and their bodies),
    /// applies the flag updates, deletes the vanished UIDs, writes the mailbox's cursor, and
    /// appends `message.new` / `message.updated` / `message.deleted` for what really changed.
    ///
    /// Fails with [`StoreError::NotFound`] when the mailbox is gone or its stored cursor belongs
    /// to another UIDVALIDITY than `batch.state.uidvalidity` (a stale batch after a reset).
    async fn apply(&self, batch: SyncBatch) -> Result<BatchOutcome, StoreError> {
        self.apply_prepared(batch.prepare()).await
    }

    /// [`Messages::apply`] for a batch encoded beforehand with [`SyncBatch::prepare`], so the
    /// transaction only binds ready values.
    async fn apply_prepared(&self, batch: PreparedBatch) -> Result<BatchOutcome, StoreError>;

    /// The message with this id, if any.
    async fn get(&self, id: MessageId) -> Result<Option<Message>, StoreError>;

    /// The message at this UID of the mailbox's current UIDVALIDITY, if stored.
    async fn get_by_uid(
        &self,
        mailbox_id: MailboxId,
        uid: u32,
    ) -> Result<Option<Message>, StoreError>;

    /// The raw message, if it is stored.
    async fn body(&self, id: MessageId) -> Result<Option<Vec<u8>>, StoreError>;

    /// Keeps the raw message of a stored message, fetched after the sync (bodies `on_demand` /
    /// `cache`). Returns false, storing nothing, when the message is no longer stored (expunged or
    /// reset meanwhile); a body stored already is left as it is (a UID's message never changes).
    /// No event: the message itself did not change.
    async fn put_body(&self, id: MessageId, raw: &[u8]) -> Result<bool, StoreError>;

    /// The stored messages of the mailbox (at its current UIDVALIDITY) among these UIDs, newest
    /// first; UIDs not stored are simply absent.
    async fn get_by_uids(
        &self,
        mailbox_id: MailboxId,
        uids: &[u32],
    ) -> Result<Vec<Message>, StoreError>;

    /// A page of messages, newest first (INTERNALDATE, then id).
    async fn list(&self, query: MessageQuery) -> Result<MessagePage, StoreError>;

    /// The stored UIDs of the mailbox, ascending.
    async fn uids(&self, mailbox_id: MailboxId) -> Result<Vec<u32>, StoreError>;

    /// The stored flags of the mailbox's messages with a UID in `first..=last`, by UID.
    async fn flags_in_range(
        &self,
        mailbox_id: MailboxId,
        first: u32,
        last: u32,
    ) -> Result<Vec<(u32, Vec<String>)>, StoreError>;

    /// How many messages of the mailbox are stored.
    async fn count(&self, mailbox_id: MailboxId) -> Result<u64, StoreError>;
}
