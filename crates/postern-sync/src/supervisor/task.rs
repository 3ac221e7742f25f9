//! One account's supervisor: the long-running task that opens a session, syncs, and keeps the
//! account in step until it is stopped.
//!
//! Purpose: [`Supervisor::run`] loops over *rounds*. A round opens a session
//! ([`open_session`]), runs a full pass ([`sync_account`]) and then keeps in step on the same
//! connection: IDLE on INBOX, a sync of INBOX on every IDLE wake-up, IDLE re-issued every
//! `idle_restart`, and a full pass every `resync_interval`. A round ends with a stop or a
//! [`Failure`], whose verdict decides what follows: reconnect after a back-off, `error` and a long
//! wait, or parking until a restart.
//! Non-goal: more than one connection. The periodic resync leaves IDLE (DONE), runs the pass and
//! re-enters IDLE on the same connection: one connection per account in the steady state, the
//! cheapest shape for thousands of accounts and for providers that count connections. The cost
//! is that mail arriving during a resync is seen when it ends (a no-change resync is one LIST-STATUS
//! round trip).
//!
//! Key decisions:
//! - Before entering IDLE after a full pass, INBOX is selected and synced once more: the pass may
//!   have ended on another mailbox, and mail that arrived after INBOX's turn in the pass would
//!   otherwise wait for the next resync. From then on the server reports every change since that
//!   SELECT at the start of the next IDLE, so nothing falls between a sync and IDLE.
//! - Stopping is bounded: IDLE is ended with DONE and the session logged out, each within half
//!   of `stop_grace`; a pass in flight gets half of it to commit its batch (the observer stops
//!   it at the next batch), then the connection is dropped without LOGOUT.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use postern_store::{AccountId, MailboxId, Store};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use crate::account::{AccountCredentials, open_session};
use crate::engine::{same_mailbox, sync_account, sync_mailbox};
use crate::error::SyncError;
use crate::session::ImapSession;
use crate::supervisor::config::{AccountSettings, SyncConfig};
use crate::supervisor::failure::{Failure, ParkReason, Verdict};
use crate::supervisor::idle::{IdleEnd, drain_side_channel, idle, select_mailbox};
use crate::supervisor::progress::{Activity, PassSummary, ProgressCell, ProgressObserver};
use crate::supervisor::state::{AccountStates, Step, owned_by_others};
use crate::supervisor::stop_requested;

/// What every supervisor of a service shares.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) credentials: AccountCredentials,
    pub(crate) config: SyncConfig,
}

/// How a supervisor ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// It was asked to stop.
    Stopped,
    /// It stopped on its own and waits for a restart.
    Parked(ParkReason),
}

/// Why a round ended.
#[derive(Debug)]
enum Halt {
    /// A stop was asked; `clean` when the connection is at a command boundary (LOGOUT can go).
    Stop { clean: bool },
    /// Something failed.
    Fail(Failure),
}

impl From<Failure> for Halt {
    fn from(failure: Failure) -> Self {
        Halt::Fail(failure)
    }
}

fn session_failure(error: impl Into<SyncError>) -> Halt {
    Halt::Fail(Failure::Session(error.into()))
}

/// The open connection of a round and what the round knows about it.
struct Live {
    session: ImapSession,
    _permit: OwnedSemaphorePermit,
    settings: AccountSettings,
    /// INBOX in the store, once a pass has listed it (absent when it is not synced).
    inbox: Option<MailboxId>,
    /// INBOX is selected on this connection and was synced since.
    inbox_ready: bool,
    /// When the next full pass is due.
    next_resync: Instant,
}

/// One account's supervisor.
pub(crate) struct Supervisor {
    shared: Arc<Shared>,
    account_id: AccountId,
    progress: ProgressCell,
    stop: watch::Receiver<bool>,
    connections: Arc<Semaphore>,
    /// Created from the stored state when the account is first read.
    states: Option<AccountStates>,
    /// Consecutive failed rounds.
    failures: u32,
    /// Sessions opened.
    sessions: u32,
}

impl Supervisor {
    pub(crate) fn new(
        shared: Arc<Shared>,
        account_id: AccountId,
        progress: ProgressCell,
        stop: watch::Receiver<bool>,
        connections: Arc<Semaphore>,
    ) -> Self {
        Supervisor {
            shared,
            account_id,
            progress,
            stop,
            connections,
            states: None,
            failures: 0,
            sessions: 0,
        }
    }

    /// Runs until stopped or parked, after waiting `start_delay` (the staggered start).
    pub(crate) async fn run(mut self, start_delay: Duration) -> Exit {
        if !start_delay.is_zero() && self.pause(start_delay).await.is_err() {
            return self.finish(Exit::Stopped);
        }
        loop {
            let failure = match self.round().await {
                Halt::Stop { .. } => return self.finish(Exit::Stopped),
                Halt::Fail(failure) => failure,
            };
            if let Err(exit) = self.recover_from(failure).await {
                return self.finish(exit);
            }
        }
    }

    fn finish(&self, exit: Exit) -> Exit {
        let activity = match &exit {
            Exit::Stopped => Activity::Stopped,
            Exit::Parked(reason) => Activity::Parked(reason.clone()),
        };
        tracing::info!(account = %self.account_id, ?exit, "supervisor ended");
        self.progress.set_activity(activity);
        exit
    }

    /// Opens a session, syncs, keeps in step; returns why it ended, the session closed.
    async fn round(&mut self) -> Halt {
        let mut live = match self.open().await {
            Ok(live) => live,
            Err(halt) => return halt,
        };
        let halt = match self.serve(&mut live).await {
            Ok(never) => match never {},
            Err(halt) => halt,
        };
        if let Halt::Stop { clean: true } = halt {
            let grace = self.shared.config.stop_grace / 2;
            if let Err(error) = tokio::time::timeout(grace, live.session.logout()).await {
                tracing::debug!(account = %self.account_id, %error, "LOGOUT did not finish in time");
            }
        }
        halt
    }

    async fn open(&mut self) -> Result<Live, Halt> {
        let account = self.load_account().await?;
        if self.states.is_none() {
            let mut states = AccountStates::new(
                self.shared.store.clone(),
                self.account_id.clone(),
                account.state,
            );
            states.apply(Step::Connecting).await?;
            self.states = Some(states);
        }
        self.progress.set_activity(Activity::Connecting);
        let settings = self.shared.config.settings_for(&account);
        let permit = until_stopped(&mut self.stop, self.connections.clone().acquire_owned())
            .await
            .and_then(Result::ok)
            .ok_or(Halt::Stop { clean: true })?;
        let session = until_stopped(
            &mut self.stop,
            open_session(&account, &self.shared.credentials),
        )
        .await
        .ok_or(Halt::Stop { clean: true })?
        .map_err(Failure::Login)?;
        self.sessions += 1;
        let reconnect = self.sessions > 1;
        self.progress.update(|progress| {
            if reconnect {
                progress.reconnects += 1;
            }
        });
        self.apply(Step::Syncing).await?;
        Ok(Live {
            session,
            _permit: permit,
            settings,
            inbox: None,
            inbox_ready: false,
            next_resync: Instant::now(),
        })
    }

    /// The first pass, `connected`, then in step until something ends the round.
    async fn serve(&mut self, live: &mut Live) -> Result<Infallible, Halt> {
        let mailboxes = self.full_pass(live).await?;
        self.sync_inbox(live).await?;
        self.apply(Step::Connected { mailboxes }).await?;
        self.failures = 0;
        self.progress.update(|progress| {
            progress.connected_since = Some(Utc::now());
            progress.last_error = None;
        });
        loop {
            if Instant::now() >= live.next_resync {
                self.full_pass(live).await?;
            }
            if !live.inbox_ready {
                self.sync_inbox(live).await?;
            }
            if live.inbox.is_some() && live.session.capabilities().idle() {
                self.idle_once(live).await?;
            } else {
                self.poll_once(live).await?;
            }
        }
    }

    /// One IDLE on INBOX, and the sync it calls for.
    async fn idle_once(&mut self, live: &mut Live) -> Result<(), Halt> {
        self.progress.set_activity(Activity::Idling);
        let restart = instant_after(live.settings.idle_restart);
        let deadline = restart.min(live.next_resync);
        let grace = self.shared.config.stop_grace / 2;
        let end = idle(&mut live.session, deadline, &mut self.stop, grace)
            .await
            .map_err(session_failure)?;
        drain_side_channel(&mut live.session);
        match end {
            IdleEnd::Changed => {
                self.progress.update(|progress| progress.idle_wakeups += 1);
                self.sync_inbox(live).await
            }
            IdleEnd::Deadline => Ok(()),
            IdleEnd::Stopped => Err(Halt::Stop { clean: true }),
        }
    }

    /// Without IDLE: wait for the poll interval (or the resync), then sync INBOX.
    async fn poll_once(&mut self, live: &mut Live) -> Result<(), Halt> {
        self.progress.set_activity(Activity::Polling);
        let wake = instant_after(live.settings.poll_interval).min(live.next_resync);
        until_stopped(&mut self.stop, tokio::time::sleep_until(wake))
            .await
            .ok_or(Halt::Stop { clean: true })?;
        if Instant::now() < live.next_resync {
            self.sync_inbox(live).await?;
        }
        Ok(())
    }

    /// A pass over every mailbox; records it and finds INBOX. Returns the number of mailboxes.
    async fn full_pass(&mut self, live: &mut Live) -> Result<usize, Halt> {
        self.progress.set_activity(Activity::Syncing);
        let started = Instant::now();
        let observer_stop = self.stop.clone();
        let observer = ProgressObserver {
            cell: &self.progress,
            stop: &observer_stop,
        };
        let pass = sync_account(
            &mut live.session,
            &self.shared.store,
            &self.account_id,
            &live.settings.sync,
            &observer,
        );
        let report = stop_during(&mut self.stop, self.shared.config.stop_grace / 2, pass).await?;
        record_pass("account", started, report.is_ok());
        let report = report.map_err(session_failure)?;
        drain_side_channel(&mut live.session);
        let stored = self
            .shared
            .store
            .mailboxes()
            .list(&self.account_id)
            .await
            .map_err(Failure::Store)?;
        live.inbox = stored
            .iter()
            .find(|mailbox| same_mailbox(&mailbox.name, "INBOX"))
            .map(|mailbox| mailbox.id);
        live.inbox_ready = false;
        live.next_resync = instant_after(live.settings.resync_interval);
        let summary = PassSummary {
            finished_at: Utc::now(),
            took: started.elapsed(),
            report,
        };
        self.progress.update(|progress| {
            progress.last_pass = Some(summary);
            progress.follow_store(&stored);
        });
        Ok(stored.len())
    }

    /// Brings INBOX up to date, selecting it first unless it is already selected and synced.
    async fn sync_inbox(&mut self, live: &mut Live) -> Result<(), Halt> {
        let Some(inbox_id) = live.inbox else {
            return Ok(());
        };
        let stored = self.shared.store.mailboxes().get(inbox_id).await;
        let Some(inbox) = stored.map_err(Failure::Store)? else {
            // Deleted under us (a reset or a rename on the server): the next pass sorts it out.
            live.inbox = None;
            live.next_resync = Instant::now();
            return Ok(());
        };
        if !live.inbox_ready {
            until_stopped(
                &mut self.stop,
                select_mailbox(&mut live.session, &inbox.name),
            )
            .await
            .ok_or(Halt::Stop { clean: false })?
            .map_err(session_failure)?;
        }
        let observer_stop = self.stop.clone();
        let observer = ProgressObserver {
            cell: &self.progress,
            stop: &observer_stop,
        };
        let started = Instant::now();
        let pass = sync_mailbox(
            &mut live.session,
            &self.shared.store,
            &inbox,
            &live.settings.sync,
            &observer,
        );
        let synced = stop_during(&mut self.stop, self.shared.config.stop_grace / 2, pass).await?;
        record_pass("mailbox", started, synced.is_ok());
        synced.map_err(session_failure)?;
        drain_side_channel(&mut live.session);
        live.inbox_ready = true;
        Ok(())
    }

    /// The account as stored, unless it is gone or in a state someone else owns.
    async fn load_account(&self) -> Result<postern_store::Account, Failure> {
        let account = self
            .shared
            .store
            .accounts()
            .get(&self.account_id)
            .await
            .map_err(Failure::Store)?
            .ok_or_else(|| {
                Failure::Store(postern_store::StoreError::NotFound {
                    what: format!("account {}", self.account_id),
                })
            })?;
        if owned_by_others(account.state) {
            return Err(Failure::Unsyncable(account.state));
        }
        Ok(account)
    }

    async fn apply(&mut self, step: Step) -> Result<(), Failure> {
        match &mut self.states {
            Some(states) => states.apply(step).await,
            None => Ok(()),
        }
    }

    /// Acts on a failed round: `Ok` to start the next round, `Err` to end the supervisor.
    async fn recover_from(&mut self, failure: Failure) -> Result<(), Exit> {
        if *self.stop.borrow() {
            return Err(Exit::Stopped);
        }
        let words = failure.describe();
        let (wait, step, activity) = match failure.verdict() {
            Verdict::Park(reason) => {
                tracing::info!(account = %self.account_id, reason = reason.describe(), %words, "supervisor parked");
                return Err(Exit::Parked(reason));
            }
            Verdict::Retry => {
                self.failures += 1;
                let wait = self.shared.config.backoff.jittered(self.failures);
                let words = format!("{words}; retrying in {}", in_words(wait));
                let step = if self.failures >= self.shared.config.failures_before_error {
                    Step::Failed(words)
                } else {
                    Step::Retrying(words)
                };
                let at = moment_after(wait);
                let activity = Activity::Retrying {
                    attempt: self.failures,
                    at,
                };
                (wait, step, activity)
            }
            Verdict::Fail => {
                self.failures += 1;
                let wait = self.shared.config.error_retry;
                let at = moment_after(wait);
                (wait, Step::Failed(words), Activity::Failed { at })
            }
        };
        let last_error = match &step {
            Step::Retrying(words) | Step::Failed(words) => Some(words.clone()),
            _ => None,
        };
        tracing::warn!(account = %self.account_id, error = last_error.as_deref().unwrap_or_default(), "sync session failed");
        if let Err(state_failure) = self.apply(step).await {
            if let Verdict::Park(reason) = state_failure.verdict() {
                return Err(Exit::Parked(reason));
            }
            tracing::warn!(account = %self.account_id, error = %state_failure.describe(), "could not record the account's state");
        }
        self.progress.update(|progress| {
            progress.activity = activity;
            progress.connected_since = None;
            progress.last_error = last_error;
        });
        self.pause(wait).await.map_err(|()| Exit::Stopped)
    }

    /// Sleeps `wait`; `Err` when a stop comes first.
    async fn pause(&mut self, wait: Duration) -> Result<(), ()> {
        until_stopped(&mut self.stop, tokio::time::sleep(wait))
            .await
            .ok_or(())
    }
}

/// `work`, unless a stop comes first (`None`; `work` is dropped).
async fn until_stopped<T>(
    stop: &mut watch::Receiver<bool>,
    work: impl Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        biased;
        () = stop_requested(stop) => None,
        out = work => Some(out),
    }
}

/// A pass that may be stopped: when a stop comes, the pass gets `grace` to reach its next batch
/// (where the observer ends it); either way the round then ends with [`Halt::Stop`], `clean` if the
/// pass finished.
async fn stop_during<T>(
    stop: &mut watch::Receiver<bool>,
    grace: Duration,
    work: impl Future<Output = T>,
) -> Result<T, Halt> {
    tokio::pin!(work);
    tokio::select! {
        biased;
        out = &mut work => return Ok(out),
        () = stop_requested(stop) => {}
    }
    let clean = tokio::time::timeout(grace, work).await.is_ok();
    Err(Halt::Stop { clean })
}

/// The instant `wait` from now; a year from now for waits too long to represent.
fn instant_after(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 60 * 60))
}

/// The wall-clock time `wait` from now, for progress reports.
fn moment_after(wait: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(wait)
        .ok()
        .and_then(|delta| Utc::now().checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A wait in words: "800 ms", "4 s", "5 min".
pub(crate) fn in_words(wait: Duration) -> String {
    let seconds = wait.as_secs();
    if seconds == 0 {
        format!("{} ms", wait.as_millis())
    } else if seconds < 120 {
        format!("{seconds} s")
    } else {
        format!("{} min", seconds.div_ceil(60))
    }
}

/// Counts a finished pass and its duration in the Prometheus figures (`crate::metrics`).
fn record_pass(kind: &'static str, started: Instant, ok: bool) {
    let result = if ok { "ok" } else { "error" };
    metrics::counter!(crate::metrics::PASSES_METRIC, "result" => result).increment(1);
    metrics::histogram!(crate::metrics::PASS_DURATION_METRIC, "kind" => kind)
        .record(started.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_naturally() {
        assert_eq!(in_words(Duration::from_millis(250)), "250 ms");
        assert_eq!(in_words(Duration::from_millis(4_400)), "4 s");
        assert_eq!(in_words(Duration::from_secs(300)), "5 min");
        assert_eq!(in_words(Duration::from_secs(3_601)), "61 min");
    }

    #[tokio::test]
    async fn a_stop_ends_the_wait_and_a_pass_gets_its_grace() {
        let (stop_tx, mut stop) = watch::channel(false);
        let done = until_stopped(&mut stop, async { 7 }).await;
        assert_eq!(done, Some(7));
        stop_tx.send_replace(true);
        let waited = until_stopped(&mut stop, tokio::time::sleep(Duration::from_secs(60))).await;
        assert_eq!(waited, None);

        let quick = stop_during(&mut stop, Duration::from_millis(200), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
        })
        .await;
        assert!(matches!(quick, Err(Halt::Stop { clean: true })));
        let slow = stop_during(&mut stop, Duration::from_millis(20), async {
            tokio::time::sleep(Duration::from_secs(60)).await;
        })
        .await;
        assert!(matches!(slow, Err(Halt::Stop { clean: false })));
    }
}
