//! A webhook receiver for the tests: a real axum server on loopback that verifies every signature
//! and records what it got, answering as the test tells it to.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use postern_events::signature::{
    DEFAULT_TOLERANCE, EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, verify,
};
use tokio::sync::Notify;

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Status(u16),
    /// Never answer.
    Hang,
}

/// Decides the reply from the request's number (0-based, over the receiver's life) and body.
type Behaviour = Box<dyn Fn(usize, &serde_json::Value) -> Reply + Send + Sync>;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: i64,
    pub kind: String,
    pub account_id: Option<String>,
    pub body: serde_json::Value,
    pub signature_ok: bool,
    pub headers_ok: bool,
    pub reply: Reply,
    pub at: Instant,
}

impl Received {
    pub fn succeeded(&self) -> bool {
        matches!(self.reply, Reply::Status(code) if (200..300).contains(&code))
    }
}

struct Shared {
    secret: Mutex<Option<String>>,
    behaviour: Mutex<Behaviour>,
    requests: Mutex<Vec<Received>>,
    arrived: Notify,
}

/// A running receiver; it stops when the test's runtime ends.
#[derive(Clone)]
pub struct Receiver {
    shared: Arc<Shared>,
    pub addr: SocketAddr,
}

impl Receiver {
    /// A receiver answering 200 to everything.
    pub async fn start() -> Receiver {
        let shared = Arc::new(Shared {
            secret: Mutex::new(None),
            behaviour: Mutex::new(Box::new(|_, _| Reply::Status(200))),
            requests: Mutex::new(Vec::new()),
            arrived: Notify::new(),
        });
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(handle))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { shared, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The secret signatures are verified with.
    pub fn set_secret(&self, secret: &str) {
        *self.shared.secret.lock().unwrap() = Some(secret.to_owned());
    }

    pub fn behave(
        &self,
        behaviour: impl Fn(usize, &serde_json::Value) -> Reply + Send + Sync + 'static,
    ) {
        *self.shared.behaviour.lock().unwrap() = Box::new(behaviour);
    }

    pub fn requests(&self) -> Vec<Received> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the requests so far, or fails the test after `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.shared.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let requests = self.requests();
            if done(&requests) {
                return requests;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "timed out waiting for {what}; received: {:#?}",
                    summary(&self.requests())
                );
            }
        }
    }

    /// Waits for `count` successfully answered requests.
    pub async fn wait_for_successes(&self, count: usize, timeout: Duration) -> Vec<Received> {
        self.wait_for(
            timeout,
            &format!("{count} successful deliveries"),
            |requests| requests.iter().filter(|r| r.succeeded()).count() >= count,
        )
        .await
    }
}

fn summary(requests: &[Received]) -> Vec<(i64, &str, Option<&str>, Reply)> {
    requests
        .iter()
        .map(|r| (r.id, r.kind.as_str(), r.account_id.as_deref(), r.reply))
        .collect()
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let signature_ok = signature_verifies(&shared, &headers, &body);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let id = json["id"].as_i64().unwrap_or(-1);
    let kind = json["type"].as_str().unwrap_or_default().to_owned();
    let headers_ok = header(EVENT_ID_HEADER) == Some(id.to_string())
        && header(EVENT_TYPE_HEADER).as_deref() == Some(kind.as_str())
        && header("content-type").as_deref() == Some("application/json");
    let reply = {
        let mut requests = shared.requests.lock().unwrap();
        let reply = (shared.behaviour.lock().unwrap())(requests.len(), &json);
        requests.push(Received {
            id,
            kind,
            account_id: json["account_id"].as_str().map(str::to_owned),
            body: json,
            signature_ok,
            headers_ok,
            reply,
            at,
        });
        reply
    };
    shared.arrived.notify_waiters();
    match reply {
        Reply::Status(code) => StatusCode::from_u16(code).unwrap(),
        Reply::Hang => std::future::pending().await,
    }
}

fn signature_verifies(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(secret) = shared.secret.lock().unwrap().clone() else {
        return false;
    };
    let Some(header) = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let now = chrono::Utc::now().timestamp();
    verify(header, secret.as_bytes(), body, now, DEFAULT_TOLERANCE).is_ok()
}
