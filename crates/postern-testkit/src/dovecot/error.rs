//! The one error type of the mail-server harness (Dovecot, TLS, SMTP sink, mail generator).
//!
//! Non-goal: fine-grained recovery; tests print these and fail. Key decision: every message says
//! what to do next (install a package, read the attached log tail), because a harness error is read
//! by a person staring at a failed test, not by code.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the install hint says; kept in one place so the error text and the docs agree.
pub const DOVECOT_INSTALL_HINT: &str = "run `scripts/test`, which installs it, or `apt-get update && \
     apt-get install -y dovecot-core dovecot-imapd dovecot-submissiond dovecot-lmtpd`";

/// Errors of the mail-server test harness.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// Occurs when the Dovecot binary is not installed where the harness looks for it.
    #[error(
        "Dovecot is not installed ({} not found): tests that need a real mail server cannot run; \
         {DOVECOT_INSTALL_HINT}",
        binary.display()
    )]
    DovecotMissing {
        /// The path that was looked up.
        binary: PathBuf,
    },

    /// Occurs when a helper program (`setpriv` from util-linux) cannot be found or started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program that failed to start.
        program: String,
        /// Why it failed.
        source: std::io::Error,
    },

    /// Occurs when running as root and the system user Dovecot should run as does not exist.
    #[error(
        "system user {user:?} does not exist; it comes with the dovecot-core package ({DOVECOT_INSTALL_HINT})"
    )]
    UserMissing {
        /// The missing user name.
        user: String,
    },

    /// Occurs when a file or socket operation of the harness fails.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing, including the path or address.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },

    /// Occurs when Dovecot exits while the harness waits for it to come up.
    #[error("Dovecot exited during start-up ({status}); end of its log:\n{log_tail}")]
    DovecotExited {
        /// The exit status as printed by the OS.
        status: String,
        /// The last lines of Dovecot's log and stderr.
        log_tail: String,
    },

    /// Occurs when Dovecot's ports do not accept connections within the start-up bound.
    #[error("Dovecot did not listen on {pending} within {waited:?}; end of its log:\n{log_tail}")]
    StartTimeout {
        /// The listeners still not accepting connections.
        pending: String,
        /// How long the harness waited.
        waited: Duration,
        /// The last lines of Dovecot's log and stderr.
        log_tail: String,
    },

    /// Occurs when certificate generation fails.
    #[error("cannot generate the test certificates: {0}")]
    Certificate(#[from] rcgen::Error),

    /// Occurs when rustls refuses the CA or the protocol versions.
    #[error("cannot build the TLS client configuration: {0}")]
    Rustls(#[from] rustls::Error),

    /// Occurs when a PEM text holds no usable certificate.
    #[error("invalid PEM: {0}")]
    Pem(String),

    /// Occurs when a password user's name or password cannot be written to a passwd-file
    /// (empty, or containing `:` or a line break).
    #[error("invalid password user {user:?}: {reason}")]
    InvalidPasswordUser {
        /// The rejected user name.
        user: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Occurs when a server (LMTP, IMAP) answers a harness client with something other than success.
    #[error("{protocol} {step}: unexpected reply {reply:?}")]
    Protocol {
        /// `LMTP` or `IMAP`.
        protocol: &'static str,
        /// The command or stage that failed.
        step: String,
        /// The server's reply, as received.
        reply: String,
    },

    /// Occurs when an awaited event (a relayed message, a server reply, a mode change) does not
    /// happen in time.
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout {
        /// What the harness waited for.
        what: String,
        /// How long it waited.
        waited: Duration,
    },

    /// Occurs when the SMTP sink's background thread is gone (it panicked or was shut down).
    #[error("the SMTP sink's thread is not running")]
    SinkStopped,
}

impl HarnessError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        HarnessError::Io {
            context: path.display().to_string(),
            source,
        }
    }

    /// Wraps an I/O error with a short description of the step.
    pub(crate) fn io_at(context: impl Into<String>, source: std::io::Error) -> Self {
        HarnessError::Io {
            context: context.into(),
            source,
        }
    }
}
