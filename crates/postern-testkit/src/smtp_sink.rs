//! An SMTP sink on 127.0.0.1: the relay Dovecot's submission service hands outgoing mail to, so
//! tests can assert what was sent, and make "the next hop" fail on demand ([`SinkMode`]).
//!
//! Why hand-written: it is a test fake of a tiny protocol subset (EHLO/HELO, MAIL, RCPT, DATA,
//! RSET, NOOP, QUIT; no AUTH, no TLS, no BDAT), about a hundred lines that the tests fully control,
//! whereas a real MTA (Postfix) needs root and a system install, and SMTP server crates bring far
//! more than needed without the fault modes.
//!
//! Non-goal: standards-complete SMTP (no size limits beyond a sanity cap, no address validation).
//!
//! Key decision: the sink runs on its own thread with its own Tokio runtime, so one sink can be shared
//! by every test of a binary even though each `#[tokio::test]` has (and drops) its own runtime.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, mpsc};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::dovecot::HarnessError;

/// Largest message the sink accepts; a guard against a runaway test, not a protocol limit.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// How the sink answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkMode {
    /// Accept every message.
    Accept,
    /// Answer `RCPT` with `451 4.3.0` (try again later).
    TempFail,
    /// Answer `RCPT` with `550 5.7.1` (rejected for good).
    PermFail,
    /// Stop listening and drop open connections: connections are refused until the mode changes.
    Down,
}

/// A message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The `MAIL FROM` address, without angle brackets (empty for the null sender).
    pub mail_from: String,
    /// The `RCPT TO` addresses, without angle brackets, in order.
    pub rcpt_to: Vec<String>,
    /// The message as transmitted after `DATA`, dot-unstuffed, CRLF line endings, without the
    /// terminating `.` line.
    pub data: Vec<u8>,
    /// When the final `.` arrived.
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Store {
    messages: Vec<ReceivedMessage>,
}

#[derive(Debug)]
struct Shared {
    store: Mutex<Store>,
    /// Bumped on every stored message; waiters re-check their condition when it changes.
    stored: watch::Sender<u64>,
    mode: watch::Sender<SinkMode>,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A mode change as carried out by the sink's thread, with the error if the port could not be
/// opened again.
type Applied = (SinkMode, Option<std::io::Error>);

/// A running SMTP sink; its thread stops when the sink is dropped.
#[derive(Debug)]
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    mode_applied: Mutex<mpsc::Receiver<Applied>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

static SHARED_SINK: OnceLock<Result<SmtpSink, HarnessError>> = OnceLock::new();

impl SmtpSink {
    /// Starts a sink on a free loopback port, in [`SinkMode::Accept`].
    pub fn start() -> Result<SmtpSink, HarnessError> {
        let (stored, _) = watch::channel(0);
        let (mode, _) = watch::channel(SinkMode::Accept);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            stored,
            mode,
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
            .map_err(|source| HarnessError::io_at("binding the SMTP sink", source))?;
        let addr = listener
            .local_addr()
            .map_err(|source| HarnessError::io_at("reading the SMTP sink's address", source))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| HarnessError::io_at("building the SMTP sink's runtime", source))?;
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel();
        let (applied_tx, applied_rx) = mpsc::channel();
        let task_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("smtp-sink".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        () = serve(listener, addr, task_shared, applied_tx) => {}
                        _ = shutdown_rx => {}
                    }
                });
            })
            .map_err(|source| HarnessError::io_at("spawning the SMTP sink's thread", source))?;
        Ok(SmtpSink {
            addr,
            shared,
            mode_applied: Mutex::new(applied_rx),
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// The process-wide sink, started on first use and shared by every test of the binary.
    ///
    /// Tests sharing it should look for their own recipients ([`SmtpSink::wait_for_rcpt`]) rather
    /// than count all messages, and leave its mode alone (use a private sink for fault tests).
    pub fn shared() -> Result<&'static SmtpSink, &'static HarnessError> {
        SHARED_SINK.get_or_init(SmtpSink::start).as_ref()
    }

    /// Where the sink listens (also while [`SinkMode::Down`]: the port it will listen on again).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every message accepted so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.shared.store().messages.clone()
    }

    /// Forgets all stored messages.
    pub fn clear(&self) {
        self.shared.store().messages.clear();
    }

    /// Changes how the sink answers; returns once the change is in effect (for [`SinkMode::Down`]:
    /// the port is closed; leaving `Down`: the port listens again).
    pub fn set_mode(&self, mode: SinkMode) -> Result<(), HarnessError> {
        let applied = self
            .mode_applied
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.shared.mode.send_replace(mode);
        let deadline = Instant::now() + CONTROL_TIMEOUT;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match applied.recv_timeout(remaining) {
                // Acknowledgements of earlier changes may still be queued: skip them.
                Ok((applied_mode, _)) if applied_mode != mode => {}
                Ok((_, None)) => return Ok(()),
                Ok((_, Some(source))) => {
                    return Err(HarnessError::io_at(
                        format!("re-opening the SMTP sink on {}", self.addr),
                        source,
                    ));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(HarnessError::Timeout {
                        what: format!("the SMTP sink to switch to {mode:?}"),
                        waited: CONTROL_TIMEOUT,
                    });
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(HarnessError::SinkStopped),
            }
        }
    }

    /// The current mode.
    pub fn mode(&self) -> SinkMode {
        *self.shared.mode.borrow()
    }

    /// Waits until at least `count` messages are stored; returns them all.
    pub async fn wait_for(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, HarnessError> {
        self.wait_until(timeout, format!("{count} relayed message(s)"), |store| {
            (store.messages.len() >= count).then(|| store.messages.clone())
        })
        .await
    }

    /// Waits for the first message addressed (in the envelope) to `rcpt`.
    pub async fn wait_for_rcpt(
        &self,
        rcpt: &str,
        timeout: Duration,
    ) -> Result<ReceivedMessage, HarnessError> {
        self.wait_until(timeout, format!("a message to {rcpt}"), |store| {
            store
                .messages
                .iter()
                .find(|message| {
                    message
                        .rcpt_to
                        .iter()
                        .any(|to| to.eq_ignore_ascii_case(rcpt))
                })
                .cloned()
        })
        .await
    }

    async fn wait_until<T>(
        &self,
        timeout: Duration,
        what: String,
        mut ready: impl FnMut(&Store) -> Option<T>,
    ) -> Result<T, HarnessError> {
        let mut stored = self.shared.stored.subscribe();
        let wait = async {
            loop {
                if let Some(found) = ready(&self.shared.store()) {
                    return Ok(found);
                }
                if stored.changed().await.is_err() {
                    return Err(HarnessError::SinkStopped);
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Err(HarnessError::Timeout {
                what,
                waited: timeout,
            }))
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections while the mode is not `Down`; rebinds the same port when it comes back up.
async fn serve(
    listener: std::net::TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    applied: mpsc::Sender<Applied>,
) {
    let mut mode_rx = shared.mode.subscribe();
    let mut listener = TcpListener::from_std(listener);
    loop {
        let mode = *mode_rx.borrow_and_update();
        let mut error = None;
        if mode == SinkMode::Down {
            listener = Err(std::io::ErrorKind::NotConnected.into());
        } else if listener.is_err() {
            listener = TcpListener::bind(addr).await;
            error = listener
                .as_ref()
                .err()
                .map(|err| std::io::Error::new(err.kind(), err.to_string()));
        }
        let _ = applied.send((mode, error));
        accept_until_mode_changes(listener.as_ref().ok(), &shared, &mut mode_rx).await;
    }
}

async fn accept_until_mode_changes(
    listener: Option<&TcpListener>,
    shared: &Arc<Shared>,
    mode_rx: &mut watch::Receiver<SinkMode>,
) {
    loop {
        let accepted = async {
            match listener {
                Some(listener) => listener.accept().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = mode_rx.changed() => {
                if changed.is_err() {
                    std::future::pending::<()>().await;
                }
                return;
            }
            Some((stream, _)) = accepted => {
                tokio::spawn(session_until_down(stream, Arc::clone(shared)));
            }
        }
    }
}

/// Runs one SMTP session, cutting it off when the sink goes `Down`.
async fn session_until_down(stream: TcpStream, shared: Arc<Shared>) {
    let mut mode_rx = shared.mode.subscribe();
    tokio::select! {
        _ = session(stream, &shared) => {}
        _ = mode_rx.wait_for(|mode| *mode == SinkMode::Down) => {}
    }
}

#[derive(Default)]
struct Envelope {
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

async fn session(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write
        .write_all(b"220 localhost postern-testkit SMTP sink ready\r\n")
        .await?;
    let mut envelope = Envelope::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let command = String::from_utf8_lossy(&line).trim_end().to_owned();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let mode = *shared.mode.borrow();
        let reply = match verb.as_str() {
            "EHLO" => "250-localhost\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8".to_owned(),
            "HELO" => "250 localhost".to_owned(),
            "NOOP" => "250 2.0.0 OK".to_owned(),
            "RSET" => {
                envelope = Envelope::default();
                "250 2.0.0 OK".to_owned()
            }
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            "MAIL" => match path_argument(&command, "FROM:") {
                Some(from) => {
                    envelope = Envelope {
                        mail_from: Some(from),
                        rcpt_to: Vec::new(),
                    };
                    "250 2.1.0 OK".to_owned()
                }
                None => "501 5.5.4 Syntax: MAIL FROM:<address>".to_owned(),
            },
            "RCPT" => rcpt(&command, mode, &mut envelope),
            "DATA" => {
                let Some(mail_from) = envelope.mail_from.clone() else {
                    write.write_all(b"503 5.5.1 MAIL first\r\n").await?;
                    continue;
                };
                if envelope.rcpt_to.is_empty() {
                    write.write_all(b"554 5.5.1 No valid recipients\r\n").await?;
                    continue;
                }
                write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let Some(data) = read_data(&mut reader).await? else {
                    write.write_all(b"552 5.3.4 Message too big\r\n").await?;
                    return Ok(());
                };
                store(shared, mail_from, std::mem::take(&mut envelope.rcpt_to), data);
                envelope = Envelope::default();
                "250 2.0.0 OK queued".to_owned()
            }
            _ => "502 5.5.2 Command not recognized".to_owned(),
        };
        write.write_all(reply.as_bytes()).await?;
        write.write_all(b"\r\n").await?;
    }
}

fn rcpt(command: &str, mode: SinkMode, envelope: &mut Envelope) -> String {
    if envelope.mail_from.is_none() {
        return "503 5.5.1 MAIL first".to_owned();
    }
    let Some(to) = path_argument(command, "TO:") else {
        return "501 5.5.4 Syntax: RCPT TO:<address>".to_owned();
    };
    match mode {
        SinkMode::TempFail => "451 4.3.0 Try again later (test sink TempFail)".to_owned(),
        SinkMode::PermFail => "550 5.7.1 Rejected (test sink PermFail)".to_owned(),
        SinkMode::Accept | SinkMode::Down => {
            envelope.rcpt_to.push(to);
            "250 2.1.5 OK".to_owned()
        }
    }
}

/// Extracts `addr` from `MAIL FROM:<addr> PARAMS` / `RCPT TO:<addr>`; parameters are ignored.
fn path_argument(command: &str, keyword: &str) -> Option<String> {
    let rest = command.split_once(' ')?.1.trim_start();
    if !rest.get(..keyword.len())?.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let path = rest[keyword.len()..].trim_start();
    let inner = path.strip_prefix('<')?.split_once('>')?.0;
    Some(inner.to_owned())
}

/// Reads the DATA section up to the lone `.` line, undoing dot-stuffing. `None` when too big.
async fn read_data<R: AsyncBufReadExt + Unpin>(reader: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(Some(data));
        }
        let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
        data.extend_from_slice(unstuffed);
        if data.len() > MAX_MESSAGE_BYTES {
            return Ok(None);
        }
    }
}

fn store(shared: &Shared, mail_from: String, rcpt_to: Vec<String>, data: Vec<u8>) {
    shared.store().messages.push(ReceivedMessage {
        mail_from,
        rcpt_to,
        data,
        received_at: Utc::now(),
    });
    shared.stored.send_modify(|count| *count += 1);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn send_lines(addr: SocketAddr, lines: &[&str]) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        for line in lines {
            stream.write_all(line.as_bytes()).await.unwrap();
        }
        let mut transcript = String::new();
        stream.read_to_string(&mut transcript).await.unwrap();
        transcript
    }

    const ONE_MESSAGE: &[&str] = &[
        "EHLO client\r\n",
        "MAIL FROM:<a@example.test> BODY=8BITMIME\r\n",
        "RCPT TO:<b@example.test>\r\n",
        "RCPT TO:<c@example.test>\r\n",
        "DATA\r\n",
        "Subject: hi\r\n\r\n..leading dot\r\n.\r\n",
        "QUIT\r\n",
    ];

    #[tokio::test]
    async fn stores_a_pipelined_message_with_dots_unstuffed() {
        let sink = SmtpSink::start().unwrap();
        let transcript = send_lines(sink.addr(), ONE_MESSAGE).await;
        assert!(transcript.contains("250 2.0.0 OK queued"), "{transcript}");
        let messages = sink.wait_for(1, Duration::from_secs(2)).await.unwrap();
        assert_eq!(messages[0].mail_from, "a@example.test");
        assert_eq!(messages[0].rcpt_to, ["b@example.test", "c@example.test"]);
        assert_eq!(messages[0].data, b"Subject: hi\r\n\r\n.leading dot\r\n");
        sink.clear();
        assert!(sink.messages().is_empty());
    }

    #[tokio::test]
    async fn fail_modes_reject_recipients() {
        let sink = SmtpSink::start().unwrap();
        sink.set_mode(SinkMode::TempFail).unwrap();
        let transcript = send_lines(sink.addr(), ONE_MESSAGE).await;
        assert!(transcript.contains("\r\n451 4.3.0"), "{transcript}");
        assert!(transcript.contains("\r\n554 5.5.1"), "{transcript}");
        sink.set_mode(SinkMode::PermFail).unwrap();
        let transcript = send_lines(sink.addr(), ONE_MESSAGE).await;
        assert!(transcript.contains("\r\n550 5.7.1"), "{transcript}");
        assert!(sink.messages().is_empty());
    }

    #[tokio::test]
    async fn down_refuses_connections_until_back_up() {
        let sink = SmtpSink::start().unwrap();
        sink.set_mode(SinkMode::Down).unwrap();
        assert!(TcpStream::connect(sink.addr()).await.is_err());
        sink.set_mode(SinkMode::Accept).unwrap();
        send_lines(sink.addr(), ONE_MESSAGE).await;
        assert_eq!(
            sink.wait_for(1, Duration::from_secs(2))
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn wait_for_times_out_without_messages() {
        let sink = SmtpSink::start().unwrap();
        let err = sink
            .wait_for(1, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(err, HarnessError::Timeout { .. }), "{err}");
    }

    #[test]
    fn path_argument_ignores_case_and_parameters() {
        assert_eq!(
            path_argument("mail from:<x@y> SIZE=10", "FROM:").as_deref(),
            Some("x@y")
        );
        assert_eq!(path_argument("MAIL FROM:<>", "FROM:").as_deref(), Some(""));
        assert_eq!(path_argument("MAIL TO:<x@y>", "FROM:"), None);
    }
}
