//! [`OutboxService`]: what the API calls to send, look at and cancel messages, and the workers.
//!
//! Purpose: `submit` checks and builds a request, queues it durably (in the store, before the
//! caller answers 202) and wakes a worker; `get`, `list` and `cancel` read and change the queue;
//! `spawn_workers` starts the senders.
//! Non-goal: HTTP. The API maps [`SubmitError`] and [`CancelError`] to statuses and renders
//! [`QueuedItem`] and `OutboxItem`.
//! Key decision: a message is refused at submission, with field errors, for everything that can
//! be known then (addresses, base64, size against the server's last declared `SIZE`, an account
//! that cannot send): a queued message should fail later only for reasons the server gives.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use postern_auth::FieldError;
use postern_auth::token_manager::TokenManager;
use postern_store::{
    Account, AccountId, AccountState, Enqueued, NewOutboxItem, OutboxCancel, OutboxId, OutboxItem,
    OutboxQuery, OutboxStatus, Store, StoreError,
};
use postern_vault::Vault;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::OutboxConfig;
use crate::compose::{Submission, compose_submission, field};
use crate::daily::DailyLimiter;
use crate::error::{CancelError, SubmitError};
use crate::policy::SendPolicy;
use crate::rate::RateLimiter;
use crate::sender::Sender;
use crate::sent_copy::SentCopier;
use crate::worker::{self, WorkerContext};

/// The longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// How far ahead a message may be scheduled.
const MAX_SCHEDULE_AHEAD: TimeDelta = TimeDelta::days(366);

/// The answer to a submission.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct QueuedItem {
    /// The outbox item.
    pub id: OutboxId,
    /// The message's Message-ID, without angle brackets.
    pub message_id: String,
    /// Its status now (`queued` for a new item; anything for an idempotent replay).
    pub status: OutboxStatus,
    /// False when the idempotency key returned an earlier item and nothing new was queued.
    pub created: bool,
}

impl QueuedItem {
    fn of(enqueued: Enqueued) -> Self {
        let created = enqueued.is_new();
        let item = enqueued.into_item();
        QueuedItem {
            id: item.id,
            message_id: item.message_id,
            status: item.status,
            created,
        }
    }
}

/// The outbox: submissions, the queue, and the workers that send. Cheap to clone.
#[derive(Clone)]
pub struct OutboxService {
    context: Arc<WorkerContext>,
}

/// The running workers of [`OutboxService::spawn_workers`].
#[derive(Debug)]
pub struct Workers {
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Waits until every worker has stopped (after the shutdown signal, each finishes the message
    /// it is sending).
    pub async fn join(self) {
        for handle in self.handles {
            if let Err(error) = handle.await {
                tracing::error!(%error, "an outbox worker panicked");
            }
        }
    }
}

impl OutboxService {
    /// The outbox over `store`; passwords are opened with `vault`, OAuth2 tokens come from
    /// `tokens`.
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        tokens: TokenManager,
        config: OutboxConfig,
    ) -> Self {
        let sender = Sender::new(store.clone(), vault.clone(), tokens.clone(), &config);
        let sent_copier = SentCopier::new(store.clone(), vault, tokens, &config);
        let context = WorkerContext {
            store,
            limiter: RateLimiter::default(),
            daily: DailyLimiter::default(),
            config,
            sender,
            sent_copier,
            wake: Notify::new(),
        };
        OutboxService {
            context: Arc::new(context),
        }
    }

    /// How `account` sends now: its settings merged with its provider's preset and this
    /// outbox's configuration. The workers resolve the same for every message.
    pub fn policy(&self, account: &Account) -> SendPolicy {
        SendPolicy::for_account(account, &self.context.config)
    }

    /// Checks, builds and queues a message for `account_id`, to go at `send_at` (now when
    /// `None`). With an `idempotency_key` the account used within 24 hours, returns that item and
    /// queues nothing.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Invalid`] with every field problem, [`SubmitError::TooLarge`],
    /// [`SubmitError::AccountNotFound`], [`SubmitError::AccountNotReady`], or the store's error;
    /// nothing is queued in any of these cases.
    pub async fn submit(
        &self,
        account_id: &AccountId,
        submission: impl Into<Submission>,
        idempotency_key: Option<String>,
        send_at: Option<DateTime<Utc>>,
    ) -> Result<QueuedItem, SubmitError> {
        let store = &self.context.store;
        let account = store
            .accounts()
            .get(account_id)
            .await?
            .ok_or_else(|| SubmitError::AccountNotFound(account_id.to_string()))?;
        if matches!(
            account.state,
            AccountState::PendingAuthorization | AccountState::NeedsReauth | AccountState::Disabled
        ) {
            return Err(SubmitError::AccountNotReady {
                account_id: account_id.to_string(),
                state: account.state,
            });
        }
        let mut errors = check_options(idempotency_key.as_deref(), send_at);
        let composed = compose_submission(&account.email, &submission.into());
        let composed = match composed {
            Ok(composed) if errors.is_empty() => composed,
            Ok(_) => return Err(SubmitError::Invalid(errors)),
            Err(more) => {
                errors.extend(more);
                return Err(SubmitError::Invalid(errors));
            }
        };
        let size = u64::try_from(composed.raw.len()).unwrap_or(u64::MAX);
        let limit = self.size_limit(account_id);
        if size > limit {
            return Err(SubmitError::TooLarge { size, limit });
        }
        let send_at = send_at.unwrap_or_else(Utc::now);
        let enqueued = store
            .outbox()
            .enqueue(NewOutboxItem {
                id: OutboxId::generate(),
                account_id: account_id.clone(),
                raw: composed.raw,
                envelope: composed.envelope,
                message_id: composed.message_id,
                send_at,
                idempotency_key,
            })
            .await?;
        if enqueued.is_new() && send_at <= Utc::now() {
            self.context.wake.notify_one();
        }
        Ok(QueuedItem::of(enqueued))
    }

    /// An account's sending limits changed: what waited only for them (never tried, past its
    /// `send_at`) is due now, and a worker is woken. Without this, raising a daily limit would
    /// leave the messages it held waiting until the window moved on. A message still over the
    /// new limits goes back to wait when a worker claims it. Returns how many became due.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn limits_changed(&self, account_id: &AccountId) -> Result<u64, StoreError> {
        let due = self
            .context
            .store
            .outbox()
            .make_limited_due(account_id, Utc::now())
            .await?;
        if due > 0 {
            tracing::info!(account = %account_id, due, "sending limits changed; held messages are due");
            self.context.wake.notify_one();
        }
        Ok(due)
    }

    /// Requeues what an earlier run left `sending` (see `Outbox::recover_abandoned`); call once
    /// at start, before [`OutboxService::spawn_workers`]. Returns how many items came back.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn recover_abandoned(&self) -> Result<u64, StoreError> {
        let recovered = self
            .context
            .store
            .outbox()
            .recover_abandoned(Utc::now())
            .await?;
        if recovered > 0 {
            tracing::info!(
                recovered,
                "outbox items left sending by the last run are queued again"
            );
        }
        Ok(recovered)
    }

    /// The largest message `account_id` may submit: its server's declared `SIZE` when a login
    /// has seen one, never more than the configured maximum.
    pub fn size_limit(&self, account_id: &AccountId) -> u64 {
        let configured = self.context.config.max_message_bytes;
        self.context
            .sender
            .size_limit(account_id)
            .map_or(configured, |server| server.min(configured))
    }

    /// The item with this id, if any.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn get(&self, id: &OutboxId) -> Result<Option<OutboxItem>, StoreError> {
        self.context.store.outbox().get(id).await
    }

    /// The message bytes of the item with this id, as they are (or were) sent.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn raw_message(&self, id: &OutboxId) -> Result<Option<Vec<u8>>, StoreError> {
        self.context.store.outbox().raw(id).await
    }

    /// Items matching `query`, newest first.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn list(&self, query: &OutboxQuery) -> Result<Vec<OutboxItem>, StoreError> {
        self.context.store.outbox().list(query).await
    }

    /// Cancels a queued item.
    ///
    /// # Errors
    ///
    /// [`CancelError::NotFound`], [`CancelError::NotCancellable`] when it is being sent or done,
    /// or the store's error.
    pub async fn cancel(&self, id: &OutboxId) -> Result<OutboxItem, CancelError> {
        match self.context.store.outbox().cancel(id).await? {
            OutboxCancel::Cancelled(item) => Ok(item),
            OutboxCancel::NotQueued(item) => Err(CancelError::NotCancellable {
                id: id.to_string(),
                status: item.status,
            }),
            OutboxCancel::NotFound => Err(CancelError::NotFound(id.to_string())),
        }
    }

    /// Starts the configured number of workers; they stop when `shutdown` turns true.
    pub fn spawn_workers(&self, shutdown: watch::Receiver<bool>) -> Workers {
        let count = self.context.config.workers.max(1);
        let handles = (0..count)
            .map(|_| tokio::spawn(worker::run(Arc::clone(&self.context), shutdown.clone())))
            .collect();
        Workers { handles }
    }
}

fn check_options(idempotency_key: Option<&str>, send_at: Option<DateTime<Utc>>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(key) = idempotency_key {
        let printable = key.bytes().all(|b| (0x21..=0x7e).contains(&b));
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !printable {
            errors.push(field(
                "idempotency_key",
                "must be 1 to 255 printable ASCII characters without spaces",
            ));
        }
    }
    if send_at.is_some_and(|at| at > Utc::now() + MAX_SCHEDULE_AHEAD) {
        errors.push(field("send_at", "may be at most 366 days ahead"));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        assert!(check_options(Some("order-42"), None).is_empty());
        assert!(check_options(None, Some(Utc::now() + TimeDelta::days(30))).is_empty());
        let long = "k".repeat(256);
        for key in ["", "has space", long.as_str(), "tab\there"] {
            let errors = check_options(Some(key), None);
            assert_eq!(errors.len(), 1, "{key:?}");
            assert_eq!(errors[0].field, "idempotency_key");
        }
        let errors = check_options(None, Some(Utc::now() + TimeDelta::days(400)));
        assert_eq!(errors[0].field, "send_at");
    }
}
