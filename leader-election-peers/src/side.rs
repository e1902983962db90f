//! One side of the benchmark, and the one schedule every side runs: handovers, crashes, idle
//! followers, measured the same way.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::stats::Stats;
use crate::{Row, Settings};

/// A set of contenders of one election, driven by the schedule.
pub(crate) trait Contenders {
    /// Acquisitions as they happen: the contender and when its acquisition's answer came.
    fn elected(&mut self) -> &mut mpsc::UnboundedReceiver<(usize, Instant)>;

    /// The leader `slot` hands over (and stays a contender).
    async fn hand_over(&mut self, slot: usize);

    /// The leader `slot` stops talking to the server at once, as a crashed process would.
    /// Returns when it last sent a request that may extend its lease (answered or not).
    async fn crash(&mut self, slot: usize) -> Instant;

    /// Requests contender `slot` has sent so far.
    fn requests(&self, slot: usize) -> u64;

    /// Stops every contender.
    async fn stop(&mut self);
}

/// Waits (bounded) for the next acquisition by another contender than `old`.
pub(crate) async fn next_leader(
    elected: &mut mpsc::UnboundedReceiver<(usize, Instant)>,
    old: Option<usize>,
    within: Duration,
) -> (usize, Instant) {
    let until = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(until, elected.recv()).await {
            Ok(Some((slot, at))) if Some(slot) != old => return (slot, at),
            Ok(Some(_)) => {}
            Ok(None) => panic!("every contender is gone"),
            Err(_) => panic!("no new leader within {within:?}"),
        }
    }
}

/// Runs the schedule on `side`: `settings.handovers` handovers, `settings.crashes` crashes,
/// then the followers idle for `settings.idle`; a leader holds for `settings.hold` before each.
pub(crate) async fn measure(
    side: &mut impl Contenders,
    backend: &'static str,
    what: &str,
    settings: &Settings,
) -> Row {
    eprintln!("{backend}: {what}: {} handovers", settings.handovers);
    let (mut leader, _) = next_leader(side.elected(), None, Duration::from_secs(30)).await;
    let mut handovers = Vec::new();
    for _ in 0..settings.handovers {
        tokio::time::sleep(settings.hold).await;
        let t0 = Instant::now();
        side.hand_over(leader).await;
        let (next, at) = next_leader(side.elected(), Some(leader), Duration::from_secs(10)).await;
        handovers.push(at - t0);
        leader = next;
    }
    eprintln!("{backend}: {what}: {} crashes", settings.crashes);
    let mut failovers = Vec::new();
    for _ in 0..settings.crashes {
        tokio::time::sleep(settings.hold).await;
        let last = side.crash(leader).await;
        let (next, at) = next_leader(side.elected(), Some(leader), settings.lease * 5).await;
        failovers.push(at - last);
        leader = next;
    }
    eprintln!("{backend}: {what}: idle followers for {:?}", settings.idle);
    tokio::time::sleep(settings.hold).await;
    let before: Vec<u64> = (0..settings.contenders).map(|s| side.requests(s)).collect();
    tokio::time::sleep(settings.idle).await;
    let followers: u64 = (0..settings.contenders)
        .filter(|&s| s != leader)
        .map(|s| side.requests(s) - before[s])
        .sum();
    side.stop().await;
    let leases = settings.idle.as_secs_f64() / settings.lease.as_secs_f64();
    Row {
        backend,
        what: what.to_owned(),
        handover: Stats::of(&handovers),
        crash_failover: Stats::of(&failovers),
        lease: settings.lease,
        follower_requests_per_lease: followers as f64 / (settings.contenders - 1) as f64 / leases,
    }
}

/// What the schedule tells a peer's contender.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Order {
    /// Hand over the way the peer's users do (`Resign`, `unlock`), then contend again.
    HandOver,
    /// Stop talking to the server at once, as a crashed process; then come back as a new one.
    Crash,
}

/// What a peer's contenders share with the schedule.
#[derive(Debug)]
pub(crate) struct Shared {
    /// When each contender last sent a request that may extend its hold (a keep-alive, an
    /// extension, its acquisition), answered or not.
    pub(crate) last_sent: Mutex<Vec<Option<Instant>>>,
    /// Requests each contender sent.
    pub(crate) requests: Vec<AtomicU64>,
}

impl Shared {
    /// Counts `n` requests of contender `slot`.
    pub(crate) fn count(&self, slot: usize, n: u64) {
        self.requests[slot].fetch_add(n, Ordering::Relaxed);
    }

    /// Records that contender `slot` sent a request that may extend its hold, at `at`.
    pub(crate) fn sent(&self, slot: usize, at: Instant) {
        self.last_sent.lock().unwrap()[slot] = Some(at);
    }
}

/// A peer's contenders: one task each, told what to do by the schedule's orders.
#[derive(Debug)]
pub(crate) struct Peers {
    orders: Vec<mpsc::UnboundedSender<Order>>,
    tasks: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
    elected: mpsc::UnboundedReceiver<(usize, Instant)>,
}

impl Peers {
    /// Starts `contenders` tasks, contender `slot`'s being `contender(slot, shared, orders,
    /// elected)`; it reports each acquisition on `elected`.
    pub(crate) fn start<F, Fut>(contenders: usize, mut contender: F) -> Self
    where
        F: FnMut(
            usize,
            Arc<Shared>,
            mpsc::UnboundedReceiver<Order>,
            mpsc::UnboundedSender<(usize, Instant)>,
        ) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let shared = Arc::new(Shared {
            last_sent: Mutex::new(vec![None; contenders]),
            requests: (0..contenders).map(|_| AtomicU64::new(0)).collect(),
        });
        let (elected_tx, elected) = mpsc::unbounded_channel();
        let mut orders = Vec::new();
        let mut tasks = Vec::new();
        for slot in 0..contenders {
            let (tx, rx) = mpsc::unbounded_channel();
            orders.push(tx);
            tasks.push(tokio::spawn(contender(
                slot,
                Arc::clone(&shared),
                rx,
                elected_tx.clone(),
            )));
        }
        Self {
            orders,
            tasks,
            shared,
            elected,
        }
    }
}

impl Contenders for Peers {
    fn elected(&mut self) -> &mut mpsc::UnboundedReceiver<(usize, Instant)> {
        &mut self.elected
    }

    async fn hand_over(&mut self, slot: usize) {
        let _ = self.orders[slot].send(Order::HandOver);
    }

    async fn crash(&mut self, slot: usize) -> Instant {
        let last = self.shared.last_sent.lock().unwrap()[slot].expect("a request sent");
        let _ = self.orders[slot].send(Order::Crash);
        last
    }

    fn requests(&self, slot: usize) -> u64 {
        self.shared.requests[slot].load(Ordering::Relaxed)
    }

    async fn stop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
