//! The election controls — work per term, resign, observers — checked on a real backend.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::election::LeaderElection;
use crate::event::ChangeReason;
use crate::observer::LeaderObserver;
use crate::options::LeaderElectionOptions;
use crate::state::Role;
use crate::store::LeaseStore;
use crate::testing::safety::TermRecorder;

/// What [`election_controls`] measured.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ControlsReport {
    /// From `resign` returning to the other contender leading.
    pub resign_handover: Duration,
    /// From `resign` returning to the observer showing the new leader.
    pub observed_after: Duration,
}

/// Checks the election controls with real elections on `same_election`, which must return a
/// new store for one and the same election (and backend) at every call, ready to grant a lease
/// at once (no guard wait pending). Two contenders built from `options` (with instance ids
/// `controls-a` and `controls-b`) and an observer polling every lease:
///
/// - `run_while_leader` starts work when a term begins and returns the reason the last one
///   ended;
/// - `resign` hands over to the other contender within `handover_within`, and the resigned
///   contender stays out for its cool-down;
/// - the observer, which never contends, shows the new leader within `handover_within` plus
///   one lease;
/// - no two leaders at any time (the shared checker) and tokens increase.
///
/// Panics, saying which, if one fails; returns the handover times otherwise.
pub async fn election_controls<S, F, Fut>(
    options: &LeaderElectionOptions,
    handover_within: Duration,
    mut same_election: F,
) -> ControlsReport
where
    S: LeaseStore,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    let check = "election_controls";
    let lease = options.lease_duration;
    let named = |id: &str| LeaderElectionOptions {
        instance_id: id.to_owned(),
        ..options.clone()
    };
    let a = LeaderElection::new(same_election().await, named("controls-a"))
        .unwrap_or_else(|e| panic!("[{check}] options: {e}"));
    let b = LeaderElection::new(same_election().await, named("controls-b"))
        .unwrap_or_else(|e| panic!("[{check}] options: {e}"));
    let observer = LeaderObserver::start(same_election().await, lease);
    let recorder = TermRecorder::new();
    recorder.attach(&a).attach(&b);

    a.start().await.expect("start a");
    let mut a_state = a.watch();
    tokio::time::timeout(lease * 2, a_state.wait_for(|s| s.role == Role::Leader))
        .await
        .unwrap_or_else(|_| panic!("[{check}] the first contender did not lead within two leases"))
        .expect("state");
    let terms_worked = Arc::new(AtomicUsize::new(0));
    let worker = a.clone();
    let counter = Arc::clone(&terms_worked);
    let work = tokio::spawn(async move {
        worker
            .run_while_leader(move |_term| {
                counter.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>()
            })
            .await
    });
    b.start().await.expect("start b");
    let until = Instant::now() + lease;
    while terms_worked.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < until,
            "[{check}] run_while_leader did not start work for the current term"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let resigned = a.resign(lease * 4).await.expect("resign");
    assert!(resigned, "[{check}] resign ended no term");
    let resigned_at = Instant::now();
    let mut b_state = b.watch();
    tokio::time::timeout(
        handover_within,
        b_state.wait_for(|s| s.role == Role::Leader),
    )
    .await
    .unwrap_or_else(|_| panic!("[{check}] no handover within {handover_within:?} of resigning"))
    .expect("state");
    let resign_handover = resigned_at.elapsed();
    let mut seen = observer.watch();
    tokio::time::timeout(
        handover_within + lease,
        seen.wait_for(|l| l.as_ref().is_some_and(|l| l.instance_id == "controls-b")),
    )
    .await
    .unwrap_or_else(|_| panic!("[{check}] the observer did not show the new leader"))
    .expect("observer");
    let observed_after = resigned_at.elapsed();

    // b steps down for good: a, cooling down, must not take over before its cool-down ends.
    b.stop().await.expect("stop b");
    tokio::time::sleep(lease).await;
    assert!(
        !a.is_leader(),
        "[{check}] a resigned contender led during its cool-down"
    );
    a.stop().await.expect("stop a");
    let last = work.await.expect("run_while_leader");
    assert_eq!(
        last,
        Some(ChangeReason::Resigned),
        "[{check}] run_while_leader reported the wrong end"
    );
    recorder.assert_safe();
    ControlsReport {
        resign_handover,
        observed_after,
    }
}
