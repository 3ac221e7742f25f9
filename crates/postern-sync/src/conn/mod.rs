//! Opening an IMAP connection and logging in: the only place in this crate that touches sockets.
//!
//! Purpose: [`connect`] turns an [`ImapEndpoint`] into a greeted, secured, unauthenticated
//! [`ImapClient`] (implicit TLS, STARTTLS, or plaintext to loopback only), and [`authenticate`] turns that
//! into an [`ImapSession`] with an OAuth token (XOAUTH2, OAUTHBEARER) or a password.
//!
//! Non-goal: retrying. Every failure comes back as one [`ImapError`] whose classification
//! ([`ImapError::is_transient`], [`ImapError::token_rejected`], ...) tells the supervisor what to do; a
//! failed login drops the connection, and a retry (e.g. after refreshing a token) opens a new one.
//!
//! Key decisions:
//! - Every network step runs under a bound from [`Timeouts`], so a silent server fails with
//!   [`ImapError::Timeout`] naming the stage instead of hanging a task.
//! - Downgrades are refused, not tolerated: STARTTLS must be advertised, the capabilities seen before TLS
//!   are thrown away and asked again over TLS, bytes the server sent after its STARTTLS `OK` are dropped,
//!   and plaintext is allowed only to a loopback host (checked on the name and on the connected address).
//! - TLS and plain connections share one stream type, [`BoxedStream`], so the session and the sync engine
//!   built on it are not generic.
//! - Before login the few commands needed (CAPABILITY, STARTTLS) are written directly with tags of their
//!   own (`P1`, `P2`), because async-imap offers CAPABILITY only after login and no STARTTLS at all.
//!
//! Layout: this file holds the types and the two entry points; `handshake` the wire work before login
//! (TLS, greeting, STARTTLS, CAPABILITY), `auth` the login itself.

mod auth;
mod handshake;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::capabilities::Capabilities;
use crate::error::{ImapError, Stage};
use crate::login::{Login, LoginMethod, check_transport, choose_method};
use crate::session::ImapSession;

use auth::{login_command, sasl_login};
use handshake::{TlsSetup, greet, starttls};

/// A byte stream IMAP can run over: a TCP stream, a TLS stream over one, or a test double.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}

impl<T> Transport for T where T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}

/// The one stream type of every connection, encrypted or not.
pub type BoxedStream = Box<dyn Transport>;

/// How the connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Security {
    /// TLS from the first byte (port 993).
    Tls,
    /// Plain connection upgraded with STARTTLS before anything secret is sent (port 143).
    StartTls,
    /// No encryption. Allowed only to a loopback host (a local test or bridge server).
    None,
}

/// Where an IMAP server is and how to reach it safely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImapEndpoint {
    /// Host name or IP address; also the name the TLS certificate must be valid for.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// How the connection is secured.
    pub security: Security,
    /// A PEM file whose CA certificates are trusted *instead of* the webpki roots (a private CA or a
    /// self-signed test server).
    pub ca_file: Option<PathBuf>,
}

impl ImapEndpoint {
    /// An endpoint trusting the webpki roots.
    pub fn new(host: impl Into<String>, port: u16, security: Security) -> Self {
        ImapEndpoint {
            host: host.into(),
            port,
            security,
            ca_file: None,
        }
    }

    /// Trusts only the CA certificates in `ca_file`.
    pub fn with_ca_file(mut self, ca_file: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(ca_file.into());
        self
    }

    /// Whether the host names this machine (`localhost`, `127.0.0.0/8`, `::1`).
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.host)
    }
}

/// Bounds on each stage; exceeding one fails with [`ImapError::Timeout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening the TCP connection.
    pub connect: Duration,
    /// Each step between the TCP connection and the login: TLS handshake, greeting, STARTTLS,
    /// CAPABILITY.
    pub handshake: Duration,
    /// The login, and each command on the session. An OAuth login waits for the provider's token check,
    /// which takes seconds on a bad day.
    pub command: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            handshake: Duration::from_secs(15),
            command: Duration::from_secs(60),
        }
    }
}

/// A connected, greeted, not yet authenticated IMAP connection.
#[derive(Debug)]
pub struct ImapClient {
    inner: async_imap::Client<BoxedStream>,
    capabilities: Capabilities,
    host: String,
    port: u16,
    encrypted: bool,
    loopback: bool,
    timeouts: Timeouts,
}

impl ImapClient {
    /// The capabilities the server announced for this (secured) connection before login.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Whether the connection is encrypted (implicit TLS or after STARTTLS).
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }
}

/// Connects to `endpoint`, secures the connection as it asks, and reads the greeting and capabilities.
///
/// # Errors
///
/// [`ImapError::PlaintextRefused`] (before connecting) for [`Security::None`] to a non-loopback host;
/// [`ImapError::TlsConfig`] / [`ImapError::InvalidHost`] (before connecting) for an unusable `ca_file`
/// or host name; [`ImapError::Connect`], [`ImapError::Timeout`], [`ImapError::Tls`],
/// [`ImapError::StartTlsNotOffered`], [`ImapError::GreetingRefused`], [`ImapError::Protocol`],
/// [`ImapError::Io`] as the connection proceeds.
pub async fn connect(
    endpoint: &ImapEndpoint,
    timeouts: &Timeouts,
) -> Result<ImapClient, ImapError> {
    let started = Instant::now();
    let loopback = endpoint.is_loopback();
    let (inner, capabilities) = match endpoint.security {
        Security::Tls => {
            let tls = TlsSetup::new(endpoint)?;
            let tcp = open_tcp(endpoint, timeouts).await?;
            let stream = tls.handshake(tcp, timeouts.handshake).await?;
            greet(async_imap::Client::new(boxed(stream)), timeouts.handshake).await?
        }
        Security::StartTls => {
            let tls = TlsSetup::new(endpoint)?;
            let tcp = open_tcp(endpoint, timeouts).await?;
            starttls(tcp, &tls, timeouts.handshake).await?
        }
        Security::None => {
            if !loopback {
                return Err(plaintext_refused(endpoint));
            }
            let tcp = open_tcp(endpoint, timeouts).await?;
            ensure_loopback_peer(&tcp, endpoint)?;
            greet(async_imap::Client::new(boxed(tcp)), timeouts.handshake).await?
        }
    };
    tracing::debug!(
        host = %endpoint.host,
        port = endpoint.port,
        security = ?endpoint.security,
        elapsed = ?started.elapsed(),
        "IMAP connection ready for login"
    );
    Ok(ImapClient {
        inner,
        capabilities,
        host: endpoint.host.clone(),
        port: endpoint.port,
        encrypted: endpoint.security != Security::None,
        loopback,
        timeouts: *timeouts,
    })
}

/// Logs in with `login`, then reads the session's capabilities.
///
/// The method is chosen from the capabilities (see [`crate::login`]). For OAuth, an error challenge
/// from the server is answered so the server ends the command, and kept in
/// [`ImapError::AuthRejected::challenge`].
///
/// # Errors
///
/// [`ImapError::PlaintextRefused`], [`ImapError::MechanismNotOffered`] and
/// [`ImapError::InvalidCredentials`] before anything is sent; [`ImapError::AuthRejected`] when the
/// server says `NO`; [`ImapError::Timeout`], [`ImapError::Protocol`], [`ImapError::Io`].
pub async fn authenticate(client: ImapClient, login: &Login) -> Result<ImapSession, ImapError> {
    check_transport(client.encrypted, client.loopback, &client.host)?;
    let method = choose_method(login, &client.capabilities)?;
    let started = Instant::now();
    let ImapClient {
        inner,
        host,
        port,
        timeouts,
        ..
    } = client;
    let session = match (method, login) {
        (LoginMethod::Authenticate(mechanism), login) => {
            let credentials = login.credentials(&host, port);
            sasl_login(inner, mechanism, credentials, timeouts.command).await?
        }
        (LoginMethod::LoginCommand, Login::Password { user, password }) => {
            login_command(inner, user, password, timeouts.command).await?
        }
        (LoginMethod::LoginCommand, Login::OAuth { .. }) => {
            return Err(ImapError::InvalidCredentials {
                reason: "an OAuth token cannot be sent with the LOGIN command".to_owned(),
            });
        }
    };
    let session = ImapSession::establish(session, timeouts).await?;
    tracing::debug!(
        %host,
        %method,
        elapsed = ?started.elapsed(),
        "IMAP login succeeded"
    );
    Ok(session)
}

/// Runs `future` under `bound`, naming `stage` if it runs out.
pub(crate) async fn within<T>(
    stage: Stage,
    bound: Duration,
    future: impl Future<Output = T>,
) -> Result<T, ImapError> {
    tokio::time::timeout(bound, future)
        .await
        .map_err(|_elapsed| ImapError::Timeout {
            stage,
            after: bound,
        })
}

pub(crate) fn boxed<S: Transport + 'static>(stream: S) -> BoxedStream {
    Box::new(stream)
}

fn plaintext_refused(endpoint: &ImapEndpoint) -> ImapError {
    ImapError::PlaintextRefused {
        host: endpoint.host.clone(),
    }
}

fn is_loopback_host(host: &str) -> bool {
    let host = bare_host(host).trim_end_matches('.');
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// The host without the brackets of an IPv6 literal (`[::1]` → `::1`), as sockets and TLS want it.
pub(crate) fn bare_host(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host)
}

/// `localhost` is a name: make sure it really led to this machine before sending anything in clear.
fn ensure_loopback_peer(tcp: &TcpStream, endpoint: &ImapEndpoint) -> Result<(), ImapError> {
    let peer = tcp.peer_addr().map_err(|source| ImapError::Io {
        stage: Stage::Connect,
        source,
    })?;
    if peer.ip().is_loopback() {
        Ok(())
    } else {
        Err(plaintext_refused(endpoint))
    }
}

async fn open_tcp(endpoint: &ImapEndpoint, timeouts: &Timeouts) -> Result<TcpStream, ImapError> {
    let address = (bare_host(&endpoint.host), endpoint.port);
    let tcp = within(
        Stage::Connect,
        timeouts.connect,
        TcpStream::connect(address),
    )
    .await?
    .map_err(|source| ImapError::Connect {
        host: endpoint.host.clone(),
        port: endpoint.port,
        source,
    })?;
    // IMAP is request/response with small commands: do not let Nagle delay them.
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    Ok(tcp)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised_by_name_and_address() {
        for host in [
            "localhost",
            "LOCALHOST.",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "imap.example.com",
            "10.0.0.1",
            "localhost.example.com",
            "0.0.0.0",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
