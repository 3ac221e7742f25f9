//! When to try a failed delivery again, and when to give up.
//!
//! Purpose: exponential backoff with jitter, capped, inside a retry window that starts when the
//! delivery was queued (or redelivered).
//! Non-goal: classifying failures; every non-2xx answer and every network error is retried, since
//! a receiver's 4xx is as often a deploy in progress as a permanent refusal.
//! Key decision: the n-th retry waits a random time in `[d/2, d]` with `d = min(cap, base · 2^(n-1))`
//! ("equal jitter"): never less than half the exponential delay, so a struggling receiver gets
//! room, yet spread out, so a receiver that comes back is not hit by every webhook at once. The last
//! retry is pulled in to the end of the window rather than skipped, so a delivery is always tried
//! once more at its deadline before it is declared dead.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The backoff parameters and the retry window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The delay before the first retry (before jitter).
    pub base: Duration,
    /// The longest delay between two attempts.
    pub cap: Duration,
    /// How long after it was queued a delivery is still retried; then it is dead.
    pub max_age: Duration,
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1 for the first), with `jitter` in `[0, 1]` picking
    /// a point in `[d/2, d]`.
    pub fn delay(&self, retry: u32, jitter: f64) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        let exponential = self.base.saturating_mul(1 << doublings).min(self.cap);
        let jitter = jitter.clamp(0.0, 1.0);
        exponential.div_f64(2.0) + exponential.div_f64(2.0).mul_f64(jitter)
    }

    /// After a failed attempt at `now`, the delivery's `attempts`-th: when to try again, or `None`
    /// once the window that opened at `pending_since` is over.
    pub fn next_attempt(
        &self,
        attempts: u32,
        pending_since: DateTime<Utc>,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> Option<DateTime<Utc>> {
        let deadline = pending_since + chrono_duration(self.max_age);
        if now >= deadline {
            return None;
        }
        let retry_at = now + chrono_duration(self.delay(attempts, jitter));
        Some(retry_at.min(deadline))
    }
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(3600),
            max_age: Duration::from_secs(24 * 3600),
        }
    }

    #[test]
    fn delays_double_from_the_base_up_to_the_cap() {
        let p = policy();
        assert_eq!(p.delay(1, 1.0), Duration::from_secs(1));
        assert_eq!(p.delay(2, 1.0), Duration::from_secs(2));
        assert_eq!(p.delay(5, 1.0), Duration::from_secs(16));
        assert_eq!(p.delay(13, 1.0), Duration::from_secs(3600));
        assert_eq!(p.delay(1_000, 1.0), Duration::from_secs(3600));
    }

    #[test]
    fn jitter_spreads_a_delay_over_its_upper_half() {
        let p = policy();
        assert_eq!(p.delay(3, 0.0), Duration::from_secs(2));
        assert_eq!(p.delay(3, 0.5), Duration::from_secs(3));
        assert_eq!(p.delay(3, 1.0), Duration::from_secs(4));
        assert_eq!(p.delay(3, 7.0), Duration::from_secs(4), "clamped");
    }

    #[test]
    fn the_last_retry_lands_on_the_deadline_and_then_the_delivery_is_dead() {
        let p = policy();
        let queued = Utc::now();
        let late = queued + chrono::Duration::hours(23) + chrono::Duration::minutes(50);
        assert_eq!(
            p.next_attempt(20, queued, late, 1.0),
            Some(queued + chrono::Duration::hours(24))
        );
        let at_deadline = queued + chrono::Duration::hours(24);
        assert_eq!(p.next_attempt(21, queued, at_deadline, 1.0), None);
        let early = queued + chrono::Duration::seconds(1);
        assert_eq!(
            p.next_attempt(1, queued, early, 1.0),
            Some(early + chrono::Duration::seconds(1))
        );
    }
}
