//! Webhook delivery benchmark on loopback: `cargo run -p postern-events --example webhook_bench`.
//!
//! Measures, against a real axum receiver that verifies every signature:
//! 1. latency from `Events::append` (plus the `Notify` poke) to the signed request arriving, over
//!    1,000 events appended one at a time (median and p99);
//! 2. the time for 10,000 events, appended as fast as the store takes them, to all arrive through
//!    one webhook, checking that they arrive in event-id order, each once, each signed.
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
    let service = WebhookService::new(store.clone(), vault, config, wake.clone()).unwrap();

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

    latency(&store, &wake, &mut receipts).await;
    throughput(&store, &wake, &mut receipts).await;

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

async fn latency(store: &Store, wake: &Notify, receipts: &mut mpsc::UnboundedReceiver<Receipt>) {
    // Warm up: the first request opens the connection.
    append(store, wake, 0).await;
    receipts.recv().await.unwrap();
    let mut latencies = Vec::with_capacity(LATENCY_EVENTS);
    for n in 0..LATENCY_EVENTS {
        let started = Instant::now();
        let id = append(store, wake, n).await;
        let receipt = tokio::time::timeout(Duration::from_secs(10), receipts.recv())
            .await
            .expect("a delivery within 10 s")
            .unwrap();
        assert_eq!(receipt.id, id, "deliveries arrive in order");
        latencies.push(receipt.at.duration_since(started));
    }
    latencies.sort();
    let percentile =
        |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "latency, append -> signed receipt, {LATENCY_EVENTS} events one at a time: \
         median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(0.5)),
        ms(percentile(0.99)),
        ms(*latencies.last().unwrap()),
    );
}

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
                let event = store
                    .events()
                    .append(NewEvent {
                        account_id: Some(format!("acc-{}", n % ACCOUNTS)),
                        kind: "message.new".into(),
                        payload: serde_json::json!({ "n": n }),
                    })
                    .await
                    .unwrap();
                wake.notify_waiters();
                ids.push(event.id.0);
            }
            (ids, started.elapsed())
        })
    };
    let mut received = Vec::with_capacity(THROUGHPUT_EVENTS);
    while received.len() < THROUGHPUT_EVENTS {
        let receipt = tokio::time::timeout(Duration::from_secs(30), receipts.recv())
            .await
            .expect("deliveries keep coming")
            .unwrap();
        received.push(receipt);
    }
    let elapsed = received.last().unwrap().at.duration_since(started);
    let (ids, appending) = appender.await.unwrap();
    let received_ids: Vec<i64> = received.iter().map(|r| r.id).collect();
    assert_eq!(received_ids, ids, "every event once, in event-id order");
    let per_account_in_order = (0..ACCOUNTS).all(|account| {
        let account = format!("acc-{account}");
        let ids: Vec<i64> = received
            .iter()
            .filter(|r| r.account_id == account)
            .map(|r| r.id)
            .collect();
        ids.windows(2).all(|w| w[0] < w[1])
    });
    assert!(per_account_in_order);
    println!(
        "throughput, {THROUGHPUT_EVENTS} events through one webhook ({ACCOUNTS} accounts): \
         {:.2} s from first append to last signed receipt ({:.0} events/s; appending alone took \
         {:.2} s); order verified: every event once, in id order",
        elapsed.as_secs_f64(),
        THROUGHPUT_EVENTS as f64 / elapsed.as_secs_f64(),
        appending.as_secs_f64(),
    );
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
