//! Webhook delivery benchmark on loopback: `cargo run -p postern-events --example webhook_bench`.
//!
//! Measures, against a real axum receiver that verifies every signature:
//! 1. latency from `Events::append` (plus the `Notify` poke) to the signed request arriving, over
//!    1,000 events appended one at a time, 5 ms apart and then back to back (median and p99);
//! 2. the time for 10,000 events, appended as fast as the store takes them, to all arrive through
//!    one webhook, checking that they arrive in event-id order, each once, each signed;
//! 3. the time to deliver a backlog of 10,000 events (appended while no worker ran), with the
//!    default `max_in_flight` (4) and with 1 (strictly one request after the other).
//!
//! Targets (issue 6): median ≤ 5 ms; 10,000 events ≤ 10 s in order. The figures depend on the build
//! profile: the project's tests and this example run in the debug profile.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the right failure

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use postern_events::signature::{DEFAULT_TOLERANCE, SIGNATURE_HEADER, verify};
use postern_events::{NewWebhookInput, WebhookConfig, WebhookService};
use postern_store::{NewEvent, Store};
use postern_vault::{MasterKey, Vault};
use secrecy::ExposeSecret;
use tokio::sync::{Notify, mpsc, watch};

const LATENCY_EVENTS: usize = 1_000;
const THROUGHPUT_EVENTS: usize = 10_000;
const ACCOUNTS: usize = 10;

/// One signed request, as the receiver saw it.
struct Receipt {
    id: i64,
    account_id: String,
    at: Instant,
}

struct ReceiverState {
    secret: String,
    receipts: mpsc::UnboundedSender<Receipt>,
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    if verify(
        header,
        state.secret.as_bytes(),
        &body,
        now,
        DEFAULT_TOLERANCE,
    )
    .is_err()
    {
        eprintln!("a signature did not verify");
        return StatusCode::UNAUTHORIZED;
    }
    let at = Instant::now();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let receipt = Receipt {
        id: json["id"].as_i64().unwrap(),
        account_id: json["account_id"].as_str().unwrap().to_owned(),
        at,
    };
    let _ = state.receipts.send(receipt);
    StatusCode::NO_CONTENT
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("bench.db"))
        .await
        .unwrap();
    let master = MasterKey::generate();
    let key = store.vault_keys().next_key_id().await.unwrap();
    let (wrapped, _) = Vault::new_data_key(&master, key);
    store
        .vault_keys()
        .insert_active(wrapped.clone())
        .await
        .unwrap();
    let vault = Arc::new(Vault::unlock(&master, &[wrapped], key).unwrap());
    let wake = Arc::new(Notify::new());
    let config = WebhookConfig {
        allow_private_targets: true,
        ..WebhookConfig::default()
    };
    let service = WebhookService::new(store.clone(), vault.clone(), config, wake.clone()).unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let created = service
        .create(NewWebhookInput {
            url,
            events: vec!["*".into()],
            account_ids: None,
            secret: None,
            enabled: None,
        })
        .await
        .unwrap();
    let (sender, mut receipts) = mpsc::unbounded_channel();
    let state = Arc::new(ReceiverState {
        secret: created.secret.expose_secret().to_owned(),
        receipts: sender,
    });
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (stop, shutdown) = watch::channel(false);
    let workers = service.spawn_workers(shutdown);

    // Warm up: the first request opens the connection.
    append(&store, &wake, 0).await;
    receipts.recv().await.unwrap();
    latency(&store, &wake, &mut receipts, Some(Duration::from_millis(5))).await;
    latency(&store, &wake, &mut receipts, None).await;
    throughput(&store, &wake, &mut receipts).await;
    stop.send(true).unwrap();
    workers.await.unwrap();

    // A backlog: appended while no worker runs, then delivered, with the default concurrency
    // (requests for different accounts overlap) and with one request at a time.
    for max_in_flight in [4, 1] {
        let config = WebhookConfig {
            allow_private_targets: true,
            max_in_flight,
            ..WebhookConfig::default()
        };
        let service =
            WebhookService::new(store.clone(), vault.clone(), config, wake.clone()).unwrap();
        backlog(&service, &store, &wake, &mut receipts, max_in_flight).await;
    }
}

async fn backlog(
    service: &WebhookService,
    store: &Store,
    wake: &Notify,
    receipts: &mut mpsc::UnboundedReceiver<Receipt>,
    max_in_flight: usize,
) {
    let mut ids = Vec::with_capacity(THROUGHPUT_EVENTS);
    for n in 0..THROUGHPUT_EVENTS {
        ids.push(append(store, wake, n).await);
    }
    let (stop, shutdown) = watch::channel(false);
    let started = Instant::now();
    let workers = service.spawn_workers(shutdown);
    let received = receive_all(receipts).await;
    let elapsed = received.last().unwrap().at.duration_since(started);
    let order = check_order(&received, &ids);
    println!(
        "backlog, {THROUGHPUT_EVENTS} events in the log when the worker starts, max_in_flight \
         {max_in_flight}: delivered in {:.2} s ({:.0} events/s); order {order}",
        elapsed.as_secs_f64(),
        THROUGHPUT_EVENTS as f64 / elapsed.as_secs_f64(),
    );
    stop.send(true).unwrap();
    workers.await.unwrap();
}

async fn append(store: &Store, wake: &Notify, n: usize) -> i64 {
    let event = store
        .events()
        .append(NewEvent {
            account_id: Some(format!("acc-{}", n % ACCOUNTS)),
            kind: "message.new".into(),
            payload: serde_json::json!({ "n": n, "subject": "Benchmark message" }),
        })
        .await
        .unwrap();
    wake.notify_waiters();
    event.id.0
}

/// Appends events one at a time, each after the previous one arrived (and `gap` later, if any).
async fn latency(
    store: &Store,
    wake: &Notify,
    receipts: &mut mpsc::UnboundedReceiver<Receipt>,
    gap: Option<Duration>,
) {
    let mut latencies = Vec::with_capacity(LATENCY_EVENTS);
    for n in 0..LATENCY_EVENTS {
        if let Some(gap) = gap {
            tokio::time::sleep(gap).await;
        }
        let started = Instant::now();
        let id = append(store, wake, n).await;
        let receipt = tokio::time::timeout(Duration::from_secs(10), receipts.recv())
            .await
            .expect("a delivery within 10 s")
            .unwrap();
        assert_eq!(receipt.id, id, "the event just appended");
        latencies.push(receipt.at.duration_since(started));
    }
    latencies.sort();
    let percentile =
        |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let spacing = match gap {
        Some(gap) => format!("{} ms apart", gap.as_millis()),
        None => "back to back".to_owned(),
    };
    println!(
        "latency, append -> signed receipt, {LATENCY_EVENTS} events {spacing}: \
         median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(0.5)),
        ms(percentile(0.99)),
        ms(*latencies.last().unwrap()),
    );
}

/// Appends 10,000 events as fast as the store takes them while the worker delivers.
async fn throughput(
    store: &Store,
    wake: &Arc<Notify>,
    receipts: &mut mpsc::UnboundedReceiver<Receipt>,
) {
    let started = Instant::now();
    let appender = {
        let store = store.clone();
        let wake = wake.clone();
        tokio::spawn(async move {
            let mut ids = Vec::with_capacity(THROUGHPUT_EVENTS);
            for n in 0..THROUGHPUT_EVENTS {
                ids.push(append(&store, &wake, n).await);
            }
            (ids, started.elapsed())
        })
    };
    let received = receive_all(receipts).await;
    let elapsed = received.last().unwrap().at.duration_since(started);
    let (ids, appending) = appender.await.unwrap();
    let order = check_order(&received, &ids);
    println!(
        "throughput, {THROUGHPUT_EVENTS} events appended while delivering ({ACCOUNTS} accounts): \
         {:.2} s from first append to last signed receipt (appending alone took {:.2} s); \
         order {order}",
        elapsed.as_secs_f64(),
        appending.as_secs_f64(),
    );
}

async fn receive_all(receipts: &mut mpsc::UnboundedReceiver<Receipt>) -> Vec<Receipt> {
    let mut received = Vec::with_capacity(THROUGHPUT_EVENTS);
    while received.len() < THROUGHPUT_EVENTS {
        let receipt = tokio::time::timeout(Duration::from_secs(30), receipts.recv())
            .await
            .expect("deliveries keep coming")
            .unwrap();
        received.push(receipt);
    }
    received
}

/// Every event exactly once, and each account's in event-id order; says whether the whole
/// stream was in event-id order too.
fn check_order(received: &[Receipt], appended: &[i64]) -> &'static str {
    let mut received_ids: Vec<i64> = received.iter().map(|r| r.id).collect();
    let globally_ordered = received_ids == appended;
    received_ids.sort_unstable();
    assert_eq!(received_ids, appended, "every event exactly once");
    for account in 0..ACCOUNTS {
        let account = format!("acc-{account}");
        let ids: Vec<i64> = received
            .iter()
            .filter(|r| r.account_id == account)
            .map(|r| r.id)
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{account} in order");
    }
    if globally_ordered {
        "verified: each event once, all in event-id order"
    } else {
        "verified: each event once, each account's in event-id order"
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
