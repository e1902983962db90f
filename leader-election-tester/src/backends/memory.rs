//! The memory backend: one store per election in this process, shared by every contender of
//! the run (so never by contenders in other processes); and the hidden `broken-memory`, the same store
//! broken so that it grants the lease to every asker, the tester's self-test.

use std::sync::LazyLock;

use leader_election::store::{Capabilities, Forward, ReleaseReceiver, RenewOutcome, StoreHooks};
use leader_election::{BoxLeaseStore, LeaderElectionOptions, MemoryLeaseStore, Operation, Result};
use tokio::time::Instant;

use super::{Backend, BackendSpec};

/// `--backend memory`.
pub(crate) const MEMORY: Memory = Memory { broken: false };
/// `--backend broken-memory` (hidden).
pub(crate) const BROKEN_MEMORY: Memory = Memory { broken: true };

/// The stores of the run's contenders, by election (a run per process).
static STORES: LazyLock<std::sync::Mutex<std::collections::HashMap<String, MemoryLeaseStore>>> =
    LazyLock::new(Default::default);

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
        spec: &BackendSpec,
        _options: &LeaderElectionOptions,
    ) -> Result<BoxLeaseStore, String> {
        // One store per election of this process (the run's, and each scheduled job's).
        let store = STORES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(spec.key.clone())
            .or_default()
            .clone();
        Ok(if self.broken {
            BoxLeaseStore::new(Forward::with_hooks(store.clone(), Broken(store)))
        } else {
            BoxLeaseStore::new(store)
        })
    }

    fn reach(&self, _spec: &BackendSpec) -> Option<(String, &'static str)> {
        None
    }
}

/// What makes the memory store unsafe for the tester's self-test: every acquisition takes the
/// lease from whoever holds it (the hooks clear the store, a handle to it, as the call starts),
/// every renewal succeeds, and it declares nothing and sends no release notice.
#[derive(Clone, Debug)]
struct Broken(MemoryLeaseStore);

impl StoreHooks for Broken {
    fn started(&self, operation: Operation) {
        if operation == Operation::Acquire {
            self.0.clear();
        }
    }

    fn renewed(&self, _sent: Instant, _outcome: Result<RenewOutcome>) -> Result<RenewOutcome> {
        Ok(RenewOutcome::Renewed)
    }

    fn capabilities(&self, _inner: Capabilities) -> Capabilities {
        Capabilities::none()
    }

    fn release_notifications(&self, _inner: Option<ReleaseReceiver>) -> Option<ReleaseReceiver> {
        None
    }
}
