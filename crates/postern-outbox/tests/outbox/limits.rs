//! Per-account limits on a real Dovecot: a daily limit sends that many and keeps the rest queued
//! (not failed, no attempt charged) until the oldest send leaves the 24-hour window, a fresh
//! outbox on the same store (a restart) still holds to it, and a raised limit lets the held
//! messages go once the outbox is told (`limits_changed`), never more than the limit allows.

use std::num::NonZeroU32;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use postern_auth::flows::Flows;
use postern_auth::token_manager::{RefreshPolicy, TokenManager};
use postern_outbox::{OutboxService, SendRequest};
use postern_store::{AccountId, AccountSettings, OutboxItem, OutboxQuery, OutboxStatus};
use tokio::sync::watch;

use crate::support::{REDIRECT, World, fast_config, happy, happy_sink, received_by, unique};

async fn submit_to(
    outbox: &OutboxService,
    account: &AccountId,
    to: &str,
) -> postern_store::OutboxId {
    let request = SendRequest {
        to: vec![to.into()],
        subject: Some("Counted".into()),
        text: Some("One of the day's messages.\n".into()),
        ..SendRequest::default()
    };
    outbox
        .submit(account, request, None, None)
        .await
        .unwrap()
        .id
}

async fn items_of(world: &World, account: &AccountId) -> Vec<OutboxItem> {
    let query = OutboxQuery {
        account_id: Some(account.clone()),
        ..OutboxQuery::default()
    };
    world.outbox.list(&query).await.unwrap()
}

/// Waits until `sent` items are sent and every other one is queued for tomorrow.
async fn wait_for_the_day_to_be_spent(
    world: &World,
    account: &AccountId,
    sent: usize,
) -> Vec<OutboxItem> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let tomorrow_ish = || Utc::now() + TimeDelta::hours(23);
    loop {
        let items = items_of(world, account).await;
        let done = items
            .iter()
            .filter(|i| i.status == OutboxStatus::Sent)
            .count()
            == sent
            && items
                .iter()
                .filter(|i| i.status != OutboxStatus::Sent)
                .all(|i| i.status == OutboxStatus::Queued && i.next_attempt_at > tomorrow_ish());
        if done {
            return items;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the limit did not settle: {items:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_daily_limit_of_three_sends_three_and_keeps_two_queued_for_tomorrow() {
    let mut world = World::new(fast_config()).await;
    let account = world.password_account(happy(), &unique("daily")).await;
    set_daily_limit(&world, &account, 3).await;
    let recipients: Vec<String> = (0..5).map(|_| unique("counted")).collect();
    for to in &recipients {
        submit_to(&world.outbox, &account, to).await;
    }
    world.start_workers();

    let items = wait_for_the_day_to_be_spent(&world, &account, 3).await;
    world.stop_workers().await;

    let (sent, waiting): (Vec<&OutboxItem>, Vec<&OutboxItem>) =
        items.iter().partition(|i| i.status == OutboxStatus::Sent);
    assert_eq!((sent.len(), waiting.len()), (3, 2), "{items:#?}");
    let first_send: DateTime<Utc> = sent.iter().filter_map(|i| i.sent_at).min().unwrap();
    for item in &waiting {
        assert_eq!(item.attempts, 0, "waiting is not an attempt: {item:#?}");
        assert_eq!(item.last_error, None, "waiting is not a failure: {item:#?}");
        assert_eq!(
            item.next_attempt_at,
            first_send + TimeDelta::hours(24),
            "due when the first send leaves the window"
        );
    }
    let sink = happy_sink();
    let arrived = recipients
        .iter()
        .filter(|to| !received_by(sink, to).is_empty())
        .count();
    assert_eq!(arrived, 3, "exactly three reached the server");
    let failed = world.events(&account, "message.failed").await;
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(world.events(&account, "message.sent").await.len(), 3);

    // A restart: a new outbox over the same store knows nothing in memory, yet counts the day.
    let tokens = TokenManager::new(
        Flows::new(
            postern_auth::context::AuthContext {
                store: world.store.clone(),
                vault: world.vault.clone(),
                http: postern_auth::oauth::http_client().unwrap(),
            },
            REDIRECT.into(),
        ),
        RefreshPolicy::default(),
    );
    let restarted = OutboxService::new(
        world.store.clone(),
        world.vault.clone(),
        tokens,
        fast_config(),
    );
    let (stop, shutdown) = watch::channel(false);
    let workers = restarted.spawn_workers(shutdown);
    let late = unique("late");
    let id = submit_to(&restarted, &account, &late).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let item = loop {
        let item = restarted.get(&id).await.unwrap().unwrap();
        if item.next_attempt_at > Utc::now() + TimeDelta::hours(23) {
            break item;
        }
        assert!(tokio::time::Instant::now() < deadline, "{item:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.send(true).unwrap();
    workers.join().await;
    assert_eq!(item.status, OutboxStatus::Queued);
    assert_eq!(item.attempts, 0);
    assert!(received_by(sink, &late).is_empty());
}

#[tokio::test]
async fn a_raised_limit_takes_fresh_messages_at_once_and_held_ones_once_told() {
    let mut world = World::new(fast_config()).await;
    let account = world.password_account(happy(), &unique("raised")).await;
    set_daily_limit(&world, &account, 1).await;
    world.start_workers();
    let first = submit_to(&world.outbox, &account, &unique("first")).await;
    world.wait_for_status(&first, OutboxStatus::Sent).await;
    let second_to = unique("second");
    let second = submit_to(&world.outbox, &account, &second_to).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while world
        .outbox
        .get(&second)
        .await
        .unwrap()
        .unwrap()
        .next_attempt_at
        < Utc::now() + TimeDelta::hours(23)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second message was not held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The limit is raised in the store alone: the held message keeps its time (tomorrow), and
    // a fresh message takes the new place at once.
    set_daily_limit(&world, &account, 2).await;
    let third = submit_to(&world.outbox, &account, &unique("third")).await;
    world.wait_for_status(&third, OutboxStatus::Sent).await;
    let held = world.outbox.get(&second).await.unwrap().unwrap();
    assert_eq!(held.status, OutboxStatus::Queued);
    assert!(received_by(happy_sink(), &second_to).is_empty());

    // Told that the limits changed (as `PATCH /v1/accounts/{id}` does), the outbox makes the held
    // message due; the day's two places are taken, so a worker gives it back for tomorrow.
    assert_eq!(world.outbox.limits_changed(&account).await.unwrap(), 1);
    wait_until_held(&world, &second).await;
    assert!(received_by(happy_sink(), &second_to).is_empty());

    // Raised to three and told: it goes now, still untried before this attempt.
    set_daily_limit(&world, &account, 3).await;
    assert_eq!(world.outbox.limits_changed(&account).await.unwrap(), 1);
    world.wait_for_status(&second, OutboxStatus::Sent).await;
    world.stop_workers().await;
    assert_eq!(received_by(happy_sink(), &second_to).len(), 1);
    assert_eq!(world.outbox.limits_changed(&account).await.unwrap(), 0);
}

/// Stores the account's daily limit (the store alone: the outbox is not told).
async fn set_daily_limit(world: &World, account: &AccountId, limit: u32) {
    let settings = AccountSettings {
        send_daily_limit: NonZeroU32::new(limit),
        ..AccountSettings::default()
    };
    world
        .store
        .accounts()
        .update_settings(account, &settings)
        .await
        .unwrap();
}

/// Waits until `id` is queued for tomorrow (held by the daily limit), untried.
async fn wait_until_held(world: &World, id: &postern_store::OutboxId) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let item = world.outbox.get(id).await.unwrap().unwrap();
        if item.status == OutboxStatus::Queued
            && item.next_attempt_at > Utc::now() + TimeDelta::hours(23)
        {
            assert_eq!(item.attempts, 0, "{item:#?}");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not held: {item:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
