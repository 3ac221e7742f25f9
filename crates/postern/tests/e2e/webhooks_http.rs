//! Webhooks and the event stream over HTTP: a real account event reaches a signed webhook and the
//! pull stream; private targets are refused unless allowed.

use crate::support::{Postern, metric_sample};
use crate::support::{create_account, password_account_body, unique_email};
use axum::body::Bytes;
use axum::http::HeaderMap;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;

/// A receiver on loopback that forwards each request's headers and body to the test.
async fn receiver() -> (String, mpsc::UnboundedReceiver<(HeaderMap, Bytes)>) {
    let (sender, received) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let sender = sender.clone();
            async move {
                let _ = sender.send((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/hook"), received)
}

async fn connected_account(server: &Postern, admin: &str) -> String {
    let body = password_account_body(&unique_email("hooked"), "hook-pw");
    create_account(server, admin, &body).await
}

#[tokio::test]
async fn an_account_event_reaches_a_signed_webhook_and_the_pull_stream() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[("POSTERN_WEBHOOKS_ALLOW_PRIVATE", "true")]).await;
    let admin = server.admin_token.clone().unwrap();
    let (url, mut received) = receiver().await;
    let created = server
        .send_json(
            Method::POST,
            "/v1/webhooks",
            &admin,
            &json!({"url": url, "events": ["account.*"]}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let listed: Value = server
        .get("/v1/webhooks", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !listed.to_string().contains(&secret),
        "the secret was shown again"
    );

    let account_id = connected_account(&server, &admin).await;
    let (headers, body) = tokio::time::timeout(Duration::from_secs(5), received.recv())
        .await
        .unwrap()
        .unwrap();
    let signature = headers["postern-signature"].to_str().unwrap();
    let now = chrono::Utc::now().timestamp();
    postern_events::signature::verify(
        signature,
        secret.as_bytes(),
        &body,
        now,
        Duration::from_secs(300),
    )
    .expect("the signature does not verify");
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["type"], "account.connected");
    assert_eq!(event["account_id"], account_id.as_str());
    assert_eq!(
        headers["postern-event-id"].to_str().unwrap(),
        event["id"].to_string()
    );

    let pulled: Value = server
        .get("/v1/events?after=0", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = pulled["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"account.connected"), "{pulled}");

    // The delivery shows in /metrics, counted and timed.
    let metrics = server
        .get("/metrics", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    let delivered = metric_sample(
        &metrics,
        "postern_webhook_deliveries_total",
        &["result=\"delivered\""],
    );
    assert!(delivered >= 1.0, "{metrics}");
    assert!(
        metrics.contains("postern_webhook_delivery_duration_seconds_count"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_long_poll_waits_for_the_next_event_and_wakes_when_it_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let admin = server.admin_token.clone().unwrap();
    // Nothing has happened on this server yet: the poll waits its full second, then answers empty.
    let started = std::time::Instant::now();
    let empty: Value = server
        .get("/v1/events?after=0&wait=1", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert!(empty["events"].as_array().unwrap().is_empty(), "{empty}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    // A poll that is waiting is answered as soon as an event is appended.
    let waiting = server.get("/v1/events?after=0&wait=20", Some(&admin));
    let (answer, _) = tokio::join!(waiting, async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        connected_account(&server, &admin).await
    });
    let answer: Value = answer.json().await.unwrap();
    assert!(!answer["events"].as_array().unwrap().is_empty(), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the waiting poll was not woken"
    );
    server.stop().await;
}

#[tokio::test]
async fn private_webhook_targets_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Postern::start(dir.path(), &[]).await;
    let admin = server.admin_token.clone().unwrap();
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
    ] {
        let response = server
            .send_json(
                Method::POST,
                "/v1/webhooks",
                &admin,
                &json!({"url": url, "events": ["*"]}),
            )
            .await;
        assert_eq!(response.status(), 400, "{url}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_request", "{url}: {body}");
    }
    server.stop().await;
}
