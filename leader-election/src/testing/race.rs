//! Contenders racing for many terms, checked with real elections on a real backend.

use std::time::Duration;

use tokio::time::Instant;

use crate::election::LeaderElection;
use crate::store::LeaseStore;
use crate::testing::safety::TermRecorder;

/// How long the whole race may take before it fails.
const RACE_WITHIN: Duration = Duration::from_secs(60);

/// Starts every one of `elections` (contenders of one election, not yet started) and makes
/// them race until `terms` terms were recorded: each leader leads for a moment (0–60 ms) while
/// two followers try to take the lease by hand ([`LeaderElection::try_acquire_leadership`],
/// which must fail), then stops gracefully and starts again as a follower. After every
/// handover, and at the end, no two leaders overlapped and tokens increased (the shared
/// checker). Stops every election before returning.
///
/// Panics, saying which, if no leader shows within 5 s, no successor within 3 s of a stop, or
/// the race takes more than 60 s; returns the handover times (from `stop()` to the next term
/// recorded), sorted.
pub async fn racing_handovers<S: LeaseStore>(
    elections: &[LeaderElection<S>],
    terms: usize,
) -> Vec<Duration> {
    let recorder = TermRecorder::new();
    recorder
        .start_all(elections)
        .await
        .expect("[racing_handovers] start the contenders");
    let started = Instant::now();
    let mut handovers = Vec::new();
    while recorder.terms().len() < terms {
        assert!(
            started.elapsed() < RACE_WITHIN,
            "[racing_handovers] only {} terms in {RACE_WITHIN:?}",
            recorder.terms().len()
        );
        let leader = wait_for(Duration::from_secs(5), || {
            elections.iter().find(|e| e.is_leader())
        })
        .await
        .unwrap_or_else(|| panic!("[racing_handovers] no leader within 5 s"));
        tokio::time::sleep(Duration::from_millis(fastrand::u64(..60))).await;
        for e in elections.iter().filter(|e| !e.is_leader()).take(2) {
            let _ = e.try_acquire_leadership().await;
        }
        let before = recorder.terms().len();
        let stopped_at = Instant::now();
        leader
            .stop()
            .await
            .expect("[racing_handovers] stop the leader");
        // A successor's term, and the stopped leader's end as its recorder received it: events
        // are stamped when they happen but received a little later, so the check waits for
        // both before comparing terms.
        let stopped = leader.instance_id().to_owned();
        wait_for(Duration::from_secs(3), || {
            let terms = recorder.terms();
            let ended = !terms
                .iter()
                .any(|t| t.contender == stopped && t.end_reason.is_none());
            (terms.len() > before && ended).then_some(())
        })
        .await
        .unwrap_or_else(|| {
            let states: Vec<_> = elections.iter().map(LeaderElection::state).collect();
            panic!(
                "[racing_handovers] no successor within 3 s of a stop: {states:#?}\nrecord: {:#?}",
                recorder.terms()
            )
        });
        handovers.push(stopped_at.elapsed());
        leader
            .start()
            .await
            .expect("[racing_handovers] start the old leader again");
        recorder.assert_safe();
    }
    for e in elections {
        e.stop().await.expect("[racing_handovers] stop a contender");
    }
    wait_for(Duration::from_secs(3), || {
        recorder
            .terms()
            .iter()
            .all(|t| t.end_reason.is_some())
            .then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("[racing_handovers] a stopped contender's term never ended"));
    recorder.assert_safe();
    handovers.sort();
    handovers
}

/// Polls `check` every 5 ms until it answers `Some`, for at most `within`.
pub(crate) async fn wait_for<T>(
    within: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LeaderElectionOptions, MemoryLeaseStore};

    #[tokio::test(start_paused = true)]
    async fn contenders_on_the_memory_store_race_safely() {
        let store = MemoryLeaseStore::new();
        let elections: Vec<_> = (0..3)
            .map(|i| {
                let options = LeaderElectionOptions {
                    instance_id: format!("c{i}"),
                    ..LeaderElectionOptions::default()
                };
                LeaderElection::new(store.clone(), options).unwrap()
            })
            .collect();
        let handovers = racing_handovers(&elections, 10).await;
        assert!(handovers.len() >= 9, "{handovers:?}");
        assert!(handovers.windows(2).all(|w| w[0] <= w[1]), "sorted");
        assert!(elections.iter().all(|e| !e.is_leader()), "all stopped");
    }
}
