//! The SQLite backend: connection settings, migrations and one repository per aggregate.
//!
//! Purpose: the only place in the crate that knows the database is SQLite (SQL, pragmas, codes).
//! Non-goal: multi-process writers at scale; SQLite serializes writers, which suits one server.
//! Key decision: WAL journal + `synchronous=NORMAL` (readers never block the writer, and a crash
//! loses at most the last commits, never integrity); all writes of this process go through one
//! connection behind a fair async mutex (`writer`), so writers queue instead of spinning in
//! SQLite's busy handler, while reads use a pool of read-only connections (a write sent there by
//! mistake fails loudly); a 5 s busy timeout for writers in other processes (`postern token
//! create` on a running server's data dir); `secure_delete` so deleted or replaced ciphertexts
//! and wrapped keys are zeroed rather than left in free pages; timestamps as INTEGER Unix
//! milliseconds so SQL can compare them.

mod accounts;
mod api_tokens;
mod audit;
mod authorizations;
mod events;
mod expiry;
mod grants;
mod mailboxes;
mod messages;
mod migrate;
mod oauth_apps;
mod outbox;
mod search;
mod secrets;
mod vault_keys;
mod webhooks;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::error::DatabaseError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteError, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, SqliteConnection};

use crate::store::Backend;
use crate::{
    Accounts, ApiTokens, Authorizations, Events, Grants, OAuthApps, Secrets, StoreError, VaultKeys,
};

/// How long a connection waits for another writer before reporting "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The writer's page cache, in KiB (SQLite's negative `cache_size`): a sync's batches touch the
/// messages table, its indexes and the FTS segments; with SQLite's 2 MiB default most of those pages
/// are read back from the OS for every batch.
const WRITER_CACHE_KIB: &str = "-16384";
/// Readers run in parallel under WAL; more connections than this buys nothing on a small server.
const READ_CONNECTIONS: u32 = 8;

/// Primary result codes worth retrying: SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR.
const TRANSIENT_PRIMARY_CODES: [i32; 3] = [5, 6, 10];

/// The SQLite implementation of every repository, sharing one pool.
pub(crate) struct SqliteBackend {
    db: Pools,
    api_tokens: api_tokens::SqliteApiTokens,
    vault_keys: vault_keys::SqliteVaultKeys,
    secrets: secrets::SqliteSecrets,
    events: events::SqliteEvents,
    oauth_apps: oauth_apps::SqliteOAuthApps,
    accounts: accounts::SqliteAccounts,
    grants: grants::SqliteGrants,
    audit: audit::SqliteAudit,
    expiry: expiry::SqliteExpiry,
    authorizations: authorizations::SqliteAuthorizations,
    outbox: outbox::SqliteOutbox,
    mailboxes: mailboxes::SqliteMailboxes,
    messages: messages::SqliteMessages,
    search: search::SqliteSearch,
    webhooks: webhooks::SqliteWebhooks,
    appended: events::EventSignal,
}

impl SqliteBackend {
    /// Opens or creates the file at `path`, refuses a newer schema, and migrates.
    pub(crate) async fn open(path: &Path) -> Result<Self, StoreError> {
        create_parent_dir(path).await?;
        let mut conn = connect_writer(path).await?;
        if let Err(err) = migrate::run(&mut conn, path).await {
            close_quietly(conn).await;
            return Err(err);
        }
        let read = match connect_readers(path).await {
            Ok(read) => read,
            Err(err) => {
                close_quietly(conn).await;
                return Err(err);
            }
        };
        let writer = writer::Writer::new(conn);
        tracing::debug!(path = %path.display(), "sqlite store opened");
        Ok(Self::with_pools(Pools { read, writer }))
    }

    fn with_pools(db: Pools) -> Self {
        let appended = events::EventSignal::default();
        SqliteBackend {
            api_tokens: api_tokens::SqliteApiTokens::new(db.clone()),
            vault_keys: vault_keys::SqliteVaultKeys::new(db.clone()),
            secrets: secrets::SqliteSecrets::new(db.clone()),
            events: events::SqliteEvents::new(db.clone(), appended.clone()),
            oauth_apps: oauth_apps::SqliteOAuthApps::new(db.clone()),
            accounts: accounts::SqliteAccounts::new(db.clone(), appended.clone()),
            grants: grants::SqliteGrants::new(db.clone()),
            audit: audit::SqliteAudit::new(db.clone()),
            expiry: expiry::SqliteExpiry::new(db.clone(), appended.clone()),
            authorizations: authorizations::SqliteAuthorizations::new(db.clone()),
            outbox: outbox::SqliteOutbox::new(db.clone(), appended.clone()),
            mailboxes: mailboxes::SqliteMailboxes::new(db.clone(), appended.clone()),
            messages: messages::SqliteMessages::new(db.clone(), appended.clone()),
            search: search::SqliteSearch::new(db.clone()),
            webhooks: webhooks::SqliteWebhooks::new(db.clone()),
            appended,
            db,
        }
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn api_tokens(&self) -> &dyn ApiTokens {
        &self.api_tokens
    }

    fn vault_keys(&self) -> &dyn VaultKeys {
        &self.vault_keys
    }

    fn secrets(&self) -> &dyn Secrets {
        &self.secrets
    }

    fn events(&self) -> &dyn Events {
        &self.events
    }

    fn events_appended(&self) -> events::EventSignal {
        self.appended.clone()
    }

    fn oauth_apps(&self) -> &dyn OAuthApps {
        &self.oauth_apps
    }

    fn accounts(&self) -> &dyn Accounts {
        &self.accounts
    }

    fn grants(&self) -> &dyn Grants {
        &self.grants
    }

    fn audit(&self) -> &dyn crate::Audit {
        &self.audit
    }

    fn expiry(&self) -> &dyn crate::Expiry {
        &self.expiry
    }

    fn authorizations(&self) -> &dyn Authorizations {
        &self.authorizations
    }

    fn outbox(&self) -> &dyn crate::Outbox {
        &self.outbox
    }

    fn webhooks(&self) -> &dyn crate::Webhooks {
        &self.webhooks
    }

    fn mailboxes(&self) -> &dyn crate::Mailboxes {
        &self.mailboxes
    }

    fn messages(&self) -> &dyn crate::Messages {
        &self.messages
    }

    fn search(&self) -> &dyn crate::Search {
        &self.search
    }

    async fn close(&self) {
        self.db.writer.close().await;
        self.db.read.close().await;
    }
}

async fn create_parent_dir(path: &Path) -> Result<(), StoreError> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|err| open_error(path, err))
}

/// The connections every repository shares: the one writer and a pool of read-only readers.
#[derive(Clone)]
pub(crate) struct Pools {
    /// Read-only connections for queries; they run in parallel with the writer under WAL.
    read: SqlitePool,
    /// The single connection every write of this process goes through, in arrival order.
    writer: writer::Writer,
}

impl Pools {
    /// The writer, for a single statement (no transaction needed around it).
    async fn write(&self) -> Result<writer::WriteGuard, StoreError> {
        self.writer.acquire().await
    }
}

/// The one writer connection; it creates the file and sets the journal mode.
async fn connect_writer(path: &Path) -> Result<SqliteConnection, StoreError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
        .pragma("secure_delete", "ON")
        .pragma("cache_size", WRITER_CACHE_KIB);
    SqliteConnection::connect_with(&options)
        .await
        .map_err(|err| open_error(path, err))
}

/// Closes a writer connection that will not be used, logging rather than failing.
async fn close_quietly(conn: SqliteConnection) {
    if let Err(error) = conn.close().await {
        tracing::debug!(%error, "closing the SQLite writer after a failed open");
    }
}

/// Read-only connections: a write sent to one of them fails instead of contending for the lock.
async fn connect_readers(path: &Path) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    SqlitePoolOptions::new()
        .max_connections(READ_CONNECTIONS)
        // A file on this machine does not hang up: pinging before each use only adds a round
        // trip to the connection's thread.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|err| open_error(path, err))
}

pub(crate) fn open_error(
    path: &Path,
    source: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::Open {
        url: format!("sqlite://{}", path.display()),
        source: Box::new(source),
    }
}

/// True for SQLite's busy, locked and I/O errors (any extended variant of them).
pub(crate) fn is_transient_code(err: &dyn DatabaseError) -> bool {
    let Some(sqlite) = err.try_downcast_ref::<SqliteError>() else {
        return false;
    };
    let extended = sqlite.code().and_then(|code| code.parse::<i32>().ok());
    extended.is_some_and(|code| TRANSIENT_PRIMARY_CODES.contains(&(code & 0xff)))
}

/// True when `err` is a foreign-key violation (a row names a parent that does not exist).
fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn from_millis(millis: i64, what: impl FnOnce() -> String) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(millis).ok_or_else(|| StoreError::corrupt(what()))
}

fn from_optional_millis(
    millis: Option<i64>,
    what: impl FnOnce() -> String,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    millis.map(|millis| from_millis(millis, what)).transpose()
}

/// SQLite returns counts as signed integers; a negative one can only mean corruption.
fn to_count(count: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(count).map_err(|_| StoreError::corrupt(format!("negative {what}")))
}

/// Starts a write transaction on the writer connection (see [`writer::WriteGuard::begin`]).
async fn begin_write(db: &Pools) -> Result<writer::WriteTx, StoreError> {
    db.write().await?.begin().await
}

/// Parses a stored enum name or id, reporting a bad one as corrupt data naming the row.
fn parse_stored<T: FromStr>(text: &str, what: impl FnOnce() -> String) -> Result<T, StoreError> {
    text.parse().map_err(|_| StoreError::corrupt(what()))
}

/// Decodes a JSON TEXT column, reporting bad JSON as corrupt data naming the row.
fn decode_json<T: serde::de::DeserializeOwned>(
    json: &str,
    what: impl FnOnce() -> String,
) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|_| StoreError::corrupt(what()))
}

/// A stored port back to `u16` (the column's CHECK keeps it in range; anything else is corrupt).
fn to_port(port: i64, what: impl FnOnce() -> String) -> Result<u16, StoreError> {
    u16::try_from(port).map_err(|_| StoreError::corrupt(what()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test

    use super::*;
    use crate::NewEvent;

    async fn open() -> (SqliteBackend, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let backend = SqliteBackend::open(&dir.path().join("p.db")).await.unwrap();
        (backend, dir)
    }

    #[tokio::test]
    async fn a_write_sent_to_the_reader_pool_fails_instead_of_taking_the_lock() {
        let (backend, _dir) = open().await;
        let err = sqlx::query("DELETE FROM events")
            .execute(&backend.db.read)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("readonly"), "{err}");
    }

    #[tokio::test]
    async fn many_concurrent_writers_all_commit_in_one_queue() {
        let (backend, _dir) = open().await;
        let backend = std::sync::Arc::new(backend);
        let mut writers = tokio::task::JoinSet::new();
        for n in 0..200 {
            let backend = backend.clone();
            writers.spawn(async move {
                backend
                    .events()
                    .append(NewEvent {
                        account_id: None,
                        kind: "test.write".into(),
                        payload: serde_json::json!({ "n": n }),
                    })
                    .await
            });
        }
        while let Some(written) = writers.join_next().await {
            written.unwrap().unwrap();
        }
        let stored = backend.events().list_after(0, 1000, None).await.unwrap();
        assert_eq!(stored.len(), 200);
    }
}
