//! Readers of the event log are woken after each commit that appended events, and find them.

use crate::fixtures::Fixture;
use postern_store::{AccountState, NewEvent, Transition};
use std::time::Duration;

#[tokio::test]
async fn an_append_or_an_announced_transition_wakes_waiting_readers_after_commit() {
    let f = Fixture::new().await;
    let app = f.app("wake").await;
    let account = f.oauth_account(&app.id, "wake@example.test").await;
    let waker = f.store.events_appended();

    let waiting = waker.notified();
    tokio::pin!(waiting);
    waiting.as_mut().enable();
    f.store
        .events()
        .append(NewEvent {
            account_id: None,
            kind: "test.ping".into(),
            payload: serde_json::json!({}),
        })
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(1), waiting)
        .await
        .expect("an append did not wake the reader");

    let waiting = waker.notified();
    tokio::pin!(waiting);
    waiting.as_mut().enable();
    let transition = Transition::announced(
        &account,
        AccountState::Connected,
        None,
        "account.connected",
        serde_json::json!({}),
    );
    f.store
        .accounts()
        .transition(&account, transition)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(1), waiting)
        .await
        .expect("a transition did not wake the reader");
    // Woken after the commit: the event is there to read.
    let events = f
        .store
        .events()
        .list_after(0, 10, Some(account.as_str()))
        .await
        .unwrap();
    assert_eq!(events.last().unwrap().kind, "account.connected");
}
