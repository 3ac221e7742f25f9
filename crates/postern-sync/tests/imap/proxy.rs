//! A TCP proxy in front of the shared Dovecot that a test can cut, shut and count: the way to drop
//! a connection mid-session, or keep a server "down", without touching the Dovecot other tests use.
//!
//! TLS passes through untouched (the client still verifies Dovecot's certificate for `localhost`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
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
    cut: watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            upstream,
            refusing: AtomicBool::new(false),
            accepted: Mutex::new(Vec::new()),
            cut: watch::channel(0).0,
        });
        let accept_loop = tokio::spawn(accept(listener, state.clone()));
        Proxy {
            addr,
            state,
            accept_loop,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far (each is a connection attempt of a client).
    pub fn accepted(&self) -> usize {
        self.state.accepted.lock().unwrap().len()
    }

    /// When each connection was accepted.
    pub fn accept_times(&self) -> Vec<Instant> {
        self.state.accepted.lock().unwrap().clone()
    }

    /// Closes every open connection (both sides see the other close).
    pub fn cut_all(&self) {
        self.state.cut.send_modify(|generation| *generation += 1);
    }

    /// While `on`, new connections are closed as soon as they are accepted.
    pub fn refuse(&self, on: bool) {
        self.state.refusing.store(on, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept_loop.abort();
        self.cut_all();
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        state.accepted.lock().unwrap().push(Instant::now());
        if state.refusing.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        tokio::spawn(relay(client, state.clone()));
    }
}

async fn relay(mut client: TcpStream, state: Arc<State>) {
    let mut cut = state.cut.subscribe();
    let Ok(mut server) = TcpStream::connect(state.upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.changed() => {}
    }
}
