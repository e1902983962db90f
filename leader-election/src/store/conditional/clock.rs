//! The arithmetic of expiry without a server-side lease: how long a follower watches one
//! version of the object before it may take it over, and how tokens are minted from the
//! service's clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The service's clock as a backend learns it from its responses (a `Date` header): the
/// latest time received, in whole seconds since the Unix epoch (0: none yet), which never moves
/// back. For [`ConditionalObjects::service_time`](super::ConditionalObjects::service_time).
#[derive(Debug, Default)]
pub struct ServiceClock(AtomicU64);

impl ServiceClock {
    /// The latest time received (0: none yet).
    #[must_use]
    pub fn latest(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// A response showed the service's clock at `secs` since the Unix epoch: the latest time
    /// moves forward to it (never back: the service's clock is assumed not to step back).
    pub fn saw(&self, secs: u64) {
        self.0.fetch_max(secs, Ordering::AcqRel);
    }
}

/// The margin a follower adds, as the leader subtracts it from its own deadline: the clock
/// drift rate applied to the lease, plus a fixed slack.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Margin {
    /// `clock_drift_rate` of the election options.
    pub(super) drift_rate: f64,
    /// `deadline_slack` of the election options.
    pub(super) slack: Duration,
}

impl Margin {
    /// How long a version holding a lease of `lease` must stay unchanged before a follower
    /// may take it over: `lease + lease * drift_rate + slack`.
    pub(super) fn watch_for(&self, lease: Duration) -> Duration {
        let rate = if self.drift_rate.is_finite() {
            self.drift_rate.clamp(0.0, 1.0)
        } else {
            1.0
        };
        lease
            .saturating_add(lease.mul_f64(rate))
            .saturating_add(self.slack)
    }
}

/// One version of the object as this store first saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Watch<V> {
    /// Its version; `None` for a missing object.
    pub(super) version: Option<V>,
    /// When the response first showing it arrived (monotonic).
    pub(super) since: Instant,
    /// The service's clock (`Date`, whole seconds) at that moment or later: the highest `Date`
    /// this store had received when it first saw the version.
    pub(super) date: u64,
}

impl<V> Watch<V> {
    /// How much longer a version holding a lease of `lease` must stay unchanged before it may be
    /// taken over: zero when it may be now.
    pub(super) fn remaining(&self, lease: Duration, margin: Margin, now: Instant) -> Duration {
        (self.since + margin.watch_for(lease)).saturating_duration_since(now)
    }
}

/// The next fencing token: greater than the token `previous` (the record's, when it can be
/// read) and than `floor` (the highest this store has seen), and at least the service's clock
/// `date` (whole seconds of a `Date` received before the write is sent) in microseconds.
/// `None` on overflow.
pub(super) fn next_token(previous: Option<u64>, floor: u64, date: u64) -> Option<u64> {
    let from_date = date.checked_mul(1_000_000)?;
    let after_previous = previous.unwrap_or(0).checked_add(1)?;
    let after_floor = floor.checked_add(1)?;
    Some(from_date.max(after_previous).max(after_floor))
}

/// Whether a token may be minted over a version whose record cannot be read (missing or
/// unreadable) and was first seen when the service's clock showed `seen_date`: only once a
/// `Date` of a later second (`latest_date`) has been received.
///
/// Every earlier token was minted from a `Date` of the second the object was deleted or
/// overwritten in, or before, plus at most one per acquisition since: below the next whole
/// second in microseconds unless a million acquisitions happened in one second. A token from a
/// later second's `Date` is therefore above all of them.
pub(super) fn clock_passed(seen_date: u64, latest_date: u64) -> bool {
    latest_date > seen_date
}

/// How long to wait after a version without a readable token was first received before the
/// service's `Date` can show a later second: the second it was in ends within one second, plus
/// a little for the clocks' rates.
pub(super) const DATE_WAIT: Duration = Duration::from_millis(1_050);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_clock_only_moves_forward() {
        let clock = ServiceClock::default();
        assert_eq!(clock.latest(), 0);
        clock.saw(1_796_153_841);
        clock.saw(1_796_153_840);
        assert_eq!(clock.latest(), 1_796_153_841);
    }

    const MARGIN: Margin = Margin {
        drift_rate: 0.01,
        slack: Duration::from_millis(100),
    };

    #[test]
    fn followers_watch_a_lease_plus_the_margin() {
        assert_eq!(
            MARGIN.watch_for(Duration::from_secs(10)),
            Duration::from_millis(10_200)
        );
        let nan = Margin {
            drift_rate: f64::NAN,
            slack: Duration::ZERO,
        };
        assert_eq!(
            nan.watch_for(Duration::from_secs(1)),
            Duration::from_secs(2)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_version_may_be_taken_over_only_after_the_whole_watch() {
        let watch = Watch {
            version: Some("e1"),
            since: Instant::now(),
            date: 100,
        };
        let lease = Duration::from_secs(2);
        assert_eq!(
            watch.remaining(lease, MARGIN, Instant::now()),
            Duration::from_millis(2_120)
        );
        tokio::time::advance(Duration::from_millis(2_119)).await;
        assert_eq!(
            watch.remaining(lease, MARGIN, Instant::now()),
            Duration::from_millis(1)
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            watch.remaining(lease, MARGIN, Instant::now()),
            Duration::ZERO
        );
    }

    #[test]
    fn tokens_exceed_the_previous_the_floor_and_follow_the_date() {
        assert_eq!(next_token(Some(5), 0, 0), Some(6));
        assert_eq!(next_token(None, 9, 0), Some(10));
        assert_eq!(next_token(Some(5), 0, 3), Some(3_000_000));
        assert_eq!(next_token(Some(3_000_000), 0, 3), Some(3_000_001));
        assert_eq!(next_token(Some(u64::MAX), 0, 1), None);
        assert_eq!(next_token(None, 0, u64::MAX), None);
    }

    #[test]
    fn a_token_over_a_lost_record_waits_for_a_later_second() {
        // A record deleted in second 100 held at most 100_000_000 + (acquisitions in that
        // second); the next second's Date is above it.
        assert!(!clock_passed(100, 100));
        assert!(clock_passed(100, 101));
        let lost = next_token(Some(99_999_999), 0, 100).unwrap() + 999;
        assert!(next_token(None, 0, 101).unwrap() > lost);
    }
}
