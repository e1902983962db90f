//! Many contenders racing for many terms: never two leaders at once.

use std::time::{Duration, Instant};

use leader_election::testing::TermRecorder;
use leader_election_test_support::redis::{self as support, election};
use leader_election_test_support::{eventually, lazy, unique_name};

const CONTENDERS: usize = 6;
const TERMS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contenders_racing_for_many_terms_never_overlap() {
    let server = support::server().await;
    let key = unique_name("race");
    let elections: Vec<_> = (0..CONTENDERS)
        .map(|i| election(&server.url(), &key, &format!("c{i}")))
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
        // Wait for a leader, let it lead a little, then hand over.
        let mut leader = None;
        eventually(Duration::from_secs(5), "no leader", || {
            leader = elections.iter().position(|e| e.is_leader());
            leader.is_some()
        })
        .await;
        let leader = &elections[leader.unwrap_or_default()];
        tokio::time::sleep(Duration::from_millis(fastrand_ms(60))).await;
        // Meanwhile a follower or two try to grab it: they must fail.
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
        "{} terms, {} contenders; stop() -> next term: p50 {p50:?}, max {max:?}",
        recorder.terms().len(),
        CONTENDERS
    );
    // Graceful handovers go through the release notification, not the lease expiry.
    assert!(p50 < Duration::from_millis(500), "p50 handover {p50:?}");
}

fn fastrand_ms(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    nanos % max
}
