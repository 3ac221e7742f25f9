//! The outbox's knobs: how many workers, how long a lease, how patient the retries.
//!
//! Purpose: one resolved [`OutboxConfig`] the service and its workers share.
//! Non-goal: reading files or the environment; the binary resolves its configuration and builds
//! this. Nor per-account values: an account's settings and its provider's preset come first
//! ([`crate::policy`]); the pace and Sent copy here are the fallback.
//! Key decision: the retry delay is exponential with jitter ([`OutboxConfig::retry_delay`]), so
//! messages that failed together (a provider outage) do not all come back in the same second.

use std::time::Duration;

use crate::rate::RateLimit;
use crate::sent_copy::SentCopy;
use crate::smtp::SmtpTimeouts;

/// How the outbox behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxConfig {
    /// Worker tasks claiming and sending items.
    pub workers: usize,
    /// Items one claim takes (sent one after the other by that worker).
    pub claim_batch: u32,
    /// How long a claim holds; a worker that dies leaves its items until then. A worker does not
    /// start an item with less than half of it left (it gives the item back instead).
    pub lease: Duration,
    /// How often idle workers look for due items (a submission wakes them at once).
    pub poll_interval: Duration,
    /// Attempts before a message that keeps failing for now is failed for good.
    pub max_attempts: u32,
    /// The first retry delay; it doubles with each attempt.
    pub backoff_base: Duration,
    /// The longest retry delay.
    pub backoff_max: Duration,
    /// The largest message accepted when the server's `SIZE` is not known yet.
    pub max_message_bytes: u64,
    /// The sending pace of an account that sets none and whose provider has no preset
    /// ([`crate::policy`]); `None` for no limit.
    pub rate_limit: Option<RateLimit>,
    /// Bounds of each SMTP wait.
    pub timeouts: SmtpTimeouts,
    /// The EHLO name; the local address as a literal when `None`.
    pub ehlo_name: Option<String>,
    /// How long an authenticated connection may wait in the pool for the account's next message.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per account. Keep it at `workers`: with fewer, a burst to one
    /// account drops the extra connections at check-in and logs in again for the next message.
    pub pool_max_idle: usize,
    /// Whether sent messages are also appended to the account's Sent mailbox, for accounts whose
    /// settings do not say.
    pub sent_copy: SentCopy,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            workers: 4,
            claim_batch: 4,
            lease: Duration::from_secs(10 * 60),
            poll_interval: Duration::from_secs(1),
            max_attempts: 8,
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(60 * 60),
            max_message_bytes: 25 * 1024 * 1024,
            rate_limit: None,
            timeouts: SmtpTimeouts::default(),
            ehlo_name: None,
            pool_idle_timeout: Duration::from_secs(60),
            pool_max_idle: 4,
            sent_copy: SentCopy::Auto,
        }
    }
}

impl OutboxConfig {
    /// The wait after attempt number `attempts` failed for now: `backoff_base` doubling per
    /// attempt, capped at `backoff_max`, plus up to one `backoff_base` of random jitter.
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(30);
        let exponential = self.backoff_base.saturating_mul(1u32 << exponent);
        let capped = exponential.min(self.backoff_max);
        let jitter_ms = u64::try_from(self.backoff_base.as_millis()).unwrap_or(u64::MAX);
        capped + Duration::from_millis(rand::random_range(0..=jitter_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_up_to_the_cap_with_bounded_jitter() {
        let config = OutboxConfig {
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(300),
            ..OutboxConfig::default()
        };
        for (attempts, floor) in [(1, 30), (2, 60), (3, 120), (4, 240), (5, 300), (99, 300)] {
            let delay = config.retry_delay(attempts);
            assert!(delay >= Duration::from_secs(floor), "{attempts}: {delay:?}");
            assert!(
                delay <= Duration::from_secs(floor + 30),
                "{attempts}: {delay:?}"
            );
        }
    }
}
