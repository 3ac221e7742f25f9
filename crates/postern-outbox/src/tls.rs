//! TLS for SMTP: which certificates an endpoint trusts, and what a failed handshake means.
//!
//! Purpose: a rustls [`ClientConfig`] per trust setting (the webpki roots, or only the CAs of the
//! endpoint's `ca_file`), and the reading of a handshake error.
//! Non-goal: turning verification off. A private server is trusted by giving its CA in `ca_file`;
//! there is no "insecure" switch.
//! Key decisions (the same as the IMAP side's, `postern_sync::tls`, kept separate so the outbox
//! does not depend on the sync engine):
//! - The crypto provider is aws-lc-rs, passed explicitly, so no process-wide default provider has
//!   to be chosen (another crate bringing in ring would make that ambiguous at run time).
//! - Configs are cached by `ca_file` path and modification time: a replaced CA file is picked up at
//!   the next connection.
//! - `ca_file` replaces the webpki roots, so an endpoint pinned to a private CA cannot be
//!   impersonated with a certificate from a public one.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use rustls::client::ClientConfig;
use rustls::{CertificateError, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use crate::error::SmtpError;

/// One trust setting in the cache: `None` for the webpki roots.
type CacheKey = Option<(PathBuf, Option<SystemTime>)>;

static CONFIGS: LazyLock<Mutex<HashMap<CacheKey, Arc<ClientConfig>>>> =
    LazyLock::new(Mutex::default);

/// The client config trusting the webpki roots (`ca_file` `None`) or only the CAs in `ca_file`.
///
/// # Errors
///
/// [`SmtpError::TlsConfig`] when `ca_file` cannot be read or holds no usable certificate.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, SmtpError> {
    let key = ca_file.map(|path| {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        (path.to_path_buf(), modified)
    });
    if let Some(config) = cache().get(&key) {
        return Ok(Arc::clone(config));
    }
    let roots = match ca_file {
        Some(path) => roots_from_file(path)?,
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| SmtpError::TlsConfig {
            path: ca_file.map_or_else(|| PathBuf::from("<webpki roots>"), Path::to_path_buf),
            reason: err.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let config = Arc::new(config);
    cache().insert(key, Arc::clone(&config));
    Ok(config)
}

/// A poisoned lock only means a thread panicked while inserting; the map is still valid.
fn cache() -> MutexGuard<'static, HashMap<CacheKey, Arc<ClientConfig>>> {
    CONFIGS.lock().unwrap_or_else(PoisonError::into_inner)
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, SmtpError> {
    let config_error = |reason: String| SmtpError::TlsConfig {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|err| config_error(err.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|err| config_error(format!("invalid PEM: {err}")))?;
        roots
            .add(cert)
            .map_err(|err| config_error(format!("unusable CA certificate: {err}")))?;
    }
    if roots.is_empty() {
        return Err(config_error("no PEM certificate in the file".to_owned()));
    }
    Ok(roots)
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
