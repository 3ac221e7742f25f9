//! What ended a supervisor's session, what to do about it, and how to say it in plain words.
//!
//! Purpose: [`Failure::verdict`] turns a failed login, pass, IDLE or store write into one of three
//! courses (retry after a back-off, mark the account `error`, or stop and wait for a person), and
//! [`Failure::describe`] writes the account's `last_error`. Both are pure and unit-tested.
//! Non-goal: acting on the verdict; the supervisor's loop does.
//! Key decision: the classification already on the errors ([`SessionError::is_transient`],
//! [`SyncError::is_transient`]) decides retry or `error`. The token manager's own verdicts come
//! first: a dead grant or a failing OAuth app has already been recorded on the account (with its
//! event) by the token manager, so the supervisor stops without touching the state.

use postern_auth::token_manager::TokenError;
use postern_store::{AccountState, StoreError};

use crate::account::SessionError;
use crate::error::SyncError;

/// Something that ended a supervisor's session.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Opening the session (connect, TLS, token, login) failed.
    Login(SessionError),
    /// A pass, a SELECT or IDLE failed on an open session.
    Session(SyncError),
    /// Reading or writing the account in the store failed.
    Store(StoreError),
    /// The account is, in the store, in a state the supervisor must not touch (someone else set
    /// it: the token manager, an operator).
    Unsyncable(AccountState),
}

/// What the supervisor does about a [`Failure`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Reconnect after a back-off.
    Retry,
    /// Mark the account `error` and wait long before trying again.
    Fail,
    /// Stop for good: only a restart (after a person acted) helps.
    Park(ParkReason),
}

/// Why a supervisor stopped on its own and waits to be restarted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParkReason {
    /// The grant is dead; the token manager marked the account `needs_reauth`.
    NeedsReauth,
    /// The account was never authorized.
    NotAuthorized,
    /// The OAuth app is refused by the provider; the token manager marked the account `error`.
    AppFailing,
    /// The account no longer exists.
    AccountGone,
    /// The account is in a state that does not sync (`disabled`, `pending_authorization`,
    /// `needs_reauth`) when the supervisor looked.
    NotSyncable,
}

impl ParkReason {
    /// In plain words.
    pub fn describe(&self) -> &'static str {
        match self {
            ParkReason::NeedsReauth => "the account needs to be authorized again",
            ParkReason::NotAuthorized => "the account has not been authorized yet",
            ParkReason::AppFailing => "the OAuth app is refused by the provider",
            ParkReason::AccountGone => "the account was deleted",
            ParkReason::NotSyncable => "the account is not in a state that syncs",
        }
    }
}

impl Failure {
    /// What to do about it.
    pub(crate) fn verdict(&self) -> Verdict {
        match self {
            Failure::Login(SessionError::Token(token)) => match token {
                TokenError::NeedsReauth { .. } => Verdict::Park(ParkReason::NeedsReauth),
                TokenError::NotAuthorized(_) => Verdict::Park(ParkReason::NotAuthorized),
                TokenError::AppFailed { .. } => Verdict::Park(ParkReason::AppFailing),
                TokenError::AccountNotFound(_) => Verdict::Park(ParkReason::AccountGone),
                other if other.is_transient() => Verdict::Retry,
                _ => Verdict::Fail,
            },
            Failure::Login(error) => retry_if(error.is_transient()),
            Failure::Session(error) => retry_if(error.is_transient()),
            Failure::Store(StoreError::NotFound { .. }) => Verdict::Park(ParkReason::AccountGone),
            Failure::Store(error) => retry_if(error.is_transient()),
            Failure::Unsyncable(AccountState::NeedsReauth) => {
                Verdict::Park(ParkReason::NeedsReauth)
            }
            Failure::Unsyncable(AccountState::PendingAuthorization) => {
                Verdict::Park(ParkReason::NotAuthorized)
            }
            Failure::Unsyncable(_) => Verdict::Park(ParkReason::NotSyncable),
        }
    }

    /// The account's `last_error`: what failed, in words an operator can act on.
    pub(crate) fn describe(&self) -> String {
        match self {
            Failure::Login(SessionError::Imap(error)) => {
                format!("could not connect or log in: {}", with_sources(error))
            }
            Failure::Login(error) => with_sources(error),
            Failure::Session(SyncError::Imap(error)) => {
                format!("the IMAP session failed: {}", with_sources(error))
            }
            Failure::Session(error) => with_sources(error),
            Failure::Store(error) => format!("the store failed: {}", with_sources(error)),
            Failure::Unsyncable(state) => format!("the account is {state}"),
        }
    }
}

fn retry_if(transient: bool) -> Verdict {
    if transient {
        Verdict::Retry
    } else {
        Verdict::Fail
    }
}

/// The error's message followed by each source's that it does not already contain.
fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::error::{ImapError, Stage};
    use crate::login::LoginMethod;

    fn wrong_password() -> ImapError {
        ImapError::AuthRejected {
            method: LoginMethod::LoginCommand,
            challenge: None,
            response_code: Some("AUTHENTICATIONFAILED".into()),
            server_text: "[AUTHENTICATIONFAILED] Authentication failed.".into(),
        }
    }

    fn dropped() -> ImapError {
        ImapError::Io {
            stage: Stage::Command("IDLE"),
            source: io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ),
        }
    }

    #[test]
    fn a_dropped_connection_is_retried_and_said_plainly() {
        let failure = Failure::Session(SyncError::Imap(dropped()));
        assert_eq!(failure.verdict(), Verdict::Retry);
        assert_eq!(
            failure.describe(),
            "the IMAP session failed: IMAP I/O error during IDLE: the server closed the connection"
        );
    }

    #[test]
    fn a_refused_password_fails_without_retrying() {
        let failure = Failure::Login(SessionError::Imap(wrong_password()));
        assert_eq!(failure.verdict(), Verdict::Fail);
        let words = failure.describe();
        assert!(
            words.starts_with("could not connect or log in: "),
            "{words}"
        );
        assert!(words.contains("Authentication failed."), "{words}");
    }

    #[test]
    fn token_manager_verdicts_park_the_supervisor() {
        let dead = Failure::Login(SessionError::Token(TokenError::NeedsReauth {
            reason: "revoked".into(),
        }));
        assert_eq!(dead.verdict(), Verdict::Park(ParkReason::NeedsReauth));
        let app = Failure::Login(SessionError::Token(TokenError::AppFailed {
            reason: "bad secret".into(),
        }));
        assert_eq!(app.verdict(), Verdict::Park(ParkReason::AppFailing));
        let down = Failure::Login(SessionError::Token(TokenError::Unavailable {
            reason: "503".into(),
            retry_at: None,
        }));
        assert_eq!(down.verdict(), Verdict::Retry);
        let unauthorized = Failure::Login(SessionError::Token(TokenError::NotOAuth("a".into())));
        assert_eq!(unauthorized.verdict(), Verdict::Fail);
    }

    #[test]
    fn a_missing_account_parks_and_a_missing_password_fails() {
        let gone = Failure::Store(StoreError::NotFound {
            what: "account x".into(),
        });
        assert_eq!(gone.verdict(), Verdict::Park(ParkReason::AccountGone));
        let missing = Failure::Login(SessionError::MissingPassword);
        assert_eq!(missing.verdict(), Verdict::Fail);
        assert_eq!(missing.describe(), "no password is stored for this account");
    }

    #[test]
    fn sources_are_appended_once() {
        let store = Failure::Session(SyncError::Store(StoreError::NotFound {
            what: "mailbox 7".into(),
        }));
        assert_eq!(
            store.describe(),
            "storing the sync result failed: mailbox 7 does not exist"
        );
        let refused = ImapError::Connect {
            host: "localhost".into(),
            port: 1,
            source: io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused"),
        };
        assert_eq!(
            Failure::Login(SessionError::Imap(refused)).describe(),
            "could not connect or log in: cannot connect to localhost:1: connection refused"
        );
    }
}
