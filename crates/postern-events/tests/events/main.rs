//! Integration tests of `postern-events`: real SQLite stores in temporary folders, real HTTP on
//! loopback to axum receivers that verify every signature.
//!
//! One test binary. The harness gives each test a store with a vault key, a `WebhookService` with
//! millisecond backoffs, and running workers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test

mod delivery;
mod receiver;
mod service;
mod ssrf;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use postern_events::{CreatedWebhook, NewWebhookInput, WebhookConfig, WebhookService};
use postern_store::{Delivery, DeliveryStatus, Event, NewEvent, Store};
use postern_vault::{MasterKey, Vault};
use secrecy::ExposeSecret;
use tempfile::TempDir;
use tokio::sync::{Notify, watch};

use crate::receiver::Receiver;

/// A generous bound for things that take milliseconds, so a loaded CI machine does not flake.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Settings for tests: loopback allowed, millisecond backoff, a short request timeout.
pub fn test_config() -> WebhookConfig {
    WebhookConfig {
        allow_private_targets: true,
        request_timeout: Duration::from_secs(2),
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(100),
        max_age: Duration::from_secs(60),
        poll_interval: Duration::from_millis(500),
        batch_size: 64,
        max_in_flight: 4,
    }
}

/// A store, a vault, a service and (once [`Harness::start`] ran) its workers.
pub struct Harness {
    pub _dir: TempDir,
    pub store: Store,
    pub vault: Arc<Vault>,
    pub wake: Arc<Notify>,
    pub service: WebhookService,
    stop: Option<watch::Sender<bool>>,
    workers: Option<tokio::task::JoinHandle<()>>,
}

impl Harness {
    pub async fn new(config: WebhookConfig) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("postern.db"))
            .await
            .unwrap();
        let master = MasterKey::generate();
        let key = store.vault_keys().next_key_id().await.unwrap();
        let (wrapped, _) = Vault::new_data_key(&master, key);
        store
            .vault_keys()
            .insert_active(wrapped.clone())
            .await
            .unwrap();
        let vault = Arc::new(Vault::unlock(&master, &[wrapped], key).unwrap());
        let wake = Arc::new(Notify::new());
        let service =
            WebhookService::new(store.clone(), vault.clone(), config, wake.clone()).unwrap();
        Harness {
            _dir: dir,
            store,
            vault,
            wake,
            service,
            stop: None,
            workers: None,
        }
    }

    /// A harness with [`test_config`] and running workers.
    pub async fn started() -> Harness {
        let mut harness = Harness::new(test_config()).await;
        harness.start();
        harness
    }

    pub fn start(&mut self) {
        let (stop, shutdown) = watch::channel(false);
        self.workers = Some(self.service.spawn_workers(shutdown));
        self.stop = Some(stop);
    }

    /// Stops the workers and waits for them.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(true).unwrap();
        }
        if let Some(workers) = self.workers.take() {
            tokio::time::timeout(PATIENCE, workers)
                .await
                .unwrap()
                .unwrap();
        }
    }

    /// Creates a webhook for `events` to `receiver` and tells the receiver its secret.
    pub async fn webhook(&self, receiver: &Receiver, events: &[&str]) -> CreatedWebhook {
        self.webhook_for(receiver, events, None).await
    }

    pub async fn webhook_for(
        &self,
        receiver: &Receiver,
        events: &[&str],
        account_ids: Option<Vec<String>>,
    ) -> CreatedWebhook {
        let created = self
            .service
            .create(NewWebhookInput {
                url: receiver.url(),
                events: events.iter().map(|e| e.to_string()).collect(),
                account_ids,
                secret: None,
                enabled: None,
            })
            .await
            .unwrap();
        receiver.set_secret(created.secret.expose_secret());
        created
    }

    /// Appends an event and pokes the readers, as every appender does.
    pub async fn append(&self, account_id: Option<&str>, kind: &str, n: i64) -> Event {
        let event = self
            .store
            .events()
            .append(NewEvent {
                account_id: account_id.map(str::to_owned),
                kind: kind.to_owned(),
                payload: serde_json::json!({ "n": n }),
            })
            .await
            .unwrap();
        self.wake.notify_waiters();
        event
    }

    /// The webhook's deliveries once `done` holds for them (polling), or a failed test.
    pub async fn deliveries_when(
        &self,
        webhook: &str,
        what: &str,
        done: impl Fn(&[Delivery]) -> bool,
    ) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let deliveries = self.service.deliveries(webhook, None, 1000).await.unwrap();
            if done(&deliveries) {
                return deliveries;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {deliveries:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

pub fn all_have_status(deliveries: &[Delivery], count: usize, status: DeliveryStatus) -> bool {
    deliveries.len() == count && deliveries.iter().all(|d| d.status == status)
}
