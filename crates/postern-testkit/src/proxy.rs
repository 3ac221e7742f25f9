//! A TCP proxy for putting faults between a client under test and a real server: cut every
//! connection, refuse new ones, cut one connection after a number of bytes from the server, or
//! hold the client's bytes when they contain a command until the test has changed the server.
//!
//! ```no_run
//! # async fn demo(upstream: std::net::SocketAddr) -> std::io::Result<()> {
//! use postern_testkit::proxy::FaultProxy;
//! let proxy = FaultProxy::start(upstream).await?;
//! // Point the client at 127.0.0.1:{proxy.port()}, then, say, end its connection the moment
//! // the server has sent it 1 MB:
//! proxy.cut_once_after_server_bytes(1 << 20);
//! # Ok(())
//! # }
//! ```
//!
//! Non-goal: understanding any protocol. TLS passes through untouched (the client still verifies
//! the real server's certificate, since it still connects by the server's name), so byte counts
//! are the only handle on an encrypted stream; the needle of
//! [`FaultProxy::hold_client_bytes_until`] only matches a plain-text stream.
//!
//! Key decision: two pumps per connection (client to server, server to client) written out by
//! hand rather than `copy_bidirectional`, because a fault has to act *between* two reads: at an
//! exact byte count, or before a chunk holding a command reaches the server. Each fault is
//! one-shot and applies to the first connection that meets it, so a test says "once, mid-FETCH"
//! and the client's reconnection goes through cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Work a test does while the proxy holds a client's bytes back (e.g. delete a mailbox).
pub type Hook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Bytes read per step; small enough that a byte-count cut lands inside a large response.
const CHUNK: usize = 16 * 1024;
/// Marks "no byte-count cut armed".
const UNARMED: u64 = u64::MAX;

/// A proxy on a free loopback port in front of one upstream address.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    accept_loop: JoinHandle<()>,
}

struct State {
    upstream: SocketAddr,
    /// While true, connections are accepted and closed at once (a server that is down).
    refusing: AtomicBool,
    accepted: Mutex<Vec<Instant>>,
    /// Bumped to end every open connection.
    cut_all: watch::Sender<u64>,
    /// The server-to-client byte count at which one connection is cut ([`UNARMED`] if none).
    cut_after: AtomicU64,
    /// Connections ended by a byte-count cut so far.
    cuts: AtomicUsize,
    /// The one pending hold: a needle in the client's bytes and what to run when it shows up.
    hold: Mutex<Option<(Vec<u8>, Hook)>>,
    /// Holds that have run so far.
    holds_run: AtomicUsize,
}

impl FaultProxy {
    /// Listens on `127.0.0.1:0` and relays every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstream,
            refusing: AtomicBool::new(false),
            accepted: Mutex::new(Vec::new()),
            cut_all: watch::channel(0).0,
            cut_after: AtomicU64::new(UNARMED),
            cuts: AtomicUsize::new(0),
            hold: Mutex::new(None),
            holds_run: AtomicUsize::new(0),
        });
        let accept_loop = tokio::spawn(accept(listener, state.clone()));
        Ok(FaultProxy {
            addr,
            state,
            accept_loop,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to (the host is `127.0.0.1`, or `localhost` for TLS).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far (each is a connection attempt of a client).
    pub fn accepted(&self) -> usize {
        lock(&self.state.accepted).len()
    }

    /// When each connection was accepted.
    pub fn accept_times(&self) -> Vec<Instant> {
        lock(&self.state.accepted).clone()
    }

    /// Closes every open connection (both sides see the other close).
    pub fn cut_all(&self) {
        self.state
            .cut_all
            .send_modify(|generation| *generation += 1);
    }

    /// While `on`, new connections are closed as soon as they are accepted.
    pub fn refuse(&self, on: bool) {
        self.state.refusing.store(on, Ordering::SeqCst);
    }

    /// Arms a one-shot cut: the first connection over which the server has sent `bytes` bytes
    /// gets exactly those bytes and is then closed on both sides. Later connections are left
    /// alone.
    pub fn cut_once_after_server_bytes(&self, bytes: u64) {
        self.state.cut_after.store(bytes, Ordering::SeqCst);
    }

    /// Connections ended by [`FaultProxy::cut_once_after_server_bytes`] so far (0 or 1).
    pub fn byte_cuts(&self) -> usize {
        self.state.cuts.load(Ordering::SeqCst)
    }

    /// Arms a one-shot hold: the first chunk a client sends that contains `needle` is held back
    /// until `hook` has finished, then forwarded. The needle must arrive within one read (a
    /// command line sent at once does); it only matches a plain-text stream.
    pub fn hold_client_bytes_until(&self, needle: impl Into<Vec<u8>>, hook: Hook) {
        *lock(&self.state.hold) = Some((needle.into(), hook));
    }

    /// Holds that have run so far (0 or 1 per [`FaultProxy::hold_client_bytes_until`]).
    pub fn holds_run(&self) -> usize {
        self.state.holds_run.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_loop.abort();
        self.cut_all();
    }
}

/// A poisoned lock only means another test thread panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        lock(&state.accepted).push(Instant::now());
        if state.refusing.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        tokio::spawn(relay(client, state.clone()));
    }
}

/// Relays one connection until both sides are done, every connection is cut, or a fault ends it.
async fn relay(client: TcpStream, state: Arc<State>) {
    let mut cut_all = state.cut_all.subscribe();
    let Ok(server) = TcpStream::connect(state.upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // A pump that trips a fault says so here, which ends the other pump too.
    let (fault, mut faulted) = watch::channel(false);
    let both = async {
        tokio::join!(
            pump_up(client_read, server_write, &state),
            pump_down(server_read, client_write, &state, &fault),
        )
    };
    tokio::select! {
        _ = both => {}
        _ = cut_all.changed() => {}
        _ = faulted.wait_for(|tripped| *tripped) => {}
    }
}

/// Client to server, running the pending hold before the chunk that holds its needle.
async fn pump_up(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, state: &State) {
    let mut buffer = vec![0; CHUNK];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let chunk = &buffer[..read];
        if let Some(hook) = take_hold_matching(state, chunk) {
            hook().await;
            state.holds_run.fetch_add(1, Ordering::SeqCst);
        }
        if to.write_all(chunk).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Server to client, counting bytes for the armed byte-count cut.
async fn pump_down(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    state: &State,
    fault: &watch::Sender<bool>,
) {
    let mut buffer = vec![0; CHUNK];
    let mut sent: u64 = 0;
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let limit = state.cut_after.load(Ordering::SeqCst);
        let room = limit.saturating_sub(sent);
        if (read as u64) >= room && claim_cut(state, limit) {
            // `room` < `read` <= CHUNK here, so the cast cannot truncate.
            let _ = to.write_all(&buffer[..room as usize]).await;
            state.cuts.fetch_add(1, Ordering::SeqCst);
            let _ = fault.send(true);
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
        sent += read as u64;
    }
    let _ = to.shutdown().await;
}

/// Disarms the byte-count cut for this connection if it is still armed at `limit` (only one
/// connection may take it).
fn claim_cut(state: &State, limit: u64) -> bool {
    limit != UNARMED
        && state
            .cut_after
            .compare_exchange(limit, UNARMED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
}

/// The pending hook when `chunk` contains its needle; the hold is consumed.
fn take_hold_matching(state: &State, chunk: &[u8]) -> Option<Hook> {
    let mut hold = lock(&state.hold);
    let matches = hold
        .as_ref()
        .is_some_and(|(needle, _)| contains(chunk, needle));
    if matches {
        hold.take().map(|(_, hook)| hook)
    } else {
        None
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// An upstream that answers every connection with `size` bytes of `x`, then echoes.
    async fn talker(size: usize) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    stream.write_all(&vec![b'x'; size]).await.unwrap();
                    let mut buffer = [0; 1024];
                    while let Ok(read) = stream.read(&mut buffer).await {
                        if read == 0 || stream.write_all(&buffer[..read]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn read_to_close(stream: &mut TcpStream) -> usize {
        let mut total = 0;
        let mut buffer = vec![0; CHUNK];
        loop {
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
                .await
                .unwrap()
                .unwrap_or(0);
            if read == 0 {
                return total;
            }
            total += read;
        }
    }

    #[tokio::test]
    async fn a_byte_cut_ends_the_first_connection_at_the_exact_byte_and_spares_the_next() {
        let proxy = FaultProxy::start(talker(100_000).await).await.unwrap();
        proxy.cut_once_after_server_bytes(40_000);
        let mut first = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(read_to_close(&mut first).await, 40_000);
        assert_eq!(proxy.byte_cuts(), 1);

        let mut second = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut greeting = vec![0; 100_000];
        second.read_exact(&mut greeting).await.unwrap();
        second.write_all(b"ping").await.unwrap();
        let mut echo = [0; 4];
        second.read_exact(&mut echo).await.unwrap();
        assert_eq!(&echo, b"ping");
        assert_eq!((proxy.byte_cuts(), proxy.accepted()), (1, 2));
    }

    #[tokio::test]
    async fn a_hold_runs_its_hook_before_the_matching_bytes_reach_the_server() {
        let proxy = FaultProxy::start(talker(0).await).await.unwrap();
        let (ran, mut ran_rx) = watch::channel(false);
        proxy.hold_client_bytes_until(
            "SELECT",
            Box::new(move || {
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    ran.send(true).unwrap();
                })
            }),
        );
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        stream.write_all(b"a LIST\r\n").await.unwrap();
        let mut echo = [0; 8];
        stream.read_exact(&mut echo).await.unwrap();
        assert!(
            !*ran_rx.borrow(),
            "the hook ran on bytes without its needle"
        );
        stream.write_all(b"b SELECT x\r\n").await.unwrap();
        let mut echo = [0; 12];
        stream.read_exact(&mut echo).await.unwrap();
        assert!(
            *ran_rx.borrow_and_update(),
            "bytes passed before the hook ended"
        );
        assert_eq!(&echo, b"b SELECT x\r\n");
        assert_eq!(proxy.holds_run(), 1);
    }

    #[tokio::test]
    async fn cut_all_and_refuse_end_and_turn_away_connections() {
        let proxy = FaultProxy::start(talker(10).await).await.unwrap();
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut greeting = [0; 10];
        open.read_exact(&mut greeting).await.unwrap();
        proxy.cut_all();
        assert_eq!(read_to_close(&mut open).await, 0);
        proxy.refuse(true);
        let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(read_to_close(&mut refused).await, 0);
        assert_eq!(proxy.accepted(), 2);
    }
}
