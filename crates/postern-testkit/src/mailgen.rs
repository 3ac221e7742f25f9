//! Realistic test messages, and two fast ways to put them into a real mailbox.
//!
//! - [`MailGen`] builds messages with mail-builder: names (some non-ASCII), To/Cc, subjects, dates,
//!   Message-IDs, text + HTML bodies, some attachments, and threads linked by In-Reply-To/References.
//!   The output is a pure function of the seed (rand's `StdRng`), down to the MIME boundaries, so a
//!   failing test can be replayed byte for byte.
//! - [`lmtp_deliver`] delivers as an MTA would (new mail "arrives"); [`ImapAppender`] fills a mailbox
//!   with MULTIAPPEND and LITERAL+ (~9k messages/s from Dovecot here, against ~170/s one APPEND per
//!   round trip).
//!
//! Non-goal: a general IMAP or LMTP client; these speak just enough of each protocol to load data
//! and treat anything unexpected as an error.
//!
//! Key decision: raw protocol lines over a `TcpStream` rather than an IMAP library: the clients the
//! product uses (async-imap) have neither LITERAL+ nor MULTIAPPEND, which is what makes filling
//! 10,000 messages take a second instead of a minute.

use std::net::SocketAddr;
use std::time::Duration;

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::dovecot::HarnessError;

/// 2026-01-01T00:00:00Z: generated dates start here and move forward.
const FIRST_DATE: i64 = 1_767_225_600;
/// Messages per MULTIAPPEND command: large enough to amortise the round trip, small enough to
/// keep one command's transaction modest.
const APPEND_BATCH: usize = 500;
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Share of messages with an attachment, and the attachment sizes: real attachments are larger,
/// but bytes are what makes filling a mailbox slow, and MIME structure is what tests exercise.
const DEFAULT_ATTACHMENT_RATIO: f64 = 0.1;
const ATTACHMENT_BYTES: std::ops::Range<usize> = 256..2048;

const FIRST_NAMES: &[&str] = &[
    "Alice",
    "Bob",
    "Chloé",
    "David",
    "Emma",
    "François",
    "Grace",
    "Hiro",
    "Ingrid",
    "Jamal",
    "Katarzyna",
    "Liam",
    "Mei",
    "Noah",
    "Olivia",
    "Priya",
    "Quentin",
    "Rosa",
    "Søren",
    "Tomás",
];
const LAST_NAMES: &[&str] = &[
    "Anderson", "Bauer", "Chen", "Dubois", "Evans", "Fischer", "García", "Hansen", "Ito", "Jensen",
    "Kowalski", "López", "Müller", "Nakamura", "O'Brien", "Petrov", "Rossi", "Smith",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "example.net",
    "corp.example",
    "mail.example",
];
const TOPICS: &[&str] = &[
    "Quarterly report",
    "Lunch on Friday?",
    "Invoice #4411",
    "Project kickoff",
    "Travel plans",
    "Release notes 2.3",
    "Budget review",
    "Café meeting notes",
    "Server maintenance window",
    "Welcome aboard!",
    "Re-scheduling our call",
    "Contract draft — please review",
    "Photos from the trip",
    "Weekly sync agenda",
];
const WORDS: &[&str] = &[
    "the", "meeting", "schedule", "please", "review", "attached", "document", "before", "tomorrow",
    "we", "should", "discuss", "numbers", "team", "thanks", "update", "deadline", "customer",
    "feedback", "draft", "next", "week", "plan", "budget", "server", "release", "question",
    "about", "invoice", "travel", "lunch", "agenda", "notes", "project", "and", "with", "for",
    "our", "your", "latest", "version", "changes", "approved", "pending",
];
const ATTACHMENTS: &[(&str, &str)] = &[
    ("application/pdf", "report.pdf"),
    ("image/png", "screenshot.png"),
    ("text/csv", "figures.csv"),
    ("application/zip", "archive.zip"),
];

/// One generated message: the raw RFC 5322 bytes plus the facts tests assert on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedMessage {
    /// The Message-ID, without angle brackets.
    pub message_id: String,
    /// Subject as written (before header encoding).
    pub subject: String,
    /// Sender address.
    pub from: String,
    /// To addresses (the mailbox owner is always among them).
    pub to: Vec<String>,
    /// Cc addresses (may be empty).
    pub cc: Vec<String>,
    /// Date header as a Unix timestamp.
    pub date: i64,
    /// Message-ID (no brackets) this one replies to.
    pub in_reply_to: Option<String>,
    /// Thread ancestry (no brackets), oldest first.
    pub references: Vec<String>,
    /// File name of the attachment, if the message has one.
    pub attachment: Option<String>,
    /// The complete message, CRLF line endings.
    pub raw: Vec<u8>,
}

/// Deterministic message generator for one mailbox owner.
#[derive(Debug)]
pub struct MailGen {
    rng: StdRng,
    owner: String,
    sequence: u64,
    clock: i64,
    attachment_ratio: f64,
}

impl MailGen {
    /// A generator whose output depends only on `seed` and `owner` (the address every message
    /// is sent to).
    pub fn new(seed: u64, owner: impl Into<String>) -> Self {
        MailGen {
            rng: StdRng::seed_from_u64(seed),
            owner: owner.into(),
            sequence: 0,
            clock: FIRST_DATE,
            attachment_ratio: DEFAULT_ATTACHMENT_RATIO,
        }
    }

    /// Sets the share of messages (0.0 to 1.0) that carry an attachment; 0.0 makes the leanest
    /// mailboxes for bulk tests (Dovecot appends ~6 MB/s here, so bytes cost time).
    pub fn with_attachment_ratio(mut self, ratio: f64) -> Self {
        self.attachment_ratio = ratio.clamp(0.0, 1.0);
        self
    }

    /// One message starting a new conversation.
    pub fn message(&mut self) -> GeneratedMessage {
        let subject = (*self.pick(TOPICS)).to_owned();
        let from = self.person();
        self.build(subject, from, None)
    }

    /// A conversation of `len` messages: each replies to the previous one ("Re: "), with
    /// In-Reply-To and the growing References chain; senders alternate with the owner.
    pub fn thread(&mut self, len: usize) -> Vec<GeneratedMessage> {
        let mut thread: Vec<GeneratedMessage> = Vec::with_capacity(len);
        let Some(first) = (len > 0).then(|| self.message()) else {
            return thread;
        };
        thread.push(first);
        while thread.len() < len {
            let parent = &thread[thread.len() - 1];
            let from = if thread.len() % 2 == 1 {
                (String::new(), self.owner.clone())
            } else {
                self.person()
            };
            let subject = format!("Re: {}", thread[0].subject);
            let mut references = parent.references.clone();
            references.push(parent.message_id.clone());
            let reply = self.build(subject, from, Some(references));
            thread.push(reply);
        }
        thread
    }

    /// `count` messages, about a third of them in threads of two to four.
    pub fn messages(&mut self, count: usize) -> Vec<GeneratedMessage> {
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let len = if self.rng.random_bool(0.3) {
                self.rng.random_range(2..=4)
            } else {
                1
            };
            out.extend(self.thread(len.min(count - out.len())));
        }
        out
    }

    /// Only the raw bytes of [`MailGen::messages`], ready for LMTP or APPEND.
    pub fn raw_messages(&mut self, count: usize) -> Vec<Vec<u8>> {
        self.messages(count)
            .into_iter()
            .map(|message| message.raw)
            .collect()
    }

    /// One message carrying `data` as the attachment `file_name` (`content_type`) after a short
    /// text part: for size tests (a 30 MB file), where the random attachments are too small.
    pub fn message_with_attachment(
        &mut self,
        file_name: &str,
        content_type: &str,
        data: Vec<u8>,
    ) -> GeneratedMessage {
        self.sequence += 1;
        self.clock += 60;
        let from = self.person();
        let subject = format!("{file_name} attached");
        let message_id = format!("{}.attached@{}", self.sequence, address_domain(&from.1));
        let body = MimePart::new(
            self.multipart("mixed"),
            vec![
                MimePart::new("text/plain", format!("Hi,\n\n{file_name} is attached.\n")),
                MimePart::new(content_type.to_owned(), data).attachment(file_name.to_owned()),
            ],
        );
        let builder = MessageBuilder::new()
            .from(from.clone())
            .to(self.owner.clone())
            .subject(subject.clone())
            .date(self.clock)
            .message_id(message_id.clone())
            .body(body);
        let mut raw = Vec::new();
        // Writing into a Vec cannot fail; keep the message empty rather than panic if it ever did.
        let _ = builder.write_to(&mut raw);
        GeneratedMessage {
            message_id,
            subject,
            from: from.1,
            to: vec![self.owner.clone()],
            cc: Vec::new(),
            date: self.clock,
            in_reply_to: None,
            references: Vec::new(),
            attachment: Some(file_name.to_owned()),
            raw,
        }
    }

    fn build(
        &mut self,
        subject: String,
        from: (String, String),
        references: Option<Vec<String>>,
    ) -> GeneratedMessage {
        self.sequence += 1;
        self.clock += self.rng.random_range(60..4 * 3600);
        let message_id = format!(
            "{}.{:016x}@{}",
            self.sequence,
            self.rng.random::<u64>(),
            address_domain(&from.1)
        );
        let mut to = vec![(String::new(), self.owner.clone())];
        if self.rng.random_bool(0.3) {
            to.push(self.person());
        }
        let cc: Vec<(String, String)> = (0..self.rng.random_range(0..3))
            .map(|_| self.person())
            .collect();
        let attachment = self
            .rng
            .random_bool(self.attachment_ratio)
            .then(|| *self.pick(ATTACHMENTS));
        let body = self.body(&subject, attachment);
        let in_reply_to = references.as_ref().and_then(|refs| refs.last().cloned());

        let mut builder = MessageBuilder::new()
            .from(from.clone())
            .to(to.clone())
            .subject(subject.clone())
            .date(self.clock)
            .message_id(message_id.clone())
            .body(body);
        if !cc.is_empty() {
            builder = builder.cc(cc.clone());
        }
        if let Some(references) = &references {
            builder = builder
                .in_reply_to(in_reply_to.clone().unwrap_or_default())
                .references(references.clone());
        }
        let mut raw = Vec::new();
        // Writing into a Vec cannot fail; keep the message empty rather than panic if it ever did.
        let _ = builder.write_to(&mut raw);

        GeneratedMessage {
            message_id,
            subject,
            from: from.1,
            to: to.into_iter().map(|(_, address)| address).collect(),
            cc: cc.into_iter().map(|(_, address)| address).collect(),
            date: self.clock,
            in_reply_to,
            references: references.unwrap_or_default(),
            attachment: attachment.map(|(_, name)| name.to_owned()),
            raw,
        }
    }

    /// text/plain (+ text/html most of the time) (+ an attachment sometimes), with boundaries
    /// derived from the sequence number: mail-builder's own are time-based.
    fn body(
        &mut self,
        subject: &str,
        attachment: Option<(&'static str, &'static str)>,
    ) -> MimePart<'static> {
        let paragraphs: Vec<String> = (0..self.rng.random_range(1..5))
            .map(|_| self.sentence(8, 40))
            .collect();
        let text = format!(
            "Hi,\n\n{}\n\n-- \nSent by mailgen\n",
            paragraphs.join("\n\n")
        );
        let mut content = if self.rng.random_bool(0.8) {
            let html = format!(
                "<html><body><h3>{subject}</h3>{}</body></html>",
                paragraphs
                    .iter()
                    .map(|p| format!("<p>{p}</p>"))
                    .collect::<String>()
            );
            MimePart::new(
                self.multipart("alternative"),
                vec![
                    MimePart::new("text/plain", text),
                    MimePart::new("text/html", html),
                ],
            )
        } else {
            MimePart::new("text/plain", text)
        };
        if let Some((content_type, file_name)) = attachment {
            let size = self.rng.random_range(ATTACHMENT_BYTES);
            let mut bytes = vec![0u8; size];
            self.rng.fill(bytes.as_mut_slice());
            let file = MimePart::new(content_type, bytes).attachment(file_name);
            content = MimePart::new(self.multipart("mixed"), vec![content, file]);
        }
        content
    }

    fn multipart(&self, subtype: &str) -> ContentType<'static> {
        ContentType::new(format!("multipart/{subtype}")).attribute(
            "boundary",
            format!("mailgen-{subtype}-{:06}", self.sequence),
        )
    }

    fn sentence(&mut self, min_words: usize, max_words: usize) -> String {
        let count = self.rng.random_range(min_words..max_words);
        let words: Vec<&str> = (0..count).map(|_| *self.pick(WORDS)).collect();
        let mut sentence = words.join(" ");
        if let Some(first) = sentence.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        sentence.push('.');
        sentence
    }

    /// A (display name, address) pair.
    fn person(&mut self) -> (String, String) {
        let first = *self.pick(FIRST_NAMES);
        let last = *self.pick(LAST_NAMES);
        let domain = *self.pick(DOMAINS);
        let local: String = format!("{first}.{last}")
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        (format!("{first} {last}"), format!("{local}@{domain}"))
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        // Every list above is non-empty.
        &items[self.rng.random_range(0..items.len())]
    }
}

fn address_domain(address: &str) -> &str {
    address
        .rsplit_once('@')
        .map_or("mailgen.test", |(_, domain)| domain)
}

/// A line-oriented connection with a timeout on every read.
struct LineConn {
    reader: BufReader<TcpStream>,
    protocol: &'static str,
}

impl LineConn {
    async fn connect(addr: SocketAddr, protocol: &'static str) -> Result<Self, HarnessError> {
        let stream = TcpStream::connect(addr).await.map_err(|source| {
            HarnessError::io_at(format!("connecting to {protocol} at {addr}"), source)
        })?;
        let _ = stream.set_nodelay(true);
        Ok(LineConn {
            reader: BufReader::new(stream),
            protocol,
        })
    }

    async fn read_line(&mut self) -> Result<String, HarnessError> {
        let mut line = Vec::new();
        let read = tokio::time::timeout(REPLY_TIMEOUT, self.reader.read_until(b'\n', &mut line));
        match read.await {
            Err(_) => Err(HarnessError::Timeout {
                what: format!("a {} reply", self.protocol),
                waited: REPLY_TIMEOUT,
            }),
            Ok(Err(source)) => Err(HarnessError::io_at(
                format!("reading from {}", self.protocol),
                source,
            )),
            Ok(Ok(0)) => Err(HarnessError::io_at(
                format!("reading from {}", self.protocol),
                std::io::ErrorKind::UnexpectedEof.into(),
            )),
            Ok(Ok(_)) => Ok(String::from_utf8_lossy(&line).trim_end().to_owned()),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), HarnessError> {
        self.reader
            .get_mut()
            .write_all(bytes)
            .await
            .map_err(|source| HarnessError::io_at(format!("writing to {}", self.protocol), source))
    }

    /// Reads an SMTP/LMTP reply (all its lines) and checks its code starts with `expected`.
    async fn expect_smtp(&mut self, step: &str, expected: char) -> Result<(), HarnessError> {
        let mut reply = String::new();
        loop {
            let line = self.read_line().await?;
            reply.push_str(&line);
            // "250-..." continues, "250 ..." (or a bare code) ends the reply.
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
            reply.push('\n');
        }
        if reply.starts_with(expected) {
            Ok(())
        } else {
            Err(self.unexpected(step, reply))
        }
    }

    fn unexpected(&self, step: &str, reply: String) -> HarnessError {
        HarnessError::Protocol {
            protocol: self.protocol,
            step: step.to_owned(),
            reply,
        }
    }
}

/// Delivers `messages` to `rcpt` over LMTP (LHLO once, then MAIL/RCPT/DATA per message on the
/// same connection). Each message lands in the recipient's INBOX.
pub async fn lmtp_deliver(
    addr: SocketAddr,
    rcpt: &str,
    messages: &[Vec<u8>],
) -> Result<(), HarnessError> {
    let mut conn = LineConn::connect(addr, "LMTP").await?;
    conn.expect_smtp("greeting", '2').await?;
    conn.write(b"LHLO mailgen.test\r\n").await?;
    conn.expect_smtp("LHLO", '2').await?;
    for message in messages {
        conn.write(b"MAIL FROM:<mailgen@mailgen.test>\r\n").await?;
        conn.expect_smtp("MAIL FROM", '2').await?;
        conn.write(format!("RCPT TO:<{rcpt}>\r\n").as_bytes())
            .await?;
        conn.expect_smtp("RCPT TO", '2').await?;
        conn.write(b"DATA\r\n").await?;
        conn.expect_smtp("DATA", '3').await?;
        conn.write(&dot_stuffed(message)).await?;
        // LMTP answers once per recipient; there is exactly one.
        conn.expect_smtp("end of DATA", '2').await?;
    }
    conn.write(b"QUIT\r\n").await?;
    conn.expect_smtp("QUIT", '2').await
}

/// The DATA payload: CRLF line endings, leading dots doubled, terminated by `.` on its own line.
fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let body = message.strip_suffix(b"\n").unwrap_or(message);
    for line in body.split(|&byte| byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// An IMAP connection logged in with a password, for loading mailboxes fast.
pub struct ImapAppender {
    conn: LineConn,
    next_tag: u32,
    literal_plus: bool,
    multiappend: bool,
}

impl ImapAppender {
    /// Connects to plain IMAP at `addr` and logs in with LOGIN.
    pub async fn login(addr: SocketAddr, user: &str, password: &str) -> Result<Self, HarnessError> {
        let mut conn = LineConn::connect(addr, "IMAP").await?;
        let greeting = conn.read_line().await?;
        if !greeting.starts_with("* OK") {
            return Err(conn.unexpected("greeting", greeting));
        }
        let mut appender = ImapAppender {
            conn,
            next_tag: 1,
            literal_plus: false,
            multiappend: false,
        };
        let command = format!("LOGIN {} {}", quoted(user), quoted(password));
        let done = appender.command("LOGIN", &command).await?;
        if !done.contains("[CAPABILITY ") {
            appender.command("CAPABILITY", "CAPABILITY").await?;
        }
        Ok(appender)
    }

    /// Creates `mailbox` unless it exists already. Names are sent as quoted ASCII (no modified
    /// UTF-7 encoding).
    pub async fn create_mailbox(&mut self, mailbox: &str) -> Result<(), HarnessError> {
        if mailbox.eq_ignore_ascii_case("INBOX") {
            return Ok(());
        }
        match self
            .command("CREATE", &format!("CREATE {}", quoted(mailbox)))
            .await
        {
            Err(HarnessError::Protocol { reply, .. }) if reply.contains("[ALREADYEXISTS]") => {
                Ok(())
            }
            other => other.map(drop),
        }
    }

    /// Appends every message to `mailbox` with `flags` (e.g. `&["\\Seen"]`), in MULTIAPPEND
    /// batches when the server offers it. Returns the number appended.
    pub async fn append_all(
        &mut self,
        mailbox: &str,
        flags: &[&str],
        messages: &[Vec<u8>],
    ) -> Result<usize, HarnessError> {
        let batch = if self.multiappend { APPEND_BATCH } else { 1 };
        for chunk in messages.chunks(batch) {
            self.append_batch(mailbox, flags, chunk).await?;
        }
        Ok(messages.len())
    }

    /// Deletes `mailbox` and every message in it.
    pub async fn delete_mailbox(&mut self, mailbox: &str) -> Result<(), HarnessError> {
        self.command("DELETE", &format!("DELETE {}", quoted(mailbox)))
            .await
            .map(drop)
    }

    /// Every UID in `mailbox`, ascending, as the server sees it now (`EXAMINE`, so nothing is
    /// marked seen, then `UID SEARCH ALL`).
    pub async fn uids(&mut self, mailbox: &str) -> Result<Vec<u32>, HarnessError> {
        self.command("EXAMINE", &format!("EXAMINE {}", quoted(mailbox)))
            .await?;
        let tag = self.tag();
        self.conn
            .write(format!("{tag} UID SEARCH ALL\r\n").as_bytes())
            .await?;
        let mut uids = Vec::new();
        loop {
            let line = self.conn.read_line().await?;
            if let Some(found) = line.strip_prefix("* SEARCH") {
                let parsed: Result<Vec<u32>, _> =
                    found.split_whitespace().map(str::parse).collect();
                uids.extend(parsed.map_err(|_| self.conn.unexpected("UID SEARCH", line.clone()))?);
            } else if let Some(status) = line.strip_prefix(&format!("{tag} ")) {
                if !status.starts_with("OK") {
                    return Err(self.conn.unexpected("UID SEARCH", line));
                }
                uids.sort_unstable();
                return Ok(uids);
            }
        }
    }

    /// Logs out and closes the connection.
    pub async fn logout(mut self) -> Result<(), HarnessError> {
        self.command("LOGOUT", "LOGOUT").await.map(drop)
    }

    async fn append_batch(
        &mut self,
        mailbox: &str,
        flags: &[&str],
        messages: &[Vec<u8>],
    ) -> Result<(), HarnessError> {
        let tag = self.tag();
        let flag_list = format!("({})", flags.join(" "));
        let mut pending = format!("{tag} APPEND {}", quoted(mailbox)).into_bytes();
        for message in messages {
            pending.extend_from_slice(format!(" {flag_list} ").as_bytes());
            if self.literal_plus {
                pending.extend_from_slice(format!("{{{}+}}\r\n", message.len()).as_bytes());
            } else {
                // A synchronising literal: wait for the server's "+" before sending the bytes.
                pending.extend_from_slice(format!("{{{}}}\r\n", message.len()).as_bytes());
                self.conn.write(&std::mem::take(&mut pending)).await?;
                self.expect_continuation("APPEND literal").await?;
            }
            pending.extend_from_slice(message);
        }
        pending.extend_from_slice(b"\r\n");
        self.conn.write(&pending).await?;
        self.read_until_tagged(&tag, "APPEND").await.map(drop)
    }

    async fn command(&mut self, step: &str, command: &str) -> Result<String, HarnessError> {
        let tag = self.tag();
        self.conn
            .write(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        self.read_until_tagged(&tag, step).await
    }

    /// Reads responses until the one tagged `tag`; notes capabilities on the way. Returns the
    /// tagged OK line or a Protocol error holding the NO/BAD line.
    async fn read_until_tagged(&mut self, tag: &str, step: &str) -> Result<String, HarnessError> {
        loop {
            let line = self.conn.read_line().await?;
            if line.contains("CAPABILITY ") {
                self.note_capabilities(&line);
            }
            let Some(status) = line
                .strip_prefix(tag)
                .and_then(|rest| rest.strip_prefix(' '))
            else {
                continue;
            };
            return if status.starts_with("OK") {
                Ok(line)
            } else {
                Err(self.conn.unexpected(step, line))
            };
        }
    }

    async fn expect_continuation(&mut self, step: &str) -> Result<(), HarnessError> {
        let line = self.conn.read_line().await?;
        if line.starts_with('+') {
            Ok(())
        } else {
            Err(self.conn.unexpected(step, line))
        }
    }

    fn note_capabilities(&mut self, line: &str) {
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == ']' || c == '[')
            .collect();
        self.literal_plus = words.contains(&"LITERAL+");
        self.multiappend = words.contains(&"MULTIAPPEND");
    }

    fn tag(&mut self) -> String {
        self.next_tag += 1;
        format!("m{}", self.next_tag)
    }
}

/// Logs in as `user`, creates `mailbox` if needed and appends every message marked `\Seen`.
pub async fn imap_fill(
    addr: SocketAddr,
    user: &str,
    password: &str,
    mailbox: &str,
    messages: &[Vec<u8>],
) -> Result<usize, HarnessError> {
    let mut appender = ImapAppender::login(addr, user, password).await?;
    appender.create_mailbox(mailbox).await?;
    let appended = appender.append_all(mailbox, &["\\Seen"], messages).await?;
    appender.logout().await?;
    Ok(appended)
}

/// An IMAP quoted string.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn text(message: &GeneratedMessage) -> String {
        String::from_utf8(message.raw.clone()).unwrap()
    }

    #[test]
    fn same_seed_gives_identical_bytes() {
        let a = MailGen::new(7, "owner@example.test").messages(50);
        let b = MailGen::new(7, "owner@example.test").messages(50);
        assert_eq!(a, b);
        let c = MailGen::new(8, "owner@example.test").messages(50);
        assert_ne!(a, c);
    }

    #[test]
    fn messages_carry_the_usual_headers() {
        let message = MailGen::new(1, "owner@example.test").message();
        let text = text(&message);
        for header in [
            "From: ",
            "To: ",
            "Subject: ",
            "Date: ",
            "Message-ID: <",
            "MIME-Version: 1.0",
        ] {
            assert!(text.contains(header), "missing {header}:\n{text}");
        }
        assert!(text.contains("owner@example.test"));
        assert!(text.contains(&format!("<{}>", message.message_id)));
        assert!(
            message
                .raw
                .windows(2)
                .filter(|w| w[1] == b'\n')
                .all(|w| w[0] == b'\r')
        );
    }

    #[test]
    fn threads_link_replies_to_their_parents() {
        let thread = MailGen::new(2, "owner@example.test").thread(3);
        assert_eq!(thread.len(), 3);
        assert_eq!(thread[1].in_reply_to.as_ref(), Some(&thread[0].message_id));
        assert_eq!(
            thread[2].references,
            [thread[0].message_id.clone(), thread[1].message_id.clone()]
        );
        assert!(thread[2].subject.starts_with("Re: "));
        assert!(text(&thread[2]).contains(&format!("In-Reply-To: <{}>", thread[1].message_id)));
        assert!(thread[1].date > thread[0].date);
    }

    #[test]
    fn some_messages_have_attachments_and_html() {
        let messages = MailGen::new(3, "owner@example.test").messages(100);
        let with_attachment = messages.iter().filter(|m| m.attachment.is_some()).count();
        assert!((3..30).contains(&with_attachment), "{with_attachment}");
        let attached = messages.iter().find(|m| m.attachment.is_some()).unwrap();
        let raw = text(attached);
        assert!(raw.contains("multipart/mixed"), "{raw}");
        assert!(raw.contains("Content-Disposition: attachment"), "{raw}");
        assert!(messages.iter().any(|m| text(m).contains("text/html")));
    }

    #[test]
    fn a_given_attachment_is_carried_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let message = MailGen::new(4, "owner@example.test").message_with_attachment(
            "big.bin",
            "application/octet-stream",
            data.clone(),
        );
        let raw = text(&message);
        assert!(raw.contains("filename=\"big.bin\""), "{}", &raw[..600]);
        assert!(raw.contains("Content-Transfer-Encoding: base64"));
        assert!(raw.len() > data.len() * 4 / 3, "{}", raw.len());
        assert_eq!(message.attachment.as_deref(), Some("big.bin"));
    }

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_terminates() {
        assert_eq!(dot_stuffed(b"a\r\n.b\nc"), b"a\r\n..b\r\nc\r\n.\r\n");
        assert_eq!(dot_stuffed(b"x\r\n"), b"x\r\n.\r\n");
    }

    #[test]
    fn quoted_escapes_backslash_and_quote() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
