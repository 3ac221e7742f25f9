//! Shared fixtures: the Dovecot and OAuth provider, tokens, endpoints, a per-test time limit, and a
//! scripted IMAP server.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use postern_sync::{ImapEndpoint, Login, OAuthMechanism, Security, Timeouts};
use postern_testkit::dovecot::{Dovecot, DovecotConfig};
use postern_testkit::oauth_provider::{ClientConfig, TestOAuthProvider};
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const CLIENT_ID: &str = "postern-sync-tests";
pub const GMAIL_SCOPE: &str = "https://mail.google.com/";
/// Every test finishes well within this.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Bounds for tests: short enough that a hang shows quickly, long enough for a loaded 2-core machine.
pub fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        handshake: Duration::from_secs(5),
        command: Duration::from_secs(10),
    }
}

pub async fn within<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("test timed out")
}

pub fn provider() -> &'static TestOAuthProvider {
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

pub fn dovecot() -> &'static Dovecot {
    Dovecot::shared(|| DovecotConfig::new(provider().introspect_url()))
        .unwrap_or_else(|err| panic!("{err}"))
}

/// A live access token of the shared provider for `email`.
pub fn token_for(email: &str) -> SecretString {
    provider()
        .mint_tokens(CLIENT_ID, email, &[GMAIL_SCOPE], None)
        .unwrap()
        .access_token
}

pub fn oauth(email: &str, token: SecretString, mechanism: OAuthMechanism) -> Login {
    Login::OAuth {
        user: email.to_owned(),
        token,
        mechanism,
    }
}

pub fn password(user: &str, password: &str) -> Login {
    Login::Password {
        user: user.to_owned(),
        password: SecretString::from(password.to_owned()),
    }
}

/// An endpoint at `addr` named `localhost` (a name the test certificate holds), trusting `dovecot`'s CA.
pub fn endpoint(dovecot: &Dovecot, addr: SocketAddr, security: Security) -> ImapEndpoint {
    ImapEndpoint::new("localhost", addr.port(), security).with_ca_file(dovecot.ca_file())
}

/// What a scripted server does, line by line.
pub enum Line {
    /// Send this line (CRLF is added).
    Send(&'static str),
    /// Read one line from the client and record it.
    Receive,
}

/// A one-connection IMAP server playing a script, then recording everything else the client sends until
/// it closes the connection.
pub struct Scripted {
    pub addr: SocketAddr,
    received: JoinHandle<Vec<String>>,
}

impl Scripted {
    pub async fn start(script: Vec<Line>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut socket = BufReader::new(socket);
            let mut received = Vec::new();
            for line in script {
                match line {
                    Line::Send(text) => {
                        let line = format!("{text}\r\n");
                        socket.get_mut().write_all(line.as_bytes()).await.unwrap();
                    }
                    Line::Receive => {
                        received.extend(read_line(&mut socket).await);
                    }
                }
            }
            while let Some(line) = read_line(&mut socket).await {
                received.push(line);
            }
            received
        });
        Scripted { addr, received }
    }

    /// The lines the client sent, once it has closed the connection.
    pub async fn received(self) -> Vec<String> {
        self.received.await.unwrap()
    }
}

/// One line without its CRLF; `None` at the end of the stream (a reset by the client counts as one).
async fn read_line(socket: &mut BufReader<tokio::net::TcpStream>) -> Option<String> {
    let mut line = String::new();
    match socket.read_line(&mut line).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end().to_owned()),
    }
}
