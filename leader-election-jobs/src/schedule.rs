//! [`Schedule`]: when a job's occurrences are due, the same on every node.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// A due time: milliseconds since the Unix epoch, UTC. An occurrence of a job is named by its
/// due time, which every node computes alike from the [`Schedule`], whatever its clock says.
pub type Millis = u64;

/// When a job's occurrences are due.
///
/// Every node computes the same due times: a cron expression in a time zone, or a fixed
/// interval counted from the Unix epoch (so that "every 5 minutes" is due at :00, :05, ...
/// on every node, not 5 minutes after each node started).
///
/// ```
/// use std::time::Duration;
/// use leader_election_jobs::Schedule;
///
/// let nightly = Schedule::cron("0 30 2 * * *", "Europe/Paris")?; // 02:30:00 Paris time
/// let sync = Schedule::every(Duration::from_secs(30));
/// # let _ = (nightly, sync);
/// # Ok::<(), leader_election_jobs::ScheduleError>(())
/// ```
#[derive(Clone)]
pub struct Schedule {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Every { period: Millis, offset: Millis },
    Cron { cron: Box<Cron>, zone: Zone },
}

#[derive(Clone, Copy, Debug)]
enum Zone {
    Utc,
    Named(Tz),
}

/// A schedule that cannot be used: a cron expression or time zone that does not parse, or an
/// interval shorter than a millisecond.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(String);

impl Schedule {
    /// Due every `period`, at the multiples of `period` since the Unix epoch (UTC).
    ///
    /// # Panics
    /// When `period` is shorter than a millisecond: use [`try_every`](Self::try_every) for a
    /// period from configuration.
    #[must_use]
    pub fn every(period: Duration) -> Self {
        Self::try_every(period).expect("a period of at least one millisecond")
    }

    /// [`every`](Self::every), refusing a period shorter than a millisecond.
    ///
    /// # Errors
    /// A period shorter than a millisecond.
    pub fn try_every(period: Duration) -> Result<Self, ScheduleError> {
        let period = Millis::try_from(period.as_millis()).unwrap_or(Millis::MAX);
        if period == 0 {
            return Err(ScheduleError(
                "a job's period must be at least one millisecond".to_owned(),
            ));
        }
        Ok(Self {
            kind: Kind::Every { period, offset: 0 },
        })
    }

    /// The same interval, due `offset` after each multiple of the period (a job every hour at
    /// minute 10: `every(1 h).offset_by(10 min)`). The offset is taken modulo the period.
    #[must_use]
    pub fn offset_by(mut self, by: Duration) -> Self {
        if let Kind::Every { period, offset } = &mut self.kind {
            let by = Millis::try_from(by.as_millis()).unwrap_or(Millis::MAX);
            *offset = by % *period;
        }
        self
    }

    /// Due whenever the cron `expression` matches in time zone `zone` (an IANA name such as
    /// `"Europe/Paris"`, or `"UTC"`). Five fields (minute to day of week) or six (with seconds
    /// first), as [croner](https://docs.rs/croner) reads them. Daylight saving time is that of
    /// the zone: a time a change skips is due at the first time after the gap, and a time a
    /// change repeats is due once.
    ///
    /// # Errors
    /// An expression or a time zone that does not parse, with the parser's reason.
    pub fn cron(expression: &str, zone: &str) -> Result<Self, ScheduleError> {
        let cron = Cron::from_str(expression)
            .map_err(|e| ScheduleError(format!("cron expression {expression:?}: {e}")))?;
        let zone = if zone.eq_ignore_ascii_case("utc") {
            Zone::Utc
        } else {
            Zone::Named(
                zone.parse::<Tz>()
                    .map_err(|e| ScheduleError(format!("time zone {zone:?}: {e}")))?,
            )
        };
        Ok(Self {
            kind: Kind::Cron {
                cron: Box::new(cron),
                zone,
            },
        })
    }

    /// The first due time strictly after `after`, or `None` when the schedule has no more.
    #[must_use]
    pub fn next_after(&self, after: Millis) -> Option<Millis> {
        match &self.kind {
            Kind::Every { period, offset } => {
                // The first offset + k * period > after.
                let k = match after.checked_sub(*offset) {
                    Some(since) => since / period + 1,
                    None => 0,
                };
                k.checked_mul(*period)?.checked_add(*offset)
            }
            Kind::Cron { cron, zone } => {
                let from = to_utc(after)?;
                let next = match zone {
                    Zone::Utc => cron
                        .find_next_occurrence(&from, false)
                        .ok()
                        .map(|t| t.with_timezone(&Utc)),
                    Zone::Named(tz) => cron
                        .find_next_occurrence(&from.with_timezone(tz), false)
                        .ok()
                        .map(|t| t.with_timezone(&Utc)),
                }?;
                // A cron search works to the second: never answer a time not after `after`.
                let next = from_utc(&next)?;
                if next > after {
                    Some(next)
                } else {
                    self.next_after(after + 1)
                }
            }
        }
    }

    /// The latest due time at or before `at`, or `None` when there is none.
    #[must_use]
    pub fn latest_at_or_before(&self, at: Millis) -> Option<Millis> {
        match &self.kind {
            Kind::Every { period, offset } => {
                let since = at.checked_sub(*offset)?;
                Some(since / period * period + offset)
            }
            Kind::Cron { cron, zone } => {
                let from = to_utc(at)?;
                let previous = match zone {
                    Zone::Utc => cron
                        .find_previous_occurrence(&from, true)
                        .ok()
                        .map(|t| t.with_timezone(&Utc)),
                    Zone::Named(tz) => cron
                        .find_previous_occurrence(&from.with_timezone(tz), true)
                        .ok()
                        .map(|t| t.with_timezone(&Utc)),
                }?;
                from_utc(&previous).filter(|&p| p <= at)
            }
        }
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Every { period, offset } => f
                .debug_struct("Schedule::Every")
                .field("period_ms", period)
                .field("offset_ms", offset)
                .finish(),
            Kind::Cron { cron, zone } => f
                .debug_struct("Schedule::Cron")
                .field("expression", &cron.as_str())
                .field("zone", zone)
                .finish(),
        }
    }
}

fn to_utc(ms: Millis) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(i64::try_from(ms).ok()?).single()
}

fn from_utc(t: &DateTime<Utc>) -> Option<Millis> {
    Millis::try_from(t.timestamp_millis()).ok()
}

/// `time` as [`Millis`] (0 before the epoch; the far future saturates).
#[must_use]
pub fn millis(time: SystemTime) -> Millis {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| {
        Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
    })
}

/// [`Millis`] as a [`SystemTime`].
#[must_use]
pub fn system_time(ms: Millis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_due_at_multiples_of_the_period_since_the_epoch() {
        let s = Schedule::every(Duration::from_secs(5));
        assert_eq!(s.next_after(0), Some(5_000));
        assert_eq!(s.next_after(4_999), Some(5_000));
        assert_eq!(s.next_after(5_000), Some(10_000));
        assert_eq!(s.latest_at_or_before(9_999), Some(5_000));
        assert_eq!(s.latest_at_or_before(10_000), Some(10_000));
        let shifted = Schedule::every(Duration::from_secs(5)).offset_by(Duration::from_secs(7));
        assert_eq!(shifted.next_after(0), Some(2_000));
        assert_eq!(shifted.next_after(2_000), Some(7_000));
        assert_eq!(shifted.latest_at_or_before(1_999), None);
        assert!(Schedule::try_every(Duration::from_micros(10)).is_err());
    }

    #[test]
    fn cron_expressions_follow_their_time_zone() {
        // 2026-03-28 12:00:00 UTC; 02:30 Paris on the 29th does not exist (DST starts at
        // 02:00 -> 03:00): it runs at the first time after the gap, 03:00 CEST (01:00 UTC).
        let base = 1_774_699_200_000;
        let s = Schedule::cron("0 30 2 * * *", "Europe/Paris").unwrap();
        let next = s.next_after(base).unwrap();
        let t = to_utc(next).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-29T01:00:00+00:00");
        let after = to_utc(s.next_after(next).unwrap()).unwrap();
        assert_eq!(after.to_rfc3339(), "2026-03-30T00:30:00+00:00");
        // 2026-10-25: 02:30 Paris happens twice (03:00 CEST -> 02:00 CET); it runs once.
        let october = 1_792_843_200_000; // 2026-10-24 12:00:00 UTC
        let first = s.next_after(october).unwrap();
        let second = s.next_after(first).unwrap();
        assert_eq!(
            to_utc(first).unwrap().to_rfc3339(),
            "2026-10-25T00:30:00+00:00"
        );
        assert_eq!(
            to_utc(second).unwrap().to_rfc3339(),
            "2026-10-26T01:30:00+00:00"
        );
        assert_eq!(s.latest_at_or_before(next), Some(next));
        assert!(s.latest_at_or_before(next - 1).unwrap() < next);
        let utc = Schedule::cron("*/15 * * * *", "UTC").unwrap();
        assert_eq!(utc.next_after(base), Some(base + 15 * 60_000));
        assert_eq!(utc.next_after(base + 1), Some(base + 15 * 60_000));
    }

    #[test]
    fn bad_expressions_and_zones_say_why() {
        let e = Schedule::cron("61 * * * *", "UTC").unwrap_err().to_string();
        assert!(e.contains("61 * * * *"), "{e}");
        let e = Schedule::cron("* * * * *", "Mars/Olympus")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Mars/Olympus"), "{e}");
    }
}
