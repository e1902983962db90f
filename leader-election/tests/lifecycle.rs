//! Starting, stopping, dropping and health of an election — cancel safety and panics included —
//! on tokio's paused clock.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{
    PanicOnRenew, Recorder, ReleaseOrderCheck, SetOnDrop, options, secs, settle, wait_for_role,
};
use leader_election::store::{AcquireOutcome, Capabilities, Lease, LeaseRequest, RenewOutcome};
use leader_election::testing::FaultyStore;
use leader_election::{
    ChangeReason, Error, FencingToken, LeaderElection, LeaderInfo, LeaseStore, MemoryLeaseStore,
    Role, TaskOutcome,
};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn start_is_idempotent() {
    let store = FaultyStore::new(MemoryLeaseStore::new());
    let control = store.control();
    let election = LeaderElection::new(store, options("a")).unwrap();
    election.start().await.unwrap();
    election.start().await.unwrap();
    wait_for_role(&election, Role::Leader).await;
    settle().await;
    // connect + one acquire: a second loop would have made a second pair of calls.
    assert_eq!(control.operations(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_graceful_stop_hands_over_at_once() {
    let memory = MemoryLeaseStore::new();
    let a = LeaderElection::new(memory.clone(), options("a")).unwrap();
    let b = LeaderElection::new(memory.clone(), options("b")).unwrap();
    let a_events = Recorder::attach(&a);
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    b.start().await.unwrap();
    wait_for_role(&b, Role::Follower).await;
    tokio::time::sleep(secs(3.0)).await;
    let stopped_at = Instant::now();
    a.stop().await.unwrap();
    assert_eq!(a.state().role, Role::Stopped);
    let b_led = wait_for_role(&b, Role::Leader).await;
    assert_eq!(b_led, stopped_at, "handover must not wait for expiry");
    assert_eq!(b.leadership().unwrap().token(), FencingToken::new(2));
    let last = a_events.changes().pop().unwrap();
    assert_eq!(last.reason, ChangeReason::Stopped);
    // Stopping twice is fine.
    a.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn without_graceful_shutdown_the_lease_is_left_to_expire() {
    let memory = MemoryLeaseStore::new();
    let mut o = options("a");
    o.enable_graceful_shutdown = false;
    let a = LeaderElection::new(memory.clone(), o).unwrap();
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    a.stop().await.unwrap();
    assert!(!a.is_leader());
    let holder = memory.current_leader().await.unwrap().unwrap();
    assert_eq!(holder.instance_id, "a");
}

#[tokio::test(start_paused = true)]
async fn stop_cancels_leader_work_before_releasing() {
    let store = ReleaseOrderCheck::new();
    let a = LeaderElection::new(store.clone(), options("a")).unwrap();
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    let running = store.work_running.clone();
    let task = {
        let a = a.clone();
        tokio::spawn(async move {
            a.run_task_if_leader(|_| async move {
                running.store(true, Ordering::SeqCst);
                let _guard = SetOnDrop(running);
                std::future::pending::<()>().await;
            })
            .await
        })
    };
    settle().await;
    assert!(store.work_running.load(Ordering::SeqCst));
    a.stop().await.unwrap();
    assert!(!store.released_while_working.load(Ordering::SeqCst));
    assert_eq!(task.await.unwrap(), TaskOutcome::LeadershipLost(None));
    assert_eq!(
        store.inner.current_leader().await.unwrap(),
        None,
        "released"
    );
}

#[tokio::test]
async fn stop_does_not_release_while_work_refuses_to_stop() {
    let memory = MemoryLeaseStore::new();
    let mut o = options("a");
    o.shutdown_timeout = Duration::from_millis(50);
    let a = LeaderElection::new(memory.clone(), o).unwrap();
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    let (finish, finished) = std::sync::mpsc::channel::<()>();
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let task = {
        let a = a.clone();
        tokio::spawn(async move {
            a.run_blocking_task_if_leader(move |_| {
                let _ = started_tx.send(());
                finished.recv().ok();
            })
            .await
        })
    };
    started.await.unwrap();
    let err = a.stop().await.unwrap_err();
    assert!(matches!(err, Error::WorkStillRunning(_)), "{err:?}");
    assert_eq!(
        memory
            .current_leader()
            .await
            .unwrap()
            .map(|l| l.instance_id),
        Some("a".to_owned()),
        "the lease must not be released while old work runs"
    );
    finish.send(()).unwrap();
    assert!(matches!(
        task.await.unwrap(),
        TaskOutcome::LeadershipLost(Some(()))
    ));
}

#[tokio::test(start_paused = true)]
async fn start_after_stop_begins_a_new_term() {
    let memory = MemoryLeaseStore::new();
    let a = LeaderElection::new(memory.clone(), options("a")).unwrap();
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    a.stop().await.unwrap();
    assert_eq!(a.state().role, Role::Stopped);
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    assert_eq!(a.leadership().unwrap().token(), FencingToken::new(2));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_stops_without_releasing() {
    let memory = MemoryLeaseStore::new();
    let a = LeaderElection::new(memory.clone(), options("a")).unwrap();
    let clone = a.clone();
    let mut state = a.watch();
    let term = {
        a.start().await.unwrap();
        wait_for_role(&a, Role::Leader).await;
        a.leadership().unwrap()
    };
    drop(a);
    settle().await;
    assert!(term.is_current(), "a live clone keeps the election running");
    drop(clone);
    state
        .wait_for(|s| s.role == Role::Stopped)
        .await
        .expect("loop publishes Stopped");
    assert!(!term.is_current(), "leader work is cancelled");
    let holder = memory.current_leader().await.unwrap().unwrap();
    assert_eq!(holder.instance_id, "a", "the lease is left to expire");
    tokio::time::sleep(secs(31.0)).await;
    assert_eq!(memory.current_leader().await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_start_racing_a_stop_ends_with_a_running_leader() {
    let memory = MemoryLeaseStore::new();
    let a = LeaderElection::new(memory.clone(), options("a")).unwrap();
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    let (stopped, started) = tokio::join!(a.stop(), a.start());
    stopped.unwrap();
    started.unwrap();
    // The new loop's state is the one published last, and it leads with a new term.
    wait_for_role(&a, Role::Leader).await;
    settle().await;
    assert_eq!(a.state().role, Role::Leader);
    assert_eq!(a.leadership().unwrap().token(), FencingToken::new(2));
}

#[tokio::test(start_paused = true)]
async fn health_reports_a_dead_loop_and_a_stale_leader() {
    let a = LeaderElection::new(MemoryLeaseStore::new(), options("a")).unwrap();
    assert!(a.health().healthy, "stopped on purpose is healthy");
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    let health = a.health();
    assert!(health.healthy, "{health:?}");
    assert_eq!(health.since_renewal, Some(Duration::ZERO));

    // A loop that dies (here: a panicking backend) is reported, and fails closed: its term
    // ends at once, so leader work does not outlive it.
    let b = LeaderElection::new(PanicOnRenew::default(), options("b")).unwrap();
    b.start().await.unwrap();
    wait_for_role(&b, Role::Leader).await;
    let term = b.leadership().unwrap();
    tokio::time::sleep(secs(11.0)).await;
    let health = b.health();
    assert!(!health.healthy);
    assert_eq!(health.problem, Some("the election loop ended unexpectedly"));
    assert!(!term.is_current());
    assert!(!b.is_leader());
    assert_eq!(b.state().role, Role::Stopped);
    let err = b.stop().await.unwrap_err();
    assert!(
        matches!(&err, Error::LoopPanicked(m) if m == "backend bug"),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn health_flags_a_leader_whose_loop_is_stuck_past_its_lease() {
    let store = FaultyStore::new(MemoryLeaseStore::new());
    let control = store.control();
    let mut o = options("a");
    o.max_retry_attempts = 1000;
    let a = LeaderElection::new(store, o.clone()).unwrap();
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    control.set_partitioned(true);
    // Jump past the whole lease without letting the loop run: it cannot have stepped down.
    tokio::time::advance(o.lease_duration + secs(1.0)).await;
    let health = a.health();
    assert!(!health.healthy, "{health:?}");
    assert_eq!(
        health.problem,
        Some("believes it leads but has not renewed within its lease")
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_loop_reports_the_end_of_its_term() {
    let b = LeaderElection::new(PanicOnRenew::default(), options("b")).unwrap();
    let recorder = Recorder::attach(&b);
    b.start().await.unwrap();
    wait_for_role(&b, Role::Leader).await;
    wait_for_role(&b, Role::Stopped).await;
    settle().await;
    let changes = recorder.changes();
    assert_eq!(changes.len(), 2, "events must alternate: {changes:?}");
    assert!(changes[0].is_leader);
    assert!(!changes[1].is_leader);
    assert_eq!(changes[1].token, changes[0].token);
    assert_eq!(changes[1].reason, ChangeReason::LoopPanicked);
    let _ = b.stop().await;
}

/// A store whose release frees the lease at once but answers only a second later.
#[derive(Clone, Default)]
struct SlowReleaseReply(MemoryLeaseStore);

impl LeaseStore for SlowReleaseReply {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_release_notifications()
    }
    async fn try_acquire(&self, r: &LeaseRequest) -> leader_election::Result<AcquireOutcome> {
        self.0.try_acquire(r).await
    }
    async fn renew(&self, r: &LeaseRequest, l: &Lease) -> leader_election::Result<RenewOutcome> {
        self.0.renew(r, l).await
    }
    async fn release(&self, r: &LeaseRequest, l: &Lease) -> leader_election::Result<bool> {
        let released = self.0.release(r, l).await;
        tokio::time::sleep(secs(1.0)).await;
        released
    }
    async fn current_leader(&self) -> leader_election::Result<Option<LeaderInfo>> {
        self.0.current_leader().await
    }
    fn release_notifications(&self) -> Option<leader_election::store::ReleaseReceiver> {
        self.0.release_notifications()
    }
}

#[tokio::test(start_paused = true)]
async fn a_stop_dropped_half_way_leaves_a_state_the_next_start_can_use() {
    let a = LeaderElection::new(SlowReleaseReply::default(), options("a")).unwrap();
    let recorder = Recorder::attach(&a);
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    // The stop future is dropped while the old loop still waits for its release reply.
    let dropped = tokio::time::timeout(secs(0.01), a.stop()).await;
    assert!(dropped.is_err(), "the stop should still have been running");
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    // Long after the old loop has finished, the new term still stands.
    tokio::time::sleep(secs(5.0)).await;
    settle().await;
    assert!(a.is_leader(), "the old loop ended the new loop's term");
    assert_eq!(a.state().role, Role::Leader);
    let health = a.health();
    assert!(health.healthy, "{health:?}");
    let changes = recorder.changes();
    for pair in changes.windows(2) {
        assert_ne!(pair[0].is_leader, pair[1].is_leader, "{changes:?}");
    }
    a.stop().await.unwrap();
    assert_eq!(a.state().role, Role::Stopped);
}

#[tokio::test(start_paused = true)]
async fn a_second_stop_after_a_dropped_one_waits_for_the_loop() {
    let a = LeaderElection::new(SlowReleaseReply::default(), options("a")).unwrap();
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    assert!(tokio::time::timeout(secs(0.01), a.stop()).await.is_err());
    a.stop().await.unwrap();
    assert_eq!(a.state().role, Role::Stopped);
    assert!(a.health().healthy);
}
