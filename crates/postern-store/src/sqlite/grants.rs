//! SQLite implementation of [`Grants`].
//!
//! Purpose: the SQL for the `grants` table and the account's two token secrets.
//! Non-goal: deciding when to refresh; `expiring_before` only answers the refresher's question.
//! Key decision: the grant row and both tokens are written in one `BEGIN IMMEDIATE` transaction,
//! and read back in one statement, so a reader never sees an access token from one refresh next
//! to a refresh token from another.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use postern_vault::Sealed;
use sqlx::{SqliteConnection, SqliteExecutor};

use super::secrets::{decode_sealed, put_secret};
use super::{
    begin_write, from_millis, from_optional_millis, is_foreign_key_violation, parse_stored,
    to_millis,
};
use crate::accounts::{ACCESS_TOKEN, ACCOUNT_OWNER, REFRESH_TOKEN};
use crate::{AccountId, AccountState, Grant, Grants, StoreError, TokenSet};

pub(super) struct SqliteGrants {
    db: super::Pools,
}

impl SqliteGrants {
    pub(super) fn new(db: super::Pools) -> Self {
        SqliteGrants { db }
    }
}

/// One `grants` row as SQLite returns it.
#[derive(sqlx::FromRow)]
struct GrantRow {
    account_id: String,
    scope: Option<String>,
    access_expires_at: Option<i64>,
    obtained_at: i64,
    last_refreshed_at: Option<i64>,
    refresh_failures: i64,
    next_attempt_at: Option<i64>,
    consented_at: Option<i64>,
}

impl GrantRow {
    fn into_grant(self) -> Result<Grant, StoreError> {
        let what = |column: &str| format!("grants.{column} of account {}", self.account_id);
        Ok(Grant {
            account_id: parse_stored(&self.account_id, || what("account_id"))?,
            scope: self.scope,
            access_expires_at: from_optional_millis(self.access_expires_at, || {
                what("access_expires_at")
            })?,
            obtained_at: from_millis(self.obtained_at, || what("obtained_at"))?,
            last_refreshed_at: from_optional_millis(self.last_refreshed_at, || {
                what("last_refreshed_at")
            })?,
            refresh_failures: u32::try_from(self.refresh_failures)
                .map_err(|_| StoreError::corrupt(what("refresh_failures")))?,
            next_attempt_at: from_optional_millis(self.next_attempt_at, || {
                what("next_attempt_at")
            })?,
            consented_at: from_optional_millis(self.consented_at, || what("consented_at"))?,
        })
    }
}

async fn fetch_grant<'e>(
    executor: impl SqliteExecutor<'e>,
    account_id: &AccountId,
) -> Result<Option<Grant>, StoreError> {
    let row: Option<GrantRow> = sqlx::query_as(
        "SELECT account_id, scope, access_expires_at, obtained_at, last_refreshed_at, \
         refresh_failures, next_attempt_at, consented_at FROM grants WHERE account_id = ?",
    )
    .bind(account_id.as_str().to_owned())
    .fetch_optional(executor)
    .await?;
    row.map(GrantRow::into_grant).transpose()
}

/// Deletes the account's grant row; true if there was one.
pub(super) async fn delete_grant_row<'e>(
    executor: impl SqliteExecutor<'e>,
    account_id: &AccountId,
) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM grants WHERE account_id = ?")
        .bind(account_id.as_str().to_owned())
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Inserts or updates the grant row for freshly stored tokens; an unknown account is
/// [`StoreError::NotFound`] (the row's only foreign key).
async fn upsert_grant(
    conn: &mut SqliteConnection,
    account_id: &AccountId,
    tokens: &TokenSet,
    now: i64,
) -> Result<(), StoreError> {
    let (refreshed_at, consented_at) = if tokens.consented {
        (None, Some(now))
    } else {
        (Some(now), None)
    };
    let result = sqlx::query(
        "INSERT INTO grants (account_id, scope, access_expires_at, obtained_at, \
         last_refreshed_at, refresh_failures, next_attempt_at, consented_at) \
         VALUES (?, ?, ?, ?, ?, 0, NULL, ?) \
         ON CONFLICT (account_id) DO UPDATE SET \
         scope = COALESCE(excluded.scope, grants.scope), \
         access_expires_at = excluded.access_expires_at, \
         obtained_at = excluded.obtained_at, \
         last_refreshed_at = COALESCE(excluded.last_refreshed_at, grants.last_refreshed_at), \
         refresh_failures = 0, next_attempt_at = NULL, \
         consented_at = COALESCE(excluded.consented_at, grants.consented_at)",
    )
    .bind(account_id.as_str().to_owned())
    .bind(tokens.scope.clone())
    .bind(tokens.access_expires_at.map(to_millis))
    .bind(now)
    .bind(refreshed_at)
    .bind(consented_at)
    .execute(conn)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) if is_foreign_key_violation(&err) => {
            Err(StoreError::not_found(format!("account {account_id}")))
        }
        Err(err) => Err(err.into()),
    }
}

/// Deletes the account's access and refresh tokens; returns how many there were.
async fn delete_tokens<'e>(
    executor: impl SqliteExecutor<'e>,
    account_id: &AccountId,
) -> Result<u64, StoreError> {
    let result =
        sqlx::query("DELETE FROM secrets WHERE owner_kind = ? AND owner_id = ? AND name IN (?, ?)")
            .bind(ACCOUNT_OWNER)
            .bind(account_id.as_str().to_owned())
            .bind(ACCESS_TOKEN)
            .bind(REFRESH_TOKEN)
            .execute(executor)
            .await?;
    Ok(result.rows_affected())
}

#[async_trait]
impl Grants for SqliteGrants {
    async fn store_tokens(
        &self,
        account_id: &AccountId,
        tokens: TokenSet,
    ) -> Result<Grant, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        upsert_grant(&mut tx, account_id, &tokens, to_millis(Utc::now())).await?;
        put_secret(&mut *tx, &account_id.access_token_ref(), &tokens.access).await?;
        if let Some(refresh) = &tokens.refresh {
            put_secret(&mut *tx, &account_id.refresh_token_ref(), refresh).await?;
        }
        let grant = fetch_grant(&mut *tx, account_id).await?.ok_or_else(|| {
            StoreError::corrupt(format!("grant of account {account_id} vanished"))
        })?;
        tx.commit().await?;
        Ok(grant)
    }

    async fn get(&self, account_id: &AccountId) -> Result<Option<Grant>, StoreError> {
        fetch_grant(&self.db.read, account_id).await
    }

    async fn load_tokens(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<(Sealed, Option<Sealed>)>, StoreError> {
        // One statement, one snapshot: both tokens come from the same commit.
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT name, sealed FROM secrets \
             WHERE owner_kind = ? AND owner_id = ? AND name IN (?, ?)",
        )
        .bind(ACCOUNT_OWNER)
        .bind(account_id.as_str().to_owned())
        .bind(ACCESS_TOKEN)
        .bind(REFRESH_TOKEN)
        .fetch_all(&self.db.read)
        .await?;
        let (mut access, mut refresh) = (None, None);
        for (name, bytes) in rows {
            match name.as_str() {
                ACCESS_TOKEN => {
                    access = Some(decode_sealed(bytes, &account_id.access_token_ref())?)
                }
                _ => refresh = Some(decode_sealed(bytes, &account_id.refresh_token_ref())?),
            }
        }
        Ok(access.map(|access| (access, refresh)))
    }

    async fn record_failure(
        &self,
        account_id: &AccountId,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let failures: Option<i64> = sqlx::query_scalar(
            "UPDATE grants SET refresh_failures = refresh_failures + 1, next_attempt_at = ? \
             WHERE account_id = ? RETURNING refresh_failures",
        )
        .bind(to_millis(next_attempt_at))
        .bind(account_id.as_str().to_owned())
        .fetch_optional(&mut *self.db.write().await?)
        .await?;
        let failures = failures
            .ok_or_else(|| StoreError::not_found(format!("grant of account {account_id}")))?;
        u32::try_from(failures).map_err(|_| {
            StoreError::corrupt(format!("grants.refresh_failures of account {account_id}"))
        })
    }

    async fn clear(&self, account_id: &AccountId) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        let tokens = delete_tokens(&mut *tx, account_id).await?;
        let grant = delete_grant_row(&mut *tx, account_id).await?;
        tx.commit().await?;
        Ok(tokens > 0 || grant)
    }

    async fn expiring_before(&self, before: DateTime<Utc>) -> Result<Vec<AccountId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT g.account_id FROM grants g JOIN accounts a ON a.id = g.account_id \
             WHERE g.access_expires_at < ? AND a.state NOT IN (?, ?) \
             ORDER BY g.access_expires_at, g.account_id",
        )
        .bind(to_millis(before))
        .bind(AccountState::NeedsReauth.as_str())
        .bind(AccountState::Disabled.as_str())
        .fetch_all(&self.db.read)
        .await?;
        ids.iter()
            .map(|id| parse_stored(id, || format!("grants.account_id {id}")))
            .collect()
    }
}
