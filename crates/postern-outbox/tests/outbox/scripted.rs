//! The SMTP client against scripted servers, for what Dovecot does not show: implicit TLS, the
//! XOAUTH2 error challenge, a missing STARTTLS, refused commands, SIZE, per-recipient replies
//! and dot-stuffing on the wire.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postern_auth::sasl::{Credentials, Mechanism};
use postern_outbox::smtp::{SmtpEndpoint, SmtpSession, SmtpTimeouts};
use postern_outbox::{SmtpError, Stage};
use postern_store::{Security, SmtpEnvelope};
use postern_testkit::tls::TestPki;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One step of a script: the start of the line the client must send (`None` for the greeting)
/// and the server's answer (CRLFs added; empty for no answer).
type Step = (Option<&'static str>, String);

fn greeting(answer: &str) -> Step {
    (None, answer.to_owned())
}

fn step(expect: &'static str, answer: &str) -> Step {
    (Some(expect), answer.to_owned())
}

const DOVECOT_401: &str = "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=";

struct Pki {
    _dir: tempfile::TempDir,
    ca_file: PathBuf,
    server: Arc<rustls::ServerConfig>,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate_into(dir.path()).unwrap();
    let certs = CertificateDer::pem_slice_iter(pki.cert_pem().as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.key_pem().as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Pki {
        ca_file: pki.ca_file().to_path_buf(),
        _dir: dir,
        server: Arc::new(server),
    }
}

/// Serves one connection with `script`; the task returns every line the client sent.
async fn serve(
    tls: Option<Arc<rustls::ServerConfig>>,
    script: Vec<Step>,
) -> (SocketAddr, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        match tls {
            Some(config) => match tokio_rustls::TlsAcceptor::from(config).accept(tcp).await {
                Ok(stream) => run_script(stream, script).await,
                // The client refused the certificate: nothing was said.
                Err(_) => Vec::new(),
            },
            None => run_script(tcp, script).await,
        }
    });
    (addr, task)
}

async fn run_script<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    script: Vec<Step>,
) -> Vec<String> {
    let mut stream = BufReader::new(stream);
    let mut seen = Vec::new();
    for (expect, answer) in script {
        if let Some(expect) = expect {
            let mut line = String::new();
            if stream.read_line(&mut line).await.unwrap() == 0 {
                break;
            }
            assert!(
                line.starts_with(expect),
                "expected {expect:?}, the client sent {line:?}"
            );
            seen.push(line);
        }
        if !answer.is_empty() {
            let answer = format!("{}\r\n", answer.replace('\n', "\r\n"));
            stream.get_mut().write_all(answer.as_bytes()).await.unwrap();
        }
    }
    seen
}

/// Reads the DATA section up to the lone dot, as raw lines.
fn data_lines(seen: &[String]) -> String {
    seen.concat()
}

fn endpoint(addr: SocketAddr, security: Security, ca_file: Option<PathBuf>) -> SmtpEndpoint {
    SmtpEndpoint {
        host: "localhost".into(),
        port: addr.port(),
        security,
        ca_file,
    }
}

fn timeouts() -> SmtpTimeouts {
    SmtpTimeouts {
        connect: Duration::from_secs(2),
        command: Duration::from_secs(2),
        data_end: Duration::from_secs(2),
    }
}

fn token(value: &str) -> Credentials {
    Credentials::bearer(
        "me@example.test",
        "localhost",
        465,
        SecretString::from(value.to_owned()),
    )
}

#[tokio::test]
async fn implicit_tls_and_an_xoauth2_refusal_answered_with_an_empty_line() {
    let pki = pki();
    let script = vec![
        greeting("220 fake ESMTP"),
        step("EHLO ", "250-fake\n250 AUTH PLAIN XOAUTH2"),
        step("AUTH XOAUTH2 ", &format!("334 {DOVECOT_401}")),
        step("\r\n", "535 5.7.8 Authentication failed."),
    ];
    let (addr, server) = serve(Some(pki.server.clone()), script).await;
    let endpoint = endpoint(addr, Security::Tls, Some(pki.ca_file.clone()));
    let mut session = SmtpSession::connect(&endpoint, &timeouts(), Some("client.test"))
        .await
        .unwrap();
    assert!(session.extensions().offers_auth("XOAUTH2"));
    let error = session
        .authenticate(Mechanism::XOAuth2, token("expired-token"))
        .await
        .unwrap_err();
    assert!(error.token_rejected(), "{error}");
    assert!(error.to_string().contains(r#""status":"401""#), "{error}");
    let seen = server.await.unwrap();
    assert_eq!(seen[0], "EHLO client.test\r\n");
    assert!(
        !seen[1].contains("expired-token"),
        "the token goes base64-encoded"
    );
}

#[tokio::test]
async fn the_servers_certificate_must_chain_to_the_configured_ca() {
    let (server_pki, other_pki) = (pki(), pki());
    let (addr, _server) = serve(Some(server_pki.server.clone()), vec![]).await;
    let endpoint = endpoint(addr, Security::Tls, Some(other_pki.ca_file.clone()));
    let error = SmtpSession::connect(&endpoint, &timeouts(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            SmtpError::Tls {
                untrusted_certificate: true,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn starttls_that_is_not_offered_is_refused_before_any_secret() {
    let script = vec![
        greeting("220 fake ESMTP"),
        step("EHLO ", "250-fake\n250 AUTH PLAIN"),
    ];
    let (addr, server) = serve(None, script).await;
    let error = SmtpSession::connect(&endpoint(addr, Security::StartTls, None), &timeouts(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, SmtpError::StartTlsUnavailable { .. }),
        "{error:?}"
    );
    assert_eq!(server.await.unwrap().len(), 1, "nothing after EHLO");
}

#[tokio::test]
async fn plaintext_is_for_loopback_only() {
    let endpoint = SmtpEndpoint {
        host: "smtp.example.com".into(),
        port: 25,
        security: Security::None,
        ca_file: None,
    };
    let error = SmtpSession::connect(&endpoint, &timeouts(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, SmtpError::PlaintextRefused { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn without_pipelining_each_recipient_gets_its_own_reply_and_data_is_dot_stuffed() {
    let script = vec![
        greeting("220 fake ESMTP"),
        step("EHLO ", "250-fake\n250 AUTH PLAIN"),
        step("AUTH PLAIN ", "235 2.7.0 OK"),
        step("MAIL FROM:<me@example.test>\r\n", "250 2.1.0 OK"),
        step("RCPT TO:<ok@example.test>", "250 2.1.5 OK"),
        step("RCPT TO:<gone@example.test>", "550 5.1.1 No such user"),
        step("RCPT TO:<later@example.test>", "451 4.2.0 Greylisted"),
        step("DATA", "354 go ahead"),
        step("Subject: x", ""),
        step("\r\n", ""),
        step("..dotted", ""),
        step(".", "250 2.0.0 queued as 1"),
    ];
    let (addr, server) = serve(None, script).await;
    let mut session =
        SmtpSession::connect(&endpoint(addr, Security::None, None), &timeouts(), None)
            .await
            .unwrap();
    let password = Credentials::password("me@example.test", SecretString::from("pw".to_owned()));
    session
        .authenticate(Mechanism::Plain, password)
        .await
        .unwrap();
    let envelope = SmtpEnvelope {
        from: "me@example.test".into(),
        recipients: vec![
            "ok@example.test".into(),
            "gone@example.test".into(),
            "later@example.test".into(),
        ],
    };
    let transaction = session
        .send(&envelope, b"Subject: x\n\n.dotted\n")
        .await
        .unwrap();
    let codes: Vec<u16> = transaction
        .recipients
        .iter()
        .map(|r| r.reply.code())
        .collect();
    assert_eq!(codes, [250, 550, 451]);
    assert_eq!(transaction.data.unwrap().code(), 250);
    let seen = server.await.unwrap();
    assert!(data_lines(&seen).ends_with("Subject: x\r\n\r\n..dotted\r\n.\r\n"));
}

#[tokio::test]
async fn pipelined_envelopes_keep_per_recipient_replies_and_size_is_checked_first() {
    let script = vec![
        greeting("220 fake ESMTP"),
        step("EHLO ", "250-fake\n250-PIPELINING\n250 SIZE 100"),
        step("MAIL FROM:<me@example.test> SIZE=18\r\n", ""),
        step("RCPT TO:<a@example.test>", ""),
        step(
            "RCPT TO:<b@example.test>",
            "250 OK\n250 OK\n550 5.7.1 Relay denied",
        ),
        step("DATA", "354 go ahead"),
        step("Subject: y", ""),
        step("\r\n", ""),
        step("hi", ""),
        step(".\r\n", "250 2.0.0 queued"),
    ];
    let (addr, server) = serve(None, script).await;
    let mut session =
        SmtpSession::connect(&endpoint(addr, Security::None, None), &timeouts(), None)
            .await
            .unwrap();
    let envelope = SmtpEnvelope {
        from: "me@example.test".into(),
        recipients: vec!["a@example.test".into(), "b@example.test".into()],
    };
    let too_big = session.send(&envelope, &[b'x'; 200]).await.unwrap_err();
    assert!(
        matches!(too_big, SmtpError::TooLarge { limit: 100, .. }),
        "{too_big:?}"
    );

    let transaction = session
        .send(&envelope, b"Subject: y\r\n\r\nhi\r\n")
        .await
        .unwrap();
    let replies: Vec<String> = transaction
        .recipients
        .iter()
        .map(|r| format!("{} {}", r.address, r.reply))
        .collect();
    assert_eq!(
        replies,
        [
            "a@example.test 250 OK",
            "b@example.test 550 5.7.1 Relay denied"
        ]
    );
    assert_eq!(transaction.data.unwrap().to_string(), "250 2.0.0 queued");
    server.await.unwrap();
}

#[tokio::test]
async fn a_refused_sender_is_a_mail_from_rejection() {
    let script = vec![
        greeting("220 fake ESMTP"),
        step("EHLO ", "250-fake\n250 PIPELINING"),
        step("MAIL FROM:<blocked@example.test>", ""),
        step(
            "RCPT TO:<a@example.test>",
            "550 5.7.1 Sender blocked\n503 5.5.1 MAIL first",
        ),
    ];
    let (addr, _server) = serve(None, script).await;
    let mut session =
        SmtpSession::connect(&endpoint(addr, Security::None, None), &timeouts(), None)
            .await
            .unwrap();
    let envelope = SmtpEnvelope {
        from: "blocked@example.test".into(),
        recipients: vec!["a@example.test".into()],
    };
    let error = session
        .send(&envelope, b"Subject: z\r\n\r\n")
        .await
        .unwrap_err();
    let SmtpError::Rejected { stage, reply } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*stage, Stage::MailFrom);
    assert_eq!(reply.to_string(), "550 5.7.1 Sender blocked");
    assert!(!error.is_transient());
}
