//! Property-style safety check: contenders sharing one store, under many random schedules of
//! faults, never both lead at any instant, and tokens grow with every term.

mod common;

use std::time::Duration;

use common::options;
use leader_election::store::{AcquireOutcome, Capabilities, Lease, LeaseRequest, RenewOutcome};
use leader_election::testing::{
    FaultControl, FaultyStore, Term, TermRecorder, assert_safe, overlaps,
};
use leader_election::{
    LeaderElection, LeaderElectionOptions, LeaderInfo, LeaseStore, MemoryLeaseStore,
};
use tokio::time::Instant;

fn fast_options(id: &str) -> LeaderElectionOptions {
    let mut o = options(id);
    o.lease_duration = Duration::from_secs(3);
    o.renew_interval = Duration::from_secs(1);
    o.retry_interval = Duration::from_millis(300);
    o.max_retry_interval = Duration::from_secs(3);
    o.operation_timeout = Some(Duration::from_millis(500));
    o.shutdown_timeout = Duration::from_millis(200);
    o
}

struct Contender<S: LeaseStore> {
    store: FaultyStore<S>,
    election: Option<LeaderElection<FaultyStore<S>>>,
    recorder: TermRecorder,
    id: String,
}

impl<S: LeaseStore + Clone> Contender<S> {
    fn control(&self) -> FaultControl {
        self.store.control()
    }

    fn spawn_new(&mut self, generation: usize) {
        // Each incarnation is a contender of its own: a restarted process must not overlap
        // its previous life either.
        let o = fast_options(&format!("{}-{generation}", self.id));
        let election = LeaderElection::new(self.store.clone(), o).unwrap();
        self.recorder.attach(&election);
        self.election = Some(election);
    }
}

/// Runs one random schedule; returns every term seen.
async fn scenario<S: LeaseStore + Clone>(seed: u64, backend: S) -> Vec<Term> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let n = rng.usize(2..=5);
    let mut contenders: Vec<Contender<S>> = (0..n)
        .map(|i| Contender {
            store: FaultyStore::new(backend.clone()),
            election: None,
            recorder: TermRecorder::new(),
            id: format!("c{i}"),
        })
        .collect();
    for c in &mut contenders {
        c.spawn_new(0);
        c.election.as_ref().unwrap().start().await.unwrap();
    }
    let end = Instant::now() + Duration::from_secs(120);
    let mut generation = 1;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(rng.u64(0..2500))).await;
        let c = &mut contenders[rng.usize(..n)];
        let control = c.control();
        let fault_for = Duration::from_millis(rng.u64(100..6000));
        match rng.u8(0..10) {
            0 => {
                control.set_partitioned(true);
                tokio::spawn(async move {
                    tokio::time::sleep(fault_for).await;
                    control.set_partitioned(false);
                });
            }
            1 => {
                control.set_drop_replies(true);
                tokio::spawn(async move {
                    tokio::time::sleep(fault_for).await;
                    control.set_drop_replies(false);
                });
            }
            2 => control.fail_next(rng.u32(1..5)),
            3 => {
                control.set_latency(Duration::from_millis(rng.u64(1..700)));
                tokio::spawn(async move {
                    tokio::time::sleep(fault_for).await;
                    control.set_latency(Duration::ZERO);
                });
            }
            4 => {
                if let Some(e) = &c.election {
                    let _ = e.stop().await;
                }
            }
            5 => {
                if let Some(e) = &c.election {
                    e.start().await.unwrap();
                }
            }
            6 => {
                // A crash: the handle goes away without releasing; a new process starts later.
                c.election = None;
                c.spawn_new(generation);
                generation += 1;
                let e = c.election.clone().unwrap();
                tokio::spawn(async move {
                    tokio::time::sleep(fault_for).await;
                    e.start().await.unwrap();
                });
            }
            7 => {
                if let Some(e) = &c.election {
                    let _ = e.try_acquire_leadership().await;
                }
            }
            8 => {
                if let Some(e) = &c.election {
                    let _ = e.resign(fault_for).await;
                }
            }
            _ => {}
        }
    }
    for c in &contenders {
        c.control().heal();
        if let Some(e) = &c.election {
            let _ = e.stop().await;
        }
    }
    // Let the recorders see the last events.
    tokio::time::sleep(Duration::from_millis(1)).await;
    contenders.iter().flat_map(|c| c.recorder.terms()).collect()
}

fn run<S: LeaseStore + Clone>(seed: u64, backend: S) -> Vec<Term> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(scenario(seed, backend))
}

#[test]
fn no_two_contenders_ever_lead_at_once() {
    let mut terms = 0;
    for seed in 0..150 {
        let intervals = run(seed, MemoryLeaseStore::new());
        assert_safe(&intervals);
        assert!(
            intervals.len() >= 3,
            "seed {seed}: only {} terms",
            intervals.len()
        );
        terms += intervals.len();
    }
    assert!(terms > 1500, "the schedules exercised only {terms} terms");
}

/// A backend whose clock runs 10 % fast: its leases expire before the time asked for, far
/// beyond the 1 % the default margin allows for.
#[derive(Clone, Debug, Default)]
struct FastClockStore(MemoryLeaseStore);

impl FastClockStore {
    fn shorten(request: &LeaseRequest) -> LeaseRequest {
        let mut request = request.clone();
        request.ttl = request.ttl.mul_f64(0.9);
        request
    }
}

impl LeaseStore for FastClockStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }
    async fn try_acquire(&self, r: &LeaseRequest) -> leader_election::Result<AcquireOutcome> {
        self.0.try_acquire(&Self::shorten(r)).await
    }
    async fn renew(&self, r: &LeaseRequest, l: &Lease) -> leader_election::Result<RenewOutcome> {
        self.0.renew(&Self::shorten(r), l).await
    }
    async fn release(&self, r: &LeaseRequest, l: &Lease) -> leader_election::Result<bool> {
        self.0.release(r, l).await
    }
    async fn current_leader(&self) -> leader_election::Result<Option<LeaderInfo>> {
        self.0.current_leader().await
    }
}

/// The property check has teeth: break the clock-rate assumption and it finds two leaders.
#[test]
fn a_backend_clock_faster_than_the_margin_allows_is_caught() {
    let caught = (0..150).any(|seed| !overlaps(&run(seed, FastClockStore::default())).is_empty());
    assert!(
        caught,
        "no overlap found even though leases expire 10 % early"
    );
}
