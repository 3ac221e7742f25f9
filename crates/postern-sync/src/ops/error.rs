//! The errors of message operations: what a caller of [`MessageOps`](super::MessageOps) can be told.
//!
//! Purpose: [`OpsError`] names each reason an operation on the server did not happen (or did, but
//! the local picture could not follow), so the API can answer with a precise status;
//! [`FlagError`] and [`SearchTextError`] say what is wrong with a caller's input, before anything
//! is sent.
//! Non-goal: retry policy; [`OpsError::is_transient`] only classifies.
//! Key decision: input errors are their own types, checked before a connection is opened, so a bad
//! flag never costs a login and never reaches the server.

use postern_store::{MessageId, StoreError};

use crate::error::ImapError;
use crate::supervisor::ServiceError;

/// Why a message operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpsError {
    /// Occurs when the message is no longer stored (the sync removed it meanwhile).
    #[error("message {0} is no longer stored")]
    MessageGone(MessageId),

    /// Occurs when the server no longer has the message (expunged by another client); the next
    /// sync removes it here too.
    #[error(
        "the message is no longer on the server (UID {uid} in {mailbox}); the next sync removes it here"
    )]
    NotOnServer {
        /// Its mailbox.
        mailbox: String,
        /// Its UID.
        uid: u32,
    },

    /// Occurs when the mailbox's UIDVALIDITY on the server is not the one the message was stored
    /// under: the mailbox was reset (recreated, or renumbered) and is being resynced, so the stored
    /// UID may name another message.
    #[error(
        "mailbox {mailbox} was reset on the server (UIDVALIDITY {stored} is now {server}); \
         its messages are being resynced, try again after the sync"
    )]
    MailboxReset {
        /// The mailbox.
        mailbox: String,
        /// The UIDVALIDITY the message was stored under.
        stored: u32,
        /// The server's.
        server: u32,
    },

    /// Occurs when a message should go to the trash and the account has no mailbox with the
    /// `\Trash` role (delete with `expunge` instead, or create one on the server).
    #[error(
        "the account has no Trash mailbox (none is marked \\Trash); delete with expunge instead"
    )]
    NoTrash,

    /// Occurs when the server lacks what an operation needs: UIDPLUS to expunge a single message
    /// (a plain EXPUNGE would remove every `\Deleted` message of the mailbox), MOVE or UIDPLUS to
    /// move, LITERAL+ to search for non-ASCII text.
    #[error("the IMAP server cannot do this safely: it lacks {missing}")]
    Unsupported {
        /// The missing capability, e.g. `UIDPLUS`.
        missing: &'static str,
    },

    /// Occurs when a mailbox name cannot be sent as an IMAP quoted string (CR, LF, NUL or 8-bit
    /// bytes), so the mailbox cannot be selected.
    #[error("mailbox {0:?} cannot be named in an IMAP command")]
    UnusableMailboxName(String),

    /// Occurs when the server answered the select without a UIDVALIDITY, which every IMAP4rev1
    /// server must send.
    #[error("the server did not say the UIDVALIDITY of {0}")]
    NoUidValidity(String),

    /// Occurs when no session could be opened: the account's connections are all in use, the
    /// login failed, the account is gone.
    #[error(transparent)]
    Session(#[from] ServiceError),

    /// Occurs when a command fails or the connection breaks.
    #[error(transparent)]
    Imap(#[from] ImapError),

    /// Occurs when the store fails.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OpsError {
    /// Whether asking again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            OpsError::Session(error) => error.is_transient(),
            OpsError::Imap(error) => error.is_transient(),
            OpsError::Store(error) => error.is_transient(),
            OpsError::MailboxReset { .. } => true,
            _ => false,
        }
    }
}

/// Why a text is not a flag a client may set or clear.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlagError {
    /// Occurs for an empty flag.
    #[error("a flag cannot be empty")]
    Empty,

    /// Occurs for a backslash flag that is not one of `\Seen`, `\Answered`, `\Flagged`,
    /// `\Deleted`, `\Draft` (`\Recent` is the server's alone).
    #[error(
        "{0:?} is not a system flag a client may set (\\Seen, \\Answered, \\Flagged, \\Deleted, \\Draft)"
    )]
    UnknownSystemFlag(String),

    /// Occurs for a keyword that is not an IMAP atom: a space, a control or 8-bit character, or one
    /// of `( ) { % * " \ ]`.
    #[error("keyword {flag:?} contains {character:?}, which an IMAP keyword cannot")]
    InvalidCharacter {
        /// The flag as given.
        flag: String,
        /// The first character that is not allowed.
        character: char,
    },

    /// Occurs for a keyword longer than [`MAX_FLAG_LEN`](super::command::MAX_FLAG_LEN) bytes.
    #[error("a keyword can be at most {max} bytes long")]
    TooLong {
        /// The limit.
        max: usize,
    },
}

/// Why a text cannot be searched for on the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SearchTextError {
    /// Occurs for an empty (or all-blank) text.
    #[error("the search text is empty")]
    Empty,

    /// Occurs for a text longer than [`MAX_SEARCH_LEN`](super::command::MAX_SEARCH_LEN) bytes.
    #[error("the search text can be at most {max} bytes long")]
    TooLong {
        /// The limit.
        max: usize,
    },

    /// Occurs for a text holding a control character (a line break, a tab, NUL).
    #[error("the search text cannot contain control characters")]
    ControlCharacter,
}
