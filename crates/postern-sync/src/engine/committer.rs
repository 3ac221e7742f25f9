//! A mailbox pass's batches committed in order by a task of their own, while the pass goes on
//! fetching and parsing the next ones.
//!
//! Purpose: keep the store's writer busy and the IMAP connection streaming at once. The fetch of
//! a batch (network, TLS, MIME parsing) and the commit of the one before (SQLite) each take about
//! as long; with a queue between them neither waits for the other's slowest batch.
//! Non-goal: deciding cursors; each batch arrives with the cursor it commits.
//! Key decisions:
//! - One task commits, strictly in the order batches were queued, and stops at the first failure:
//!   a batch's cursor assumes every batch before it is stored (the initial sync's `lowest_uid`
//!   moving down, say), so a later batch must never commit after an earlier one failed.
//! - Batches are encoded ([`SyncBatch::prepare`]) before they are queued, on the pass's task, so
//!   the commit task only binds ready values and the writer does not wait for serialization.
//! - The queue is short ([`QUEUE_DEPTH`]): memory stays bounded by a few batches, whatever the
//!   speed difference between the two sides.
//! - Dropping the committer (the pass cancelled) aborts the task: a commit under way is rolled
//!   back by the store and nothing queued is committed, so a cancelled pass stops writing.

use postern_store::{BatchOutcome, PreparedBatch, Store, StoreError, SyncBatch};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::SyncError;

/// Batches waiting for the writer besides the one it is committing.
pub const QUEUE_DEPTH: usize = 4;

/// What the commit task hands back for one batch: the caller's tag with the outcome.
type Committed<T> = (T, Result<BatchOutcome, StoreError>);

/// The commit task's side of the pass. Each batch is queued with a tag of the caller's (what it
/// needs to record the commit) that comes back with the batch's result.
pub struct Committer<T> {
    queue: Option<mpsc::Sender<(PreparedBatch, T)>>,
    done: mpsc::UnboundedReceiver<Committed<T>>,
    task: JoinHandle<()>,
    /// Batches queued whose result the pass has not taken yet.
    outstanding: usize,
}

impl<T: Send + 'static> Committer<T> {
    /// Starts the commit task.
    pub fn start(store: Store) -> Committer<T> {
        let (queue, mut batches) = mpsc::channel::<(PreparedBatch, T)>(QUEUE_DEPTH);
        let (finished, done) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Some((batch, tag)) = batches.recv().await {
                let result = store.messages().apply_prepared(batch).await;
                let failed = result.is_err();
                if finished.send((tag, result)).is_err() || failed {
                    break;
                }
            }
        });
        Committer {
            queue: Some(queue),
            done,
            task,
            outstanding: 0,
        }
    }

    /// Encodes `batch` (here, on the caller's task, while the writer is busy with the batches
    /// before) and queues it with `tag`, waiting while the queue is full. Returns false when the
    /// task has stopped (a commit failed): the batch is dropped, and [`Committer::next_result`]
    /// tells why.
    pub async fn queue(&mut self, batch: SyncBatch, tag: T) -> bool {
        let Some(queue) = &self.queue else {
            return false;
        };
        let queued = queue.send((batch.prepare(), tag)).await.is_ok();
        self.outstanding += usize::from(queued);
        queued
    }

    /// The tag and outcome of the oldest batch whose result is not taken yet, when it is ready.
    pub fn ready_result(&mut self) -> Option<Result<(T, BatchOutcome), SyncError>> {
        let (tag, result) = self.done.try_recv().ok()?;
        self.outstanding -= 1;
        Some(tagged(tag, result))
    }

    /// Says no more batches will come, so the task ends once the queue is drained.
    pub fn close(&mut self) {
        self.queue = None;
    }

    /// The tag and outcome of the oldest batch whose result is not taken yet, waiting for it;
    /// `None` once every queued batch has its result.
    pub async fn next_result(&mut self) -> Option<Result<(T, BatchOutcome), SyncError>> {
        if self.outstanding == 0 {
            return None;
        }
        let result = match self.done.recv().await {
            Some((tag, result)) => tagged(tag, result),
            // The task ended without a result for a queued batch: it panicked or was cancelled.
            None => Err(SyncError::CommitTask(self.stop_reason().await)),
        };
        self.outstanding -= 1;
        Some(result)
    }

    async fn stop_reason(&mut self) -> String {
        match (&mut self.task).await {
            Err(error) => error.to_string(),
            Ok(()) => "the commit task ended with batches still queued".to_owned(),
        }
    }
}

/// A batch's result as the pass takes it: the tag with the outcome, or the sync's error.
fn tagged<T>(
    tag: T,
    result: Result<BatchOutcome, StoreError>,
) -> Result<(T, BatchOutcome), SyncError> {
    result
        .map(|outcome| (tag, outcome))
        .map_err(SyncError::from)
}

impl<T> Drop for Committer<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
#[path = "committer_tests.rs"]
mod tests;
