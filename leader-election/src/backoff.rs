//! The retry arithmetic of the election loop: exponential backoff with jitter, and the spacing
//! of renewal retries inside a lease. Pure functions of their inputs (and a random draw for the
//! jitter), unit-tested here.

use std::time::Duration;

use crate::options::LeaderElectionOptions;

/// Exponential backoff: `initial × factor^(failures − 1)`, capped at `max`, spread by ±`jitter`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    factor: f64,
    jitter: f64,
}

impl Backoff {
    /// The backoff the options ask for: from `retry_interval` up to `max_retry_interval`.
    pub(crate) fn from_options(options: &LeaderElectionOptions) -> Self {
        Self {
            initial: options.retry_interval,
            max: options.max_retry_interval,
            factor: options.retry_backoff_factor,
            jitter: options.retry_jitter,
        }
    }

    /// The delay before the next attempt after `failures` consecutive failures (at least one),
    /// without jitter.
    pub(crate) fn base(&self, failures: u32) -> Duration {
        let exponent = i32::try_from(failures.saturating_sub(1).min(64)).unwrap_or(64);
        let factor = self.factor.powi(exponent);
        let seconds = (self.initial.as_secs_f64() * factor).min(self.max.as_secs_f64());
        Duration::try_from_secs_f64(seconds).unwrap_or(self.max)
    }

    /// The delay before the next attempt after `failures` consecutive failures, with jitter.
    pub(crate) fn delay(&self, failures: u32) -> Duration {
        jittered(self.base(failures), self.jitter)
    }
}

/// `duration` spread by ±`jitter` (relative) at random.
pub(crate) fn jittered(duration: Duration, jitter: f64) -> Duration {
    let spread = (fastrand::f64() * 2.0 - 1.0) * jitter;
    duration.mul_f64((1.0 + spread).max(0.0))
}

/// How long to wait before the next renewal attempt after `failures` failed ones (fewer than
/// `max_attempts`), so that every remaining attempt — each allowed `timeout`, plus `slack` —
/// still completes before the deadline, `until_deadline` from now: the backoff delay, shortened
/// to the remaining time shared among the remaining attempts.
pub(crate) fn renew_retry_delay(
    backoff: Duration,
    until_deadline: Duration,
    timeout: Duration,
    slack: Duration,
    failures: u32,
    max_attempts: u32,
) -> Duration {
    let remaining = max_attempts.saturating_sub(failures).max(1);
    let budget = until_deadline.saturating_sub(timeout.saturating_add(slack)) / remaining;
    backoff.min(budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff(jitter: f64) -> Backoff {
        Backoff {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(40),
            factor: 2.0,
            jitter,
        }
    }

    #[test]
    fn grows_exponentially_up_to_the_cap() {
        let b = backoff(0.0);
        let delays: Vec<u64> = (1..=6).map(|n| b.base(n).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 40, 40]);
        assert_eq!(b.delay(3), Duration::from_secs(20));
    }

    #[test]
    fn zero_failures_count_as_one_and_huge_counts_stay_capped() {
        let b = backoff(0.0);
        assert_eq!(b.base(0), Duration::from_secs(5));
        assert_eq!(b.base(u32::MAX), Duration::from_secs(40));
        let steep = Backoff {
            factor: 3.0,
            max: crate::options::MAX_DURATION,
            ..b
        };
        assert_eq!(steep.base(u32::MAX), crate::options::MAX_DURATION);
    }

    #[test]
    fn jitter_stays_within_its_spread() {
        let b = backoff(0.1);
        for _ in 0..1000 {
            let d = b.delay(1).as_secs_f64();
            assert!((4.5..=5.5).contains(&d), "{d}");
        }
        assert_eq!(jittered(Duration::ZERO, 0.5), Duration::ZERO);
    }

    #[test]
    fn renew_retries_are_spaced_to_finish_before_the_deadline() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        // Plenty of time: the backoff itself.
        assert_eq!(renew_retry_delay(s(1), s(20), s(2), ms(100), 1, 3), s(1));
        // Little time: (10 s − 2.1 s) shared by the 2 attempts left.
        assert_eq!(
            renew_retry_delay(s(10), s(10), s(2), ms(100), 1, 3),
            ms(3950)
        );
        // No time left at all: retry at once.
        assert_eq!(renew_retry_delay(s(5), s(1), s(2), ms(100), 2, 3), s(0));
        // Never divides by zero.
        assert_eq!(renew_retry_delay(s(5), s(30), s(2), ms(0), 3, 3), s(5));
    }
}
