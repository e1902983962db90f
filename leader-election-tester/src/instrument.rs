//! A [`LeaseStore`] wrapper that counts every call at the store boundary and reports each
//! confirmed acquisition or renewal and every release, so the tester knows a crashed leader's
//! last renewal and can bound each term tightly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use leader_election::{
    AcquireOutcome, LeaderInfo, Lease, LeaseRequest, LeaseStore, ReleaseReceiver, RenewOutcome,
    Result,
};
use tokio::time::Instant;

use crate::report::OpCounts;

/// What the store saw, reported as it happens (on the election loop's task, so before the
/// election publishes the event that follows from it).
#[derive(Clone, Copy, Debug)]
pub(crate) enum StoreEvent {
    /// An acquisition (`acquired`) or renewal sent at `sent` was confirmed at `returned`.
    Confirmed {
        /// When the request was sent.
        sent: Instant,
        /// When the answer came back.
        returned: Instant,
        /// An acquisition, else a renewal.
        acquired: bool,
    },
    /// A release is being sent now.
    Releasing(Instant),
}

/// Called with every [`StoreEvent`].
pub(crate) type OnConfirmed = Arc<dyn Fn(StoreEvent) + Send + Sync>;

#[derive(Debug, Default)]
struct Counters {
    connect: AtomicU64,
    acquire: AtomicU64,
    renew: AtomicU64,
    release: AtomicU64,
    current_leader: AtomicU64,
    candidate: AtomicU64,
}

/// Counts calls into `inner` and reports confirmations.
#[derive(Clone)]
pub(crate) struct Instrumented<S> {
    inner: S,
    counters: Arc<Counters>,
    on_confirmed: OnConfirmed,
}

impl<S> std::fmt::Debug for Instrumented<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrumented")
            .field("ops", &self.ops())
            .finish_non_exhaustive()
    }
}

impl<S> Instrumented<S> {
    /// Wraps `inner`; `on_confirmed` runs on every [`StoreEvent`].
    pub(crate) fn new(inner: S, on_confirmed: OnConfirmed) -> Self {
        Self {
            inner,
            counters: Arc::default(),
            on_confirmed,
        }
    }

    /// Calls made so far through this store and its clones.
    pub(crate) fn ops(&self) -> OpCounts {
        let c = &self.counters;
        OpCounts {
            connect: c.connect.load(Ordering::Relaxed),
            acquire: c.acquire.load(Ordering::Relaxed),
            renew: c.renew.load(Ordering::Relaxed),
            release: c.release.load(Ordering::Relaxed),
            current_leader: c.current_leader.load(Ordering::Relaxed),
            candidate: c.candidate.load(Ordering::Relaxed),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl<S: LeaseStore> LeaseStore for Instrumented<S> {
    fn election_name(&self) -> &str {
        self.inner.election_name()
    }

    fn check_metadata(&self, metadata: &[u8]) -> Result<()> {
        self.inner.check_metadata(metadata)
    }

    async fn connect(&self) -> Result<()> {
        bump(&self.counters.connect);
        self.inner.connect().await
    }

    async fn try_acquire(&self, request: &LeaseRequest) -> Result<AcquireOutcome> {
        bump(&self.counters.acquire);
        let sent = Instant::now();
        let outcome = self.inner.try_acquire(request).await;
        if let Ok(AcquireOutcome::Acquired(_)) = &outcome {
            (self.on_confirmed)(StoreEvent::Confirmed {
                sent,
                returned: Instant::now(),
                acquired: true,
            });
        }
        outcome
    }

    async fn renew(&self, request: &LeaseRequest, lease: &Lease) -> Result<RenewOutcome> {
        bump(&self.counters.renew);
        let sent = Instant::now();
        let outcome = self.inner.renew(request, lease).await;
        if let Ok(RenewOutcome::Renewed) = &outcome {
            (self.on_confirmed)(StoreEvent::Confirmed {
                sent,
                returned: Instant::now(),
                acquired: false,
            });
        }
        outcome
    }

    async fn release(&self, request: &LeaseRequest, lease: &Lease) -> Result<bool> {
        bump(&self.counters.release);
        (self.on_confirmed)(StoreEvent::Releasing(Instant::now()));
        self.inner.release(request, lease).await
    }

    async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
        bump(&self.counters.current_leader);
        self.inner.current_leader().await
    }

    fn release_notifications(&self) -> Option<ReleaseReceiver> {
        self.inner.release_notifications()
    }

    async fn announce_candidate(
        &self,
        candidate: &leader_election::Candidate,
        ttl: std::time::Duration,
    ) -> Result<()> {
        bump(&self.counters.candidate);
        self.inner.announce_candidate(candidate, ttl).await
    }

    async fn strongest_candidate(&self) -> Result<Option<leader_election::Candidate>> {
        bump(&self.counters.candidate);
        self.inner.strongest_candidate().await
    }
}
