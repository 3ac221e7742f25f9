//! The outbox: messages accepted for sending, from the API's 202 until the server's last word.
//!
//! Purpose: a durable queue with leases. [`Outbox::enqueue`] stores the built message (honouring an
//! idempotency key for 24 hours), [`Outbox::claim_due`] hands due items to a worker under a lease,
//! and the worker ends each attempt with [`Outbox::mark_sent`], [`Outbox::mark_retry`],
//! [`Outbox::mark_failed`] or [`Outbox::release`].
//! Non-goal: SMTP, composing, back-off policy, rate limits; `postern-outbox` decides, the store
//! remembers (and counts: [`Outbox::count_sent_since`] is what a daily limit is checked against).
//! Key decisions:
//! - A claim is a lease, not a lock: it names a random `lease_id` and an expiry. A worker that dies
//!   leaves its items `sending`; once the lease has expired another claim takes them (at least once
//!   delivery: the only duplicate is a crash between the server's acceptance and the local commit,
//!   and it carries the same Message-ID). A `mark_*` whose lease was taken over changes nothing.
//! - The attempt counter is bumped by the claim, not by the outcome, so an item that crashes its
//!   worker every time still runs out of attempts.
//! - `mark_sent` and `mark_failed` append `message.sent` / `message.failed` in the same transaction
//!   as the status change: no event is lost or told twice.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use crate::ids::{text_enum, uuid_id};
use crate::{AccountId, StoreError};

/// How long an idempotency key keeps returning the item it first created.
pub const IDEMPOTENCY_WINDOW: TimeDelta = TimeDelta::hours(24);

/// The event appended when an item is sent.
pub const EVENT_MESSAGE_SENT: &str = "message.sent";
/// The event appended when an item fails for good.
pub const EVENT_MESSAGE_FAILED: &str = "message.failed";

uuid_id! {
    /// The id of an outbox item: a UUID v7 in its canonical hyphenated, lower-case form.
    OutboxId
}

text_enum! {
    /// Where an outbox item stands.
    OutboxStatus {
        /// Waiting for `next_attempt_at` (its first attempt, a retry, or a scheduled send).
        Queued => "queued",
        /// Claimed by a worker under a lease.
        Sending => "sending",
        /// Accepted by the server for at least one recipient; nothing is left to try.
        Sent => "sent",
        /// Refused for good, or out of attempts; `last_error` says why.
        Failed => "failed",
        /// Cancelled before it was sent.
        Cancelled => "cancelled",
    }
}

text_enum! {
    /// What the server said about one recipient.
    RecipientStatus {
        /// Not tried yet, or the attempt ended before `RCPT TO` was answered.
        Pending => "pending",
        /// Accepted with the message (`RCPT TO` and the end of `DATA` both 2xx).
        Accepted => "accepted",
        /// Refused for now (4xx): tried again on the next attempt.
        Deferred => "deferred",
        /// Refused for good (5xx).
        Rejected => "rejected",
    }
}

/// The server's answer for one recipient, kept as the item's per-recipient results.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecipientResult {
    /// The envelope address (`RCPT TO`).
    pub address: String,
    /// Where it stands.
    pub status: RecipientStatus,
    /// The SMTP reply code that decided it, if one did.
    pub code: Option<u16>,
    /// The server's words (the reply's text), if it answered.
    pub reply: Option<String>,
}

impl RecipientResult {
    /// A recipient not tried yet.
    pub fn pending(address: impl Into<String>) -> Self {
        RecipientResult {
            address: address.into(),
            status: RecipientStatus::Pending,
            code: None,
            reply: None,
        }
    }
}

/// The SMTP envelope: who the message is from and who receives it (`MAIL FROM`, `RCPT TO`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpEnvelope {
    /// The reverse path; empty for the null sender.
    pub from: String,
    /// Every recipient, Bcc included, without duplicates.
    pub recipients: Vec<String>,
}

/// What [`Outbox::enqueue`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxItem {
    /// The item's id, chosen by the caller (it may appear in the message's own headers).
    pub id: OutboxId,
    /// The sending account.
    pub account_id: AccountId,
    /// The RFC 5322 message as it will be transmitted (Bcc already stripped).
    pub raw: Vec<u8>,
    /// The envelope.
    pub envelope: SmtpEnvelope,
    /// The message's Message-ID, without angle brackets.
    pub message_id: String,
    /// The earliest time to send (now, or a scheduled time).
    pub send_at: DateTime<Utc>,
    /// A caller's key: the same key for the same account within [`IDEMPOTENCY_WINDOW`] returns
    /// the first item instead of queueing a second one.
    pub idempotency_key: Option<String>,
}

/// A stored outbox item, without its (possibly large) message bytes; see [`Outbox::raw`].
/// Timestamps have millisecond precision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// The item's id.
    pub id: OutboxId,
    /// The sending account.
    pub account_id: AccountId,
    /// Where it stands.
    pub status: OutboxStatus,
    /// The envelope.
    pub envelope: SmtpEnvelope,
    /// The message's Message-ID, without angle brackets.
    pub message_id: String,
    /// The size of the stored message in bytes.
    pub size: u64,
    /// The earliest time to send.
    pub send_at: DateTime<Utc>,
    /// Attempts started so far (each claim counts one).
    pub attempts: u32,
    /// When the next attempt is due (meaningful while `queued`).
    pub next_attempt_at: DateTime<Utc>,
    /// Until when the current claim holds (only while `sending`).
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The latest failure, in the server's words where it gave any.
    pub last_error: Option<String>,
    /// One result per envelope recipient, in envelope order.
    pub recipients: Vec<RecipientResult>,
    /// The caller's idempotency key, while it is in force.
    pub idempotency_key: Option<String>,
    /// When the server accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What [`Outbox::enqueue`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// A new item was queued.
    Created(OutboxItem),
    /// The idempotency key was already used within the window: this is the first item, as it
    /// stands now; nothing new was queued.
    Existing(OutboxItem),
}

impl Enqueued {
    /// The item, new or existing.
    pub fn item(&self) -> &OutboxItem {
        match self {
            Enqueued::Created(item) | Enqueued::Existing(item) => item,
        }
    }

    /// The item, new or existing.
    pub fn into_item(self) -> OutboxItem {
        match self {
            Enqueued::Created(item) | Enqueued::Existing(item) => item,
        }
    }

    /// True when a new item was queued.
    pub fn is_new(&self) -> bool {
        matches!(self, Enqueued::Created(_))
    }
}

/// A worker's hold on a claimed item; every `mark_*` must present it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxLease {
    /// The claimed item.
    pub item_id: OutboxId,
    /// Random per claim: a later claim of the same item gets another one.
    pub lease_id: String,
    /// When the claim lapses and the item may be claimed again.
    pub expires_at: DateTime<Utc>,
}

/// An item handed to a worker by [`Outbox::claim_due`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedOutboxItem {
    /// The item, now `sending`, with this claim counted in `attempts`.
    pub item: OutboxItem,
    /// The message bytes to transmit.
    pub raw: Vec<u8>,
    /// The claim.
    pub lease: OutboxLease,
}

/// What [`Outbox::cancel`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxCancel {
    /// The item was queued and is now cancelled.
    Cancelled(OutboxItem),
    /// The item is not queued (being sent, sent, failed or already cancelled); nothing changed.
    NotQueued(OutboxItem),
    /// No such item.
    NotFound,
}

/// Which items [`Outbox::list`] returns, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxQuery {
    /// Only this account's items.
    pub account_id: Option<AccountId>,
    /// Only items in this status.
    pub status: Option<OutboxStatus>,
    /// Only items older than this one (the previous page's last id).
    pub before: Option<OutboxId>,
    /// At most this many.
    pub limit: u32,
}

impl Default for OutboxQuery {
    fn default() -> Self {
        OutboxQuery {
            account_id: None,
            status: None,
            before: None,
            limit: 100,
        }
    }
}

/// The outbox repository.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Queues `new` in one transaction, every recipient `pending`. With an idempotency key this
    /// account used less than [`IDEMPOTENCY_WINDOW`] ago, returns that item instead and stores
    /// nothing. Fails with [`StoreError::NotFound`] for an unknown account.
    async fn enqueue(&self, new: NewOutboxItem) -> Result<Enqueued, StoreError>;

    /// Claims up to `limit` items, in one transaction: items whose lease expired at `now` (a
    /// worker died) first, then queued items due at `now`, oldest due first. Each becomes
    /// `sending` under a new lease lasting `lease`, and its `attempts` grows by one.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedOutboxItem>, StoreError>;

    /// Puts every item left `sending` by an earlier run of the server back in the queue, due at
    /// `now`, and returns how many. Call it once at start, before any worker claims: one server
    /// owns a data dir (`serve` locks it), so no live worker can hold a lease then, and an item a
    /// crash left behind goes out again at once instead of when its lease would have lapsed.
    /// Such an item may have reached the server before the crash; sending it again keeps its
    /// Message-ID, so the duplicate can be recognised.
    async fn recover_abandoned(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// The attempt delivered the message: `sent`, with the per-recipient results, and a
    /// `message.sent` event in the same transaction. `None` (nothing changed) when the lease is no
    /// longer held: it lapsed and another worker claimed the item.
    async fn mark_sent(
        &self,
        lease: &OutboxLease,
        recipients: Vec<RecipientResult>,
    ) -> Result<Option<OutboxItem>, StoreError>;

    /// The attempt failed for now: back to `queued` until `next_attempt_at`, with the error and
    /// the per-recipient results so far. No event. `None` when the lease is no longer held.
    async fn mark_retry(
        &self,
        lease: &OutboxLease,
        next_attempt_at: DateTime<Utc>,
        error: &str,
        recipients: Vec<RecipientResult>,
    ) -> Result<Option<OutboxItem>, StoreError>;

    /// The attempt failed for good: `failed`, with the error and per-recipient results, and a
    /// `message.failed` event in the same transaction. `None` when the lease is no longer held.
    async fn mark_failed(
        &self,
        lease: &OutboxLease,
        error: &str,
        recipients: Vec<RecipientResult>,
    ) -> Result<Option<OutboxItem>, StoreError>;

    /// Gives a claimed item back untried (e.g. its account's rate limit is spent): `queued` until
    /// `next_attempt_at`, and the claim does not count as an attempt. `None` when the lease is no
    /// longer held.
    async fn release(
        &self,
        lease: &OutboxLease,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<Option<OutboxItem>, StoreError>;

    /// Makes the account's queued items that wait only for its sending limits due at `now`, and
    /// returns how many: those never tried (no attempt charged) whose `send_at` has passed. For
    /// when the account's limits were raised; an item still over a limit is given back again
    /// when claimed, so this never lets more out than the limits allow. Items waiting out a
    /// retry delay (tried before) keep their time.
    async fn make_limited_due(
        &self,
        account_id: &AccountId,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Cancels a queued item.
    async fn cancel(&self, id: &OutboxId) -> Result<OutboxCancel, StoreError>;

    /// The item with this id, if any.
    async fn get(&self, id: &OutboxId) -> Result<Option<OutboxItem>, StoreError>;

    /// The message bytes of the item with this id, if any.
    async fn raw(&self, id: &OutboxId) -> Result<Option<Vec<u8>>, StoreError>;

    /// Items matching `query`, newest first.
    async fn list(&self, query: &OutboxQuery) -> Result<Vec<OutboxItem>, StoreError>;

    /// How many items are in each status, every status listed (0 included).
    async fn count_by_status(&self) -> Result<Vec<(OutboxStatus, u64)>, StoreError>;

    /// How many of the account's items were sent at or after `since` (by `sent_at`): what a daily
    /// limit counts, from the store, so it survives a restart.
    async fn count_sent_since(
        &self,
        account_id: &AccountId,
        since: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// When the account's `n`-th oldest send at or after `since` went out (`n` from 0), `None`
    /// when there are not that many. A caller over a limit of `L` with `C` sends in the window
    /// waits until send `C - L` leaves it.
    async fn nth_sent_since(
        &self,
        account_id: &AccountId,
        since: DateTime<Utc>,
        n: u64,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;
}
