//! Tests of the error classification: which errors are transient, which mean "refresh the token",
//! "re-consent" or "untrusted certificate", and the messages operators read.

#![allow(clippy::unwrap_used)]

use super::*;
use postern_auth::sasl::decode_oauth_error;

fn rejected(json: Option<&str>, code: Option<&str>) -> ImapError {
    ImapError::AuthRejected {
        method: LoginMethod::Authenticate(Mechanism::XOAuth2),
        challenge: json.map(|json| Box::new(decode_oauth_error(json.as_bytes()).unwrap())),
        response_code: code.map(str::to_owned),
        server_text: "[X] text".to_owned(),
    }
}

#[test]
fn expired_token_means_refresh_and_is_not_transient() {
    let err = rejected(
        Some(r#"{"status":"401","schemes":"bearer","scope":"mail"}"#),
        Some("AUTHENTICATIONFAILED"),
    );
    assert!(err.token_rejected());
    assert!(!err.insufficient_scope());
    assert!(!err.is_transient());
    assert!(err.to_string().contains(r#"{"status":"401""#), "{err}");
}

#[test]
fn google_400_with_scope_is_insufficient_scope() {
    let err = rejected(
        Some(r#"{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}"#),
        None,
    );
    assert!(err.insufficient_scope());
    assert!(!err.token_rejected());
}

#[test]
fn unavailable_and_inuse_are_transient_other_codes_are_not() {
    assert!(rejected(None, Some("UNAVAILABLE")).is_transient());
    assert!(rejected(None, Some("inuse")).is_transient());
    assert!(!rejected(None, Some("AUTHENTICATIONFAILED")).is_transient());
    assert!(!rejected(None, None).is_transient());
    assert!(!rejected(None, Some("UNAVAILABLE")).token_rejected());
}

#[test]
fn connect_errors_are_transient_unless_the_address_is_malformed() {
    let connect = |kind| ImapError::Connect {
        host: "h".into(),
        port: 1,
        source: io::Error::from(kind),
    };
    assert!(connect(io::ErrorKind::ConnectionRefused).is_transient());
    assert!(connect(io::ErrorKind::ConnectionReset).is_transient());
    assert!(!connect(io::ErrorKind::InvalidInput).is_transient());
}

#[test]
fn dropped_connections_are_transient_protocol_errors_are_not() {
    let io = |kind| ImapError::Io {
        stage: Stage::Greeting,
        source: io::Error::from(kind),
    };
    assert!(io(io::ErrorKind::UnexpectedEof).is_transient());
    assert!(!io(io::ErrorKind::InvalidData).is_transient());
    let protocol = ImapError::Protocol {
        stage: Stage::Greeting,
        message: "PREAUTH".into(),
    };
    assert!(!protocol.is_transient());
}

#[test]
fn certificate_failures_are_untrusted_handshake_failures_are_not() {
    let tls = |reason| ImapError::Tls {
        host: "h".into(),
        reason,
    };
    assert!(tls(TlsFailure::UnknownIssuer).untrusted_certificate());
    assert!(tls(TlsFailure::Expired).untrusted_certificate());
    assert!(
        tls(TlsFailure::NameMismatch {
            presented: vec!["a".into()]
        })
        .untrusted_certificate()
    );
    let handshake = tls(TlsFailure::Handshake {
        detail: "alert".into(),
    });
    assert!(!handshake.untrusted_certificate());
    assert!(!handshake.is_transient());
}

#[test]
fn mechanism_not_offered_names_what_is_offered() {
    let err = ImapError::MechanismNotOffered {
        wanted: Mechanism::OAuthBearer,
        offered: vec!["PLAIN".into(), "XOAUTH2".into()],
    };
    assert_eq!(
        err.to_string(),
        "the IMAP server does not offer OAUTHBEARER (it offers: PLAIN, XOAUTH2)"
    );
    let none = ImapError::MechanismNotOffered {
        wanted: Mechanism::Plain,
        offered: vec![],
    };
    assert!(none.to_string().ends_with("(it offers: no SASL mechanism)"));
}
