//! IDLE (RFC 2177) on the selected mailbox: wait until the server reports a change, a deadline
//! passes or a stop is asked, then end it with DONE.
//!
//! Purpose: [`idle`] runs one IDLE command on an [`ImapSession`] and says why it ended;
//! [`classify`] (pure) decides which untagged responses count as a change; [`select_mailbox`]
//! selects the mailbox to watch.
//! Non-goal: syncing; the supervisor runs a pass after [`IdleEnd::Changed`].
//!
//! Key decision: IDLE is driven with async-imap's `run_command` / `read_response` rather than its
//! `Session::idle()` handle, for two reasons. `Handle::wait_with_timeout` restarts its timer on every
//! response, including the `* OK Still here` keep-alives Dovecot sends every two minutes, so on such
//! a server it would never re-issue IDLE before the 29-minute cut; and `idle()` takes the session by
//! value, which would strip the [`ImapSession`] wrapper (capabilities, QRESYNC state, timeouts).
//! Reading one response is cancel-safe (the stream keeps partial input in its buffer), so waiting
//! for a response, a deadline and a stop signal in one `select!` loses nothing.

use std::time::Duration;

use async_imap::imap_proto::{MailboxDatum, RequestId, Response, Status};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::conn::within;
use crate::error::{ImapError, Stage, closed, command_error};
use crate::response::ServerReply;
use crate::session::ImapSession;
use crate::supervisor::stop_requested;

const STAGE: Stage = Stage::Command("IDLE");

/// What an untagged response means to someone waiting in IDLE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdleSignal {
    /// The mailbox changed: new message (`EXISTS`), expunge (`EXPUNGE`, `VANISHED`), flags
    /// (`FETCH`).
    Change,
    /// `* OK ...`: a keep-alive or a notice; nothing to do.
    KeepAlive,
    /// `* BYE`: the server is closing the connection.
    Bye,
    /// Anything else (`RECENT`, `FLAGS`, capabilities): nothing to sync.
    Other,
}

/// Classifies an untagged response received during IDLE.
pub(crate) fn classify(response: &Response<'_>) -> IdleSignal {
    match response {
        Response::MailboxData(MailboxDatum::Exists(_))
        | Response::Expunge(_)
        | Response::Vanished { .. }
        | Response::Fetch(..) => IdleSignal::Change,
        Response::Data {
            status: Status::Bye,
            ..
        } => IdleSignal::Bye,
        Response::Data { .. } => IdleSignal::KeepAlive,
        _ => IdleSignal::Other,
    }
}

/// Why an IDLE ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdleEnd {
    /// The server reported a change in the mailbox.
    Changed,
    /// The deadline passed (time to re-issue IDLE, or a resync is due).
    Deadline,
    /// A stop was asked.
    Stopped,
}

/// Runs IDLE on the selected mailbox until a change, `deadline` or a stop on `stop`, then ends it
/// with DONE. DONE waits for the server at most the command timeout, or `stop_grace` when stopping.
///
/// # Errors
///
/// The connection failing or the server closing it (`* BYE`), a timeout, or the server refusing
/// IDLE ([`ImapError::CommandRejected`]).
pub(crate) async fn idle(
    session: &mut ImapSession,
    deadline: Instant,
    stop: &mut watch::Receiver<bool>,
    stop_grace: Duration,
) -> Result<IdleEnd, ImapError> {
    let bound = session.timeouts().command;
    let inner = session.inner_mut();
    let tag = within(STAGE, bound, inner.run_command("IDLE"))
        .await?
        .map_err(|error| command_error(STAGE, "IDLE", error))?;
    let mut end = None;
    // Changes the server had queued for this session come before the continuation.
    loop {
        let step = read_one(inner, bound, |response| match response {
            Response::Continue(_) => Ok(None),
            done @ Response::Done { .. } => Err(refused(&tag, done)),
            other => note(classify(other)).map(Some),
        })
        .await??;
        match step {
            None => break,
            Some(true) => end = Some(IdleEnd::Changed),
            Some(false) => {}
        }
    }
    let end = match end {
        Some(end) => end,
        None => wait(inner, deadline, stop).await?,
    };
    let done_bound = if end == IdleEnd::Stopped {
        stop_grace.min(bound)
    } else {
        bound
    };
    let changed_meanwhile = done(inner, &tag, done_bound).await?;
    Ok(if changed_meanwhile && end == IdleEnd::Deadline {
        IdleEnd::Changed
    } else {
        end
    })
}

/// Waits in IDLE for a change, the deadline or a stop.
async fn wait(
    inner: &mut async_imap::Session<crate::BoxedStream>,
    deadline: Instant,
    stop: &mut watch::Receiver<bool>,
) -> Result<IdleEnd, ImapError> {
    loop {
        tokio::select! {
            () = stop_requested(stop) => return Ok(IdleEnd::Stopped),
            () = tokio::time::sleep_until(deadline) => return Ok(IdleEnd::Deadline),
            response = inner.read_response() => {
                let response = match response {
                    Ok(Some(response)) => response,
                    Ok(None) => return Err(closed(STAGE)),
                    Err(source) => return Err(ImapError::Io { stage: STAGE, source }),
                };
                if note(classify(response.parsed()))? {
                    return Ok(IdleEnd::Changed);
                }
            }
        }
    }
}

/// Sends DONE and reads up to IDLE's tagged completion; true if a change came meanwhile.
async fn done(
    inner: &mut async_imap::Session<crate::BoxedStream>,
    tag: &RequestId,
    bound: Duration,
) -> Result<bool, ImapError> {
    within(STAGE, bound, inner.run_command_untagged("DONE"))
        .await?
        .map_err(|error| command_error(STAGE, "IDLE", error))?;
    let mut changed = false;
    loop {
        let finished = read_one(inner, bound, |response| match response {
            Response::Done {
                tag: done,
                status: Status::Ok,
                ..
            } if done == tag => Ok(true),
            refusal @ Response::Done { tag: done, .. } if done == tag => Err(refused(tag, refusal)),
            other => {
                changed |= note(classify(other))?;
                Ok(false)
            }
        })
        .await??;
        if finished {
            return Ok(changed);
        }
    }
}

/// True for a change; an error for `BYE`.
fn note(signal: IdleSignal) -> Result<bool, ImapError> {
    match signal {
        IdleSignal::Change => Ok(true),
        IdleSignal::Bye => Err(closed(STAGE)),
        IdleSignal::KeepAlive | IdleSignal::Other => Ok(false),
    }
}

/// Reads one response (under `bound`) and hands it to `look`.
async fn read_one<T>(
    inner: &mut async_imap::Session<crate::BoxedStream>,
    bound: Duration,
    look: impl FnOnce(&Response<'_>) -> T,
) -> Result<T, ImapError> {
    match within(STAGE, bound, inner.read_response()).await? {
        Ok(Some(response)) => Ok(look(response.parsed())),
        Ok(None) => Err(closed(STAGE)),
        Err(source) => Err(ImapError::Io {
            stage: STAGE,
            source,
        }),
    }
}

/// The error for a tagged completion of IDLE that is not `OK` (or one that came before the
/// continuation, which means the server did not accept IDLE).
fn refused(tag: &RequestId, response: &Response<'_>) -> ImapError {
    match response {
        Response::Done {
            tag: done, outcome, ..
        } if done == tag => {
            let reply = ServerReply::from_outcome(outcome);
            ImapError::CommandRejected {
                command: "IDLE",
                response_code: reply.response_code,
                server_text: reply.server_text,
            }
        }
        _ => crate::response::protocol(STAGE, "a completion for another command during IDLE"),
    }
}

/// Selects `mailbox` (with CONDSTORE when offered, so MODSEQ changes are reported) for IDLE, and
/// empties async-imap's side channel of the responses it parked there.
///
/// # Errors
///
/// [`ImapError::CommandRejected`] when the server refuses the SELECT; I/O errors and timeouts.
pub(crate) async fn select_mailbox(
    session: &mut ImapSession,
    mailbox: &str,
) -> Result<(), ImapError> {
    let stage = Stage::Command("SELECT");
    let bound = session.timeouts().command;
    let condstore = session.capabilities().condstore();
    let inner = session.inner_mut();
    let selected = if condstore {
        within(stage, bound, inner.select_condstore(mailbox)).await?
    } else {
        within(stage, bound, inner.select(mailbox)).await?
    };
    selected.map_err(|error| command_error(stage, "SELECT", error))?;
    drain_side_channel(session);
    Ok(())
}

/// Drops what async-imap parked on its bounded side channel: nobody reads it, and a full channel
/// would hold up to 100 responses per idle connection in memory.
pub(crate) fn drain_side_channel(session: &mut ImapSession) {
    let parked = &session.inner_mut().unsolicited_responses;
    while parked.try_recv().is_ok() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal_of(line: &str) -> IdleSignal {
        let (rest, response) = Response::parse(line.as_bytes()).unwrap();
        assert!(rest.is_empty(), "unparsed: {rest:?}");
        classify(&response)
    }

    #[test]
    fn new_mail_expunges_and_flag_changes_are_changes() {
        assert_eq!(signal_of("* 7 EXISTS\r\n"), IdleSignal::Change);
        assert_eq!(signal_of("* 3 EXPUNGE\r\n"), IdleSignal::Change);
        assert_eq!(signal_of("* VANISHED 4:5\r\n"), IdleSignal::Change);
        assert_eq!(
            signal_of("* 2 FETCH (FLAGS (\\Seen) MODSEQ (12))\r\n"),
            IdleSignal::Change
        );
    }

    #[test]
    fn keep_alives_recent_and_flag_lists_are_not() {
        assert_eq!(signal_of("* OK Still here\r\n"), IdleSignal::KeepAlive);
        assert_eq!(signal_of("* 1 RECENT\r\n"), IdleSignal::Other);
        assert_eq!(
            signal_of("* FLAGS (\\Answered \\Seen $Forwarded)\r\n"),
            IdleSignal::Other
        );
    }

    #[test]
    fn bye_is_the_end_of_the_connection() {
        assert_eq!(
            signal_of("* BYE Server shutting down.\r\n"),
            IdleSignal::Bye
        );
        assert!(note(IdleSignal::Bye).is_err_and(|error| error.is_transient()));
        assert!(note(IdleSignal::Change).is_ok_and(|changed| changed));
        assert!(note(IdleSignal::KeepAlive).is_ok_and(|changed| !changed));
    }

    #[test]
    fn a_tagged_no_to_idle_is_a_rejected_command() {
        let tag = RequestId("A7".into());
        let (_, response) = Response::parse(b"A7 NO [CANNOT] IDLE not now\r\n").unwrap();
        let error = refused(&tag, &response);
        assert!(
            matches!(&error, ImapError::CommandRejected { command: "IDLE", response_code: Some(code), .. } if code == "CANNOT"),
            "{error:?}"
        );
        let (_, other) = Response::parse(b"A6 OK done\r\n").unwrap();
        assert!(matches!(refused(&tag, &other), ImapError::Protocol { .. }));
    }
}
