//! What `submit` refuses (nothing is queued then), scheduling, and cancelling through the service.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use postern_outbox::{CancelError, OutboxConfig, SendRequest, SubmitError};
use postern_store::{AccountId, AccountState, OutboxQuery, OutboxStatus, Transition};

use crate::support::{World, fast_config, happy, happy_sink, received_by, unique};

fn hello(to: &str) -> SendRequest {
    SendRequest {
        to: vec![to.into()],
        subject: Some("hello".into()),
        text: Some("x".into()),
        ..SendRequest::default()
    }
}

async fn queued_count(world: &World) -> usize {
    world
        .outbox
        .list(&OutboxQuery::default())
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn refused_submissions_queue_nothing() {
    let world = World::new(OutboxConfig {
        max_message_bytes: 2_000,
        ..fast_config()
    })
    .await;
    let account = world.password_account(happy(), &unique("refusals")).await;

    let unknown = world
        .outbox
        .submit(&AccountId::generate(), hello("a@example.test"), None, None)
        .await;
    assert!(matches!(unknown, Err(SubmitError::AccountNotFound(_))));

    let invalid = SendRequest {
        to: vec!["not an address".into()],
        ..SendRequest::default()
    };
    let Err(SubmitError::Invalid(errors)) = world
        .outbox
        .submit(&account, invalid, Some("bad key".into()), None)
        .await
    else {
        panic!("an invalid request is refused");
    };
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["idempotency_key", "to[0]"]);

    let big = SendRequest {
        text: Some("x".repeat(5_000)),
        ..hello("a@example.test")
    };
    let too_large = world.outbox.submit(&account, big, None, None).await;
    assert!(
        matches!(too_large, Err(SubmitError::TooLarge { limit: 2_000, .. })),
        "{too_large:?}"
    );

    let transition = Transition {
        to: AccountState::NeedsReauth,
        last_error: Some("grant revoked".into()),
        event: None,
    };
    world
        .store
        .accounts()
        .transition(&account, transition)
        .await
        .unwrap();
    let not_ready = world
        .outbox
        .submit(&account, hello("a@example.test"), None, None)
        .await;
    assert!(matches!(
        not_ready,
        Err(SubmitError::AccountNotReady {
            state: AccountState::NeedsReauth,
            ..
        })
    ));
    assert_eq!(queued_count(&world).await, 0);
}

#[tokio::test]
async fn a_scheduled_message_waits_for_its_time_and_can_be_cancelled_before() {
    let mut world = World::new(fast_config()).await;
    let account = world.password_account(happy(), &unique("scheduler")).await;
    world.start_workers();
    let (later, never) = (unique("later"), unique("never"));
    let at = Utc::now() + TimeDelta::milliseconds(700);
    let scheduled = world
        .outbox
        .submit(&account, hello(&later), None, Some(at))
        .await
        .unwrap();
    let cancelled = world
        .outbox
        .submit(&account, hello(&never), None, Some(at))
        .await
        .unwrap();
    let item = world.outbox.cancel(&cancelled.id).await.unwrap();
    assert_eq!(item.status, OutboxStatus::Cancelled);

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        world
            .outbox
            .get(&scheduled.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        OutboxStatus::Queued
    );
    let sent = world
        .wait_for_status(&scheduled.id, OutboxStatus::Sent)
        .await;
    assert!(sent.sent_at.unwrap() >= at);
    assert_eq!(received_by(happy_sink(), &later).len(), 1);
    assert!(received_by(happy_sink(), &never).is_empty());

    let too_late = world.outbox.cancel(&scheduled.id).await;
    assert!(matches!(
        too_late,
        Err(CancelError::NotCancellable {
            status: OutboxStatus::Sent,
            ..
        })
    ));
    let unknown = world
        .outbox
        .cancel(&postern_store::OutboxId::generate())
        .await;
    assert!(matches!(unknown, Err(CancelError::NotFound(_))));
}

#[tokio::test]
async fn stopped_workers_leave_the_queue_for_the_next_start() {
    let mut world = World::new(fast_config()).await;
    let account = world.password_account(happy(), &unique("restart")).await;
    world.start_workers();
    tokio::time::timeout(Duration::from_secs(2), world.stop_workers())
        .await
        .expect("workers stop promptly");
    let to = unique("after-restart");
    let queued = world
        .outbox
        .submit(&account, hello(&to), None, None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        world.outbox.get(&queued.id).await.unwrap().unwrap().status,
        OutboxStatus::Queued
    );
    world.restart_workers();
    world.wait_for_status(&queued.id, OutboxStatus::Sent).await;
    assert_eq!(received_by(happy_sink(), &to).len(), 1);
}
