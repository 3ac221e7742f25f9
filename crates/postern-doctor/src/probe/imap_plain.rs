//! The plaintext part of an IMAP STARTTLS connection: greeting, CAPABILITY, STARTTLS.
//!
//! Non-goal: anything after the upgrade (`postern-sync` does the real session). Key decision: the
//! capability list must name STARTTLS before it is sent, as `postern-sync` insists, and whatever the
//! server sent after its `OK` to STARTTLS is dropped with the buffer.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

use crate::catalogue::Condition;

const MAX_LINE: u64 = 16 * 1024;
const MAX_LINES: usize = 100;

/// Why the connection could not be brought to the TLS handshake.
#[derive(Debug)]
pub(crate) struct PreambleFailure {
    /// What the catalogue calls it, when it knows.
    pub condition: Option<Condition>,
    /// What happened, for the summary.
    pub detail: String,
    /// The server's lines so far.
    pub evidence: Vec<String>,
}

/// Reads the greeting, checks STARTTLS is offered, sends it, and returns the stream ready for TLS with
/// the server's plaintext lines as evidence.
pub(crate) async fn starttls(
    stream: TcpStream,
    bound: Duration,
) -> Result<(TcpStream, Vec<String>), PreambleFailure> {
    let mut session = Plain {
        reader: BufReader::new(stream),
        evidence: Vec::new(),
        bound,
    };
    let greeting = session
        .line()
        .await
        .map_err(|failure| match failure.condition {
            Some(Condition::ConnectTimeout) => PreambleFailure {
                condition: Some(Condition::NoGreeting),
                detail: format!("no greeting within {bound:?}"),
                evidence: failure.evidence,
            },
            _ => failure,
        })?;
    if !greeting.starts_with("* OK") {
        return Err(session.fail(
            None,
            format!("the server did not greet with OK: {greeting}"),
        ));
    }
    let mut capabilities = bracketed_capabilities(&greeting);
    if capabilities.is_none() {
        let lines = session.command("D1", "CAPABILITY").await?;
        capabilities = lines
            .iter()
            .find_map(|line| line.strip_prefix("* CAPABILITY ").map(str::to_owned));
    }
    let offered = capabilities.as_deref().is_some_and(|list| {
        list.split_whitespace()
            .any(|capability| capability.eq_ignore_ascii_case("STARTTLS"))
    });
    if !offered {
        return Err(session.fail(
            Some(Condition::StartTlsMissing),
            "the server does not offer STARTTLS".to_owned(),
        ));
    }
    let answer = session.command("D2", "STARTTLS").await?;
    let done = answer.last().map_or("", String::as_str);
    if !done.starts_with("D2 OK") {
        return Err(session.fail(
            Some(Condition::StartTlsMissing),
            format!("the server refused STARTTLS: {done}"),
        ));
    }
    let evidence = session.evidence;
    Ok((session.reader.into_inner(), evidence))
}

/// `* OK [CAPABILITY IMAP4rev1 STARTTLS ...] ready` → the list, if the greeting carries one.
fn bracketed_capabilities(greeting: &str) -> Option<String> {
    let inside = greeting.split_once("[CAPABILITY ")?.1;
    Some(inside.split_once(']')?.0.to_owned())
}

struct Plain {
    reader: BufReader<TcpStream>,
    evidence: Vec<String>,
    bound: Duration,
}

impl Plain {
    fn fail(&mut self, condition: Option<Condition>, detail: String) -> PreambleFailure {
        PreambleFailure {
            condition,
            detail,
            evidence: std::mem::take(&mut self.evidence),
        }
    }

    async fn line(&mut self) -> Result<String, PreambleFailure> {
        let mut buffer = Vec::new();
        let mut limited = (&mut self.reader).take(MAX_LINE);
        let read = limited.read_until(b'\n', &mut buffer);
        let read = match tokio::time::timeout(self.bound, read).await {
            Err(_elapsed) => {
                let detail = format!("the server sent nothing within {:?}", self.bound);
                return Err(self.fail(Some(Condition::ConnectTimeout), detail));
            }
            Ok(Err(error)) => return Err(self.fail(None, error.to_string())),
            Ok(Ok(read)) => read,
        };
        if read == 0 {
            return Err(self.fail(None, "the server closed the connection".to_owned()));
        }
        let line = String::from_utf8_lossy(&buffer).trim_end().to_owned();
        self.evidence.push(format!("S: {line}"));
        Ok(line)
    }

    /// Sends `tag command` and reads up to the tagged answer.
    async fn command(&mut self, tag: &str, command: &str) -> Result<Vec<String>, PreambleFailure> {
        self.evidence.push(format!("C: {tag} {command}"));
        let line = format!("{tag} {command}\r\n");
        if let Err(error) = self.reader.get_mut().write_all(line.as_bytes()).await {
            return Err(self.fail(None, error.to_string()));
        }
        let mut lines = Vec::new();
        while lines.len() < MAX_LINES {
            let line = self.line().await?;
            let done = line.starts_with(&format!("{tag} "));
            lines.push(line);
            if done {
                return Ok(lines);
            }
        }
        Err(self.fail(None, format!("no answer to {command}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_read_from_a_greeting() {
        assert_eq!(
            bracketed_capabilities(
                "* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] Dovecot ready."
            ),
            Some("IMAP4rev1 STARTTLS AUTH=PLAIN".to_owned())
        );
        assert_eq!(bracketed_capabilities("* OK ready"), None);
    }
}
