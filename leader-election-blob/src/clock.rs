//! The service's clock and the time budget of one operation: how fencing tokens are minted from
//! the `Date` of Azure's responses, and how one `operation_timeout` is shared by the several
//! requests of an acquisition.
//!
//! # Tokens
//! A token is `max(stored + 1, server seconds × 10⁶)`, where `stored` is the token in the
//! blob's metadata and the server seconds come from the `Date` header of a response of the
//! same acquisition (never from the local clock). `Date` has one-second resolution, so a token
//! minted in second `D` is at most `D × 10⁶ + n` for the `n`-th acquisition within that second:
//! below `(D + 1) × 10⁶` as long as fewer than a million acquisitions happen in one second.
//!
//! When the blob holds no readable counter (it was deleted, never existed, or its metadata was
//! overwritten), the service's clock is the only memory left. Every token minted before was
//! written before the response that showed the blob without a counter (the observation, with
//! `Date` = `D₀`), so it is below `(D₀ + 1) × 10⁶`. A token is then minted only from a `Date`
//! of at least `D₀ + 1`, read from a response showing the same blob version (same ETag, so that
//! nobody minted in between); the write is conditional on that ETag. The wait is at most about
//! a second, and only after the counter was lost.
//!
//! The residual assumption: the service's clock, as its `Date` headers show it, does not step
//! back. Where it stepped back by `s` seconds, a token minted without a counter within `s`
//! seconds of the last write before the loss could be lower than that write's token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use azure_core::http::Etag;
use azure_core::http::headers::{HeaderName, Headers};
use tokio::time::Instant;

/// Microseconds per second: tokens follow the service's clock in µs.
const MICROS: u64 = 1_000_000;
const DATE: HeaderName = HeaderName::from_static("date");
/// How much faster the local monotonic clock may run than the service's, in the wait for the
/// service's next second (2 %); a read afterwards confirms it anyway.
const RATE_SLACK: Duration = Duration::from_millis(20);
/// The shortest wait before reading again when the service's second has not turned yet.
const MIN_POLL: Duration = Duration::from_millis(50);

/// The `Date` of a response, in Unix seconds.
pub(crate) fn date_of(headers: &Headers) -> Option<u64> {
    let text = headers.get_optional_str(&DATE)?;
    let at = azure_core::time::parse_rfc7231(text).ok()?;
    u64::try_from(at.unix_timestamp()).ok()
}

/// The next token: above the stored one and the highest this process has seen, and at least
/// the service's time in µs. `None` on overflow.
pub(crate) fn next_token(stored: Option<u64>, seen: u64, server_secs: Option<u64>) -> Option<u64> {
    let counter = stored.unwrap_or(0).max(seen).checked_add(1)?;
    let clock = server_secs.map_or(0, |secs| secs.saturating_mul(MICROS));
    Some(counter.max(clock))
}

/// One operation's share of `operation_timeout`, and the latest service time its responses
/// showed. Every request of the operation gets what remains of one deadline.
#[derive(Debug)]
pub(crate) struct Budget {
    deadline: Instant,
    total: Duration,
    /// The latest `Date` seen, Unix seconds; 0 before any.
    latest_date: AtomicU64,
    /// The slowest request so far, in ns: a write is not started with less time left.
    slowest: AtomicU64,
}

impl Budget {
    /// A budget of `total`, ending 2 % early (at most 50 ms): the core's own timeout of the
    /// same length started a moment before this call, and the store's clean answer must come
    /// first.
    pub(crate) fn new(total: Duration) -> Self {
        let margin = (total / 50).min(Duration::from_millis(50));
        Self {
            deadline: Instant::now() + total - margin,
            total,
            latest_date: AtomicU64::new(0),
            slowest: AtomicU64::new(0),
        }
    }

    /// The whole budget, for messages.
    pub(crate) fn total(&self) -> Duration {
        self.total
    }

    pub(crate) fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Records a response (or an error response) that took `took`.
    pub(crate) fn saw(&self, headers: &Headers, took: Duration) {
        if let Some(secs) = date_of(headers) {
            self.latest_date.fetch_max(secs, Ordering::AcqRel);
        }
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.slowest.fetch_max(nanos, Ordering::AcqRel);
    }

    /// The latest service time seen, in Unix seconds.
    pub(crate) fn latest_date(&self) -> Option<u64> {
        Some(self.latest_date.load(Ordering::Acquire)).filter(|secs| *secs > 0)
    }

    fn slowest(&self) -> Duration {
        Duration::from_nanos(self.slowest.load(Ordering::Acquire))
    }

    /// Whether a write may still be started: at least as much time is left as the slowest
    /// request of this operation took, so that its answer is likely to arrive in time.
    pub(crate) fn room_for_write(&self) -> bool {
        self.left() > self.slowest()
    }

    /// Whether sleeping until `until` still leaves room for a read and a write.
    fn room_after(&self, until: Instant) -> bool {
        until + self.slowest() * 2 < self.deadline
    }
}

/// A response that showed the blob without a readable counter: its version and `Date`, and
/// when it arrived on the local monotonic clock.
#[derive(Clone, Debug)]
pub(crate) struct Observation {
    etag: Etag,
    date: u64,
    at: Instant,
}

impl Observation {
    pub(crate) fn new(etag: Etag, date: u64, at: Instant) -> Self {
        Self { etag, date, at }
    }
}

/// Whether a token may be minted over a blob version without a counter.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// The service's clock has passed the observation's second: mint.
    Open,
    /// Read again at this instant.
    WaitUntil(Instant),
    /// The response carried no `Date` or no ETag: nothing to mint from.
    Blind,
}

/// Decides over a read of a blob version without a counter (`etag`, answered with `date` at
/// `at`), keeping in `observed` the first observation of that version: a later read of the
/// same version may mint once its `Date` is past the observation's.
pub(crate) fn gate(
    observed: &mut Option<Observation>,
    etag: Option<&Etag>,
    date: Option<u64>,
    at: Instant,
) -> Gate {
    let (Some(etag), Some(date)) = (etag, date) else {
        return Gate::Blind;
    };
    let first = match observed {
        Some(seen) if seen.etag == *etag => seen,
        _ => observed.insert(Observation::new(etag.clone(), date, at)),
    };
    if date > first.date {
        return Gate::Open;
    }
    // The service's clock turns at most a second after the observation's answer left it.
    let turn = first.at + Duration::from_secs(1) + RATE_SLACK;
    Gate::WaitUntil(turn.max(Instant::now() + MIN_POLL))
}

/// Sleeps until `until` if the budget allows a read and a write afterwards; `false` if not.
pub(crate) async fn wait_within(budget: &Budget, until: Instant) -> bool {
    if !budget.room_after(until) {
        return false;
    }
    tokio::time::sleep_until(until).await;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_the_counter_and_the_service_clock() {
        // Server time dominates a small counter.
        assert_eq!(next_token(Some(7), 0, Some(10)), Some(10_000_000));
        // Several acquisitions within one second keep counting.
        assert_eq!(next_token(Some(10_000_000), 0, Some(10)), Some(10_000_001));
        // A service clock stepping back never lowers the token.
        assert_eq!(next_token(Some(10_000_001), 0, Some(9)), Some(10_000_002));
        // No counter: the clock alone; nothing at all: 1.
        assert_eq!(next_token(None, 0, Some(11)), Some(11_000_000));
        assert_eq!(next_token(None, 0, None), Some(1));
        // What this process saw is a floor too.
        assert_eq!(next_token(None, 42_000_000, Some(11)), Some(42_000_001));
        assert_eq!(next_token(Some(u64::MAX), 0, Some(1)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn minting_without_a_counter_waits_for_the_next_second() {
        let mut observed = None;
        let e1 = Etag::from("\"0x1\"");
        let t0 = Instant::now();
        // First sight of a version without a counter: wait for the service's next second.
        let wait = gate(&mut observed, Some(&e1), Some(100), t0);
        assert_eq!(
            wait,
            Gate::WaitUntil(t0 + Duration::from_secs(1) + RATE_SLACK)
        );
        // Same version, same second: still waiting, for the first observation's second.
        let later = t0 + Duration::from_millis(600);
        assert!(matches!(
            gate(&mut observed, Some(&e1), Some(100), later),
            Gate::WaitUntil(_)
        ));
        // Same version, next second: mint.
        assert_eq!(gate(&mut observed, Some(&e1), Some(101), later), Gate::Open);
        // Another version (deleted and created again) starts over, even in a later second.
        let e2 = Etag::from("\"0x2\"");
        assert!(matches!(
            gate(&mut observed, Some(&e2), Some(101), later),
            Gate::WaitUntil(_)
        ));
        assert_eq!(gate(&mut observed, Some(&e2), Some(102), later), Gate::Open);
        assert_eq!(gate(&mut observed, None, Some(102), later), Gate::Blind);
        assert_eq!(gate(&mut observed, Some(&e2), None, later), Gate::Blind);
    }

    #[tokio::test(start_paused = true)]
    async fn budget_is_shared_and_guards_writes() {
        let budget = Budget::new(Duration::from_secs(2));
        assert!(budget.room_for_write());
        let mut headers = Headers::new();
        headers.insert(DATE, "Tue, 01 Dec 2026 14:00:00 GMT");
        budget.saw(&headers, Duration::from_millis(800));
        assert_eq!(budget.latest_date(), Some(1_796_133_600));
        tokio::time::advance(Duration::from_millis(1100)).await;
        // 0.86 s left (the budget ends 40 ms early), and a request took 0.8 s: a write, not a
        // wait and then a read and a write.
        assert!(budget.room_for_write());
        assert!(!budget.room_after(Instant::now()));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(!budget.room_for_write());
        assert_eq!(budget.left(), Duration::from_millis(760));
    }
}
