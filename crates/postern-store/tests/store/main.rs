//! Integration tests of `postern-store` against real SQLite files in a temporary folder.
//!
//! One test binary: this file holds the tests of the first schema (API tokens, vault keys,
//! secrets, events); the modules below cover the account aggregates of migration 0002 and later.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test

mod accounts;
mod audit;
mod authorizations;
mod fixtures;
mod grants;
mod migrations;
mod oauth_apps;
mod rotation;
mod search;
mod settings;
mod wake;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Duration, Utc};
use postern_store::{ApiTokenId, NewApiToken, NewEvent, SecretRef, Store, StoreError, StoredKey};
use postern_vault::{KeyId, MasterKey, Sealed, Vault, VaultError, WrappedKey};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// A fresh store in its own temporary folder (kept alive by the returned `TempDir`).
async fn fresh_store() -> (TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("postern.db");
    let store = Store::open_sqlite(&path).await.unwrap();
    (dir, path, store)
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn new_token(name: &str, token: &str) -> NewApiToken {
    NewApiToken {
        name: name.to_owned(),
        token_hash: token_hash(token),
        scopes: vec!["messages:read".to_owned(), "messages:send".to_owned()],
        account_ids: Some(vec!["acc-1".to_owned()]),
        expires_at: None,
    }
}

fn event(account_id: Option<&str>, kind: &str, n: i64) -> NewEvent {
    NewEvent {
        account_id: account_id.map(str::to_owned),
        kind: kind.to_owned(),
        payload: serde_json::json!({ "n": n }),
    }
}

/// A master key, a vault holding data key 1, and the wrapped key 1 stored as the active key.
async fn vault_with_first_key(store: &Store) -> (MasterKey, Vault) {
    let master = MasterKey::generate();
    let first = store.vault_keys().next_key_id().await.unwrap();
    assert_eq!(first, KeyId(1));
    let (wrapped, _) = Vault::new_data_key(&master, first);
    store
        .vault_keys()
        .insert_active(wrapped.clone())
        .await
        .unwrap();
    let vault = Vault::unlock(&master, &[wrapped], first).unwrap();
    (master, vault)
}

/// Seals `plaintext` for `secret` and stores it.
async fn put_secret(store: &Store, vault: &Vault, secret: &SecretRef, plaintext: &[u8]) {
    let sealed = vault.seal(&secret.context(), plaintext);
    store.secrets().put(secret, &sealed).await.unwrap();
}

fn five_secrets() -> Vec<(SecretRef, Vec<u8>)> {
    (0..5)
        .map(|i| {
            let secret = SecretRef::new("account", format!("acc-{i}"), "refresh_token");
            (secret, format!("refresh-token-{i}").into_bytes())
        })
        .collect()
}

async fn all_sealed(store: &Store, secrets: &[(SecretRef, Vec<u8>)]) -> Vec<Sealed> {
    let mut sealed = Vec::new();
    for (secret, _) in secrets {
        sealed.push(store.secrets().get(secret).await.unwrap().unwrap());
    }
    sealed
}

fn key_summary(keys: &[StoredKey]) -> Vec<(KeyId, Vec<u8>, bool)> {
    keys.iter()
        .map(|key| (key.id, key.wrapped.bytes.clone(), key.active))
        .collect()
}

#[tokio::test]
async fn the_store_survives_a_restart() {
    let (dir, path, store) = fresh_store().await;
    let (master, vault) = vault_with_first_key(&store).await;
    let expires_at = Utc::now() + Duration::days(30);
    let created = store
        .api_tokens()
        .create(NewApiToken {
            expires_at: Some(expires_at),
            ..new_token("deploy", "pst_secret")
        })
        .await
        .unwrap();
    let secret = SecretRef::new("account", "acc-1", "password");
    put_secret(&store, &vault, &secret, b"hunter2").await;
    let appended = store
        .events()
        .append(event(Some("acc-1"), "account.connected", 1))
        .await
        .unwrap();
    store.close().await;
    drop(store);

    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let found = store
        .api_tokens()
        .find_by_hash(&token_hash("pst_secret"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, created);
    assert_eq!(found.scopes, ["messages:read", "messages:send"]);
    assert_eq!(found.account_ids, Some(vec!["acc-1".to_owned()]));
    assert_eq!(
        found.expires_at.map(|at| at.timestamp_millis()),
        Some(expires_at.timestamp_millis())
    );

    let keys = store.vault_keys().list().await.unwrap();
    let wrapped: Vec<WrappedKey> = keys.iter().map(|key| key.wrapped.clone()).collect();
    let reopened_vault = Vault::unlock(&master, &wrapped, KeyId(1)).unwrap();
    let sealed = store.secrets().get(&secret).await.unwrap().unwrap();
    let opened = reopened_vault.open(&secret.context(), &sealed).unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), b"hunter2");

    let events = store.events().list_after(0, 10, None).await.unwrap();
    assert_eq!(events, vec![appended]);
    drop(dir);
}

#[tokio::test]
async fn open_creates_missing_parent_folders() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/postern.db");
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(store.secrets().count().await.unwrap(), 0);
    assert!(path.exists());
    store.close().await;

    // WAL mode is recorded in the file itself, so a plain connection sees it.
    let pool =
        sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
            .await
            .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    pool.close().await;
}

#[tokio::test]
async fn a_postgres_url_is_refused_for_now() {
    let err = Store::open("postgres://postern:pw@localhost/postern")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::UnsupportedBackend { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("PostgreSQL"), "{err}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("postern.db");
    std::fs::write(&path, vec![0x42; 8192]).unwrap();
    let err = Store::open_sqlite(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let (_dir, path, store) = fresh_store().await;
    store.close().await;
    let pool =
        sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
            .await
            .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', 1, x'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let err = Store::open_sqlite(&path).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NewerSchema { found: 9999, known } if (1..9999).contains(&known)),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer"), "{err}");
}

#[tokio::test]
async fn rotate_reseals_every_secret_under_the_new_key() {
    let (_dir, _path, store) = fresh_store().await;
    let (master, mut vault) = vault_with_first_key(&store).await;
    let secrets = five_secrets();
    for (secret, plaintext) in &secrets {
        put_secret(&store, &vault, secret, plaintext).await;
    }

    let new_id = store.vault_keys().next_key_id().await.unwrap();
    let (wrapped, key) = Vault::new_data_key(&master, new_id);
    vault.add_key(new_id, key);
    vault.set_active(new_id).unwrap();
    let reseal = |secret: &SecretRef, sealed: &Sealed| vault.reseal(&secret.context(), sealed);
    let report = store
        .vault_keys()
        .rotate(wrapped.clone(), &reseal)
        .await
        .unwrap();

    assert_eq!(report.new_key, KeyId(2));
    assert_eq!(report.resealed, 5);
    assert_eq!(report.retired, vec![KeyId(1)]);
    let keys = store.vault_keys().list().await.unwrap();
    assert_eq!(
        key_summary(&keys),
        vec![(KeyId(2), wrapped.bytes.clone(), true)]
    );

    // Only key 2 is left: a vault holding nothing else must open every secret.
    let only_new = Vault::unlock(&master, &[wrapped], KeyId(2)).unwrap();
    for (secret, plaintext) in &secrets {
        let sealed = store.secrets().get(secret).await.unwrap().unwrap();
        assert_eq!(sealed.key_id(), KeyId(2));
        let opened = only_new.open(&secret.context(), &sealed).unwrap();
        assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), plaintext);
    }
    assert_eq!(store.vault_keys().next_key_id().await.unwrap(), KeyId(3));
}

#[tokio::test]
async fn a_rotation_that_fails_on_the_third_secret_changes_nothing() {
    let (_dir, _path, store) = fresh_store().await;
    let (master, mut vault) = vault_with_first_key(&store).await;
    let secrets = five_secrets();
    for (secret, plaintext) in &secrets {
        put_secret(&store, &vault, secret, plaintext).await;
    }
    let keys_before = key_summary(&store.vault_keys().list().await.unwrap());
    let sealed_before = all_sealed(&store, &secrets).await;

    let (wrapped, key) = Vault::new_data_key(&master, KeyId(2));
    vault.add_key(KeyId(2), key);
    vault.set_active(KeyId(2)).unwrap();
    let calls = AtomicUsize::new(0);
    let failing_third = |secret: &SecretRef, sealed: &Sealed| {
        if calls.fetch_add(1, Ordering::SeqCst) == 2 {
            return Err(VaultError::Tampered);
        }
        vault.reseal(&secret.context(), sealed)
    };
    let err = store
        .vault_keys()
        .rotate(wrapped, &failing_third)
        .await
        .unwrap_err();

    assert!(
        matches!(err, StoreError::Reseal(VaultError::Tampered)),
        "{err:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let keys_after = key_summary(&store.vault_keys().list().await.unwrap());
    assert_eq!(keys_after, keys_before);
    assert_eq!(all_sealed(&store, &secrets).await, sealed_before);
    assert!(
        sealed_before
            .iter()
            .all(|sealed| sealed.key_id() == KeyId(1))
    );
}

#[tokio::test]
async fn a_reseal_that_keeps_the_old_key_is_refused_and_changes_nothing() {
    let (_dir, _path, store) = fresh_store().await;
    let (master, vault) = vault_with_first_key(&store).await;
    let secret = SecretRef::new("oauth_app", "app-1", "client_secret");
    put_secret(&store, &vault, &secret, b"s3cret").await;
    let sealed_before = store.secrets().get(&secret).await.unwrap();

    let (wrapped, _) = Vault::new_data_key(&master, KeyId(2));
    // A buggy callback: re-seals under the still-active old key.
    let buggy = |secret: &SecretRef, sealed: &Sealed| vault.reseal(&secret.context(), sealed);
    let err = store
        .vault_keys()
        .rotate(wrapped, &buggy)
        .await
        .unwrap_err();

    assert!(
        matches!(
            err,
            StoreError::ResealKeyMismatch {
                expected: 2,
                found: 1
            }
        ),
        "{err:?}"
    );
    let keys = store.vault_keys().list().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| (k.id, k.active)).collect::<Vec<_>>(),
        [(KeyId(1), true)]
    );
    assert_eq!(store.secrets().get(&secret).await.unwrap(), sealed_before);
}

#[tokio::test]
async fn key_ids_must_grow_and_only_the_first_key_is_inserted_directly() {
    let (_dir, _path, store) = fresh_store().await;
    let (master, _vault) = vault_with_first_key(&store).await;
    let (second, _) = Vault::new_data_key(&master, KeyId(2));
    let err = store.vault_keys().insert_active(second).await.unwrap_err();
    assert!(
        matches!(err, StoreError::KeyConflict { id: 2, .. }),
        "{err:?}"
    );

    let (reused, _) = Vault::new_data_key(&master, KeyId(1));
    let never = |_: &SecretRef, _: &Sealed| -> Result<Sealed, VaultError> { unreachable!() };
    let err = store.vault_keys().rotate(reused, &never).await.unwrap_err();
    assert!(
        matches!(err, StoreError::KeyConflict { id: 1, .. }),
        "{err:?}"
    );
    assert_eq!(store.vault_keys().list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn rewrap_replaces_wrapped_bytes_all_or_nothing() {
    let (_dir, _path, store) = fresh_store().await;
    let (master, vault) = vault_with_first_key(&store).await;
    let before = key_summary(&store.vault_keys().list().await.unwrap());

    let new_master = MasterKey::generate();
    let mut rewrapped = vault.rewrap_all(&new_master);
    let unknown = WrappedKey {
        id: KeyId(7),
        bytes: vec![1, 2, 3],
    };
    rewrapped.push(unknown);
    let err = store
        .vault_keys()
        .rewrap(rewrapped.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownKey { id: 7 }), "{err:?}");
    assert_eq!(
        key_summary(&store.vault_keys().list().await.unwrap()),
        before
    );

    rewrapped.pop();
    store.vault_keys().rewrap(rewrapped).await.unwrap();
    let keys = store.vault_keys().list().await.unwrap();
    let wrapped: Vec<WrappedKey> = keys.iter().map(|key| key.wrapped.clone()).collect();
    assert!(Vault::unlock(&new_master, &wrapped, KeyId(1)).is_ok());
    assert!(Vault::unlock(&master, &wrapped, KeyId(1)).is_err());
}

#[tokio::test]
async fn secrets_are_upserted_deleted_by_owner_and_need_a_stored_key() {
    let (_dir, _path, store) = fresh_store().await;
    let (master, vault) = vault_with_first_key(&store).await;
    let password = SecretRef::new("account", "acc-1", "password");
    let token = SecretRef::new("account", "acc-1", "refresh_token");
    let other = SecretRef::new("account", "acc-2", "password");
    put_secret(&store, &vault, &password, b"first").await;
    put_secret(&store, &vault, &password, b"second").await;
    put_secret(&store, &vault, &token, b"rt").await;
    put_secret(&store, &vault, &other, b"pw2").await;
    assert_eq!(store.secrets().count().await.unwrap(), 3);
    let sealed = store.secrets().get(&password).await.unwrap().unwrap();
    let opened = vault.open(&password.context(), &sealed).unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), b"second");

    assert_eq!(
        store
            .secrets()
            .delete_owner("account", "acc-1")
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.secrets().get(&password).await.unwrap(), None);
    assert_eq!(store.secrets().count().await.unwrap(), 1);

    // Sealed under a key the store never saw: refused, or a rotation could not reach it.
    let (stray_wrapped, _) = Vault::new_data_key(&master, KeyId(9));
    let stray_vault = Vault::unlock(&master, &[stray_wrapped], KeyId(9)).unwrap();
    let stray = stray_vault.seal(&other.context(), b"x");
    let err = store.secrets().put(&other, &stray).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownKey { id: 9 }), "{err:?}");
}

#[tokio::test]
async fn events_come_back_in_order_and_filtered_by_account() {
    let (_dir, _path, store) = fresh_store().await;
    let mut appended = Vec::new();
    for n in 0..6 {
        let account = [Some("acc-a"), Some("acc-b"), None][(n % 3) as usize];
        appended.push(
            store
                .events()
                .append(event(account, "test.event", n))
                .await
                .unwrap(),
        );
    }
    let ids: Vec<i64> = appended.iter().map(|e| e.id.0).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");

    let all = store.events().list_after(0, 100, None).await.unwrap();
    assert_eq!(all, appended);
    let page = store.events().list_after(ids[1], 2, None).await.unwrap();
    assert_eq!(page, appended[2..4]);

    let only_a = store
        .events()
        .list_after(0, 100, Some("acc-a"))
        .await
        .unwrap();
    let payloads: Vec<i64> = only_a
        .iter()
        .map(|e| e.payload["n"].as_i64().unwrap())
        .collect();
    assert_eq!(payloads, [0, 3]);
    assert!(
        only_a
            .iter()
            .all(|e| e.account_id.as_deref() == Some("acc-a"))
    );
    let after_first_a = store
        .events()
        .list_after(ids[0], 100, Some("acc-a"))
        .await
        .unwrap();
    assert_eq!(after_first_a, appended[3..4]);
    assert!(
        store
            .events()
            .list_after(ids[5], 100, None)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn concurrent_appends_get_unique_increasing_ids() {
    let (_dir, _path, store) = fresh_store().await;
    let mut tasks = Vec::new();
    for task in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..50 {
                let account = format!("acc-{task}");
                let appended = store
                    .events()
                    .append(event(Some(&account), "load", n))
                    .await
                    .unwrap();
                ids.push(appended.id.0);
            }
            ids
        }));
    }
    let mut all_ids = HashSet::new();
    for task in tasks {
        let ids = task.await.unwrap();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
        all_ids.extend(ids);
    }
    assert_eq!(all_ids.len(), 400);

    let listed = store.events().list_after(0, 1000, None).await.unwrap();
    let listed_ids: Vec<i64> = listed.iter().map(|e| e.id.0).collect();
    assert_eq!(listed_ids.len(), 400);
    assert!(listed_ids.windows(2).all(|pair| pair[0] < pair[1]));
    assert_eq!(listed_ids.iter().copied().collect::<HashSet<_>>(), all_ids);
}

#[tokio::test]
async fn find_by_hash_ignores_revoked_tokens() {
    let (_dir, _path, store) = fresh_store().await;
    let tokens = store.api_tokens();
    let kept = tokens.create(new_token("kept", "pst_kept")).await.unwrap();
    let revoked = tokens
        .create(new_token("revoked", "pst_revoked"))
        .await
        .unwrap();
    tokens
        .create(NewApiToken {
            expires_at: Some(Utc::now() - Duration::minutes(1)),
            ..new_token("expired", "pst_expired")
        })
        .await
        .unwrap();
    assert_eq!(tokens.count_active().await.unwrap(), 2);

    assert!(tokens.revoke(&revoked.id).await.unwrap());
    assert!(!tokens.revoke(&revoked.id).await.unwrap(), "revoking twice");
    assert!(!tokens.revoke(&ApiTokenId::generate()).await.unwrap());

    assert_eq!(
        tokens
            .find_by_hash(&token_hash("pst_revoked"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        tokens
            .find_by_hash(&token_hash("pst_unknown"))
            .await
            .unwrap(),
        None
    );
    let found = tokens
        .find_by_hash(&token_hash("pst_kept"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, kept.id);
    assert!(found.is_usable_at(Utc::now()));
    let expired = tokens
        .find_by_hash(&token_hash("pst_expired"))
        .await
        .unwrap()
        .unwrap();
    assert!(!expired.is_usable_at(Utc::now()));
    assert_eq!(tokens.count_active().await.unwrap(), 1);

    let listed = tokens.list().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["kept", "revoked", "expired"]);
    assert!(listed[1].revoked_at.is_some());
}

#[tokio::test]
async fn touch_last_used_never_moves_backwards() {
    let (_dir, _path, store) = fresh_store().await;
    let token = store
        .api_tokens()
        .create(new_token("t", "pst_t"))
        .await
        .unwrap();
    assert_eq!(token.last_used_at, None);
    let later = Utc::now() + Duration::seconds(10);
    let earlier = Utc::now();
    store
        .api_tokens()
        .touch_last_used(&token.id, later)
        .await
        .unwrap();
    store
        .api_tokens()
        .touch_last_used(&token.id, earlier)
        .await
        .unwrap();
    let found = store
        .api_tokens()
        .find_by_hash(&token_hash("pst_t"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        found.last_used_at.map(|at| at.timestamp_millis()),
        Some(later.timestamp_millis())
    );
}

/// Every byte SQLite may have written: the database, its WAL and its shared-memory index.
fn database_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        if let Ok(content) = std::fs::read(PathBuf::from(file)) {
            bytes.extend(content);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test]
async fn a_sealed_secret_never_reaches_the_disk_in_plaintext() {
    let (_dir, path, store) = fresh_store().await;
    let (_master, vault) = vault_with_first_key(&store).await;
    let canary = b"CANARY-imap-password-7f3a9c1e-do-not-store-in-clear";
    let secret = SecretRef::new("account", "acc-canary", "password");
    put_secret(&store, &vault, &secret, canary).await;
    // Positive control: a value stored in clear on purpose must be found by the same search.
    let control = "CONTROL-token-name-5b2d8e";
    store
        .api_tokens()
        .create(new_token(control, "pst_c"))
        .await
        .unwrap();

    let before_close = database_bytes(&path);
    assert!(
        !contains(&before_close, canary),
        "plaintext found while open"
    );
    store.close().await;
    let after_close = database_bytes(&path);

    assert!(
        contains(&after_close, control.as_bytes()),
        "the search itself is broken"
    );
    assert!(
        !contains(&after_close, canary),
        "plaintext secret found on disk"
    );
}
