//! SQLite implementation of [`ApiTokens`].
//!
//! Purpose: the SQL for the `api_tokens` table.
//! Non-goal: expiry policy beyond `count_active`; callers check [`crate::ApiToken::is_usable_at`].
//! Key decision: scopes and account ids are JSON arrays in TEXT columns: they are read whole with
//! the token and never queried element by element, so a join table would buy nothing.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::{from_millis, from_optional_millis, to_count, to_millis};
use crate::{ApiToken, ApiTokenId, ApiTokens, NewApiToken, StoreError};

/// `SELECT <every column but the hash> FROM api_tokens <tail>`, as one static string.
macro_rules! select_tokens {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, scopes, account_ids, created_at, expires_at, last_used_at, revoked_at \
             FROM api_tokens ",
            $tail
        )
    };
}

pub(super) struct SqliteApiTokens {
    db: super::Pools,
}

impl SqliteApiTokens {
    pub(super) fn new(db: super::Pools) -> Self {
        SqliteApiTokens { db }
    }
}

/// One `api_tokens` row as SQLite returns it.
#[derive(sqlx::FromRow)]
struct TokenRow {
    id: String,
    name: String,
    scopes: String,
    account_ids: Option<String>,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl TokenRow {
    fn into_token(self) -> Result<ApiToken, StoreError> {
        let what = |column: &str| format!("api_tokens.{column} of token {}", self.id);
        let scopes = serde_json::from_str(&self.scopes).map_err(|_| corrupt(what("scopes")))?;
        let account_ids = match &self.account_ids {
            None => None,
            Some(json) => {
                Some(serde_json::from_str(json).map_err(|_| corrupt(what("account_ids")))?)
            }
        };
        Ok(ApiToken {
            created_at: from_millis(self.created_at, || what("created_at"))?,
            expires_at: from_optional_millis(self.expires_at, || what("expires_at"))?,
            last_used_at: from_optional_millis(self.last_used_at, || what("last_used_at"))?,
            revoked_at: from_optional_millis(self.revoked_at, || what("revoked_at"))?,
            id: self.id.parse().map_err(|_| corrupt(what("id")))?,
            name: self.name,
            scopes,
            account_ids,
        })
    }
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt { what }
}

impl SqliteApiTokens {
    async fn get(&self, id: &ApiTokenId) -> Result<Option<ApiToken>, StoreError> {
        let row: Option<TokenRow> = sqlx::query_as(select_tokens!("WHERE id = ?"))
            .bind(id.as_str().to_owned())
            .fetch_optional(&self.db.read)
            .await?;
        row.map(TokenRow::into_token).transpose()
    }
}

#[async_trait]
impl ApiTokens for SqliteApiTokens {
    async fn create(&self, new: NewApiToken) -> Result<ApiToken, StoreError> {
        let id = ApiTokenId::generate();
        sqlx::query(
            "INSERT INTO api_tokens \
             (id, name, token_hash, scopes, account_ids, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.as_str().to_owned())
        .bind(new.name)
        .bind(new.token_hash.to_vec())
        .bind(Json(new.scopes))
        .bind(new.account_ids.map(Json))
        .bind(to_millis(Utc::now()))
        .bind(new.expires_at.map(to_millis))
        .execute(&mut *self.db.write().await?)
        .await?;
        // Re-read so the caller gets exactly what a later `list` returns (millisecond precision).
        self.get(&id)
            .await?
            .ok_or_else(|| corrupt(format!("api token {id} vanished after insert")))
    }

    async fn find_by_hash(&self, token_hash: &[u8; 32]) -> Result<Option<ApiToken>, StoreError> {
        let row: Option<TokenRow> = sqlx::query_as(select_tokens!(
            "WHERE token_hash = ? AND revoked_at IS NULL"
        ))
        .bind(token_hash.to_vec())
        .fetch_optional(&self.db.read)
        .await?;
        row.map(TokenRow::into_token).transpose()
    }

    async fn list(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows: Vec<TokenRow> = sqlx::query_as(select_tokens!("ORDER BY created_at, id"))
            .fetch_all(&self.db.read)
            .await?;
        rows.into_iter().map(TokenRow::into_token).collect()
    }

    async fn revoke(&self, id: &ApiTokenId) -> Result<bool, StoreError> {
        let result =
            sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(to_millis(Utc::now()))
                .bind(id.as_str().to_owned())
                .execute(&mut *self.db.write().await?)
                .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn count_active(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM api_tokens \
             WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(to_millis(Utc::now()))
        .fetch_one(&self.db.read)
        .await?;
        to_count(count, "api token count")
    }

    async fn touch_last_used(&self, id: &ApiTokenId, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE api_tokens SET last_used_at = ? \
             WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
        )
        .bind(to_millis(at))
        .bind(id.as_str().to_owned())
        .bind(to_millis(at))
        .execute(&mut *self.db.write().await?)
        .await?;
        Ok(())
    }
}
