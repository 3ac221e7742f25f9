//! Tests of the login decisions: which method each capability list allows, the plaintext rule, and
//! that secrets stay out of `Debug`.

#![allow(clippy::unwrap_used)]

use super::*;

fn oauth(mechanism: OAuthMechanism) -> Login {
    Login::OAuth {
        user: "alice@example.test".into(),
        token: SecretString::from("tok-SECRET"),
        mechanism,
    }
}

fn password() -> Login {
    Login::Password {
        user: "bob".into(),
        password: SecretString::from("pw-SECRET"),
    }
}

fn caps(names: &[&str]) -> Capabilities {
    Capabilities::from_names(names)
}

#[test]
fn oauth_mechanism_must_be_advertised() {
    let server = caps(&["IMAP4rev1", "AUTH=PLAIN", "AUTH=XOAUTH2"]);
    assert_eq!(
        choose_method(&oauth(OAuthMechanism::XOAuth2), &server).unwrap(),
        LoginMethod::Authenticate(Mechanism::XOAuth2)
    );
    let err = choose_method(&oauth(OAuthMechanism::OAuthBearer), &server).unwrap_err();
    match err {
        ImapError::MechanismNotOffered { wanted, offered } => {
            assert_eq!(wanted, Mechanism::OAuthBearer);
            assert_eq!(offered, ["PLAIN", "XOAUTH2"]);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn password_prefers_authenticate_plain() {
    let server = caps(&["IMAP4rev1", "AUTH=PLAIN", "AUTH=LOGIN"]);
    assert_eq!(
        choose_method(&password(), &server).unwrap(),
        LoginMethod::Authenticate(Mechanism::Plain)
    );
}

#[test]
fn password_falls_back_to_the_login_command_unless_disabled() {
    assert_eq!(
        choose_method(&password(), &caps(&["IMAP4rev1"])).unwrap(),
        LoginMethod::LoginCommand
    );
    assert_eq!(
        choose_method(&password(), &caps(&["LOGINDISABLED", "AUTH=LOGIN"])).unwrap(),
        LoginMethod::Authenticate(Mechanism::Login)
    );
    let err = choose_method(
        &password(),
        &caps(&["IMAP4rev1", "STARTTLS", "LOGINDISABLED"]),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        ImapError::MechanismNotOffered { wanted: Mechanism::Plain, ref offered } if offered.is_empty()
    ));
}

#[test]
fn secrets_need_encryption_or_loopback() {
    assert!(check_transport(true, false, "imap.example.com").is_ok());
    assert!(check_transport(false, true, "127.0.0.1").is_ok());
    let err = check_transport(false, false, "imap.example.com").unwrap_err();
    assert!(matches!(err, ImapError::PlaintextRefused { ref host } if host == "imap.example.com"));
}

#[test]
fn debug_hides_secrets() {
    let shown = format!("{:?} {:?}", oauth(OAuthMechanism::XOAuth2), password());
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(shown.contains("alice@example.test"));
}

#[test]
fn oauthbearer_credentials_carry_host_and_port() {
    let credentials = oauth(OAuthMechanism::OAuthBearer).credentials("imap.example.com", 993);
    assert!(matches!(
        credentials,
        Credentials::Bearer { ref host, port: 993, .. } if host == "imap.example.com"
    ));
}
