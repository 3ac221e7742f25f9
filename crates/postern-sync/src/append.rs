//! `APPEND`: put a message into a mailbox, e.g. the copy of a sent message into Sent.
//!
//! Purpose: [`append`], the one command the outbox needs from the IMAP side.
//! Non-goal: choosing the mailbox or the flags (the caller does), and UIDPLUS's `APPENDUID`
//! (nothing here needs the new UID).
//! Key decision: async-imap's own `APPEND` is used, bounded by the session's command timeout. It
//! sends a synchronising literal and waits for the server's `+` before the message, whether or
//! not LITERAL+ is offered: one extra round trip per message, and a server that refuses the
//! message (too large, no such mailbox) says so before any byte of it is sent.

use crate::conn::within;
use crate::error::{ImapError, Stage, command_error};
use crate::ops::command::Flag;
use crate::session::ImapSession;

/// Appends `raw` (a whole RFC 5322 message, CRLF line ends) to `mailbox` with `flags` set.
///
/// # Errors
///
/// [`ImapError::CommandRejected`] when the server refuses (no such mailbox: `[TRYCREATE]`, over
/// quota), [`ImapError::Timeout`] past the command bound (the session is unusable then: drop it),
/// [`ImapError::Protocol`] for a mailbox name that cannot be quoted, [`ImapError::Io`].
pub async fn append(
    session: &mut ImapSession,
    mailbox: &str,
    flags: &[Flag],
    raw: &[u8],
) -> Result<(), ImapError> {
    let stage = Stage::Command("APPEND");
    let bound = session.timeouts().command;
    let flag_list = flag_list(flags);
    let command = session
        .inner_mut()
        .append(mailbox, flag_list.as_deref(), None, raw);
    within(stage, bound, command)
        .await?
        .map_err(|error| command_error(stage, "APPEND", error))
}

/// The parenthesised flag list, or `None` for no flags.
fn flag_list(flags: &[Flag]) -> Option<String> {
    if flags.is_empty() {
        return None;
    }
    let names: Vec<&str> = flags.iter().map(Flag::as_str).collect();
    Some(format!("({})", names.join(" ")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is the right failure in a test
mod tests {
    use super::*;

    #[test]
    fn flags_become_one_parenthesised_list() {
        let flags = [
            Flag::parse("\\Seen").unwrap(),
            Flag::parse("$Sent").unwrap(),
        ];
        assert_eq!(flag_list(&flags).as_deref(), Some("(\\Seen $Sent)"));
        assert_eq!(flag_list(&[]), None);
    }
}
