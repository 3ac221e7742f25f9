//! SQLite implementation of [`VaultKeys`], including the all-or-nothing rotation.
//!
//! Purpose: the SQL for the `vault_keys` table and the rotation that rewrites `secrets`.
//! Non-goal: streaming huge secret tables; a rotation holds every sealed blob in memory at once,
//! which is fine for the thousands of secrets a Postern server holds.
//! Key decision: every multi-statement change runs in `BEGIN IMMEDIATE`, taking the write lock up
//! front, so it waits for other writers (busy timeout) instead of failing halfway with SQLITE_BUSY
//! when a read transaction tries to become a write one.

use async_trait::async_trait;
use chrono::Utc;
use postern_vault::{KeyId, WrappedKey};
use sqlx::SqliteConnection;

use super::secrets::decode_sealed;
use super::to_millis;
use crate::{Reseal, RotationReport, SecretRef, StoreError, StoredKey, VaultKeys};

pub(super) struct SqliteVaultKeys {
    db: super::Pools,
}

impl SqliteVaultKeys {
    pub(super) fn new(db: super::Pools) -> Self {
        SqliteVaultKeys { db }
    }

    async fn begin_write(&self) -> Result<super::writer::WriteTx, StoreError> {
        super::begin_write(&self.db).await
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: i64,
    wrapped: Vec<u8>,
    active: bool,
}

#[derive(sqlx::FromRow)]
struct SecretRow {
    owner_kind: String,
    owner_id: String,
    name: String,
    sealed: Vec<u8>,
}

fn key_id_from_db(id: i64) -> Result<KeyId, StoreError> {
    u32::try_from(id)
        .map(KeyId)
        .map_err(|_| StoreError::corrupt(format!("vault_keys.id {id} is not a u32")))
}

#[async_trait]
impl VaultKeys for SqliteVaultKeys {
    async fn list(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows: Vec<KeyRow> =
            sqlx::query_as("SELECT id, wrapped, active FROM vault_keys ORDER BY id")
                .fetch_all(&self.db.read)
                .await?;
        rows.into_iter()
            .map(|row| {
                let id = key_id_from_db(row.id)?;
                Ok(StoredKey {
                    id,
                    wrapped: WrappedKey {
                        id,
                        bytes: row.wrapped,
                    },
                    active: row.active,
                })
            })
            .collect()
    }

    async fn insert_active(&self, key: WrappedKey) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        if !stored_key_ids(&mut tx).await?.is_empty() {
            return Err(StoreError::KeyConflict {
                id: key.id.0,
                reason: "keys exist already; add later keys with rotate",
            });
        }
        insert_key(&mut tx, &key, true).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rotate(
        &self,
        new: WrappedKey,
        reseal: &Reseal<'_>,
    ) -> Result<RotationReport, StoreError> {
        let mut tx = self.begin_write().await?;
        let retired = stored_key_ids(&mut tx).await?;
        if retired.iter().any(|old| old.0 >= new.id.0) {
            return Err(StoreError::KeyConflict {
                id: new.id.0,
                reason: "a new key id must be higher than every stored key id",
            });
        }
        sqlx::query("UPDATE vault_keys SET active = 0 WHERE active = 1")
            .execute(&mut *tx)
            .await?;
        insert_key(&mut tx, &new, true).await?;
        let resealed = reseal_all(&mut tx, new.id, reseal).await?;
        // The foreign key from `secrets` makes this fail (and roll back) if any secret still
        // points at an old key.
        sqlx::query("DELETE FROM vault_keys WHERE id <> ?")
            .bind(i64::from(new.id.0))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(new_key = new.id.0, resealed, "vault data key rotated");
        Ok(RotationReport {
            new_key: new.id,
            resealed,
            retired,
        })
    }

    async fn rewrap(&self, keys: Vec<WrappedKey>) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for key in keys {
            let result = sqlx::query("UPDATE vault_keys SET wrapped = ? WHERE id = ?")
                .bind(key.bytes)
                .bind(i64::from(key.id.0))
                .execute(&mut *tx)
                .await?;
            if result.rows_affected() == 0 {
                return Err(StoreError::UnknownKey { id: key.id.0 });
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn next_key_id(&self) -> Result<KeyId, StoreError> {
        let highest: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM vault_keys")
            .fetch_one(&self.db.read)
            .await?;
        let next = key_id_from_db(highest)?
            .0
            .checked_add(1)
            .ok_or_else(|| StoreError::corrupt("vault key ids are exhausted (u32::MAX reached)"))?;
        Ok(KeyId(next))
    }
}

async fn stored_key_ids(tx: &mut SqliteConnection) -> Result<Vec<KeyId>, StoreError> {
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM vault_keys ORDER BY id")
        .fetch_all(&mut *tx)
        .await?;
    ids.into_iter().map(key_id_from_db).collect()
}

async fn insert_key(
    tx: &mut SqliteConnection,
    key: &WrappedKey,
    active: bool,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO vault_keys (id, wrapped, active, created_at) VALUES (?, ?, ?, ?)")
        .bind(i64::from(key.id.0))
        .bind(key.bytes.clone())
        .bind(active)
        .bind(to_millis(Utc::now()))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Re-encrypts every secret under `new_key`; returns how many there were.
async fn reseal_all(
    tx: &mut SqliteConnection,
    new_key: KeyId,
    reseal: &Reseal<'_>,
) -> Result<u64, StoreError> {
    let rows: Vec<SecretRow> =
        sqlx::query_as("SELECT owner_kind, owner_id, name, sealed FROM secrets")
            .fetch_all(&mut *tx)
            .await?;
    let mut resealed = 0;
    for row in rows {
        let secret = SecretRef::new(row.owner_kind, row.owner_id, row.name);
        let sealed = decode_sealed(row.sealed, &secret)?;
        let fresh = reseal(&secret, &sealed).map_err(StoreError::Reseal)?;
        if fresh.key_id().0 != new_key.0 {
            return Err(StoreError::ResealKeyMismatch {
                expected: new_key.0,
                found: fresh.key_id().0,
            });
        }
        sqlx::query(
            "UPDATE secrets SET sealed = ?, key_id = ?, updated_at = ? \
             WHERE owner_kind = ? AND owner_id = ? AND name = ?",
        )
        .bind(fresh.as_bytes().to_vec())
        .bind(i64::from(new_key.0))
        .bind(to_millis(Utc::now()))
        .bind(secret.owner_kind)
        .bind(secret.owner_id)
        .bind(secret.name)
        .execute(&mut *tx)
        .await?;
        resealed += 1;
    }
    Ok(resealed)
}
