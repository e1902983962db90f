//! The memory backend: one store in this process, shared by every contender of the run (so
//! never by contenders in other processes); and the hidden `broken-memory`, the same store
//! broken so that it grants the lease to every asker, the tester's self-test.

use std::sync::LazyLock;

use leader_election::store::{
    AcquireOutcome, Capabilities, Lease, LeaseRequest, LeaseStore, RenewOutcome,
};
use leader_election::{BoxLeaseStore, LeaderElectionOptions, LeaderInfo, MemoryLeaseStore, Result};

use super::{Backend, BackendSpec};

/// `--backend memory`.
pub(crate) const MEMORY: Memory = Memory { broken: false };
/// `--backend broken-memory` (hidden).
pub(crate) const BROKEN_MEMORY: Memory = Memory { broken: true };

/// The one store of the run's contenders (a run per process).
static STORE: LazyLock<MemoryLeaseStore> = LazyLock::new(MemoryLeaseStore::new);

/// The memory backend, or (`broken`) its self-test.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Memory {
    broken: bool,
}

impl Backend for Memory {
    fn name(&self) -> &'static str {
        if self.broken {
            "broken-memory"
        } else {
            "memory"
        }
    }

    fn about(&self) -> &'static str {
        if self.broken {
            "A deliberately broken in-memory store that grants the lease to every asker: a \
             self-test showing that the tester catches two leaders (exits 1)"
        } else {
            "In this process's memory: needs no service (contenders must share the process)"
        }
    }

    fn hidden(&self) -> bool {
        self.broken
    }

    fn shared(&self) -> bool {
        false
    }

    fn open(
        &self,
        _spec: &BackendSpec,
        _options: &LeaderElectionOptions,
    ) -> Result<BoxLeaseStore, String> {
        let store = STORE.clone();
        Ok(if self.broken {
            BoxLeaseStore::new(BrokenStore(store))
        } else {
            BoxLeaseStore::new(store)
        })
    }

    fn reach(&self, _spec: &BackendSpec) -> Option<(String, &'static str)> {
        None
    }
}

/// An unsafe store for the tester's self-test: every acquisition takes the lease from whoever
/// holds it, and every renewal succeeds.
#[derive(Clone, Debug)]
struct BrokenStore(MemoryLeaseStore);

impl LeaseStore for BrokenStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }

    async fn try_acquire(&self, request: &LeaseRequest) -> Result<AcquireOutcome> {
        self.0.clear();
        self.0.try_acquire(request).await
    }

    async fn renew(&self, _request: &LeaseRequest, _lease: &Lease) -> Result<RenewOutcome> {
        Ok(RenewOutcome::Renewed)
    }

    async fn release(&self, request: &LeaseRequest, lease: &Lease) -> Result<bool> {
        self.0.release(request, lease).await
    }

    async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
        self.0.current_leader().await
    }
}
