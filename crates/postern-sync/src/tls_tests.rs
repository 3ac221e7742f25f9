//! Tests of the TLS setup: rustls errors to failures, the config cache, and unusable CA files.

#![allow(clippy::unwrap_used)]

use super::*;
use rustls_pki_types::{ServerName, UnixTime};

fn handshake_io_error(error: rustls::Error) -> io::Error {
    // The shape tokio-rustls gives a refused handshake.
    io::Error::new(io::ErrorKind::InvalidData, error)
}

#[test]
fn certificate_errors_map_to_their_failure() {
    let cases = [
        (CertificateError::UnknownIssuer, TlsFailure::UnknownIssuer),
        (
            CertificateError::ExpiredContext {
                time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(2)),
                not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1)),
            },
            TlsFailure::Expired,
        ),
        (CertificateError::NotValidYet, TlsFailure::NotYetValid),
        (
            CertificateError::NotValidForNameContext {
                expected: ServerName::try_from("imap.example.com").unwrap(),
                presented: vec!["DnsName(\"other.example.com\")".into()],
            },
            TlsFailure::NameMismatch {
                presented: vec!["DnsName(\"other.example.com\")".into()],
            },
        ),
    ];
    for (certificate, expected) in cases {
        let io = handshake_io_error(rustls::Error::InvalidCertificate(certificate));
        let failure = classify_handshake_error(io).unwrap();
        assert_eq!(failure, expected);
        assert!(failure.is_untrusted_certificate());
    }
}

#[test]
fn other_certificate_errors_are_still_untrusted() {
    let io = handshake_io_error(rustls::Error::InvalidCertificate(CertificateError::Revoked));
    let failure = classify_handshake_error(io).unwrap();
    assert!(matches!(failure, TlsFailure::BadCertificate { .. }));
    assert!(failure.is_untrusted_certificate());
}

#[test]
fn protocol_failures_are_handshake_failures() {
    let io = handshake_io_error(rustls::Error::AlertReceived(
        rustls::AlertDescription::HandshakeFailure,
    ));
    let failure = classify_handshake_error(io).unwrap();
    assert!(matches!(failure, TlsFailure::Handshake { .. }));
    assert!(!failure.is_untrusted_certificate());
}

#[test]
fn connection_errors_stay_io_errors() {
    let io = io::Error::from(io::ErrorKind::ConnectionReset);
    let back = classify_handshake_error(io).unwrap_err();
    assert_eq!(back.kind(), io::ErrorKind::ConnectionReset);
}

#[test]
fn default_config_is_built_once_and_shared() {
    let first = client_config(None).unwrap();
    let second = client_config(None).unwrap();
    assert!(Arc::ptr_eq(&first, &second));
}

#[test]
fn ca_file_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let err = client_config(Some(&missing)).unwrap_err();
    assert!(
        matches!(&err, ImapError::TlsConfig { path, .. } if path == &missing),
        "{err:?}"
    );

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").unwrap();
    let err = client_config(Some(&empty)).unwrap_err();
    assert!(err.to_string().contains("no PEM certificate"), "{err}");

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = client_config(Some(&garbage)).unwrap_err();
    assert!(matches!(err, ImapError::TlsConfig { .. }), "{err:?}");
}
