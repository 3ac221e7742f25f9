//! TLS for IMAP: which certificates an endpoint trusts, and what a failed handshake means.
//!
//! Purpose: a rustls [`ClientConfig`] per trust setting — the webpki (Mozilla) roots by default, or only
//! the CA certificates of an endpoint's `ca_file` — and the mapping of a handshake error to a
//! [`TlsFailure`].
//!
//! Non-goal: turning verification off. A self-signed or private server is trusted by giving its CA in
//! `ca_file`, never by skipping checks; there is deliberately no "insecure" switch.
//!
//! Key decision: the trust rules (webpki roots or only `ca_file`, aws-lc-rs, cached configs) live in
//! `postern-tls`, shared with SMTP; this module adds what is IMAP's own, the error mapping.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::CertificateError;
use rustls::client::ClientConfig;

use crate::error::{ImapError, TlsFailure};

/// The client config trusting the webpki roots (`ca_file` `None`) or only the CAs in `ca_file` (PEM);
/// see `postern_tls` for the trust rules and the cache.
///
/// # Errors
///
/// [`ImapError::TlsConfig`] when `ca_file` cannot be read or holds no usable certificate.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, ImapError> {
    postern_tls::client_config(ca_file).map_err(|error| ImapError::TlsConfig {
        path: error.path,
        reason: error.reason,
    })
}

/// What a failed TLS handshake means: `Ok(failure)` when rustls refused (certificate or protocol),
/// `Err(io)` when the connection itself failed (reset, closed) during the handshake.
pub(crate) fn classify_handshake_error(error: io::Error) -> Result<TlsFailure, io::Error> {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls_error) => Ok(tls_failure(rustls_error)),
        None => Err(error),
    }
}

fn tls_failure(error: &rustls::Error) -> TlsFailure {
    match error {
        rustls::Error::InvalidCertificate(certificate) => certificate_failure(certificate),
        other => TlsFailure::Handshake {
            detail: other.to_string(),
        },
    }
}

fn certificate_failure(error: &CertificateError) -> TlsFailure {
    match error {
        CertificateError::UnknownIssuer => TlsFailure::UnknownIssuer,
        CertificateError::NotValidForName => TlsFailure::NameMismatch { presented: vec![] },
        CertificateError::NotValidForNameContext { presented, .. } => TlsFailure::NameMismatch {
            presented: presented.clone(),
        },
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => TlsFailure::Expired,
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            TlsFailure::NotYetValid
        }
        other => TlsFailure::BadCertificate {
            detail: format!("{other}"),
        },
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
