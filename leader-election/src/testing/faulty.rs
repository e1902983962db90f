//! A store wrapper that injects faults: lost requests, lost replies, errors and latency.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Operation, Result};
use crate::store::{
    AcquireOutcome, LeaderInfo, Lease, LeaseRequest, LeaseStore, ReleaseReceiver, RenewOutcome,
};

/// The switches of a [`FaultyStore`], shared by its clones and changeable while it runs.
#[derive(Clone, Debug, Default)]
pub struct FaultControl {
    faults: Arc<Mutex<Faults>>,
    ops: Arc<AtomicU64>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Faults {
    partitioned: bool,
    drop_replies: bool,
    fail_next: u32,
    latency: Duration,
}

impl FaultControl {
    fn get(&self) -> Faults {
        *self
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    /// While set, requests never reach the backend and never answer (a network partition).
    pub fn set_partitioned(&self, partitioned: bool) {
        self.update(|f| f.partitioned = partitioned);
    }

    /// While set, requests reach the backend and take effect, but their replies never arrive
    /// (connecting is not affected).
    pub fn set_drop_replies(&self, drop: bool) {
        self.update(|f| f.drop_replies = drop);
    }

    /// The next `count` operations fail with a retryable backend error without reaching the
    /// backend.
    pub fn fail_next(&self, count: u32) {
        self.update(|f| f.fail_next = count);
    }

    /// One-way network delay added before and after every operation but connecting.
    pub fn set_latency(&self, latency: Duration) {
        self.update(|f| f.latency = latency);
    }

    /// Lifts every fault.
    pub fn heal(&self) {
        self.update(|f| *f = Faults::default());
    }

    /// Operations started through this control's stores so far.
    #[must_use]
    pub fn operations(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }
}

/// A [`LeaseStore`] that forwards to another one through the faults set on its
/// [`FaultControl`]. Every operation is counted.
#[derive(Clone, Debug)]
pub struct FaultyStore<S> {
    inner: S,
    control: FaultControl,
}

impl<S: LeaseStore> FaultyStore<S> {
    /// Wraps `inner`; faults are off until set on [`control`](Self::control).
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            control: FaultControl::default(),
        }
    }

    /// The switches of this store.
    #[must_use]
    pub fn control(&self) -> FaultControl {
        self.control.clone()
    }

    async fn call<T, Fut>(&self, operation: Operation, op: Fut) -> Result<T>
    where
        Fut: Future<Output = Result<T>>,
    {
        self.control.ops.fetch_add(1, Ordering::Relaxed);
        let mut faults = self.control.get();
        if operation == Operation::Connect {
            // Connecting writes nothing: only partitions and injected failures apply.
            faults.drop_replies = false;
            faults.latency = Duration::ZERO;
        }
        if !faults.latency.is_zero() {
            tokio::time::sleep(faults.latency).await;
        }
        if self.control.get().partitioned {
            std::future::pending::<()>().await;
        }
        if faults.fail_next > 0 {
            self.control
                .update(|f| f.fail_next = f.fail_next.saturating_sub(1));
            return Err(Error::backend(operation, true, "injected failure"));
        }
        let result = op.await;
        let after = self.control.get();
        if (faults.drop_replies && after.drop_replies) || after.partitioned {
            std::future::pending::<()>().await;
        }
        if !faults.latency.is_zero() {
            tokio::time::sleep(faults.latency).await;
        }
        result
    }
}

impl<S: LeaseStore> LeaseStore for FaultyStore<S> {
    fn election_name(&self) -> &str {
        self.inner.election_name()
    }

    fn check_metadata(&self, metadata: &[u8]) -> Result<()> {
        self.inner.check_metadata(metadata)
    }

    async fn connect(&self) -> Result<()> {
        self.call(Operation::Connect, self.inner.connect()).await
    }

    async fn try_acquire(&self, request: &LeaseRequest) -> Result<AcquireOutcome> {
        self.call(Operation::Acquire, self.inner.try_acquire(request))
            .await
    }

    async fn renew(&self, request: &LeaseRequest, lease: &Lease) -> Result<RenewOutcome> {
        self.call(Operation::Renew, self.inner.renew(request, lease))
            .await
    }

    async fn release(&self, request: &LeaseRequest, lease: &Lease) -> Result<bool> {
        self.call(Operation::Release, self.inner.release(request, lease))
            .await
    }

    async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
        self.call(Operation::CurrentLeader, self.inner.current_leader())
            .await
    }

    fn release_notifications(&self) -> Option<ReleaseReceiver> {
        self.inner.release_notifications()
    }

    async fn announce_candidate(&self, candidate: &crate::Candidate, ttl: Duration) -> Result<()> {
        self.call(
            Operation::AnnounceCandidate,
            self.inner.announce_candidate(candidate, ttl),
        )
        .await
    }

    async fn strongest_candidate(&self) -> Result<Option<crate::Candidate>> {
        self.call(
            Operation::StrongestCandidate,
            self.inner.strongest_candidate(),
        )
        .await
    }
}
