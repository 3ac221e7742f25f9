//! Low-level probes the doctor runs on a raw connection before any protocol library gets it.
//!
//! - [`tls`]: a handshake that records the certificate and its verification instead of aborting.
//! - [`imap_plain`]: the plaintext IMAP greeting and STARTTLS, to reach the TLS handshake of a
//!   STARTTLS endpoint.
//!
//! Non-goal: logging in; nothing secret ever crosses a probe. Key decision: probes return facts and
//! catalogue conditions, and the doctor turns them into steps.

pub(crate) mod imap_plain;
pub(crate) mod tls;
