//! The mail-server harness against a real Dovecot: one shared server for the whole binary, the
//! shared test OAuth provider for token introspection and the shared SMTP sink as submission relay.
//!
//! These tests fail (never skip) when Dovecot is not installed: the error says how to install it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use postern_testkit::dovecot::{Dovecot, DovecotConfig};
use postern_testkit::mailgen::{MailGen, imap_fill, lmtp_deliver};
use postern_testkit::oauth_provider::{ClientConfig, TestOAuthProvider};
use postern_testkit::smtp_sink::SmtpSink;
use postern_testkit::tls::{TestPki, rustls_client_config};
use rustls_pki_types::ServerName;
use secrecy::ExposeSecret as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const CLIENT_ID: &str = "dovecot-harness-tests";
const GMAIL_SCOPE: &str = "https://mail.google.com/";
/// Every test finishes well within this; a hang fails instead of stalling the run.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

fn sink() -> &'static SmtpSink {
    SmtpSink::shared().unwrap_or_else(|err| panic!("{err}"))
}

fn provider() -> &'static TestOAuthProvider {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    let provider = TestOAuthProvider::shared();
    REGISTERED.get_or_init(|| {
        provider.register_client(ClientConfig::google_like(
            CLIENT_ID,
            "client-secret",
            "http://127.0.0.1:9/callback",
        ));
    });
    provider
}

fn dovecot() -> &'static Dovecot {
    Dovecot::shared(|| DovecotConfig::new(provider().introspect_url()).with_relay(sink().addr()))
        .unwrap_or_else(|err| panic!("{err}"))
}

async fn within<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("test timed out")
}

async fn tls_connect(addr: SocketAddr, ca_pem: &str) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tls_upgrade(tcp, ca_pem).await
}

async fn tls_upgrade<S>(stream: S, ca_pem: &str) -> std::io::Result<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let connector = TlsConnector::from(rustls_client_config(ca_pem).unwrap());
    let name = ServerName::try_from("localhost").unwrap();
    connector.connect(name, stream).await
}

async fn read_line<S: AsyncBufReadExt + Unpin>(stream: &mut S) -> String {
    let mut line = String::new();
    stream.read_line(&mut line).await.unwrap();
    line.trim_end().to_owned()
}

async fn imap_login(user: &str, password: &str) -> async_imap::Session<TcpStream> {
    let tcp = TcpStream::connect(dovecot().imap_addr()).await.unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap().unwrap();
    client
        .login(user, password)
        .await
        .map_err(|(err, _)| err)
        .unwrap()
}

#[tokio::test]
async fn greets_on_imap_and_on_imaps_with_a_certificate_of_the_test_ca() {
    within(async {
        let dovecot = dovecot();
        eprintln!("Dovecot started in {:?}", dovecot.started_in());

        let mut plain = BufReader::new(TcpStream::connect(dovecot.imap_addr()).await.unwrap());
        let greeting = read_line(&mut plain).await;
        assert!(
            greeting.starts_with("* OK [CAPABILITY IMAP4rev1"),
            "{greeting}"
        );
        assert!(greeting.contains("STARTTLS"), "{greeting}");

        let mut tls = BufReader::new(
            tls_connect(dovecot.imaps_addr(), dovecot.ca_pem())
                .await
                .unwrap(),
        );
        let greeting = read_line(&mut tls).await;
        assert!(greeting.contains("AUTH=XOAUTH2"), "{greeting}");
        assert!(greeting.contains("AUTH=OAUTHBEARER"), "{greeting}");
    })
    .await;
}

#[tokio::test]
async fn imaps_is_refused_by_a_client_trusting_another_ca() {
    within(async {
        let other = tempfile::tempdir().unwrap();
        let other_ca = TestPki::generate_into(other.path()).unwrap();
        let err = tls_connect(dovecot().imaps_addr(), other_ca.ca_pem())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn password_user_logs_in_and_a_wrong_password_is_refused() {
    within(async {
        let dovecot = dovecot();
        dovecot
            .add_password_user("pw-login@example.test", "right horse")
            .unwrap();
        dovecot
            .add_password_user("pw-other@example.test", "battery")
            .unwrap();

        let mut session = imap_login("pw-login@example.test", "right horse").await;
        let inbox = session.select("INBOX").await.unwrap();
        assert_eq!(inbox.exists, 0);
        session.logout().await.unwrap();
        imap_login("pw-other@example.test", "battery")
            .await
            .logout()
            .await
            .unwrap();

        let tcp = TcpStream::connect(dovecot.imap_addr()).await.unwrap();
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap().unwrap();
        let refused = client.login("pw-login@example.test", "wrong").await;
        assert!(matches!(refused, Err((async_imap::error::Error::No(_), _))));
    })
    .await;
}

#[tokio::test]
async fn a_changed_password_takes_effect_at_the_next_login() {
    within(async {
        let user = "pw-change@example.test";
        let dovecot = dovecot();
        dovecot.add_password_user(user, "old").unwrap();
        imap_login(user, "old").await.logout().await.unwrap();

        dovecot.add_password_user(user, "new").unwrap();

        imap_login(user, "new").await.logout().await.unwrap();
        let tcp = TcpStream::connect(dovecot.imap_addr()).await.unwrap();
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap().unwrap();
        assert!(client.login(user, "old").await.is_err());
    })
    .await;
}

#[tokio::test]
async fn lmtp_delivery_shows_up_in_the_mailbox() {
    within(async {
        let user = "lmtp-rcpt@example.test";
        let dovecot = dovecot();
        dovecot.add_password_user(user, "pw").unwrap();
        let messages = MailGen::new(11, user).messages(5);
        let raw: Vec<Vec<u8>> = messages.iter().map(|m| m.raw.clone()).collect();

        lmtp_deliver(dovecot.lmtp_addr(), user, &raw).await.unwrap();

        let mut session = imap_login(user, "pw").await;
        let status = session.status("INBOX", "(MESSAGES)").await.unwrap();
        assert_eq!(status.exists, 5);
        session.select("INBOX").await.unwrap();
        let fetched: Vec<_> = futures::TryStreamExt::try_collect(
            session
                .fetch("1", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]")
                .await
                .unwrap(),
        )
        .await
        .unwrap();
        let header = String::from_utf8_lossy(fetched[0].header().unwrap()).into_owned();
        assert!(header.contains(&messages[0].message_id), "{header}");
        session.logout().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn filler_puts_ten_thousand_messages_into_a_mailbox() {
    within(async {
        let user = "bulk@example.test";
        let dovecot = dovecot();
        dovecot.add_password_user(user, "pw").unwrap();
        let started = Instant::now();
        let raw = MailGen::new(12, user).raw_messages(10_000);
        let generated_in = started.elapsed();

        let appended = imap_fill(dovecot.imap_addr(), user, "pw", "Bulk", &raw)
            .await
            .unwrap();
        eprintln!(
            "generated 10k messages in {generated_in:?}, appended in {:?}",
            started.elapsed() - generated_in
        );

        assert_eq!(appended, 10_000);
        let mut session = imap_login(user, "pw").await;
        let status = session.status("Bulk", "(MESSAGES UNSEEN)").await.unwrap();
        assert_eq!(status.exists, 10_000);
        assert_eq!(status.unseen, Some(0));
        session.logout().await.unwrap();
    })
    .await;
}

/// Reads one SMTP reply (all its lines) and returns it.
async fn smtp_reply<S: AsyncBufReadExt + Unpin>(stream: &mut S) -> String {
    let mut reply = String::new();
    loop {
        let line = read_line(stream).await;
        reply.push_str(&line);
        reply.push('\n');
        if line.as_bytes().get(3) != Some(&b'-') {
            return reply;
        }
    }
}

async fn smtp_step<S>(stream: &mut BufReader<S>, command: &str, expected: &str) -> String
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream
        .get_mut()
        .write_all(command.as_bytes())
        .await
        .unwrap();
    let reply = smtp_reply(stream).await;
    assert!(reply.starts_with(expected), "{command:?} -> {reply}");
    reply
}

#[tokio::test]
async fn submission_relays_an_authenticated_message_to_the_sink() {
    within(async {
        let (user, rcpt) = ("sender@example.test", "relay-rcpt@example.org");
        let dovecot = dovecot();
        dovecot.add_password_user(user, "pw").unwrap();
        let message = MailGen::new(13, rcpt).message();

        let tcp = TcpStream::connect(dovecot.submission_addr().unwrap())
            .await
            .unwrap();
        let mut plain = BufReader::new(tcp);
        assert!(smtp_reply(&mut plain).await.starts_with("220"));
        smtp_step(&mut plain, "EHLO client.test\r\n", "250").await;
        smtp_step(&mut plain, "STARTTLS\r\n", "220").await;
        let tls = tls_upgrade(plain.into_inner(), dovecot.ca_pem())
            .await
            .unwrap();
        let mut smtp = BufReader::new(tls);
        let ehlo = smtp_step(&mut smtp, "EHLO client.test\r\n", "250").await;
        assert!(
            ehlo.contains("AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER"),
            "{ehlo}"
        );
        let plain_auth = BASE64.encode(format!("\0{user}\0pw"));
        smtp_step(&mut smtp, &format!("AUTH PLAIN {plain_auth}\r\n"), "235").await;
        smtp_step(&mut smtp, &format!("MAIL FROM:<{user}>\r\n"), "250").await;
        smtp_step(&mut smtp, &format!("RCPT TO:<{rcpt}>\r\n"), "250").await;
        smtp_step(&mut smtp, "DATA\r\n", "354").await;
        let mut data = message.raw.clone();
        data.extend_from_slice(b".\r\n");
        smtp.get_mut().write_all(&data).await.unwrap();
        assert!(smtp_reply(&mut smtp).await.starts_with("250"));
        smtp_step(&mut smtp, "QUIT\r\n", "221").await;

        let relayed = sink()
            .wait_for_rcpt(rcpt, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(relayed.mail_from, user);
        let relayed_text = String::from_utf8_lossy(&relayed.data);
        assert!(relayed_text.contains(&message.message_id), "{relayed_text}");
    })
    .await;
}

/// XOAUTH2 for async-imap: the initial response first, then an empty answer to the error
/// challenge, which it keeps for the test to inspect.
struct XOAuth2 {
    initial: Option<String>,
    error_challenges: Vec<Vec<u8>>,
}

impl async_imap::Authenticator for &mut XOAuth2 {
    type Response = String;

    fn process(&mut self, challenge: &[u8]) -> String {
        match self.initial.take() {
            Some(initial) => initial,
            None => {
                self.error_challenges.push(challenge.to_vec());
                String::new()
            }
        }
    }
}

fn xoauth2(user: &str, token: &str) -> String {
    format!("user={user}\x01auth=Bearer {token}\x01\x01")
}

#[tokio::test]
async fn xoauth2_login_with_a_token_of_the_test_provider_succeeds() {
    within(async {
        let email = "oauth-ok@example.test";
        let tokens = provider()
            .mint_tokens(CLIENT_ID, email, &[GMAIL_SCOPE], None)
            .unwrap();
        let dovecot = dovecot();

        let started = Instant::now();
        let tls = tls_connect(dovecot.imaps_addr(), dovecot.ca_pem())
            .await
            .unwrap();
        let mut client = async_imap::Client::new(tls);
        client.read_response().await.unwrap().unwrap();
        let mut auth = XOAuth2 {
            initial: Some(xoauth2(email, tokens.access_token.expose_secret())),
            error_challenges: Vec::new(),
        };
        let mut session = client
            .authenticate("XOAUTH2", &mut auth)
            .await
            .map_err(|(err, _)| err)
            .unwrap();
        eprintln!("IMAPS connect + XOAUTH2 login took {:?}", started.elapsed());

        assert!(auth.error_challenges.is_empty());
        let inbox = session.select("INBOX").await.unwrap();
        assert_eq!(inbox.exists, 0);
        session.logout().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn xoauth2_with_an_expired_token_gets_the_401_json_then_authenticationfailed() {
    within(async {
        let email = "oauth-expired@example.test";
        let tokens = provider()
            .mint_tokens(CLIENT_ID, email, &[GMAIL_SCOPE], None)
            .unwrap();
        assert_eq!(provider().expire_access_tokens_of(email), 1);
        let dovecot = dovecot();

        let tls = tls_connect(dovecot.imaps_addr(), dovecot.ca_pem())
            .await
            .unwrap();
        let mut imap = BufReader::new(tls);
        read_line(&mut imap).await; // greeting
        let initial = BASE64.encode(xoauth2(email, tokens.access_token.expose_secret()));
        imap.get_mut()
            .write_all(format!("a1 AUTHENTICATE XOAUTH2 {initial}\r\n").as_bytes())
            .await
            .unwrap();

        let challenge = read_line(&mut imap).await;
        let payload = challenge.strip_prefix("+ ").expect(&challenge);
        let json: serde_json::Value =
            serde_json::from_slice(&BASE64.decode(payload).unwrap()).unwrap();
        assert_eq!(json["status"], "401", "{json}");
        assert_eq!(json["schemes"], "bearer", "{json}");

        imap.get_mut().write_all(b"\r\n").await.unwrap();
        let done = read_line(&mut imap).await;
        assert_eq!(done, "a1 NO [AUTHENTICATIONFAILED] Authentication failed.");
    })
    .await;
}

#[test]
fn an_own_instance_greets_then_stops_on_drop_and_removes_its_directory() {
    let started = Instant::now();
    let own = Dovecot::start(DovecotConfig::new(provider().introspect_url()))
        .unwrap_or_else(|err| panic!("{err}"));
    let listening_after = started.elapsed();
    let mut imap = std::io::BufReader::new(std::net::TcpStream::connect(own.imap_addr()).unwrap());
    let mut greeting = String::new();
    std::io::BufRead::read_line(&mut imap, &mut greeting).unwrap();
    let greeting_after = started.elapsed();
    assert!(greeting.starts_with("* OK"), "{greeting}");
    let (pid, root) = (own.pid(), own.root_dir().to_path_buf());
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(own.submission_addr(), None);

    let stopping = Instant::now();
    drop(own);
    eprintln!(
        "own instance: listening after {listening_after:?}, first greeting after \
         {greeting_after:?}, stop took {:?}",
        stopping.elapsed()
    );
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(!root.exists());
}
