//! A store wrapper that injects faults: lost requests, lost replies, errors and latency.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Operation, Result};
use crate::store::LeaseStore;
use crate::store::layer::{Forward, StoreHooks};

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
/// [`FaultControl`]. Every operation is counted. A [`Forward`] whose hooks are the control.
pub type FaultyStore<S> = Forward<S, FaultControl>;

impl<S: LeaseStore> Forward<S, FaultControl> {
    /// Wraps `inner`; faults are off until set on [`control`](Self::control).
    pub fn new(inner: S) -> Self {
        Self::with_hooks(inner, FaultControl::default())
    }

    /// The switches of this store.
    #[must_use]
    pub fn control(&self) -> FaultControl {
        self.hooks().clone()
    }
}

impl StoreHooks for FaultControl {
    async fn around<'a, T: Send + 'a>(
        &'a self,
        operation: Operation,
        call: impl Future<Output = Result<T>> + Send + 'a,
    ) -> Result<T> {
        self.ops.fetch_add(1, Ordering::Relaxed);
        let mut faults = self.get();
        if operation == Operation::Connect {
            // Connecting writes nothing: only partitions and injected failures apply.
            faults.drop_replies = false;
            faults.latency = Duration::ZERO;
        }
        if !faults.latency.is_zero() {
            tokio::time::sleep(faults.latency).await;
        }
        if self.get().partitioned {
            std::future::pending::<()>().await;
        }
        if faults.fail_next > 0 {
            self.update(|f| f.fail_next = f.fail_next.saturating_sub(1));
            return Err(Error::backend(operation, true, "injected failure"));
        }
        let result = call.await;
        let after = self.get();
        if (faults.drop_replies && after.drop_replies) || after.partitioned {
            std::future::pending::<()>().await;
        }
        if !faults.latency.is_zero() {
            tokio::time::sleep(faults.latency).await;
        }
        result
    }
}
