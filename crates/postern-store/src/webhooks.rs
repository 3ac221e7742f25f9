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

    /// The earliest `next_attempt_at` after `now` among the webhook's pending deliveries: when the
    /// next retry falls due. Pending deliveries due already are not counted: once the caller has
    /// attempted everything [`Webhooks::due`] returned, those left are held back by a retry.
    async fn next_retry_at(
        &self,
        id: &WebhookId,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;

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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test
mod tests {
    use chrono::Duration;
    use postern_vault::{MasterKey, Vault};
    use tempfile::TempDir;

    use super::*;
    use crate::{NewEvent, Store};

    /// A migrated store with an active vault key, and the vault sealing with it.
    async fn store() -> (TempDir, Store, Vault) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("p.db")).await.unwrap();
        let master = MasterKey::generate();
        let key = store.vault_keys().next_key_id().await.unwrap();
        let (wrapped, _) = Vault::new_data_key(&master, key);
        store
            .vault_keys()
            .insert_active(wrapped.clone())
            .await
            .unwrap();
        let vault = Vault::unlock(&master, &[wrapped], key).unwrap();
        (dir, store, vault)
    }

    async fn webhook(store: &Store, vault: &Vault) -> Webhook {
        let id = WebhookId::generate();
        let sealed = vault.seal(&id.signing_secret_ref().context(), b"whsec_x");
        let new = NewWebhook {
            id,
            url: "https://example.com/hook".into(),
            events: vec!["*".into()],
            account_ids: None,
            enabled: true,
        };
        store.webhooks().create(new, &sealed).await.unwrap()
    }

    async fn append(store: &Store, account: Option<&str>) -> Event {
        let new = NewEvent {
            account_id: account.map(str::to_owned),
            kind: "message.new".into(),
            payload: serde_json::json!({}),
        };
        store.events().append(new).await.unwrap()
    }

    /// Appends events for `accounts` and queues them all for `webhook`.
    async fn queue(store: &Store, webhook: &Webhook, accounts: &[Option<&str>]) -> Vec<Event> {
        let mut events = Vec::new();
        for account in accounts {
            events.push(append(store, *account).await);
        }
        let current = store.webhooks().get(&webhook.id).await.unwrap().unwrap();
        let last = events.last().unwrap().id;
        let outcome = store
            .webhooks()
            .enqueue(&webhook.id, current.cursor, last, &events)
            .await
            .unwrap();
        assert_eq!(
            outcome,
            EnqueueOutcome::Enqueued {
                count: events.len() as u64
            }
        );
        events
    }

    fn due_ids(due: &[DueDelivery]) -> Vec<i64> {
        due.iter().map(|d| d.event.id.0).collect()
    }

    #[tokio::test]
    async fn a_new_webhook_starts_after_the_newest_event_and_owns_its_secret() {
        let (_dir, store, vault) = store().await;
        append(&store, None).await;
        let newest = append(&store, Some("acc-a")).await;
        let created = webhook(&store, &vault).await;
        assert_eq!(created.cursor, newest.id);
        assert_eq!(
            store.webhooks().list().await.unwrap(),
            vec![created.clone()]
        );
        let secret = created.id.signing_secret_ref();
        assert!(store.secrets().get(&secret).await.unwrap().is_some());

        queue(&store, &created, &[Some("acc-a")]).await;
        assert!(store.webhooks().delete(&created.id).await.unwrap());
        assert!(!store.webhooks().delete(&created.id).await.unwrap());
        assert!(store.secrets().get(&secret).await.unwrap().is_none());
        let left = store
            .webhooks()
            .list_deliveries(&created.id, None, 10)
            .await;
        assert!(left.unwrap().is_empty(), "deliveries go with their webhook");
    }

    #[tokio::test]
    async fn enqueue_moves_the_cursor_only_from_where_the_caller_read_it() {
        let (_dir, store, vault) = store().await;
        let hook = webhook(&store, &vault).await;
        let events = [
            append(&store, Some("a")).await,
            append(&store, Some("b")).await,
        ];
        let stale = EventId(hook.cursor.0 - 1);
        let moved = store
            .webhooks()
            .enqueue(&hook.id, stale, events[1].id, &events)
            .await
            .unwrap();
        assert_eq!(
            moved,
            EnqueueOutcome::CursorMoved {
                current: hook.cursor
            }
        );
        assert!(
            store
                .webhooks()
                .due(&hook.id, Utc::now(), 10)
                .await
                .unwrap()
                .is_empty()
        );

        // Only the second event is wanted; the cursor still passes both.
        let queued = store
            .webhooks()
            .enqueue(&hook.id, hook.cursor, events[1].id, &events[1..])
            .await
            .unwrap();
        assert_eq!(queued, EnqueueOutcome::Enqueued { count: 1 });
        let after = store.webhooks().get(&hook.id).await.unwrap().unwrap();
        assert_eq!(after.cursor, events[1].id);
        let due = store
            .webhooks()
            .due(&hook.id, Utc::now(), 10)
            .await
            .unwrap();
        assert_eq!(due_ids(&due), [events[1].id.0]);
        assert_eq!(due[0].event, events[1]);

        let missing = store
            .webhooks()
            .enqueue(&WebhookId::generate(), EventId(0), events[1].id, &[])
            .await;
        assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    }

    #[tokio::test]
    async fn a_retry_holds_back_its_own_account_only() {
        let (_dir, store, vault) = store().await;
        let hook = webhook(&store, &vault).await;
        let events = queue(
            &store,
            &hook,
            &[Some("a"), Some("b"), Some("a"), None, None],
        )
        .await;
        let now = Utc::now();
        let due = store.webhooks().due(&hook.id, now, 10).await.unwrap();
        assert_eq!(
            due_ids(&due),
            events.iter().map(|e| e.id.0).collect::<Vec<_>>()
        );

        let failed = AttemptRecord {
            delivery: due[0].delivery.id.clone(),
            at: now,
            outcome: AttemptOutcome::Failed {
                status_code: Some(503),
                error: "HTTP 503".into(),
                retry_at: Some(now + Duration::minutes(1)),
            },
        };
        let server_wide_done = AttemptRecord {
            delivery: due[3].delivery.id.clone(),
            at: now,
            outcome: AttemptOutcome::Delivered { status_code: 204 },
        };
        let changed = store
            .webhooks()
            .record_attempts(&[failed, server_wide_done.clone()])
            .await
            .unwrap();
        assert_eq!(changed, 2);
        let due = store.webhooks().due(&hook.id, now, 10).await.unwrap();
        assert_eq!(
            due_ids(&due),
            [events[1].id.0, events[4].id.0],
            "b and the server queue"
        );
        let later = store
            .webhooks()
            .due(&hook.id, now + Duration::minutes(2), 10)
            .await;
        assert_eq!(
            due_ids(&later.unwrap()).len(),
            4,
            "a is due again once its retry is"
        );
        let next = store.webhooks().next_retry_at(&hook.id, now).await.unwrap();
        assert_eq!(
            next.map(|at| at.timestamp_millis()),
            Some((now + Duration::minutes(1)).timestamp_millis()),
            "a's retry; b and a's second event are due already and do not count"
        );
        assert_eq!(
            store
                .webhooks()
                .record_attempts(&[server_wide_done])
                .await
                .unwrap(),
            0,
            "a settled delivery is not changed again"
        );
    }

    #[tokio::test]
    async fn outcomes_are_recorded_and_redelivery_starts_a_fresh_window() {
        let (_dir, store, vault) = store().await;
        let hook = webhook(&store, &vault).await;
        let events = queue(&store, &hook, &[Some("a"), Some("b")]).await;
        let due = store
            .webhooks()
            .due(&hook.id, Utc::now(), 10)
            .await
            .unwrap();
        let at = Utc::now();
        let dead = AttemptRecord {
            delivery: due[1].delivery.id.clone(),
            at,
            outcome: AttemptOutcome::Failed {
                status_code: None,
                error: "cannot connect".into(),
                retry_at: None,
            },
        };
        store.webhooks().record_attempts(&[dead]).await.unwrap();
        let listed = store
            .webhooks()
            .list_deliveries(&hook.id, None, 10)
            .await
            .unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].event_id, events[1].id, "newest first");
        assert_eq!(listed[0].status, DeliveryStatus::Dead);
        assert_eq!(listed[0].attempts, 1);
        assert_eq!(listed[0].last_error.as_deref(), Some("cannot connect"));
        assert_eq!(listed[0].last_status_code, None);
        assert_eq!(listed[1].status, DeliveryStatus::Pending);
        let page = store
            .webhooks()
            .list_deliveries(&hook.id, Some(events[1].id), 10)
            .await
            .unwrap();
        assert_eq!(page, listed[1..]);

        let later = at + Duration::hours(1);
        let again = store
            .webhooks()
            .redeliver(&hook.id, &listed[0].id, later)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.status, DeliveryStatus::Pending);
        assert_eq!(again.attempts, 0);
        assert_eq!(
            again.pending_since.timestamp_millis(),
            later.timestamp_millis()
        );
        assert_eq!(
            again.last_error.as_deref(),
            Some("cannot connect"),
            "history stays"
        );
        assert_eq!(
            store.webhooks().get_delivery(&again.id).await.unwrap(),
            Some(again)
        );
        let elsewhere = store
            .webhooks()
            .redeliver(&WebhookId::generate(), &listed[0].id, later)
            .await
            .unwrap();
        assert_eq!(
            elsewhere, None,
            "a delivery is redelivered through its own webhook"
        );
    }

    #[tokio::test]
    async fn update_changes_the_given_fields_and_can_replace_the_secret() {
        let (_dir, store, vault) = store().await;
        let hook = webhook(&store, &vault).await;
        let secret = hook.id.signing_secret_ref();
        let rotated = vault.seal(&secret.context(), b"whsec_y");
        let change = WebhookChange {
            account_ids: Some(Some(vec!["a".into()])),
            enabled: Some(false),
            ..WebhookChange::default()
        };
        let updated = store
            .webhooks()
            .update(&hook.id, change, Some(&rotated))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(updated.url, hook.url);
        assert_eq!(updated.events, hook.events);
        assert_eq!(updated.account_ids, Some(vec!["a".to_owned()]));
        assert!(!updated.enabled);
        let stored = store.secrets().get(&secret).await.unwrap().unwrap();
        let opened = vault.open(&secret.context(), &stored).unwrap();
        assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), b"whsec_y");

        let unbound = WebhookChange {
            account_ids: Some(None),
            ..WebhookChange::default()
        };
        let updated = store
            .webhooks()
            .update(&hook.id, unbound, None)
            .await
            .unwrap();
        assert_eq!(updated.unwrap().account_ids, None);
        let missing = store
            .webhooks()
            .update(&WebhookId::generate(), WebhookChange::default(), None)
            .await
            .unwrap();
        assert_eq!(missing, None);
    }
}
