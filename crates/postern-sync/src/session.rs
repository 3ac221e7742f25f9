//! An authenticated IMAP session: the handle the sync engine will work through.
//!
//! Purpose: [`ImapSession`] wraps `async_imap::Session` with the capabilities read once after login, the
//! command timeout, and the few commands the connection layer itself needs today: a health check of the
//! INBOX ([`ImapSession::select_inbox_check`]) and [`ImapSession::logout`].
//!
//! Non-goal: synchronisation. FETCH, IDLE, CONDSTORE/QRESYNC logic come with the sync engine, which
//! reaches the inner session through [`ImapSession::inner_mut`] until they get typed wrappers here.
//!
//! Key decision: capabilities are asked for once right after login, because servers announce more after
//! authentication (Dovecot adds CONDSTORE, QRESYNC, IDLE, ...) and async-imap drops the list that comes
//! with the login's `OK`; every later question is answered from that value without a round trip.

use futures::TryStreamExt as _;

use crate::capabilities::Capabilities;
use crate::conn::{BoxedStream, Timeouts, within};
use crate::error::closed;
use crate::error::{ImapError, Stage, command_error};
use crate::response::ServerReply;
use async_imap::imap_proto::{MailboxDatum, Response, Status};

/// An authenticated IMAP session over a TLS (or loopback plaintext) connection.
#[derive(Debug)]
pub struct ImapSession {
    inner: async_imap::Session<BoxedStream>,
    capabilities: Capabilities,
    timeouts: Timeouts,
    /// Whether `ENABLE QRESYNC` was sent on this connection (it lasts as long as the connection).
    qresync_enabled: bool,
    /// Counts this connection in `postern_mail_connections` while it lives.
    _counted: crate::metrics::OpenConnection,
}

/// What [`ImapSession::select_inbox_check`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxCheck {
    /// How many mailboxes `LIST "" "*"` returned (INBOX included).
    pub mailboxes: usize,
    /// Messages in INBOX (`EXISTS`).
    pub exists: u32,
    /// Messages with `\Recent` (`RECENT`).
    pub recent: u32,
    /// Sequence number of the first unseen message, when the server said.
    pub unseen: Option<u32>,
    /// `UIDVALIDITY`: when it changes, every cached UID of the mailbox is void.
    pub uid_validity: Option<u32>,
    /// `UIDNEXT`: the UID the next message will get.
    pub uid_next: Option<u32>,
    /// `HIGHESTMODSEQ`, when the server has CONDSTORE.
    pub highest_modseq: Option<u64>,
}

impl ImapSession {
    /// Sends a raw `command` (built by this crate, never from user text) and passes each untagged
    /// response to `on_response` until the tagged completion; each read is bounded by `bound`, so a
    /// large literal that keeps streaming never times out. A `NO` or `BAD` fails with
    /// [`ImapError::CommandRejected`] carrying the server's words.
    pub(crate) async fn run_tagged(
        &mut self,
        name: &'static str,
        command: &str,
        bound: std::time::Duration,
        mut on_response: impl FnMut(&Response<'_>),
    ) -> Result<(), ImapError> {
        let stage = Stage::Command(name);
        let inner = self.inner_mut();
        let tag = within(stage, bound, inner.run_command(command))
            .await?
            .map_err(|error| command_error(stage, name, error))?;
        loop {
            let response = match within(stage, bound, inner.read_response()).await? {
                Ok(Some(response)) => response,
                Ok(None) => return Err(closed(stage)),
                Err(source) => return Err(ImapError::Io { stage, source }),
            };
            match response.parsed() {
                Response::Done {
                    tag: done,
                    status,
                    outcome,
                } if *done == tag => {
                    if *status == Status::Ok {
                        return Ok(());
                    }
                    let reply = ServerReply::from_outcome(outcome);
                    return Err(ImapError::CommandRejected {
                        command: name,
                        response_code: reply.response_code,
                        server_text: reply.server_text,
                    });
                }
                other => on_response(other),
            }
        }
    }

    /// `UID SEARCH <criteria>` (criteria built by this crate): the matching UIDs as the server
    /// listed them.
    pub(crate) async fn uid_search(
        &mut self,
        criteria: &str,
        bound: std::time::Duration,
    ) -> Result<Vec<u32>, ImapError> {
        let mut uids = Vec::new();
        let command = format!("UID SEARCH {criteria}");
        self.run_tagged("UID SEARCH", &command, bound, |response| {
            if let Response::MailboxData(MailboxDatum::Search(found)) = response {
                uids.extend_from_slice(found);
            }
        })
        .await?;
        Ok(uids)
    }

    /// Wraps a freshly authenticated session and reads its capabilities.
    pub(crate) async fn establish(
        mut inner: async_imap::Session<BoxedStream>,
        timeouts: Timeouts,
    ) -> Result<Self, ImapError> {
        let stage = Stage::Command("CAPABILITY");
        let capabilities = within(stage, timeouts.command, inner.capabilities())
            .await?
            .map_err(|error| command_error(stage, "CAPABILITY", error))?;
        Ok(ImapSession {
            inner,
            capabilities: Capabilities::from(&capabilities),
            timeouts,
            qresync_enabled: false,
            _counted: crate::metrics::OpenConnection::count("imap"),
        })
    }

    /// The capabilities the server announced after login.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// The bounds this session's commands run under (also for commands sent through
    /// [`Self::inner_mut`]).
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Lists every mailbox and selects INBOX (with CONDSTORE when offered, which also enables it for the
    /// rest of the session), returning the counts: proof that the account is usable end to end.
    ///
    /// # Errors
    ///
    /// [`ImapError::CommandRejected`] when LIST or SELECT is refused, [`ImapError::Timeout`] past the
    /// command bound, [`ImapError::Protocol`] / [`ImapError::Io`].
    pub async fn select_inbox_check(&mut self) -> Result<InboxCheck, ImapError> {
        let mailboxes = self.count_mailboxes().await?;
        let stage = Stage::Command("SELECT");
        let bound = self.timeouts.command;
        let inbox = if self.capabilities.condstore() {
            within(stage, bound, self.inner.select_condstore("INBOX")).await?
        } else {
            within(stage, bound, self.inner.select("INBOX")).await?
        }
        .map_err(|error| command_error(stage, "SELECT", error))?;
        Ok(InboxCheck {
            mailboxes,
            exists: inbox.exists,
            recent: inbox.recent,
            unseen: inbox.unseen,
            uid_validity: inbox.uid_validity,
            uid_next: inbox.uid_next,
            highest_modseq: inbox.highest_modseq,
        })
    }

    async fn count_mailboxes(&mut self) -> Result<usize, ImapError> {
        let stage = Stage::Command("LIST");
        let list = async {
            let names = self.inner.list(Some(""), Some("*")).await?;
            names.try_collect::<Vec<_>>().await
        };
        let names = within(stage, self.timeouts.command, list)
            .await?
            .map_err(|error| command_error(stage, "LIST", error))?;
        Ok(names.len())
    }

    /// Says goodbye (`LOGOUT`) and closes the connection.
    ///
    /// # Errors
    ///
    /// [`ImapError::Timeout`] when the server does not answer within the command bound; the connection
    /// is closed either way.
    pub async fn logout(mut self) -> Result<(), ImapError> {
        let stage = Stage::Command("LOGOUT");
        within(stage, self.timeouts.command, self.inner.logout())
            .await?
            .map_err(|error| command_error(stage, "LOGOUT", error))
    }

    /// Whether QRESYNC is enabled on this connection (the sync engine enables it once).
    pub(crate) fn qresync_enabled(&self) -> bool {
        self.qresync_enabled
    }

    /// Records that `ENABLE QRESYNC` succeeded.
    pub(crate) fn set_qresync_enabled(&mut self) {
        self.qresync_enabled = true;
    }

    /// The async-imap session, for commands that have no wrapper yet. A command left half-done (a
    /// dropped future) leaves the connection unusable: drop the session then.
    pub fn inner_mut(&mut self) -> &mut async_imap::Session<BoxedStream> {
        &mut self.inner
    }

    /// Gives up the wrapper, e.g. to hand the session to IDLE (`async_imap::Session::idle` takes it by
    /// value).
    pub fn into_inner(self) -> async_imap::Session<BoxedStream> {
        self.inner
    }
}
