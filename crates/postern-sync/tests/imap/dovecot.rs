//! Connecting and logging in to the real Dovecot: each way in, and each way a login fails.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use postern_auth::sasl::Mechanism;
use postern_sync::{
    ImapEndpoint, ImapError, LoginMethod, OAuthMechanism, Security, TlsFailure, authenticate,
    connect,
};
use postern_testkit::dovecot::{Dovecot, DovecotConfig};
use postern_testkit::mailgen::{MailGen, lmtp_deliver};
use postern_testkit::oauth_provider::{ClientConfig, TestOAuthProvider};

use crate::support::{
    CLIENT_ID, GMAIL_SCOPE, dovecot, endpoint, oauth, password, provider, timeouts, token_for,
    within,
};

/// A failed login must end with the server's NO, not wait for a timeout.
const PROMPT_FAILURE: Duration = Duration::from_secs(3);

#[tokio::test]
async fn imaps_xoauth2_logs_in_and_selects_inbox_with_its_counts() {
    within(async {
        let email = "sync-xoauth2@example.test";
        let dovecot = dovecot();
        let messages = MailGen::new(21, email).raw_messages(2);
        lmtp_deliver(dovecot.lmtp_addr(), email, &messages)
            .await
            .unwrap();
        let login = oauth(email, token_for(email), OAuthMechanism::XOAuth2);
        let endpoint = endpoint(dovecot, dovecot.imaps_addr(), Security::Tls);

        let started = Instant::now();
        let client = connect(&endpoint, &timeouts()).await.unwrap();
        let connected = started.elapsed();
        assert!(client.is_encrypted());
        assert!(client.capabilities().offers(Mechanism::XOAuth2));
        let mut session = authenticate(client, &login).await.unwrap();
        let logged_in = started.elapsed();
        eprintln!(
            "IMAPS: TLS + greeting {connected:?}, + XOAUTH2 login + CAPABILITY {logged_in:?}"
        );

        let caps = session.capabilities();
        assert!(caps.idle() && caps.condstore() && caps.qresync() && caps.enable());
        let inbox = session.select_inbox_check().await.unwrap();
        assert_eq!(inbox.exists, 2);
        // INBOX plus the five special-use mailboxes the test config auto-creates.
        assert_eq!(inbox.mailboxes, 6);
        assert!(inbox.uid_validity.is_some());
        assert_eq!(inbox.uid_next, Some(3));
        assert!(
            inbox.highest_modseq.is_some(),
            "CONDSTORE select: {inbox:?}"
        );
        session.logout().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn imaps_oauthbearer_logs_in() {
    within(async {
        let email = "sync-oauthbearer@example.test";
        let dovecot = dovecot();
        let login = oauth(email, token_for(email), OAuthMechanism::OAuthBearer);
        let endpoint = endpoint(dovecot, dovecot.imaps_addr(), Security::Tls);

        let started = Instant::now();
        let client = connect(&endpoint, &timeouts()).await.unwrap();
        let mut session = authenticate(client, &login).await.unwrap();
        eprintln!("IMAPS + OAUTHBEARER login: {:?}", started.elapsed());

        assert_eq!(session.select_inbox_check().await.unwrap().exists, 0);
        session.logout().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn starttls_on_the_plain_port_with_a_password_user() {
    within(async {
        let user = "sync-starttls@example.test";
        let dovecot = dovecot();
        dovecot.add_password_user(user, "s3cret horse").unwrap();
        let endpoint = endpoint(dovecot, dovecot.imap_addr(), Security::StartTls);

        let started = Instant::now();
        let client = connect(&endpoint, &timeouts()).await.unwrap();
        assert!(client.is_encrypted());
        // The list read over TLS, not the plaintext one: Dovecot drops STARTTLS once TLS is on.
        assert!(!client.capabilities().starttls());
        let mut session = authenticate(client, &password(user, "s3cret horse"))
            .await
            .unwrap();
        eprintln!("STARTTLS + PLAIN login: {:?}", started.elapsed());

        assert_eq!(session.select_inbox_check().await.unwrap().exists, 0);
        session.logout().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn password_over_plaintext_to_loopback_works() {
    within(async {
        let user = "sync-plain@example.test";
        let dovecot = dovecot();
        dovecot.add_password_user(user, "pw").unwrap();
        let endpoint = ImapEndpoint::new("127.0.0.1", dovecot.imap_addr().port(), Security::None);

        let client = connect(&endpoint, &timeouts()).await.unwrap();
        assert!(!client.is_encrypted());
        assert!(client.capabilities().starttls());
        let mut session = authenticate(client, &password(user, "pw")).await.unwrap();
        assert_eq!(session.select_inbox_check().await.unwrap().mailboxes, 6);
        session.logout().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn wrong_password_is_authenticationfailed_without_a_challenge() {
    within(async {
        let user = "sync-wrong-pw@example.test";
        let dovecot = dovecot();
        dovecot.add_password_user(user, "right").unwrap();
        let endpoint = endpoint(dovecot, dovecot.imaps_addr(), Security::Tls);

        let client = connect(&endpoint, &timeouts()).await.unwrap();
        let err = authenticate(client, &password(user, "wrong"))
            .await
            .unwrap_err();

        match &err {
            ImapError::AuthRejected {
                method,
                challenge,
                response_code,
                server_text,
            } => {
                assert_eq!(*method, LoginMethod::Authenticate(Mechanism::Plain));
                assert!(challenge.is_none());
                assert_eq!(response_code.as_deref(), Some("AUTHENTICATIONFAILED"));
                assert_eq!(server_text, "[AUTHENTICATIONFAILED] Authentication failed.");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!err.is_transient() && !err.token_rejected());
    })
    .await;
}

#[tokio::test]
async fn expired_token_is_rejected_with_the_decoded_401_challenge_promptly() {
    within(async {
        let email = "sync-expired@example.test";
        let token = token_for(email);
        assert_eq!(provider().expire_access_tokens_of(email), 1);
        let dovecot = dovecot();
        let endpoint = endpoint(dovecot, dovecot.imaps_addr(), Security::Tls);

        let client = connect(&endpoint, &timeouts()).await.unwrap();
        let started = Instant::now();
        let err = authenticate(client, &oauth(email, token, OAuthMechanism::XOAuth2))
            .await
            .unwrap_err();
        let took = started.elapsed();
        eprintln!("expired XOAUTH2 token rejected after {took:?}: {err}");

        assert!(took < PROMPT_FAILURE, "{took:?}");
        assert!(err.token_rejected(), "{err:?}");
        assert!(!err.insufficient_scope() && !err.is_transient());
        let challenge = err.oauth_challenge().unwrap();
        assert_eq!(challenge.status(), "401");
        assert_eq!(challenge.schemes(), Some("bearer"));
        assert_eq!(err.response_code(), Some("AUTHENTICATIONFAILED"));
    })
    .await;
}

#[tokio::test]
async fn expired_token_over_oauthbearer_is_invalid_token() {
    within(async {
        let email = "sync-expired-bearer@example.test";
        let token = token_for(email);
        provider().expire_access_tokens_of(email);
        let dovecot = dovecot();
        let endpoint = endpoint(dovecot, dovecot.imaps_addr(), Security::Tls);

        let client = connect(&endpoint, &timeouts()).await.unwrap();
        let err = authenticate(client, &oauth(email, token, OAuthMechanism::OAuthBearer))
            .await
            .unwrap_err();

        assert!(err.token_rejected(), "{err:?}");
        assert_eq!(err.oauth_challenge().unwrap().status(), "invalid_token");
        assert_eq!(err.response_code(), Some("AUTHENTICATIONFAILED"));
    })
    .await;
}

/// Dovecot checks tokens only through introspection, with the token alone: to make that check fail,
/// this test runs its own provider and its own Dovecot, then stops the provider.
#[tokio::test]
async fn token_check_down_is_unavailable_and_transient() {
    within(async {
        let email = "sync-provider-down@example.test";
        let own_provider = TestOAuthProvider::start().unwrap();
        own_provider.register_client(ClientConfig::google_like(
            CLIENT_ID,
            "secret",
            "http://127.0.0.1:9/cb",
        ));
        let token = own_provider
            .mint_tokens(CLIENT_ID, email, &[GMAIL_SCOPE], None)
            .unwrap()
            .access_token;
        let mut config = DovecotConfig::new(own_provider.introspect_url());
        config.stop_timeout = Duration::ZERO;
        let own_dovecot = tokio::task::spawn_blocking(move || Dovecot::start(config))
            .await
            .unwrap()
            .unwrap_or_else(|err| panic!("{err}"));
        let endpoint = endpoint(&own_dovecot, own_dovecot.imaps_addr(), Security::Tls);
        let login = oauth(email, token, OAuthMechanism::XOAuth2);

        // The same token works while the provider is up...
        let client = connect(&endpoint, &timeouts()).await.unwrap();
        authenticate(client, &login)
            .await
            .unwrap()
            .logout()
            .await
            .unwrap();

        // ...and fails temporarily once it is gone.
        drop(own_provider);
        let client = connect(&endpoint, &timeouts()).await.unwrap();
        let started = Instant::now();
        let err = authenticate(client, &login).await.unwrap_err();
        eprintln!(
            "provider down: rejected after {:?}: {err}",
            started.elapsed()
        );

        assert!(err.is_transient(), "{err:?}");
        assert_eq!(err.response_code(), Some("UNAVAILABLE"));
        assert!(err.oauth_challenge().is_none());
        assert!(!err.token_rejected());
        assert!(started.elapsed() < PROMPT_FAILURE);
        tokio::task::spawn_blocking(move || drop(own_dovecot))
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn self_signed_server_is_untrusted_with_only_the_webpki_roots() {
    within(async {
        let dovecot = dovecot();
        let endpoint = ImapEndpoint::new("localhost", dovecot.imaps_addr().port(), Security::Tls);

        let err = connect(&endpoint, &timeouts()).await.unwrap_err();

        assert!(err.untrusted_certificate(), "{err:?}");
        assert!(
            matches!(
                &err,
                ImapError::Tls { host, reason: TlsFailure::UnknownIssuer } if host == "localhost"
            ),
            "{err:?}"
        );
        assert!(!err.is_transient());
    })
    .await;
}

#[tokio::test]
async fn another_ca_does_not_make_the_server_trusted() {
    within(async {
        let other = tempfile::tempdir().unwrap();
        let other_ca = postern_testkit::tls::TestPki::generate_into(other.path()).unwrap();
        let dovecot = dovecot();
        let endpoint = ImapEndpoint::new("localhost", dovecot.imaps_addr().port(), Security::Tls)
            .with_ca_file(other_ca.ca_file());

        let err = connect(&endpoint, &timeouts()).await.unwrap_err();

        assert!(err.untrusted_certificate(), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn nothing_listening_is_a_transient_connect_error() {
    within(async {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let endpoint = ImapEndpoint::new("127.0.0.1", port, Security::Tls);

        let err = connect(&endpoint, &timeouts()).await.unwrap_err();

        match &err {
            ImapError::Connect {
                host,
                port: p,
                source,
            } => {
                assert_eq!((host.as_str(), *p), ("127.0.0.1", port));
                assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.is_transient());
    })
    .await;
}

#[tokio::test]
async fn plaintext_to_a_remote_host_is_refused_before_connecting() {
    within(async {
        // Had a connection been tried, the error would be another one (connect, timeout, greeting).
        let endpoint = ImapEndpoint::new("10.255.255.1", 143, Security::None);
        let started = Instant::now();

        let err = connect(&endpoint, &timeouts()).await.unwrap_err();

        assert!(
            matches!(&err, ImapError::PlaintextRefused { host } if host == "10.255.255.1"),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(500));
        assert!(!err.is_transient());
    })
    .await;
}

#[tokio::test]
async fn an_invalid_host_name_is_refused_before_connecting() {
    within(async {
        let endpoint = ImapEndpoint::new("not a host!", 993, Security::Tls);

        let err = connect(&endpoint, &timeouts()).await.unwrap_err();

        assert!(
            matches!(&err, ImapError::InvalidHost { host } if host == "not a host!"),
            "{err:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn connect_and_login_futures_can_run_on_any_worker() {
    within(async {
        let user = "sync-send@example.test";
        let dovecot = dovecot();
        dovecot.add_password_user(user, "pw").unwrap();
        let endpoint = endpoint(dovecot, dovecot.imaps_addr(), Security::Tls);
        // Run the whole flow on another task, as the supervisor will.
        let session = tokio::spawn(async move {
            let client = connect(&endpoint, &timeouts()).await?;
            let mut session = authenticate(client, &password(user, "pw")).await?;
            let inbox = session.select_inbox_check().await?;
            session.logout().await?;
            Ok::<_, ImapError>(inbox)
        });
        assert_eq!(session.await.unwrap().unwrap().exists, 0);
    })
    .await;
}
