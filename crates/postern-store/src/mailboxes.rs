//! Mailboxes of an account as the sync engine last saw them, with each one's sync cursor.
//!
//! Purpose: create, list, re-label, delete and reset mailboxes, each change appending its event
//! (`mailbox.created`, `mailbox.deleted`, `mailbox.reset`) in the same transaction, and keep the
//! [`SyncState`] cursor that makes a sync resumable.
//! Non-goal: deciding what to sync or when; `postern-sync` plans, this module records.
//! Key decision: the cursor is one value ([`SyncState`]) written in the same transaction as the
//! messages it accounts for ([`crate::Messages::apply`]), so after a crash the stored messages and
//! the cursor always agree: nothing is fetched twice and nothing is skipped.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ids::text_enum;
use crate::{AccountId, StoreError};

/// The id of a mailbox: an integer the database assigns, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxId(pub i64);

impl std::fmt::Display for MailboxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

text_enum! {
    /// What a mailbox is for, from its SPECIAL-USE attribute (RFC 6154) or, for INBOX, its name.
    MailboxRole {
        /// The INBOX.
        Inbox => "inbox",
        /// `\Sent`.
        Sent => "sent",
        /// `\Drafts`.
        Drafts => "drafts",
        /// `\Trash`.
        Trash => "trash",
        /// `\Junk`.
        Junk => "junk",
        /// `\Archive`.
        Archive => "archive",
        /// `\All`: a virtual mailbox of every message (Gmail's "All Mail").
        All => "all",
    }
}

/// Where the sync of one mailbox stands, at one UIDVALIDITY.
///
/// Invariant kept by the sync engine: every message of the server whose UID is in
/// `lowest_uid..uidnext` (and inside the sync window) is stored, with its flags as of
/// `highest_modseq`; nothing outside that range is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncState {
    /// The UIDVALIDITY the stored messages belong to.
    pub uidvalidity: u32,
    /// The server's UIDNEXT when new mail was last fetched: every UID below it has been seen.
    pub uidnext: u32,
    /// The server's HIGHESTMODSEQ up to which flag changes are applied (CONDSTORE servers only).
    pub highest_modseq: Option<u64>,
    /// The initial sync's cursor: it has covered every UID from here up to `uidnext`; it moves
    /// down batch by batch, newest first.
    pub lowest_uid: u32,
    /// True once the initial sync reached the end of its window (or UID 1).
    pub initial_done: bool,
    /// The server's message count (EXISTS) at the last pass.
    pub exists: u32,
    /// The server's unseen count at the last pass, when it said.
    pub unseen: Option<u32>,
}

/// A stored mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// Its id.
    pub id: MailboxId,
    /// The account it belongs to.
    pub account_id: AccountId,
    /// The name as the server spells it (modified UTF-7), e.g. `INBOX` or `Work/2026`.
    pub name: String,
    /// The hierarchy delimiter, e.g. `/`.
    pub delimiter: Option<String>,
    /// What it is for, when the server says.
    pub role: Option<MailboxRole>,
    /// The sync cursor; `None` before the first sync and after a reset.
    pub sync: Option<SyncState>,
    /// When it was first seen.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// What `create` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMailbox {
    /// The account it belongs to.
    pub account_id: AccountId,
    /// The server's name for it.
    pub name: String,
    /// The hierarchy delimiter.
    pub delimiter: Option<String>,
    /// What it is for.
    pub role: Option<MailboxRole>,
}

/// The mailbox repository.
#[async_trait]
pub trait Mailboxes: Send + Sync {
    /// Stores a mailbox and appends `mailbox.created`, in one transaction. Fails with
    /// [`StoreError::NotFound`] for an unknown account.
    async fn create(&self, new: NewMailbox) -> Result<Mailbox, StoreError>;

    /// The mailbox with this id, if any.
    async fn get(&self, id: MailboxId) -> Result<Option<Mailbox>, StoreError>;

    /// The account's mailboxes, by name.
    async fn list(&self, account_id: &AccountId) -> Result<Vec<Mailbox>, StoreError>;

    /// Updates the delimiter and role (the server may change them); false if the mailbox does
    /// not exist. No event: a role is a label, not a change of content.
    async fn set_attributes(
        &self,
        id: MailboxId,
        delimiter: Option<String>,
        role: Option<MailboxRole>,
    ) -> Result<bool, StoreError>;

    /// Writes the sync cursor alone (no message changed), e.g. the first snapshot of a mailbox or
    /// new counts. Fails with [`StoreError::NotFound`] if the mailbox is gone, or if it holds a
    /// cursor for another UIDVALIDITY (reset it first).
    async fn set_sync_state(&self, id: MailboxId, state: SyncState) -> Result<(), StoreError>;

    /// Deletes the mailbox with its messages and appends `mailbox.deleted`, in one transaction;
    /// false if it did not exist.
    async fn delete(&self, id: MailboxId) -> Result<bool, StoreError>;

    /// The server's UIDVALIDITY changed: deletes every message of the mailbox, clears its cursor
    /// and appends `mailbox.reset` (naming both UIDVALIDITY values), in one transaction. Returns
    /// how many messages were deleted. Fails with [`StoreError::NotFound`] for an unknown mailbox.
    async fn reset(&self, id: MailboxId, new_uidvalidity: u32) -> Result<u64, StoreError>;
}
