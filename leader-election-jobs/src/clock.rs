//! [`WallClock`]: where the scheduler reads the time of day.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Where a scheduler reads the time of day, to know when an occurrence is due.
///
/// Only *when* a run starts depends on it: whether an occurrence runs, and how many times,
/// is decided by the job's record on the backend (see the crate docs), so nodes whose clocks
/// differ never run an occurrence twice. Tests use [`WallClock::tokio`] to follow tokio's
/// paused time, with an offset per node to model clocks that differ.
#[derive(Clone)]
pub struct WallClock {
    inner: Arc<dyn Fn() -> SystemTime + Send + Sync>,
}

impl WallClock {
    /// The system's clock ([`SystemTime::now`]).
    #[must_use]
    pub fn system() -> Self {
        Self::from_fn(SystemTime::now)
    }

    /// A clock that reads `now`.
    pub fn from_fn(now: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        Self {
            inner: Arc::new(now),
        }
    }

    /// A clock that starts at `start` now and then follows tokio's clock
    /// ([`tokio::time::Instant`]), so that it advances with `tokio::time::pause`d time.
    #[must_use]
    pub fn tokio(start: SystemTime) -> Self {
        let origin = tokio::time::Instant::now();
        Self::from_fn(move || start + origin.elapsed())
    }

    /// This clock, `by` ahead of it (or behind, with [`behind`](Self::behind)).
    #[must_use]
    pub fn ahead(self, by: Duration) -> Self {
        Self::from_fn(move || self.now() + by)
    }

    /// This clock, `by` behind it.
    #[must_use]
    pub fn behind(self, by: Duration) -> Self {
        Self::from_fn(move || self.now() - by)
    }

    /// The time of day now.
    #[must_use]
    pub fn now(&self) -> SystemTime {
        (self.inner)()
    }
}

impl Default for WallClock {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for WallClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WallClock")
            .field("now", &self.now())
            .finish()
    }
}
