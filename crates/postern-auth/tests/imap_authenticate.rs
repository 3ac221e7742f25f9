//! `ImapAuthenticator` driven by the real async-imap client against a scripted server over an in-memory
//! pipe: proves the exchange ends with the server's tagged response (no hang) and that the error
//! challenge reaches the caller. Transcripts follow Dovecot 2.3 (see TEST-RIG.md).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers outside #[test] fns: a panic there is a failed test"
)]

use std::time::Duration;

use async_imap::Client;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use postern_auth::sasl::{
    ChallengeVerdict, Credentials, ImapAuthenticator, Mechanism, SaslExchange, SaslReport,
};
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};

/// A hang must fail the test quickly instead of stalling the run.
const LIMIT: Duration = Duration::from_secs(2);

/// What the scripted server does: wait for a client line (compared exactly, tag stripped from the
/// first), or send a line (`{tag}` replaced by the client's tag).
enum Line {
    Client(String),
    Server(&'static str),
}

fn client(text: &str) -> Line {
    Line::Client(text.to_owned())
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Plays `script` as the server and panics on the first client line that differs.
async fn serve(stream: DuplexStream, script: Vec<Line>) {
    let (read, mut write) = tokio::io::split(stream);
    let mut lines = BufReader::new(read).lines();
    let mut tag = String::new();
    for step in script {
        match step {
            Line::Client(expected) => {
                let got = lines
                    .next_line()
                    .await
                    .unwrap()
                    .expect("client closed early");
                let got = if tag.is_empty() {
                    let (first, rest) = got.split_once(' ').unwrap();
                    tag = first.to_owned();
                    rest.to_owned()
                } else {
                    got
                };
                assert_eq!(got, expected, "client sent an unexpected line");
            }
            Line::Server(text) => {
                let line = format!("{}\r\n", text.replace("{tag}", &tag));
                write.write_all(line.as_bytes()).await.unwrap();
            }
        }
    }
}

/// Runs `Client::authenticate` against `script`; returns whether login succeeded, and the report.
async fn authenticate(exchange: SaslExchange, script: Vec<Line>) -> (bool, SaslReport) {
    let (client_end, server_end) = tokio::io::duplex(4096);
    let server = tokio::spawn(serve(server_end, script));
    let authenticator = ImapAuthenticator::new(exchange);
    let report = authenticator.report();
    let name = authenticator.mechanism().as_str();
    let login = tokio::time::timeout(
        LIMIT,
        Client::new(client_end).authenticate(name, authenticator),
    )
    .await
    .expect("authentication hung");
    tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    (login.is_ok(), report)
}

fn bearer(mechanism: Mechanism) -> SaslExchange {
    let credentials = Credentials::bearer(
        "alice@example.com",
        "127.0.0.1",
        10143,
        SecretString::from("expired-token"),
    );
    SaslExchange::new(mechanism, credentials).unwrap()
}

fn password(mechanism: Mechanism) -> SaslExchange {
    let credentials = Credentials::password("bob", SecretString::from("pw"));
    SaslExchange::new(mechanism, credentials).unwrap()
}

#[tokio::test]
async fn xoauth2_rejected_token_ends_with_no_and_reports_the_challenge() {
    let script = vec![
        client("AUTHENTICATE XOAUTH2"),
        Line::Server("+ "),
        client(&b64(
            b"user=alice@example.com\x01auth=Bearer expired-token\x01\x01",
        )),
        Line::Server("+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0="),
        client(""),
        Line::Server("{tag} NO [AUTHENTICATIONFAILED] Authentication failed."),
    ];
    let (logged_in, report) = authenticate(bearer(Mechanism::XOAuth2), script).await;
    assert!(!logged_in);
    let challenge = report.error_challenge().expect("challenge recorded");
    assert_eq!(
        challenge.raw_json(),
        r#"{"status":"401","schemes":"bearer","scope":"mail"}"#
    );
    assert_eq!(challenge.verdict(), ChallengeVerdict::RefreshAndRetry);
    assert!(report.take_protocol_error().is_none());
}

#[tokio::test]
async fn oauthbearer_rejected_token_is_answered_with_aq() {
    let script = vec![
        client("AUTHENTICATE OAUTHBEARER"),
        Line::Server("+ "),
        client(&b64(
            b"n,a=alice@example.com,\x01host=127.0.0.1\x01port=10143\x01auth=Bearer expired-token\x01\x01",
        )),
        Line::Server("+ eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0="),
        client("AQ=="),
        Line::Server("{tag} NO [AUTHENTICATIONFAILED] Authentication failed."),
    ];
    let (logged_in, report) = authenticate(bearer(Mechanism::OAuthBearer), script).await;
    assert!(!logged_in);
    assert_eq!(report.error_challenge().unwrap().status(), "invalid_token");
}

#[tokio::test]
async fn unavailable_token_provider_leaves_no_challenge() {
    let script = vec![
        client("AUTHENTICATE XOAUTH2"),
        Line::Server("+ "),
        client(&b64(
            b"user=alice@example.com\x01auth=Bearer expired-token\x01\x01",
        )),
        Line::Server("{tag} NO [UNAVAILABLE] Temporary authentication failure."),
    ];
    let (logged_in, report) = authenticate(bearer(Mechanism::XOAuth2), script).await;
    assert!(!logged_in);
    assert!(
        report.error_challenge().is_none(),
        "a transient failure, not a bad token"
    );
}

#[tokio::test]
async fn plain_succeeds() {
    let script = vec![
        client("AUTHENTICATE PLAIN"),
        Line::Server("+ "),
        client(&b64(b"\0bob\0pw")),
        Line::Server("{tag} OK Logged in"),
    ];
    let (logged_in, report) = authenticate(password(Mechanism::Plain), script).await;
    assert!(logged_in);
    assert!(report.error_challenge().is_none());
}

#[tokio::test]
async fn login_answers_prompts_in_order() {
    let script = vec![
        client("AUTHENTICATE LOGIN"),
        Line::Server("+ VXNlcm5hbWU6"),
        client(&b64(b"bob")),
        Line::Server("+ UGFzc3dvcmQ6"),
        client(&b64(b"pw")),
        Line::Server("{tag} OK Logged in"),
    ];
    let (logged_in, _) = authenticate(password(Mechanism::Login), script).await;
    assert!(logged_in);
}
