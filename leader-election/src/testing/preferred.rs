//! Preferred-leader handover checked with real elections on a real backend.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::election::LeaderElection;
use crate::event::ChangeReason;
use crate::options::LeaderElectionOptions;
use crate::state::Role;
use crate::store::LeaseStore;
use crate::testing::safety::TermRecorder;

/// How much earlier than `min_tenure` a recorded term may end: the recorder stamps a term when
/// it receives the event, a little after the term began.
const STAMP_SLACK: Duration = Duration::from_millis(100);

/// Checks [preferred leaders](crate::priority) with real elections on `same_election`, which
/// must return a new store for one and the same election (and backend) at every call, ready to
/// grant a lease at once. Two contenders built from `options`: `preferred-low` with priority 0
/// leads first, then `preferred-high` with priority 5 joins, and:
///
/// - the low one keeps its term for `min_tenure`, then hands over with
///   [`ChangeReason::PreferredLeader`];
/// - the high one leads within `handover_within` of the low one's term ending;
/// - the high one keeps leading for a further `min_tenure` and two renew intervals: no flap
///   back;
/// - no two leaders at any time (the shared checker) and tokens increase.
///
/// Panics, saying which, if one fails; returns the handover time (from the end of the low
/// term to the start of the high one, as recorded).
pub async fn preferred_leader_handover<S, F, Fut>(
    options: &LeaderElectionOptions,
    handover_within: Duration,
    mut same_election: F,
) -> Duration
where
    S: LeaseStore,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    let check = "preferred_leader_handover";
    let contender = |id: &str, priority: u32| LeaderElectionOptions {
        instance_id: id.to_owned(),
        priority: Some(priority),
        ..options.clone()
    };
    let low = LeaderElection::new(same_election().await, contender("preferred-low", 0))
        .unwrap_or_else(|e| panic!("[{check}] options: {e}"));
    let high = LeaderElection::new(same_election().await, contender("preferred-high", 5))
        .unwrap_or_else(|e| panic!("[{check}] options: {e}"));
    let lease = options.lease_duration;
    let min_tenure = options.min_tenure();
    let recorder = TermRecorder::new();
    recorder.attach(&low).attach(&high);

    low.start().await.expect("start low");
    let mut low_state = low.watch();
    tokio::time::timeout(lease * 2, low_state.wait_for(|s| s.role == Role::Leader))
        .await
        .unwrap_or_else(|_| panic!("[{check}] the low contender did not lead within two leases"))
        .expect("state");
    high.start().await.expect("start high");
    let mut high_state = high.watch();
    let bound = min_tenure + options.renew_interval * 2 + handover_within + lease;
    tokio::time::timeout(bound, high_state.wait_for(|s| s.role == Role::Leader))
        .await
        .unwrap_or_else(|_| {
            panic!("[{check}] the preferred contender did not lead within {bound:?}")
        })
        .expect("state");

    // The recorder receives the events on its own task: wait (bounded) until it has both.
    let recorded = Instant::now() + lease;
    let (low_terms, high_terms) = loop {
        let low_terms = recorder.terms_of("preferred-low");
        let high_terms = recorder.terms_of("preferred-high");
        if !high_terms.is_empty() && low_terms.iter().all(|t| t.end_reason.is_some()) {
            break (low_terms, high_terms);
        }
        assert!(
            Instant::now() < recorded,
            "[{check}] the recorder did not see the handover: {:?}",
            recorder.terms()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let [low_term] = low_terms.as_slice() else {
        panic!("[{check}] expected one low term before the handover, got {low_terms:?}");
    };
    assert_eq!(
        low_term.end_reason,
        Some(ChangeReason::PreferredLeader),
        "[{check}] the low term ended for the wrong reason"
    );
    let tenure = low_term.end - low_term.start;
    assert!(
        tenure + STAMP_SLACK >= min_tenure,
        "[{check}] the low contender handed over after {tenure:?}, before its min tenure {min_tenure:?}"
    );
    let handover = high_terms[0].start.saturating_duration_since(low_term.end);
    assert!(
        handover <= handover_within,
        "[{check}] the handover took {handover:?}, more than {handover_within:?}"
    );

    // No flap back: the preferred leader keeps its term well past a min tenure.
    tokio::time::sleep(min_tenure + options.renew_interval * 2).await;
    assert!(
        high.is_leader(),
        "[{check}] the preferred contender lost its term: {:?}",
        recorder.terms()
    );
    assert_eq!(
        recorder.terms().len(),
        2,
        "[{check}] leadership changed hands again: {:?}",
        recorder.terms()
    );
    high.stop().await.expect("stop high");
    low.stop().await.expect("stop low");
    recorder.assert_safe();
    handover
}
