//! The scheduler on the memory store, on tokio's paused time: the shared check with skewed
//! clocks, and each policy (bounds on a run, interrupted runs, missed occurrences, records
//! that cannot be used, stores without records).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use leader_election::store::{Capabilities, Forward, StoreHooks};
use leader_election::testing::FaultyStore;
use leader_election::{LeaderElectionOptions, LeaseStore, MemoryLeaseStore};
use leader_election_jobs::testing::{JobsCheckOptions, RunLog, each_occurrence_runs_once};
use leader_election_jobs::{
    CatchUp, Job, JobEvent, JobsError, OnInterrupted, Outcome, Schedule, Scheduler, WallClock,
};
use tokio::sync::broadcast;

/// A date far from any daylight saving change: 2026-01-15 12:00:00 UTC.
fn start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_768_478_400)
}

fn options(id: &str) -> LeaderElectionOptions {
    let mut o = LeaderElectionOptions::default();
    o.instance_id = id.to_owned();
    o.lease_duration = Duration::from_secs(2);
    o.renew_interval = Duration::from_millis(500);
    o.retry_interval = Duration::from_millis(200);
    o.max_retry_interval = Duration::from_secs(1);
    o
}

/// One memory store per election name, shared by every node.
#[derive(Clone, Default)]
struct Stores(Arc<Mutex<HashMap<String, MemoryLeaseStore>>>);

impl Stores {
    fn get(&self, name: &str) -> MemoryLeaseStore {
        self.0
            .lock()
            .unwrap()
            .entry(name.to_owned())
            .or_default()
            .clone()
    }
}

/// The next event matching `pick`, within `within` of tokio's (paused) time.
async fn next_event<T>(
    events: &mut broadcast::Receiver<JobEvent>,
    within: Duration,
    mut pick: impl FnMut(&JobEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(within, async {
        loop {
            let event = events.recv().await.expect("events");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no such event within {within:?}"))
}

#[tokio::test(start_paused = true)]
async fn three_nodes_with_skewed_clocks_run_each_occurrence_once() {
    let stores = Stores::default();
    let mut check = JobsCheckOptions::new(options("unused"), Duration::from_millis(500));
    check.clock = WallClock::tokio(start());
    // Node 2 is 1.2 s ahead of node 0: more than two periods.
    check.skew = Duration::from_millis(600);
    let report = each_occurrence_runs_once(
        |name| {
            let stores = stores.clone();
            async move { stores.get(&name) }
        },
        &check,
    )
    .await;
    for (job, verdict) in &report.jobs {
        assert!(verdict.occurrences >= 12, "{job}: {verdict:?}");
    }
}

fn scheduler_with(
    stores: &Stores,
    id: &str,
    clock: WallClock,
    job: Job,
) -> Scheduler<MemoryLeaseStore> {
    let stores = stores.clone();
    Scheduler::builder(move |job: &str| stores.get(job))
        .options(options(id))
        .clock(clock)
        .job(job)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_run_past_lock_at_most_for_is_cancelled_and_the_next_occurrence_runs() {
    let stores = Stores::default();
    let job = Job::new("slow", Schedule::every(Duration::from_secs(1)), |_| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<(), std::io::Error>(())
    })
    .lock_at_most_for(Duration::from_millis(300));
    let node = scheduler_with(&stores, "a", WallClock::tokio(start()), job);
    let mut events = node.subscribe();
    node.start().await.unwrap();
    let (due, took) = next_event(&mut events, Duration::from_secs(10), |e| match e {
        JobEvent::Finished {
            due,
            took,
            outcome: Outcome::TimedOut,
            ..
        } => Some((*due, *took)),
        _ => None,
    })
    .await;
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(400),
        "{took:?}"
    );
    let next = next_event(&mut events, Duration::from_secs(10), |e| match e {
        JobEvent::Started { due, .. } => Some(*due),
        _ => None,
    })
    .await;
    assert_eq!(next.duration_since(due).unwrap(), Duration::from_secs(1));
    node.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_run_interrupted_by_a_crash_is_given_up_or_retried_once_by_the_next_leader() {
    for policy in [OnInterrupted::Skip, OnInterrupted::RetryOnce] {
        let stores = Stores::default();
        let log = RunLog::new();
        let clock = WallClock::tokio(start());
        let job = |id: &str| {
            log.job(
                "long",
                Schedule::every(Duration::from_secs(5)),
                id,
                clock.clone(),
                Duration::from_secs(3),
            )
            .on_interrupted(policy)
        };
        let a = scheduler_with(&stores, "a", clock.clone(), job("a"));
        a.start().await.unwrap();
        let b = scheduler_with(&stores, "b", clock.clone(), job("b"));
        let mut events = b.subscribe();
        b.start().await.unwrap();
        // `a` started first, leads, and starts the first run: crash in the middle of it.
        let started = async {
            while log.count("long") == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), started)
            .await
            .unwrap();
        let first = log.runs()[0].clone();
        assert_eq!(first.node, "a");
        a.crash();
        let retried = next_event(&mut events, Duration::from_secs(10), |e| match e {
            JobEvent::Interrupted {
                due,
                attempt: 1,
                retried,
                ..
            } if *due == leader_election_jobs::system_time(first.due) => Some(*retried),
            _ => None,
        })
        .await;
        assert_eq!(retried, policy == OnInterrupted::RetryOnce, "{policy:?}");
        if retried {
            let attempt = next_event(&mut events, Duration::from_secs(10), |e| match e {
                JobEvent::Started { attempt, due, .. }
                    if *due == leader_election_jobs::system_time(first.due) =>
                {
                    Some(*attempt)
                }
                _ => None,
            })
            .await;
            assert_eq!(attempt, 2);
        }
        // The next occurrence runs on `b`, once.
        let due = next_event(&mut events, Duration::from_secs(20), |e| match e {
            JobEvent::Finished {
                due,
                outcome: Outcome::Succeeded,
                attempt: 1,
                ..
            } => Some(*due),
            _ => None,
        })
        .await;
        assert!(due > leader_election_jobs::system_time(first.due));
        b.stop().await.unwrap();
        let verdict = log.verdict("long", &Schedule::every(Duration::from_secs(5)));
        assert!(
            verdict.duplicates.is_empty() && verdict.lost.is_empty(),
            "{verdict:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn occurrences_missed_while_every_node_was_down_follow_the_catch_up_policy() {
    for (policy, expected_runs) in [(CatchUp::Skip, 0), (CatchUp::Once, 1), (CatchUp::Each, 10)] {
        let stores = Stores::default();
        let log = RunLog::new();
        let clock = WallClock::tokio(start());
        let period = Schedule::every(Duration::from_secs(1));
        let job = log
            .job("tick", period.clone(), "a", clock.clone(), Duration::ZERO)
            .catch_up(policy)
            .late_within(Duration::from_secs(3));
        let a = scheduler_with(&stores, "a", clock.clone(), job.clone());
        a.start().await.unwrap();
        while log.count("tick") < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        a.stop().await.unwrap();
        let last_before = log.runs().last().unwrap().due;
        // Every node down for 12.5 s from just after the occurrence due at D: with 3 s of
        // grace, D + 1 s ... D + 9 s are missed, D + 10 s ... D + 12 s are late.
        tokio::time::sleep(Duration::from_millis(12_500)).await;
        let mut events = a.subscribe();
        a.start().await.unwrap();
        let missed = next_event(&mut events, Duration::from_secs(5), |e| match e {
            JobEvent::Missed { count, .. } => Some(*count),
            _ => None,
        });
        let runs_before = log.count("tick");
        if policy == CatchUp::Each {
            // No event: each runs.
            while log.count("tick") < runs_before + 12 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        } else {
            assert_eq!(missed.await, if policy == CatchUp::Skip { 9 } else { 8 });
            while log.count("tick") < runs_before + expected_runs + 2 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        a.stop().await.unwrap();
        let after: Vec<u64> = log
            .runs()
            .iter()
            .map(|r| r.due)
            .filter(|&d| d > last_before)
            .collect();
        // The first occurrences after the outage, in order, each once.
        let mut due = last_before;
        let mut wanted = Vec::new();
        for i in 0..(expected_runs + 2) {
            due += 1000;
            if policy == CatchUp::Once && i == 0 {
                due += 8000;
            }
            if policy == CatchUp::Skip && i == 0 {
                due += 9000;
            }
            wanted.push(due);
        }
        assert_eq!(&after[..wanted.len()], &wanted[..], "{policy:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn leadership_lost_mid_run_cancels_the_run() {
    let memory = MemoryLeaseStore::new();
    let faulty = FaultyStore::new(memory.clone());
    let control = faulty.control();
    let log = RunLog::new();
    let clock = WallClock::tokio(start());
    let job = log.job(
        "long",
        Schedule::every(Duration::from_secs(5)),
        "a",
        clock.clone(),
        Duration::from_secs(4),
    );
    let a = Scheduler::builder(move |_: &str| faulty.clone())
        .options(options("a"))
        .clock(clock.clone())
        .job(job)
        .build()
        .unwrap();
    let mut events = a.subscribe();
    a.start().await.unwrap();
    next_event(&mut events, Duration::from_secs(10), |e| {
        matches!(e, JobEvent::Started { .. }).then_some(())
    })
    .await;
    control.set_partitioned(true);
    let outcome = next_event(&mut events, Duration::from_secs(10), |e| match e {
        JobEvent::Finished { outcome, took, .. } => Some((outcome.clone(), *took)),
        _ => None,
    })
    .await;
    assert_eq!(outcome.0, Outcome::LeadershipLost);
    assert!(outcome.1 < Duration::from_secs(2), "{:?}", outcome.1);
    control.heal();
    a.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_record_this_scheduler_did_not_write_stops_the_job_and_says_why() {
    let stores = Stores::default();
    stores
        .get("odd")
        .write_record(None, b"not json")
        .await
        .unwrap()
        .unwrap();
    let log = RunLog::new();
    let clock = WallClock::tokio(start());
    let job = log.job(
        "odd",
        Schedule::every(Duration::from_secs(1)),
        "a",
        clock.clone(),
        Duration::ZERO,
    );
    let a = scheduler_with(&stores, "a", clock, job);
    let mut events = a.subscribe();
    a.start().await.unwrap();
    let reason = next_event(&mut events, Duration::from_secs(5), |e| match e {
        JobEvent::RecordUnusable { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains("not json"), "{reason}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(log.count("odd"), 0);
    a.stop().await.unwrap();
}

/// The memory store, declaring no records.
#[derive(Clone, Copy, Default)]
struct NoRecords;

impl StoreHooks for NoRecords {
    fn capabilities(&self, inner: Capabilities) -> Capabilities {
        inner.with_records(0)
    }
}

#[test]
fn a_store_without_records_is_refused_when_the_scheduler_is_built() {
    let err = Scheduler::builder(|_: &str| Forward::with_hooks(MemoryLeaseStore::new(), NoRecords))
        .job(Job::new(
            "x",
            Schedule::every(Duration::from_secs(1)),
            |_| async { Ok::<(), std::io::Error>(()) },
        ))
        .build()
        .unwrap_err();
    assert!(matches!(err, JobsError::NoRecords { .. }), "{err}");
    let err = Scheduler::builder(|_: &str| MemoryLeaseStore::new())
        .job(Job::new(
            "x",
            Schedule::every(Duration::from_secs(1)),
            |_| async { Ok::<(), std::io::Error>(()) },
        ))
        .job(Job::new(
            "x",
            Schedule::every(Duration::from_secs(2)),
            |_| async { Ok::<(), std::io::Error>(()) },
        ))
        .build()
        .unwrap_err();
    assert!(matches!(err, JobsError::DuplicateJob(_)), "{err}");
    let _ = LeaseStore::capabilities(&MemoryLeaseStore::new());
}

#[tokio::test(start_paused = true)]
async fn spread_jobs_go_to_several_nodes_and_each_occurrence_still_runs_once() {
    let stores = Stores::default();
    let log = RunLog::new();
    let clock = WallClock::tokio(start());
    let every = Schedule::every(Duration::from_millis(500));
    let names: Vec<String> = (0..6).map(|i| format!("job-{i}")).collect();
    let mut nodes = Vec::new();
    for id in ["a", "b", "c"] {
        let stores = stores.clone();
        let mut builder = Scheduler::builder(move |job: &str| stores.get(job))
            .options(options(id))
            .clock(clock.clone())
            .spread();
        for name in &names {
            builder = builder.job(log.job(name, every.clone(), id, clock.clone(), Duration::ZERO));
        }
        let node = builder.build().unwrap();
        node.start().await.unwrap();
        nodes.push(node);
        // The first node takes every job; the later ones take their share over.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let leaders = |nodes: &[Scheduler<MemoryLeaseStore>]| {
        nodes
            .iter()
            .map(|n| {
                names
                    .iter()
                    .filter(|j| n.election(j).unwrap().is_leader())
                    .count()
            })
            .collect::<Vec<_>>()
    };
    tokio::time::timeout(Duration::from_secs(30), async {
        while leaders(&nodes).iter().filter(|&&n| n > 0).count() < 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the jobs stayed on {:?}", leaders(&nodes)));
    tokio::time::sleep(Duration::from_secs(5)).await;
    for node in &nodes {
        node.stop().await.unwrap();
    }
    for name in &names {
        let verdict = log.verdict(name, &every);
        assert!(
            verdict.duplicates.is_empty() && verdict.lost.is_empty(),
            "{name}: {verdict:?}"
        );
    }
}

/// The memory store, losing the replies of the first `n` record writes (they take effect).
#[derive(Clone, Default)]
struct LostWriteReplies(Arc<std::sync::atomic::AtomicU32>);

impl StoreHooks for LostWriteReplies {
    async fn around<'a, T: Send + 'a>(
        &'a self,
        operation: leader_election::Operation,
        call: impl std::future::Future<Output = leader_election::Result<T>> + Send + 'a,
    ) -> leader_election::Result<T> {
        {
            let result = call.await;
            let lose = operation == leader_election::Operation::WriteRecord
                && self
                    .0
                    .fetch_update(
                        std::sync::atomic::Ordering::SeqCst,
                        std::sync::atomic::Ordering::SeqCst,
                        |n| n.checked_sub(1),
                    )
                    .is_ok();
            if lose {
                return Err(leader_election::Error::outcome_unknown(
                    operation,
                    "the reply was lost",
                ));
            }
            result
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_claim_or_an_end_whose_reply_was_lost_is_resolved_by_reading_the_record() {
    // The first write claims the first occurrence, the second records its end: both replies
    // lost. The occurrence still runs once, and the next ones follow, none interrupted.
    let memory = MemoryLeaseStore::new();
    let lost = LostWriteReplies(Arc::new(2.into()));
    let store = Forward::with_hooks(memory.clone(), lost.clone());
    let log = RunLog::new();
    let clock = WallClock::tokio(start());
    let every = Schedule::every(Duration::from_secs(1));
    let job = log.job("flaky", every.clone(), "a", clock.clone(), Duration::ZERO);
    let a = Scheduler::builder(move |_: &str| store.clone())
        .options(options("a"))
        .clock(clock)
        .job(job)
        .build()
        .unwrap();
    let mut events = a.subscribe();
    a.start().await.unwrap();
    let mut interrupted = 0;
    let finished = tokio::time::timeout(Duration::from_secs(20), async {
        let mut finished = 0;
        while finished < 4 {
            match events.recv().await.unwrap() {
                JobEvent::Finished { .. } => finished += 1,
                JobEvent::Interrupted { .. } => interrupted += 1,
                _ => {}
            }
        }
        finished
    })
    .await
    .unwrap();
    a.stop().await.unwrap();
    assert_eq!(finished, 4);
    assert_eq!(interrupted, 0);
    assert_eq!(
        lost.0.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "replies were lost"
    );
    let verdict = log.verdict("flaky", &every);
    assert!(
        verdict.duplicates.is_empty() && verdict.lost.is_empty() && verdict.occurrences >= 4,
        "{verdict:?}"
    );
}
