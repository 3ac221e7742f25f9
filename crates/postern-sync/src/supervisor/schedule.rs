//! When things happen: reconnection back-off and the staggered start, as pure functions.
//!
//! Purpose: [`Backoff::delay`] (exponential, capped, with jitter) and [`stagger_delays`] (a start
//! offset per account), tested without a clock.
//! Non-goal: sleeping; the supervisor and the service do that.
//! Key decision: "equal jitter": the wait is half the exponential step plus a random share of the
//! other half. It never drops below half the step (no tight loops, however unlucky the draw), and
//! a thousand accounts that lost the same server do not come back in the same instant.

use std::time::Duration;

/// Exponential back-off between reconnection attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The step before the first retry.
    pub initial: Duration,
    /// The largest step.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(5 * 60),
        }
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (1 for the first), with `jitter` drawn from `[0, 1]`
    /// (clamped): between half the step and the whole step, where the step doubles per attempt
    /// from `initial` up to `max`.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let step = self
            .initial
            .saturating_mul(1u32 << doublings)
            .min(self.max.max(self.initial));
        let half = step / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// [`Backoff::delay`] with a random jitter.
    pub fn jittered(&self, attempt: u32) -> Duration {
        self.delay(attempt, rand::random::<f64>())
    }
}

/// The start offsets of `count` accounts spread evenly over `window`: the first starts at once,
/// the others `window / count` apart, the last before the window ends.
pub fn stagger_delays(count: usize, window: Duration) -> Vec<Duration> {
    (0..count)
        .map(|index| window.mul_f64(index as f64 / count as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn delays_double_up_to_the_cap_and_stay_between_half_and_whole_step() {
        let backoff = Backoff {
            initial: SECOND,
            max: 8 * SECOND,
        };
        assert_eq!(backoff.delay(1, 0.0), SECOND / 2);
        assert_eq!(backoff.delay(1, 1.0), SECOND);
        assert_eq!(backoff.delay(2, 1.0), 2 * SECOND);
        assert_eq!(backoff.delay(3, 0.5), 3 * SECOND);
        assert_eq!(backoff.delay(4, 1.0), 8 * SECOND);
        assert_eq!(backoff.delay(40, 1.0), 8 * SECOND);
        assert_eq!(backoff.delay(u32::MAX, 0.0), 4 * SECOND);
    }

    #[test]
    fn jitter_outside_the_unit_range_is_clamped() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay(1, -3.0), SECOND / 2);
        assert_eq!(backoff.delay(1, 7.0), SECOND);
        assert_eq!(backoff.delay(0, 1.0), SECOND);
    }

    #[test]
    fn random_jitter_stays_in_bounds() {
        let backoff = Backoff::default();
        for _ in 0..100 {
            let delay = backoff.jittered(3);
            assert!((2 * SECOND..=4 * SECOND).contains(&delay), "{delay:?}");
        }
    }

    #[test]
    fn a_max_below_the_initial_step_does_not_shrink_it() {
        let backoff = Backoff {
            initial: 4 * SECOND,
            max: SECOND,
        };
        assert_eq!(backoff.delay(5, 1.0), 4 * SECOND);
    }

    #[test]
    fn stagger_spreads_evenly_over_the_window() {
        assert!(stagger_delays(0, SECOND).is_empty());
        assert_eq!(stagger_delays(1, 10 * SECOND), [Duration::ZERO]);
        let delays = stagger_delays(4, 2 * SECOND);
        assert_eq!(
            delays,
            [Duration::ZERO, SECOND / 2, SECOND, SECOND + SECOND / 2]
        );
        assert_eq!(stagger_delays(3, Duration::ZERO), [Duration::ZERO; 3]);
    }
}
