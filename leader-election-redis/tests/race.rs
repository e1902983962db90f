//! Many contenders racing for many terms: never two leaders at once.

mod support;

use std::time::{Duration, Instant};

use support::{Recorder, RedisServer, election, eventually, unique_key};

const CONTENDERS: usize = 6;
const TERMS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contenders_racing_for_many_terms_never_overlap() {
    let server = RedisServer::start().await;
    let key = unique_key("race");
    let elections: Vec<_> = (0..CONTENDERS)
        .map(|i| election(&server.url(), &key, &format!("c{i}")))
        .collect();
    let recorder = Recorder::new();
    for e in &elections {
        recorder.watch(e);
    }
    for e in &elections {
        e.start().await.unwrap();
    }
    let started = Instant::now();
    let mut handovers = Vec::new();
    while recorder.terms() < TERMS {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {} terms in 60 s",
            recorder.terms()
        );
        // Wait for a leader, let it lead a little, then hand over.
        let mut leader = None;
        assert!(
            eventually(Duration::from_secs(5), || {
                leader = elections.iter().position(|e| e.is_leader());
                leader.is_some()
            })
            .await,
            "no leader"
        );
        let leader = &elections[leader.unwrap_or_default()];
        tokio::time::sleep(Duration::from_millis(fastrand_ms(60))).await;
        // Meanwhile a follower or two try to grab it: they must fail.
        for e in elections.iter().filter(|e| !e.is_leader()).take(2) {
            let _ = e.try_acquire_leadership().await;
        }
        let terms = recorder.terms();
        let stopped_at = Instant::now();
        leader.stop().await.unwrap();
        if !eventually(Duration::from_secs(3), || recorder.terms() > terms).await {
            let states: Vec<_> = elections.iter().map(|e| e.state()).collect();
            panic!(
                "no successor: {states:#?}\nin redis: {:?}\nrecord: {:#?}",
                elections[0].current_leader().await,
                recorder.intervals()
            );
        }
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
        recorder.terms(),
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
