//! Failures on the way: the relay down or refusing, a worker that dies holding a lease, a rate
//! limit. Tests that change the faulty sink's mode hold [`fault_lock`] and put it back to
//! `Accept`.

use std::time::Duration;

use postern_outbox::{RateLimit, SendRequest};
use postern_store::{EVENT_MESSAGE_FAILED, EVENT_MESSAGE_SENT, OutboxStatus, RecipientStatus};
use postern_testkit::smtp_sink::SinkMode;

use crate::support::{
    WAIT, World, fast_config, fault_lock, faulty, happy, happy_sink, received_by, unique,
};

fn message_to(to: &str) -> SendRequest {
    SendRequest {
        to: vec![to.into()],
        subject: Some("fault test".into()),
        text: Some("x".into()),
        ..SendRequest::default()
    }
}

/// Puts the sink back to `Accept` even when the test fails half-way.
struct AcceptOnDrop;

impl Drop for AcceptOnDrop {
    fn drop(&mut self) {
        let _ = faulty().0.set_mode(SinkMode::Accept);
    }
}

#[tokio::test]
async fn sink_down_retries_then_sends_when_it_returns() {
    let _serial = fault_lock().lock().await;
    let _restore = AcceptOnDrop;
    let (sink, dovecot) = faulty();
    let mut world = World::new(fast_config()).await;
    let me = unique("down");
    let account = world.password_account(dovecot, &me).await;
    sink.set_mode(SinkMode::Down).unwrap();
    world.start_workers();
    let to = unique("down-to");
    let queued = world
        .outbox
        .submit(&account, message_to(&to), None, None)
        .await
        .unwrap();

    // At least two attempts fail while the relay is down.
    let deadline = tokio::time::Instant::now() + WAIT;
    let deferred = loop {
        let item = world.outbox.get(&queued.id).await.unwrap().unwrap();
        if item.attempts >= 2 && item.status == OutboxStatus::Queued {
            break item;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no retries: {item:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(deferred.last_error.is_some(), "{deferred:#?}");
    assert!(
        deferred
            .recipients
            .iter()
            .all(|r| r.status != RecipientStatus::Accepted)
    );
    assert!(
        world
            .events(&account, EVENT_MESSAGE_FAILED)
            .await
            .is_empty()
    );

    sink.set_mode(SinkMode::Accept).unwrap();
    let sent = world.wait_for_status(&queued.id, OutboxStatus::Sent).await;
    assert!(sent.attempts >= 3, "{sent:#?}");
    sink.wait_for_rcpt(&to, WAIT).await.unwrap();
    assert_eq!(received_by(sink, &to).len(), 1);
    assert_eq!(world.events(&account, EVENT_MESSAGE_SENT).await.len(), 1);
}

#[tokio::test]
async fn a_permanent_refusal_fails_with_the_servers_words_and_is_not_retried() {
    let _serial = fault_lock().lock().await;
    let _restore = AcceptOnDrop;
    let (sink, dovecot) = faulty();
    let mut world = World::new(fast_config()).await;
    let me = unique("permfail");
    let account = world.password_account(dovecot, &me).await;
    sink.set_mode(SinkMode::PermFail).unwrap();
    world.start_workers();
    let to = unique("refused");
    let queued = world
        .outbox
        .submit(&account, message_to(&to), None, None)
        .await
        .unwrap();
    let failed = world
        .wait_for_status(&queued.id, OutboxStatus::Failed)
        .await;
    assert_eq!(failed.attempts, 1, "a 5xx is not retried");
    let error = failed.last_error.clone().unwrap();
    assert!(error.contains("5.7.1"), "{error}");
    assert!(
        error.contains("test sink PermFail"),
        "the server's words are kept: {error}"
    );
    assert_eq!(failed.recipients[0].status, RecipientStatus::Rejected);
    assert_eq!(failed.recipients[0].code, Some(550));
    let events = world.events(&account, EVENT_MESSAGE_FAILED).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].payload["error"], error);
    assert!(received_by(sink, &to).is_empty());
}

#[tokio::test]
async fn a_temporary_refusal_defers_the_recipient_until_the_sink_accepts() {
    let _serial = fault_lock().lock().await;
    let _restore = AcceptOnDrop;
    let (sink, dovecot) = faulty();
    let mut world = World::new(fast_config()).await;
    let me = unique("tempfail");
    let account = world.password_account(dovecot, &me).await;
    sink.set_mode(SinkMode::TempFail).unwrap();
    world.start_workers();
    let to = unique("later");
    let queued = world
        .outbox
        .submit(&account, message_to(&to), None, None)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let item = world.outbox.get(&queued.id).await.unwrap().unwrap();
        if item.recipients[0].status == RecipientStatus::Deferred {
            assert_eq!(item.recipients[0].code, Some(451));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never deferred: {item:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sink.set_mode(SinkMode::Accept).unwrap();
    let sent = world.wait_for_status(&queued.id, OutboxStatus::Sent).await;
    assert_eq!(sent.recipients[0].status, RecipientStatus::Accepted);
    assert_eq!(received_by(sink, &to).len(), 1);
}

#[tokio::test]
async fn a_crashed_workers_lease_expires_and_the_item_is_sent() {
    let mut world = World::new(fast_config()).await;
    let me = unique("crash");
    let account = world.password_account(happy(), &me).await;
    let to = unique("after-crash");
    let queued = world
        .outbox
        .submit(&account, message_to(&to), None, None)
        .await
        .unwrap();
    // A worker claims the item and dies without a word.
    let lease = Duration::from_millis(400);
    let claimed = world
        .store
        .outbox()
        .claim_due(chrono::Utc::now(), 10, lease)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].item.status, OutboxStatus::Sending);
    world.start_workers();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        received_by(happy_sink(), &to).is_empty(),
        "sent while the lease held"
    );
    let sent = world.wait_for_status(&queued.id, OutboxStatus::Sent).await;
    assert_eq!(sent.attempts, 2, "the lost claim counts as an attempt");
    happy_sink().wait_for_rcpt(&to, WAIT).await.unwrap();
    assert_eq!(received_by(happy_sink(), &to).len(), 1);
    // The dead worker's late report changes nothing.
    let late = world
        .store
        .outbox()
        .mark_failed(&claimed[0].lease, "late", vec![])
        .await
        .unwrap();
    assert!(late.is_none());
    assert_eq!(
        world.outbox.get(&queued.id).await.unwrap().unwrap().status,
        OutboxStatus::Sent
    );
}

#[tokio::test]
async fn over_the_rate_limit_messages_wait_in_the_queue() {
    let interval = Duration::from_millis(450);
    let mut world = World::new(postern_outbox::OutboxConfig {
        rate_limit: Some(RateLimit { burst: 1, interval }),
        ..fast_config()
    })
    .await;
    let me = unique("rate");
    let account = world.password_account(happy(), &me).await;
    let recipients: Vec<String> = (0..3).map(|i| unique(&format!("rate{i}"))).collect();
    let mut ids = Vec::new();
    for to in &recipients {
        ids.push(
            world
                .outbox
                .submit(&account, message_to(to), None, None)
                .await
                .unwrap()
                .id,
        );
    }
    world.start_workers();
    for id in &ids {
        let item = world.wait_for_status(id, OutboxStatus::Sent).await;
        assert_eq!(item.attempts, 1, "waiting for the limit is not an attempt");
    }
    let mut arrivals = Vec::new();
    for to in &recipients {
        let received = received_by(happy_sink(), to);
        assert_eq!(received.len(), 1);
        arrivals.push(received[0].received_at);
    }
    arrivals.sort();
    // Attempts start one interval apart; the first also pays for the login (~100 ms here), so
    // arrivals can be a little closer than the interval, never much.
    for pair in arrivals.windows(2) {
        let gap = (pair[1] - pair[0]).to_std().unwrap();
        assert!(gap >= interval * 2 / 3, "arrived {gap:?} apart");
    }
}
