//! The provider's own thread and tokio runtime.
//!
//! Non-goal: graceful shutdown; a test provider that goes away may drop in-flight requests.
//! Key decision: the server never runs on a test's runtime. Each `#[tokio::test]` has a runtime that
//! dies when the test ends, which would kill a server spawned there while other tests still use it;
//! a dedicated thread with a current-thread runtime outlives every test.

use std::future::IntoFuture as _;
use std::sync::mpsc;
use std::thread::JoinHandle;

use axum::Router;
use tokio::sync::oneshot;

use super::error::ProviderError;

/// A running server; dropping it stops the server and joins its thread.
#[derive(Debug)]
pub(crate) struct ServerThread {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Serves `app` on `listener` (already bound) from a new thread; returns once the listener is
    /// registered with the thread's runtime, so connections are accepted from then on.
    pub(crate) fn spawn(
        listener: std::net::TcpListener,
        app: Router,
    ) -> Result<Self, ProviderError> {
        listener
            .set_nonblocking(true)
            .map_err(ProviderError::Bind)?;
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("test-oauth-provider".to_owned())
            .spawn(move || serve(listener, app, stop_rx, ready_tx))
            .map_err(ProviderError::Runtime)?;
        let server = Self {
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(server),
            Ok(Err(error)) => Err(error),
            Err(mpsc::RecvError) => Err(ProviderError::ThreadDied),
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The thread may already be gone; then there is nothing to stop.
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread was already reported there; do not panic in drop.
            let _ = thread.join();
        }
    }
}

/// The thread's body: build the runtime, report readiness, serve until told to stop.
fn serve(
    listener: std::net::TcpListener,
    app: Router,
    stop: oneshot::Receiver<()>,
    ready: mpsc::Sender<Result<(), ProviderError>>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = ready.send(Err(ProviderError::Runtime(error)));
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(error) => {
                let _ = ready.send(Err(ProviderError::Bind(error)));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        tokio::select! {
            served = axum::serve(listener, app).into_future() => {
                if let Err(error) = served {
                    tracing::error!(%error, "the test OAuth provider stopped serving");
                }
            }
            _ = stop => {}
        }
    });
    // Dropping the runtime here cancels the connections still open.
}
