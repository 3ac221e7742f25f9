//! The wire work between the TCP connection and the login: TLS handshake, greeting, STARTTLS, CAPABILITY.
//!
//! Non-goal: the login (see `auth`). Key decision: the pre-login commands are written by hand with tags
//! of their own, and the capabilities seen in plaintext never survive a STARTTLS.

use std::sync::Arc;
use std::time::Duration;

use async_imap::imap_proto::{Response, ResponseCode, Status};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{BoxedStream, ImapEndpoint, Transport, bare_host, boxed, within};
use crate::capabilities::Capabilities;
use crate::error::{ImapError, Stage, closed};
use crate::response::{ServerReply, interpret_greeting, protocol};
use crate::tls;

/// What a TLS handshake needs, prepared before connecting so configuration errors cost no connection.
pub(super) struct TlsSetup {
    connector: TlsConnector,
    name: ServerName<'static>,
    host: String,
}

impl TlsSetup {
    pub(super) fn new(endpoint: &ImapEndpoint) -> Result<Self, ImapError> {
        let config: Arc<rustls::ClientConfig> = tls::client_config(endpoint.ca_file.as_deref())?;
        let name =
            ServerName::try_from(bare_host(&endpoint.host).to_owned()).map_err(|_invalid| {
                ImapError::InvalidHost {
                    host: endpoint.host.clone(),
                }
            })?;
        Ok(TlsSetup {
            connector: TlsConnector::from(config),
            name,
            host: endpoint.host.clone(),
        })
    }

    pub(super) async fn handshake<S>(
        &self,
        stream: S,
        bound: Duration,
    ) -> Result<TlsStream<S>, ImapError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let handshake = self.connector.connect(self.name.clone(), stream);
        within(Stage::TlsHandshake, bound, handshake)
            .await?
            .map_err(|error| match tls::classify_handshake_error(error) {
                Ok(reason) => ImapError::Tls {
                    host: self.host.clone(),
                    reason,
                },
                Err(source) => ImapError::Io {
                    stage: Stage::TlsHandshake,
                    source,
                },
            })
    }
}

/// Reads the greeting, then the capabilities (from the greeting when it carries them).
pub(super) async fn greet<T: Transport>(
    mut client: async_imap::Client<T>,
    bound: Duration,
) -> Result<(async_imap::Client<T>, Capabilities), ImapError> {
    let announced = read_greeting(&mut client, bound).await?;
    let capabilities = match announced {
        Some(capabilities) => capabilities,
        None => capability_command(&mut client, bound).await?,
    };
    Ok((client, capabilities))
}

/// Greets in plaintext, checks STARTTLS is offered, upgrades, and asks for the capabilities again.
pub(super) async fn starttls(
    tcp: TcpStream,
    tls: &TlsSetup,
    bound: Duration,
) -> Result<(async_imap::Client<BoxedStream>, Capabilities), ImapError> {
    let (mut plain, capabilities) = greet(async_imap::Client::new(tcp), bound).await?;
    if !capabilities.starttls() {
        return Err(ImapError::StartTlsNotOffered {
            host: tls.host.clone(),
        });
    }
    let answer = within(
        Stage::StartTls,
        bound,
        tagged_command(&mut plain, Stage::StartTls, "P2", "STARTTLS"),
    )
    .await??;
    if !answer.ok {
        return Err(ImapError::StartTlsNotOffered {
            host: tls.host.clone(),
        });
    }
    // `into_inner` drops whatever the server sent after its OK in plaintext: such bytes could only be
    // an injection meant to be read as if it had come over TLS.
    let stream = tls.handshake(plain.into_inner(), bound).await?;
    let mut client = async_imap::Client::new(boxed(stream));
    // The plaintext list may have been tampered with; only the one read over TLS counts.
    let capabilities = capability_command(&mut client, bound).await?;
    Ok((client, capabilities))
}

async fn read_greeting<T: Transport>(
    client: &mut async_imap::Client<T>,
    bound: Duration,
) -> Result<Option<Capabilities>, ImapError> {
    let response = within(Stage::Greeting, bound, client.read_response())
        .await?
        .map_err(|source| ImapError::Io {
            stage: Stage::Greeting,
            source,
        })?
        .ok_or_else(|| closed(Stage::Greeting))?;
    interpret_greeting(response.parsed())
}

async fn capability_command<T: Transport>(
    client: &mut async_imap::Client<T>,
    bound: Duration,
) -> Result<Capabilities, ImapError> {
    let answer = within(
        Stage::Capability,
        bound,
        tagged_command(client, Stage::Capability, "P1", "CAPABILITY"),
    )
    .await??;
    if !answer.ok {
        return Err(ImapError::CommandRejected {
            command: "CAPABILITY",
            response_code: answer.reply.response_code,
            server_text: answer.reply.server_text,
        });
    }
    answer
        .capabilities
        .ok_or_else(|| protocol(Stage::Capability, "no CAPABILITY in the server's answer"))
}

/// The end of a command sent by [`tagged_command`].
struct TaggedAnswer {
    ok: bool,
    reply: ServerReply,
    /// From an untagged `* CAPABILITY` or a `[CAPABILITY ...]` code on the tagged answer.
    capabilities: Option<Capabilities>,
}

/// Sends `tag command` and reads up to the tagged answer, keeping any capability list on the way.
async fn tagged_command<T: Transport>(
    client: &mut async_imap::Client<T>,
    stage: Stage,
    tag: &str,
    command: &str,
) -> Result<TaggedAnswer, ImapError> {
    let io_error = |source| ImapError::Io { stage, source };
    let stream = client.get_mut();
    stream
        .write_all(format!("{tag} {command}\r\n").as_bytes())
        .await
        .map_err(io_error)?;
    stream.flush().await.map_err(io_error)?;
    let mut capabilities = None;
    loop {
        let response = client
            .read_response()
            .await
            .map_err(io_error)?
            .ok_or_else(|| closed(stage))?;
        match response.parsed() {
            Response::Capabilities(list) => {
                capabilities = Some(Capabilities::from(list.as_slice()));
            }
            Response::Done {
                tag: done,
                status,
                outcome,
            } if done.0 == tag => {
                let coded = match &outcome.code {
                    Some(ResponseCode::Capabilities(list)) => {
                        Some(Capabilities::from(list.as_slice()))
                    }
                    _ => None,
                };
                return Ok(TaggedAnswer {
                    ok: matches!(status, Status::Ok),
                    reply: ServerReply::from_outcome(outcome),
                    capabilities: capabilities.or(coded),
                });
            }
            _ => {}
        }
    }
}
