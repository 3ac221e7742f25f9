//! A client SMTP session (RFC 5321) for message submission: connect, secure, AUTH, then one
//! transaction per message with a reply kept for every recipient.
//!
//! Purpose: [`SmtpSession::connect`] (implicit TLS or STARTTLS, certificates verified),
//! [`SmtpSession::authenticate`] with XOAUTH2, OAUTHBEARER, PLAIN or LOGIN through
//! `postern-auth`'s [`SaslExchange`] (answering the OAuth error challenge so the server ends with
//! its `535` instead of waiting, and keeping the JSON), and [`SmtpSession::send`]: SIZE check,
//! `MAIL FROM`, one `RCPT TO` per recipient (pipelined when offered), DATA with dot-stuffing.
//!
//! Non-goal: deciding what a reply means for the message (retry, fail); `classify` does that.
//! Also no BDAT/CHUNKING and no DSN parameters.
//!
//! Key decision: our own client rather than lettre. lettre has no OAUTHBEARER, stops a
//! transaction at the first refused recipient (no per-recipient results), does not answer the
//! OAuth error challenge the way Dovecot and Google expect, and its rustls feature brings ring
//! next to the aws-lc-rs every other crate here uses (rustls then cannot pick a provider at run
//! time). The protocol subset submission needs is small; the parsing parts ([`reply`],
//! [`extensions`], [`data`]) are pure and tested byte for byte, and only `conn` touches sockets.

mod conn;
pub mod data;
pub mod extensions;
pub mod reply;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use postern_auth::sasl::{Credentials, Mechanism, SaslExchange, Step};
use postern_store::{Account, Security, SmtpEnvelope};
use secrecy::{ExposeSecret, SecretBox};

use crate::error::{SmtpError, Stage};

pub use extensions::Extensions;
pub use reply::{Reply, ReplyError, ReplyKind};

/// How many `RCPT TO` commands go out in one pipelined write: replies come back while the
/// client writes, and a bounded group keeps both sides' buffers from filling up.
const PIPELINE_GROUP: usize = 100;

/// Where an SMTP server is and how to reach it safely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpEndpoint {
    /// Host name or IP address; also the name the certificate must be valid for.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Implicit TLS (465), STARTTLS (587), or none (loopback only).
    pub security: Security,
    /// CA certificates trusted instead of the webpki roots (a private CA).
    pub ca_file: Option<PathBuf>,
}

impl SmtpEndpoint {
    /// The account's SMTP server.
    pub fn of_account(account: &Account) -> Self {
        SmtpEndpoint {
            host: account.smtp.host.clone(),
            port: account.smtp.port,
            security: account.smtp.security,
            ca_file: account.smtp.ca_file.as_ref().map(PathBuf::from),
        }
    }
}

/// Bounds on each wait of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpTimeouts {
    /// Opening the TCP connection.
    pub connect: Duration,
    /// The TLS handshake and each command's reply.
    pub command: Duration,
    /// Transmitting the message and waiting for the final reply (servers scan it first).
    pub data_end: Duration,
}

impl Default for SmtpTimeouts {
    fn default() -> Self {
        SmtpTimeouts {
            connect: Duration::from_secs(15),
            command: Duration::from_secs(60),
            data_end: Duration::from_secs(180),
        }
    }
}

/// The server's reply to one `RCPT TO`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientReply {
    /// The recipient.
    pub address: String,
    /// What the server said.
    pub reply: Reply,
}

/// What one transaction got from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// One reply per recipient, in envelope order.
    pub recipients: Vec<RecipientReply>,
    /// The reply that decided the message for the accepted recipients: the final reply after the
    /// data, or the refusal of `DATA` itself. `None` when no recipient was accepted (no DATA).
    pub data: Option<Reply>,
}

/// An open, secured SMTP session.
pub struct SmtpSession {
    conn: conn::Connection,
    extensions: Extensions,
    /// Set when the transaction could not be reset: the server's state is unknown.
    broken: bool,
    /// Counts this connection in `postern_mail_connections` while it lives.
    _counted: postern_sync::metrics::OpenConnection,
}

impl fmt::Debug for SmtpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSession")
            .field("conn", &self.conn)
            .field("extensions", &self.extensions)
            .finish()
    }
}

impl SmtpSession {
    /// Connects to `endpoint`, secures the connection as it says, and greets the server.
    /// `ehlo_name` defaults to the local address as a literal (`[192.0.2.1]`).
    ///
    /// # Errors
    ///
    /// Every [`SmtpError`] of connecting, TLS, the greeting, EHLO and STARTTLS.
    pub async fn connect(
        endpoint: &SmtpEndpoint,
        timeouts: &SmtpTimeouts,
        ehlo_name: Option<&str>,
    ) -> Result<Self, SmtpError> {
        let (conn, extensions) = conn::open(endpoint, timeouts, ehlo_name).await?;
        Ok(SmtpSession {
            conn,
            extensions,
            broken: false,
            _counted: postern_sync::metrics::OpenConnection::count("smtp"),
        })
    }

    /// What the server offers (read over TLS).
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Logs in with `mechanism`. On an OAuth refusal the server's error JSON is answered (so it
    /// finishes with its `535`) and kept in [`SmtpError::AuthRejected`].
    ///
    /// # Errors
    ///
    /// [`SmtpError::MechanismNotOffered`], [`SmtpError::AuthRejected`], [`SmtpError::Sasl`], and
    /// the I/O errors of the exchange.
    pub async fn authenticate(
        &mut self,
        mechanism: Mechanism,
        credentials: Credentials,
    ) -> Result<(), SmtpError> {
        if !self.extensions.offers_auth(mechanism.as_str()) {
            return Err(SmtpError::MechanismNotOffered {
                mechanism: mechanism.as_str().to_owned(),
                offered: self.extensions.auth.clone(),
            });
        }
        let mut exchange = SaslExchange::new(mechanism, credentials)?;
        let command = auth_command(&mut exchange);
        self.conn
            .write(command.expose_secret(), Stage::Auth)
            .await?;
        let mut challenge = None;
        loop {
            let reply = self.conn.read_reply(Stage::Auth).await?;
            match reply.code() {
                235 => return Ok(()),
                334 => challenge = self.answer(&mut exchange, &reply).await?.or(challenge),
                _ => return Err(SmtpError::AuthRejected { reply, challenge }),
            }
        }
    }

    /// Answers one `334`; returns the OAuth error challenge when that is what it was.
    async fn answer(
        &mut self,
        exchange: &mut SaslExchange,
        reply: &Reply,
    ) -> Result<Option<Box<postern_auth::sasl::OAuthErrorChallenge>>, SmtpError> {
        let text = reply.lines().first().map_or("", |line| line.trim());
        match exchange.on_challenge(text.as_bytes()) {
            Ok(Step::Respond(bytes)) => {
                let line = base64_line(b"", bytes.expose_secret());
                self.conn.write(line.expose_secret(), Stage::Auth).await?;
                Ok(None)
            }
            Ok(Step::ErrorChallenge { challenge, reply }) => {
                tracing::debug!(
                    status = challenge.status(),
                    "SMTP server sent an OAuth error challenge"
                );
                let line = base64_line(b"", reply);
                self.conn.write(line.expose_secret(), Stage::Auth).await?;
                Ok(Some(Box::new(challenge)))
            }
            Err(error) => {
                // RFC 4954: "*" cancels the exchange; the server then answers 501.
                self.conn.write(b"*\r\n", Stage::Auth).await?;
                let _ = self.conn.read_reply(Stage::Auth).await;
                Err(error.into())
            }
        }
    }

    /// Runs one transaction: `MAIL FROM`, `RCPT TO` for each recipient, and DATA when at least
    /// one recipient was accepted. `message` is sent with CRLF line endings and dot-stuffed.
    ///
    /// # Errors
    ///
    /// [`SmtpError::TooLarge`] before anything is sent when the server declared a smaller
    /// `SIZE`; [`SmtpError::Rejected`] when `MAIL FROM` is refused; I/O errors and timeouts
    /// (after [`Stage::DataEnd`] began, the server may have accepted the message).
    pub async fn send(
        &mut self,
        envelope: &SmtpEnvelope,
        message: &[u8],
    ) -> Result<Transaction, SmtpError> {
        let wire = data::dot_stuffed(message);
        let size = u64::try_from(wire.len().saturating_sub(3)).unwrap_or(u64::MAX);
        if let Some(limit) = self.extensions.size_limit
            && size > limit
        {
            return Err(SmtpError::TooLarge { size, limit });
        }
        let mail = self.mail_command(envelope, size, data::is_eight_bit(message))?;
        let recipients = self.envelope(&mail, &envelope.recipients).await?;
        if !recipients.iter().any(|r| r.reply.is_positive()) {
            self.reset_or_break().await;
            return Ok(Transaction {
                recipients,
                data: None,
            });
        }
        let data = self.data(&wire).await?;
        Ok(Transaction {
            recipients,
            data: Some(data),
        })
    }

    fn mail_command(
        &self,
        envelope: &SmtpEnvelope,
        size: u64,
        eight_bit: bool,
    ) -> Result<String, SmtpError> {
        let addresses = std::iter::once(&envelope.from).chain(&envelope.recipients);
        let mut utf8 = false;
        for address in addresses {
            if address.contains(['\r', '\n', '<', '>']) {
                return Err(SmtpError::UnsafeAddress {
                    address: address.clone(),
                });
            }
            utf8 |= !address.is_ascii();
        }
        if utf8 && !self.extensions.smtputf8 {
            return Err(SmtpError::Utf8Unsupported);
        }
        let mut command = format!("MAIL FROM:<{}>", envelope.from);
        if self.extensions.size {
            command.push_str(&format!(" SIZE={size}"));
        }
        if eight_bit && self.extensions.eight_bit_mime {
            command.push_str(" BODY=8BITMIME");
        }
        if utf8 {
            command.push_str(" SMTPUTF8");
        }
        command.push_str("\r\n");
        Ok(command)
    }

    /// `MAIL FROM` and every `RCPT TO`; the replies of the recipients. With PIPELINING the
    /// commands go out in groups (`MAIL FROM` with the first) and the replies are read in order.
    async fn envelope(
        &mut self,
        mail: &str,
        recipients: &[String],
    ) -> Result<Vec<RecipientReply>, SmtpError> {
        if !self.extensions.pipelining {
            return self.envelope_in_turn(mail, recipients).await;
        }
        let mut replies = Vec::with_capacity(recipients.len());
        for (index, group) in recipients.chunks(PIPELINE_GROUP).enumerate() {
            let mut commands = if index == 0 {
                mail.to_owned()
            } else {
                String::new()
            };
            commands.extend(group.iter().map(|to| format!("RCPT TO:<{to}>\r\n")));
            self.conn.write(commands.as_bytes(), Stage::RcptTo).await?;
            if index == 0 {
                let reply = self.conn.read_reply(Stage::MailFrom).await?;
                if !reply.is_positive() {
                    for _ in group {
                        self.conn.read_reply(Stage::RcptTo).await?;
                    }
                    return Err(SmtpError::Rejected {
                        stage: Stage::MailFrom,
                        reply,
                    });
                }
            }
            for address in group {
                let reply = self.conn.read_reply(Stage::RcptTo).await?;
                replies.push(RecipientReply {
                    address: address.clone(),
                    reply,
                });
            }
        }
        Ok(replies)
    }

    /// The envelope one command at a time, for servers without PIPELINING.
    async fn envelope_in_turn(
        &mut self,
        mail: &str,
        recipients: &[String],
    ) -> Result<Vec<RecipientReply>, SmtpError> {
        let reply = self.conn.command(mail.as_bytes(), Stage::MailFrom).await?;
        if !reply.is_positive() {
            return Err(SmtpError::Rejected {
                stage: Stage::MailFrom,
                reply,
            });
        }
        let mut replies = Vec::with_capacity(recipients.len());
        for address in recipients {
            let command = format!("RCPT TO:<{address}>\r\n");
            let reply = self.conn.command(command.as_bytes(), Stage::RcptTo).await?;
            replies.push(RecipientReply {
                address: address.clone(),
                reply,
            });
        }
        Ok(replies)
    }

    /// `DATA`, the message, and the final reply; a refused `DATA` is returned as the deciding
    /// reply after the transaction is reset.
    async fn data(&mut self, wire: &[u8]) -> Result<Reply, SmtpError> {
        let reply = self.conn.command(b"DATA\r\n", Stage::Data).await?;
        if reply.code() != 354 {
            self.reset_or_break().await;
            return Ok(reply);
        }
        self.conn.write(wire, Stage::DataEnd).await?;
        self.conn.read_reply(Stage::DataEnd).await
    }

    /// False once a transaction could not be reset: the session must not be used again.
    pub fn is_reusable(&self) -> bool {
        !self.broken
    }

    /// Resets after a transaction that ended before DATA; the replies already read are the
    /// result, so a failed reset only retires the session.
    async fn reset_or_break(&mut self) {
        if let Err(error) = self.reset().await {
            tracing::debug!(%error, "RSET failed; the SMTP session will not be reused");
            self.broken = true;
        }
    }

    /// `RSET`: abandons the current transaction; the session stays logged in.
    ///
    /// # Errors
    ///
    /// [`SmtpError::Rejected`] when the server refuses, and I/O errors; the session should then
    /// be dropped.
    pub async fn reset(&mut self) -> Result<(), SmtpError> {
        let reply = self.conn.command(b"RSET\r\n", Stage::Reset).await?;
        if reply.is_positive() {
            Ok(())
        } else {
            Err(SmtpError::Rejected {
                stage: Stage::Reset,
                reply,
            })
        }
    }

    /// Says `QUIT` and closes; errors are ignored (the server may already have gone).
    pub async fn quit(mut self) {
        let _ = self.conn.command(b"QUIT\r\n", Stage::Reset).await;
    }
}

/// `AUTH <mechanism>[ <initial response>]`: the initial response goes with the command (RFC 4954
/// section 4), `=` standing for an empty one.
fn auth_command(exchange: &mut SaslExchange) -> SecretBox<Vec<u8>> {
    let name = exchange.mechanism().as_str();
    match exchange.initial_response() {
        Some(initial) if initial.expose_secret().is_empty() => {
            SecretBox::new(Box::new(format!("AUTH {name} =\r\n").into_bytes()))
        }
        Some(initial) => {
            let prefix = format!("AUTH {name} ");
            base64_line(prefix.as_bytes(), initial.expose_secret())
        }
        None => SecretBox::new(Box::new(format!("AUTH {name}\r\n").into_bytes())),
    }
}

/// `prefix` + base64(`payload`) + CRLF, built in one buffer that is zeroed when dropped (it may
/// carry a password or token).
fn base64_line(prefix: &[u8], payload: &[u8]) -> SecretBox<Vec<u8>> {
    let encoded_len = base64::encoded_len(payload.len(), true).unwrap_or(0);
    let mut line = Vec::with_capacity(prefix.len() + encoded_len + 2);
    line.extend_from_slice(prefix);
    let start = line.len();
    line.resize(start + encoded_len, 0);
    let written = STANDARD
        .encode_slice(payload, &mut line[start..])
        .unwrap_or(0);
    line.truncate(start + written);
    line.extend_from_slice(b"\r\n");
    SecretBox::new(Box::new(line))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn auth_lines_carry_the_initial_response_in_base64() {
        let credentials = Credentials::password("alice", SecretString::from("pw"));
        let mut plain = SaslExchange::new(Mechanism::Plain, credentials).unwrap();
        let line = auth_command(&mut plain);
        assert_eq!(line.expose_secret(), b"AUTH PLAIN AGFsaWNlAHB3\r\n");
        let login = Credentials::password("alice", SecretString::from("pw"));
        let mut login = SaslExchange::new(Mechanism::Login, login).unwrap();
        assert_eq!(auth_command(&mut login).expose_secret(), b"AUTH LOGIN\r\n");
    }

    #[test]
    fn base64_lines_end_in_crlf() {
        assert_eq!(base64_line(b"", b"").expose_secret(), b"\r\n");
        assert_eq!(base64_line(b"", b"\x01").expose_secret(), b"AQ==\r\n");
        assert_eq!(base64_line(b"X ", b"ab").expose_secret(), b"X YWI=\r\n");
    }
}
