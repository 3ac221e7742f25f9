//! The probe against an in-memory TLS server presenting the test PKI's `localhost` certificate:
//! trusted, untrusted, misnamed, and a plaintext answer to the handshake.

use std::sync::Arc;

use postern_testkit::tls::TestPki;
use rustls_pki_types::PrivateKeyDer;
use tokio::io::AsyncWriteExt as _;

use super::*;

const BOUND: Duration = Duration::from_secs(5);

/// A TLS server on one end of an in-memory pipe, presenting the test PKI's `localhost` certificate.
fn serve_tls(pki: &TestPki) -> tokio::io::DuplexStream {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.cert_pem().as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.key_pem().as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        if let Ok(mut tls) = acceptor.accept(server).await {
            let _ = tls.write_all(b"* OK hello\r\n").await;
            let _ = tls.flush().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    client
}

#[tokio::test]
async fn a_certificate_from_the_configured_ca_is_trusted_and_described() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate_into(dir.path()).unwrap();

    let (_tls, facts) = handshake(serve_tls(&pki), "localhost", Some(pki.ca_file()), BOUND)
        .await
        .unwrap();

    assert!(facts.problem().is_none(), "{facts:?}");
    assert!(facts.protocol.starts_with("TLS 1."), "{}", facts.protocol);
    let leaf = facts.leaf.as_ref().unwrap();
    assert!(leaf.names.contains(&"localhost".to_owned()), "{leaf:?}");
    assert!(leaf.names.contains(&"127.0.0.1".to_owned()), "{leaf:?}");
    assert!(leaf.days_left > EXPIRY_WARNING_DAYS, "{leaf:?}");
    let evidence = facts.evidence().join("\n");
    assert!(evidence.contains("trusted by the CA file"), "{evidence}");
    assert!(
        evidence.contains("host name localhost matches"),
        "{evidence}"
    );
}

#[tokio::test]
async fn without_the_ca_the_chain_is_reported_untrusted_but_still_shown() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate_into(dir.path()).unwrap();

    let (_tls, facts) = handshake(serve_tls(&pki), "localhost", None, BOUND)
        .await
        .unwrap();

    let problem = facts.problem().unwrap();
    assert_eq!(problem.condition, Condition::UntrustedCertificate);
    assert!(
        facts.name.is_ok(),
        "the name is checked apart from the chain"
    );
    assert!(facts.leaf.is_some(), "the certificate is still read");
    let evidence = facts.evidence().join("\n");
    assert!(
        evidence.contains("NOT trusted by the webpki (Mozilla) roots"),
        "{evidence}"
    );
}

#[tokio::test]
async fn a_name_the_certificate_does_not_hold_is_a_hostname_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate_into(dir.path()).unwrap();

    let (_tls, facts) = handshake(
        serve_tls(&pki),
        "mail.example.com",
        Some(pki.ca_file()),
        BOUND,
    )
    .await
    .unwrap();

    assert!(facts.trust.is_ok());
    assert_eq!(
        facts.problem().unwrap().condition,
        Condition::HostnameMismatch
    );
}

#[tokio::test]
async fn a_plaintext_greeting_in_answer_to_tls_means_the_port_is_not_implicit_tls() {
    let (client, mut server) = tokio::io::duplex(4096);
    tokio::spawn(async move {
        let _ = server
            .write_all(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n")
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    });

    let failure = handshake(client, "localhost", None, BOUND)
        .await
        .unwrap_err();

    match failure {
        ProbeFailure::Handshake { condition, .. } => {
            assert_eq!(condition, Condition::TlsOnPlainPort);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unreadable_ca_file_is_a_configuration_problem() {
    let error = trust_roots(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
    assert!(error.contains("/nonexistent/ca.pem"), "{error}");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate").unwrap();
    assert!(
        trust_roots(Some(&empty))
            .unwrap_err()
            .contains("no PEM certificate")
    );
}

#[test]
fn ipv6_brackets_are_removed_for_tls() {
    assert_eq!(bare_host("[::1]"), "::1");
    assert_eq!(bare_host("imap.example.com"), "imap.example.com");
}
