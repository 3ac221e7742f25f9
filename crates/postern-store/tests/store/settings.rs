//! Per-account settings (migration 0010): written at creation and by `update_settings`, read with
//! the account, `{}` for accounts of an older schema; and the sent-in-a-window count behind daily
//! sending limits.

use std::num::NonZeroU32;
use std::path::Path;

use chrono::{Duration, TimeDelta, Utc};
use postern_store::{
    AccountId, AccountSettings, NewOutboxItem, OutboxId, OutboxStatus, RecipientResult,
    RecipientStatus, SentCopyMode, SmtpEnvelope, Store, StoreError,
};
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnectOptions;

use crate::fixtures::{Fixture, migrate_with, new_password_account};

fn some_settings() -> AccountSettings {
    AccountSettings {
        sync_mailboxes: Some(vec!["INBOX".into(), "Projects/%".into()]),
        sent_copy: Some(SentCopyMode::Always),
        send_rate_per_minute: NonZeroU32::new(20),
        send_daily_limit: NonZeroU32::new(3),
    }
}

#[tokio::test]
async fn settings_are_written_at_creation_and_read_with_the_account() {
    let fx = Fixture::new().await;
    let accounts = fx.store.accounts();
    let plain = accounts
        .create(new_password_account("plain@example.org"), None)
        .await
        .unwrap();
    assert!(plain.settings.is_default());

    let tuned = accounts
        .create_with_settings(
            new_password_account("tuned@example.org"),
            &some_settings(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(tuned.settings, some_settings());
    let read = accounts.get(&tuned.id).await.unwrap().unwrap();
    assert_eq!(read.settings, some_settings());
    let listed = accounts.list().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].settings, some_settings());
    assert!(listed[0].settings.is_default());
}

#[tokio::test]
async fn update_settings_replaces_them_and_refuses_an_unknown_account() {
    let fx = Fixture::new().await;
    let accounts = fx.store.accounts();
    let created = accounts
        .create(new_password_account("ada@example.org"), None)
        .await
        .unwrap();

    let updated = accounts
        .update_settings(&created.id, &some_settings())
        .await
        .unwrap();
    assert_eq!(updated.settings, some_settings());
    assert!(updated.updated_at >= created.updated_at);
    assert_eq!(
        (updated.state, &updated.email),
        (created.state, &created.email),
        "nothing else changes"
    );
    assert_eq!(
        accounts.get(&created.id).await.unwrap().unwrap().settings,
        some_settings()
    );

    let back = accounts
        .update_settings(&created.id, &AccountSettings::default())
        .await
        .unwrap();
    assert!(back.settings.is_default());

    let err = accounts
        .update_settings(&AccountId::generate(), &some_settings())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

/// Applies the shipped migrations below `below` to a new database at `db`, as an older build would.
async fn create_older_schema(db: &Path, migrations: &Path, below: i64) -> SqlitePool {
    std::fs::create_dir_all(migrations).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for entry in std::fs::read_dir(shipped).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let version: i64 = name[..4].parse().unwrap();
        if version < below {
            std::fs::copy(&path, migrations.join(&name)).unwrap();
        }
    }
    migrate_with(db, migrations).await
}

#[tokio::test]
async fn accounts_of_the_previous_schema_read_as_default_settings() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("postern.db");
    let pool = create_older_schema(&db, &dir.path().join("v9"), 10).await;
    let id = AccountId::generate();
    sqlx::query(
        "INSERT INTO accounts (id, email, imap_host, imap_port, imap_security, smtp_host, \
         smtp_port, smtp_security, auth_kind, state, created_at, updated_at) \
         VALUES (?, 'old@example.org', 'mail.example.org', 993, 'tls', 'mail.example.org', 465, \
         'tls', 'password', 'connected', 0, 0)",
    )
    .bind(id.as_str())
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = Store::open_sqlite(&db).await.unwrap();
    let account = store.accounts().get(&id).await.unwrap().unwrap();
    assert_eq!(account.email, "old@example.org");
    assert!(account.settings.is_default());
    store.close().await;
}

#[tokio::test]
async fn stored_settings_that_are_not_an_object_are_corrupt_data() {
    let (_dir, path, store) = crate::fresh_store().await;
    let created = store
        .accounts()
        .create(new_password_account("ada@example.org"), None)
        .await
        .unwrap();
    let pool = raw_pool(&path).await;
    sqlx::query("UPDATE accounts SET settings = '[1, 2]' WHERE id = ?")
        .bind(created.id.as_str())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let err = store.accounts().get(&created.id).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

async fn raw_pool(path: &Path) -> SqlitePool {
    SqlitePool::connect_with(SqliteConnectOptions::new().filename(path))
        .await
        .unwrap()
}

/// Queues one message for `account` and returns its id.
async fn enqueue(store: &Store, account: &AccountId) -> OutboxId {
    let id = OutboxId::generate();
    store
        .outbox()
        .enqueue(NewOutboxItem {
            id: id.clone(),
            account_id: account.clone(),
            raw: b"Subject: hi\r\n\r\nhi\r\n".to_vec(),
            envelope: SmtpEnvelope {
                from: "ada@example.org".into(),
                recipients: vec!["bob@example.org".into()],
            },
            message_id: format!("{id}@example.org"),
            send_at: Utc::now(),
            idempotency_key: None,
        })
        .await
        .unwrap();
    id
}

/// Queues `count` messages for `account` and marks them all sent.
async fn send(store: &Store, account: &AccountId, count: usize) -> Vec<OutboxId> {
    let mut ids = Vec::new();
    for _ in 0..count {
        ids.push(enqueue(store, account).await);
    }
    let lease = std::time::Duration::from_secs(60);
    let claimed = store
        .outbox()
        .claim_due(Utc::now(), 100, lease)
        .await
        .unwrap();
    assert_eq!(claimed.len(), count);
    for item in claimed {
        let accepted = RecipientResult {
            status: RecipientStatus::Accepted,
            code: Some(250),
            ..RecipientResult::pending("bob@example.org")
        };
        let sent = store
            .outbox()
            .mark_sent(&item.lease, vec![accepted])
            .await
            .unwrap();
        assert_eq!(sent.map(|item| item.status), Some(OutboxStatus::Sent));
    }
    ids
}

#[tokio::test]
async fn sends_are_counted_per_account_within_the_window_only() {
    let (_dir, path, store) = crate::fresh_store().await;
    let accounts = store.accounts();
    let ada = accounts
        .create(new_password_account("ada@example.org"), None)
        .await
        .unwrap()
        .id;
    let bob = accounts
        .create(new_password_account("bob@example.org"), None)
        .await
        .unwrap()
        .id;
    let sent = send(&store, &ada, 3).await;
    send(&store, &bob, 1).await;
    enqueue(&store, &ada).await; // queued, not sent: not counted

    // The first send happened 25 hours ago, the second 23 hours ago.
    let pool = raw_pool(&path).await;
    for (id, hours) in [(&sent[0], 25), (&sent[1], 23)] {
        let at = (Utc::now() - TimeDelta::hours(hours)).timestamp_millis();
        sqlx::query("UPDATE outbox SET sent_at = ? WHERE id = ?")
            .bind(at)
            .bind(id.as_str())
            .execute(&pool)
            .await
            .unwrap();
    }

    let outbox = store.outbox();
    let window = Utc::now() - Duration::hours(24);
    assert_eq!(outbox.count_sent_since(&ada, window).await.unwrap(), 2);
    assert_eq!(outbox.count_sent_since(&bob, window).await.unwrap(), 1);
    let oldest = outbox
        .nth_sent_since(&ada, window, 0)
        .await
        .unwrap()
        .unwrap();
    let age = Utc::now() - oldest;
    assert!(
        (TimeDelta::minutes(23 * 60 - 1)..TimeDelta::minutes(23 * 60 + 1)).contains(&age),
        "the oldest send in the window is the one of 23 hours ago: {age}"
    );
    let newest = outbox
        .nth_sent_since(&ada, window, 1)
        .await
        .unwrap()
        .unwrap();
    assert!(newest > oldest);
    assert_eq!(outbox.nth_sent_since(&ada, window, 2).await.unwrap(), None);
    let all_time = Utc::now() - Duration::days(30);
    assert_eq!(outbox.count_sent_since(&ada, all_time).await.unwrap(), 3);

    // The count is answered from the partial index, not by scanning the outbox.
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT count(*) FROM outbox \
         WHERE account_id = ? AND status = 'sent' AND sent_at >= ?",
    )
    .bind(ada.as_str())
    .bind(window.timestamp_millis())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        plan.iter()
            .any(|(_, _, _, detail)| detail.contains("outbox_sent_by_account")),
        "{plan:?}"
    );
    pool.close().await;
}
