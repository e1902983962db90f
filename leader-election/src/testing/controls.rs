//! The election controls — work per term, resign, observers, leader metadata — checked on a
//! real backend.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::election::LeaderElection;
use crate::event::{ChangeReason, ElectionEvent};
use crate::observer::LeaderObserver;
use crate::options::LeaderElectionOptions;
use crate::state::Role;
use crate::store::{LeaderInfo, LeaseStore};
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

/// What [`leader_metadata`] measured.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MetadataReport {
    /// From `proclaim` being called to it answering that the backend holds the new value.
    pub proclaimed_in: Duration,
    /// From `proclaim` returning to the observer showing the new value.
    pub observed_after: Duration,
}

/// Checks leader metadata with real elections on `same_election` (as for
/// [`election_controls`]): two contenders built from `options` (instance ids `metadata-a` and
/// `metadata-b`, publishing `addr=a` and `addr=b`) and an observer polling every fifth of a
/// lease:
///
/// - the leader's metadata shows in its own state, in a follower's `current_leader()` and on
///   the observer;
/// - `proclaim` while leading is confirmed at once, and then shows to the follower, and on the
///   observer as a new value although only the metadata changed (with a `LeaderObserved`
///   event);
/// - metadata over the backend's limit (1 MiB is tried) is refused and changes nothing;
/// - a follower's `proclaim` is kept for its next term: after a handover (the leader stops,
///   the follower takes over within `handover_within`), the new leader shows its own
///   metadata, never its predecessor's;
/// - no two leaders at any time (the shared checker).
///
/// Panics, saying which, if one fails; returns the times measured otherwise.
pub async fn leader_metadata<S, F, Fut>(
    options: &LeaderElectionOptions,
    handover_within: Duration,
    mut same_election: F,
) -> MetadataReport
where
    S: LeaseStore,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    let check = "leader_metadata";
    let lease = options.lease_duration;
    let named = |id: &str, metadata: &str| LeaderElectionOptions {
        instance_id: id.to_owned(),
        metadata: Some(metadata.as_bytes().to_vec()),
        ..options.clone()
    };
    let a = LeaderElection::new(same_election().await, named("metadata-a", "addr=a"))
        .unwrap_or_else(|e| panic!("[{check}] options: {e}"));
    let b = LeaderElection::new(same_election().await, named("metadata-b", "addr=b"))
        .unwrap_or_else(|e| panic!("[{check}] options: {e}"));
    let observer = LeaderObserver::start(same_election().await, lease / 5);
    let mut seen = observer.watch();
    let mut events = observer.subscribe();
    let recorder = TermRecorder::new();
    recorder.attach(&a).attach(&b);
    let shows = |l: &Option<LeaderInfo>, id: &str, metadata: &str| {
        l.as_ref()
            .is_some_and(|l| l.instance_id == id && l.metadata_str() == Some(metadata))
    };

    a.start().await.expect("start a");
    let mut a_state = a.watch();
    wait_until(
        &mut a_state,
        lease * 2,
        check,
        "the first contender did not lead",
        |s| s.role == Role::Leader,
    )
    .await;
    assert!(
        shows(&a.state().leader, "metadata-a", "addr=a"),
        "[{check}] the leader's own state shows {:?}",
        a.state().leader
    );
    b.start().await.expect("start b");
    let leader = b.current_leader().await.expect("current_leader");
    assert!(
        shows(&leader, "metadata-a", "addr=a"),
        "[{check}] the follower read {leader:?}"
    );
    wait_until(
        &mut seen,
        lease * 2,
        check,
        "the observer did not show the leader's metadata",
        |l| shows(l, "metadata-a", "addr=a"),
    )
    .await;
    let token = a.leadership().expect("a leads").token();

    // Proclaim while leading: confirmed at once, seen by everybody after.
    let called = Instant::now();
    let confirmed = a.proclaim("addr=a2").await.expect("proclaim");
    let proclaimed_in = called.elapsed();
    assert!(
        confirmed,
        "[{check}] the leader's proclaim was not confirmed"
    );
    let proclaimed = Instant::now();
    let leader = b.current_leader().await.expect("current_leader");
    assert!(
        shows(&leader, "metadata-a", "addr=a2"),
        "[{check}] after proclaim, the follower read {leader:?}"
    );
    assert_eq!(
        leader.and_then(|l| l.token),
        Some(token),
        "[{check}] proclaim changed the token"
    );
    wait_until(
        &mut seen,
        lease * 2,
        check,
        "the observer did not show the new metadata",
        |l| shows(l, "metadata-a", "addr=a2"),
    )
    .await;
    let observed_after = proclaimed.elapsed();
    // The event follows the watch's update: wait for it, bounded.
    let event = async {
        loop {
            match events.recv().await {
                Ok(ElectionEvent::LeaderObserved { leader })
                    if shows(&leader, "metadata-a", "addr=a2") =>
                {
                    return;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    panic!("[{check}] the observer stopped")
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(lease, event)
        .await
        .unwrap_or_else(|_| {
            panic!("[{check}] the observer sent no event for a change of metadata alone")
        });
    assert!(
        shows(&a.state().leader, "metadata-a", "addr=a2"),
        "[{check}] the leader's own state shows {:?}",
        a.state().leader
    );

    // Over the limit: refused, nothing changes.
    let huge = vec![b'x'; 1 << 20];
    if a.store().check_metadata(&huge).is_ok() {
        tracing::info!("[{check}] the store accepts 1 MiB of metadata; not checking its limit");
    } else {
        assert!(
            a.proclaim(huge).await.is_err(),
            "[{check}] metadata over the limit was accepted"
        );
        assert_eq!(a.metadata().as_deref(), Some(&b"addr=a2"[..]));
        let leader = b.current_leader().await.expect("current_leader");
        assert!(
            shows(&leader, "metadata-a", "addr=a2"),
            "[{check}] a refused proclaim changed the lease: {leader:?}"
        );
        assert!(a.is_leader(), "[{check}] a refused proclaim ended the term");
    }

    // A follower's proclaim waits for its term; the next leader never shows the last one's.
    assert!(
        !b.proclaim("addr=b2").await.expect("proclaim"),
        "[{check}] a follower's proclaim claimed to be published"
    );
    a.stop().await.expect("stop a");
    let stopped = Instant::now();
    let mut b_state = b.watch();
    wait_until(
        &mut b_state,
        handover_within,
        check,
        "no handover after stopping",
        |s| s.role == Role::Leader,
    )
    .await;
    let leader = a.current_leader().await.expect("current_leader");
    assert!(
        shows(&leader, "metadata-b", "addr=b2"),
        "[{check}] after the handover, the old leader read {leader:?}"
    );
    wait_until(
        &mut seen,
        handover_within + lease,
        check,
        "the observer did not show the new leader's metadata",
        |l| shows(l, "metadata-b", "addr=b2"),
    )
    .await;
    tracing::debug!(handover = ?stopped.elapsed(), "[{check}] handed over");
    b.stop().await.expect("stop b");
    recorder.assert_safe();
    MetadataReport {
        proclaimed_in,
        observed_after,
    }
}

/// Waits, at most `within`, for `receiver` to hold a value that `wanted` accepts; panics saying
/// `what` failed otherwise.
async fn wait_until<T>(
    receiver: &mut tokio::sync::watch::Receiver<T>,
    within: Duration,
    check: &str,
    what: &str,
    wanted: impl FnMut(&T) -> bool,
) {
    tokio::time::timeout(within, receiver.wait_for(wanted))
        .await
        .unwrap_or_else(|_| panic!("[{check}] {what} within {within:?}"))
        .unwrap_or_else(|_| panic!("[{check}] the sender is gone"));
}
