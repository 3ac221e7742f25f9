//! Errors of the `postern-doctor` crate.
//!
//! Purpose: the few things that can go wrong *around* a diagnosis: an endpoint given on the command line
//! that cannot be parsed ([`DoctorError`]), and the doctor's own SMTP client failing on the wire
//! ([`SmtpError`]).
//!
//! Non-goal: reporting what is wrong with a mail setup. A refused connection, an untrusted certificate
//! or a rejected login is not an error of the doctor but its finding: it becomes a failed step of the
//! [`Report`](crate::Report), never an `Err`.
//!
//! Key decision: no variant carries a secret; an SMTP failure names the command's verb, never the line.

use std::io;
use std::time::Duration;

/// An input the doctor cannot work with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DoctorError {
    /// Occurs when an endpoint is not `host`, `host:port` or `[ipv6]:port`, or its port is not a
    /// number from 1 to 65535.
    #[error("invalid endpoint {input:?}: {reason}")]
    InvalidEndpoint {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A failure of the doctor's SMTP client on the wire (a server's negative reply is not one: it is
/// data the doctor reports).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpError {
    /// Occurs when reading or writing the connection fails.
    #[error("SMTP I/O error: {0}")]
    Io(#[source] io::Error),

    /// Occurs when the server does not answer within the doctor's bound.
    #[error("the SMTP server did not answer within {0:?}")]
    Timeout(Duration),

    /// Occurs when the server closes the connection where a reply was due.
    #[error("the SMTP server closed the connection")]
    Closed,

    /// Occurs when a reply is not SMTP (no three-digit code, a line too long, too many lines, an AUTH
    /// exchange that never ends).
    #[error("the SMTP server's reply makes no sense: {0}")]
    Malformed(String),

    /// Occurs when the credentials cannot be put into the SASL message (a separator byte in the user
    /// name or token). The message names the field, never its value.
    #[error("the credentials cannot be sent: {0}")]
    InvalidCredentials(String),
}

impl SmtpError {
    /// Whether the server stopped talking: a timeout rather than a broken reply.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SmtpError::Timeout(_))
    }
}
