//! SQLite implementation of [`Expiry`].
//!
//! Purpose: the SQL for `oauth_apps.publishing_status`, the grant ages the forecaster reads, and the
//! `expiry_notices` table.
//! Non-goal: the providers' rules; `postern-auth` turns these rows into forecasts.
//! Key decision: `announce_once` is `INSERT … ON CONFLICT DO NOTHING` followed by the event insert in
//! the same `BEGIN IMMEDIATE` transaction, so two forecasters racing on one expiry announce it once;
//! readers of the event log are woken after the commit, as for every other appended event.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::events::{EventSignal, insert_event};
use super::{begin_write, from_millis, from_optional_millis, parse_stored, to_millis};
use crate::accounts::AUTH_OAUTH2;
use crate::{
    AccountId, AccountState, AppId, Expiry, ExpiryNotice, GrantLifetime, NewEvent,
    PublishingStatus, StoreError,
};

pub(super) struct SqliteExpiry {
    db: super::Pools,
    /// Woken after a commit that announced an expiry (it appended an event).
    appended: EventSignal,
}

impl SqliteExpiry {
    pub(super) fn new(db: super::Pools, appended: EventSignal) -> Self {
        SqliteExpiry { db, appended }
    }
}

/// One user grant joined with its account and app.
#[derive(sqlx::FromRow)]
struct LifetimeRow {
    account_id: String,
    app_id: String,
    provider: String,
    publishing_status: String,
    state: String,
    consented_at: Option<i64>,
    obtained_at: i64,
}

impl LifetimeRow {
    fn into_lifetime(self) -> Result<GrantLifetime, StoreError> {
        let what = |column: &str| format!("{column} of the grant of account {}", self.account_id);
        Ok(GrantLifetime {
            account_id: parse_stored(&self.account_id, || what("accounts.id"))?,
            app_id: parse_stored(&self.app_id, || what("accounts.app_id"))?,
            publishing_status: parse_stored(&self.publishing_status, || {
                what("oauth_apps.publishing_status")
            })?,
            state: parse_stored(&self.state, || what("accounts.state"))?,
            consented_at: from_optional_millis(self.consented_at, || what("grants.consented_at"))?,
            obtained_at: from_millis(self.obtained_at, || what("grants.obtained_at"))?,
            provider: self.provider,
        })
    }
}

#[async_trait]
impl Expiry for SqliteExpiry {
    async fn set_publishing_status(
        &self,
        app_id: &AppId,
        status: PublishingStatus,
    ) -> Result<bool, StoreError> {
        let result =
            sqlx::query("UPDATE oauth_apps SET publishing_status = ?, updated_at = ? WHERE id = ?")
                .bind(status.as_str())
                .bind(to_millis(Utc::now()))
                .bind(app_id.as_str().to_owned())
                .execute(&mut *self.db.write().await?)
                .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn publishing_status(
        &self,
        app_id: &AppId,
    ) -> Result<Option<PublishingStatus>, StoreError> {
        let status: Option<String> =
            sqlx::query_scalar("SELECT publishing_status FROM oauth_apps WHERE id = ?")
                .bind(app_id.as_str().to_owned())
                .fetch_optional(&self.db.read)
                .await?;
        status
            .map(|status| {
                parse_stored(&status, || {
                    format!("oauth_apps.publishing_status of app {app_id}")
                })
            })
            .transpose()
    }

    async fn user_grants(&self) -> Result<Vec<GrantLifetime>, StoreError> {
        let rows: Vec<LifetimeRow> = sqlx::query_as(
            "SELECT a.id AS account_id, a.app_id AS app_id, p.provider AS provider, \
             p.publishing_status AS publishing_status, a.state AS state, \
             g.consented_at AS consented_at, g.obtained_at AS obtained_at \
             FROM grants g JOIN accounts a ON a.id = g.account_id \
             JOIN oauth_apps p ON p.id = a.app_id \
             WHERE a.auth_kind = ? AND a.state <> ? ORDER BY a.id",
        )
        .bind(AUTH_OAUTH2)
        .bind(AccountState::NeedsReauth.as_str())
        .fetch_all(&self.db.read)
        .await?;
        rows.into_iter().map(LifetimeRow::into_lifetime).collect()
    }

    async fn idle_grants(
        &self,
        obtained_before: DateTime<Utc>,
    ) -> Result<Vec<AccountId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT g.account_id FROM grants g JOIN accounts a ON a.id = g.account_id \
             WHERE a.auth_kind = ? AND g.obtained_at < ? AND a.state NOT IN (?, ?) \
             ORDER BY g.obtained_at, g.account_id",
        )
        .bind(AUTH_OAUTH2)
        .bind(to_millis(obtained_before))
        .bind(AccountState::NeedsReauth.as_str())
        .bind(AccountState::Disabled.as_str())
        .fetch_all(&self.db.read)
        .await?;
        ids.iter()
            .map(|id| parse_stored(id, || format!("grants.account_id {id}")))
            .collect()
    }

    async fn announce_once(
        &self,
        notice: &ExpiryNotice,
        event: NewEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.db).await?;
        let inserted = sqlx::query(
            "INSERT INTO expiry_notices \
             (subject_kind, subject_id, reason, expires_at, announced_at, event_id) \
             VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING",
        )
        .bind(notice.subject.kind())
        .bind(notice.subject.id().to_owned())
        .bind(notice.reason.clone())
        .bind(to_millis(notice.expires_at))
        .bind(to_millis(Utc::now()))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(false);
        }
        let appended = insert_event(&mut *tx, event).await?;
        sqlx::query(
            "UPDATE expiry_notices SET event_id = ? \
             WHERE subject_kind = ? AND subject_id = ? AND reason = ? AND expires_at = ?",
        )
        .bind(appended.id.0)
        .bind(notice.subject.kind())
        .bind(notice.subject.id().to_owned())
        .bind(notice.reason.clone())
        .bind(to_millis(notice.expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.appended.notify_waiters();
        Ok(true)
    }
}
