//! The errors of the IMAP connection layer, classified for whoever decides what happens next.
//!
//! Purpose: one [`ImapError`] for connecting, securing, greeting, authenticating and the first commands,
//! with the questions a supervisor asks answered on the error itself: [`ImapError::is_transient`] (back
//! off and reconnect), [`ImapError::token_rejected`] (refresh the token once, then retry),
//! [`ImapError::insufficient_scope`] (re-authorize with the right scope),
//! [`ImapError::untrusted_certificate`] (an operator must fix the trust setup).
//!
//! Non-goal: retry policy. How long to back off, when to give up and which event to emit belong to the
//! per-account supervisor; this module only classifies.
//!
//! Key decision: a server's refusal keeps its raw text ([`ImapError::AuthRejected::server_text`]) with
//! the RFC 5530 response code split out (`AUTHENTICATIONFAILED`, `UNAVAILABLE`), because async-imap hands
//! a tagged `NO` over as text only, and the exact words are what an operator needs to diagnose a provider.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use postern_auth::sasl::{ChallengeVerdict, Mechanism, OAuthErrorChallenge};

use crate::login::LoginMethod;
use crate::response::{ServerReply, quote};

/// An error of connecting to, securing, or logging in to an IMAP server, or of a command on the session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImapError {
    /// Occurs when the TCP connection cannot be opened: nothing listens on the port (refused), the
    /// network or host is unreachable, or the host name does not resolve.
    ///
    /// Transient unless the address itself is malformed: a wrong host name is therefore retried with
    /// back-off too, and diagnosed by the caller from the message.
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

    /// Occurs when one stage of the connection or a command takes longer than its bound in
    /// [`Timeouts`](crate::conn::Timeouts): a black-holed port, a server that never greets, a login the
    /// provider never answers. The connection is dropped.
    #[error("IMAP {stage} timed out after {after:?}")]
    Timeout {
        /// The stage that did not finish.
        stage: Stage,
        /// The bound that ran out.
        after: Duration,
    },

    /// Occurs when the TLS handshake fails: the server's certificate is not trusted (see
    /// [`ImapError::untrusted_certificate`]) or the handshake itself went wrong (no common protocol
    /// version, an alert from the server).
    #[error("TLS with {host} failed: {reason}")]
    Tls {
        /// The host whose certificate or handshake failed.
        host: String,
        /// What went wrong.
        reason: TlsFailure,
    },

    /// Occurs when the endpoint's `ca_file` cannot be read, holds no PEM certificate, or holds one rustls
    /// cannot use as a trust anchor; or when no TLS configuration can be built at all.
    #[error("cannot use the CA file {}: {reason}", path.display())]
    TlsConfig {
        /// The configured CA file.
        path: PathBuf,
        /// Why it is unusable.
        reason: String,
    },

    /// Occurs when the host name is neither a valid DNS name nor an IP address, so TLS cannot check the
    /// certificate against it.
    #[error("{host:?} is not a valid host name for TLS")]
    InvalidHost {
        /// The host as configured.
        host: String,
    },

    /// Occurs when the endpoint asks for STARTTLS and the server does not advertise it (or refuses the
    /// command). Going on unencrypted would let an attacker who strips the capability read the
    /// credentials, so the connection is dropped.
    #[error(
        "{host} does not offer STARTTLS; refusing to continue unencrypted (possible downgrade)"
    )]
    StartTlsNotOffered {
        /// The host that did not offer it.
        host: String,
    },

    /// Occurs when an unencrypted connection, or a login over one, is asked for to a host that is not
    /// loopback. Refused before anything is sent.
    #[error(
        "refusing unencrypted IMAP to {host}: only loopback hosts may be used without TLS or STARTTLS"
    )]
    PlaintextRefused {
        /// The host as configured.
        host: String,
    },

    /// Occurs when the server greets with `* BYE` (too many connections, shutting down, overloaded).
    #[error("the IMAP server refused the connection: {server_text}")]
    GreetingRefused {
        /// The server's text after `BYE`.
        server_text: String,
    },

    /// Occurs when the server does not offer the SASL mechanism the login needs (`AUTH=XOAUTH2`, ...),
    /// or, for a password login, neither `AUTH=PLAIN` nor the `LOGIN` command (`LOGINDISABLED`).
    #[error(
        "the IMAP server does not offer {wanted} (it offers: {})",
        offered_list(offered)
    )]
    MechanismNotOffered {
        /// The mechanism the login wanted.
        wanted: Mechanism,
        /// The SASL mechanisms the server advertised (`AUTH=` values, upper-case), possibly none.
        offered: Vec<String>,
    },

    /// Occurs when the credentials cannot be put on the wire: a user name or token holding the
    /// mechanism's separator byte, a CR or LF in a `LOGIN` argument. The message never holds the secret.
    #[error("the credentials cannot be sent: {reason}")]
    InvalidCredentials {
        /// What is wrong, naming the field, never its value.
        reason: String,
    },

    /// Occurs when the server answers the login with a tagged `NO`: a wrong password, an expired or
    /// revoked token (with an OAuth error challenge before the `NO`), or a temporary failure on the
    /// server's side (`[UNAVAILABLE]`, e.g. its token check is down).
    #[error("the IMAP server rejected the {method} login: {server_text}{}", challenge_suffix(challenge.as_deref()))]
    AuthRejected {
        /// The command or mechanism that was refused.
        method: LoginMethod,
        /// The decoded OAuth error challenge the server sent before its `NO`, if it sent one.
        challenge: Option<Box<OAuthErrorChallenge>>,
        /// The RFC 5530 response code of the `NO`, upper-case (`AUTHENTICATIONFAILED`, `UNAVAILABLE`).
        response_code: Option<String>,
        /// The server's text, including the bracketed response code.
        server_text: String,
    },

    /// Occurs when the server answers a command other than the login with a tagged `NO` or `BAD`.
    #[error("the IMAP server refused {command}: {server_text}")]
    CommandRejected {
        /// The command, e.g. `"SELECT"`.
        command: &'static str,
        /// The RFC 5530 response code, upper-case, when the server sent one.
        response_code: Option<String>,
        /// The server's text, including the bracketed response code.
        server_text: String,
    },

    /// Occurs when the server says something the client cannot use: an unparsable or unexpected
    /// response, a `PREAUTH` greeting, a `BAD` to a command the server advertised.
    #[error("IMAP protocol error during {stage}: {message}")]
    Protocol {
        /// Where it happened.
        stage: Stage,
        /// What was wrong.
        message: String,
    },

    /// Occurs when reading or writing the connection fails after it was opened, including the server
    /// closing it unexpectedly (`UnexpectedEof`).
    #[error("IMAP I/O error during {stage}: {source}")]
    Io {
        /// Where it happened.
        stage: Stage,
        /// What the operating system or TLS layer said.
        #[source]
        source: io::Error,
    },
}

impl ImapError {
    /// Whether trying again later (a new connection, after a back-off) may succeed: connection refused
    /// or reset, timeouts, a `BYE` greeting, the connection dropping, and a `NO [UNAVAILABLE]` or
    /// `[INUSE]` answer (the provider's token check or mail store is down for a moment).
    pub fn is_transient(&self) -> bool {
        match self {
            ImapError::Connect { source, .. } => source.kind() != io::ErrorKind::InvalidInput,
            ImapError::Timeout { .. } | ImapError::GreetingRefused { .. } => true,
            ImapError::AuthRejected { response_code, .. }
            | ImapError::CommandRejected { response_code, .. } => {
                response_code.as_deref().is_some_and(is_transient_code)
            }
            ImapError::Io { source, .. } => is_transient_io(source.kind()),
            _ => false,
        }
    }

    /// Whether the server rejected the bearer token as expired, revoked or unknown (OAuth error
    /// challenge `401` / `invalid_token`): the caller refreshes the access token once and retries on a
    /// new connection; a second rejection means the grant needs re-authorization.
    pub fn token_rejected(&self) -> bool {
        self.oauth_challenge()
            .is_some_and(|challenge| challenge.verdict() == ChallengeVerdict::RefreshAndRetry)
    }

    /// Whether the server accepted the token but not its scope (`insufficient_scope`, Google's `400`
    /// with a `scope`): no refresh helps, the account needs a new consent including
    /// [`OAuthErrorChallenge::scope`].
    pub fn insufficient_scope(&self) -> bool {
        self.oauth_challenge().is_some_and(|challenge| {
            matches!(
                challenge.verdict(),
                ChallengeVerdict::InsufficientScope { .. }
            )
        })
    }

    /// Whether TLS failed because the server's certificate is not trusted: unknown issuer (self-signed,
    /// a private CA that is not configured), a name mismatch, expired or not yet valid.
    pub fn untrusted_certificate(&self) -> bool {
        matches!(self, ImapError::Tls { reason, .. } if reason.is_untrusted_certificate())
    }

    /// The OAuth error challenge the server sent before rejecting the login, if any.
    pub fn oauth_challenge(&self) -> Option<&OAuthErrorChallenge> {
        match self {
            ImapError::AuthRejected { challenge, .. } => challenge.as_deref(),
            _ => None,
        }
    }

    /// The RFC 5530 response code of a server refusal (`AUTHENTICATIONFAILED`, `UNAVAILABLE`), if any.
    pub fn response_code(&self) -> Option<&str> {
        match self {
            ImapError::AuthRejected { response_code, .. }
            | ImapError::CommandRejected { response_code, .. } => response_code.as_deref(),
            _ => None,
        }
    }
}

/// Why a TLS handshake failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The certificate chain does not lead to a trusted root: a self-signed certificate, or a private CA
    /// that is not in the endpoint's `ca_file`.
    UnknownIssuer,
    /// The certificate is not valid for the host name connected to.
    NameMismatch {
        /// The names the certificate holds, when rustls reported them.
        presented: Vec<String>,
    },
    /// The certificate has expired (or the local clock is wrong).
    Expired,
    /// The certificate is not valid yet (or the local clock is wrong).
    NotYetValid,
    /// Another reason the certificate was refused (revoked, bad signature, wrong purpose, ...).
    BadCertificate {
        /// rustls's description.
        detail: String,
    },
    /// The handshake failed for a reason unrelated to the certificate (no common protocol version or
    /// cipher, an alert from the server).
    Handshake {
        /// rustls's description.
        detail: String,
    },
}

impl TlsFailure {
    /// Whether the failure is about trusting the certificate rather than the handshake itself.
    pub fn is_untrusted_certificate(&self) -> bool {
        !matches!(self, TlsFailure::Handshake { .. })
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsFailure::UnknownIssuer => f.write_str(
                "certificate issued by an unknown authority (self-signed or a CA that is not trusted)",
            ),
            TlsFailure::NameMismatch { presented } if presented.is_empty() => {
                f.write_str("certificate is not valid for this host name")
            }
            TlsFailure::NameMismatch { presented } => write!(
                f,
                "certificate is not valid for this host name (it names {})",
                presented.join(", ")
            ),
            TlsFailure::Expired => f.write_str("certificate has expired"),
            TlsFailure::NotYetValid => f.write_str("certificate is not valid yet"),
            TlsFailure::BadCertificate { detail } => write!(f, "certificate refused: {detail}"),
            TlsFailure::Handshake { detail } => write!(f, "handshake failed: {detail}"),
        }
    }
}

/// The stage of a connection or session an error or timeout happened in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Opening the TCP connection.
    Connect,
    /// The TLS handshake (implicit TLS or after STARTTLS).
    TlsHandshake,
    /// Waiting for and reading the server's greeting.
    Greeting,
    /// The STARTTLS command.
    StartTls,
    /// The CAPABILITY command.
    Capability,
    /// The login (AUTHENTICATE or LOGIN).
    Authenticate,
    /// A command on the authenticated session.
    Command(&'static str),
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Connect => f.write_str("TCP connect"),
            Stage::TlsHandshake => f.write_str("TLS handshake"),
            Stage::Greeting => f.write_str("greeting"),
            Stage::StartTls => f.write_str("STARTTLS"),
            Stage::Capability => f.write_str("CAPABILITY"),
            Stage::Authenticate => f.write_str("login"),
            Stage::Command(name) => f.write_str(name),
        }
    }
}

/// The server closed the connection during `stage`.
pub(crate) fn closed(stage: Stage) -> ImapError {
    ImapError::Io {
        stage,
        source: io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ),
    }
}

/// An async-imap error of `command` at `stage` (not the login's, which has its own mapping).
pub(crate) fn command_error(
    stage: Stage,
    command: &'static str,
    error: async_imap::error::Error,
) -> ImapError {
    use async_imap::error::Error;
    match error {
        Error::Io(source) => ImapError::Io { stage, source },
        Error::ConnectionLost => closed(stage),
        Error::No(text) | Error::Bad(text) => {
            let reply = ServerReply::from_async_imap(&text);
            ImapError::CommandRejected {
                command,
                response_code: reply.response_code,
                server_text: reply.server_text,
            }
        }
        other => ImapError::Protocol {
            stage,
            message: quote(&other.to_string()),
        },
    }
}

/// RFC 5530 codes after which the same request may succeed later.
fn is_transient_code(code: &str) -> bool {
    code.eq_ignore_ascii_case("UNAVAILABLE") || code.eq_ignore_ascii_case("INUSE")
}

/// I/O failures of an open connection that a new connection may not hit.
fn is_transient_io(kind: io::ErrorKind) -> bool {
    use io::ErrorKind::*;
    matches!(
        kind,
        ConnectionReset
            | ConnectionAborted
            | BrokenPipe
            | UnexpectedEof
            | TimedOut
            | Interrupted
            | NotConnected
    )
}

fn offered_list(offered: &[String]) -> String {
    if offered.is_empty() {
        "no SASL mechanism".to_owned()
    } else {
        offered.join(", ")
    }
}

fn challenge_suffix(challenge: Option<&OAuthErrorChallenge>) -> String {
    challenge.map_or_else(String::new, |challenge| {
        format!(" (OAuth error: {})", challenge.raw_json())
    })
}

/// An error of a sync pass: the server, the store, or the caller asking to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// Occurs when a command fails or the connection breaks; see [`ImapError::is_transient`].
    #[error(transparent)]
    Imap(#[from] ImapError),

    /// Occurs when the store fails (busy, I/O, a mailbox deleted under the pass).
    #[error("storing the sync result failed")]
    Store(#[from] postern_store::StoreError),

    /// Occurs when the [`SyncObserver`](crate::engine::SyncObserver) asked the pass to stop after
    /// a committed batch; everything committed so far stays, and the next pass resumes there.
    #[error("the sync pass was stopped after a committed batch")]
    Interrupted,

    /// Occurs when the task committing a batch panicked or was cancelled (the runtime shutting
    /// down); the batch is not committed and the next pass fetches it again.
    #[error("committing a batch ended abnormally: {0}")]
    CommitTask(String),
}

impl SyncError {
    /// Whether running the pass again later (on a new connection for IMAP errors) may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Imap(error) => error.is_transient(),
            SyncError::Store(error) => error.is_transient(),
            SyncError::Interrupted | SyncError::CommitTask(_) => true,
        }
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
