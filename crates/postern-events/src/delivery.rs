//! Webhook delivery: one worker task per enabled webhook, and the supervisor that starts and reaps
//! them.
//!
//! Purpose: turn the event log into signed HTTP POSTs. Each worker, in a loop: moves its webhook's
//! cursor over new events, queuing a delivery for each event the webhook wants (one transaction,
//! see `Webhooks::enqueue`); then attempts the due deliveries, records the outcomes, and sleeps
//! until it is poked, a retry falls due, or the poll interval passes.
//! Non-goal: deciding what a webhook wants (`filter.rs`), when to retry (`retry.rs`), or which
//! addresses are allowed (`ssrf.rs`).
//! Key decisions:
//! - **Per-account order, not global order.** Due deliveries are taken in event-id order; up to
//!   `max_in_flight` requests run at once, but never two of one account, so an account's events go
//!   out one after the other. A delivery waiting for a retry holds back the later events of *its*
//!   account only (the store's `due` leaves such accounts out; within a batch a failure holds back
//!   the rest of its account); other accounts go on. A later event of an account is never sent
//!   before an earlier one was delivered or declared dead. Server-wide events form one more queue.
//!   With `max_in_flight = 1` the whole webhook is delivered strictly in event-id order.
//! - **Isolation.** Each webhook has its own task, so a receiver that hangs costs its own worker up
//!   to the request timeout per attempt and nobody else. Workers only read the event log and write
//!   short transactions of their own, never holding one across an HTTP request, so appenders are
//!   never blocked by a receiver. Outcomes are written in batches (at once after a failure), which
//!   keeps the worker's share of SQLite's single writer small.
//! - **Wake-up.** Workers wait on the shared `Notify` that appenders poke with `notify_waiters()`,
//!   registering interest *before* reading the log (`Notified::enable`), so an append that lands
//!   between the read and the wait still wakes them; the poll interval is only a safety net. A poke
//!   costs a read of the log, not of the webhook: the webhook and its opened secret are kept until
//!   the service reports a change (a version counter) or a quiet poll interval passes.
//! - **No redirects, no proxies, guarded DNS** (see `ssrf.rs`); errors are recorded without the
//!   URL, whose query string may hold a receiver's credentials.
//! - **Shutdown** abandons requests in flight (their deliveries stay pending and are sent again
//!   after a restart: delivery is at least once) and records every attempt that finished.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use postern_store::{
    AttemptOutcome, AttemptRecord, DueDelivery, EnqueueOutcome, Event, Store, Webhook, WebhookId,
};
use postern_vault::Vault;
use rand::Rng;
use reqwest::header::CONTENT_TYPE;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use url::Url;

use crate::config::WebhookConfig;
use crate::error::{TargetError, WebhookError};
use crate::filter::webhook_wants;
use crate::payload::EventBody;
use crate::signature::{EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, sign};
use crate::ssrf::{GuardedResolver, refused_literal};

/// How much of a failing receiver's answer is kept in `last_error`.
const ERROR_SNIPPET_LEN: usize = 200;
/// How many successful attempts are recorded in one transaction.
const RECORD_BATCH: usize = 64;

/// What every worker shares.
pub(crate) struct Deliverer {
    pub(crate) store: Store,
    pub(crate) vault: Arc<Vault>,
    pub(crate) config: WebhookConfig,
    pub(crate) http: reqwest::Client,
    /// Poked by appenders (and the service) when the log grows or a delivery is due now.
    pub(crate) wake: Arc<Notify>,
    /// Poked by the service when a webhook is created, changed or deleted.
    pub(crate) webhooks_changed: Notify,
    /// Bumped by the service on every webhook change, so workers know to re-read theirs.
    pub(crate) config_version: AtomicU64,
}

impl Deliverer {
    /// Tells the supervisor and the workers that webhooks changed.
    pub(crate) fn webhooks_changed(&self) {
        self.config_version.fetch_add(1, Ordering::AcqRel);
        self.webhooks_changed.notify_waiters();
        self.wake.notify_waiters();
    }
}

/// The HTTP client of every delivery: no redirects, no proxies, the guarded resolver.
pub(crate) fn http_client(config: &WebhookConfig) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(GuardedResolver {
            allow_private: config.allow_private_targets,
        })
        .tcp_nodelay(true)
        .user_agent(concat!(
            "Postern/",
            env!("CARGO_PKG_VERSION"),
            " (webhooks)"
        ))
        .build()
}

/// True once shutdown was requested (or its sender is gone).
fn stopping(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// Resolves when shutdown is requested (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Keeps one worker per enabled webhook until `shutdown`; then waits for the workers to stop.
pub(crate) async fn supervise(deliverer: Arc<Deliverer>, mut shutdown: watch::Receiver<bool>) {
    let mut workers: HashMap<WebhookId, JoinHandle<()>> = HashMap::new();
    while !stopping(&shutdown) {
        let changed = deliverer.webhooks_changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        match deliverer.store.webhooks().list().await {
            Ok(webhooks) => start_missing_workers(&deliverer, &mut workers, webhooks, &shutdown),
            Err(err) => tracing::warn!(error = %err, "cannot list webhooks; retrying"),
        }
        tokio::select! {
            () = &mut changed => {}
            () = tokio::time::sleep(deliverer.config.poll_interval) => {}
            () = stopped(&mut shutdown) => {}
        }
    }
    for (_, worker) in workers {
        let _ = worker.await;
    }
}

fn start_missing_workers(
    deliverer: &Arc<Deliverer>,
    workers: &mut HashMap<WebhookId, JoinHandle<()>>,
    webhooks: Vec<Webhook>,
    shutdown: &watch::Receiver<bool>,
) {
    // A worker ends by itself when its webhook is deleted or disabled.
    workers.retain(|_, worker| !worker.is_finished());
    for webhook in webhooks.into_iter().filter(|webhook| webhook.enabled) {
        if workers.contains_key(&webhook.id) {
            continue;
        }
        let worker = Worker::new(deliverer.clone(), webhook.id.clone());
        tracing::debug!(webhook = %webhook.id, "webhook worker started");
        workers.insert(webhook.id, tokio::spawn(worker.run(shutdown.clone())));
    }
}

/// The delivery loop of one webhook.
struct Worker {
    deliverer: Arc<Deliverer>,
    id: WebhookId,
    /// The webhook as last read; `None` until the first read.
    current: Option<Current>,
    /// Whether some delivery may be waiting for a retry time (so the next one must be looked up).
    retries_pending: bool,
}

/// The webhook as last read, with what is derived from it.
struct Current {
    webhook: Webhook,
    url: Url,
    secret: SecretString,
    /// The [`Deliverer::config_version`] it was read at.
    version: u64,
}

/// The bookkeeping of one batch of due deliveries. Accounts are keyed by `Option<String>`: the
/// server-wide events (`None`) form one queue of their own.
#[derive(Default)]
struct Batch {
    /// Accounts with a delivery in flight.
    busy: HashSet<Option<String>>,
    /// Accounts whose delivery failed and waits for a retry: the rest of their events wait too.
    held_back: HashSet<Option<String>>,
    /// Outcomes not yet written.
    records: Vec<AttemptRecord>,
    /// Whether a retry was scheduled.
    retries_scheduled: bool,
}

/// Webhook POSTs, labelled `result`: `delivered` (2xx), `refused` (another status) or `failed`
/// (no answer).
pub(crate) const DELIVERIES_METRIC: &str = "postern_webhook_deliveries_total";
/// How long webhook POSTs took, in seconds, whatever their result.
pub(crate) const DELIVERY_DURATION_METRIC: &str = "postern_webhook_delivery_duration_seconds";

/// Counts and times one POST in the Prometheus figures.
fn record_attempt(answer: &Answer, took: std::time::Duration) {
    let result = match answer {
        Answer::Status(code, _) if (200..300).contains(code) => "delivered",
        Answer::Status(..) => "refused",
        Answer::Failed(_) => "failed",
    };
    metrics::counter!(DELIVERIES_METRIC, "result" => result).increment(1);
    metrics::histogram!(DELIVERY_DURATION_METRIC).record(took.as_secs_f64());
}

/// How one attempt ended, before it is recorded.
enum Answer {
    /// The receiver answered with this status (and, for failures, the start of its body).
    Status(u16, String),
    /// No answer: a network error, a timeout, or a refused target.
    Failed(String),
}

impl Worker {
    fn new(deliverer: Arc<Deliverer>, id: WebhookId) -> Self {
        Worker {
            deliverer,
            id,
            current: None,
            retries_pending: true,
        }
    }

    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let wake = self.deliverer.wake.clone();
        let mut reread = true;
        while !stopping(&shutdown) {
            let poked = wake.notified();
            tokio::pin!(poked);
            poked.as_mut().enable();
            let next_due = match self.refresh(reread).await {
                Ok(Some(current)) => self.cycle(current, &shutdown).await,
                Ok(None) => break, // deleted or disabled
                Err(err) => Err(err),
            };
            let pause = self.pause_until(next_due);
            // A poke means "new events": the webhook is re-read only when it changed. A quiet
            // interval re-reads it anyway, for changes made by another process.
            reread = tokio::select! {
                () = &mut poked => false,
                () = tokio::time::sleep(pause) => true,
                () = stopped(&mut shutdown) => false,
            };
        }
        tracing::debug!(webhook = %self.id, "webhook worker stopped");
    }

    /// The webhook to deliver for, re-read (with its secret) when asked to or when the service
    /// changed a webhook since; `None` once it is deleted or disabled.
    async fn refresh(&mut self, reread: bool) -> Result<Option<Current>, WebhookError> {
        // Read the version first: a change racing with the read below bumps it again.
        let version = self.deliverer.config_version.load(Ordering::Acquire);
        if let Some(current) = self.current.take()
            && !reread
            && current.version == version
        {
            return Ok(Some(current));
        }
        let store = &self.deliverer.store;
        let Some(webhook) = store.webhooks().get(&self.id).await? else {
            return Ok(None);
        };
        if !webhook.enabled {
            return Ok(None);
        }
        let url = Url::parse(&webhook.url).map_err(|_| corrupt_url(&self.id))?;
        let secret = self.signing_secret().await?;
        // Look for retries again too: a redelivery by another process does not poke us.
        self.retries_pending = true;
        Ok(Some(Current {
            webhook,
            url,
            secret,
            version,
        }))
    }

    /// How long to sleep: until the next retry is due, at most the poll interval.
    fn pause_until(&self, next_due: Result<Option<DateTime<Utc>>, WebhookError>) -> Duration {
        let poll = self.deliverer.config.poll_interval;
        match next_due {
            Ok(Some(at)) => (at - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(poll),
            Ok(None) => poll,
            Err(err) => {
                tracing::warn!(webhook = %self.id, error = %err, "webhook delivery cycle failed");
                poll
            }
        }
    }

    /// Queues new events, attempts what is due; returns when the next retry falls due (possibly
    /// already).
    async fn cycle(
        &mut self,
        mut current: Current,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<Option<DateTime<Utc>>, WebhookError> {
        let result = self.enqueue_new_events(&mut current.webhook).await;
        let result = match result {
            Ok(()) => self.deliver_due(&current, shutdown).await,
            Err(err) => Err(err),
        };
        // Kept even after an error: the cursor in it is what the store holds.
        self.current = Some(current);
        let looked_at = result?;
        if !self.retries_pending {
            return Ok(None);
        }
        // After `looked_at`, not now: a retry falling due in between must not be skipped.
        let next = self
            .deliverer
            .store
            .webhooks()
            .next_retry_at(&self.id, looked_at)
            .await?;
        self.retries_pending = next.is_some();
        Ok(next)
    }

    /// Moves the cursor over the events appended since, queuing those the webhook wants.
    async fn enqueue_new_events(&self, webhook: &mut Webhook) -> Result<(), WebhookError> {
        let store = &self.deliverer.store;
        let batch = self.deliverer.config.batch_size;
        loop {
            let events = store
                .events()
                .list_after(webhook.cursor.0, batch, None)
                .await?;
            let Some(last) = events.last().map(|event| event.id) else {
                return Ok(());
            };
            let read = events.len();
            let wanted: Vec<Event> = events
                .into_iter()
                .filter(|event| webhook_wants(webhook, event))
                .collect();
            let outcome = store
                .webhooks()
                .enqueue(&self.id, webhook.cursor, last, &wanted)
                .await?;
            webhook.cursor = match outcome {
                // Another deliverer moved it: carry on from there.
                EnqueueOutcome::CursorMoved { current } => current,
                _ => last,
            };
            if read < batch as usize {
                return Ok(());
            }
        }
    }

    /// Attempts the due deliveries until none is due: in event order, up to `max_in_flight` at a
    /// time but never two of one account, so each account's events go out one after the other.
    /// Returns the time of its last look: whatever falls due after it is still to be done.
    async fn deliver_due(
        &mut self,
        current: &Current,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<DateTime<Utc>, WebhookError> {
        loop {
            let now = Utc::now();
            let due = self
                .deliverer
                .store
                .webhooks()
                .due(&self.id, now, self.deliverer.config.batch_size)
                .await?;
            if due.is_empty() {
                return Ok(now);
            }
            let mut batch = Batch::default();
            let result = self
                .deliver_batch(current, &due, &mut batch, shutdown)
                .await;
            // What was attempted is recorded even when the batch stopped early.
            self.deliverer
                .store
                .webhooks()
                .record_attempts(&batch.records)
                .await?;
            self.retries_pending |= batch.retries_scheduled;
            result?;
            if stopping(shutdown) || self.changed_since(current) {
                return Ok(now);
            }
        }
    }

    async fn deliver_batch<'a>(
        &'a self,
        current: &'a Current,
        due: &'a [DueDelivery],
        batch: &mut Batch,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), WebhookError> {
        let max_in_flight = self.deliverer.config.max_in_flight.max(1);
        let mut in_flight = FuturesUnordered::new();
        let mut shutdown = shutdown.clone();
        for item in due {
            if self.changed_since(current) || stopping(&shutdown) {
                break; // disabled, deleted or re-targeted meanwhile: re-read first
            }
            let account = &item.delivery.account_id;
            // Wait for room, and for this account's previous delivery to settle.
            while in_flight.len() >= max_in_flight || batch.busy.contains(account) {
                tokio::select! {
                    Some((done, answer)) = in_flight.next() => {
                        self.settle(batch, done, answer).await?;
                    }
                    () = stopped(&mut shutdown) => return Ok(()),
                }
            }
            if batch.held_back.contains(account) {
                continue; // an earlier event of its account waits for a retry
            }
            batch.busy.insert(account.clone());
            in_flight.push(async move { (item, self.post(current, &item.event).await) });
        }
        while !in_flight.is_empty() {
            tokio::select! {
                Some((done, answer)) = in_flight.next() => self.settle(batch, done, answer).await?,
                () = stopped(&mut shutdown) => return Ok(()),
            }
        }
        Ok(())
    }

    /// Judges one answer into the batch; writes the records at once after a failure (so a retry
    /// time is never lost to a long batch) or when enough have gathered.
    async fn settle(
        &self,
        batch: &mut Batch,
        item: &DueDelivery,
        answer: Answer,
    ) -> Result<(), WebhookError> {
        let account = &item.delivery.account_id;
        batch.busy.remove(account);
        let record = self.judge(item, answer);
        log_outcome(&self.id, item, &record.outcome);
        let waits = matches!(
            record.outcome,
            AttemptOutcome::Failed {
                retry_at: Some(_),
                ..
            }
        );
        batch.records.push(record);
        if waits {
            batch.held_back.insert(account.clone());
            batch.retries_scheduled = true;
        }
        if waits || batch.records.len() >= RECORD_BATCH {
            self.deliverer
                .store
                .webhooks()
                .record_attempts(&batch.records)
                .await?;
            batch.records.clear();
        }
        Ok(())
    }

    /// True when the service changed a webhook after `current` was read.
    fn changed_since(&self, current: &Current) -> bool {
        self.deliverer.config_version.load(Ordering::Acquire) != current.version
    }

    /// The webhook's signing secret, opened.
    async fn signing_secret(&self) -> Result<SecretString, WebhookError> {
        let reference = self.id.signing_secret_ref();
        let sealed = self
            .deliverer
            .store
            .secrets()
            .get(&reference)
            .await?
            .ok_or_else(|| WebhookError::MissingSecret {
                id: self.id.to_string(),
            })?;
        Ok(self
            .deliverer
            .vault
            .open_str(&reference.context(), &sealed)?)
    }

    /// One signed POST of `event`; never fails, the failure is the answer.
    async fn post(&self, current: &Current, event: &Event) -> Answer {
        let config = &self.deliverer.config;
        if let Some(refusal) = refused_literal(&current.url, config.allow_private_targets) {
            return Answer::Failed(refusal.to_string());
        }
        let body = EventBody::of(event).to_bytes();
        let signature = sign(
            current.secret.expose_secret().as_bytes(),
            Utc::now().timestamp(),
            &body,
        );
        let request = self
            .deliverer
            .http
            .post(current.url.clone())
            .timeout(config.request_timeout)
            .header(CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(EVENT_ID_HEADER, event.id.0.to_string())
            .header(EVENT_TYPE_HEADER, event.kind.as_str())
            .body(body);
        let started = std::time::Instant::now();
        let answer = match request.send().await {
            Ok(response) => {
                let status = response.status();
                let snippet = if status.is_success() {
                    drain(response).await;
                    String::new()
                } else {
                    body_snippet(response).await
                };
                Answer::Status(status.as_u16(), snippet)
            }
            Err(err) => Answer::Failed(describe_error(&err, config.request_timeout)),
        };
        record_attempt(&answer, started.elapsed());
        answer
    }

    /// The outcome to record for `answer`: delivered, retry later, or dead.
    fn judge(&self, item: &DueDelivery, answer: Answer) -> AttemptRecord {
        let now = Utc::now();
        let outcome = match answer {
            Answer::Status(code, _) if (200..300).contains(&code) => {
                AttemptOutcome::Delivered { status_code: code }
            }
            Answer::Status(code, snippet) => {
                self.failure(item, Some(code), status_error(code, &snippet), now)
            }
            Answer::Failed(error) => self.failure(item, None, error, now),
        };
        AttemptRecord {
            delivery: item.delivery.id.clone(),
            at: now,
            outcome,
        }
    }

    fn failure(
        &self,
        item: &DueDelivery,
        status_code: Option<u16>,
        error: String,
        now: DateTime<Utc>,
    ) -> AttemptOutcome {
        let attempts = item.delivery.attempts.saturating_add(1);
        let jitter = rand::rng().random_range(0.0..=1.0);
        let retry_at = self.deliverer.config.retry_policy().next_attempt(
            attempts,
            item.delivery.pending_since,
            now,
            jitter,
        );
        AttemptOutcome::Failed {
            status_code,
            error,
            retry_at,
        }
    }
}

fn corrupt_url(id: &WebhookId) -> WebhookError {
    WebhookError::Store(postern_store::StoreError::Corrupt {
        what: format!("url of webhook {id}"),
    })
}

fn log_outcome(id: &WebhookId, item: &DueDelivery, outcome: &AttemptOutcome) {
    let event = item.event.id.0;
    let attempt = item.delivery.attempts.saturating_add(1);
    match outcome {
        AttemptOutcome::Delivered { status_code } => {
            tracing::debug!(webhook = %id, event, attempt, status_code, "webhook delivered");
        }
        AttemptOutcome::Failed {
            error,
            retry_at: Some(retry_at),
            ..
        } => {
            tracing::info!(webhook = %id, event, attempt, %error, %retry_at, "webhook delivery failed; will retry");
        }
        AttemptOutcome::Failed { error, .. } => {
            tracing::warn!(webhook = %id, event, attempt, %error, "webhook delivery dead: retries exhausted");
        }
        _ => {}
    }
}

fn status_error(code: u16, snippet: &str) -> String {
    let mut error = format!("the receiver answered HTTP {code}");
    if (300..400).contains(&code) {
        error.push_str(" (redirects are not followed)");
    }
    if !snippet.is_empty() {
        error.push_str(": ");
        error.push_str(snippet);
    }
    error
}

/// Reads and discards a short body, so the connection can be reused.
async fn drain(mut response: reqwest::Response) {
    let mut read = 0;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if read > 64 * 1024 {
            return;
        }
    }
}

/// The start of a failing receiver's body, as printable text.
async fn body_snippet(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_SNIPPET_LEN {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    String::from_utf8_lossy(&bytes)
        .chars()
        .take(ERROR_SNIPPET_LEN)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// A network error in words, without the URL: the refused target, a timeout, or the root cause.
/// Only the causes are read, never the top-level error, whose text includes the URL.
fn describe_error(err: &reqwest::Error, timeout: Duration) -> String {
    let mut root = None;
    let mut source = std::error::Error::source(err);
    while let Some(current) = source {
        if let Some(refusal) = current.downcast_ref::<TargetError>() {
            return refusal.to_string();
        }
        root = Some(current.to_string());
        source = current.source();
    }
    if err.is_timeout() {
        return format!("no answer within {} s", timeout.as_secs_f64());
    }
    let cause = root.unwrap_or_else(|| "no further detail".to_owned());
    if err.is_connect() {
        format!("cannot connect: {cause}")
    } else {
        format!("the request failed: {cause}")
    }
}
