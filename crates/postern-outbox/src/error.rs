//! The errors of the outbox: an SMTP session's, a submission's, a cancellation's.
//!
//! Purpose: let callers tell "try again later" from "this will never work" from "the caller asked
//! for something wrong", with the server's own words kept wherever a server spoke.
//! Non-goal: HTTP statuses; `postern-api` maps these (a submission's field errors to 400, a too
//! large message to 413, an unknown account to 404, a cancellation of a sent item to 409).
//! Key decision: [`SmtpError`] answers [`SmtpError::is_transient`] and
//! [`SmtpError::token_rejected`] itself, so the retry policy in `classify` reads like a table and
//! cannot forget a case.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use postern_auth::FieldError;
use postern_auth::SaslError;
use postern_auth::sasl::{ChallengeVerdict, OAuthErrorChallenge};
use postern_store::{AccountState, OutboxStatus, StoreError};

use crate::smtp::Reply;
use crate::smtp::ReplyError;

/// Where in an SMTP session something went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Opening the TCP connection.
    Connect,
    /// The TLS handshake (implicit TLS or after STARTTLS).
    Tls,
    /// Waiting for the server's `220` greeting.
    Greeting,
    /// `EHLO`.
    Ehlo,
    /// `STARTTLS`.
    StartTls,
    /// `AUTH`.
    Auth,
    /// `MAIL FROM`.
    MailFrom,
    /// `RCPT TO`.
    RcptTo,
    /// `DATA` and its `354`.
    Data,
    /// Sending the message and waiting for the final reply.
    DataEnd,
    /// `RSET`.
    Reset,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Stage::Connect => "connect",
            Stage::Tls => "TLS handshake",
            Stage::Greeting => "greeting",
            Stage::Ehlo => "EHLO",
            Stage::StartTls => "STARTTLS",
            Stage::Auth => "AUTH",
            Stage::MailFrom => "MAIL FROM",
            Stage::RcptTo => "RCPT TO",
            Stage::Data => "DATA",
            Stage::DataEnd => "end of DATA",
            Stage::Reset => "RSET",
        };
        f.write_str(name)
    }
}

/// An error of an SMTP session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpError {
    /// Occurs when the TCP connection cannot be opened (refused, unreachable, unknown host).
    /// Transient.
    #[error("cannot connect to {host}:{port}: {source}")]
    Connect {
        /// The host as configured.
        host: String,
        /// The port as configured.
        port: u16,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// Occurs when a stage takes longer than its bound: a black-holed port, a server that never
    /// answers. Transient; after [`Stage::DataEnd`] the message may have been accepted.
    #[error("SMTP {stage} timed out after {after:?}")]
    Timeout {
        /// The stage that did not finish.
        stage: Stage,
        /// The bound that ran out.
        after: Duration,
    },

    /// Occurs when the connection breaks (reset, closed) during a stage. Transient.
    #[error("the connection broke during SMTP {stage}: {source}")]
    Io {
        /// The stage that was running.
        stage: Stage,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// Occurs when the TLS handshake fails; `untrusted_certificate` when the server's certificate
    /// is refused (unknown issuer, wrong name, expired), which only an operator can fix.
    #[error("TLS with {host} failed: {detail}")]
    Tls {
        /// The host as configured.
        host: String,
        /// What rustls said.
        detail: String,
        /// Whether the certificate itself was refused.
        untrusted_certificate: bool,
    },

    /// Occurs when the endpoint's `ca_file` cannot be read or holds no certificate.
    #[error("cannot use the CA file {path}: {reason}")]
    TlsConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// Occurs when an endpoint without TLS is not on the loopback interface: passwords and tokens
    /// are never sent in the clear over a network.
    #[error("refusing an unencrypted SMTP connection to {host}: only loopback may go without TLS")]
    PlaintextRefused {
        /// The host as configured.
        host: String,
    },

    /// Occurs when the endpoint asks for STARTTLS and the server does not offer it (or refuses
    /// it), or sends bytes after its `220` that could have been injected before TLS.
    #[error("the server at {host} does not offer a usable STARTTLS: {detail}")]
    StartTlsUnavailable {
        /// The host as configured.
        host: String,
        /// What happened.
        detail: String,
    },

    /// Occurs when the server sends something that is not an SMTP reply. Transient (a broken
    /// middlebox or an overloaded server), but reported with what was seen.
    #[error("the server broke the SMTP protocol during {stage}: {source}")]
    Protocol {
        /// The stage that was running.
        stage: Stage,
        /// What was wrong with the reply.
        #[source]
        source: ReplyError,
    },

    /// Occurs when the server refuses a command outside AUTH: its greeting is not `220`, or it
    /// refuses EHLO, MAIL FROM, DATA. Transient for 4xx, permanent for 5xx.
    #[error("the server refused SMTP {stage}: {reply}")]
    Rejected {
        /// The refused stage.
        stage: Stage,
        /// The server's reply.
        reply: Reply,
    },

    /// Occurs when the server refuses the login. With an OAuth mechanism `challenge` holds the
    /// JSON the server explained itself with (see [`SmtpError::token_rejected`]).
    #[error("the server refused the login: {reply}{}", challenge_text(.challenge.as_deref()))]
    AuthRejected {
        /// The final reply (`535 5.7.8 …`, `454 4.7.0 …`).
        reply: Reply,
        /// The decoded OAuth error challenge, if the server sent one (boxed: it is large and rare).
        challenge: Option<Box<OAuthErrorChallenge>>,
    },

    /// Occurs when the mechanism the account uses is not among those the server offers.
    #[error("the server does not offer {mechanism} (it offers: {})", offered.join(" "))]
    MechanismNotOffered {
        /// The account's mechanism.
        mechanism: String,
        /// What the server offers.
        offered: Vec<String>,
    },

    /// Occurs when the SASL exchange cannot go on (an unexpected challenge, bad error JSON, a
    /// credential the mechanism cannot carry).
    #[error("SASL exchange failed: {0}")]
    Sasl(#[from] SaslError),

    /// Occurs when the message is larger than the server's declared `SIZE`.
    #[error("the message ({size} bytes) is larger than the server accepts ({limit} bytes)")]
    TooLarge {
        /// The message's size.
        size: u64,
        /// The server's limit.
        limit: u64,
    },

    /// Occurs when an envelope address holds CR, LF or angle brackets, which would let it end
    /// the command it is in (submissions are checked before they are queued; this is the last
    /// guard before the wire).
    #[error("refusing to send the envelope address {address:?}")]
    UnsafeAddress {
        /// The address as stored.
        address: String,
    },

    /// Occurs when an address needs UTF-8 and the server does not offer SMTPUTF8.
    #[error("an address is not ASCII and the server does not offer SMTPUTF8")]
    Utf8Unsupported,
}

fn challenge_text(challenge: Option<&OAuthErrorChallenge>) -> String {
    challenge.map_or_else(String::new, |challenge| {
        format!(" (server said {})", challenge.raw_json())
    })
}

impl SmtpError {
    /// True when the same attempt may succeed later: network trouble, timeouts, protocol noise,
    /// and every 4xx refusal.
    pub fn is_transient(&self) -> bool {
        match self {
            SmtpError::Connect { .. }
            | SmtpError::Timeout { .. }
            | SmtpError::Io { .. }
            | SmtpError::Protocol { .. } => true,
            SmtpError::Rejected { reply, .. } | SmtpError::AuthRejected { reply, .. } => {
                reply.code() / 100 == 4 && self.token_verdict().is_none()
            }
            _ => false,
        }
    }

    /// True when the server rejected the bearer token as invalid or expired (`401` /
    /// `invalid_token`): refresh it once and log in again.
    pub fn token_rejected(&self) -> bool {
        self.token_verdict() == Some(ChallengeVerdict::RefreshAndRetry)
    }

    /// The server's reply, when the error carries one.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            SmtpError::Rejected { reply, .. } | SmtpError::AuthRejected { reply, .. } => {
                Some(reply)
            }
            _ => None,
        }
    }

    /// What the server's OAuth error challenge means, when it sent one.
    pub fn token_verdict(&self) -> Option<ChallengeVerdict> {
        match self {
            SmtpError::AuthRejected {
                challenge: Some(challenge),
                ..
            } => Some(challenge.verdict()),
            _ => None,
        }
    }
}

/// Why a submission was refused; nothing was queued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// Occurs when the request is malformed: no recipient, a bad address, an attachment that is
    /// not base64, a bad header. Every problem is listed.
    #[error("the message is invalid: {}", list(.0))]
    Invalid(Vec<FieldError>),

    /// Occurs when the built message exceeds the size limit (the server's `SIZE` when known,
    /// otherwise the configured maximum).
    #[error("the message ({size} bytes) is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The built message's size.
        size: u64,
        /// The limit it exceeds.
        limit: u64,
    },

    /// Occurs when the account does not exist.
    #[error("account {0} not found")]
    AccountNotFound(String),

    /// Occurs when the account cannot send in its state (not authorized yet, needs
    /// re-authorization, disabled).
    #[error("account {account_id} cannot send while it is {state}")]
    AccountNotReady {
        /// The account.
        account_id: String,
        /// Its state.
        state: AccountState,
    },

    /// Occurs when the store fails.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why an outbox item could not be cancelled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CancelError {
    /// Occurs when there is no such item.
    #[error("outbox item {0} not found")]
    NotFound(String),

    /// Occurs when the item is no longer queued (being sent, sent, failed or cancelled).
    #[error("outbox item {id} cannot be cancelled: it is {status}")]
    NotCancellable {
        /// The item.
        id: String,
        /// Its status.
        status: OutboxStatus,
    },

    /// Occurs when the store fails.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a sent message could not be copied to the account's Sent mailbox. Never fails the send:
/// the worker logs it and the item stays `sent`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SentCopyError {
    /// Occurs when no IMAP session could be opened (server down, login refused, no token).
    #[error("cannot log in to IMAP: {0}")]
    Session(#[from] postern_sync::account::SessionError),
    /// Occurs when the server refuses or fails `APPEND`, or `LIST` fails or times out.
    #[error(transparent)]
    Imap(#[from] postern_sync::ImapError),
    /// Occurs when the store cannot say which mailbox is Sent.
    #[error("cannot read the account's mailboxes: {0}")]
    Store(#[from] StoreError),
    /// Occurs when the HTTP client the IMAP credentials need could not be built at start-up.
    #[error("IMAP credentials are unavailable: {0}")]
    Unavailable(String),
}
