//! The one write connection of this process and the transactions on it.
//!
//! Purpose: hand the writer to one caller at a time, in arrival order, and run `BEGIN IMMEDIATE`
//! … `COMMIT` on it, rolling back a transaction its caller dropped.
//! Non-goal: reads; they use the read-only pool and never wait here.
//! Key decision: a `tokio::sync::Mutex` around a plain `SqliteConnection` rather than a pool of one.
//! SQLite serializes writers anyway; a pool adds a ping to the connection's thread on every
//! release and a spawned task between one writer and the next, and with many small writes (the
//! outbox's claims and lease ends) those hand-offs were most of the write lock's busy time.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, Executor, SqliteConnection};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::StoreError;

/// How long a write may wait for its turn before failing as busy.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(60);

/// The writer connection, shared by every repository.
#[derive(Clone)]
pub(crate) struct Writer {
    state: Arc<Mutex<WriterState>>,
}

struct WriterState {
    /// `None` once closed.
    conn: Option<SqliteConnection>,
    /// A transaction was begun and has not ended in a COMMIT or ROLLBACK seen to complete. Set
    /// before `BEGIN` is sent, so a holder cancelled at any await (mid-`BEGIN`, mid-statement,
    /// or a dropped transaction whose rollback never ran) leaves it set, and the next
    /// [`Writer::acquire`] rolls back before handing the connection on.
    open_transaction: bool,
}

impl Writer {
    pub(crate) fn new(conn: SqliteConnection) -> Self {
        Writer {
            state: Arc::new(Mutex::new(WriterState {
                conn: Some(conn),
                open_transaction: false,
            })),
        }
    }

    /// The connection, once the writes queued before this one are done.
    pub(crate) async fn acquire(&self) -> Result<WriteGuard, StoreError> {
        let state = tokio::time::timeout(QUEUE_TIMEOUT, self.state.clone().lock_owned())
            .await
            .map_err(|_elapsed| StoreError::Database(sqlx::Error::PoolTimedOut))?;
        let mut guard = WriteGuard { state };
        if guard.state.conn.is_none() {
            return Err(StoreError::Database(sqlx::Error::PoolClosed));
        }
        if guard.state.open_transaction {
            guard.rollback().await;
        }
        Ok(guard)
    }

    /// Closes the connection after the writes queued before it.
    pub(crate) async fn close(&self) {
        let mut state = self.state.lock().await;
        if let Some(conn) = state.conn.take()
            && let Err(error) = conn.close().await
        {
            tracing::warn!(%error, "closing the SQLite writer failed");
        }
    }
}

/// The writer, held: no other write of this process runs until it is dropped.
pub(crate) struct WriteGuard {
    state: OwnedMutexGuard<WriterState>,
}

impl WriteGuard {
    /// Starts a write transaction with `BEGIN IMMEDIATE`: it takes the database's write lock up
    /// front, so a writer in another process (`postern token create`) makes it wait (busy
    /// timeout) instead of failing halfway, when a read would have to become a write.
    pub(crate) async fn begin(mut self) -> Result<WriteTx, StoreError> {
        self.state.open_transaction = true;
        if let Err(error) = self.execute("BEGIN IMMEDIATE").await {
            self.state.open_transaction = false;
            return Err(error.into());
        }
        Ok(WriteTx { guard: Some(self) })
    }

    /// Rolls back whatever transaction is open; an error (none was open) changes nothing.
    async fn rollback(&mut self) {
        if let Err(error) = self.execute("ROLLBACK").await {
            tracing::debug!(%error, "rollback of a dropped transaction");
        }
        self.state.open_transaction = false;
    }
}

impl Deref for WriteGuard {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        // `acquire` hands out a guard only while the connection is open, and only `close`, which
        // waits for the guard, takes it.
        self.state
            .conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("the writer is open while held"))
    }
}

impl DerefMut for WriteGuard {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.state
            .conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("the writer is open while held"))
    }
}

/// A write transaction; dropped without [`WriteTx::commit`], it is rolled back before the
/// writer's next use.
pub(crate) struct WriteTx {
    guard: Option<WriteGuard>,
}

impl WriteTx {
    /// Commits and gives the writer to the next caller.
    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        let Some(mut guard) = self.guard.take() else {
            return Ok(());
        };
        match guard.execute("COMMIT").await {
            Ok(_) => {
                guard.state.open_transaction = false;
                Ok(())
            }
            Err(error) => {
                guard.rollback().await;
                Err(error.into())
            }
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        // Roll back now, holding the writer, so nothing else runs inside this transaction and
        // another process gets the database's lock back at once. Should that task never run
        // (no runtime, or one shutting down), `open_transaction` is still set and the next
        // `acquire` rolls back.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { guard.rollback().await });
        }
    }
}

impl Deref for WriteTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.guard
            .as_deref()
            .unwrap_or_else(|| unreachable!("a transaction holds the writer until it ends"))
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.guard
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("a transaction holds the writer until it ends"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test

    use super::*;
    use sqlx::sqlite::SqliteConnectOptions;

    async fn writer() -> (Writer, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("w.db"))
            .create_if_missing(true);
        let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
        conn.execute("CREATE TABLE t (n INTEGER)").await.unwrap();
        (Writer::new(conn), dir)
    }

    async fn count(writer: &Writer) -> i64 {
        let mut guard = writer.acquire().await.unwrap();
        sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut *guard)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_committed_transaction_stays_and_a_dropped_one_is_rolled_back() {
        let (writer, _dir) = writer().await;
        let mut tx = writer.acquire().await.unwrap().begin().await.unwrap();
        tx.execute("INSERT INTO t VALUES (1)").await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = writer.acquire().await.unwrap().begin().await.unwrap();
        tx.execute("INSERT INTO t VALUES (2)").await.unwrap();
        drop(tx);
        assert_eq!(count(&writer).await, 1);
        // The writer is usable again: the next transaction begins without "already in one".
        let mut tx = writer.acquire().await.unwrap().begin().await.unwrap();
        tx.execute("INSERT INTO t VALUES (3)").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(count(&writer).await, 2);
    }

    #[tokio::test]
    async fn a_holder_cancelled_at_any_await_leaves_no_transaction_open() {
        let (writer, _dir) = writer().await;
        // Aborted after a varying number of scheduler turns: before BEGIN, while it runs, inside
        // the transaction. Whichever it was, the next writer begins and commits.
        for turns in 0..40 {
            let held = writer.clone();
            let task = tokio::spawn(async move {
                let mut tx = held.acquire().await?.begin().await?;
                tx.execute("INSERT INTO t VALUES (0)").await?;
                std::future::pending::<()>().await;
                Ok::<(), StoreError>(())
            });
            for _ in 0..turns % 8 {
                tokio::task::yield_now().await;
            }
            task.abort();
            let _ = task.await;
            let mut tx = writer.acquire().await.unwrap().begin().await.unwrap();
            tx.execute("INSERT INTO t VALUES (1)").await.unwrap();
            tx.commit().await.unwrap();
        }
        assert_eq!(count(&writer).await, 40);
    }

    #[tokio::test]
    async fn a_closed_writer_refuses_instead_of_hanging() {
        let (writer, _dir) = writer().await;
        writer.close().await;
        assert!(writer.acquire().await.is_err());
    }
}
