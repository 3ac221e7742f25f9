//! SQLite implementation of [`OAuthApps`].
//!
//! Purpose: the SQL for the `oauth_apps` table and the app's client secret.
//! Non-goal: validating URLs or scopes; the store keeps what `postern-auth` built.
//! Key decision: `delete` counts the app's accounts inside its write transaction and refuses with
//! [`StoreError::InUse`] before touching anything; the foreign key from `accounts` is only the
//! backstop, because its error could not say how many accounts are in the way.

use async_trait::async_trait;
use chrono::Utc;
use postern_vault::Sealed;
use sqlx::types::Json;
use sqlx::{SqliteConnection, SqliteExecutor};

use super::authorizations::{FlowsOf, delete_flows};
use super::secrets::{delete_owner_secrets, put_secret};
use super::{
    begin_write, decode_json, from_millis, from_optional_millis, parse_stored, to_count, to_millis,
    to_port,
};
use crate::oauth_apps::APP_OWNER;
use crate::{AppId, AppStatus, NewOAuthApp, OAuthApp, OAuthApps, StoreError};

/// `SELECT <every column> FROM oauth_apps <tail>`, as one static string.
macro_rules! select_apps {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, provider, client_id, redirect_uri, scopes, tenant, authorize_url, \
             token_url, revoke_url, device_authorization_url, extra_params, imap_host, imap_port, \
             smtp_host, smtp_port, secret_expires_at, status, last_error, created_at, updated_at \
             FROM oauth_apps ",
            $tail
        )
    };
}

pub(super) struct SqliteOAuthApps {
    db: super::Pools,
}

impl SqliteOAuthApps {
    pub(super) fn new(db: super::Pools) -> Self {
        SqliteOAuthApps { db }
    }
}

/// One `oauth_apps` row as SQLite returns it.
#[derive(sqlx::FromRow)]
struct AppRow {
    id: String,
    name: String,
    provider: String,
    client_id: String,
    redirect_uri: Option<String>,
    scopes: String,
    tenant: Option<String>,
    authorize_url: String,
    token_url: String,
    revoke_url: Option<String>,
    device_authorization_url: Option<String>,
    extra_params: String,
    imap_host: Option<String>,
    imap_port: Option<i64>,
    smtp_host: Option<String>,
    smtp_port: Option<i64>,
    secret_expires_at: Option<i64>,
    status: String,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl AppRow {
    fn into_app(self) -> Result<OAuthApp, StoreError> {
        let what = |column: &str| format!("oauth_apps.{column} of app {}", self.id);
        let port = |port: Option<i64>, column: &str| {
            port.map(|port| to_port(port, || what(column))).transpose()
        };
        Ok(OAuthApp {
            scopes: decode_json(&self.scopes, || what("scopes"))?,
            extra_params: decode_json(&self.extra_params, || what("extra_params"))?,
            imap_port: port(self.imap_port, "imap_port")?,
            smtp_port: port(self.smtp_port, "smtp_port")?,
            secret_expires_at: from_optional_millis(self.secret_expires_at, || {
                what("secret_expires_at")
            })?,
            status: parse_stored(&self.status, || what("status"))?,
            created_at: from_millis(self.created_at, || what("created_at"))?,
            updated_at: from_millis(self.updated_at, || what("updated_at"))?,
            id: parse_stored(&self.id, || what("id"))?,
            name: self.name,
            provider: self.provider,
            client_id: self.client_id,
            redirect_uri: self.redirect_uri,
            tenant: self.tenant,
            authorize_url: self.authorize_url,
            token_url: self.token_url,
            revoke_url: self.revoke_url,
            device_authorization_url: self.device_authorization_url,
            imap_host: self.imap_host,
            smtp_host: self.smtp_host,
            last_error: self.last_error,
        })
    }
}

/// The app with this id, read on any executor (pool or transaction).
async fn fetch_app<'e>(
    executor: impl SqliteExecutor<'e>,
    id: &AppId,
) -> Result<Option<OAuthApp>, StoreError> {
    let row: Option<AppRow> = sqlx::query_as(select_apps!("WHERE id = ?"))
        .bind(id.as_str().to_owned())
        .fetch_optional(executor)
        .await?;
    row.map(AppRow::into_app).transpose()
}

/// Fails with [`StoreError::NotFound`] unless the app exists.
pub(super) async fn ensure_app_exists<'e>(
    executor: impl SqliteExecutor<'e>,
    id: &AppId,
) -> Result<(), StoreError> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM oauth_apps WHERE id = ?)")
        .bind(id.as_str().to_owned())
        .fetch_one(executor)
        .await?;
    if !exists {
        return Err(StoreError::not_found(format!("oauth app {id}")));
    }
    Ok(())
}

async fn insert_app(
    conn: &mut SqliteConnection,
    new: &NewOAuthApp,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO oauth_apps (id, name, provider, client_id, redirect_uri, scopes, tenant, \
         authorize_url, token_url, revoke_url, device_authorization_url, extra_params, imap_host, \
         imap_port, smtp_host, smtp_port, secret_expires_at, status, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(new.id.as_str().to_owned())
    .bind(new.name.clone())
    .bind(new.provider.clone())
    .bind(new.client_id.clone())
    .bind(new.redirect_uri.clone())
    .bind(Json(new.scopes.clone()))
    .bind(new.tenant.clone())
    .bind(new.authorize_url.clone())
    .bind(new.token_url.clone())
    .bind(new.revoke_url.clone())
    .bind(new.device_authorization_url.clone())
    .bind(Json(new.extra_params.clone()))
    .bind(new.imap_host.clone())
    .bind(new.imap_port.map(i64::from))
    .bind(new.smtp_host.clone())
    .bind(new.smtp_port.map(i64::from))
    .bind(new.secret_expires_at.map(to_millis))
    .bind(AppStatus::Active.as_str())
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

async fn count_accounts_of(conn: &mut SqliteConnection, id: &AppId) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE app_id = ?")
        .bind(id.as_str().to_owned())
        .fetch_one(conn)
        .await?;
    to_count(count, "account count of an app")
}

#[async_trait]
impl OAuthApps for SqliteOAuthApps {
    async fn create(
        &self,
        new: NewOAuthApp,
        client_secret: Option<&Sealed>,
    ) -> Result<OAuthApp, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        insert_app(&mut tx, &new, to_millis(Utc::now())).await?;
        if let Some(sealed) = client_secret {
            put_secret(&mut *tx, &new.id.client_secret_ref(), sealed).await?;
        }
        // Re-read so the caller gets exactly what a later `get` returns (millisecond precision).
        let app = fetch_app(&mut *tx, &new.id)
            .await?
            .ok_or_else(|| StoreError::corrupt(format!("oauth app {} vanished", new.id)))?;
        tx.commit().await?;
        Ok(app)
    }

    async fn get(&self, id: &AppId) -> Result<Option<OAuthApp>, StoreError> {
        fetch_app(&self.db.read, id).await
    }

    async fn list(&self) -> Result<Vec<OAuthApp>, StoreError> {
        let rows: Vec<AppRow> = sqlx::query_as(select_apps!("ORDER BY created_at, id"))
            .fetch_all(&self.db.read)
            .await?;
        rows.into_iter().map(AppRow::into_app).collect()
    }

    async fn delete(&self, id: &AppId) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        let users = count_accounts_of(&mut tx, id).await?;
        if users > 0 {
            return Err(StoreError::InUse {
                what: format!("oauth app {id}"),
                count: users,
            });
        }
        delete_flows(&mut tx, FlowsOf::App(id)).await?;
        delete_owner_secrets(&mut *tx, APP_OWNER, id.as_str()).await?;
        let deleted = sqlx::query("DELETE FROM oauth_apps WHERE id = ?")
            .bind(id.as_str().to_owned())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn set_status(
        &self,
        id: &AppId,
        status: AppStatus,
        last_error: Option<&str>,
    ) -> Result<bool, StoreError> {
        // `IS NOT` compares NULLs as values, so clearing an error counts as a change.
        let result = sqlx::query(
            "UPDATE oauth_apps SET status = ?1, last_error = ?2, updated_at = ?3 \
             WHERE id = ?4 AND (status IS NOT ?1 OR last_error IS NOT ?2)",
        )
        .bind(status.as_str())
        .bind(last_error.map(str::to_owned))
        .bind(to_millis(Utc::now()))
        .bind(id.as_str().to_owned())
        .execute(&mut *self.db.write().await?)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
