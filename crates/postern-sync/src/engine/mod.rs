//! The sync engine: keeps the store's picture of an account's mailboxes in step with the server.
//!
//! One *pass* ([`sync_account`]) lists the mailboxes, notices created and deleted ones, and brings
//! each selected mailbox up to date: UIDVALIDITY checked (a change resets the mailbox), flag changes
//! and expunges applied, new mail fetched, and the initial sync continued within its
//! [`SyncWindow`], newest first, in batches of [`SyncOptions::batch_size`] UIDs. Every batch is one
//! store transaction carrying its messages, its events and the mailbox's new cursor, so a pass can
//! stop anywhere (crash, lost connection, [`SyncObserver`] asking to stop) and the next one resumes
//! without fetching a stored UID again.
//!
//! Layout, pure first:
//! - [`plan`]: stored cursor + server status → what a pass must do ([`plan::Plan`]), and how the
//!   initial sync and new mail split into batches.
//! - [`discovery`]: the server's LIST + the stored mailboxes → create, delete, relabel, sync.
//! - [`interpret`]: IMAP responses (as imap-proto parses them) → statuses, mailboxes, fetched
//!   messages; [`parse`]: raw messages → envelope, snippet, MIME summary, parse problems.
//! - [`uidset`]: UID lists ⇄ IMAP sequence sets.
//! - [`selection`]: which mailboxes sync (names and `LIST` patterns).
//! - `wire` (I/O): the raw commands, read response by response under the command timeout.
//! - `run` (I/O): a pass, gluing the above to the store; `committer` (I/O): its batches committed
//!   in order by a task of their own while the pass fetches the next ones.
//!
//! Non-goals: connecting, reconnecting, IDLE and scheduling passes (the per-account supervisor
//! does that on top of [`sync_account`] / [`sync_mailbox`]); serving messages.
//!
//! Key decisions:
//! - Commands are sent with async-imap's `run_command` and every response is read and interpreted
//!   here, not through async-imap's typed calls: those drop what they do not expect (FETCH and
//!   VANISHED during SELECT go to a bounded side channel), which a sync cannot afford.
//! - A pass first asks for every mailbox's status in one command when the server has LIST-STATUS
//!   (RFC 5819), else STATUS per mailbox, and selects only the mailboxes whose UIDNEXT, EXISTS or
//!   HIGHESTMODSEQ moved: with nothing changed, a pass is one round trip (CONDSTORE servers).
//! - Batches are bounded by UID count, fetched with explicit UID sets found by `UID SEARCH`, so
//!   memory stays bounded, sparse UIDs need no guessing and `N:*` never returns a stale message.

mod committer;
pub mod discovery;
pub mod interpret;
pub mod parse;
pub mod plan;
mod run;
pub mod selection;
pub mod uidset;
pub mod view;
mod wire;

use std::ops::ControlFlow;

use chrono::NaiveDate;
use postern_store::{BatchOutcome, SyncState};

pub use run::{MailboxOutcome, MailboxReport, SyncReport, sync_account, sync_mailbox};
pub use selection::MailboxSelection;

/// Default UIDs per FETCH command and per store transaction.
pub const DEFAULT_BATCH_SIZE: usize = 500;

/// What the initial sync fetches of a mailbox. New mail is always fetched, whatever the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncWindow {
    /// Only messages that arrived (INTERNALDATE) on or after this day.
    pub since: Option<NaiveDate>,
    /// Only the newest this many messages (counting what is stored already).
    pub newest: Option<u32>,
}

/// How much of each message is fetched and kept (`sync.bodies`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BodiesMode {
    /// Header, the start of the text and the MIME structure at sync; the body is fetched (and
    /// cached) when someone asks for it.
    #[default]
    OnDemand,
    /// As `OnDemand` at sync; bodies asked for are kept.
    Cache,
    /// The whole raw message is fetched and stored at sync.
    Full,
}

impl BodiesMode {
    /// Whether the sync fetches and stores whole messages.
    pub fn fetches_bodies(self) -> bool {
        matches!(self, BodiesMode::Full)
    }
}

/// Whether two mailbox names are the same mailbox: exact, except `INBOX`, which is
/// case-insensitive (RFC 3501 section 5.1).
pub fn same_mailbox(a: &str, b: &str) -> bool {
    a == b || (a.eq_ignore_ascii_case("INBOX") && b.eq_ignore_ascii_case("INBOX"))
}

/// How a pass runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncOptions {
    /// The initial-sync window.
    pub window: SyncWindow,
    /// Bodies at sync or on demand.
    pub bodies: BodiesMode,
    /// UIDs per FETCH command and per store transaction (at least 1).
    pub batch_size: usize,
    /// Which mailboxes sync.
    pub mailboxes: MailboxSelection,
    /// The most change detection the engine may use (`None`: all the server offers); a way
    /// around servers whose CONDSTORE or QRESYNC is broken.
    pub strategy: Option<plan::Strategy>,
}

impl SyncOptions {
    /// The strategy for a server with these capabilities, within [`SyncOptions::strategy`].
    pub fn strategy_for(&self, capabilities: &crate::Capabilities) -> plan::Strategy {
        let offered = plan::Strategy::from_capabilities(capabilities);
        self.strategy.map_or(offered, |cap| cap.min(offered))
    }
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            window: SyncWindow::default(),
            bodies: BodiesMode::default(),
            batch_size: DEFAULT_BATCH_SIZE,
            mailboxes: MailboxSelection::default(),
            strategy: None,
        }
    }
}

/// Which part of a mailbox's sync a batch belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Flag changes and expunges of stored messages.
    Changes,
    /// Mail that arrived since the last pass.
    NewMail,
    /// The initial sync, newest first.
    Initial,
}

/// A batch the store has committed.
#[derive(Clone, Copy, Debug)]
pub struct BatchReport<'a> {
    /// The mailbox's name.
    pub mailbox: &'a str,
    /// What the batch was for.
    pub phase: Phase,
    /// The UIDs fetched for it (empty for [`Phase::Changes`]).
    pub fetched: &'a [u32],
    /// What the store did.
    pub outcome: BatchOutcome,
    /// The mailbox's cursor now.
    pub state: SyncState,
}

/// Watches a pass batch by batch: progress reporting, and a way to stop a pass cleanly.
pub trait SyncObserver: Send + Sync {
    /// Called after each committed batch; `Break` ends the pass with
    /// [`SyncError::Interrupted`](crate::error::SyncError::Interrupted).
    fn batch_committed(&self, batch: &BatchReport<'_>) -> ControlFlow<()>;
}

/// An observer that watches nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoObserver;

impl SyncObserver for NoObserver {
    fn batch_committed(&self, _batch: &BatchReport<'_>) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}
