//! TLS for SMTP: which certificates an endpoint trusts, and what a failed handshake means.
//!
//! Purpose: a rustls [`ClientConfig`] per trust setting (the webpki roots, or only the CAs of the
//! endpoint's `ca_file`), and the reading of a handshake error.
//! Non-goal: turning verification off. A private server is trusted by giving its CA in `ca_file`;
//! there is no "insecure" switch.
//! Key decision: the trust rules (webpki roots or only `ca_file`, aws-lc-rs, cached configs) live
//! in `postern-tls`, shared with IMAP; this module adds what is SMTP's own, the error mapping.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::CertificateError;
use rustls::client::ClientConfig;

use crate::error::SmtpError;

/// The client config trusting the webpki roots (`ca_file` `None`) or only the CAs in `ca_file`;
/// see `postern_tls` for the trust rules and the cache.
///
/// # Errors
///
/// [`SmtpError::TlsConfig`] when `ca_file` cannot be read or holds no usable certificate.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, SmtpError> {
    postern_tls::client_config(ca_file).map_err(|error| SmtpError::TlsConfig {
        path: error.path,
        reason: error.reason,
    })
}

/// The error of a failed handshake with `host`: a TLS refusal when rustls refused (certificate
/// or protocol), an I/O error when the connection itself broke.
pub(crate) fn handshake_error(host: &str, error: io::Error) -> SmtpError {
    let Some(rustls_error) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return SmtpError::Io {
            stage: crate::error::Stage::Tls,
            source: error,
        };
    };
    let untrusted_certificate = matches!(
        rustls_error,
        rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer
                | CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. }
                | CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. }
                | CertificateError::BadSignature
                | CertificateError::Revoked
        )
    );
    SmtpError::Tls {
        host: host.to_owned(),
        detail: rustls_error.to_string(),
        untrusted_certificate,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(matches!(
            client_config(Some(&missing)),
            Err(SmtpError::TlsConfig { .. })
        ));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        let err = client_config(Some(&empty)).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }

    #[test]
    fn webpki_roots_config_is_cached() {
        let first = client_config(None).unwrap();
        let second = client_config(None).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
    }

    #[test]
    fn an_unknown_issuer_is_an_untrusted_certificate() {
        let error = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert!(matches!(
            handshake_error("smtp.example", error),
            SmtpError::Tls {
                untrusted_certificate: true,
                ..
            }
        ));
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(matches!(
            handshake_error("smtp.example", reset),
            SmtpError::Io { .. }
        ));
    }
}
