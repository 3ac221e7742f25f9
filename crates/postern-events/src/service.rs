//! The webhook service: what the API and the binary call.
//!
//! Purpose: create, list, read, change and delete webhooks (with their sealed signing secret), send
//! a test event, list and redeliver deliveries, and start the delivery workers.
//! Non-goal: HTTP; inputs are plain structs the API deserializes ([`NewWebhookInput`],
//! [`WebhookUpdateInput`]), errors are [`WebhookError`]s the API maps to statuses. Scope and
//! account-binding checks of API tokens are the API's.
//! Key decision: the signing secret is shown exactly once, in [`CreatedWebhook`], and otherwise
//! exists only sealed in the store and, for the instant of signing, in a worker's memory. Ids come
//! in as text, and one that does not parse is "not found", like an unknown one, so a caller learns
//! nothing from the difference.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use chrono::Utc;
use postern_store::{
    Delivery, DeliveryId, Event, EventId, NewEvent, NewWebhook, Store, Webhook, WebhookChange,
    WebhookId,
};
use postern_vault::{Sealed, Vault};
use rand::RngCore;
use secrecy::SecretString;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::WebhookConfig;
use crate::delivery::{Deliverer, http_client, supervise};
use crate::error::{FieldError, WebhookError};
use crate::filter::TEST_EVENT;
use crate::input::{
    NewWebhookInput, WebhookUpdateInput, check_accounts, check_patterns, check_secret, check_url,
};
use crate::stream::EventStream;

/// The most deliveries one listing returns.
pub const MAX_DELIVERY_PAGE: u32 = 1_000;

/// A new webhook and its signing secret, shown this once.
#[derive(Debug)]
pub struct CreatedWebhook {
    /// The stored webhook.
    pub webhook: Webhook,
    /// The secret receivers verify signatures with (generated when none was given).
    pub secret: SecretString,
}

/// The webhook service. Cheap to clone; clones share the workers' wake-up.
#[derive(Clone)]
pub struct WebhookService {
    inner: Arc<Deliverer>,
}

impl WebhookService {
    /// A service over `store`, sealing and opening secrets with `vault`. `wake` is the `Notify`
    /// every event appender pokes with `notify_waiters()` after a commit; the workers and the
    /// stream wait on it. Fails only if the HTTP client cannot be built.
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        config: WebhookConfig,
        wake: Arc<Notify>,
    ) -> Result<Self, WebhookError> {
        let http = http_client(&config).map_err(WebhookError::HttpClient)?;
        Ok(WebhookService {
            inner: Arc::new(Deliverer {
                store,
                vault,
                config,
                http,
                wake,
                webhooks_changed: Notify::new(),
                config_version: AtomicU64::new(0),
            }),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &WebhookConfig {
        &self.inner.config
    }

    /// The pull stream over the same log, woken by the same `Notify`.
    pub fn stream(&self) -> EventStream {
        EventStream::new(
            self.inner.store.clone(),
            self.inner.wake.clone(),
            self.inner.config.poll_interval,
        )
    }

    /// Starts the delivery workers: one task per enabled webhook, kept in step with creations,
    /// changes and deletions, until `shutdown` turns true. The handle ends once every worker has
    /// stopped (an attempt in flight is abandoned and retried at the next start).
    pub fn spawn_workers(&self, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(supervise(self.inner.clone(), shutdown))
    }

    /// Creates a webhook, after checking every field (the target address included); it receives
    /// the events appended from now on.
    pub async fn create(&self, input: NewWebhookInput) -> Result<CreatedWebhook, WebhookError> {
        let mut errors = Vec::new();
        let url = check_url(&input.url, self.allow_private(), &mut errors).await;
        let events = check_patterns(&input.events, &mut errors);
        let account_ids = match &input.account_ids {
            Some(ids) => Some(check_accounts(self.store(), ids, &mut errors).await?),
            None => None,
        };
        if let Some(secret) = &input.secret {
            check_secret(secret, &mut errors);
        }
        // No URL means its error is in the list.
        let Some(url) = url.filter(|_| errors.is_empty()) else {
            return Err(WebhookError::Invalid(errors));
        };
        let secret = input.secret.unwrap_or_else(generate_secret);
        let new = NewWebhook {
            id: WebhookId::generate(),
            url,
            events,
            account_ids,
            enabled: input.enabled.unwrap_or(true),
        };
        let sealed = self.seal(&new.id, &secret);
        let webhook = self.store().webhooks().create(new, &sealed).await?;
        tracing::info!(webhook = %webhook.id, "webhook created");
        self.inner.webhooks_changed();
        Ok(CreatedWebhook { webhook, secret })
    }

    /// Every webhook, oldest first.
    pub async fn list(&self) -> Result<Vec<Webhook>, WebhookError> {
        Ok(self.store().webhooks().list().await?)
    }

    /// The webhook with this id.
    pub async fn get(&self, id: &str) -> Result<Webhook, WebhookError> {
        let id = parse_webhook_id(id)?;
        self.store()
            .webhooks()
            .get(&id)
            .await?
            .ok_or_else(|| webhook_not_found(&id))
    }

    /// Changes the given fields (checked like at creation) and, when given, rotates the secret.
    pub async fn update(
        &self,
        id: &str,
        input: WebhookUpdateInput,
    ) -> Result<Webhook, WebhookError> {
        let id = parse_webhook_id(id)?;
        let change = self.checked_change(&input).await?;
        let sealed = input.secret.as_ref().map(|secret| self.seal(&id, secret));
        let webhook = self
            .store()
            .webhooks()
            .update(&id, change, sealed.as_ref())
            .await?
            .ok_or_else(|| webhook_not_found(&id))?;
        tracing::info!(webhook = %id, rotated_secret = sealed.is_some(), "webhook updated");
        self.inner.webhooks_changed();
        Ok(webhook)
    }

    /// Deletes the webhook, its deliveries and its secret; its worker stops.
    pub async fn delete(&self, id: &str) -> Result<(), WebhookError> {
        let id = parse_webhook_id(id)?;
        if !self.store().webhooks().delete(&id).await? {
            return Err(webhook_not_found(&id));
        }
        tracing::info!(webhook = %id, "webhook deleted");
        self.inner.webhooks_changed();
        Ok(())
    }

    /// Appends a `webhook.test` event addressed to this webhook only, and returns it; it is
    /// delivered like any other event (signed, retried, listed among the deliveries).
    pub async fn send_test(&self, id: &str) -> Result<Event, WebhookError> {
        let webhook = self.get(id).await?;
        if !webhook.enabled {
            return Err(WebhookError::Disabled {
                id: webhook.id.to_string(),
            });
        }
        let event = self
            .store()
            .events()
            .append(NewEvent {
                account_id: None,
                kind: TEST_EVENT.to_owned(),
                payload: serde_json::json!({
                    "webhook_id": webhook.id.as_str(),
                    "message": "A test event from Postern: your endpoint receives and can verify webhooks.",
                }),
            })
            .await?;
        self.inner.wake.notify_waiters();
        Ok(event)
    }

    /// Up to `limit` (at most [`MAX_DELIVERY_PAGE`]) deliveries of the webhook, newest event
    /// first, with an event id below `before` when given.
    pub async fn deliveries(
        &self,
        id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Delivery>, WebhookError> {
        let webhook = self.get(id).await?;
        let limit = limit.clamp(1, MAX_DELIVERY_PAGE);
        Ok(self
            .store()
            .webhooks()
            .list_deliveries(&webhook.id, before.map(EventId), limit)
            .await?)
    }

    /// Sends a delivery again (delivered, dead or pending alike): it becomes pending, due now, with
    /// a fresh retry window. It still waits for earlier pending events of its account.
    pub async fn redeliver(&self, id: &str, delivery_id: &str) -> Result<Delivery, WebhookError> {
        let webhook_id = parse_webhook_id(id)?;
        let not_found = || WebhookError::NotFound {
            what: format!("delivery {delivery_id} of webhook {webhook_id}"),
        };
        let delivery_id = DeliveryId::from_str(delivery_id).map_err(|_| not_found())?;
        let delivery = self
            .store()
            .webhooks()
            .redeliver(&webhook_id, &delivery_id, Utc::now())
            .await?
            .ok_or_else(not_found)?;
        self.inner.wake.notify_waiters();
        Ok(delivery)
    }

    async fn checked_change(
        &self,
        input: &WebhookUpdateInput,
    ) -> Result<WebhookChange, WebhookError> {
        let mut errors = Vec::new();
        let url = match &input.url {
            Some(url) => check_url(url, self.allow_private(), &mut errors).await,
            None => None,
        };
        let events = input
            .events
            .as_ref()
            .map(|patterns| check_patterns(patterns, &mut errors));
        let account_ids = match &input.account_ids {
            Some(Some(ids)) => Some(Some(check_accounts(self.store(), ids, &mut errors).await?)),
            Some(None) => Some(None),
            None => None,
        };
        if let Some(secret) = &input.secret {
            check_secret(secret, &mut errors);
        }
        invalid_if_any(errors)?;
        Ok(WebhookChange {
            url,
            events,
            account_ids,
            enabled: input.enabled,
        })
    }

    fn seal(&self, id: &WebhookId, secret: &SecretString) -> Sealed {
        self.inner
            .vault
            .seal_str(&id.signing_secret_ref().context(), secret)
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn allow_private(&self) -> bool {
        self.inner.config.allow_private_targets
    }
}

fn invalid_if_any(errors: Vec<FieldError>) -> Result<(), WebhookError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(WebhookError::Invalid(errors))
    }
}

fn parse_webhook_id(id: &str) -> Result<WebhookId, WebhookError> {
    WebhookId::from_str(id).map_err(|_| WebhookError::NotFound {
        what: format!("webhook {id}"),
    })
}

fn webhook_not_found(id: &WebhookId) -> WebhookError {
    WebhookError::NotFound {
        what: format!("webhook {id}"),
    }
}

/// `whsec_` and 256 random bits in hex.
fn generate_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("whsec_{}", hex::encode(bytes));
    bytes.fill(0);
    SecretString::from(secret)
}
