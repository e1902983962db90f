//! The jobs' metrics through the `metrics` facade (feature `metrics`).
#![cfg(feature = "metrics")]

use std::time::{Duration, SystemTime};

use leader_election::{LeaderElectionOptions, MemoryLeaseStore};
use leader_election_jobs::{Job, Schedule, Scheduler, WallClock};
use metrics_util::CompositeKey;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// Runs on one thread, so that the scheduler's tasks record to the recorder set for it.
#[tokio::test(start_paused = true)]
async fn runs_outcomes_durations_delays_and_the_next_due_time_are_recorded() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let recording = metrics::set_default_local_recorder(&recorder);
    let store = MemoryLeaseStore::new();
    let mut options = LeaderElectionOptions::default();
    options.instance_id = "a".into();
    options.lease_duration = Duration::from_secs(2);
    options.renew_interval = Duration::from_millis(500);
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_768_478_400);
    let odd = std::sync::atomic::AtomicU32::new(0);
    let scheduler = Scheduler::builder(move |_: &str| store.clone())
        .options(options)
        .clock(WallClock::tokio(start))
        .job(Job::new(
            "m",
            Schedule::every(Duration::from_secs(1)),
            move |_| {
                let n = odd.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if n.is_multiple_of(2) {
                        Ok(())
                    } else {
                        Err(std::io::Error::other("odd run"))
                    }
                }
            },
        ))
        .build()
        .unwrap();
    scheduler.start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    scheduler.stop().await.unwrap();
    drop(recording);
    let snapshot = snapshotter.snapshot().into_vec();
    let labelled = |key: &CompositeKey, label: &str, value: &str| {
        key.key()
            .labels()
            .any(|l| l.key() == label && l.value() == value)
    };
    let counter = |name: &str, outcome: &str| {
        snapshot
            .iter()
            .filter(|(key, ..)| {
                key.key().name() == name
                    && labelled(key, "job", "m")
                    && labelled(key, "outcome", outcome)
            })
            .map(|(.., v)| match v {
                DebugValue::Counter(c) => *c,
                other => panic!("{name} is {other:?}"),
            })
            .sum::<u64>()
    };
    let succeeded = counter("leader_election_job_runs_total", "succeeded");
    let failed = counter("leader_election_job_runs_total", "failed");
    assert!(
        succeeded >= 2 && failed >= 1,
        "{succeeded} succeeded, {failed} failed"
    );
    let histogram = |name: &str| {
        snapshot
            .iter()
            .find(|(key, ..)| key.key().name() == name)
            .map(|(.., v)| match v {
                DebugValue::Histogram(values) => values.len(),
                other => panic!("{name} is {other:?}"),
            })
            .unwrap_or(0)
    };
    assert_eq!(
        histogram("leader_election_job_run_seconds") as u64,
        succeeded + failed
    );
    assert!(histogram("leader_election_job_start_delay_seconds") as u64 >= succeeded + failed);
    let next_due = snapshot
        .iter()
        .find(|(key, ..)| key.key().name() == "leader_election_job_next_due_timestamp_seconds")
        .map(|(.., v)| v);
    match next_due {
        Some(DebugValue::Gauge(g)) => assert!(g.into_inner() > 1_768_478_400.0, "{g:?}"),
        other => panic!("next due: {other:?}"),
    }
}
