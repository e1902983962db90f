//! A [`LeaseStore`](leader_election::LeaseStore) wrapper that counts every call at the store boundary and reports each
//! confirmed acquisition or renewal and every release, so the tester knows a crashed leader's
//! last renewal and can bound each term tightly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use leader_election::store::layer::{Forward, StoreHooks};
use leader_election::store::{AcquireOutcome, RenewOutcome};
use leader_election::{Operation, Result};
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
    /// A renewal is being sent now: confirmed or not, it may extend the lease on the server
    /// from this moment.
    Renewing(Instant),
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

/// Counts calls into the store it wraps and reports confirmations: the hooks of
/// [`Instrumented`]. Clones share the counts.
#[derive(Clone)]
pub(crate) struct Instrumentation {
    counters: Arc<Counters>,
    on_confirmed: OnConfirmed,
}

/// `S` counted and reported on by an [`Instrumentation`].
pub(crate) type Instrumented<S> = Forward<S, Instrumentation>;

/// Wraps `inner`; `on_confirmed` runs on every [`StoreEvent`].
pub(crate) fn instrumented<S>(inner: S, on_confirmed: OnConfirmed) -> Instrumented<S> {
    Forward::with_hooks(
        inner,
        Instrumentation {
            counters: Arc::default(),
            on_confirmed,
        },
    )
}

impl std::fmt::Debug for Instrumentation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrumentation")
            .field("ops", &self.ops())
            .finish_non_exhaustive()
    }
}

impl Instrumentation {
    /// Calls made so far through the stores sharing these counters.
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

impl StoreHooks for Instrumentation {
    fn started(&self, operation: Operation) {
        let c = &self.counters;
        let counter = match operation {
            Operation::Connect => &c.connect,
            Operation::Acquire => &c.acquire,
            Operation::Renew => {
                (self.on_confirmed)(StoreEvent::Renewing(Instant::now()));
                &c.renew
            }
            Operation::Release => {
                (self.on_confirmed)(StoreEvent::Releasing(Instant::now()));
                &c.release
            }
            Operation::CurrentLeader => &c.current_leader,
            Operation::AnnounceCandidate | Operation::StrongestCandidate => &c.candidate,
            // A new operation is counted nowhere until it has a counter.
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn acquired(&self, sent: Instant, outcome: Result<AcquireOutcome>) -> Result<AcquireOutcome> {
        if let Ok(AcquireOutcome::Acquired(_)) = &outcome {
            (self.on_confirmed)(StoreEvent::Confirmed {
                sent,
                returned: Instant::now(),
                acquired: true,
            });
        }
        outcome
    }

    fn renewed(&self, sent: Instant, outcome: Result<RenewOutcome>) -> Result<RenewOutcome> {
        if let Ok(RenewOutcome::Renewed) = &outcome {
            (self.on_confirmed)(StoreEvent::Confirmed {
                sent,
                returned: Instant::now(),
                acquired: false,
            });
        }
        outcome
    }
}
