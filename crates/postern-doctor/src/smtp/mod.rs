//! A minimal SMTP client, just enough for the doctor: greeting, EHLO, STARTTLS, AUTH, MAIL/RCPT/RSET.
//!
//! Purpose: talk to a submission server step by step and keep every reply, so the doctor can show
//! exactly where and how the server refused (`535 5.7.139 ...`, the decoded `334` error JSON).
//!
//! Non-goal: sending mail. There is no DATA: the outbox has its own client. Key decisions: replies are
//! parsed by a pure function ([`parse_line`]) with bounds on line length and line count; secrets are
//! written only through [`SmtpConn::send_secret`], and nothing here logs a command.

pub(crate) mod auth;

use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufStream,
};

use crate::catalogue::Observation;
use crate::error::SmtpError;

/// Longest reply line accepted (RFC 5321 says 512; servers with long texts exceed it).
const MAX_LINE: u64 = 8 * 1024;
/// Most lines in one reply (an EHLO lists a few dozen at most).
const MAX_LINES: usize = 200;

/// One SMTP reply: its code and the text of each line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The text of every line, joined by spaces.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }

    /// `250 text`, the first line only (an EHLO's list is shown apart).
    pub fn headline(&self) -> String {
        format!(
            "{} {}",
            self.code,
            self.lines.first().map_or("", String::as_str)
        )
        .trim_end()
        .to_owned()
    }

    /// Every line as the server sent it (`250-...`, then `250 ...`).
    pub fn transcript(&self) -> Vec<String> {
        let last = self.lines.len().saturating_sub(1);
        self.lines
            .iter()
            .enumerate()
            .map(|(at, line)| {
                let separator = if at == last { ' ' } else { '-' };
                format!("{}{separator}{line}", self.code)
                    .trim_end()
                    .to_owned()
            })
            .collect()
    }

    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The reply as a catalogue observation (`text` must outlive it).
    pub fn observation<'a>(&self, text: &'a str) -> Observation<'a> {
        Observation::smtp_reply(self.code, text)
    }

    /// The EHLO keywords (lines after the first), upper-case, e.g. `STARTTLS`, `AUTH PLAIN XOAUTH2`.
    pub fn extensions(&self) -> Vec<String> {
        self.lines
            .iter()
            .skip(1)
            .map(|line| line.trim().to_ascii_uppercase())
            .collect()
    }

    /// Whether an EHLO reply lists `keyword` (the first word of a line).
    pub fn offers(&self, keyword: &str) -> bool {
        self.extensions().iter().any(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|first| first.eq_ignore_ascii_case(keyword))
        })
    }

    /// The SASL mechanisms of an EHLO reply's `AUTH` line (also the obsolete `AUTH=` form).
    pub fn auth_mechanisms(&self) -> Vec<String> {
        let mut mechanisms = Vec::new();
        for line in self.extensions() {
            let rest = line
                .strip_prefix("AUTH ")
                .or_else(|| line.strip_prefix("AUTH="));
            if let Some(rest) = rest {
                for mechanism in rest.split_whitespace() {
                    if !mechanisms.iter().any(|known| known == mechanism) {
                        mechanisms.push(mechanism.to_owned());
                    }
                }
            }
        }
        mechanisms
    }
}

/// One reply line: its code, whether more lines follow (`250-`), and its text.
pub(crate) fn parse_line(line: &str) -> Result<(u16, bool, &str), SmtpError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let malformed = || SmtpError::Malformed(format!("not an SMTP reply line: {}", quote(line)));
    let code = line.get(..3).ok_or_else(malformed)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let code: u16 = code.parse().map_err(|_| malformed())?;
    if !(200..600).contains(&code) {
        return Err(malformed());
    }
    match line.as_bytes().get(3) {
        None => Ok((code, false, "")),
        Some(b' ') => Ok((code, false, &line[4..])),
        Some(b'-') => Ok((code, true, &line[4..])),
        Some(_) => Err(malformed()),
    }
}

fn quote(text: &str) -> String {
    let cut: String = text.chars().take(120).collect();
    format!("{cut:?}")
}

/// An SMTP connection over any stream, every wait bounded.
pub(crate) struct SmtpConn<S> {
    io: BufStream<S>,
    bound: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> SmtpConn<S> {
    pub fn new(stream: S, bound: Duration) -> Self {
        SmtpConn {
            io: BufStream::new(stream),
            bound,
        }
    }

    /// Reads one whole reply (all its lines).
    pub async fn read_reply(&mut self) -> Result<Reply, SmtpError> {
        let bound = self.bound;
        tokio::time::timeout(bound, self.read_reply_unbounded())
            .await
            .map_err(|_elapsed| SmtpError::Timeout(bound))?
    }

    async fn read_reply_unbounded(&mut self) -> Result<Reply, SmtpError> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line().await?;
            let (code, more, text) = parse_line(&line)?;
            lines.push(text.to_owned());
            if !more {
                return Ok(Reply { code, lines });
            }
            if lines.len() >= MAX_LINES {
                return Err(SmtpError::Malformed(format!(
                    "a reply of more than {MAX_LINES} lines"
                )));
            }
        }
    }

    async fn read_line(&mut self) -> Result<String, SmtpError> {
        let mut buffer = Vec::new();
        let read = (&mut self.io)
            .take(MAX_LINE)
            .read_until(b'\n', &mut buffer)
            .await
            .map_err(SmtpError::Io)?;
        if read == 0 {
            return Err(SmtpError::Closed);
        }
        if !buffer.ends_with(b"\n") {
            return Err(SmtpError::Malformed(format!(
                "a line longer than {MAX_LINE} bytes"
            )));
        }
        Ok(String::from_utf8_lossy(&buffer).into_owned())
    }

    /// Sends `line` (no secret in it) and reads the reply.
    pub async fn send(&mut self, line: &str) -> Result<Reply, SmtpError> {
        self.write_line(line.as_bytes()).await?;
        self.read_reply().await
    }

    /// Sends a line holding a secret (an AUTH response) and reads the reply.
    pub async fn send_secret(&mut self, line: &SecretString) -> Result<Reply, SmtpError> {
        self.write_line(line.expose_secret().as_bytes()).await?;
        self.read_reply().await
    }

    async fn write_line(&mut self, line: &[u8]) -> Result<(), SmtpError> {
        let bound = self.bound;
        let write = async {
            self.io.write_all(line).await?;
            self.io.write_all(b"\r\n").await?;
            self.io.flush().await
        };
        tokio::time::timeout(bound, write)
            .await
            .map_err(|_elapsed| SmtpError::Timeout(bound))?
            .map_err(SmtpError::Io)
    }

    /// Gives the stream back for a TLS upgrade. Bytes the server sent after its `220` to STARTTLS are
    /// dropped on purpose: in plain text they could only be an injection.
    pub fn into_inner(self) -> S {
        self.io.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines_are_split_into_code_continuation_and_text() {
        assert_eq!(
            parse_line("250-SIZE 35882577\r\n").unwrap(),
            (250, true, "SIZE 35882577")
        );
        assert_eq!(parse_line("250 OK").unwrap(), (250, false, "OK"));
        assert_eq!(parse_line("354").unwrap(), (354, false, ""));
        for bad in ["", "25", "abc hello", "250xhello", "999 no", "* OK imap"] {
            assert!(parse_line(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_multiline_ehlo_reply_lists_extensions_and_mechanisms() {
        let (client, mut server) = tokio::io::duplex(4096);
        server
            .write_all(
                b"250-smtp.example.com at your service\r\n250-SIZE 35882577\r\n250-STARTTLS\r\n\
                  250-AUTH LOGIN PLAIN XOAUTH2\r\n250-AUTH=PLAIN\r\n250 SMTPUTF8\r\n",
            )
            .await
            .unwrap();
        let mut conn = SmtpConn::new(client, Duration::from_secs(1));

        let reply = conn.read_reply().await.unwrap();

        assert_eq!(reply.code, 250);
        assert_eq!(reply.headline(), "250 smtp.example.com at your service");
        assert!(reply.offers("starttls"));
        assert!(!reply.offers("PIPELINING"));
        assert_eq!(reply.auth_mechanisms(), ["LOGIN", "PLAIN", "XOAUTH2"]);
        let transcript = reply.transcript();
        assert_eq!(transcript[0], "250-smtp.example.com at your service");
        assert_eq!(transcript[5], "250 SMTPUTF8");
    }

    #[tokio::test]
    async fn a_silent_server_times_out_and_a_closed_one_says_so() {
        let (client, server) = tokio::io::duplex(64);
        let mut conn = SmtpConn::new(client, Duration::from_millis(50));
        assert!(conn.read_reply().await.unwrap_err().is_timeout());
        drop(server);
        assert!(matches!(
            conn.read_reply().await.unwrap_err(),
            SmtpError::Closed
        ));
    }

    #[tokio::test]
    async fn an_endless_line_is_refused() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let long = vec![b'2'; 20 * 1024];
            let _ = server.write_all(&long).await;
        });
        let mut conn = SmtpConn::new(client, Duration::from_secs(1));
        assert!(matches!(
            conn.read_reply().await.unwrap_err(),
            SmtpError::Malformed(_)
        ));
    }
}
