//! The store's outbox repository on its own (no mail server): idempotency, leases, outcomes and
//! their events, cancellation, listing.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use postern_store::{
    AccountAuth, AccountId, AccountState, EVENT_MESSAGE_FAILED, EVENT_MESSAGE_SENT, Endpoint,
    Enqueued, NewAccount, NewOutboxItem, OutboxCancel, OutboxId, OutboxQuery, OutboxStatus,
    RecipientResult, RecipientStatus, Security, SmtpEnvelope, StoreError,
};

use crate::support::{World, fast_config};

const LEASE: Duration = Duration::from_secs(60);

async fn account(world: &World) -> AccountId {
    let endpoint = Endpoint {
        host: "localhost".into(),
        port: 1,
        security: Security::Tls,
        ca_file: None,
    };
    let id = AccountId::generate();
    let new = NewAccount {
        id: id.clone(),
        email: "me@example.test".into(),
        name: None,
        imap: endpoint.clone(),
        smtp: endpoint,
        auth: AccountAuth::Password { username: None },
        state: AccountState::Connected,
    };
    world.store.accounts().create(new, None).await.unwrap();
    id
}

fn item(account_id: &AccountId, key: Option<&str>) -> NewOutboxItem {
    NewOutboxItem {
        id: OutboxId::generate(),
        account_id: account_id.clone(),
        raw: b"Subject: x\r\n\r\nbody\r\n".to_vec(),
        envelope: SmtpEnvelope {
            from: "me@example.test".into(),
            recipients: vec!["a@example.test".into(), "b@example.test".into()],
        },
        message_id: format!("{}@example.test", uuid::Uuid::new_v4().simple()),
        send_at: Utc::now(),
        idempotency_key: key.map(str::to_owned),
    }
}

fn accepted(address: &str) -> RecipientResult {
    RecipientResult {
        address: address.into(),
        status: RecipientStatus::Accepted,
        code: Some(250),
        reply: Some("250 2.0.0 OK".into()),
    }
}

#[tokio::test]
async fn enqueued_items_start_queued_with_every_recipient_pending() {
    let world = World::new(fast_config()).await;
    let account = account(&world).await;
    let new = item(&account, None);
    let enqueued = world.store.outbox().enqueue(new.clone()).await.unwrap();
    let Enqueued::Created(stored) = enqueued else {
        panic!("a new item was expected");
    };
    assert_eq!(stored.id, new.id);
    assert_eq!(stored.status, OutboxStatus::Queued);
    assert_eq!(stored.attempts, 0);
    assert_eq!(stored.size, new.raw.len() as u64);
    assert_eq!(stored.envelope, new.envelope);
    assert_eq!(
        stored.recipients,
        [
            RecipientResult::pending("a@example.test"),
            RecipientResult::pending("b@example.test")
        ]
    );
    assert_eq!(
        world.store.outbox().raw(&new.id).await.unwrap(),
        Some(new.raw)
    );
    let unknown = item(&AccountId::generate(), None);
    assert!(matches!(
        world.store.outbox().enqueue(unknown).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn an_idempotency_key_holds_per_account_for_24_hours() {
    let world = World::new(fast_config()).await;
    let (first_account, second_account) = (account(&world).await, account(&world).await);
    let outbox = world.store.outbox();
    let first = outbox
        .enqueue(item(&first_account, Some("k")))
        .await
        .unwrap();
    assert!(first.is_new());
    let again = outbox
        .enqueue(item(&first_account, Some("k")))
        .await
        .unwrap();
    assert!(!again.is_new());
    assert_eq!(again.item().id, first.item().id);
    let elsewhere = outbox
        .enqueue(item(&second_account, Some("k")))
        .await
        .unwrap();
    assert!(elsewhere.is_new(), "keys are per account");

    // A day later the key is free again; the old item keeps its history but not the key.
    world
        .age_outbox(&first.item().id, TimeDelta::hours(25))
        .await;
    let later = outbox
        .enqueue(item(&first_account, Some("k")))
        .await
        .unwrap();
    assert!(later.is_new());
    let old = outbox.get(&first.item().id).await.unwrap().unwrap();
    assert_eq!(old.idempotency_key, None);
    assert_eq!(later.item().idempotency_key.as_deref(), Some("k"));
}

#[tokio::test]
async fn claims_are_leases_that_lapse_and_cannot_be_finished_twice() {
    let world = World::new(fast_config()).await;
    let account = account(&world).await;
    let outbox = world.store.outbox();
    let due = outbox
        .enqueue(item(&account, None))
        .await
        .unwrap()
        .into_item();
    let mut later = item(&account, None);
    later.send_at = Utc::now() + TimeDelta::hours(1);
    let scheduled = outbox.enqueue(later).await.unwrap().into_item();

    let now = Utc::now();
    let claimed = outbox.claim_due(now, 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1, "the scheduled item is not due");
    assert_eq!(claimed[0].item.id, due.id);
    assert_eq!(claimed[0].item.attempts, 1);
    assert_eq!(claimed[0].raw, b"Subject: x\r\n\r\nbody\r\n");
    assert!(
        outbox.claim_due(now, 10, LEASE).await.unwrap().is_empty(),
        "held"
    );

    // After the lease, another worker takes it over; the first one's lease no longer counts.
    let after = now + TimeDelta::minutes(2);
    let retaken = outbox.claim_due(after, 10, LEASE).await.unwrap();
    assert_eq!(retaken.len(), 1);
    assert_ne!(retaken[0].lease.lease_id, claimed[0].lease.lease_id);
    assert_eq!(retaken[0].item.attempts, 2);
    let stale = outbox
        .mark_sent(&claimed[0].lease, vec![accepted("a@example.test")])
        .await
        .unwrap();
    assert!(stale.is_none());
    let sent = outbox
        .mark_sent(
            &retaken[0].lease,
            vec![accepted("a@example.test"), accepted("b@example.test")],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sent.status, OutboxStatus::Sent);
    assert!(sent.sent_at.is_some() && sent.lease_expires_at.is_none());
    assert!(
        outbox
            .mark_failed(&retaken[0].lease, "again", vec![])
            .await
            .unwrap()
            .is_none()
    );
    let events = world.events(&account, EVENT_MESSAGE_SENT).await;
    assert_eq!(events.len(), 1, "one event for one outcome");
    assert_eq!(events[0].payload["outbox_id"], due.id.to_string());
    assert_eq!(events[0].payload["recipients"][1]["status"], "accepted");
    assert_eq!(
        outbox.get(&scheduled.id).await.unwrap().unwrap().status,
        OutboxStatus::Queued
    );
}

#[tokio::test]
async fn retries_wait_releases_do_not_count_and_failures_are_announced() {
    let world = World::new(fast_config()).await;
    let account = account(&world).await;
    let outbox = world.store.outbox();
    let id = outbox
        .enqueue(item(&account, None))
        .await
        .unwrap()
        .into_item()
        .id;
    let now = Utc::now();

    let claim = outbox.claim_due(now, 1, LEASE).await.unwrap().remove(0);
    let next = now + TimeDelta::seconds(30);
    let deferred = vec![RecipientResult {
        status: RecipientStatus::Deferred,
        code: Some(451),
        reply: Some("451 4.3.0 later".into()),
        ..RecipientResult::pending("a@example.test")
    }];
    let retried = outbox
        .mark_retry(&claim.lease, next, "451 4.3.0 later", deferred.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retried.status, OutboxStatus::Queued);
    assert_eq!(
        retried.next_attempt_at.timestamp_millis(),
        next.timestamp_millis()
    );
    assert_eq!(retried.last_error.as_deref(), Some("451 4.3.0 later"));
    assert_eq!(retried.recipients, deferred);
    assert!(
        outbox.claim_due(now, 1, LEASE).await.unwrap().is_empty(),
        "not due yet"
    );

    let claim = outbox.claim_due(next, 1, LEASE).await.unwrap().remove(0);
    assert_eq!(claim.item.attempts, 2);
    let released = outbox.release(&claim.lease, next).await.unwrap().unwrap();
    assert_eq!(released.attempts, 1, "a release gives the attempt back");
    assert_eq!(released.last_error.as_deref(), Some("451 4.3.0 later"));

    let claim = outbox.claim_due(next, 1, LEASE).await.unwrap().remove(0);
    let failed = outbox
        .mark_failed(&claim.lease, "550 5.1.1 no such user", vec![])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, OutboxStatus::Failed);
    let events = world.events(&account, EVENT_MESSAGE_FAILED).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].payload["error"], "550 5.1.1 no such user");
    assert_eq!(events[0].payload["outbox_id"], id.to_string());
    assert!(world.events(&account, EVENT_MESSAGE_SENT).await.is_empty());
}

#[tokio::test]
async fn only_queued_items_can_be_cancelled() {
    let world = World::new(fast_config()).await;
    let account = account(&world).await;
    let outbox = world.store.outbox();
    let queued = outbox
        .enqueue(item(&account, None))
        .await
        .unwrap()
        .into_item();
    let OutboxCancel::Cancelled(cancelled) = outbox.cancel(&queued.id).await.unwrap() else {
        panic!("a queued item is cancellable");
    };
    assert_eq!(cancelled.status, OutboxStatus::Cancelled);
    assert!(
        outbox
            .claim_due(Utc::now(), 10, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        outbox.cancel(&queued.id).await.unwrap(),
        OutboxCancel::NotQueued(_)
    ));
    let sending = outbox
        .enqueue(item(&account, None))
        .await
        .unwrap()
        .into_item();
    outbox.claim_due(Utc::now(), 10, LEASE).await.unwrap();
    assert!(matches!(
        outbox.cancel(&sending.id).await.unwrap(),
        OutboxCancel::NotQueued(item) if item.status == OutboxStatus::Sending
    ));
    assert_eq!(
        outbox.cancel(&OutboxId::generate()).await.unwrap(),
        OutboxCancel::NotFound
    );
}

#[tokio::test]
async fn lists_filter_by_account_and_status_newest_first_in_pages() {
    let world = World::new(fast_config()).await;
    let (mine, theirs) = (account(&world).await, account(&world).await);
    let outbox = world.store.outbox();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            outbox
                .enqueue(item(&mine, None))
                .await
                .unwrap()
                .into_item()
                .id,
        );
    }
    let other = outbox
        .enqueue(item(&theirs, None))
        .await
        .unwrap()
        .into_item();
    outbox.cancel(&ids[0]).await.unwrap();
    let query = |account_id: Option<&AccountId>, status, before, limit| OutboxQuery {
        account_id: account_id.cloned(),
        status,
        before,
        limit,
    };
    let listed = |items: Vec<postern_store::OutboxItem>| -> Vec<OutboxId> {
        items.into_iter().map(|i| i.id).collect()
    };
    let all_mine = outbox
        .list(&query(Some(&mine), None, None, 10))
        .await
        .unwrap();
    assert_eq!(
        listed(all_mine),
        [ids[2].clone(), ids[1].clone(), ids[0].clone()]
    );
    let queued = outbox
        .list(&query(Some(&mine), Some(OutboxStatus::Queued), None, 10))
        .await
        .unwrap();
    assert_eq!(listed(queued), [ids[2].clone(), ids[1].clone()]);
    let page = outbox.list(&query(None, None, None, 2)).await.unwrap();
    assert_eq!(listed(page), [other.id.clone(), ids[2].clone()]);
    let next = outbox
        .list(&query(None, None, Some(ids[2].clone()), 2))
        .await
        .unwrap();
    assert_eq!(listed(next), [ids[1].clone(), ids[0].clone()]);
}

#[tokio::test]
async fn deleting_an_account_deletes_its_outbox_and_keeps_its_events() {
    let world = World::new(fast_config()).await;
    let account = account(&world).await;
    let outbox = world.store.outbox();
    let id = outbox
        .enqueue(item(&account, None))
        .await
        .unwrap()
        .into_item()
        .id;
    let claim = outbox
        .claim_due(Utc::now(), 1, LEASE)
        .await
        .unwrap()
        .remove(0);
    outbox.mark_sent(&claim.lease, vec![]).await.unwrap();
    assert!(world.store.accounts().delete(&account).await.unwrap());
    assert!(outbox.get(&id).await.unwrap().is_none());
    assert_eq!(world.events(&account, EVENT_MESSAGE_SENT).await.len(), 1);
}
