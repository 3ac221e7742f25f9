//! SQLite implementation of [`Authorizations`].
//!
//! Purpose: the SQL for the `authorizations` table and the PKCE verifier secrets.
//! Non-goal: a purge timer; the caller decides when to call `purge_expired`.
//! Key decision: `take` runs in `BEGIN IMMEDIATE`, so concurrent takers are serialized by
//! SQLite's write lock: the first marks the row used and deletes the verifier, every later one
//! reads `used_at` and gets `AlreadyUsed`. The verifier secret's owner id is
//! `lower(hex(state_hash))`, which SQL can compute, so purges and deletes find verifiers without
//! a round trip per row.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use postern_vault::Sealed;
use sqlx::{SqliteConnection, SqliteExecutor};

use super::accounts::fetch_existing_account;
use super::oauth_apps::ensure_app_exists;
use super::secrets::{put_secret, take_secret};
use super::{begin_write, from_millis, parse_stored, to_millis};
use crate::authorizations::AUTHORIZATION_OWNER;
use crate::{
    AUTHORIZATION_LIFETIME, AccountId, AppId, Authorizations, NewAuthorization,
    PendingAuthorization, StoreError, TakeOutcome,
};

pub(super) struct SqliteAuthorizations {
    db: super::Pools,
}

impl SqliteAuthorizations {
    pub(super) fn new(db: super::Pools) -> Self {
        SqliteAuthorizations { db }
    }
}

/// One `authorizations` row as SQLite returns it.
#[derive(sqlx::FromRow)]
struct FlowRow {
    state_hash: Vec<u8>,
    account_id: String,
    app_id: String,
    redirect_uri: String,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

impl FlowRow {
    fn into_flow(self) -> Result<PendingAuthorization, StoreError> {
        // Name the row by its account: the state hash is a lookup key and stays out of messages.
        let what = |column: &str| {
            format!(
                "authorizations.{column} of a flow of account {}",
                self.account_id
            )
        };
        Ok(PendingAuthorization {
            state_hash: self
                .state_hash
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::corrupt(what("state_hash")))?,
            account_id: parse_stored(&self.account_id, || what("account_id"))?,
            app_id: parse_stored(&self.app_id, || what("app_id"))?,
            created_at: from_millis(self.created_at, || what("created_at"))?,
            expires_at: from_millis(self.expires_at, || what("expires_at"))?,
            redirect_uri: self.redirect_uri,
        })
    }
}

/// Whose pending flows to delete.
pub(super) enum FlowsOf<'a> {
    /// Every flow authorizing this account.
    Account(&'a AccountId),
    /// Every flow running against this app.
    App(&'a AppId),
}

/// Deletes the flows (used or not) of an account or an app, with their verifiers.
pub(super) async fn delete_flows(
    conn: &mut SqliteConnection,
    of: FlowsOf<'_>,
) -> Result<u64, StoreError> {
    let (secrets_sql, flows_sql, id) = match of {
        FlowsOf::Account(id) => (
            "DELETE FROM secrets WHERE owner_kind = ? AND owner_id IN \
             (SELECT lower(hex(state_hash)) FROM authorizations WHERE account_id = ?)",
            "DELETE FROM authorizations WHERE account_id = ?",
            id.as_str(),
        ),
        FlowsOf::App(id) => (
            "DELETE FROM secrets WHERE owner_kind = ? AND owner_id IN \
             (SELECT lower(hex(state_hash)) FROM authorizations WHERE app_id = ?)",
            "DELETE FROM authorizations WHERE app_id = ?",
            id.as_str(),
        ),
    };
    sqlx::query(secrets_sql)
        .bind(AUTHORIZATION_OWNER)
        .bind(id.to_owned())
        .execute(&mut *conn)
        .await?;
    let flows = sqlx::query(flows_sql)
        .bind(id.to_owned())
        .execute(&mut *conn)
        .await?;
    Ok(flows.rows_affected())
}

async fn fetch_flow<'e>(
    executor: impl SqliteExecutor<'e>,
    state_hash: &[u8; 32],
) -> Result<Option<FlowRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT state_hash, account_id, app_id, redirect_uri, created_at, expires_at, used_at \
         FROM authorizations WHERE state_hash = ?",
    )
    .bind(state_hash.to_vec())
    .fetch_optional(executor)
    .await?)
}

async fn insert_flow(
    conn: &mut SqliteConnection,
    new: &NewAuthorization,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO authorizations \
         (state_hash, account_id, app_id, redirect_uri, created_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(new.state_hash.to_vec())
    .bind(new.account_id.as_str().to_owned())
    .bind(new.app_id.as_str().to_owned())
    .bind(new.redirect_uri.clone())
    .bind(to_millis(now))
    .bind(to_millis(now + AUTHORIZATION_LIFETIME))
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the flow used and removes its verifier; the caller holds the write lock.
async fn consume(
    conn: &mut SqliteConnection,
    state_hash: &[u8; 32],
    now: DateTime<Utc>,
) -> Result<Sealed, StoreError> {
    sqlx::query("UPDATE authorizations SET used_at = ? WHERE state_hash = ?")
        .bind(to_millis(now))
        .bind(state_hash.to_vec())
        .execute(&mut *conn)
        .await?;
    take_secret(&mut *conn, &PendingAuthorization::verifier_ref(state_hash))
        .await?
        .ok_or_else(|| StoreError::corrupt("the PKCE verifier of an unused flow is missing"))
}

#[async_trait]
impl Authorizations for SqliteAuthorizations {
    async fn create(
        &self,
        new: NewAuthorization,
        verifier: &Sealed,
    ) -> Result<PendingAuthorization, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        // Checked first so a missing parent is reported as such, not as an unknown vault key.
        fetch_existing_account(&mut *tx, &new.account_id).await?;
        ensure_app_exists(&mut *tx, &new.app_id).await?;
        insert_flow(&mut tx, &new, Utc::now()).await?;
        let verifier_ref = PendingAuthorization::verifier_ref(&new.state_hash);
        put_secret(&mut *tx, &verifier_ref, verifier).await?;
        let flow = fetch_flow(&mut *tx, &new.state_hash)
            .await?
            .ok_or_else(|| StoreError::corrupt("a pending authorization vanished"))?;
        tx.commit().await?;
        flow.into_flow()
    }

    async fn take(
        &self,
        state_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<TakeOutcome, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        let Some(row) = fetch_flow(&mut *tx, state_hash).await? else {
            return Ok(TakeOutcome::Unknown);
        };
        if row.used_at.is_some() {
            return Ok(TakeOutcome::AlreadyUsed);
        }
        if row.expires_at <= to_millis(now) {
            return Ok(TakeOutcome::Expired);
        }
        let verifier = consume(&mut tx, state_hash, now).await?;
        let flow = row.into_flow()?;
        tx.commit().await?;
        Ok(TakeOutcome::Taken(flow, verifier))
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        sqlx::query(
            "DELETE FROM secrets WHERE owner_kind = ? AND owner_id IN \
             (SELECT lower(hex(state_hash)) FROM authorizations WHERE expires_at <= ?)",
        )
        .bind(AUTHORIZATION_OWNER)
        .bind(to_millis(now))
        .execute(&mut *tx)
        .await?;
        let purged = sqlx::query("DELETE FROM authorizations WHERE expires_at <= ?")
            .bind(to_millis(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(purged.rows_affected())
    }
}
