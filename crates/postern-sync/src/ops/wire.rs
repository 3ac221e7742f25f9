//! The commands message operations send on an on-demand session, each read response by response.
//!
//! Purpose: [`OpsWire`] selects a mailbox and reads its UIDVALIDITY, fetches one message's flags
//! or body, stores flags, moves, expunges one UID and searches, all by UID.
//! Non-goal: deciding anything; `ops` decides what to send and how the store follows.
//! Key decision: like the sync engine's own wire, commands go through async-imap's `run_command`
//! and every response is read here under the session's command timeout (per read, so a 30 MB body
//! that keeps streaming never times out); only values built by `ops::command` reach a command.

use std::time::Duration;

use async_imap::imap_proto::Response;

use crate::capabilities::Capabilities;
use crate::engine::interpret::{StatusParts, fetched_message};
use crate::error::ImapError;
use crate::ops::command::{Flag, MoveMethod, store_command};
use crate::session::ImapSession;

/// An on-demand session, seen as the commands message operations need.
pub(crate) struct OpsWire<'s> {
    session: &'s mut ImapSession,
    bound: Duration,
}

impl<'s> OpsWire<'s> {
    pub(crate) fn new(session: &'s mut ImapSession) -> Self {
        let bound = session.timeouts().command;
        OpsWire { session, bound }
    }

    pub(crate) fn capabilities(&self) -> &Capabilities {
        self.session.capabilities()
    }

    /// Sends `command` and passes each untagged response to `on_response` until the tagged
    /// completion (see [`ImapSession::run_tagged`]).
    async fn run(
        &mut self,
        name: &'static str,
        command: &str,
        on_response: impl FnMut(&Response<'_>),
    ) -> Result<(), ImapError> {
        self.session
            .run_tagged(name, command, self.bound, on_response)
            .await
    }

    /// `SELECT` (`read_write`) or `EXAMINE` of a mailbox (`quoted` by `ops::command`); its
    /// UIDVALIDITY, when the server said.
    pub(crate) async fn open(
        &mut self,
        quoted: &str,
        read_write: bool,
    ) -> Result<Option<u32>, ImapError> {
        let (name, verb) = if read_write {
            ("SELECT", "SELECT")
        } else {
            ("EXAMINE", "EXAMINE")
        };
        let mut parts = StatusParts::default();
        self.run(name, &format!("{verb} {quoted}"), |response| {
            parts.absorb_select(response);
        })
        .await?;
        Ok(parts.uidvalidity)
    }

    /// The flags of the message at `uid` of the selected mailbox; `None` when the server does
    /// not have it.
    pub(crate) async fn flags_of(&mut self, uid: u32) -> Result<Option<Vec<String>>, ImapError> {
        let mut flags = None;
        let command = format!("UID FETCH {uid} (UID FLAGS)");
        self.run("UID FETCH", &command, |response| {
            if let Response::Fetch(_, attributes) = response
                && let Some(fetched) = fetched_message(attributes)
                && fetched.uid == uid
                && fetched.flags.is_some()
            {
                flags = fetched.flags;
            }
        })
        .await?;
        Ok(flags)
    }

    /// The whole raw message at `uid` (`BODY.PEEK[]`: reading does not set `\Seen`); `None` when
    /// the server does not have it.
    pub(crate) async fn body_of(&mut self, uid: u32) -> Result<Option<Vec<u8>>, ImapError> {
        let mut body = None;
        let command = format!("UID FETCH {uid} (UID BODY.PEEK[])");
        self.run("UID FETCH", &command, |response| {
            if let Response::Fetch(_, attributes) = response
                && let Some(fetched) = fetched_message(attributes)
                && fetched.uid == uid
                && fetched.body.is_some()
            {
                body = fetched.body;
            }
        })
        .await?;
        Ok(body)
    }

    /// Adds (`add`) or removes `flags` on the message at `uid`.
    pub(crate) async fn store(
        &mut self,
        uid: u32,
        add: bool,
        flags: &[Flag],
    ) -> Result<(), ImapError> {
        if flags.is_empty() {
            return Ok(());
        }
        self.run("UID STORE", &store_command(uid, add, flags), |_| {})
            .await
    }

    /// Moves the message at `uid` to the mailbox `target` (quoted).
    pub(crate) async fn move_uid(
        &mut self,
        uid: u32,
        target: &str,
        method: MoveMethod,
    ) -> Result<(), ImapError> {
        match method {
            MoveMethod::Move => {
                self.run("UID MOVE", &format!("UID MOVE {uid} {target}"), |_| {})
                    .await
            }
            MoveMethod::CopyThenExpunge => {
                self.run("UID COPY", &format!("UID COPY {uid} {target}"), |_| {})
                    .await?;
                self.expunge_uid(uid).await
            }
        }
    }

    /// Marks the message at `uid` `\Deleted` and expunges that UID alone (`UID EXPUNGE`,
    /// UIDPLUS); other messages marked `\Deleted` stay. The caller checks UIDPLUS first.
    pub(crate) async fn expunge_uid(&mut self, uid: u32) -> Result<(), ImapError> {
        self.store(uid, true, &[Flag::deleted()]).await?;
        self.run("UID EXPUNGE", &format!("UID EXPUNGE {uid}"), |_| {})
            .await
    }

    /// `UID SEARCH <criteria>` (built by `ops::command`): the matching UIDs, ascending.
    pub(crate) async fn search(&mut self, criteria: &str) -> Result<Vec<u32>, ImapError> {
        let mut uids = self.session.uid_search(criteria, self.bound).await?;
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }
}
