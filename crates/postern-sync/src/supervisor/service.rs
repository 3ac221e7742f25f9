//! The sync service: owns one supervisor per account and starts, stops and restarts them.
//!
//! Purpose: [`SyncService`] is what the binary and the API hold. [`SyncService::start_all`] at boot
//! (staggered), [`SyncService::start`] for a new account, [`SyncService::stop`] on delete,
//! [`SyncService::restart`] after re-authorization, [`SyncService::shutdown`] at exit;
//! [`SyncService::progress`] for `GET /v1/accounts/{id}`; [`SyncService::open_session`] for
//! operations that need the server now (fetching a body, moving a message), within the account's
//! connection cap.
//! Non-goal: deciding when to start or stop; the callers (API, token manager hooks, the binary) do.
//!
//! Key decisions:
//! - Each supervisor has its own `watch` stop channel, so one account can be stopped without
//!   touching the others, and `shutdown` is "stop all" with one shared deadline.
//! - The connection cap is a semaphore per account that outlives restarts; the supervisor holds one
//!   permit for its connection, on-demand sessions take the others.
//! - `start_all` spreads first connections evenly over `start_window`: a node with 1,000 accounts
//!   does not open 1,000 TLS handshakes (and token refreshes) in the same instant.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::Utc;
use postern_store::{AccountId, Store};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;

use crate::account::{AccountCredentials, open_session};
use crate::session::ImapSession;
use crate::supervisor::config::SyncConfig;
use crate::supervisor::error::ServiceError;
use crate::supervisor::progress::{AccountProgress, Activity, ProgressCell};
use crate::supervisor::schedule::stagger_delays;
use crate::supervisor::state::owned_by_others;
use crate::supervisor::task::{Exit, Shared, Supervisor};

/// Beyond `stop_grace`, how long a stop waits for a supervisor before aborting its task.
const ABORT_MARGIN: Duration = Duration::from_millis(100);

/// The supervisors of every syncing account. Cheap to clone; clones share the supervisors.
#[derive(Clone)]
pub struct SyncService {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    supervisors: Mutex<HashMap<AccountId, Running>>,
    budgets: Mutex<HashMap<AccountId, Arc<Semaphore>>>,
}

/// What [`SyncService::lag`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncLag {
    /// Supervisors per activity name, every name of [`Activity::NAMES`] present (0 included).
    pub activities: std::collections::BTreeMap<&'static str, u64>,
    /// The age of the oldest last full pass among running supervisors.
    pub oldest_pass_age: Option<std::time::Duration>,
}

/// A supervisor's handles.
struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<Exit>,
    progress: ProgressCell,
}

/// An IMAP session opened on demand, holding one of the account's connection permits until it is
/// dropped or logged out.
#[derive(Debug)]
pub struct BudgetedSession {
    session: ImapSession,
    _permit: OwnedSemaphorePermit,
}

impl BudgetedSession {
    /// Logs out, giving the permit back.
    ///
    /// # Errors
    ///
    /// See [`ImapSession::logout`]; the connection and the permit are released either way.
    pub async fn logout(self) -> Result<(), crate::ImapError> {
        self.session.logout().await
    }
}

impl Deref for BudgetedSession {
    type Target = ImapSession;

    fn deref(&self) -> &ImapSession {
        &self.session
    }
}

impl DerefMut for BudgetedSession {
    fn deref_mut(&mut self) -> &mut ImapSession {
        &mut self.session
    }
}

impl SyncService {
    /// A service with no supervisor running yet.
    pub fn new(store: Store, credentials: AccountCredentials, config: SyncConfig) -> Self {
        SyncService {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    store,
                    credentials,
                    config,
                }),
                supervisors: Mutex::new(HashMap::new()),
                budgets: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &SyncConfig {
        &self.inner.shared.config
    }

    /// Starts a supervisor for every account that syncs (not `needs_reauth`,
    /// `pending_authorization` or `disabled`) and is not running yet, their first connections
    /// spread evenly over `start_window`. Returns how many were started.
    ///
    /// # Errors
    ///
    /// [`ServiceError::Store`] when the accounts cannot be listed.
    pub async fn start_all(&self) -> Result<usize, ServiceError> {
        let accounts = self.inner.shared.store.accounts().list().await?;
        let mut supervisors = self.inner.supervisors();
        let to_start: Vec<AccountId> = accounts
            .into_iter()
            .filter(|account| !owned_by_others(account.state))
            .filter(|account| !is_live(supervisors.get(&account.id)))
            .map(|account| account.id)
            .collect();
        let delays = stagger_delays(to_start.len(), self.config().start_window);
        for (account_id, delay) in to_start.iter().zip(delays) {
            let running = self.spawn(account_id, delay);
            supervisors.insert(account_id.clone(), running);
        }
        tracing::info!(accounts = to_start.len(), window = ?self.config().start_window, "sync supervisors starting");
        Ok(to_start.len())
    }

    /// Starts the account's supervisor now, unless it is running already.
    ///
    /// # Errors
    ///
    /// [`ServiceError::AccountNotFound`], [`ServiceError::NotSyncable`] for an account that waits
    /// for a person, [`ServiceError::Store`].
    pub async fn start(&self, account_id: &AccountId) -> Result<(), ServiceError> {
        let account = self
            .inner
            .shared
            .store
            .accounts()
            .get(account_id)
            .await?
            .ok_or_else(|| ServiceError::AccountNotFound(account_id.clone()))?;
        if owned_by_others(account.state) {
            return Err(ServiceError::NotSyncable {
                account_id: account_id.clone(),
                state: account.state,
            });
        }
        let mut supervisors = self.inner.supervisors();
        if !is_live(supervisors.get(account_id)) {
            let running = self.spawn(account_id, Duration::ZERO);
            supervisors.insert(account_id.clone(), running);
        }
        Ok(())
    }

    /// Stops the account's supervisor (IDLE ended, logged out) and forgets it, e.g. when the
    /// account is deleted. Returns whether one was there.
    pub async fn stop(&self, account_id: &AccountId) -> bool {
        let was_there = self.halt(account_id).await;
        lock(&self.inner.budgets).remove(account_id);
        was_there
    }

    /// Stops and starts the account's supervisor, e.g. after a re-authorization or a settings
    /// change: the new one reads the account afresh.
    ///
    /// # Errors
    ///
    /// As [`SyncService::start`].
    pub async fn restart(&self, account_id: &AccountId) -> Result<(), ServiceError> {
        self.halt(account_id).await;
        self.start(account_id).await
    }

    /// Stops every supervisor, all within one `stop_grace`. Returns how many were running.
    pub async fn shutdown(&self) -> usize {
        let stopping: Vec<(AccountId, Running)> = self.inner.supervisors().drain().collect();
        for (_, running) in &stopping {
            running.stop.send_replace(true);
        }
        let deadline = self.config().stop_grace + ABORT_MARGIN;
        let count = stopping.len();
        let joins = stopping
            .into_iter()
            .map(|(account_id, running)| join_or_abort(account_id, running.task, deadline));
        futures::future::join_all(joins).await;
        tracing::info!(supervisors = count, "sync supervisors stopped");
        count
    }

    /// What the account's supervisor is doing and how far its sync got; `None` when none was
    /// started (or it was stopped with [`SyncService::stop`]).
    pub fn progress(&self, account_id: &AccountId) -> Option<AccountProgress> {
        self.inner
            .supervisors()
            .get(account_id)
            .map(|running| running.progress.snapshot())
    }

    /// How many running supervisors are at each activity (`idling`, `syncing`, `retrying`, …),
    /// and the age of the oldest last full pass among them: how stale a mailbox that IDLE does
    /// not watch can be at most (`None` while no pass has finished).
    pub fn lag(&self) -> SyncLag {
        let now = chrono::Utc::now();
        let mut lag = SyncLag {
            activities: Activity::NAMES.iter().map(|name| (*name, 0)).collect(),
            oldest_pass_age: None,
        };
        for running in self.inner.supervisors().values() {
            // Two fields of each: a scrape must not copy every account's mailbox figures.
            let (activity, finished_at) = running.progress.read(|progress| {
                let finished_at = progress.last_pass.as_ref().map(|pass| pass.finished_at);
                (progress.activity.as_str(), finished_at)
            });
            *lag.activities.entry(activity).or_default() += 1;
            let age = finished_at.and_then(|at| (now - at).to_std().ok());
            lag.oldest_pass_age = lag.oldest_pass_age.max(age);
        }
        lag
    }

    /// The accounts whose supervisor is running (not stopped, not parked).
    pub fn running(&self) -> Vec<AccountId> {
        self.inner
            .supervisors()
            .iter()
            .filter(|(_, running)| is_live(Some(running)))
            .map(|(account_id, _)| account_id.clone())
            .collect()
    }

    /// A session of the account's own, for an operation that needs the server now, counted
    /// against the account's `max_connections` (its supervisor holds one).
    ///
    /// # Errors
    ///
    /// [`ServiceError::TooManyConnections`] when no connection frees up within `connection_wait`;
    /// [`ServiceError::AccountNotFound`]; [`ServiceError::Session`] when the login fails.
    pub async fn open_session(
        &self,
        account_id: &AccountId,
    ) -> Result<BudgetedSession, ServiceError> {
        let shared = &self.inner.shared;
        let account = shared
            .store
            .accounts()
            .get(account_id)
            .await?
            .ok_or_else(|| ServiceError::AccountNotFound(account_id.clone()))?;
        let budget = self.inner.budget(account_id, shared.config.max_connections);
        let permit = tokio::time::timeout(shared.config.connection_wait, budget.acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| ServiceError::TooManyConnections {
                account_id: account_id.clone(),
                limit: shared.config.max_connections,
            })?;
        let session = open_session(&account, &shared.credentials).await?;
        Ok(BudgetedSession {
            session,
            _permit: permit,
        })
    }

    /// Stops the account's supervisor, keeping its connection budget.
    async fn halt(&self, account_id: &AccountId) -> bool {
        let Some(running) = self.inner.supervisors().remove(account_id) else {
            return false;
        };
        running.stop.send_replace(true);
        let deadline = self.config().stop_grace + ABORT_MARGIN;
        join_or_abort(account_id.clone(), running.task, deadline).await;
        true
    }

    fn spawn(&self, account_id: &AccountId, delay: Duration) -> Running {
        let (stop, stop_rx) = watch::channel(false);
        let activity = if delay.is_zero() {
            Activity::Connecting
        } else {
            Activity::Waiting {
                until: Utc::now() + chrono::TimeDelta::from_std(delay).unwrap_or_default(),
            }
        };
        let progress = ProgressCell::new(activity);
        let connections = self.inner.budget(account_id, self.config().max_connections);
        let supervisor = Supervisor::new(
            self.inner.shared.clone(),
            account_id.clone(),
            progress.clone(),
            stop_rx,
            connections,
        );
        let task = tokio::spawn(supervisor.run(delay));
        Running {
            stop,
            task,
            progress,
        }
    }
}

impl Inner {
    fn supervisors(&self) -> MutexGuard<'_, HashMap<AccountId, Running>> {
        lock(&self.supervisors)
    }

    /// The account's connection semaphore, created with `limit` permits on first use.
    fn budget(&self, account_id: &AccountId, limit: usize) -> Arc<Semaphore> {
        lock(&self.budgets)
            .entry(account_id.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(limit.max(1))))
            .clone()
    }
}

/// Whether a supervisor is there and its task still runs.
fn is_live(running: Option<&Running>) -> bool {
    running.is_some_and(|running| !running.task.is_finished())
}

/// Waits for a stopping supervisor up to `deadline`, then aborts it.
async fn join_or_abort(account_id: AccountId, mut task: JoinHandle<Exit>, deadline: Duration) {
    match tokio::time::timeout(deadline, &mut task).await {
        Ok(Ok(exit)) => tracing::debug!(account = %account_id, ?exit, "supervisor stopped"),
        Ok(Err(error)) => tracing::warn!(account = %account_id, %error, "supervisor task failed"),
        Err(_) => {
            tracing::warn!(account = %account_id, "supervisor did not stop in time; aborted");
            task.abort();
        }
    }
}

/// Locks a map that holds only handles: a panic elsewhere cannot leave it inconsistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
