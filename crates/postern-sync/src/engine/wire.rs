//! The commands a sync pass sends, each read response by response: the engine's only I/O.
//!
//! Purpose: [`Wire::run`] sends one command and hands every untagged response to a callback until
//! its tagged completion, each read bounded by the session's command timeout; the methods on top
//! (LIST, STATUS, SELECT, UID SEARCH, UID FETCH) turn responses into values with `interpret`.
//! Non-goal: pipelining (async-imap sends one command at a time) and literals in commands
//! (mailbox names go as quoted strings; a name that cannot is skipped by the caller).
//! Key decision: the timeout bounds each *read*, not the whole command, so a 10,000-message FETCH
//! that keeps streaming never times out, while a server that goes silent mid-FETCH does.

use std::ops::RangeInclusive;
use std::time::Duration;

use async_imap::imap_proto::{MailboxDatum, Response};

use crate::capabilities::Capabilities;
use crate::engine::discovery::ListedMailbox;
use crate::engine::interpret::{
    FetchedMessage, StatusParts, fetched_message, listed_mailbox, vanished_ranges,
};
use crate::engine::plan::ServerStatus;
use crate::engine::{BodiesMode, same_mailbox};
use crate::error::{ImapError, Stage};
use crate::response::protocol;
use crate::session::ImapSession;

/// How much of the text a head fetch takes for the snippet.
const TEXT_START_BYTES: u32 = 2048;

/// One changed message of a flag FETCH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FlagState {
    pub uid: u32,
    pub flags: Vec<String>,
    pub modseq: Option<u64>,
}

/// The session, with a count of the commands sent through it.
pub(crate) struct Wire<'s> {
    session: &'s mut ImapSession,
    bound: Duration,
    commands: u32,
}

impl<'s> Wire<'s> {
    pub(crate) fn new(session: &'s mut ImapSession) -> Self {
        let bound = session.timeouts().command;
        Wire {
            session,
            bound,
            commands: 0,
        }
    }

    /// Commands sent so far (each one round trip).
    pub(crate) fn commands(&self) -> u32 {
        self.commands
    }

    pub(crate) fn capabilities(&self) -> &Capabilities {
        self.session.capabilities()
    }

    /// Sends `command` and passes each untagged response to `on_response` until the tagged
    /// completion (see [`ImapSession::run_tagged`]); counts the round trip.
    pub(crate) async fn run(
        &mut self,
        name: &'static str,
        command: &str,
        on_response: impl FnMut(&Response<'_>),
    ) -> Result<(), ImapError> {
        self.commands += 1;
        self.session
            .run_tagged(name, command, self.bound, on_response)
            .await
    }

    /// `ENABLE QRESYNC`, once per connection.
    pub(crate) async fn enable_qresync(&mut self) -> Result<(), ImapError> {
        if self.session.qresync_enabled() {
            return Ok(());
        }
        self.run("ENABLE", "ENABLE QRESYNC", |_| {}).await?;
        self.session.set_qresync_enabled();
        Ok(())
    }

    /// Every mailbox, with its status in the same round trip when the server has LIST-STATUS.
    pub(crate) async fn list(&mut self) -> Result<Vec<ListedMailbox>, ImapError> {
        let command = list_command(self.capabilities());
        let mut listed: Vec<ListedMailbox> = Vec::new();
        self.run("LIST", &command, |response| match response {
            Response::MailboxData(MailboxDatum::List(data)) => listed.push(listed_mailbox(data)),
            Response::MailboxData(MailboxDatum::Status { mailbox, status }) => {
                let mut parts = StatusParts::default();
                parts.absorb_status(status);
                if let Some(entry) = listed.iter_mut().find(|m| same_mailbox(&m.name, mailbox)) {
                    entry.status = parts.complete(None);
                }
            }
            _ => {}
        })
        .await?;
        Ok(listed)
    }

    /// `STATUS` of one mailbox.
    pub(crate) async fn status(&mut self, quoted: &str) -> Result<ServerStatus, ImapError> {
        let items = status_items(self.capabilities());
        let mut parts = StatusParts::default();
        self.run("STATUS", &format!("STATUS {quoted} {items}"), |response| {
            if let Response::MailboxData(MailboxDatum::Status { status, .. }) = response {
                parts.absorb_status(status);
            }
        })
        .await?;
        parts.complete(None).ok_or_else(|| {
            protocol(
                Stage::Command("STATUS"),
                "STATUS lacked UIDVALIDITY, UIDNEXT or MESSAGES",
            )
        })
    }

    /// `SELECT` (with CONDSTORE when `condstore`), its status; UIDNEXT found by a `UID SEARCH`
    /// when the server did not say.
    pub(crate) async fn select(
        &mut self,
        quoted: &str,
        condstore: bool,
    ) -> Result<ServerStatus, ImapError> {
        let command = if condstore {
            format!("SELECT {quoted} (CONDSTORE)")
        } else {
            format!("SELECT {quoted}")
        };
        let mut parts = StatusParts::default();
        self.run("SELECT", &command, |response| {
            parts.absorb_select(response);
        })
        .await?;
        let fallback = match parts.uidnext {
            Some(_) => None,
            None => Some(
                self.uid_search("ALL")
                    .await?
                    .into_iter()
                    .max()
                    .map_or(1, |uid| uid.saturating_add(1)),
            ),
        };
        parts.complete(fallback).ok_or_else(|| {
            protocol(
                Stage::Command("SELECT"),
                "SELECT lacked UIDVALIDITY or EXISTS",
            )
        })
    }

    /// `UID SEARCH <criteria>`.
    pub(crate) async fn uid_search(&mut self, criteria: &str) -> Result<Vec<u32>, ImapError> {
        self.commands += 1;
        self.session.uid_search(criteria, self.bound).await
    }

    /// `UID FETCH` of messages, each complete answer handed to `on_message` as it arrives.
    pub(crate) async fn fetch_messages(
        &mut self,
        uid_set: &str,
        bodies: BodiesMode,
        modseq: bool,
        mut on_message: impl FnMut(FetchedMessage),
    ) -> Result<(), ImapError> {
        let command = format!("UID FETCH {uid_set} {}", fetch_items(bodies, modseq));
        self.run("UID FETCH", &command, |response| {
            if let Response::Fetch(_, attributes) = response
                && let Some(fetched) = fetched_message(attributes)
            {
                on_message(fetched);
            }
        })
        .await
    }

    /// The flags of `range`: all of them, or those changed since a MODSEQ (with the vanished
    /// UIDs when `vanished`, which needs QRESYNC enabled).
    pub(crate) async fn fetch_flags(
        &mut self,
        range: &RangeInclusive<u32>,
        changed_since: Option<u64>,
        vanished: bool,
    ) -> Result<(Vec<FlagState>, Vec<RangeInclusive<u32>>), ImapError> {
        let set = crate::engine::uidset::format_range(range);
        let command = match (changed_since, vanished) {
            (Some(modseq), true) => {
                format!("UID FETCH {set} (UID FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
            }
            (Some(modseq), false) => format!("UID FETCH {set} (UID FLAGS) (CHANGEDSINCE {modseq})"),
            (None, _) => format!("UID FETCH {set} (UID FLAGS)"),
        };
        let mut states = Vec::new();
        let mut gone = Vec::new();
        self.run("UID FETCH", &command, |response| {
            if let Some(ranges) = vanished_ranges(response) {
                gone.extend(ranges);
            } else if let Response::Fetch(_, attributes) = response
                && let Some(FetchedMessage {
                    uid,
                    flags: Some(flags),
                    modseq,
                    ..
                }) = fetched_message(attributes)
                && range.contains(&uid)
            {
                states.push(FlagState { uid, flags, modseq });
            }
        })
        .await?;
        states.sort_by_key(|state| state.uid);
        states.dedup_by_key(|state| state.uid);
        Ok((states, gone))
    }
}

fn list_command(capabilities: &Capabilities) -> String {
    if capabilities.has("LIST-STATUS") && capabilities.has("LIST-EXTENDED") {
        let special_use = if capabilities.special_use() {
            "SPECIAL-USE "
        } else {
            ""
        };
        format!(
            "LIST \"\" \"*\" RETURN ({special_use}STATUS {})",
            status_items(capabilities)
        )
    } else {
        "LIST \"\" \"*\"".to_owned()
    }
}

fn status_items(capabilities: &Capabilities) -> &'static str {
    if capabilities.condstore() {
        "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)"
    } else {
        "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)"
    }
}

/// The FETCH items of a new message for a bodies mode.
fn fetch_items(bodies: BodiesMode, modseq: bool) -> String {
    let modseq = if modseq { " MODSEQ" } else { "" };
    if bodies.fetches_bodies() {
        format!("(UID FLAGS INTERNALDATE RFC822.SIZE{modseq} BODY.PEEK[])")
    } else {
        format!(
            "(UID FLAGS INTERNALDATE RFC822.SIZE{modseq} BODYSTRUCTURE BODY.PEEK[HEADER] \
             BODY.PEEK[TEXT]<0.{TEXT_START_BYTES}>)"
        )
    }
}

/// A mailbox name as an IMAP quoted string; `None` for a name a quoted string cannot carry
/// (CR, LF, NUL, or 8-bit bytes, which would need a literal).
pub(crate) fn quote_mailbox(name: &str) -> Option<String> {
    if name
        .bytes()
        .any(|byte| byte == b'\r' || byte == b'\n' || byte == 0 || byte >= 0x80)
    {
        return None;
    }
    Some(format!(
        "\"{}\"",
        name.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_names_are_quoted_or_refused() {
        assert_eq!(quote_mailbox("INBOX").as_deref(), Some("\"INBOX\""));
        assert_eq!(
            quote_mailbox(r#"a "b" \c"#).as_deref(),
            Some(r#""a \"b\" \\c""#)
        );
        assert_eq!(quote_mailbox("Caf&AOk-").as_deref(), Some("\"Caf&AOk-\""));
        assert_eq!(quote_mailbox("bad\r\nLOGOUT"), None);
        assert_eq!(quote_mailbox("Café"), None);
    }

    #[test]
    fn list_asks_for_statuses_when_the_server_can_answer_in_one_go() {
        let dovecot = Capabilities::from_names([
            "IMAP4rev1",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "SPECIAL-USE",
            "CONDSTORE",
        ]);
        assert_eq!(
            list_command(&dovecot),
            "LIST \"\" \"*\" RETURN (SPECIAL-USE STATUS (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ))"
        );
        assert_eq!(
            list_command(&Capabilities::from_names(["IMAP4rev1"])),
            "LIST \"\" \"*\""
        );
    }

    #[test]
    fn fetch_items_follow_the_bodies_mode() {
        assert_eq!(
            fetch_items(BodiesMode::Full, true),
            "(UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ BODY.PEEK[])"
        );
        let head = fetch_items(BodiesMode::OnDemand, false);
        assert!(head.contains("BODYSTRUCTURE") && head.contains("BODY.PEEK[HEADER]"));
        assert!(!head.contains("BODY.PEEK[]") && !head.contains("MODSEQ"));
    }
}
