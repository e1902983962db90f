//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leader_election::store::{AcquireOutcome, Capabilities, Lease, LeaseRequest, RenewOutcome};
use leader_election::{
    ChangeReason, ElectionEvent, FencingToken, LeaderElection, LeaderElectionOptions, LeaderInfo,
    LeaseStore, MemoryLeaseStore, Role,
};
use tokio::time::Instant;

/// Options with the given id and the documented defaults otherwise.
pub fn options(id: &str) -> LeaderElectionOptions {
    let mut options = LeaderElectionOptions::default();
    options.instance_id = id.to_owned();
    options
}

/// Waits (on virtual time) until `election` has `role`; returns when.
pub async fn wait_for_role<S: LeaseStore>(election: &LeaderElection<S>, role: Role) -> Instant {
    let mut rx = election.watch();
    tokio::time::timeout(Duration::from_secs(3600), rx.wait_for(|s| s.role == role))
        .await
        .unwrap_or_else(|_| panic!("{} never became {role:?}", election.instance_id()))
        .expect("state channel closed");
    Instant::now()
}

/// One leadership change as received, with the virtual time it was received.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub at: Instant,
    pub is_leader: bool,
    pub token: FencingToken,
    pub reason: ChangeReason,
}

/// Records every event of an election, with receive times.
#[derive(Clone, Default)]
pub struct Recorder {
    pub changes: Arc<Mutex<Vec<Change>>>,
    pub errors: Arc<Mutex<Vec<(Instant, leader_election::Error)>>>,
    pub observed: Arc<Mutex<Vec<Option<String>>>>,
}

impl Recorder {
    pub fn attach<S: LeaseStore>(election: &LeaderElection<S>) -> Self {
        let recorder = Self::default();
        let mut events = election.subscribe();
        let r = recorder.clone();
        tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                let at = Instant::now();
                match event {
                    ElectionEvent::LeadershipChanged {
                        is_leader,
                        token,
                        reason,
                        ..
                    } => r.changes.lock().unwrap().push(Change {
                        at,
                        is_leader,
                        token,
                        reason,
                    }),
                    ElectionEvent::Error(err) => r.errors.lock().unwrap().push((at, err)),
                    ElectionEvent::LeaderObserved { leader } => r
                        .observed
                        .lock()
                        .unwrap()
                        .push(leader.map(|l| l.instance_id)),
                    _ => {}
                }
            }
        });
        recorder
    }

    pub fn changes(&self) -> Vec<Change> {
        self.changes.lock().unwrap().clone()
    }

    pub fn error_times(&self) -> Vec<Instant> {
        self.errors
            .lock()
            .unwrap()
            .iter()
            .map(|(t, _)| *t)
            .collect()
    }
}

/// Lets spawned tasks run without moving virtual time.
pub async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A store that checks, at release, that leader work has already stopped.
#[derive(Clone)]
pub struct ReleaseOrderCheck {
    pub inner: MemoryLeaseStore,
    pub work_running: Arc<AtomicBool>,
    pub released_while_working: Arc<AtomicBool>,
}

impl ReleaseOrderCheck {
    /// A memory store that records whether a release came while work was running.
    pub fn new() -> Self {
        Self {
            inner: MemoryLeaseStore::new(),
            work_running: Arc::new(AtomicBool::new(false)),
            released_while_working: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl LeaseStore for ReleaseOrderCheck {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }
    async fn try_acquire(&self, r: &LeaseRequest) -> leader_election::Result<AcquireOutcome> {
        self.inner.try_acquire(r).await
    }
    async fn renew(&self, r: &LeaseRequest, l: &Lease) -> leader_election::Result<RenewOutcome> {
        self.inner.renew(r, l).await
    }
    async fn release(&self, r: &LeaseRequest, l: &Lease) -> leader_election::Result<bool> {
        if self.work_running.load(Ordering::SeqCst) {
            self.released_while_working.store(true, Ordering::SeqCst);
        }
        self.inner.release(r, l).await
    }
    async fn current_leader(&self) -> leader_election::Result<Option<LeaderInfo>> {
        self.inner.current_leader().await
    }
}

pub struct SetOnDrop(pub Arc<AtomicBool>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// A store with a bug: renewing panics.
#[derive(Clone, Default)]
pub struct PanicOnRenew(pub MemoryLeaseStore);

impl LeaseStore for PanicOnRenew {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }
    async fn try_acquire(&self, r: &LeaseRequest) -> leader_election::Result<AcquireOutcome> {
        self.0.try_acquire(r).await
    }
    async fn renew(&self, _: &LeaseRequest, _: &Lease) -> leader_election::Result<RenewOutcome> {
        panic!("backend bug");
    }
    async fn release(&self, r: &LeaseRequest, l: &Lease) -> leader_election::Result<bool> {
        self.0.release(r, l).await
    }
    async fn current_leader(&self) -> leader_election::Result<Option<LeaderInfo>> {
        self.0.current_leader().await
    }
}
