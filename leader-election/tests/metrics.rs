//! Metrics recorded through the `metrics` facade (feature `metrics`).
#![cfg(feature = "metrics")]

mod common;

use std::time::Duration;

use common::{options, wait_for_role};
use leader_election::testing::FaultyStore;
use leader_election::{LeaderElection, MemoryLeaseStore, Role};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

type Entry = (String, Vec<(String, String)>, DebugValue);

fn value<'a>(
    snapshot: &'a [Entry],
    name: &str,
    label: Option<(&str, &str)>,
) -> Vec<&'a DebugValue> {
    snapshot
        .iter()
        .filter(|(n, labels, _)| {
            n == name && label.is_none_or(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| v)
        .collect()
}

#[test]
fn transitions_latencies_failures_and_leaderless_time_are_recorded() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(async {
                let memory = MemoryLeaseStore::new();
                let a_store = FaultyStore::new(memory.clone());
                let a_faults = a_store.control();
                let a = LeaderElection::new(a_store, options("a")).unwrap();
                let b = LeaderElection::new(memory.clone(), options("b")).unwrap();
                a.start().await.unwrap();
                wait_for_role(&a, Role::Leader).await;
                b.start().await.unwrap();
                wait_for_role(&b, Role::Follower).await;
                a_faults.fail_next(1);
                tokio::time::sleep(Duration::from_secs(25)).await;
                // a is cut off for good: b takes over after the lease expires.
                a_faults.set_partitioned(true);
                wait_for_role(&b, Role::Leader).await;
                b.stop().await.unwrap();
            });
    });
    let snapshot: Vec<_> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            (key.name().to_owned(), labels, value)
        })
        .collect();
    let sum_counters = |name, label| {
        value(&snapshot, name, label)
            .into_iter()
            .map(|v| match v {
                DebugValue::Counter(c) => *c,
                other => panic!("{name} is {other:?}"),
            })
            .sum::<u64>()
    };
    assert_eq!(
        sum_counters(
            "leader_election_transitions_total",
            Some(("transition", "acquired"))
        ),
        2
    );
    assert_eq!(
        sum_counters(
            "leader_election_transitions_total",
            Some(("transition", "lost"))
        ),
        1
    );
    assert_eq!(
        sum_counters(
            "leader_election_transitions_total",
            Some(("transition", "released"))
        ),
        1
    );
    assert!(sum_counters("leader_election_renew_failures_total", None) >= 2);
    let renewals = value(
        &snapshot,
        "leader_election_operation_duration_seconds",
        Some(("operation", "renew")),
    );
    assert!(
        matches!(renewals[..], [DebugValue::Histogram(h)] if h.len() >= 2),
        "{renewals:?}"
    );
    let gauges = value(&snapshot, "leader_election_is_leader", None);
    assert!(
        matches!(gauges[..], [DebugValue::Gauge(g)] if g.into_inner() == 0.0),
        "{gauges:?}"
    );
    let leaderless = value(&snapshot, "leader_election_leaderless_seconds", None);
    match leaderless[..] {
        [DebugValue::Histogram(h)] => {
            assert_eq!(h.len(), 1);
            let gap = h[0].into_inner();
            assert!(gap < 1.0, "leaderless for {gap} s as seen by the follower");
        }
        _ => panic!("{leaderless:?}"),
    }
}
