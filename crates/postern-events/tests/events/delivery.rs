//! Delivery: signatures, retries, per-account order, isolation between webhooks, redelivery, death
//! after the retry window, and resuming after a restart.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use postern_store::DeliveryStatus;

use crate::receiver::{Received, Receiver, Reply};
use crate::{Harness, PATIENCE, all_have_status, test_config};

/// The ids each account's requests carried, in arrival order.
fn ids_by_account(requests: &[&Received]) -> BTreeMap<Option<String>, Vec<i64>> {
    let mut by_account: BTreeMap<Option<String>, Vec<i64>> = BTreeMap::new();
    for request in requests {
        by_account
            .entry(request.account_id.clone())
            .or_default()
            .push(request.id);
    }
    by_account
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_signed_with_the_webhooks_secret_and_carries_its_headers() {
    let harness = Harness::started().await;
    let receiver = Receiver::start().await;
    let created = harness.webhook(&receiver, &["*"]).await;
    assert!(
        secrecy::ExposeSecret::expose_secret(&created.secret).starts_with("whsec_"),
        "a generated secret is recognisable"
    );
    let mut appended = Vec::new();
    for n in 0..6 {
        let account = ["acc-a", "acc-b"][n as usize % 2];
        appended.push(harness.append(Some(account), "message.new", n).await);
    }
    let requests = receiver.wait_for_successes(6, PATIENCE).await;

    assert!(requests.iter().all(|r| r.signature_ok), "{requests:#?}");
    assert!(requests.iter().all(|r| r.headers_ok), "{requests:#?}");
    let first = requests.iter().find(|r| r.id == appended[0].id.0).unwrap();
    assert_eq!(first.body["type"], "message.new");
    assert_eq!(first.body["account_id"], "acc-a");
    assert_eq!(first.body["data"], serde_json::json!({ "n": 0 }));
    assert!(first.body["created_at"].as_str().unwrap().ends_with('Z'));

    // A receiver with the wrong secret would refuse every one of them.
    receiver.set_secret("whsec_not-the-right-one");
    harness.append(Some("acc-a"), "message.new", 6).await;
    let requests = receiver.wait_for_successes(7, PATIENCE).await;
    assert!(!requests[6].signature_ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_three_times_gets_every_event_once_in_per_account_order() {
    let harness = Harness::started().await;
    let receiver = Receiver::start().await;
    receiver.behave(|n, _| Reply::Status(if n < 3 { 500 } else { 200 }));
    let created = harness
        .webhook(&receiver, &["message.*", "account.*"])
        .await;
    let mut appended = Vec::new();
    for n in 0..12 {
        let account = ["acc-a", "acc-b", "acc-c"][n as usize % 3];
        let kind = if n % 4 == 0 {
            "account.connected"
        } else {
            "message.new"
        };
        appended.push(harness.append(Some(account), kind, n).await);
    }
    let requests = receiver.wait_for_successes(12, PATIENCE).await;

    let failed = requests.iter().filter(|r| !r.succeeded()).count();
    assert_eq!(failed, 3);
    assert!(requests.iter().all(|r| r.signature_ok));
    let successes: Vec<&Received> = requests.iter().filter(|r| r.succeeded()).collect();
    let unique: HashSet<i64> = successes.iter().map(|r| r.id).collect();
    let expected: HashSet<i64> = appended.iter().map(|e| e.id.0).collect();
    assert_eq!(unique, expected, "every event, after dedupe by id");
    assert_eq!(successes.len(), unique.len(), "and each exactly once");

    // Every request, failed ones included: an account's ids never go backwards, and a later
    // event was never sent while an earlier one of its account was still undelivered.
    let all: Vec<&Received> = requests.iter().collect();
    for (account, ids) in ids_by_account(&all) {
        assert!(ids.windows(2).all(|w| w[0] <= w[1]), "{account:?}: {ids:?}");
    }
    for (account, ids) in ids_by_account(&successes) {
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{account:?}: {ids:?}");
    }

    let deliveries = harness
        .deliveries_when(created.webhook.id.as_str(), "all delivered", |d| {
            all_have_status(d, 12, DeliveryStatus::Delivered)
        })
        .await;
    let attempts: u32 = deliveries.iter().map(|d| d.attempts).sum();
    assert_eq!(attempts, 15, "12 deliveries + 3 retries");
    let retried = deliveries.iter().find(|d| d.attempts > 1).unwrap();
    assert_eq!(retried.last_status_code, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_account_holds_back_only_its_own_later_events() {
    let harness = Harness::started().await;
    let receiver = Receiver::start().await;
    let fixed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = fixed.clone();
    receiver.behave(move |_, body| {
        let failing =
            body["account_id"] == "acc-bad" && !flag.load(std::sync::atomic::Ordering::SeqCst);
        Reply::Status(if failing { 503 } else { 200 })
    });
    harness.webhook(&receiver, &["*"]).await;
    for n in 0..3 {
        harness.append(Some("acc-bad"), "message.new", n).await;
        harness.append(Some("acc-good"), "message.new", n).await;
    }
    let requests = receiver
        .wait_for(PATIENCE, "the good account's events", |requests| {
            requests.iter().filter(|r| r.succeeded()).count() == 3
        })
        .await;
    let bad_ids: HashSet<i64> = requests
        .iter()
        .filter(|r| r.account_id.as_deref() == Some("acc-bad"))
        .map(|r| r.id)
        .collect();
    assert_eq!(
        bad_ids.len(),
        1,
        "only the bad account's first event was tried: {bad_ids:?}"
    );

    fixed.store(true, std::sync::atomic::Ordering::SeqCst);
    let requests = receiver.wait_for_successes(6, PATIENCE).await;
    let successes: Vec<&Received> = requests.iter().filter(|r| r.succeeded()).collect();
    for (account, ids) in ids_by_account(&successes) {
        assert_eq!(ids.len(), 3, "{account:?}");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{account:?}: {ids:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_does_not_delay_another_webhook() {
    let harness = Harness::started().await;
    let hanging = Receiver::start().await;
    hanging.behave(|_, _| Reply::Hang);
    let healthy = Receiver::start().await;
    harness.webhook(&hanging, &["*"]).await;
    harness.webhook(&healthy, &["*"]).await;

    for n in 0..5 {
        let appended_at = Instant::now();
        harness.append(Some("acc-a"), "message.new", n).await;
        let requests = healthy.wait_for_successes(n as usize + 1, PATIENCE).await;
        let latency = requests[n as usize].at.duration_since(appended_at);
        assert!(
            latency < Duration::from_millis(200),
            "event {n} took {latency:?}"
        );
    }
    let stuck = hanging.requests();
    assert_eq!(
        stuck.len(),
        1,
        "the hanging receiver holds its worker on the first event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliver_sends_a_delivered_event_again_with_the_same_id() {
    let harness = Harness::started().await;
    let receiver = Receiver::start().await;
    let created = harness.webhook(&receiver, &["message.new"]).await;
    let id = created.webhook.id.to_string();
    let event = harness.append(Some("acc-a"), "message.new", 1).await;
    receiver.wait_for_successes(1, PATIENCE).await;
    let delivered = harness
        .deliveries_when(&id, "the delivery", |d| {
            all_have_status(d, 1, DeliveryStatus::Delivered)
        })
        .await;
    assert_eq!(delivered[0].event_id, event.id);

    let again = harness
        .service
        .redeliver(&id, delivered[0].id.as_str())
        .await
        .unwrap();
    assert_eq!(again.status, DeliveryStatus::Pending);
    assert_eq!(again.attempts, 0);
    let requests = receiver.wait_for_successes(2, PATIENCE).await;
    assert_eq!(requests[1].id, event.id.0);
    assert!(requests[1].signature_ok);
    let redelivered = harness
        .deliveries_when(&id, "the redelivery", |d| {
            all_have_status(d, 1, DeliveryStatus::Delivered) && d[0].attempts == 1
        })
        .await;
    assert_eq!(redelivered[0].id, delivered[0].id);

    let unknown = harness
        .service
        .redeliver(&id, &postern_store::DeliveryId::generate().to_string())
        .await;
    assert!(matches!(
        unknown,
        Err(postern_events::WebhookError::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_dead_after_the_retry_window_and_releases_its_account() {
    let mut harness = Harness::new(postern_events::WebhookConfig {
        max_age: Duration::from_millis(300),
        ..test_config()
    })
    .await;
    harness.start();
    let receiver = Receiver::start().await;
    let failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = failing.clone();
    receiver.behave(move |_, _| {
        Reply::Status(if flag.load(std::sync::atomic::Ordering::SeqCst) {
            500
        } else {
            200
        })
    });
    let created = harness.webhook(&receiver, &["*"]).await;
    let id = created.webhook.id.to_string();
    let first = harness.append(Some("acc-a"), "message.new", 1).await;

    let dead = harness
        .deliveries_when(&id, "a dead delivery", |d| {
            all_have_status(d, 1, DeliveryStatus::Dead)
        })
        .await;
    assert!(dead[0].attempts >= 3, "retried before dying: {:?}", dead[0]);
    assert_eq!(dead[0].last_status_code, Some(500));
    assert!(dead[0].last_error.as_deref().unwrap().contains("HTTP 500"));
    let window = dead[0].last_attempt_at.unwrap() - dead[0].pending_since;
    assert!(window >= chrono::Duration::milliseconds(300), "{window:?}");
    let tries = receiver.requests().len();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        receiver.requests().len(),
        tries,
        "a dead delivery is not retried"
    );

    failing.store(false, std::sync::atomic::Ordering::SeqCst);
    let second = harness.append(Some("acc-a"), "message.new", 2).await;
    let requests = receiver.wait_for_successes(1, PATIENCE).await;
    let success = requests.iter().find(|r| r.succeeded()).unwrap();
    assert_eq!(
        success.id, second.id.0,
        "the dead event no longer holds its account back"
    );

    // A redelivery brings the dead one back, in a fresh window.
    harness
        .service
        .redeliver(&id, dead[0].id.as_str())
        .await
        .unwrap();
    let requests = receiver.wait_for_successes(2, PATIENCE).await;
    assert_eq!(requests.last().unwrap().id, first.id.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_appended_while_stopped_are_delivered_after_a_restart() {
    let mut harness = Harness::started().await;
    let receiver = Receiver::start().await;
    let created = harness.webhook(&receiver, &["*"]).await;
    harness.append(Some("acc-a"), "message.new", 1).await;
    receiver.wait_for_successes(1, PATIENCE).await;
    harness.stop().await;

    harness.append(Some("acc-a"), "message.new", 2).await;
    harness.append(None, "server.notice", 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        receiver.requests().len(),
        1,
        "nothing is delivered while stopped"
    );

    harness.start();
    // At least once: the first event may come again if the stop cut its bookkeeping short.
    let requests = receiver
        .wait_for(PATIENCE, "all three events", |requests| {
            let ids: HashSet<i64> = requests
                .iter()
                .filter(|r| r.succeeded())
                .map(|r| r.id)
                .collect();
            ids.len() == 3
        })
        .await;
    let last = requests.iter().map(|r| r.id).max().unwrap();
    let webhook = harness
        .service
        .get(created.webhook.id.as_str())
        .await
        .unwrap();
    assert_eq!(webhook.cursor.0, last, "the cursor is past every event");
}
