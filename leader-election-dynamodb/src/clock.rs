//! The arithmetic of expiry without a server-side lease: how long a follower watches one
//! version of the item before it may take it over, and how tokens are minted from the
//! service's `Date`.
//!
//! DynamoDB has no lease (its TTL deletes expired items lazily, up to days later: no expiry a
//! contender could rely on). A follower takes a lease over only after it has seen the same
//! version (the item's version attribute) unchanged for a whole lease plus the drift margin,
//! measured on its own monotonic clock from when it *received* that version, and then only with
//! a condition on that version, so that any write in between (a renewal) makes the takeover
//! fail.

use std::time::Duration;

use tokio::time::Instant;

/// The margin a follower adds, as the leader subtracts it from its own deadline: the clock
/// drift rate applied to the lease, plus a fixed slack.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Margin {
    /// `clock_drift_rate` of the election options.
    pub(crate) drift_rate: f64,
    /// `deadline_slack` of the election options.
    pub(crate) slack: Duration,
}

impl Margin {
    /// How long a version holding a lease of `lease` must stay unchanged before a follower
    /// may take it over: `lease + lease * drift_rate + slack`.
    pub(crate) fn watch_for(&self, lease: Duration) -> Duration {
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

/// What tells two versions of the item apart: its version attribute, a fresh random value in
/// every write of this crate; for an item without one (written by somebody else), a
/// fingerprint of its whole content, prefixed so that it never equals a version attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Version(pub(crate) String);

impl Version {
    pub(crate) fn new(version: impl Into<String>) -> Self {
        Self(version.into())
    }
}

/// One version of the item as this store first saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Watch {
    /// Its version (see [`Version`]); `None` for a missing item.
    pub(crate) version: Option<Version>,
    /// When the response first showing it arrived (monotonic).
    pub(crate) since: Instant,
    /// The service's clock (`Date`, whole seconds) at that moment or later: the highest `Date`
    /// this store had received when it first saw the version.
    pub(crate) date: u64,
}

impl Watch {
    /// How much longer a version holding a lease of `lease` must stay unchanged before it may be
    /// taken over: zero when it may be now.
    pub(crate) fn remaining(&self, lease: Duration, margin: Margin, now: Instant) -> Duration {
        (self.since + margin.watch_for(lease)).saturating_duration_since(now)
    }
}

/// The next fencing token: greater than the token `previous` (the record's, when it can be
/// read) and than `floor` (the highest this store has seen), and at least the service's clock
/// `date` (whole seconds of a `Date` received before the write is sent) in microseconds.
/// `None` on overflow.
pub(crate) fn next_token(previous: Option<u64>, floor: u64, date: u64) -> Option<u64> {
    let from_date = date.checked_mul(1_000_000)?;
    let after_previous = previous.unwrap_or(0).checked_add(1)?;
    let after_floor = floor.checked_add(1)?;
    Some(from_date.max(after_previous).max(after_floor))
}

/// Whether a token may be minted over a version whose record cannot be read (missing or
/// unreadable) and was first seen when the service's clock showed `seen_date`: only once a
/// `Date` of a later second (`latest_date`) has been received.
///
/// Every earlier token was minted from a `Date` of the second the item was deleted or
/// overwritten in, or before, plus at most one per acquisition since: below the next whole
/// second in microseconds unless a million acquisitions happened in one second. A token from a
/// later second's `Date` is therefore above all of them.
pub(crate) fn clock_passed(seen_date: u64, latest_date: u64) -> bool {
    latest_date > seen_date
}

/// How long to wait after a version without a readable token was first received before the
/// service's `Date` can show a later second: the second it was in ends within one second, plus
/// a little for the clocks' rates.
pub(crate) const DATE_WAIT: Duration = Duration::from_millis(1_050);

#[cfg(test)]
mod tests {
    use super::*;

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
            version: Some(Version::new("e1")),
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
