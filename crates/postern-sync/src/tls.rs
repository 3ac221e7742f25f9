//! TLS for IMAP: which certificates an endpoint trusts, and what a failed handshake means.
//!
//! Purpose: a rustls [`ClientConfig`] per trust setting — the webpki (Mozilla) roots by default, or only
//! the CA certificates of an endpoint's `ca_file` — and the mapping of a handshake error to a
//! [`TlsFailure`].
//!
//! Non-goal: turning verification off. A self-signed or private server is trusted by giving its CA in
//! `ca_file`, never by skipping checks; there is deliberately no "insecure" switch.
//!
//! Key decisions:
//! - The crypto provider is aws-lc-rs, passed explicitly (`builder_with_provider`), so nothing depends on
//!   a process-wide default provider, which another crate pulling in ring could make ambiguous.
//! - Configs are cached: building one parses every root certificate. The cache key of a `ca_file` is
//!   its path and modification time, so a replaced CA file is picked up at the next connection.
//! - `ca_file` replaces the webpki roots instead of adding to them, so an endpoint pinned to a private CA
//!   cannot be impersonated with a certificate from a public one.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::SystemTime;

use rustls::client::ClientConfig;
use rustls::{CertificateError, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use crate::error::{ImapError, TlsFailure};

/// Identifies one trust setting in the cache: `None` for the webpki roots.
type CacheKey = Option<(PathBuf, Option<SystemTime>)>;

static CONFIGS: LazyLock<Mutex<HashMap<CacheKey, Arc<ClientConfig>>>> =
    LazyLock::new(Mutex::default);

/// The client config trusting the webpki roots (`ca_file` `None`) or only the CAs in `ca_file` (PEM).
///
/// # Errors
///
/// [`ImapError::TlsConfig`] when `ca_file` cannot be read or holds no usable certificate.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, ImapError> {
    let key = cache_key(ca_file);
    if let Some(config) = lock_cache().get(&key) {
        return Ok(Arc::clone(config));
    }
    let roots = match ca_file {
        Some(path) => roots_from_file(path)?,
        None => webpki_roots(),
    };
    let config = Arc::new(build(roots, ca_file)?);
    lock_cache().insert(key, Arc::clone(&config));
    Ok(config)
}

fn cache_key(ca_file: Option<&Path>) -> CacheKey {
    ca_file.map(|path| {
        let modified = std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok();
        (path.to_path_buf(), modified)
    })
}

/// A poisoned lock only means another thread panicked while inserting; the map is still valid.
fn lock_cache() -> std::sync::MutexGuard<'static, HashMap<CacheKey, Arc<ClientConfig>>> {
    CONFIGS.lock().unwrap_or_else(PoisonError::into_inner)
}

fn webpki_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, ImapError> {
    let config_error = |reason: String| ImapError::TlsConfig {
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

fn build(roots: RootCertStore, ca_file: Option<&Path>) -> Result<ClientConfig, ImapError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| ImapError::TlsConfig {
            path: ca_file.map_or_else(|| PathBuf::from("<webpki roots>"), Path::to_path_buf),
            reason: err.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
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
