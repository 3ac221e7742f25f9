//! Servers Dovecot cannot be configured into here, played by a script: each test checks both the error
//! and what reached the wire (nothing secret, nothing at all where the client must stop early).

use std::time::Duration;

use postern_auth::sasl::Mechanism;
use postern_sync::{
    ImapEndpoint, ImapError, OAuthMechanism, Security, Stage, authenticate, connect,
};
use secrecy::SecretString;

use crate::support::{Line, Scripted, oauth, password, timeouts, within};

fn loopback(server: &Scripted, security: Security) -> ImapEndpoint {
    ImapEndpoint::new("127.0.0.1", server.addr.port(), security)
}

#[tokio::test]
async fn starttls_not_advertised_is_a_refused_downgrade() {
    within(async {
        let server = Scripted::start(vec![
            Line::Send("* OK fake server ready"),
            Line::Receive,
            Line::Send("* CAPABILITY IMAP4rev1 AUTH=PLAIN"),
            Line::Send("P1 OK done"),
        ])
        .await;

        let err = connect(&loopback(&server, Security::StartTls), &timeouts())
            .await
            .unwrap_err();

        assert!(
            matches!(&err, ImapError::StartTlsNotOffered { host } if host == "127.0.0.1"),
            "{err:?}"
        );
        assert!(!err.is_transient());
        // Only the capability question went out: no STARTTLS, no login in clear.
        assert_eq!(server.received().await, ["P1 CAPABILITY"]);
    })
    .await;
}

#[tokio::test]
async fn a_mechanism_the_server_lacks_is_refused_before_sending_anything() {
    within(async {
        let server = Scripted::start(vec![Line::Send(
            "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2] fake server ready",
        )])
        .await;
        let client = connect(&loopback(&server, Security::None), &timeouts())
            .await
            .unwrap();
        let login = oauth(
            "alice@example.test",
            SecretString::from("tok"),
            OAuthMechanism::OAuthBearer,
        );

        let err = authenticate(client, &login).await.unwrap_err();

        match &err {
            ImapError::MechanismNotOffered { wanted, offered } => {
                assert_eq!(*wanted, Mechanism::OAuthBearer);
                assert_eq!(offered, &["PLAIN", "XOAUTH2"]);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(server.received().await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_server_that_never_greets_times_out_at_the_greeting() {
    within(async {
        let server = Scripted::start(vec![]).await;
        let mut bounds = timeouts();
        bounds.handshake = Duration::from_millis(300);

        let err = connect(&loopback(&server, Security::None), &bounds)
            .await
            .unwrap_err();

        assert!(
            matches!(
                err,
                ImapError::Timeout {
                    stage: Stage::Greeting,
                    after
                } if after == Duration::from_millis(300)
            ),
            "{err:?}"
        );
        assert!(err.is_transient());
        assert!(server.received().await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_bye_greeting_is_a_transient_refusal() {
    within(async {
        let server = Scripted::start(vec![Line::Send("* BYE Too many connections")]).await;

        let err = connect(&loopback(&server, Security::None), &timeouts())
            .await
            .unwrap_err();

        assert!(
            matches!(&err, ImapError::GreetingRefused { server_text } if server_text == "Too many connections"),
            "{err:?}"
        );
        assert!(err.is_transient());
    })
    .await;
}

#[tokio::test]
async fn without_auth_plain_a_password_goes_with_the_login_command() {
    within(async {
        let server = Scripted::start(vec![
            Line::Send("* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] fake server ready"),
            Line::Receive,
            Line::Send("A0001 OK Logged in"),
            Line::Receive,
            Line::Send("* CAPABILITY IMAP4rev1 IDLE UIDPLUS"),
            Line::Send("A0002 OK Capability completed"),
            Line::Receive,
            Line::Send("* BYE Logging out"),
            Line::Send("A0003 OK Logout completed"),
        ])
        .await;
        let client = connect(&loopback(&server, Security::None), &timeouts())
            .await
            .unwrap();

        let session = authenticate(client, &password("bob", "pw \"quoted\""))
            .await
            .unwrap();
        assert!(session.capabilities().idle() && session.capabilities().uidplus());
        session.logout().await.unwrap();

        assert_eq!(
            server.received().await,
            [
                r#"A0001 LOGIN "bob" "pw \"quoted\"""#,
                "A0002 CAPABILITY",
                "A0003 LOGOUT"
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn a_login_command_no_keeps_the_servers_code_and_text() {
    within(async {
        let server = Scripted::start(vec![
            Line::Send("* OK [CAPABILITY IMAP4rev1] fake server ready"),
            Line::Receive,
            Line::Send("A0001 NO [UNAVAILABLE] Backend down, try later"),
        ])
        .await;
        let client = connect(&loopback(&server, Security::None), &timeouts())
            .await
            .unwrap();

        let err = authenticate(client, &password("bob", "pw"))
            .await
            .unwrap_err();

        assert_eq!(err.response_code(), Some("UNAVAILABLE"));
        assert!(err.is_transient(), "{err:?}");
        assert!(
            err.to_string()
                .ends_with("[UNAVAILABLE] Backend down, try later"),
            "{err}"
        );
    })
    .await;
}
