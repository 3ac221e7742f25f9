//! Per-account sending pace: a token bucket per account, in memory.
//!
//! Purpose: keep an account under its sending pace (its own setting, its provider's preset or the
//! outbox's default: [`crate::policy`]). A message over the pace is not failed: the worker gives
//! it back to the queue until the bucket has a token again.
//! Non-goal: daily limits, which must survive a restart (the `daily` module counts them from the
//! store). The buckets restart full with the process, which is harmless for a per-minute pace.
//! Key decisions:
//! - The limit is passed with each take rather than fixed per limiter, so an account whose
//!   setting changes is held to the new pace from its next message, its bucket kept.
//! - The bucket logic ([`Bucket::take`]) takes the current [`Instant`] as an argument, so its
//!   arithmetic is tested without sleeping.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use postern_store::AccountId;

/// How fast one account may send: `burst` messages at once, then one per `interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Messages that may go out back to back after a quiet period (at least 1).
    pub burst: u32,
    /// The time it takes to earn one more message.
    pub interval: Duration,
}

impl RateLimit {
    /// `per_minute` messages a minute, at most `burst` at once.
    pub fn per_minute(per_minute: u32, burst: u32) -> Self {
        RateLimit {
            burst,
            interval: Duration::from_secs(60) / per_minute.max(1),
        }
    }
}

/// One account's bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bucket {
    available: u32,
    /// When the last token was earned (or the bucket was last full).
    earned_at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn full(limit: &RateLimit, now: Instant) -> Self {
        Bucket {
            available: limit.burst.max(1),
            earned_at: now,
        }
    }

    /// Takes one token, or says how long until one is earned.
    pub(crate) fn take(&mut self, limit: &RateLimit, now: Instant) -> Result<(), Duration> {
        self.earn(limit, now);
        if self.available > 0 {
            self.available -= 1;
            return Ok(());
        }
        let since = now.saturating_duration_since(self.earned_at);
        Err(limit.interval.saturating_sub(since))
    }

    fn earn(&mut self, limit: &RateLimit, now: Instant) {
        let burst = limit.burst.max(1);
        if self.available >= burst || limit.interval.is_zero() {
            self.available = burst;
            self.earned_at = now;
            return;
        }
        let since = now.saturating_duration_since(self.earned_at);
        let earned = since.as_nanos() / limit.interval.as_nanos();
        let earned = u32::try_from(earned).unwrap_or(u32::MAX);
        if earned == 0 {
            return;
        }
        self.available = self.available.saturating_add(earned).min(burst);
        self.earned_at = if self.available == burst {
            now
        } else {
            self.earned_at + limit.interval * earned
        };
    }
}

/// The buckets of every account that has a pace.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    buckets: Mutex<HashMap<AccountId, Bucket>>,
}

impl RateLimiter {
    /// Takes a token for `account` under `limit`, or says how long to wait; always `Ok` without
    /// a limit.
    pub(crate) fn try_take(
        &self,
        account: &AccountId,
        limit: Option<&RateLimit>,
    ) -> Result<(), Duration> {
        let Some(limit) = limit else {
            return Ok(());
        };
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        buckets
            .entry(account.clone())
            .or_insert_with(|| Bucket::full(limit, now))
            .take(limit, now)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_burst_then_one_per_interval() {
        let limit = RateLimit {
            burst: 2,
            interval: SECOND,
        };
        let start = Instant::now();
        let mut bucket = Bucket::full(&limit, start);
        assert_eq!(bucket.take(&limit, start), Ok(()));
        assert_eq!(bucket.take(&limit, start), Ok(()));
        assert_eq!(bucket.take(&limit, start), Err(SECOND));
        let later = start + Duration::from_millis(400);
        assert_eq!(bucket.take(&limit, later), Err(Duration::from_millis(600)));
        assert_eq!(bucket.take(&limit, start + SECOND), Ok(()));
        assert!(bucket.take(&limit, start + SECOND).is_err());
    }

    #[test]
    fn a_quiet_period_refills_up_to_the_burst_only() {
        let limit = RateLimit {
            burst: 3,
            interval: SECOND,
        };
        let start = Instant::now();
        let mut bucket = Bucket::full(&limit, start);
        for _ in 0..3 {
            bucket.take(&limit, start).unwrap();
        }
        let much_later = start + 100 * SECOND;
        for _ in 0..3 {
            assert_eq!(bucket.take(&limit, much_later), Ok(()));
        }
        assert_eq!(bucket.take(&limit, much_later), Err(SECOND));
    }

    #[test]
    fn partial_refills_keep_the_remainder() {
        let limit = RateLimit {
            burst: 5,
            interval: SECOND,
        };
        let start = Instant::now();
        let mut bucket = Bucket::full(&limit, start);
        for _ in 0..5 {
            bucket.take(&limit, start).unwrap();
        }
        // 2.5 intervals: two tokens earned, half an interval towards the third.
        let at = start + Duration::from_millis(2500);
        assert_eq!(bucket.take(&limit, at), Ok(()));
        assert_eq!(bucket.take(&limit, at), Ok(()));
        assert_eq!(bucket.take(&limit, at), Err(Duration::from_millis(500)));
    }

    #[test]
    fn accounts_have_their_own_buckets_and_no_limit_means_no_wait() {
        let limiter = RateLimiter::default();
        let limit = RateLimit::per_minute(1, 1);
        let (a, b) = (AccountId::generate(), AccountId::generate());
        assert!(limiter.try_take(&a, Some(&limit)).is_ok());
        assert!(limiter.try_take(&a, Some(&limit)).is_err());
        assert!(limiter.try_take(&b, Some(&limit)).is_ok());
        for _ in 0..100 {
            assert!(limiter.try_take(&a, None).is_ok());
        }
    }

    #[test]
    fn a_changed_limit_applies_to_the_existing_bucket() {
        let limiter = RateLimiter::default();
        let account = AccountId::generate();
        let slow = RateLimit::per_minute(1, 1);
        assert!(limiter.try_take(&account, Some(&slow)).is_ok());
        let wait = limiter.try_take(&account, Some(&slow)).unwrap_err();
        assert!(wait > Duration::from_secs(59), "{wait:?}");
        // Raised to 6,000 a minute (one per 10 ms): the next token is at most 10 ms away.
        let fast = RateLimit::per_minute(6_000, 1);
        let wait = match limiter.try_take(&account, Some(&fast)) {
            Ok(()) => Duration::ZERO,
            Err(wait) => wait,
        };
        assert!(wait <= Duration::from_millis(10), "{wait:?}");
    }
}
