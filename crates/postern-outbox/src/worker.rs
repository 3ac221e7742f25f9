//! The workers: claim due items, send them, and record what happened.
//!
//! Purpose: the loop that moves an item from `queued` to `sent` or `failed`: claim under a lease,
//! resolve the account's policy (its settings, its provider's preset, the outbox's defaults),
//! check its daily limit and its pace, attempt delivery to the recipients still open, classify,
//! and end the attempt in the store (`mark_sent`, `mark_retry` with exponential back-off and
//! jitter, `mark_failed`, or `release` when a limit says wait), then, once `sent` is recorded,
//! the best-effort copy to the account's Sent mailbox (`sent_copy`), if its policy wants one.
//! Non-goal: composing or validating messages (done before they are queued).
//! Key decisions:
//! - Nothing is kept in memory between claims: a crash loses only leases, and their items come
//!   back when the leases expire.
//! - A worker does not start an item with less than half its lease left; it gives it back, so a
//!   slow batch does not let a lease lapse mid-send (another worker would send it again).
//! - On shutdown a worker finishes the item it is sending and gives back the rest of its batch.
//! - An item over a limit is given back (`release`): queued again, due when the limit allows,
//!   its claim not counted as an attempt. The daily limit is checked before the pace, so a
//!   message that must wait a day does not spend a token of the minute.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use postern_store::{
    Account, AccountId, ClaimedOutboxItem, OutboxItem, OutboxLease, OutboxStatus, RecipientResult,
    RecipientStatus, SmtpEnvelope, Store, StoreError,
};
use tokio::sync::{Notify, watch};

use crate::OutboxConfig;
use crate::classify::{Outcome, classify_transaction, is_open};
use crate::daily::{DailyCheck, DailyLimiter, Reservation};
use crate::policy::SendPolicy;
use crate::rate::RateLimiter;
use crate::sender::Sender;
use crate::sent_copy::SentCopier;

/// What every worker shares.
pub(crate) struct WorkerContext {
    pub(crate) store: Store,
    pub(crate) config: OutboxConfig,
    pub(crate) sender: Sender,
    /// Appends what was sent to the account's Sent mailbox.
    pub(crate) sent_copier: SentCopier,
    /// The per-minute pace of each account.
    pub(crate) limiter: RateLimiter,
    /// The sends in flight of each account with a daily limit.
    pub(crate) daily: DailyLimiter,
    /// Signalled on every submission, so idle workers do not wait for the next poll.
    pub(crate) wake: Notify,
}

/// Runs one worker until `shutdown` turns true (or its sender is dropped).
pub(crate) async fn run(context: Arc<WorkerContext>, mut shutdown: watch::Receiver<bool>) {
    let config = &context.config;
    while !*shutdown.borrow() {
        let claimed = context
            .store
            .outbox()
            .claim_due(Utc::now(), config.claim_batch, config.lease)
            .await;
        match claimed {
            Ok(items) if !items.is_empty() => process_batch(&context, items, &shutdown).await,
            Ok(_) => {
                tokio::select! {
                    () = context.wake.notified() => {}
                    () = tokio::time::sleep(config.poll_interval) => {}
                    changed = shutdown.changed() => if changed.is_err() { return },
                }
            }
            Err(error) => {
                tracing::warn!(%error, "claiming outbox items failed; trying again");
                tokio::select! {
                    () = tokio::time::sleep(config.poll_interval) => {}
                    changed = shutdown.changed() => if changed.is_err() { return },
                }
            }
        }
    }
}

async fn process_batch(
    context: &WorkerContext,
    items: Vec<ClaimedOutboxItem>,
    shutdown: &watch::Receiver<bool>,
) {
    // A batch is usually one account's messages: read each account once per batch, not per item.
    let mut accounts: Vec<Account> = Vec::new();
    for claimed in items {
        let half_lease = TimeDelta::from_std(context.config.lease / 2).unwrap_or(TimeDelta::MAX);
        let stopping = *shutdown.borrow();
        if stopping || claimed.lease.expires_at - Utc::now() < half_lease {
            give_back(context, &claimed.lease, Utc::now()).await;
            continue;
        }
        let account = match account_of(context, &mut accounts, &claimed.item.account_id).await {
            Ok(account) => account,
            Err(error) => {
                tracing::error!(item = %claimed.item.id, %error, "reading the item's account failed; its lease will expire");
                continue;
            }
        };
        if let Err(error) = process(context, &claimed, account).await {
            // The lease stays; the item comes back when it expires.
            tracing::error!(item = %claimed.item.id, %error, "recording an outbox attempt failed");
        }
    }
}

/// The account `id`, from the batch's `seen` accounts or else the store; `None` when it is gone.
async fn account_of(
    context: &WorkerContext,
    seen: &mut Vec<Account>,
    id: &AccountId,
) -> Result<Option<Account>, StoreError> {
    if let Some(account) = seen.iter().find(|account| account.id == *id) {
        return Ok(Some(account.clone()));
    }
    let account = context.store.accounts().get(id).await?;
    seen.extend(account.clone());
    Ok(account)
}

/// One attempt at one item of `account` (`None`: deleted), within the account's limits.
async fn process(
    context: &WorkerContext,
    claimed: &ClaimedOutboxItem,
    account: Option<Account>,
) -> Result<(), StoreError> {
    let item = &claimed.item;
    let Some(account) = account else {
        let error = "the account no longer exists";
        finish(context, claimed, Outcome::Fail(error.to_owned()), None).await?;
        return Ok(());
    };
    let policy = SendPolicy::for_account(&account, &context.config);
    let Some(reservation) = within_limits(context, &account, &policy, claimed).await? else {
        return Ok(());
    };
    let (outcome, results) = attempt(context, &account, claimed).await;
    let recorded = finish(context, claimed, outcome, Some(results)).await;
    // Only now: a recorded send is counted from the store, so the place can be given up.
    reservation.release().await;
    if recorded?.is_some_and(|item| item.status == OutboxStatus::Sent) {
        // Only once the store says `sent`: the copy can then never cause a second send.
        context
            .sent_copier
            .copy(&account, policy.sent_copy, &item.id, &claimed.raw)
            .await;
    }
    Ok(())
}

/// Holds a place in the account's daily limit and takes a token of its pace; when either says
/// wait, gives the item back until then (untried, no attempt counted) and returns `None`.
async fn within_limits(
    context: &WorkerContext,
    account: &Account,
    policy: &SendPolicy,
    claimed: &ClaimedOutboxItem,
) -> Result<Option<Reservation>, StoreError> {
    let (item, now) = (&claimed.item, Utc::now());
    let outbox = context.store.outbox();
    let reservation = match context
        .daily
        .reserve(outbox, &account.id, policy.daily_limit, now)
        .await?
    {
        DailyCheck::Go(reservation) => reservation,
        DailyCheck::Wait(until) => {
            tracing::info!(item = %item.id, account = %account.id, limit = ?policy.daily_limit, %until, "daily sending limit reached; back to the queue");
            give_back(context, &claimed.lease, until).await;
            return Ok(None);
        }
    };
    if let Err(wait) = context.limiter.try_take(&account.id, policy.rate.as_ref()) {
        reservation.release().await;
        tracing::debug!(item = %item.id, ?wait, "rate limit reached; back to the queue");
        give_back(context, &claimed.lease, now + delta(wait)).await;
        return Ok(None);
    }
    Ok(Some(reservation))
}

/// Sends to the recipients still open; the outcome and the updated per-recipient results.
async fn attempt(
    context: &WorkerContext,
    account: &Account,
    claimed: &ClaimedOutboxItem,
) -> (Outcome, Vec<RecipientResult>) {
    let item = &claimed.item;
    let results = current_results(item);
    let envelope = SmtpEnvelope {
        from: item.envelope.from.clone(),
        recipients: results
            .iter()
            .filter(|r| is_open(r))
            .map(|r| r.address.clone())
            .collect(),
    };
    match context
        .sender
        .deliver(account, &envelope, &claimed.raw)
        .await
    {
        Ok(transaction) => {
            let (results, outcome) = classify_transaction(&results, &transaction);
            (outcome, results)
        }
        Err(error) => (error.outcome(), results),
    }
}

/// The item's results, with one `pending` entry for any envelope recipient that has none.
fn current_results(item: &OutboxItem) -> Vec<RecipientResult> {
    item.envelope
        .recipients
        .iter()
        .map(|address| {
            item.recipients
                .iter()
                .find(|r| r.address.eq_ignore_ascii_case(address))
                .cloned()
                .unwrap_or_else(|| RecipientResult::pending(address.clone()))
        })
        .collect()
}

/// How an attempt is recorded.
#[derive(Debug, PartialEq, Eq)]
enum Record {
    Sent,
    Retry(String),
    Failed(String),
}

/// The record an outcome calls for after attempt number `attempts`. A message that reached some
/// recipients is `sent` even when the others refused or ran out of attempts: it went out, and
/// the per-recipient results say who does not have it.
fn decide(outcome: Outcome, attempts: u32, max_attempts: u32, delivered: bool) -> Record {
    match outcome {
        Outcome::Sent => Record::Sent,
        Outcome::Retry(reason) if attempts < max_attempts => Record::Retry(reason),
        _ if delivered => Record::Sent,
        Outcome::Retry(reason) => {
            Record::Failed(format!("gave up after {attempts} attempts: {reason}"))
        }
        Outcome::Fail(reason) => Record::Failed(reason),
        Outcome::TokenRejected => Record::Failed("the server rejected the access token".to_owned()),
    }
}

/// Ends the attempt in the store as the outcome says; the item as recorded, `None` when the
/// lease was lost.
async fn finish(
    context: &WorkerContext,
    claimed: &ClaimedOutboxItem,
    outcome: Outcome,
    results: Option<Vec<RecipientResult>>,
) -> Result<Option<OutboxItem>, StoreError> {
    let outbox = context.store.outbox();
    let (lease, item) = (&claimed.lease, &claimed.item);
    let results = results.unwrap_or_else(|| current_results(item));
    let delivered = results
        .iter()
        .any(|r| r.status == RecipientStatus::Accepted);
    let recorded = match decide(
        outcome,
        item.attempts,
        context.config.max_attempts,
        delivered,
    ) {
        Record::Sent => outbox.mark_sent(lease, results).await?,
        Record::Retry(reason) => {
            let next = Utc::now() + delta(context.config.retry_delay(item.attempts));
            tracing::info!(item = %item.id, attempts = item.attempts, %next, %reason, "send deferred");
            outbox.mark_retry(lease, next, &reason, results).await?
        }
        Record::Failed(reason) => {
            tracing::warn!(item = %item.id, %reason, "send failed");
            outbox.mark_failed(lease, &reason, results).await?
        }
    };
    match &recorded {
        Some(item) => {
            metrics::counter!(ATTEMPTS_METRIC, "outcome" => attempt_label(item.status))
                .increment(1);
            log_recorded(item)
        }
        None => {
            tracing::warn!(item = %claimed.item.id, "lease lost before the outcome was recorded")
        }
    }
    Ok(recorded)
}

/// Attempts recorded, labelled `outcome`: `sent`, `retry` (queued again) or `failed`.
pub(crate) const ATTEMPTS_METRIC: &str = "postern_outbox_attempts_total";

fn attempt_label(status: OutboxStatus) -> &'static str {
    match status {
        OutboxStatus::Sent => "sent",
        OutboxStatus::Failed => "failed",
        _ => "retry",
    }
}

fn log_recorded(item: &OutboxItem) {
    tracing::debug!(item = %item.id, status = %item.status, attempts = item.attempts, "outbox item updated");
}

/// Gives the item back untried, due at `at`.
async fn give_back(context: &WorkerContext, lease: &OutboxLease, at: DateTime<Utc>) {
    if let Err(error) = context.store.outbox().release(lease, at).await {
        tracing::warn!(item = %lease.item_id, %error, "giving an item back failed; its lease will expire");
    }
}

fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_until_the_last_attempt_then_fail_unless_someone_has_it() {
        let retry = || Outcome::Retry("451 later".to_owned());
        assert_eq!(
            decide(retry(), 1, 3, false),
            Record::Retry("451 later".into())
        );
        assert_eq!(
            decide(retry(), 3, 3, false),
            Record::Failed("gave up after 3 attempts: 451 later".into())
        );
        assert_eq!(decide(retry(), 3, 3, true), Record::Sent);
        assert_eq!(decide(Outcome::Sent, 9, 3, true), Record::Sent);
    }

    #[test]
    fn permanent_failures_are_not_retried() {
        let fail = Outcome::Fail("550 no".to_owned());
        assert_eq!(
            decide(fail.clone(), 1, 8, false),
            Record::Failed("550 no".into())
        );
        assert_eq!(decide(fail, 1, 8, true), Record::Sent);
        assert!(matches!(
            decide(Outcome::TokenRejected, 1, 8, false),
            Record::Failed(_)
        ));
    }
}
