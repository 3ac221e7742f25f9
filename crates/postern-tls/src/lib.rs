//! TLS client trust for every mail connection Postern makes (IMAP, SMTP): which certificates an
//! endpoint trusts, as a ready rustls [`ClientConfig`].
//!
//! - The webpki (Mozilla) roots by default, or *only* the CA certificates of an endpoint's
//!   `ca_file`: a file replaces the public roots instead of adding to them, so an endpoint pinned to
//!   a private CA cannot be impersonated with a certificate from a public one.
//! - The crypto provider is aws-lc-rs, passed explicitly, so nothing depends on a process-wide
//!   default provider (which a second TLS stack in the tree could make ambiguous).
//! - Configs are cached: building one parses every root. A `ca_file`'s cache key is its path and
//!   modification time, so a replaced CA file is picked up at the next connection.
//!
//! Non-goal: turning verification off. A self-signed or private server is trusted by giving its
//! CA, never by skipping checks; there is deliberately no "insecure" switch. Interpreting a failed
//! handshake is the protocol crates' business (their errors differ).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

/// Occurs when a trust setting cannot be turned into a client config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot use {} as trusted CAs: {reason}", path.display())]
pub struct TlsConfigError {
    /// The CA file (or `<webpki roots>`).
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// Identifies one trust setting in the cache: `None` for the webpki roots.
type CacheKey = Option<(PathBuf, Option<SystemTime>)>;

static CONFIGS: LazyLock<Mutex<HashMap<CacheKey, Arc<ClientConfig>>>> =
    LazyLock::new(Mutex::default);

/// The client config trusting the webpki roots (`ca_file` `None`) or only the CAs in `ca_file` (PEM).
///
/// # Errors
///
/// [`TlsConfigError`] when `ca_file` cannot be read or holds no usable certificate.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let key = cache_key(ca_file);
    if let Some(config) = cache().get(&key) {
        return Ok(Arc::clone(config));
    }
    let roots = match ca_file {
        Some(path) => roots_from_file(path)?,
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let config = Arc::new(build(roots, ca_file)?);
    cache().insert(key, Arc::clone(&config));
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
fn cache() -> MutexGuard<'static, HashMap<CacheKey, Arc<ClientConfig>>> {
    CONFIGS.lock().unwrap_or_else(PoisonError::into_inner)
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, TlsConfigError> {
    let config_error = |reason: String| TlsConfigError {
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

fn build(roots: RootCertStore, ca_file: Option<&Path>) -> Result<ClientConfig, TlsConfigError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| TlsConfigError {
            path: ca_file.map_or_else(|| PathBuf::from("<webpki roots>"), Path::to_path_buf),
            reason: err.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_roots_config_is_built_once_and_shared() {
        let first = client_config(None).unwrap();
        let second = client_config(None).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_refused_with_its_path() {
        let error = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
        let empty = tempfile::NamedTempFile::new().unwrap();
        let error = client_config(Some(empty.path())).unwrap_err();
        assert_eq!(error.reason, "no PEM certificate in the file");
    }
}
