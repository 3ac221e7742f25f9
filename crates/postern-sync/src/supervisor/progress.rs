//! What each supervisor is doing and how far its sync got, kept in memory for the API and the CLI.
//!
//! Purpose: [`AccountProgress`], a snapshot per account (activity, last full pass, per-mailbox
//! cursors); `ProgressCell`, the shared cell a supervisor writes and
//! [`SyncService::progress`](crate::supervisor::SyncService::progress) reads; and the
//! [`SyncObserver`] that records every committed batch and stops a pass when asked.
//! Non-goal: persistence. The durable truth is the store (mailbox cursors, message counts); this is
//! the live view, rebuilt from the next pass after a restart.
//! Key decision: one `std::sync::Mutex` per account, held only to copy or update a few fields and
//! never across an `.await`, so a reader never waits on the network and accounts never contend.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use postern_store::{Mailbox, SyncState};

use crate::engine::{BatchReport, SyncObserver, SyncReport};
use crate::supervisor::failure::ParkReason;

/// What a supervisor is doing now.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Activity {
    /// Waiting for its turn in a staggered start.
    Waiting {
        /// When it connects.
        until: DateTime<Utc>,
    },
    /// Opening a session.
    Connecting,
    /// Running a pass over every mailbox (the initial sync, or the periodic resync).
    Syncing,
    /// In IDLE on INBOX, up to date.
    Idling,
    /// Up to date, checking INBOX every poll interval (the server has no IDLE).
    Polling,
    /// Waiting to reconnect after a transient failure.
    Retrying {
        /// Consecutive failures so far.
        attempt: u32,
        /// When it tries again.
        at: DateTime<Utc>,
    },
    /// Failed for a reason retrying soon cannot fix (the account is `error`); tries again at `at`
    /// or when restarted.
    Failed {
        /// When it tries again.
        at: DateTime<Utc>,
    },
    /// Stopped on its own; only a restart brings it back.
    Parked(ParkReason),
    /// Stopped by the service.
    Stopped,
}

/// A full pass that finished.
#[derive(Clone, Debug, PartialEq)]
pub struct PassSummary {
    /// When it finished.
    pub finished_at: DateTime<Utc>,
    /// How long it took.
    pub took: Duration,
    /// What it did.
    pub report: SyncReport,
}

impl Activity {
    /// Every name [`Activity::as_str`] gives, in that order.
    pub const NAMES: [&'static str; 9] = [
        "waiting",
        "connecting",
        "syncing",
        "idling",
        "polling",
        "retrying",
        "failed",
        "parked",
        "stopped",
    ];

    /// The activity's name for APIs and logs: one of [`Activity::NAMES`].
    pub fn as_str(&self) -> &'static str {
        match self {
            Activity::Waiting { .. } => "waiting",
            Activity::Connecting => "connecting",
            Activity::Syncing => "syncing",
            Activity::Idling => "idling",
            Activity::Polling => "polling",
            Activity::Retrying { .. } => "retrying",
            Activity::Failed { .. } => "failed",
            Activity::Parked(_) => "parked",
            Activity::Stopped => "stopped",
        }
    }
}

/// One mailbox's sync as the supervisor last saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MailboxProgress {
    /// Messages stored by this supervisor (initial sync and new mail) since it started.
    pub stored: u64,
    /// Flag changes applied since it started.
    pub updated: u64,
    /// Messages deleted since it started.
    pub deleted: u64,
    /// The server's message count at the last committed batch.
    pub exists: u32,
    /// Where the initial sync has reached, going down (the lowest UID fetched).
    pub lowest_uid: u32,
    /// The UIDNEXT up to which new mail is stored.
    pub uidnext: u32,
    /// Whether the initial sync (within its window) is complete.
    pub initial_done: bool,
}

/// A snapshot of one account's supervisor.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct AccountProgress {
    /// What it is doing.
    pub activity: Activity,
    /// Since when the current session is up to date, if it is.
    pub connected_since: Option<DateTime<Utc>>,
    /// The last full pass over every mailbox.
    pub last_pass: Option<PassSummary>,
    /// Per mailbox, by name: what committed batches said.
    pub mailboxes: BTreeMap<String, MailboxProgress>,
    /// Sessions opened after the first.
    pub reconnects: u32,
    /// IDLE wake-ups that led to a sync of INBOX.
    pub idle_wakeups: u64,
    /// The last failure, in words (cleared once connected again).
    pub last_error: Option<String>,
}

impl AccountProgress {
    fn new(activity: Activity) -> Self {
        AccountProgress {
            activity,
            connected_since: None,
            last_pass: None,
            mailboxes: BTreeMap::new(),
            reconnects: 0,
            idle_wakeups: 0,
            last_error: None,
        }
    }
}

/// The shared, always-current [`AccountProgress`] of one supervisor.
#[derive(Clone, Debug)]
pub(crate) struct ProgressCell(Arc<Mutex<AccountProgress>>);

impl ProgressCell {
    pub(crate) fn new(activity: Activity) -> Self {
        ProgressCell(Arc::new(Mutex::new(AccountProgress::new(activity))))
    }

    /// A copy of the current state.
    pub(crate) fn snapshot(&self) -> AccountProgress {
        self.lock().clone()
    }

    /// Reads it under the lock, without copying all of it (keep `read` short and free of I/O).
    pub(crate) fn read<T>(&self, read: impl FnOnce(&AccountProgress) -> T) -> T {
        read(&self.lock())
    }

    /// Changes it under the lock (keep `change` short and free of I/O).
    pub(crate) fn update(&self, change: impl FnOnce(&mut AccountProgress)) {
        change(&mut self.lock());
    }

    pub(crate) fn set_activity(&self, activity: Activity) {
        self.update(|progress| progress.activity = activity);
    }

    fn lock(&self) -> MutexGuard<'_, AccountProgress> {
        // A panic while holding this lock leaves plain data behind; reading it is harmless.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Records each committed batch in a [`ProgressCell`]; asks the pass to stop at the next batch
/// once `stop` turns true.
pub(crate) struct ProgressObserver<'a> {
    pub(crate) cell: &'a ProgressCell,
    pub(crate) stop: &'a watch::Receiver<bool>,
}

impl SyncObserver for ProgressObserver<'_> {
    fn batch_committed(&self, batch: &BatchReport<'_>) -> ControlFlow<()> {
        self.cell.update(|progress| {
            let mailbox = progress
                .mailboxes
                .entry(batch.mailbox.to_owned())
                .or_default();
            record(mailbox, batch);
        });
        if *self.stop.borrow() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

fn record(mailbox: &mut MailboxProgress, batch: &BatchReport<'_>) {
    let outcome = &batch.outcome;
    mailbox.stored += u64::from(outcome.inserted);
    mailbox.updated += u64::from(outcome.updated);
    mailbox.deleted += u64::from(outcome.deleted);
    mailbox.follow(&batch.state);
}

impl MailboxProgress {
    /// Takes the cursor's positions.
    fn follow(&mut self, state: &SyncState) {
        self.exists = state.exists;
        self.lowest_uid = state.lowest_uid;
        self.uidnext = state.uidnext;
        self.initial_done = state.initial_done;
    }
}

impl AccountProgress {
    /// Brings the per-mailbox view in line with the stored mailboxes after a full pass: mailboxes
    /// the pass did not touch (nothing had changed) get their stored cursor, deleted ones go.
    pub(crate) fn follow_store(&mut self, stored: &[Mailbox]) {
        self.mailboxes
            .retain(|name, _| stored.iter().any(|mailbox| mailbox.name == *name));
        for mailbox in stored {
            let entry = self.mailboxes.entry(mailbox.name.clone()).or_default();
            if let Some(state) = &mailbox.sync {
                entry.follow(state);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use postern_store::{AccountId, BatchOutcome, MailboxId};

    use super::*;
    use crate::engine::Phase;

    #[test]
    fn names_lists_every_activity_name_in_order() {
        let at = chrono::Utc::now();
        let every = [
            Activity::Waiting { until: at },
            Activity::Connecting,
            Activity::Syncing,
            Activity::Idling,
            Activity::Polling,
            Activity::Retrying { attempt: 1, at },
            Activity::Failed { at },
            Activity::Parked(crate::supervisor::failure::ParkReason::AccountGone),
            Activity::Stopped,
        ];
        let names: Vec<&str> = every.iter().map(Activity::as_str).collect();
        assert_eq!(names, Activity::NAMES);
    }

    fn state(lowest_uid: u32, initial_done: bool) -> SyncState {
        SyncState {
            uidvalidity: 1,
            uidnext: 101,
            highest_modseq: Some(9),
            lowest_uid,
            initial_done,
            exists: 100,
            unseen: None,
        }
    }

    fn batch(inserted: u32, state: SyncState) -> BatchReport<'static> {
        BatchReport {
            mailbox: "INBOX",
            phase: Phase::Initial,
            fetched: &[],
            outcome: BatchOutcome {
                inserted,
                updated: 1,
                deleted: 0,
            },
            state,
        }
    }

    #[test]
    fn batches_add_up_and_the_observer_stops_when_asked() {
        let cell = ProgressCell::new(Activity::Syncing);
        let (stop_tx, stop) = watch::channel(false);
        let observer = ProgressObserver {
            cell: &cell,
            stop: &stop,
        };
        assert_eq!(
            observer.batch_committed(&batch(50, state(51, false))),
            ControlFlow::Continue(())
        );
        stop_tx.send_replace(true);
        assert_eq!(
            observer.batch_committed(&batch(50, state(1, true))),
            ControlFlow::Break(())
        );
        let inbox = &cell.snapshot().mailboxes["INBOX"];
        assert_eq!(inbox.stored, 100);
        assert_eq!(inbox.updated, 2);
        assert_eq!(inbox.lowest_uid, 1);
        assert!(inbox.initial_done);
    }

    #[test]
    fn the_store_fills_untouched_mailboxes_and_drops_deleted_ones() {
        let cell = ProgressCell::new(Activity::Syncing);
        cell.update(|progress| {
            progress
                .mailboxes
                .insert("Gone".into(), MailboxProgress::default());
        });
        let account_id = AccountId::generate();
        let stored = Mailbox {
            id: MailboxId(1),
            account_id,
            name: "Archive".into(),
            delimiter: Some("/".into()),
            role: None,
            sync: Some(state(1, true)),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        cell.update(|progress| progress.follow_store(&[stored]));
        let snapshot = cell.snapshot();
        assert_eq!(snapshot.mailboxes.keys().collect::<Vec<_>>(), ["Archive"]);
        assert_eq!(snapshot.mailboxes["Archive"].exists, 100);
        assert!(snapshot.mailboxes["Archive"].initial_done);
    }
}
