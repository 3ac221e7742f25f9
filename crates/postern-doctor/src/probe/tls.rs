//! A TLS handshake that reports the certificate instead of aborting on it.
//!
//! Purpose: the doctor must say *why* a certificate is refused (unknown issuer, wrong name, expired) and
//! show it (names, issuer, days to expiry), which a normal handshake cannot: rustls aborts at the first
//! problem and keeps the certificate to itself. [`handshake`] uses a verifier that runs the same checks
//! as rustls's own (chain to the trusted roots, host name) separately, records their results and the
//! chain, and lets the handshake finish; [`TlsFacts`] holds what it found.
//!
//! Non-goal: carrying traffic on an untrusted connection. The handshake completes so that the facts can
//! be read, but a caller must check [`TlsFacts::problem`] before writing a single byte, and drop the
//! connection when there is one. The IMAP login itself goes through `postern-sync`'s verifying client.
//!
//! Key decision: the trust anchors are the same as `postern-sync`'s (an endpoint's `ca_file` replaces
//! the webpki roots), so the doctor's verdict is the verdict the sync engine will meet; the handshake
//! signatures are still verified for real, and session resumption is off so every probe sees the
//! certificate.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::catalogue::Condition;

/// Days before expiry from which a certificate earns a warning.
pub(crate) const EXPIRY_WARNING_DAYS: i64 = 14;

/// Why no TLS facts could be gathered.
#[derive(Debug)]
pub(crate) enum ProbeFailure {
    /// The trust setup or host name cannot be used; nothing was sent.
    Config(String),
    /// The handshake failed; `condition` when the catalogue knows it.
    Handshake {
        condition: Condition,
        detail: String,
    },
    /// The bound ran out.
    Timeout(Duration),
}

/// What a finished handshake showed.
#[derive(Clone, Debug)]
pub(crate) struct TlsFacts {
    pub protocol: String,
    pub cipher_suite: String,
    pub chain_len: usize,
    pub leaf: Option<LeafFacts>,
    /// `Err` when the chain does not lead to a trusted root (or is expired / not yet valid).
    pub trust: Result<(), CertProblem>,
    /// `Err` when the certificate is not valid for the host name.
    pub name: Result<(), CertProblem>,
    /// Where the trusted roots came from, for the evidence.
    pub trust_source: String,
    pub host: String,
}

/// A refusal of the certificate: the catalogue condition and rustls's words.
#[derive(Clone, Debug)]
pub(crate) struct CertProblem {
    pub condition: Condition,
    pub detail: String,
}

/// What the leaf certificate says.
#[derive(Clone, Debug)]
pub(crate) struct LeafFacts {
    pub subject: String,
    pub issuer: String,
    pub names: Vec<String>,
    pub not_after: DateTime<Utc>,
    pub days_left: i64,
}

impl TlsFacts {
    /// The first reason not to use this connection: an untrusted chain, then a wrong name.
    pub fn problem(&self) -> Option<&CertProblem> {
        self.trust.as_ref().err().or(self.name.as_ref().err())
    }

    /// Days left before the leaf expires, when it could be read.
    pub fn days_left(&self) -> Option<i64> {
        self.leaf.as_ref().map(|leaf| leaf.days_left)
    }

    /// The facts as evidence lines.
    pub fn evidence(&self) -> Vec<String> {
        let mut lines = vec![format!("{}, cipher {}", self.protocol, self.cipher_suite)];
        if let Some(leaf) = &self.leaf {
            lines.push(format!("certificate: {}", leaf.subject));
            lines.push(format!("issued by: {}", leaf.issuer));
            if !leaf.names.is_empty() {
                lines.push(format!("names: {}", leaf.names.join(", ")));
            }
            lines.push(format!(
                "valid until {} ({} days left)",
                leaf.not_after.format("%Y-%m-%d"),
                leaf.days_left
            ));
        }
        lines.push(match &self.trust {
            Ok(()) => format!(
                "chain of {} certificate(s) trusted by {}",
                self.chain_len, self.trust_source
            ),
            Err(problem) => format!(
                "chain of {} certificate(s) NOT trusted by {}: {}",
                self.chain_len, self.trust_source, problem.detail
            ),
        });
        lines.push(match &self.name {
            Ok(()) => format!("host name {} matches the certificate", self.host),
            Err(problem) => format!(
                "host name {} does NOT match the certificate: {}",
                self.host, problem.detail
            ),
        });
        lines
    }
}

/// Runs a TLS handshake over `stream` for `host`, trusting `ca_file`'s CAs (or the webpki roots), and
/// reports what it saw. The returned stream must not be used when [`TlsFacts::problem`] is `Some`.
pub(crate) async fn handshake<S>(
    stream: S,
    host: &str,
    ca_file: Option<&Path>,
    bound: Duration,
) -> Result<(TlsStream<S>, TlsFacts), ProbeFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (roots, trust_source) = trust_roots(ca_file).map_err(ProbeFailure::Config)?;
    let name = ServerName::try_from(bare_host(host).to_owned())
        .map_err(|_invalid| ProbeFailure::Config(format!("{host:?} is not a valid host name")))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(RecordingVerifier {
        roots: Arc::new(roots),
        provider: Arc::clone(&provider),
        seen: Mutex::new(None),
    });
    let config = client_config(
        provider,
        Arc::clone(&verifier) as Arc<dyn ServerCertVerifier>,
    )?;
    let connect = TlsConnector::from(Arc::new(config)).connect(name, stream);
    let tls = tokio::time::timeout(bound, connect)
        .await
        .map_err(|_elapsed| ProbeFailure::Timeout(bound))?
        .map_err(classify_handshake_error)?;
    let recorded = verifier.take().ok_or_else(|| ProbeFailure::Handshake {
        condition: Condition::TlsHandshakeFailed,
        detail: "the server presented no certificate".to_owned(),
    })?;
    let facts = facts(&tls, recorded, trust_source, host);
    Ok((tls, facts))
}

fn client_config(
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
) -> Result<ClientConfig, ProbeFailure> {
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| ProbeFailure::Config(error.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // A resumed session skips certificate verification: every probe must see the certificate.
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// The trusted roots, as `postern-sync` builds them: only `ca_file`'s CAs when given.
pub(crate) fn trust_roots(ca_file: Option<&Path>) -> Result<(RootCertStore, String), String> {
    let Some(path) = ca_file else {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        return Ok((roots, "the webpki (Mozilla) roots".to_owned()));
    };
    let unusable = |reason: String| format!("cannot use the CA file {}: {reason}", path.display());
    let pem = std::fs::read(path).map_err(|error| unusable(error.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|error| unusable(format!("invalid PEM: {error}")))?;
        roots
            .add(cert)
            .map_err(|error| unusable(format!("unusable CA certificate: {error}")))?;
    }
    if roots.is_empty() {
        return Err(unusable("no PEM certificate in the file".to_owned()));
    }
    Ok((roots, format!("the CA file {}", path.display())))
}

/// What the verifier saw during the handshake.
#[derive(Debug)]
struct Recorded {
    chain: Vec<CertificateDer<'static>>,
    trust: Result<(), rustls::Error>,
    name: Result<(), rustls::Error>,
}

/// Checks the certificate like rustls's `WebPkiServerVerifier` (chain, then name) but records the
/// results instead of failing the handshake. Signatures of the handshake are verified for real.
#[derive(Debug)]
struct RecordingVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    seen: Mutex<Option<Recorded>>,
}

impl RecordingVerifier {
    fn take(&self) -> Option<Recorded> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let (trust, name) = match ParsedCertificate::try_from(end_entity) {
            Ok(parsed) => (
                verify_server_cert_signed_by_trust_anchor(
                    &parsed,
                    &self.roots,
                    intermediates,
                    now,
                    self.provider.signature_verification_algorithms.all,
                ),
                verify_server_name(&parsed, server_name),
            ),
            Err(error) => (Err(error.clone()), Err(error)),
        };
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|cert| cert.clone().into_owned())
            .collect();
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(Recorded { chain, trust, name });
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn facts<S>(tls: &TlsStream<S>, recorded: Recorded, trust_source: String, host: &str) -> TlsFacts {
    let (_, connection) = tls.get_ref();
    let protocol = match connection.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_owned(),
        Some(other) => format!("{other:?}"),
        None => "unknown protocol".to_owned(),
    };
    let cipher_suite = connection.negotiated_cipher_suite().map_or_else(
        || "unknown".to_owned(),
        |suite| format!("{:?}", suite.suite()),
    );
    TlsFacts {
        protocol,
        cipher_suite,
        chain_len: recorded.chain.len(),
        leaf: recorded
            .chain
            .first()
            .and_then(|der| leaf_facts(der, Utc::now())),
        trust: recorded.trust.map_err(cert_problem),
        name: recorded.name.map_err(cert_problem),
        trust_source,
        host: host.to_owned(),
    }
}

/// Reads names, issuer and expiry from a DER certificate; `None` if it does not parse.
pub(crate) fn leaf_facts(der: &[u8], now: DateTime<Utc>) -> Option<LeafFacts> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let not_after = DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)?;
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|extension| {
            extension
                .value
                .general_names
                .iter()
                .filter_map(general_name)
                .collect()
        })
        .unwrap_or_default();
    Some(LeafFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        names,
        not_after,
        days_left: (not_after - now).num_days(),
    })
}

fn general_name(name: &x509_parser::extensions::GeneralName<'_>) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    match name {
        GeneralName::DNSName(dns) => Some((*dns).to_owned()),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => <[u8; 4]>::try_from(*bytes)
                .ok()
                .map(|octets| std::net::Ipv4Addr::from(octets).to_string()),
            16 => <[u8; 16]>::try_from(*bytes)
                .ok()
                .map(|octets| std::net::Ipv6Addr::from(octets).to_string()),
            _ => None,
        },
        _ => None,
    }
}

fn cert_problem(error: rustls::Error) -> CertProblem {
    let detail = match &error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "issued by an unknown authority (self-signed, or a CA that is not trusted)".to_owned()
        }
        other => other.to_string(),
    };
    let condition = match &error {
        rustls::Error::InvalidCertificate(certificate) => certificate_condition(certificate),
        _ => Condition::UntrustedCertificate,
    };
    CertProblem { condition, detail }
}

fn certificate_condition(error: &CertificateError) -> Condition {
    match error {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            Condition::CertificateExpired
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            Condition::CertificateNotYetValid
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            Condition::HostnameMismatch
        }
        _ => Condition::UntrustedCertificate,
    }
}

/// A failed handshake: rustls's refusal when there is one, else the I/O error (reset, closed).
fn classify_handshake_error(error: std::io::Error) -> ProbeFailure {
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let condition = match rustls_error {
        // The first bytes back were not a TLS record: a greeting in plain text.
        Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
            Condition::TlsOnPlainPort
        }
        _ => Condition::TlsHandshakeFailed,
    };
    ProbeFailure::Handshake {
        condition,
        detail: rustls_error.map_or_else(|| error.to_string(), ToString::to_string),
    }
}

/// `[::1]` → `::1`, as sockets and TLS want it.
pub(crate) fn bare_host(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
