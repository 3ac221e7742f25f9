//! SQLite implementation of [`Audit`].
//!
//! Purpose: the SQL for the `audit_log` table.
//! Non-goal: deciding what to prune or when; [`Audit::prune`] deletes what its caller names.
//! Key decision: `list` builds one statement from the filters it is given (a `QueryBuilder` with
//! bound values only, never spliced text), so a bound API token's restriction is applied by the
//! database before `LIMIT`, and a page is never short because rows were dropped afterwards.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite};

use super::{from_millis, parse_stored, to_millis};
use crate::{
    AccountId, AppId, Audit, AuditAction, AuditEntry, AuditId, AuditOutcome, AuditQuery,
    NewAuditEntry, StoreError,
};

/// The columns every statement returns, in `AuditRow` order, as one static string with `$head`
/// before them and `$tail` after (statements stay literals, as sqlx wants).
macro_rules! with_columns {
    ($head:literal, $tail:literal) => {
        concat!(
            $head,
            "id, at, account_id, app_id, actor, action, outcome, detail",
            $tail
        )
    };
}

pub(super) struct SqliteAudit {
    db: super::Pools,
}

impl SqliteAudit {
    pub(super) fn new(db: super::Pools) -> Self {
        SqliteAudit { db }
    }
}

/// One `audit_log` row as SQLite returns it.
#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: i64,
    account_id: Option<String>,
    app_id: Option<String>,
    actor: String,
    action: String,
    outcome: String,
    detail: String,
}

impl AuditRow {
    fn into_entry(self) -> Result<AuditEntry, StoreError> {
        let id = self.id;
        let what = |column: &str| format!("audit_log.{column} of entry {id}");
        let account_id: Option<AccountId> = self
            .account_id
            .map(|text| parse_stored(&text, || what("account_id")))
            .transpose()?;
        let app_id: Option<AppId> = self
            .app_id
            .map(|text| parse_stored(&text, || what("app_id")))
            .transpose()?;
        Ok(AuditEntry {
            id: AuditId(id),
            at: from_millis(self.at, || what("at"))?,
            account_id,
            app_id,
            actor: self.actor,
            action: parse_stored(&self.action, || what("action"))?,
            outcome: parse_stored(&self.outcome, || what("outcome"))?,
            detail: self.detail,
        })
    }
}

/// `WHERE …` for `query`, every value bound.
fn push_filters(builder: &mut QueryBuilder<Sqlite>, query: &AuditQuery) {
    builder.push(" WHERE 1 = 1");
    if let Some(account_id) = &query.account_id {
        builder
            .push(" AND account_id = ")
            .push_bind(account_id.as_str().to_owned());
    }
    if let Some(visible) = &query.visible_accounts {
        if visible.is_empty() {
            builder.push(" AND 0 = 1");
        } else {
            builder.push(" AND account_id IN (");
            let mut ids = builder.separated(", ");
            for account_id in visible {
                ids.push_bind(account_id.as_str().to_owned());
            }
            builder.push(")");
        }
    }
    if let Some(action) = query.action {
        builder.push(" AND action = ").push_bind(action.as_str());
    }
    if let Some(before) = query.before {
        builder.push(" AND id < ").push_bind(before.0);
    }
}

#[async_trait]
impl Audit for SqliteAudit {
    async fn prune(
        &self,
        action: AuditAction,
        outcome: AuditOutcome,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let deleted =
            sqlx::query("DELETE FROM audit_log WHERE action = ? AND outcome = ? AND at < ?")
                .bind(action.as_str())
                .bind(outcome.as_str())
                .bind(to_millis(before))
                .execute(&mut *self.db.write().await?)
                .await?;
        Ok(deleted.rows_affected())
    }

    async fn record(&self, entry: NewAuditEntry) -> Result<AuditEntry, StoreError> {
        let row: AuditRow = sqlx::query_as(with_columns!(
            "INSERT INTO audit_log (at, account_id, app_id, actor, action, outcome, detail) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING ",
            ""
        ))
        .bind(to_millis(Utc::now()))
        .bind(entry.account_id.map(String::from))
        .bind(entry.app_id.map(String::from))
        .bind(entry.actor)
        .bind(entry.action.as_str())
        .bind(entry.outcome.as_str())
        .bind(entry.detail)
        .fetch_one(&mut *self.db.write().await?)
        .await?;
        row.into_entry()
    }

    async fn list(&self, query: AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let mut builder = QueryBuilder::<Sqlite>::new(with_columns!("SELECT ", " FROM audit_log"));
        push_filters(&mut builder, &query);
        builder
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(query.limit));
        let rows: Vec<AuditRow> = builder.build_query_as().fetch_all(&self.db.read).await?;
        rows.into_iter().map(AuditRow::into_entry).collect()
    }
}
