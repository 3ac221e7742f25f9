//! Embedded SQLite migrations and the newer-schema guard.
//!
//! Purpose: bring a database up to this binary's schema at open, and refuse one that is ahead.
//! Non-goal: down-migrations; schema changes are additive only (see STYLE.md §11).
//! Key decision: the guard reads `_sqlx_migrations` before the migrator runs, because sqlx's own
//! "missing migration" check would report a newer database as a confusing checksum/version error.

use std::path::Path;

use sqlx::SqliteConnection;
use sqlx::migrate::Migrator;

use super::open_error;
use crate::StoreError;
use crate::schema::ensure_not_newer;

/// The migrations in `migrations/sqlite/`, compiled into the binary.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Refuses a newer schema, then applies every pending migration.
pub(super) async fn run(conn: &mut SqliteConnection, path: &Path) -> Result<(), StoreError> {
    // The first statement on a fresh handle: "file is not a database" surfaces here, so report it
    // as an open failure naming the file.
    let applied = applied_versions(conn)
        .await
        .map_err(|err| open_error(path, err))?;
    ensure_not_newer(&applied, &known_versions())?;
    MIGRATOR.run(conn).await?;
    Ok(())
}

fn known_versions() -> Vec<i64> {
    MIGRATOR
        .iter()
        .filter(|migration| !migration.migration_type.is_down_migration())
        .map(|migration| migration.version)
        .collect()
}

async fn applied_versions(conn: &mut SqliteConnection) -> Result<Vec<i64>, sqlx::Error> {
    let has_table: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !has_table {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
        .fetch_all(conn)
        .await
}
