//! Tests of `SaslExchange`: the step sequence of each mechanism, error challenges, protocol errors,
//! credential checks, and that no `Debug` output shows a secret.

use super::*;
use crate::sasl::ChallengeVerdict;

const TOKEN: &str = "ya29.SECRET-token";
const PASSWORD: &str = "correct horse battery";
const DOVECOT_401: &[u8] = br#"{"status":"401","schemes":"bearer","scope":"mail"}"#;

fn bearer() -> Credentials {
    Credentials::bearer(
        "alice@example.com",
        "imap.example.com",
        993,
        SecretString::from(TOKEN),
    )
}

fn password() -> Credentials {
    Credentials::password("bob", SecretString::from(PASSWORD))
}

fn responded(step: Step) -> Vec<u8> {
    match step {
        Step::Respond(bytes) => bytes.expose_secret().clone(),
        other => panic!("expected a response, got {other:?}"),
    }
}

#[test]
fn xoauth2_with_initial_response_then_error_challenge() {
    let mut exchange = SaslExchange::new(Mechanism::XOAuth2, bearer()).unwrap();
    let initial = exchange.initial_response().unwrap();
    assert_eq!(
        initial.expose_secret().as_slice(),
        b"user=alice@example.com\x01auth=Bearer ya29.SECRET-token\x01\x01"
    );
    assert!(exchange.initial_response().is_none());

    let Step::ErrorChallenge { challenge, reply } = exchange.on_challenge(DOVECOT_401).unwrap()
    else {
        panic!("the JSON after the initial response must be the error challenge");
    };
    assert_eq!(challenge.verdict(), ChallengeVerdict::RefreshAndRetry);
    assert_eq!(reply, b"");

    let err = exchange.on_challenge(b"").unwrap_err();
    assert!(matches!(
        err,
        SaslError::UnexpectedChallenge {
            mechanism: Mechanism::XOAuth2
        }
    ));
}

#[test]
fn xoauth2_without_initial_response_answers_the_empty_challenge() {
    let mut exchange = SaslExchange::new(Mechanism::XOAuth2, bearer()).unwrap();
    let first = responded(exchange.on_challenge(b"").unwrap());
    assert!(first.starts_with(b"user=alice@example.com\x01"));
    assert!(exchange.initial_response().is_none());
    let step = exchange.on_challenge(DOVECOT_401).unwrap();
    assert!(matches!(step, Step::ErrorChallenge { reply: b"", .. }));
}

#[test]
fn oauthbearer_error_challenge_is_answered_with_0x01() {
    let mut exchange = SaslExchange::new(Mechanism::OAuthBearer, bearer()).unwrap();
    let initial = exchange.initial_response().unwrap();
    assert_eq!(
        initial.expose_secret().as_slice(),
        b"n,a=alice@example.com,\x01host=imap.example.com\x01port=993\x01auth=Bearer ya29.SECRET-token\x01\x01"
    );
    let step = exchange
        .on_challenge(b"eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=")
        .unwrap();
    let Step::ErrorChallenge { challenge, reply } = step else {
        panic!("expected the error challenge");
    };
    assert_eq!(challenge.status(), "invalid_token");
    assert_eq!(reply, b"\x01");
}

#[test]
fn undecodable_error_challenge_is_an_error_and_ends_the_exchange() {
    let mut exchange = SaslExchange::new(Mechanism::XOAuth2, bearer()).unwrap();
    let _ = exchange.initial_response();
    let err = exchange.on_challenge(b"Authentication failed").unwrap_err();
    assert!(matches!(err, SaslError::InvalidBase64 { .. }), "{err:?}");
    assert!(exchange.on_challenge(DOVECOT_401).is_err());
}

#[test]
fn empty_challenge_after_oauth_initial_response_is_unexpected() {
    let mut exchange = SaslExchange::new(Mechanism::OAuthBearer, bearer()).unwrap();
    let _ = exchange.initial_response();
    let err = exchange.on_challenge(b"").unwrap_err();
    assert!(matches!(err, SaslError::UnexpectedChallenge { .. }));
}

#[test]
fn plain_sends_one_message_and_expects_no_challenge_after_it() {
    let mut exchange = SaslExchange::new(Mechanism::Plain, password()).unwrap();
    assert_eq!(
        responded(exchange.on_challenge(b"").unwrap()),
        b"\0bob\0correct horse battery"
    );
    let err = exchange.on_challenge(DOVECOT_401).unwrap_err();
    assert!(matches!(
        err,
        SaslError::UnexpectedChallenge {
            mechanism: Mechanism::Plain
        }
    ));
}

#[test]
fn login_answers_username_then_password_prompts() {
    let mut exchange = SaslExchange::new(Mechanism::Login, password()).unwrap();
    assert!(
        exchange.initial_response().is_none(),
        "LOGIN is server-first"
    );
    assert_eq!(
        responded(exchange.on_challenge(b"Username:").unwrap()),
        b"bob"
    );
    assert_eq!(
        responded(exchange.on_challenge(b"Password:").unwrap()),
        PASSWORD.as_bytes()
    );
    let err = exchange.on_challenge(b"Password:").unwrap_err();
    assert!(matches!(
        err,
        SaslError::UnexpectedChallenge {
            mechanism: Mechanism::Login
        }
    ));
}

#[test]
fn mismatched_credentials_are_refused() {
    for mechanism in [Mechanism::XOAuth2, Mechanism::OAuthBearer] {
        let err = SaslExchange::new(mechanism, password()).unwrap_err();
        assert!(matches!(err, SaslError::CredentialsMismatch { mechanism: m } if m == mechanism));
    }
    for mechanism in [Mechanism::Plain, Mechanism::Login] {
        assert!(SaslExchange::new(mechanism, bearer()).is_err());
    }
}

#[test]
fn separator_in_credentials_is_refused_at_construction() {
    let forged = Credentials::bearer("a\x01auth=Bearer x", "h", 1, SecretString::from("T"));
    let err = SaslExchange::new(Mechanism::XOAuth2, forged).unwrap_err();
    assert!(matches!(
        err,
        SaslError::ForbiddenByte { field: "user", .. }
    ));
}

#[test]
fn debug_output_never_shows_secrets() {
    let credentials = bearer();
    let shown = format!("{credentials:?} {:?}", password());
    assert!(shown.contains("alice@example.com"), "{shown}");
    assert!(
        !shown.contains(TOKEN) && !shown.contains("SECRET"),
        "{shown}"
    );
    assert!(!shown.contains(PASSWORD), "{shown}");

    let mut exchange = SaslExchange::new(Mechanism::XOAuth2, credentials).unwrap();
    assert!(!format!("{exchange:?}").contains("SECRET"));
    let step = exchange.on_challenge(b"").unwrap();
    assert!(!format!("{step:?}").contains("SECRET"));

    let login = SaslExchange::new(Mechanism::Login, password()).unwrap();
    assert!(!format!("{login:?}").contains(PASSWORD));
}
