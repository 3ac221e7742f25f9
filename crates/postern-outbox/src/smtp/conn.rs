//! The socket side of an SMTP session: TCP, TLS (implicit or STARTTLS), and reading and writing
//! lines under time bounds. The only place in this crate that touches the network.
//!
//! Purpose: [`open`] turns an [`SmtpEndpoint`] into a greeted, secured connection that has said
//! EHLO, and [`Connection`] sends commands and reads [`Reply`]s.
//! Non-goal: the SMTP dialogue beyond the handshake (AUTH, MAIL, DATA live in the parent module).
//! Key decisions:
//! - Every read and write runs under a bound from [`SmtpTimeouts`], so a silent server fails
//!   with [`SmtpError::Timeout`] naming the stage instead of hanging a worker.
//! - Downgrades are refused: STARTTLS must be offered and accepted, bytes the server sent after
//!   its `220` to STARTTLS are an error (they could have been injected in clear text), the EHLO
//!   from before TLS is thrown away and asked again, and plain text is allowed to loopback only
//!   (checked on the name and on the connected address).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use rustls_pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::reply::{MAX_LINE, Reply, ReplyBuilder};
use super::{Extensions, SmtpEndpoint, SmtpTimeouts};
use crate::error::{SmtpError, Stage};
use crate::tls::{client_config, handshake_error};
use postern_store::Security;

/// A byte stream SMTP runs over: TCP, or TLS over TCP.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T> Transport for T where T: AsyncRead + AsyncWrite + Unpin + Send {}

/// An open SMTP connection: buffered reads, bounded waits.
pub(crate) struct Connection {
    stream: BufReader<Box<dyn Transport>>,
    host: String,
    timeouts: SmtpTimeouts,
    ehlo_name: String,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// Connects, secures, reads the greeting and says EHLO; returns the connection and what the
/// server offers over the secured channel.
pub(crate) async fn open(
    endpoint: &SmtpEndpoint,
    timeouts: &SmtpTimeouts,
    ehlo_name: Option<&str>,
) -> Result<(Connection, Extensions), SmtpError> {
    let tcp = connect_tcp(endpoint, timeouts).await?;
    let ehlo_name = match ehlo_name {
        Some(name) => name.to_owned(),
        None => address_literal(tcp.local_addr().ok()),
    };
    let stream: Box<dyn Transport> = match endpoint.security {
        Security::Tls => Box::new(tls(endpoint, timeouts, Box::new(tcp)).await?),
        Security::StartTls | Security::None => Box::new(tcp),
    };
    let mut connection = Connection {
        stream: BufReader::new(stream),
        host: endpoint.host.clone(),
        timeouts: timeouts.clone(),
        ehlo_name,
    };
    connection.greeting().await?;
    let extensions = connection.ehlo().await?;
    if endpoint.security != Security::StartTls {
        return Ok((connection, extensions));
    }
    let mut secured = connection.starttls(endpoint, &extensions).await?;
    let extensions = secured.ehlo().await?;
    Ok((secured, extensions))
}

async fn connect_tcp(
    endpoint: &SmtpEndpoint,
    timeouts: &SmtpTimeouts,
) -> Result<TcpStream, SmtpError> {
    if endpoint.security == Security::None && !is_loopback_name(&endpoint.host) {
        return Err(SmtpError::PlaintextRefused {
            host: endpoint.host.clone(),
        });
    }
    let connect = TcpStream::connect((endpoint.host.as_str(), endpoint.port));
    let tcp = tokio::time::timeout(timeouts.connect, connect)
        .await
        .map_err(|_| SmtpError::Timeout {
            stage: Stage::Connect,
            after: timeouts.connect,
        })?
        .map_err(|source| SmtpError::Connect {
            host: endpoint.host.clone(),
            port: endpoint.port,
            source,
        })?;
    let peer_is_loopback = tcp.peer_addr().is_ok_and(|addr| addr.ip().is_loopback());
    if endpoint.security == Security::None && !peer_is_loopback {
        return Err(SmtpError::PlaintextRefused {
            host: endpoint.host.clone(),
        });
    }
    // Commands are small and each waits for its reply: Nagle would only add latency.
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The EHLO argument when no name is configured: the local address as an RFC 5321 literal.
fn address_literal(local: Option<SocketAddr>) -> String {
    match local.map(|addr| addr.ip()) {
        Some(IpAddr::V4(ip)) => format!("[{ip}]"),
        Some(IpAddr::V6(ip)) => format!("[IPv6:{ip}]"),
        None => "[127.0.0.1]".to_owned(),
    }
}

async fn tls(
    endpoint: &SmtpEndpoint,
    timeouts: &SmtpTimeouts,
    stream: Box<dyn Transport>,
) -> Result<tokio_rustls::client::TlsStream<Box<dyn Transport>>, SmtpError> {
    let config = client_config(endpoint.ca_file.as_deref())?;
    let name = ServerName::try_from(endpoint.host.clone()).map_err(|err| SmtpError::Tls {
        host: endpoint.host.clone(),
        detail: format!("not a valid server name: {err}"),
        untrusted_certificate: false,
    })?;
    let handshake = TlsConnector::from(config).connect(name, stream);
    tokio::time::timeout(timeouts.command, handshake)
        .await
        .map_err(|_| SmtpError::Timeout {
            stage: Stage::Tls,
            after: timeouts.command,
        })?
        .map_err(|err| handshake_error(&endpoint.host, err))
}

impl Connection {
    async fn greeting(&mut self) -> Result<(), SmtpError> {
        let greeting = self.read_reply(Stage::Greeting).await?;
        if greeting.code() != 220 {
            return Err(SmtpError::Rejected {
                stage: Stage::Greeting,
                reply: greeting,
            });
        }
        Ok(())
    }

    async fn ehlo(&mut self) -> Result<Extensions, SmtpError> {
        let command = format!("EHLO {}\r\n", self.ehlo_name);
        let reply = self.command(command.as_bytes(), Stage::Ehlo).await?;
        if !reply.is_positive() {
            return Err(SmtpError::Rejected {
                stage: Stage::Ehlo,
                reply,
            });
        }
        Ok(Extensions::from_ehlo(&reply))
    }

    async fn starttls(
        mut self,
        endpoint: &SmtpEndpoint,
        extensions: &Extensions,
    ) -> Result<Connection, SmtpError> {
        let unavailable = |detail: String| SmtpError::StartTlsUnavailable {
            host: endpoint.host.clone(),
            detail,
        };
        if !extensions.starttls {
            return Err(unavailable("STARTTLS is not advertised".to_owned()));
        }
        let reply = self.command(b"STARTTLS\r\n", Stage::StartTls).await?;
        if reply.code() != 220 {
            return Err(unavailable(format!("the server answered {reply}")));
        }
        if !self.stream.buffer().is_empty() {
            return Err(unavailable(
                "the server sent data after its 220, before TLS started".to_owned(),
            ));
        }
        let stream = tls(endpoint, &self.timeouts, self.stream.into_inner()).await?;
        Ok(Connection {
            stream: BufReader::new(Box::new(stream)),
            host: self.host,
            timeouts: self.timeouts,
            ehlo_name: self.ehlo_name,
        })
    }

    /// Sends `bytes` (one or more complete command lines) and reads one reply.
    pub(crate) async fn command(&mut self, bytes: &[u8], stage: Stage) -> Result<Reply, SmtpError> {
        self.write(bytes, stage).await?;
        self.read_reply(stage).await
    }

    /// Writes and flushes `bytes` within the command bound (the data bound for [`Stage::DataEnd`]).
    pub(crate) async fn write(&mut self, bytes: &[u8], stage: Stage) -> Result<(), SmtpError> {
        let after = self.bound(stage);
        let stream = self.stream.get_mut();
        let write = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        tokio::time::timeout(after, write)
            .await
            .map_err(|_| SmtpError::Timeout { stage, after })?
            .map_err(|source| SmtpError::Io { stage, source })
    }

    /// Reads one complete (possibly multi-line) reply within the stage's bound.
    pub(crate) async fn read_reply(&mut self, stage: Stage) -> Result<Reply, SmtpError> {
        let after = self.bound(stage);
        tokio::time::timeout(after, self.read_reply_unbounded(stage))
            .await
            .map_err(|_| SmtpError::Timeout { stage, after })?
    }

    async fn read_reply_unbounded(&mut self, stage: Stage) -> Result<Reply, SmtpError> {
        let mut builder = ReplyBuilder::default();
        let mut line = Vec::with_capacity(128);
        loop {
            line.clear();
            let limit = u64::try_from(MAX_LINE + 1).unwrap_or(u64::MAX);
            let read = (&mut self.stream)
                .take(limit)
                .read_until(b'\n', &mut line)
                .await
                .map_err(|source| SmtpError::Io { stage, source })?;
            if read == 0 {
                return Err(SmtpError::Io {
                    stage,
                    source: std::io::ErrorKind::UnexpectedEof.into(),
                });
            }
            let pushed = builder
                .push(&line)
                .map_err(|source| SmtpError::Protocol { stage, source })?;
            if let Some(reply) = pushed {
                return Ok(reply);
            }
        }
    }

    fn bound(&self, stage: Stage) -> std::time::Duration {
        match stage {
            Stage::DataEnd => self.timeouts.data_end,
            _ => self.timeouts.command,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names() {
        for host in ["localhost", "127.0.0.1", "::1", "[::1]", "LOCALHOST"] {
            assert!(is_loopback_name(host), "{host}");
        }
        for host in ["smtp.gmail.com", "10.0.0.1", "localhost.example.com"] {
            assert!(!is_loopback_name(host), "{host}");
        }
    }

    #[test]
    fn ehlo_address_literals() {
        assert_eq!(
            address_literal(Some("192.0.2.7:25".parse().unwrap())),
            "[192.0.2.7]"
        );
        assert_eq!(
            address_literal(Some("[2001:db8::1]:25".parse().unwrap())),
            "[IPv6:2001:db8::1]"
        );
        assert_eq!(address_literal(None), "[127.0.0.1]");
    }
}
