//! SQLite implementation of [`Accounts`], including the transition that appends its event.
//!
//! Purpose: the SQL for the `accounts` table, the account's password, and the cleanup of
//! everything an account owns when it is deleted.
//! Non-goal: a state machine; any transition the caller asks for is recorded.
//! Key decision: `transition` reads the current state and writes the new one inside one
//! `BEGIN IMMEDIATE` transaction, so two concurrent identical transitions are serialized and only
//! the first sees a change and appends the event.

use async_trait::async_trait;
use chrono::Utc;
use postern_vault::Sealed;
use sqlx::types::Json;
use sqlx::{SqliteConnection, SqliteExecutor};

use super::authorizations::{FlowsOf, delete_flows};
use super::events::insert_event;
use super::grants::delete_grant_row;
use super::oauth_apps::ensure_app_exists;
use super::secrets::{delete_owner_secrets, put_secret};
use super::{begin_write, decode_json, from_millis, parse_stored, to_millis, to_port};
use crate::accounts::{ACCOUNT_OWNER, AUTH_OAUTH2, AUTH_OAUTH2_APP, AUTH_PASSWORD};
use crate::{
    Account, AccountAuth, AccountId, AccountSettings, Accounts, AppId, Endpoint, NewAccount,
    StoreError, Transition, TransitionOutcome,
};

/// `SELECT <every column> FROM accounts <tail>`, as one static string.
macro_rules! select_accounts {
    ($tail:literal) => {
        concat!(
            "SELECT id, email, name, imap_host, imap_port, imap_security, imap_ca_file, \
             smtp_host, smtp_port, smtp_security, smtp_ca_file, auth_kind, app_id, mechanism, \
             username, state, last_error, settings, created_at, updated_at FROM accounts ",
            $tail
        )
    };
}

pub(super) struct SqliteAccounts {
    db: super::Pools,
    /// Woken after a commit that appended events (see `EventSignal`).
    appended: super::events::EventSignal,
}

impl SqliteAccounts {
    pub(super) fn new(db: super::Pools, appended: super::events::EventSignal) -> Self {
        SqliteAccounts { db, appended }
    }
}

/// One `accounts` row as SQLite returns it.
#[derive(sqlx::FromRow)]
struct AccountRow {
    id: String,
    email: String,
    name: Option<String>,
    imap_host: String,
    imap_port: i64,
    imap_security: String,
    imap_ca_file: Option<String>,
    smtp_host: String,
    smtp_port: i64,
    smtp_security: String,
    smtp_ca_file: Option<String>,
    auth_kind: String,
    app_id: Option<String>,
    mechanism: Option<String>,
    username: Option<String>,
    state: String,
    last_error: Option<String>,
    settings: String,
    created_at: i64,
    updated_at: i64,
}

/// Which of an account's two mail servers; its columns share this prefix.
#[derive(Clone, Copy)]
enum Server {
    Imap,
    Smtp,
}

impl Server {
    fn prefix(self) -> &'static str {
        match self {
            Server::Imap => "imap",
            Server::Smtp => "smtp",
        }
    }
}

/// The four columns an [`AccountAuth`] is stored in.
struct AuthColumns {
    kind: &'static str,
    app_id: Option<String>,
    mechanism: Option<&'static str>,
    username: Option<String>,
}

impl AuthColumns {
    fn of(auth: &AccountAuth) -> Self {
        let (app_id, mechanism, username) = match auth {
            AccountAuth::OAuth2 { app_id, mechanism }
            | AccountAuth::OAuth2App { app_id, mechanism } => {
                (Some(app_id.to_string()), Some(mechanism.as_str()), None)
            }
            AccountAuth::Password { username } => (None, None, username.clone()),
        };
        AuthColumns {
            kind: auth.kind(),
            app_id,
            mechanism,
            username,
        }
    }
}

impl AccountRow {
    fn what(&self, column: &str) -> String {
        format!("accounts.{column} of account {}", self.id)
    }

    fn endpoint(&self, server: Server) -> Result<Endpoint, StoreError> {
        let (host, port, security, ca_file) = match server {
            Server::Imap => (
                &self.imap_host,
                self.imap_port,
                &self.imap_security,
                &self.imap_ca_file,
            ),
            Server::Smtp => (
                &self.smtp_host,
                self.smtp_port,
                &self.smtp_security,
                &self.smtp_ca_file,
            ),
        };
        let column = |name: &str| self.what(&format!("{}_{name}", server.prefix()));
        Ok(Endpoint {
            host: host.clone(),
            port: to_port(port, || column("port"))?,
            security: parse_stored(security, || column("security"))?,
            ca_file: ca_file.clone(),
        })
    }

    fn auth(&self) -> Result<AccountAuth, StoreError> {
        if self.auth_kind == AUTH_PASSWORD {
            return Ok(AccountAuth::Password {
                username: self.username.clone(),
            });
        }
        let (Some(app_id), Some(mechanism)) = (&self.app_id, &self.mechanism) else {
            return Err(StoreError::corrupt(self.what("app_id")));
        };
        let app_id: AppId = parse_stored(app_id, || self.what("app_id"))?;
        let mechanism = parse_stored(mechanism, || self.what("mechanism"))?;
        match self.auth_kind.as_str() {
            AUTH_OAUTH2 => Ok(AccountAuth::OAuth2 { app_id, mechanism }),
            AUTH_OAUTH2_APP => Ok(AccountAuth::OAuth2App { app_id, mechanism }),
            _ => Err(StoreError::corrupt(self.what("auth_kind"))),
        }
    }

    fn into_account(self) -> Result<Account, StoreError> {
        Ok(Account {
            id: parse_stored(&self.id, || self.what("id"))?,
            imap: self.endpoint(Server::Imap)?,
            smtp: self.endpoint(Server::Smtp)?,
            auth: self.auth()?,
            state: parse_stored(&self.state, || self.what("state"))?,
            settings: decode_json(&self.settings, || self.what("settings"))?,
            created_at: from_millis(self.created_at, || self.what("created_at"))?,
            updated_at: from_millis(self.updated_at, || self.what("updated_at"))?,
            email: self.email,
            name: self.name,
            last_error: self.last_error,
        })
    }
}

/// The account with this id, read on any executor (pool or transaction).
pub(super) async fn fetch_account<'e>(
    executor: impl SqliteExecutor<'e>,
    id: &AccountId,
) -> Result<Option<Account>, StoreError> {
    let row: Option<AccountRow> = sqlx::query_as(select_accounts!("WHERE id = ?"))
        .bind(id.as_str().to_owned())
        .fetch_optional(executor)
        .await?;
    row.map(AccountRow::into_account).transpose()
}

/// Like [`fetch_account`], but a missing account is [`StoreError::NotFound`].
pub(super) async fn fetch_existing_account<'e>(
    executor: impl SqliteExecutor<'e>,
    id: &AccountId,
) -> Result<Account, StoreError> {
    fetch_account(executor, id)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("account {id}")))
}

async fn insert_account(
    conn: &mut SqliteConnection,
    new: &NewAccount,
    settings: &AccountSettings,
    now: i64,
) -> Result<(), StoreError> {
    let auth = AuthColumns::of(&new.auth);
    sqlx::query(
        "INSERT INTO accounts (id, email, name, imap_host, imap_port, imap_security, imap_ca_file, \
         smtp_host, smtp_port, smtp_security, smtp_ca_file, auth_kind, app_id, mechanism, \
         username, state, settings, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(new.id.as_str().to_owned())
    .bind(new.email.clone())
    .bind(new.name.clone())
    .bind(new.imap.host.clone())
    .bind(i64::from(new.imap.port))
    .bind(new.imap.security.as_str())
    .bind(new.imap.ca_file.clone())
    .bind(new.smtp.host.clone())
    .bind(i64::from(new.smtp.port))
    .bind(new.smtp.security.as_str())
    .bind(new.smtp.ca_file.clone())
    .bind(auth.kind)
    .bind(auth.app_id)
    .bind(auth.mechanism)
    .bind(auth.username)
    .bind(new.state.as_str())
    .bind(Json(settings))
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the settings of an account; false when there is no such account.
async fn write_settings(
    conn: &mut SqliteConnection,
    id: &AccountId,
    settings: &AccountSettings,
) -> Result<bool, StoreError> {
    let updated = sqlx::query("UPDATE accounts SET settings = ?, updated_at = ? WHERE id = ?")
        .bind(Json(settings))
        .bind(to_millis(Utc::now()))
        .bind(id.as_str().to_owned())
        .execute(conn)
        .await?;
    Ok(updated.rows_affected() == 1)
}

/// Writes the state and last error of a transition.
async fn update_status(
    conn: &mut SqliteConnection,
    id: &AccountId,
    transition: &Transition,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE accounts SET state = ?, last_error = ?, updated_at = ? WHERE id = ?")
        .bind(transition.to.as_str())
        .bind(transition.last_error.clone())
        .bind(to_millis(Utc::now()))
        .bind(id.as_str().to_owned())
        .execute(conn)
        .await?;
    Ok(())
}

async fn list_where<'e>(
    executor: impl SqliteExecutor<'e>,
    app_id: Option<&AppId>,
) -> Result<Vec<Account>, StoreError> {
    let query = match app_id {
        None => sqlx::query_as(select_accounts!("ORDER BY created_at, id")),
        Some(app_id) => {
            sqlx::query_as(select_accounts!("WHERE app_id = ? ORDER BY created_at, id"))
                .bind(app_id.as_str().to_owned())
        }
    };
    let rows: Vec<AccountRow> = query.fetch_all(executor).await?;
    rows.into_iter().map(AccountRow::into_account).collect()
}

#[async_trait]
impl Accounts for SqliteAccounts {
    async fn create_with_settings(
        &self,
        new: NewAccount,
        settings: &AccountSettings,
        password: Option<&Sealed>,
    ) -> Result<Account, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        // Checked first so the app's foreign key cannot be mistaken for the secret's.
        if let Some(app_id) = new.auth.app_id() {
            ensure_app_exists(&mut *tx, app_id).await?;
        }
        insert_account(&mut tx, &new, settings, to_millis(Utc::now())).await?;
        if let Some(sealed) = password {
            put_secret(&mut *tx, &new.id.password_ref(), sealed).await?;
        }
        let account = fetch_existing_account(&mut *tx, &new.id).await?;
        tx.commit().await?;
        Ok(account)
    }

    async fn update_settings(
        &self,
        id: &AccountId,
        settings: &AccountSettings,
    ) -> Result<Account, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        if !write_settings(&mut tx, id, settings).await? {
            return Err(StoreError::not_found(format!("account {id}")));
        }
        let account = fetch_existing_account(&mut *tx, id).await?;
        tx.commit().await?;
        Ok(account)
    }

    async fn get(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        fetch_account(&self.db.read, id).await
    }

    async fn list(&self) -> Result<Vec<Account>, StoreError> {
        list_where(&self.db.read, None).await
    }

    async fn list_by_app(&self, app_id: &AppId) -> Result<Vec<Account>, StoreError> {
        list_where(&self.db.read, Some(app_id)).await
    }

    async fn delete(&self, id: &AccountId) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        delete_flows(&mut tx, FlowsOf::Account(id)).await?;
        delete_owner_secrets(&mut *tx, ACCOUNT_OWNER, id.as_str()).await?;
        delete_grant_row(&mut *tx, id).await?;
        let deleted = sqlx::query("DELETE FROM accounts WHERE id = ?")
            .bind(id.as_str().to_owned())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn transition(
        &self,
        id: &AccountId,
        transition: Transition,
    ) -> Result<TransitionOutcome, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        let current = fetch_existing_account(&mut *tx, id).await?;
        let changed = current.state != transition.to;
        if !changed && current.last_error == transition.last_error {
            return Ok(TransitionOutcome {
                changed,
                account: current,
            });
        }
        update_status(&mut tx, id, &transition).await?;
        if changed && let Some(event) = transition.event {
            insert_event(&mut *tx, event).await?;
        }
        let account = fetch_existing_account(&mut *tx, id).await?;
        tx.commit().await?;
        self.appended.notify_waiters();
        Ok(TransitionOutcome { changed, account })
    }
}
