//! The raw-FETCH peer: one IMAPS connection, `LOGIN`, `SELECT INBOX`, then
//! `UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])`, reading every line and literal
//! and throwing it away.
//!
//! Non-goal: parsing. This is the floor a sync engine is measured against, so it does the least a
//! client can do: find line ends and skip `{n}` literals.
//!
//! Key decision: hand-written over tokio-rustls rather than async-imap, whose response parser would
//! make the "floor" include a parser's cost.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The read buffer: large, so a 1.5 KB message rarely needs a second read.
const READ_BUFFER: usize = 256 * 1024;

/// What one raw fetch saw.
pub struct RawFetch {
    /// Connect to the tagged `OK` of the FETCH.
    pub elapsed: Duration,
    /// `* n FETCH` responses read.
    pub messages: usize,
    /// Literal bytes read (the bodies).
    pub body_bytes: u64,
}

/// Connects to `addr` (trusting `ca_pem`), logs in and fetches every message of INBOX.
pub async fn raw_fetch(
    addr: SocketAddr,
    ca_pem: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<RawFetch> {
    let started = Instant::now();
    let mut conn = logged_in(addr, ca_pem, user, password).await?;
    command(&mut conn, "b", "b SELECT INBOX\r\n").await?;
    let fetch = "c UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])\r\n";
    let (messages, body_bytes) = command(&mut conn, "c", fetch).await?;
    let elapsed = started.elapsed();
    command(&mut conn, "d", "d LOGOUT\r\n").await?;
    Ok(RawFetch {
        elapsed,
        messages,
        body_bytes,
    })
}

/// The peer of Postern's no-change pass on a new session: connect, log in, then the two commands
/// that pass sends on Dovecot (`ENABLE QRESYNC`, one LIST-STATUS), so the figure is the server's own
/// cost for them (`UNSEEN` makes Dovecot count a mailbox's unseen messages).
pub async fn raw_status(
    addr: SocketAddr,
    ca_pem: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut conn = logged_in(addr, ca_pem, user, password).await?;
    command(&mut conn, "b", "b ENABLE QRESYNC\r\n").await?;
    let list = "c LIST \"\" \"*\" RETURN (SPECIAL-USE STATUS \
                (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ))\r\n";
    command(&mut conn, "c", list).await?;
    let elapsed = started.elapsed();
    command(&mut conn, "d", "d LOGOUT\r\n").await?;
    Ok(elapsed)
}

/// A TLS connection past the greeting and a password `LOGIN`.
async fn logged_in(
    addr: SocketAddr,
    ca_pem: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<BufReader<TlsStream<TcpStream>>> {
    let config = postern_testkit::tls::rustls_client_config(ca_pem)?;
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost")?;
    let tls = TlsConnector::from(config).connect(name, tcp).await?;
    let mut conn = BufReader::with_capacity(READ_BUFFER, tls);
    read_response(&mut conn, None).await?;
    let login = format!("a LOGIN {} {}\r\n", quoted(user), quoted(password));
    command(&mut conn, "a", &login).await?;
    Ok(conn)
}

/// Sends `line` and reads until its tagged completion, which must be `OK`.
async fn command<S>(conn: &mut BufReader<S>, tag: &str, line: &str) -> anyhow::Result<(usize, u64)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    conn.get_mut().write_all(line.as_bytes()).await?;
    conn.get_mut().flush().await?;
    read_response(conn, Some(tag)).await
}

/// Reads responses until the one tagged `tag` (or just one response when `tag` is `None`); counts
/// untagged FETCH responses and literal bytes.
async fn read_response<R>(conn: &mut R, tag: Option<&str>) -> anyhow::Result<(usize, u64)>
where
    R: AsyncBufRead + Unpin,
{
    let mut line = Vec::with_capacity(256);
    let mut fetches = 0;
    let mut literal_bytes = 0;
    loop {
        line.clear();
        let first = read_line(conn, &mut line).await?;
        let mut segment_start = 0;
        // A response continues after each literal; read on until a line ends without one.
        while let Some(size) = literal_size(&line[segment_start..]) {
            skip(conn, size).await?;
            literal_bytes += size;
            segment_start = line.len();
            read_line(conn, &mut line).await?;
        }
        if first.starts_with(b"* ") && contains(&first, b" FETCH ") {
            fetches += 1;
        }
        match tag {
            None => return Ok((fetches, literal_bytes)),
            Some(tag) if first.starts_with(format!("{tag} ").as_bytes()) => {
                if !first.starts_with(format!("{tag} OK").as_bytes()) {
                    bail!("{}", String::from_utf8_lossy(&first).trim_end());
                }
                return Ok((fetches, literal_bytes));
            }
            Some(_) => {}
        }
    }
}

/// Appends one line (with its CRLF) to `line` and returns the first 64 bytes of what it read.
async fn read_line<R>(conn: &mut R, line: &mut Vec<u8>) -> anyhow::Result<Vec<u8>>
where
    R: AsyncBufRead + Unpin,
{
    let start = line.len();
    if conn.read_until(b'\n', line).await? == 0 {
        bail!("server closed the connection");
    }
    Ok(line[start..].iter().take(64).copied().collect())
}

/// The size of the literal a line announces at its end (`{123}\r\n`).
fn literal_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r\n").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&inner[open + 1..]).ok()?.parse().ok()
}

/// Consumes `size` bytes without copying them anywhere.
async fn skip<R>(conn: &mut R, mut size: u64) -> anyhow::Result<()>
where
    R: AsyncBufRead + Unpin,
{
    while size > 0 {
        let available = conn.fill_buf().await.context("reading a literal")?.len();
        if available == 0 {
            bail!("server closed the connection inside a literal");
        }
        let take = available.min(usize::try_from(size).unwrap_or(usize::MAX));
        conn.consume(take);
        size -= take as u64;
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}
