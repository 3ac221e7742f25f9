//! The pull stream: immediate answers, long-poll wake-ups, timeouts and account scopes.

use std::time::{Duration, Instant};

use postern_events::AccountScope;

use crate::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_events_come_back_at_once() {
    let harness = Harness::new(crate::test_config()).await;
    let first = harness.append(Some("acc-a"), "message.new", 1).await;
    let second = harness.append(Some("acc-b"), "message.new", 2).await;
    let stream = harness.service.stream();

    let started = Instant::now();
    let page = stream
        .events_after(0, 10, &AccountScope::All, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(page.events, vec![first.clone(), second.clone()]);
    assert_eq!(page.next_after, second.id.0);

    let page = stream
        .events_after(first.id.0, 10, &AccountScope::All, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(page.events, vec![second]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_wakes_on_append_and_times_out_empty() {
    let harness = std::sync::Arc::new(Harness::new(crate::test_config()).await);
    let stream = harness.service.stream();

    let started = Instant::now();
    let page = stream
        .events_after(0, 10, &AccountScope::All, Duration::from_millis(200))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(page.events.is_empty());
    assert_eq!(page.next_after, 0);
    assert!(waited >= Duration::from_millis(200), "{waited:?}");

    let appender = harness.clone();
    let append = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        (
            Instant::now(),
            appender.append(Some("acc-a"), "message.new", 1).await,
        )
    });
    // The poll interval is 500 ms: an answer well before it comes from the wake-up.
    let page = stream
        .events_after(0, 10, &AccountScope::All, Duration::from_secs(5))
        .await
        .unwrap();
    let answered = Instant::now();
    let (appended_at, event) = append.await.unwrap();
    assert_eq!(page.events, vec![event]);
    let latency = answered.duration_since(appended_at);
    assert!(
        latency < Duration::from_millis(100),
        "woke after {latency:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_see_only_their_accounts_and_never_test_events() {
    let harness = Harness::new(crate::test_config()).await;
    let a = harness.append(Some("acc-a"), "message.new", 1).await;
    harness.append(Some("acc-b"), "message.new", 2).await;
    harness.append(None, "server.notice", 3).await;
    harness.append(None, "webhook.test", 4).await;
    let c = harness.append(Some("acc-c"), "message.new", 5).await;
    let stream = harness.service.stream();
    let read = |scope: AccountScope| {
        let stream = stream.clone();
        async move {
            let page = stream
                .events_after(0, 10, &scope, Duration::ZERO)
                .await
                .unwrap();
            page.events
                .iter()
                .map(|e| e.payload["n"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(read(AccountScope::All).await, [1, 2, 3, 5]);
    assert_eq!(read(AccountScope::Only(vec!["acc-a".into()])).await, [1]);
    assert_eq!(
        read(AccountScope::Only(vec!["acc-c".into(), "acc-a".into()])).await,
        [1, 5]
    );
    assert!(read(AccountScope::Only(vec![])).await.is_empty());

    // A page that ends early still moves the cursor past what it examined.
    let scope = AccountScope::Only(vec!["acc-a".into(), "acc-c".into()]);
    let page = stream
        .events_after(0, 1, &scope, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(page.events, vec![a.clone()]);
    assert_eq!(page.next_after, a.id.0);
    let page = stream
        .events_after(page.next_after, 1, &scope, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(page.events, vec![c.clone()]);
    assert_eq!(page.next_after, c.id.0);
}
