//! How eagerly tokens are refreshed and how patiently failures are retried.
//!
//! Non-goal: per-provider tuning; the defaults suit Google's and Microsoft's hour-long tokens.

use super::forecast::ForecastPolicy;
use std::time::Duration;

/// Timing of refreshes and retries.
#[derive(Clone, Debug)]
pub struct RefreshPolicy {
    /// Refresh a token this long before it expires.
    pub margin: Duration,
    /// Up to this much more, drawn per account by the background sweep, to spread refreshes out.
    pub jitter: Duration,
    /// The first back-off after a failed refresh; it doubles on each failure.
    pub backoff_base: Duration,
    /// The longest back-off.
    pub backoff_max: Duration,
    /// How long an account may go without a valid token (provider down) before it is marked `error`.
    pub grace: Duration,
    /// How often the background sweep looks for tokens to refresh.
    pub sweep_interval: Duration,
    /// The daily keep-alive and the expiry forecast.
    pub forecast: ForecastPolicy,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            margin: Duration::from_secs(5 * 60),
            jitter: Duration::from_secs(60),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(10 * 60),
            grace: Duration::from_secs(15 * 60),
            sweep_interval: Duration::from_secs(30),
            forecast: ForecastPolicy::default(),
        }
    }
}

impl RefreshPolicy {
    /// The wait before attempt number `failures + 1`: exponential, capped, plus up to one base of
    /// random jitter so accounts that failed together do not retry together.
    pub fn backoff(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(20);
        let exponential = self.backoff_base.saturating_mul(1u32 << exponent);
        let capped = exponential.min(self.backoff_max);
        let jitter_ms = u64::try_from(self.backoff_base.as_millis()).unwrap_or(u64::MAX);
        capped + Duration::from_millis(rand::random_range(0..=jitter_ms))
    }

    /// A random extra margin for one account, up to `jitter`.
    pub fn jittered_margin(&self) -> Duration {
        let jitter_ms = u64::try_from(self.jitter.as_millis()).unwrap_or(u64::MAX);
        self.margin + Duration::from_millis(rand::random_range(0..=jitter_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped_with_bounded_jitter() {
        let policy = RefreshPolicy {
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(30),
            ..RefreshPolicy::default()
        };
        for (failures, floor) in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 30), (40, 30)] {
            let wait = policy.backoff(failures);
            assert!(wait >= Duration::from_secs(floor), "{failures}: {wait:?}");
            assert!(
                wait <= Duration::from_secs(floor + 2),
                "{failures}: {wait:?}"
            );
        }
    }
}
