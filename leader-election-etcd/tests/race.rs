//! Many contenders racing for many terms on etcd: never two leaders at once, tokens strictly
//! increasing, graceful handovers through the watch.

use std::time::{Duration, Instant};

use leader_election::testing::TermRecorder;
use leader_election_test_support::etcd::election;
use leader_election_test_support::{EtcdCluster, eventually, lazy, unique_name};

const CONTENDERS: usize = 5;
const TERMS: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contenders_racing_for_many_terms_never_overlap() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("race");
    let elections: Vec<_> = (0..CONTENDERS)
        .map(|i| election(&etcd.endpoints(), &key, &format!("c{i}")))
        .collect();
    let recorder = TermRecorder::new();
    recorder.start_all(&elections).await.unwrap();
    let started = Instant::now();
    let mut handovers = Vec::new();
    while recorder.terms().len() < TERMS {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {} terms in 60 s",
            recorder.terms().len()
        );
        let mut leader = None;
        eventually(Duration::from_secs(5), "no leader", || {
            leader = elections.iter().position(|e| e.is_leader());
            leader.is_some()
        })
        .await;
        let leader = &elections[leader.unwrap_or_default()];
        // Meanwhile followers try to grab it: they must fail.
        for e in elections.iter().filter(|e| !e.is_leader()).take(2) {
            let _ = e.try_acquire_leadership().await;
        }
        let terms = recorder.terms().len();
        let stopped_at = Instant::now();
        leader.stop().await.unwrap();
        let successor = lazy(|| {
            let states: Vec<_> = elections.iter().map(|e| e.state()).collect();
            format!("a successor: {states:#?}\nrecord: {:#?}", recorder.terms())
        });
        eventually(Duration::from_secs(3), successor, || {
            recorder.terms().len() > terms
        })
        .await;
        handovers.push(stopped_at.elapsed());
        leader.start().await.unwrap();
        recorder.assert_safe();
    }
    for e in &elections {
        e.stop().await.unwrap();
    }
    recorder.assert_safe();
    handovers.sort();
    let p50 = handovers[handovers.len() / 2];
    let max = handovers[handovers.len() - 1];
    eprintln!(
        "{} terms, {CONTENDERS} contenders; stop() -> next term: p50 {p50:?}, max {max:?}",
        recorder.terms().len(),
    );
    // Graceful handovers go through the watch, not the lease expiry.
    assert!(p50 < Duration::from_millis(500), "p50 handover {p50:?}");
}
