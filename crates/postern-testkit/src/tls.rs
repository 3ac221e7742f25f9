//! A throw-away PKI for tests: one CA and one server certificate it signed.
//!
//! Purpose: let Dovecot (and any other test server) present a certificate that clients verify for
//! real, trusting only this CA — never by switching verification off.
//!
//! Non-goal: certificate policy testing (expiry, revocation, name constraints); the certificates are
//! valid, fresh and minimal.
//!
//! Key decision: the server certificate is separate from the CA. rustls rejects a self-signed CA
//! presented as the server's own certificate (`CaUsedAsEndEntity`), which OpenSSL would accept, so a
//! single self-signed certificate would hide exactly the verification path production uses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::dovecot::HarnessError;

/// File name of the CA certificate inside the directory given to [`TestPki::generate_into`].
pub const CA_FILE: &str = "ca.pem";
/// File name of the server certificate.
pub const CERT_FILE: &str = "server.pem";
/// File name of the server's private key (PKCS#8 PEM).
pub const KEY_FILE: &str = "server.key";

/// A test CA and a server certificate for `localhost` / `127.0.0.1`, written as PEM files.
pub struct TestPki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
    ca_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
}

impl TestPki {
    /// Generates a fresh CA and server certificate and writes them into `dir`
    /// ([`CA_FILE`], [`CERT_FILE`], [`KEY_FILE`]); `dir` must exist.
    pub fn generate_into(dir: &Path) -> Result<TestPki, HarnessError> {
        let ca_key = KeyPair::generate()?;
        let ca_params = ca_params()?;
        let ca_pem = ca_params.self_signed(&ca_key)?.pem();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate()?;
        let cert_pem = server_params()?.signed_by(&server_key, &issuer)?.pem();
        let pki = TestPki {
            ca_pem,
            cert_pem,
            key_pem: server_key.serialize_pem(),
            ca_file: dir.join(CA_FILE),
            cert_file: dir.join(CERT_FILE),
            key_file: dir.join(KEY_FILE),
        };
        pki.write_files()?;
        Ok(pki)
    }

    fn write_files(&self) -> Result<(), HarnessError> {
        for (path, pem) in [
            (&self.ca_file, &self.ca_pem),
            (&self.cert_file, &self.cert_pem),
            (&self.key_file, &self.key_pem),
        ] {
            std::fs::write(path, pem).map_err(|source| HarnessError::io(path, source))?;
        }
        Ok(())
    }

    /// The CA certificate (PEM): the only root a test client should trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The server certificate (PEM), signed by the CA.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The server's private key (PKCS#8 PEM). A throw-away test key, but still kept out of `Debug`.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Path of the CA certificate file.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// Path of the server certificate file.
    pub fn cert_file(&self) -> &Path {
        &self.cert_file
    }

    /// Path of the server key file.
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// A rustls client configuration that trusts only this CA.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, HarnessError> {
        rustls_client_config(&self.ca_pem)
    }
}

impl fmt::Debug for TestPki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPki")
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn ca_params() -> Result<CertificateParams, HarnessError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    // A name of its own per CA: rustls looks issuers up by name, so two test CAs sharing one would
    // fail as `BadSignature` instead of the realistic `UnknownIssuer`.
    let name = format!("Postern Test CA {:08x}", rand::random::<u32>());
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn server_params() -> Result<CertificateParams, HarnessError> {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

/// A rustls client configuration (provider aws-lc-rs) whose only root is the CA in `ca_pem`.
///
/// Fails when `ca_pem` holds no certificate or one rustls cannot use as a trust anchor.
pub fn rustls_client_config(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>, HarnessError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|err| HarnessError::Pem(err.to_string()))?;
        roots.add(cert)?;
    }
    if roots.is_empty() {
        return Err(HarnessError::Pem("no certificate in the CA PEM".to_owned()));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn writes_ca_cert_and_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::generate_into(dir.path()).unwrap();
        let on_disk = std::fs::read_to_string(pki.ca_file()).unwrap();
        assert_eq!(on_disk, pki.ca_pem());
        assert!(pki.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(
            std::fs::read_to_string(pki.key_file())
                .unwrap()
                .contains("PRIVATE KEY")
        );
        assert_ne!(pki.ca_pem(), pki.cert_pem());
    }

    #[test]
    fn debug_output_hides_the_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::generate_into(dir.path()).unwrap();
        let debug = format!("{pki:?}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    }

    #[test]
    fn client_config_rejects_pem_without_certificate() {
        let err = rustls_client_config("not a certificate").unwrap_err();
        assert!(matches!(err, HarnessError::Pem(_)), "{err}");
    }
}
