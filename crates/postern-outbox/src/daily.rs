//! Daily sending limits: at most N messages per account in any 24 hours, counted from the store.
//!
//! Purpose: before a send, [`DailyLimiter::reserve`] counts the account's sends of the last 24
//! hours in the store (`Outbox::count_sent_since`) and either lets the message go, holding a
//! [`Reservation`] for it, or says until when it must wait: when the oldest send that keeps the
//! account at its limit leaves the window. The worker gives a waiting message back to the queue
//! until then; it is neither failed nor charged an attempt.
//! Non-goal: the per-minute pace (the in-memory token bucket of [`crate::rate`] does that: it may
//! forget across a restart, a day's count may not).
//! Key decisions:
//! - The count comes from the store, so a restart (or a crash) forgets nothing.
//! - Sends in flight are counted too, or two workers with one item each could both see "one
//!   left". A per-account async lock is held from the count to the reservation, and a
//!   reservation is ended under the same lock once the outcome is recorded, so a count never
//!   misses a send that is neither in flight nor recorded yet.
//! - When only sends in flight fill the limit, the message is checked again shortly
//!   ([`IN_FLIGHT_RECHECK`]): they may fail and free their places. A worker that panicked
//!   mid-send keeps its place until the process restarts: the error is on the safe side.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use postern_store::{AccountId, Outbox, StoreError};

/// The window a daily limit counts: a rolling 24 hours, as Google and Microsoft count theirs.
pub const DAILY_WINDOW: TimeDelta = TimeDelta::hours(24);

/// How soon a message held back by sends still in flight is checked again.
pub const IN_FLIGHT_RECHECK: Duration = Duration::from_secs(1);

/// What the limit says about one more message.
#[derive(Debug)]
pub(crate) enum DailyCheck {
    /// Send it; end the reservation once its outcome is recorded.
    Go(Reservation),
    /// Not before this time.
    Wait(DateTime<Utc>),
}

/// A place held in an account's daily limit while its message is being sent.
#[derive(Debug)]
#[must_use = "a reservation holds a place in the daily limit until it is released"]
pub(crate) struct Reservation {
    /// The account's in-flight counter; `None` for an account without a daily limit.
    in_flight: Option<Arc<tokio::sync::Mutex<u32>>>,
}

impl Reservation {
    /// Ends the reservation: call it once the outcome is in the store (a recorded send is counted
    /// from there on).
    pub(crate) async fn release(self) {
        if let Some(in_flight) = self.in_flight {
            let mut count = in_flight.lock().await;
            *count = count.saturating_sub(1);
        }
    }
}

/// Where an account stands against its limit, from the store's count and the sends in flight.
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    /// There is room for one more.
    Room,
    /// Recorded sends fill the limit: wait until the `n`-th oldest of them (from 0) leaves the
    /// window.
    Full { nth_oldest: u64 },
    /// Only sends in flight fill it: look again shortly.
    FullInFlight,
}

fn standing(recorded: u64, in_flight: u32, limit: NonZeroU32) -> Standing {
    let limit = u64::from(limit.get());
    if recorded >= limit {
        Standing::Full {
            nth_oldest: recorded - limit,
        }
    } else if recorded + u64::from(in_flight) >= limit {
        Standing::FullInFlight
    } else {
        Standing::Room
    }
}

/// The in-flight sends of every account that has a daily limit.
#[derive(Debug, Default)]
pub(crate) struct DailyLimiter {
    in_flight: Mutex<HashMap<AccountId, Arc<tokio::sync::Mutex<u32>>>>,
}

impl DailyLimiter {
    fn counter(&self, account: &AccountId) -> Arc<tokio::sync::Mutex<u32>> {
        let mut counters = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counters.entry(account.clone()).or_default().clone()
    }

    /// Holds a place for one more message of `account`, or says until when it must wait.
    /// Without a limit, always a (free) place.
    pub(crate) async fn reserve(
        &self,
        outbox: &dyn Outbox,
        account: &AccountId,
        limit: Option<NonZeroU32>,
        now: DateTime<Utc>,
    ) -> Result<DailyCheck, StoreError> {
        let Some(limit) = limit else {
            return Ok(DailyCheck::Go(Reservation { in_flight: None }));
        };
        let counter = self.counter(account);
        let mut in_flight = counter.lock().await;
        let since = now - DAILY_WINDOW;
        let recorded = outbox.count_sent_since(account, since).await?;
        match standing(recorded, *in_flight, limit) {
            Standing::Room => {
                *in_flight += 1;
                drop(in_flight);
                Ok(DailyCheck::Go(Reservation {
                    in_flight: Some(counter),
                }))
            }
            Standing::Full { nth_oldest } => {
                let leaves = outbox
                    .nth_sent_since(account, since, nth_oldest)
                    .await?
                    .map(|sent_at| sent_at + DAILY_WINDOW);
                // `None`: those sends left the window between the two reads; look again soon.
                Ok(DailyCheck::Wait(leaves.unwrap_or_else(|| soon(now))))
            }
            Standing::FullInFlight => Ok(DailyCheck::Wait(soon(now))),
        }
    }
}

fn soon(now: DateTime<Utc>) -> DateTime<Utc> {
    now + TimeDelta::from_std(IN_FLIGHT_RECHECK).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn below_the_limit_there_is_room_counting_sends_in_flight() {
        assert_eq!(standing(0, 0, limit(3)), Standing::Room);
        assert_eq!(standing(1, 1, limit(3)), Standing::Room);
        assert_eq!(standing(2, 1, limit(3)), Standing::FullInFlight);
        assert_eq!(standing(0, 3, limit(3)), Standing::FullInFlight);
    }

    #[test]
    fn at_the_limit_the_wait_is_for_the_oldest_send_that_keeps_it_full() {
        assert_eq!(standing(3, 0, limit(3)), Standing::Full { nth_oldest: 0 });
        assert_eq!(standing(3, 2, limit(3)), Standing::Full { nth_oldest: 0 });
        // The limit was lowered to 3 after 5 sends: 3 of them must leave before the next one.
        assert_eq!(standing(5, 0, limit(3)), Standing::Full { nth_oldest: 2 });
    }
}
