//! The resolved settings of webhook delivery.
//!
//! Purpose: one plain struct the binary fills from its configuration (`[webhooks]` in
//! `postern.toml`, `POSTERN_WEBHOOKS_*`) and tests fill with tiny delays.
//! Non-goal: parsing files or the environment; the binary does that.
//! Key decision: every time is a `Duration` field with a documented default, so a test can shrink
//! backoff and retry window to milliseconds and exercise death and retries in real time.

use std::time::Duration;

use crate::retry::RetryPolicy;

/// How webhooks are delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Allow targets on loopback, private and other internal addresses (default `false`; see
    /// `ssrf.rs`). Config `webhooks.allow_private_targets`, env `POSTERN_WEBHOOKS_ALLOW_PRIVATE`.
    pub allow_private_targets: bool,
    /// How long one delivery attempt may take, connect to last response byte (default 10 s).
    pub request_timeout: Duration,
    /// Backoff before the first retry (default 1 s); it doubles for each further retry.
    pub backoff_base: Duration,
    /// The longest backoff (default 1 h).
    pub backoff_cap: Duration,
    /// How long a delivery is retried before it is marked dead (default 24 h).
    pub max_age: Duration,
    /// How often workers look at the event log without being poked (default 1 s). Appenders poke
    /// the shared `Notify`, so this only bounds the latency of an append that forgot to.
    pub poll_interval: Duration,
    /// How many events or deliveries a worker reads per query (default 256).
    pub batch_size: u32,
    /// How many requests one webhook may have in flight, each for a different account (default
    /// 4; 1 sends strictly one event after the other, in event-id order).
    pub max_in_flight: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow_private_targets: false,
            request_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60 * 60),
            max_age: Duration::from_secs(24 * 60 * 60),
            poll_interval: Duration::from_secs(1),
            batch_size: 256,
            max_in_flight: 4,
        }
    }
}

impl WebhookConfig {
    /// The retry policy these settings describe.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: self.backoff_base,
            cap: self.backoff_cap,
            max_age: self.max_age,
        }
    }
}
