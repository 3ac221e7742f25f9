//! The Sent copy on a real Dovecot: after a send, the message is in the account's Sent mailbox,
//! byte for byte as queued and `\Seen`; with `SentCopy::Never` it is not, and an account's own
//! `sent_copy` setting beats the outbox's.

use async_imap::types::Flag;
use futures::TryStreamExt as _;
use postern_auth::context::AuthContext;
use postern_auth::flows::Flows;
use postern_auth::token_manager::{RefreshPolicy, TokenManager};
use postern_outbox::{OutboxConfig, SendRequest, SentCopy};
use postern_store::{AccountId, AccountSettings, OutboxStatus, SentCopyMode};
use postern_sync::ImapSession;
use postern_sync::account::{AccountCredentials, open_session};

use crate::support::{REDIRECT, WAIT, World, fast_config, happy, happy_sink, unique};

/// A message of the Sent mailbox: its bytes and whether it is `\Seen`.
struct SentMessage {
    raw: Vec<u8>,
    seen: bool,
}

async fn imap_session(world: &World, account: &AccountId) -> ImapSession {
    let ctx = AuthContext {
        store: world.store.clone(),
        vault: world.vault.clone(),
        http: postern_auth::oauth::http_client().unwrap(),
    };
    let tokens = TokenManager::new(
        Flows::new(ctx.clone(), REDIRECT.into()),
        RefreshPolicy::default(),
    );
    let account = world.store.accounts().get(account).await.unwrap().unwrap();
    open_session(&account, &AccountCredentials::new(ctx, tokens))
        .await
        .unwrap()
}

/// Every message of the account's `Sent` mailbox, read without changing flags.
async fn sent_messages(world: &World, account: &AccountId) -> Vec<SentMessage> {
    let mut session = imap_session(world, account).await;
    let inner = session.inner_mut();
    let mailbox = inner.examine("Sent").await.unwrap();
    if mailbox.exists == 0 {
        return Vec::new();
    }
    let fetches: Vec<_> = inner
        .fetch("1:*", "(FLAGS BODY.PEEK[])")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    fetches
        .iter()
        .map(|fetch| SentMessage {
            raw: fetch.body().unwrap().to_vec(),
            seen: fetch.flags().any(|flag| flag == Flag::Seen),
        })
        .collect()
}

async fn send_one(world: &World, account: &AccountId) -> (postern_store::OutboxId, String) {
    let (to, hidden) = (unique("to"), unique("hidden"));
    let request = SendRequest {
        to: vec![to.as_str().into()],
        bcc: vec![hidden.as_str().into()],
        subject: Some("Filed in Sent".into()),
        text: Some("A copy of this goes to Sent.\n".into()),
        ..SendRequest::default()
    };
    let queued = world
        .outbox
        .submit(account, request, None, None)
        .await
        .unwrap();
    world.wait_for_status(&queued.id, OutboxStatus::Sent).await;
    happy_sink().wait_for_rcpt(&hidden, WAIT).await.unwrap();
    (queued.id, hidden)
}

#[tokio::test]
async fn a_sent_message_is_filed_in_sent_as_queued_and_seen() {
    let mut world = World::new(fast_config()).await;
    let account = world.password_account(happy(), &unique("filer")).await;
    world.start_workers();
    let (id, hidden) = send_one(&world, &account).await;
    // The copy follows `sent`, so the item is sent before it exists; stopping the workers waits
    // for the item in hand, copy included.
    world.stop_workers().await;

    let stored = world.outbox.raw_message(&id).await.unwrap().unwrap();
    let sent = sent_messages(&world, &account).await;
    assert_eq!(sent.len(), 1, "exactly one copy in Sent");
    assert_eq!(
        sent[0].raw, stored,
        "the copy is the queued message, byte for byte"
    );
    assert!(sent[0].seen, "the copy is \\Seen");
    let item = world.outbox.get(&id).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&sent[0].raw);
    assert!(
        text.contains(&format!("<{}>", item.message_id)),
        "the copy carries the Message-ID: {text}"
    );
    assert!(!text.contains(&hidden), "the Bcc address leaked into Sent");
}

#[tokio::test]
async fn never_leaves_sent_empty() {
    let config = OutboxConfig {
        sent_copy: SentCopy::Never,
        ..fast_config()
    };
    let mut world = World::new(config).await;
    let account = world.password_account(happy(), &unique("nofiler")).await;
    world.start_workers();
    send_one(&world, &account).await;
    world.stop_workers().await;

    assert!(sent_messages(&world, &account).await.is_empty());
}

/// An account of its own with `sent_copy` set to `mode` in its settings.
async fn account_copying(world: &World, prefix: &str, mode: SentCopyMode) -> AccountId {
    let account = world.password_account(happy(), &unique(prefix)).await;
    let settings = AccountSettings {
        sent_copy: Some(mode),
        ..AccountSettings::default()
    };
    world
        .store
        .accounts()
        .update_settings(&account, &settings)
        .await
        .unwrap();
    account
}

#[tokio::test]
async fn the_accounts_own_setting_beats_the_outboxs() {
    // The outbox says "always"; one account says "never" (its host is not Gmail's, so only the
    // setting can keep the copy out).
    let config = OutboxConfig {
        sent_copy: SentCopy::Always,
        ..fast_config()
    };
    let mut world = World::new(config).await;
    let never = account_copying(&world, "never", SentCopyMode::Never).await;
    let default = world.password_account(happy(), &unique("default")).await;
    world.start_workers();
    send_one(&world, &never).await;
    send_one(&world, &default).await;
    world.stop_workers().await;
    assert!(sent_messages(&world, &never).await.is_empty());
    assert_eq!(sent_messages(&world, &default).await.len(), 1);

    // The other way round: the outbox says "never"; the account says "always".
    let config = OutboxConfig {
        sent_copy: SentCopy::Never,
        ..fast_config()
    };
    let mut world = World::new(config).await;
    let always = account_copying(&world, "always", SentCopyMode::Always).await;
    world.start_workers();
    let (id, _) = send_one(&world, &always).await;
    world.stop_workers().await;
    let sent = sent_messages(&world, &always).await;
    assert_eq!(sent.len(), 1);
    let stored = world.outbox.raw_message(&id).await.unwrap().unwrap();
    assert_eq!(sent[0].raw, stored);
}
