//! Upgrading: a database created and filled by a Postern that knew only migration 0001 opens,
//! gains the account tables, and keeps its data.

use std::path::Path;

use postern_store::{AccountState, SecretRef, Store};
use postern_vault::{KeyId, MasterKey, Vault, WrappedKey};
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnectOptions;

use crate::fixtures::{migrate_with, new_app, new_oauth_account};

const FIRST_MIGRATION: &str = include_str!("../../migrations/sqlite/0001_initial.sql");

/// Creates `db` with only migration 0001 applied, exactly as sqlx would have recorded it.
async fn create_version_one(db: &Path, migrations: &Path) -> SqlitePool {
    std::fs::create_dir_all(migrations).unwrap();
    std::fs::write(migrations.join("0001_initial.sql"), FIRST_MIGRATION).unwrap();
    migrate_with(db, migrations).await
}

/// Fills a version-1 database: one wrapped key, one sealed secret, one event.
async fn seed(pool: &SqlitePool, master: &MasterKey, secret: &SecretRef) -> WrappedKey {
    let (wrapped, _) = Vault::new_data_key(master, KeyId(1));
    let vault = Vault::unlock(master, std::slice::from_ref(&wrapped), KeyId(1)).unwrap();
    let sealed = vault.seal(&secret.context(), b"old-refresh-token");
    sqlx::query("INSERT INTO vault_keys (id, wrapped, active, created_at) VALUES (1, ?, 1, 0)")
        .bind(wrapped.bytes.clone())
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO secrets (owner_kind, owner_id, name, sealed, key_id, updated_at) \
         VALUES (?, ?, ?, ?, 1, 0)",
    )
    .bind(&secret.owner_kind)
    .bind(&secret.owner_id)
    .bind(&secret.name)
    .bind(sealed.as_bytes().to_vec())
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO events (account_id, kind, payload, created_at) VALUES (NULL, 'server.started', '{}', 0)")
        .execute(pool)
        .await
        .unwrap();
    wrapped
}

#[tokio::test]
async fn a_version_one_database_is_upgraded_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("postern.db");
    let pool = create_version_one(&db, &dir.path().join("v1")).await;
    let master = MasterKey::generate();
    let secret = SecretRef::new("account", "legacy", "refresh_token");
    let wrapped = seed(&pool, &master, &secret).await;
    pool.close().await;

    let store = Store::open_sqlite(&db).await.unwrap();

    let keys = store.vault_keys().list().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| (k.id, k.active)).collect::<Vec<_>>(),
        [(KeyId(1), true)]
    );
    let vault = Vault::unlock(&master, &[wrapped], KeyId(1)).unwrap();
    let sealed = store.secrets().get(&secret).await.unwrap().unwrap();
    let opened = vault.open(&secret.context(), &sealed).unwrap();
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&opened),
        b"old-refresh-token"
    );
    let events = store.events().list_after(0, 10, None).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["server.started"]
    );

    let app = store
        .oauth_apps()
        .create(new_app("after-upgrade"), None)
        .await
        .unwrap();
    let account = store
        .accounts()
        .create(new_oauth_account(&app.id, "ada@gmail.com"), None)
        .await
        .unwrap();
    assert_eq!(account.state, AccountState::PendingAuthorization);
    store.close().await;

    let pool = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&db))
        .await
        .unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    // Every migration this build ships, applied in order on top of the seeded 0001.
    let shipped: Vec<i64> = sqlx::migrate!("./migrations/sqlite")
        .iter()
        .map(|migration| migration.version)
        .collect();
    assert!(shipped.len() >= 2 && shipped[..2] == [1, 2], "{shipped:?}");
    assert_eq!(versions, shipped);
    pool.close().await;
}

#[tokio::test]
async fn the_search_index_merges_a_level_at_sixteen_segments() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("postern.db");
    Store::open_sqlite(&db).await.unwrap().close().await;

    let pool = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&db))
        .await
        .unwrap();
    let automerge: Option<i64> =
        sqlx::query_scalar("SELECT v FROM message_search_config WHERE k = 'automerge'")
            .fetch_optional(&pool)
            .await
            .unwrap();
    assert_eq!(automerge, Some(16));
    pool.close().await;
}
