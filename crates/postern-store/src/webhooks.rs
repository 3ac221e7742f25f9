//! Webhooks: where events are sent, and the durable record of every delivery to them.
//!
//! Purpose: store webhook subscriptions (URL, event patterns, account binding, enabled), each
//! webhook's cursor into the event log, and one delivery row per (webhook, event) with its attempts,
//! status and last error.
//! Non-goal: deciding which events match a webhook, HTTP, signing, backoff; `postern-events` does
//! that and hands the store its decisions ([`Webhooks::enqueue`], [`Webhooks::record_attempts`]).
//! Key decision: the cursor and the deliveries it produced move together. [`Webhooks::enqueue`]
//! inserts the deliveries for a range of events and advances the cursor in one transaction, and
//! only if the cursor is still where the caller read it (compare-and-set), so an event is never
//! skipped nor queued twice, even with two deliverers. Per-account order is kept by
//! [`Webhooks::due`]: an account whose oldest pending delivery waits for a retry holds back its
//! later deliveries, while other accounts go on.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use postern_vault::Sealed;

use crate::ids::{text_enum, uuid_id};
use crate::{Event, EventId, SecretRef, StoreError};

/// The `owner_kind` of a webhook's secrets.
pub(crate) const WEBHOOK_OWNER: &str = "webhook";

uuid_id! {
    /// The id of a webhook: a UUID v7 in its canonical hyphenated, lower-case form.
    WebhookId
}

uuid_id! {
    /// The id of one delivery (one event to one webhook).
    DeliveryId
}

impl WebhookId {
    /// Where the webhook's signing secret is stored; seal it with this reference's
    /// [`SecretRef::context`].
    pub fn signing_secret_ref(&self) -> SecretRef {
        SecretRef::new(WEBHOOK_OWNER, self.as_str(), "signing_secret")
    }
}

text_enum! {
    /// Where a delivery stands.
    DeliveryStatus {
        /// Not delivered yet: due at `next_attempt_at`.
        Pending => "pending",
        /// The receiver answered 2xx.
        Delivered => "delivered",
        /// Retries ran out; only a redelivery sends it again.
        Dead => "dead",
    }
}

/// What `create` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    /// The webhook's id, chosen by the caller so its secret can be sealed for it beforehand.
    pub id: WebhookId,
    /// Where events are POSTed.
    pub url: String,
    /// Event-type patterns, e.g. `["message.new", "account.*"]`.
    pub events: Vec<String>,
    /// Only events of these accounts; `None` for every account.
    pub account_ids: Option<Vec<String>>,
    /// Whether deliveries run.
    pub enabled: bool,
}

/// A stored webhook. Timestamps have millisecond precision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// The webhook's id.
    pub id: WebhookId,
    /// Where events are POSTed.
    pub url: String,
    /// Event-type patterns.
    pub events: Vec<String>,
    /// Only events of these accounts; `None` for every account.
    pub account_ids: Option<Vec<String>>,
    /// Whether deliveries run.
    pub enabled: bool,
    /// The last event the delivery pipeline has matched against this webhook.
    pub cursor: EventId,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed (not counting the cursor).
    pub updated_at: DateTime<Utc>,
}

/// A partial update: `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookChange {
    /// A new target URL.
    pub url: Option<String>,
    /// New event-type patterns.
    pub events: Option<Vec<String>>,
    /// A new account binding (`Some(None)` removes the binding).
    pub account_ids: Option<Option<Vec<String>>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// One event to one webhook, with its attempts so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The delivery's id.
    pub id: DeliveryId,
    /// The webhook it goes to.
    pub webhook_id: WebhookId,
    /// The event it carries.
    pub event_id: EventId,
    /// The event's account: deliveries of one account go out in event order.
    pub account_id: Option<String>,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts since it was queued (or redelivered).
    pub attempts: u32,
    /// When it is due (meaningful while pending).
    pub next_attempt_at: DateTime<Utc>,
    /// When the current retry window started: queued, or redelivered.
    pub pending_since: DateTime<Utc>,
    /// When it was last tried.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last attempt, when the receiver answered.
    pub last_status_code: Option<u16>,
    /// Why the last attempt failed, for people.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A pending delivery the deliverer may attempt now, with the event it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct DueDelivery {
    /// The delivery.
    pub delivery: Delivery,
    /// Its event.
    pub event: Event,
}

/// What [`Webhooks::enqueue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnqueueOutcome {
    /// The deliveries were queued (`count` new ones) and the cursor moved.
    Enqueued {
        /// How many deliveries were inserted.
        count: u64,
    },
    /// Nothing was written: the cursor was no longer where the caller read it.
    CursorMoved {
        /// Where it is now.
        current: EventId,
    },
}

/// The result of one delivery attempt, as the deliverer decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Delivered {
        /// The status it answered.
        status_code: u16,
    },
    /// The attempt failed.
    Failed {
        /// The receiver's HTTP status, if it answered at all.
        status_code: Option<u16>,
        /// What went wrong, for people (never a secret).
        error: String,
        /// When to try again; `None` marks the delivery dead.
        retry_at: Option<DateTime<Utc>>,
    },
}

/// One attempt to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The delivery attempted.
    pub delivery: DeliveryId,
    /// When the attempt ended.
    pub at: DateTime<Utc>,
    /// How it ended.
    pub outcome: AttemptOutcome,
}

/// The webhook repository.
#[async_trait]
pub trait Webhooks: Send + Sync {
    /// Stores the webhook and its signing secret in one transaction, with its cursor at the newest
    /// event (it receives only events appended after it was created). Fails with
    /// [`StoreError::UnknownKey`] if the secret is sealed with a key the store does not hold.
    async fn create(&self, new: NewWebhook, secret: &Sealed) -> Result<Webhook, StoreError>;

    /// The webhook with this id, if any.
    async fn get(&self, id: &WebhookId) -> Result<Option<Webhook>, StoreError>;

    /// Every webhook, oldest first.
    async fn list(&self) -> Result<Vec<Webhook>, StoreError>;

    /// Applies `change`, and replaces the signing secret when one is given, in one transaction;
    /// `None` if there is no such webhook.
    async fn update(
        &self,
        id: &WebhookId,
        change: WebhookChange,
        secret: Option<&Sealed>,
    ) -> Result<Option<Webhook>, StoreError>;

    /// Deletes the webhook with its deliveries and secret; false if it did not exist.
    async fn delete(&self, id: &WebhookId) -> Result<bool, StoreError>;

    /// In one transaction, if the cursor is still `after`: queues one pending delivery per event
    /// of `matched` (due now) and moves the cursor to `up_to`. `matched` must hold events with
    /// ids in `(after, up_to]`. Fails with [`StoreError::NotFound`] for an unknown webhook.
    async fn enqueue(
        &self,
        id: &WebhookId,
        after: EventId,
        up_to: EventId,
        matched: &[Event],
    ) -> Result<EnqueueOutcome, StoreError>;

    /// Up to `limit` pending deliveries of the webhook in event order, with their events,
    /// leaving out every account (or the server-wide queue) that has a pending delivery not due
    /// at `now`. The caller attempts them in order and, once one fails, skips the rest of its
    /// account.
    async fn due(
        &self,
        id: &WebhookId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError>;

    /// The earliest `next_attempt_at` of the webhook's pending deliveries, if it has any.
    async fn next_attempt_at(&self, id: &WebhookId) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Records attempts in one transaction: for each, counts it, stores its time, status code and
    /// error, and sets the status. Only pending deliveries change (one deleted or already settled
    /// meanwhile is skipped); returns how many changed.
    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> Result<u64, StoreError>;

    /// Up to `limit` deliveries of the webhook, newest event first, with an event id below
    /// `before` when given (the next page starts before the last one seen).
    async fn list_deliveries(
        &self,
        id: &WebhookId,
        before: Option<EventId>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// The delivery with this id, if any.
    async fn get_delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>, StoreError>;

    /// Makes the delivery pending again, due at `now`, with a fresh retry window and its attempt
    /// count reset; `None` if the webhook has no such delivery.
    async fn redeliver(
        &self,
        webhook: &WebhookId,
        delivery: &DeliveryId,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError>;
}
