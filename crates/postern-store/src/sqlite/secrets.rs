//! SQLite implementation of [`Secrets`].
//!
//! Purpose: the SQL for the `secrets` table.
//! Non-goal: checking that a blob opens; only the vault can, and only with the plaintext key.
//! Key decision: the blob's key id is copied into its own column so the foreign key to
//! `vault_keys` can refuse a secret sealed with a key the store does not hold. The statements
//! are free functions over any executor, so other repositories write secrets inside their own
//! transactions with the same SQL.

use async_trait::async_trait;
use chrono::Utc;
use postern_vault::Sealed;
use sqlx::SqliteExecutor;

use super::{is_foreign_key_violation, to_count, to_millis};
use crate::{SecretRef, Secrets, StoreError};

pub(super) struct SqliteSecrets {
    db: super::Pools,
}

impl SqliteSecrets {
    pub(super) fn new(db: super::Pools) -> Self {
        SqliteSecrets { db }
    }
}

/// Turns a stored blob back into a [`Sealed`], naming the row (not its content) if it is corrupt.
pub(super) fn decode_sealed(bytes: Vec<u8>, secret: &SecretRef) -> Result<Sealed, StoreError> {
    Sealed::from_bytes(bytes).map_err(|_| {
        StoreError::corrupt(format!(
            "sealed secret {}/{}/{}",
            secret.owner_kind, secret.owner_id, secret.name
        ))
    })
}

/// Stores `sealed` at `secret` (replacing what was there) on any executor, so repositories can
/// write a secret inside their own transaction.
pub(super) async fn put_secret<'e>(
    executor: impl SqliteExecutor<'e>,
    secret: &SecretRef,
    sealed: &Sealed,
) -> Result<(), StoreError> {
    let key_id = sealed.key_id().0;
    let result = sqlx::query(
        "INSERT INTO secrets (owner_kind, owner_id, name, sealed, key_id, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT (owner_kind, owner_id, name) DO UPDATE SET \
         sealed = excluded.sealed, key_id = excluded.key_id, updated_at = excluded.updated_at",
    )
    .bind(secret.owner_kind.clone())
    .bind(secret.owner_id.clone())
    .bind(secret.name.clone())
    .bind(sealed.as_bytes().to_vec())
    .bind(i64::from(key_id))
    .bind(to_millis(Utc::now()))
    .execute(executor)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) if is_foreign_key_violation(&err) => Err(StoreError::UnknownKey { id: key_id }),
        Err(err) => Err(err.into()),
    }
}

/// Deletes the secret at `secret` and returns it, if it was there.
pub(super) async fn take_secret<'e>(
    executor: impl SqliteExecutor<'e>,
    secret: &SecretRef,
) -> Result<Option<Sealed>, StoreError> {
    let bytes: Option<Vec<u8>> = sqlx::query_scalar(
        "DELETE FROM secrets WHERE owner_kind = ? AND owner_id = ? AND name = ? RETURNING sealed",
    )
    .bind(secret.owner_kind.clone())
    .bind(secret.owner_id.clone())
    .bind(secret.name.clone())
    .fetch_optional(executor)
    .await?;
    bytes.map(|bytes| decode_sealed(bytes, secret)).transpose()
}

/// Deletes every secret of one owner; returns how many.
pub(super) async fn delete_owner_secrets<'e>(
    executor: impl SqliteExecutor<'e>,
    owner_kind: &str,
    owner_id: &str,
) -> Result<u64, StoreError> {
    let result = sqlx::query("DELETE FROM secrets WHERE owner_kind = ? AND owner_id = ?")
        .bind(owner_kind.to_owned())
        .bind(owner_id.to_owned())
        .execute(executor)
        .await?;
    Ok(result.rows_affected())
}

#[async_trait]
impl Secrets for SqliteSecrets {
    async fn put(&self, secret: &SecretRef, sealed: &Sealed) -> Result<(), StoreError> {
        put_secret(&mut *self.db.write().await?, secret, sealed).await
    }

    async fn get(&self, secret: &SecretRef) -> Result<Option<Sealed>, StoreError> {
        let bytes: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT sealed FROM secrets WHERE owner_kind = ? AND owner_id = ? AND name = ?",
        )
        .bind(secret.owner_kind.clone())
        .bind(secret.owner_id.clone())
        .bind(secret.name.clone())
        .fetch_optional(&self.db.read)
        .await?;
        bytes.map(|bytes| decode_sealed(bytes, secret)).transpose()
    }

    async fn delete_owner(&self, owner_kind: &str, owner_id: &str) -> Result<u64, StoreError> {
        delete_owner_secrets(&mut *self.db.write().await?, owner_kind, owner_id).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secrets")
            .fetch_one(&self.db.read)
            .await?;
        to_count(count, "secret count")
    }
}
