//! Behaviour of the election driver, on tokio's paused clock: deterministic and instant.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Recorder, options, settle, wait_for_role};
use leader_election::testing::{FaultyStore, TermRecorder, assert_safe};
use leader_election::{
    AcquireOutcome, ChangeReason, ElectionEvent, Error, FencingToken, LeaderElection, LeaderInfo,
    Lease, LeaseRequest, LeaseStore, MemoryLeaseStore, RenewOutcome, Role, TaskOutcome,
};
use tokio::time::Instant;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[tokio::test(start_paused = true)]
async fn first_contender_leads_at_once_with_token_one() {
    let store = MemoryLeaseStore::new();
    let election = LeaderElection::new(store.clone(), options("a")).unwrap();
    assert_eq!(election.state().role, Role::Stopped);
    assert!(!election.is_leader());
    let started = Instant::now();
    election.start().await.unwrap();
    let led = wait_for_role(&election, Role::Leader).await;
    assert_eq!(led, started, "the first attempt must be immediate");
    assert!(election.is_leader());
    let term = election.leadership().unwrap();
    assert_eq!(term.token(), FencingToken::new(1));
    assert!(term.is_current());
    assert!(election.last_leadership_renewal().is_some());
    let state = election.state();
    assert_eq!(state.token, Some(FencingToken::new(1)));
    assert_eq!(state.leader.unwrap().instance_id, "a");
    let leader = election.current_leader().await.unwrap().unwrap();
    assert_eq!(leader, LeaderInfo::new("a", Some(FencingToken::new(1))));
}

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
async fn leader_renews_every_renew_interval() {
    let store = FaultyStore::new(MemoryLeaseStore::new());
    let control = store.control();
    let election = LeaderElection::new(store, options("a")).unwrap();
    election.start().await.unwrap();
    wait_for_role(&election, Role::Leader).await;
    let after_acquire = control.operations();
    tokio::time::sleep(secs(35.0)).await;
    assert_eq!(
        control.operations() - after_acquire,
        3,
        "renewals at 10, 20 and 30 s"
    );
    assert!(election.is_leader());
    assert_eq!(election.leadership().unwrap().token(), FencingToken::new(1));
    tokio::time::sleep(secs(300.0)).await;
    assert!(election.is_leader(), "a healthy leader keeps leading");
}

#[tokio::test(start_paused = true)]
async fn a_failed_renewal_is_retried_inside_the_lease() {
    let store = FaultyStore::new(MemoryLeaseStore::new());
    let control = store.control();
    let election = LeaderElection::new(store, options("a")).unwrap();
    let recorder = Recorder::attach(&election);
    election.start().await.unwrap();
    let t0 = wait_for_role(&election, Role::Leader).await;
    control.fail_next(2);
    tokio::time::sleep(secs(29.0)).await;
    // Failures at 10 s and 15 s (retry_interval), success at 25 s (backed off to 10 s).
    let errors = recorder.error_times();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0] - t0, secs(10.0));
    assert!(election.is_leader(), "two failures are not a loss");
    tokio::time::sleep(secs(60.0)).await;
    assert!(election.is_leader());
    assert_eq!(recorder.changes().len(), 1, "never lost leadership");
}

#[tokio::test(start_paused = true)]
async fn deadline_drops_leadership_when_the_backend_never_answers_and_not_earlier() {
    let store = FaultyStore::new(MemoryLeaseStore::new());
    let control = store.control();
    let mut o = options("a");
    o.max_retry_attempts = 1000; // only the deadline can end the term here
    let election = LeaderElection::new(store, o.clone()).unwrap();
    let recorder = Recorder::attach(&election);
    election.start().await.unwrap();
    let t0 = wait_for_role(&election, Role::Leader).await;
    // The renewal sent at 10 s is the last one confirmed.
    tokio::time::sleep(secs(15.0)).await;
    control.set_partitioned(true);
    let term = election.leadership().unwrap();
    let deadline = t0 + secs(10.0) + o.lease_duration - o.deadline_margin();
    assert_eq!(term.deadline(), deadline);
    tokio::time::sleep_until(deadline - Duration::from_millis(1)).await;
    assert!(election.is_leader(), "lost leadership before the deadline");
    assert!(term.is_current());
    let lost_at = wait_for_role(&election, Role::Follower).await;
    assert_eq!(
        lost_at, deadline,
        "must stop leading exactly at the deadline"
    );
    assert!(!term.is_current());
    assert!(!election.is_leader());
    let last = recorder.changes().pop().unwrap();
    assert!(!last.is_leader);
    assert_eq!(last.reason, ChangeReason::DeadlinePassed);
    assert_eq!(last.at, deadline);
}

#[tokio::test(start_paused = true)]
async fn repeated_renew_failures_step_down_before_the_deadline() {
    let store = FaultyStore::new(MemoryLeaseStore::new());
    let control = store.control();
    let o = options("a");
    let election = LeaderElection::new(store.clone(), o.clone()).unwrap();
    let recorder = Recorder::attach(&election);
    election.start().await.unwrap();
    let t0 = wait_for_role(&election, Role::Leader).await;
    control.set_partitioned(true);
    let lost_at = wait_for_role(&election, Role::Follower).await;
    let deadline = t0 + o.lease_duration - o.deadline_margin();
    assert!(lost_at < deadline, "should step down before the deadline");
    let change = recorder.changes().pop().unwrap();
    assert_eq!(change.reason, ChangeReason::RenewFailed);
    // All three attempts started early enough to finish before the deadline.
    let errors = recorder.error_times();
    assert!(errors.len() >= 3, "{errors:?}");
    for at in &errors[..3] {
        assert!(*at <= deadline, "attempt timed out after the deadline");
    }
}

#[tokio::test(start_paused = true)]
async fn a_renewal_confirmed_after_the_deadline_does_not_resurrect_leadership() {
    let store = FaultyStore::new(MemoryLeaseStore::new());
    let control = store.control();
    let mut o = options("a");
    o.operation_timeout = Some(secs(19.0));
    o.max_retry_attempts = 1000;
    let election = LeaderElection::new(store, o.clone()).unwrap();
    let recorder = Recorder::attach(&election);
    election.start().await.unwrap();
    let t0 = wait_for_role(&election, Role::Leader).await;
    // The renewal sent at 10 s reaches the backend at 20 s and is confirmed at 30 s, after the
    // 29.6 s deadline: the backend renewed, but the leader must not believe it.
    control.set_latency(secs(10.0));
    let lost_at = wait_for_role(&election, Role::Follower).await;
    assert_eq!(lost_at, t0 + o.lease_duration - o.deadline_margin());
    tokio::time::sleep(secs(2.0)).await;
    assert!(!election.is_leader());
    let changes = recorder.changes();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[1].reason, ChangeReason::DeadlinePassed);
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_acquisition_is_resolved_by_asking_again() {
    let memory = MemoryLeaseStore::new();
    let store = FaultyStore::new(memory.clone());
    let control = store.control();
    let o = options("a");
    let election = LeaderElection::new(store, o.clone()).unwrap();
    let recorder = Recorder::attach(&election);
    control.set_drop_replies(true);
    election.start().await.unwrap();
    // The acquisition took effect but its reply is lost: the attempt times out.
    tokio::time::sleep(o.operation_timeout() - Duration::from_millis(1)).await;
    control.set_drop_replies(false);
    let led_at = wait_for_role(&election, Role::Leader).await;
    let errors = recorder.errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].1.is_outcome_unknown(), "{:?}", errors[0].1);
    // The re-check was immediate and found the lease already ours: no second token minted.
    assert_eq!(led_at - errors[0].0, Duration::ZERO);
    assert_eq!(election.leadership().unwrap().token(), FencingToken::new(1));
    assert_eq!(memory.last_token(), FencingToken::new(1));
}

#[tokio::test(start_paused = true)]
async fn followers_sleep_until_expiry_instead_of_polling() {
    let memory = MemoryLeaseStore::new();
    let a = LeaderElection::new(memory.clone(), options("a")).unwrap();
    a.start().await.unwrap();
    let t0 = wait_for_role(&a, Role::Leader).await;
    let b_store = FaultyStore::new(memory.clone());
    let b_ops = b_store.control();
    let b = LeaderElection::new(b_store, options("b")).unwrap();
    b.start().await.unwrap();
    wait_for_role(&b, Role::Follower).await;
    settle().await;
    assert_eq!(b.state().leader.unwrap().instance_id, "a");
    // Steady state for 10 leases: a blind 5 s poll would cost 60 attempts.
    tokio::time::sleep(secs(305.0)).await;
    let per_lease = b_ops.operations() as f64 / 10.0;
    assert!(per_lease <= 2.0, "{per_lease} backend calls per lease");
    // The leader dies without releasing: the follower takes over once the lease has expired
    // and within a few per cent of it.
    let last_renewal = t0 + secs(300.0); // renewals every 10 s from t0
    drop(a);
    let b_led = wait_for_role(&b, Role::Leader).await;
    let failover = b_led - last_renewal;
    assert!(
        failover >= secs(30.0),
        "took over a live lease after {failover:?}"
    );
    assert!(failover <= secs(30.0 * 1.05), "failover took {failover:?}");
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
async fn followers_back_off_exponentially_after_errors() {
    let store = FaultyStore::new(MemoryLeaseStore::new());
    let control = store.control();
    control.fail_next(6);
    let o = options("a");
    let election = LeaderElection::new(store, o.clone()).unwrap();
    let recorder = Recorder::attach(&election);
    election.start().await.unwrap();
    wait_for_role(&election, Role::Leader).await;
    let times = recorder.error_times();
    assert_eq!(times.len(), 6);
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    // 5, 10, 20, 40, 40 (capped) seconds, each within ±10 % jitter.
    let expected = [5.0, 10.0, 20.0, 40.0, 40.0];
    for (gap, want) in gaps.iter().zip(expected) {
        assert!(
            (gap - want).abs() <= want * o.retry_jitter + 1e-6,
            "gaps {gaps:?}, expected about {expected:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn backend_errors_are_reported_as_events() {
    let store = FaultyStore::new(MemoryLeaseStore::new());
    store.control().fail_next(1);
    let election = LeaderElection::new(store, options("a")).unwrap();
    let mut events = election.subscribe();
    election.start().await.unwrap();
    let first = events.recv().await.unwrap();
    match first {
        ElectionEvent::Error(err) => {
            assert!(err.is_retryable());
            assert_eq!(err.operation(), Some(leader_election::Operation::Connect));
        }
        other => panic!("expected an error event, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_subscriber_cannot_break_the_loop() {
    let election = LeaderElection::new(MemoryLeaseStore::new(), options("a")).unwrap();
    let mut doomed = election.subscribe();
    let consumer = tokio::spawn(async move {
        let _ = doomed.recv().await;
        panic!("consumer bug");
    });
    let recorder = Recorder::attach(&election);
    election.start().await.unwrap();
    assert!(consumer.await.unwrap_err().is_panic());
    tokio::time::sleep(secs(100.0)).await;
    assert!(election.is_leader());
    // An absent subscriber (never reading) does not block either.
    let _silent = election.subscribe();
    tokio::time::sleep(secs(100.0)).await;
    assert!(election.is_leader());
    assert_eq!(recorder.changes().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn run_task_if_leader_runs_only_while_leading() {
    let memory = MemoryLeaseStore::new();
    let a = LeaderElection::new(memory.clone(), options("a")).unwrap();
    let b = LeaderElection::new(memory.clone(), options("b")).unwrap();
    let outcome = a.run_task_if_leader(|_| async { 1 }).await;
    assert_eq!(outcome, TaskOutcome::NotLeader, "not started");
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    b.start().await.unwrap();
    wait_for_role(&b, Role::Follower).await;
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let outcome = b
        .run_task_if_leader(|_| async move { flag.store(true, Ordering::SeqCst) })
        .await;
    assert_eq!(outcome, TaskOutcome::NotLeader);
    assert!(!ran.load(Ordering::SeqCst), "a follower ran leader work");
    let outcome = a
        .run_task_if_leader(|term| async move { term.token() })
        .await;
    assert_eq!(outcome.completed(), Some(FencingToken::new(1)));
}

#[tokio::test(start_paused = true)]
async fn leader_work_is_cancelled_the_moment_leadership_is_lost() {
    let memory = MemoryLeaseStore::new();
    let a = LeaderElection::new(memory.clone(), options("a")).unwrap();
    a.start().await.unwrap();
    let t0 = wait_for_role(&a, Role::Leader).await;
    let task = {
        let a = a.clone();
        tokio::spawn(async move {
            a.run_task_if_leader(|term| async move {
                tokio::time::sleep(secs(3600.0)).await;
                term.token()
            })
            .await
        })
    };
    settle().await;
    // An operator deletes the key; the renewal at 10 s finds out.
    memory.clear();
    let outcome = task.await.unwrap();
    assert_eq!(outcome, TaskOutcome::LeadershipLost(None));
    assert_eq!(Instant::now() - t0, secs(10.0));
    // The key is gone, so `a` acquires again at once, as a new term with a new token.
    wait_for_role(&a, Role::Leader).await;
    assert_eq!(a.leadership().unwrap().token(), FencingToken::new(2));
}

#[tokio::test(start_paused = true)]
async fn blocking_tasks_run_off_the_async_threads_and_report_loss() {
    let memory = MemoryLeaseStore::new();
    let a = LeaderElection::new(memory.clone(), options("a")).unwrap();
    let outcome = a.run_blocking_task_if_leader(|_| 1).await;
    assert_eq!(outcome, TaskOutcome::NotLeader);
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    let outcome = a
        .run_blocking_task_if_leader(|term| {
            assert!(term.is_current());
            term.token().get() * 10
        })
        .await;
    assert_eq!(outcome, TaskOutcome::Completed(10));
}

/// A store that checks, at release, that leader work has already stopped.
#[derive(Clone)]
struct ReleaseOrderCheck {
    inner: MemoryLeaseStore,
    work_running: Arc<AtomicBool>,
    released_while_working: Arc<AtomicBool>,
}

impl LeaseStore for ReleaseOrderCheck {
    async fn try_acquire(&self, r: &LeaseRequest) -> leader_election::Result<AcquireOutcome> {
        self.inner.try_acquire(r).await
    }
    async fn renew(&self, r: &LeaseRequest, l: &Lease) -> leader_election::Result<RenewOutcome> {
        self.inner.renew(r, l).await
    }
    async fn release(&self, r: &LeaseRequest, l: &Lease) -> leader_election::Result<bool> {
        if self.work_running.load(Ordering::SeqCst) {
            self.released_while_working.store(true, Ordering::SeqCst);
        }
        self.inner.release(r, l).await
    }
    async fn current_leader(&self) -> leader_election::Result<Option<LeaderInfo>> {
        self.inner.current_leader().await
    }
}

struct SetOnDrop(Arc<AtomicBool>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn stop_cancels_leader_work_before_releasing() {
    let store = ReleaseOrderCheck {
        inner: MemoryLeaseStore::new(),
        work_running: Arc::new(AtomicBool::new(false)),
        released_while_working: Arc::new(AtomicBool::new(false)),
    };
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
async fn try_acquire_leadership_makes_an_immediate_attempt() {
    let memory = MemoryLeaseStore::new();
    let a = LeaderElection::new(memory.clone(), options("a")).unwrap();
    let b = LeaderElection::new(memory.clone(), options("b")).unwrap();
    assert!(
        a.try_acquire_leadership().await.unwrap(),
        "starts and acquires"
    );
    assert!(a.is_leader());
    assert!(a.try_acquire_leadership().await.unwrap(), "already leading");
    assert!(!b.try_acquire_leadership().await.unwrap(), "held by a");
    // a's lease vanishes; b asks again long before its own wake-up is due.
    tokio::time::sleep(secs(1.0)).await;
    memory.clear();
    let asked = Instant::now();
    assert!(b.try_acquire_leadership().await.unwrap());
    assert_eq!(Instant::now(), asked);
}

#[tokio::test(start_paused = true)]
async fn leadership_events_alternate_and_leader_changes_are_observed() {
    let memory = MemoryLeaseStore::new();
    let a = LeaderElection::new(memory.clone(), options("a")).unwrap();
    let b = LeaderElection::new(memory.clone(), options("b")).unwrap();
    let a_rec = Recorder::attach(&a);
    let b_rec = Recorder::attach(&b);
    let terms = TermRecorder::new();
    terms.attach(&a).attach(&b);
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    b.start().await.unwrap();
    for _ in 0..5 {
        for (from, to) in [(&a, &b), (&b, &a)] {
            if from.is_leader() {
                from.stop().await.unwrap();
                wait_for_role(to, Role::Leader).await;
                from.start().await.unwrap();
                wait_for_role(from, Role::Follower).await;
                settle().await;
            }
        }
    }
    for rec in [&a_rec, &b_rec] {
        let changes = rec.changes();
        assert!(changes[0].is_leader, "{changes:?}");
        for pair in changes.windows(2) {
            assert_ne!(pair[0].is_leader, pair[1].is_leader, "{changes:?}");
            if !pair[1].is_leader {
                assert_eq!(
                    pair[0].token, pair[1].token,
                    "a loss reported for another term"
                );
            }
        }
    }
    let terms = terms.terms();
    assert_eq!(terms.len(), 11);
    assert_safe(&terms);
    let observed = b_rec.observed.lock().unwrap().clone();
    assert!(observed.contains(&Some("a".to_owned())), "{observed:?}");
}

#[tokio::test(start_paused = true)]
async fn invalid_options_are_refused_at_construction() {
    let mut o = options("a");
    o.renew_interval = o.lease_duration;
    let err = LeaderElection::new(MemoryLeaseStore::new(), o).unwrap_err();
    assert_eq!(err.field, "renew_interval");
}

#[tokio::test(start_paused = true)]
async fn is_leader_turns_false_at_the_deadline_even_if_the_loop_is_late() {
    let store = FaultyStore::new(MemoryLeaseStore::new());
    let control = store.control();
    let mut o = options("a");
    o.max_retry_attempts = 1000;
    let election = LeaderElection::new(store, o.clone()).unwrap();
    election.start().await.unwrap();
    let t0 = wait_for_role(&election, Role::Leader).await;
    control.set_partitioned(true);
    let term = election.leadership().unwrap();
    // Jump the clock past the deadline without letting the loop run.
    tokio::time::advance(o.lease_duration).await;
    assert!(Instant::now() > t0 + o.lease_duration - o.deadline_margin());
    assert!(!term.is_current());
    assert!(!election.is_leader());
    let outcome = election.run_task_if_leader(|_| async {}).await;
    assert_eq!(outcome, TaskOutcome::NotLeader);
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

/// A store with a bug: renewing panics.
#[derive(Clone, Default)]
struct PanicOnRenew(MemoryLeaseStore);

impl LeaseStore for PanicOnRenew {
    async fn try_acquire(&self, r: &LeaseRequest) -> leader_election::Result<AcquireOutcome> {
        self.0.try_acquire(r).await
    }
    async fn renew(&self, _: &LeaseRequest, _: &Lease) -> leader_election::Result<RenewOutcome> {
        panic!("backend bug");
    }
    async fn release(&self, r: &LeaseRequest, l: &Lease) -> leader_election::Result<bool> {
        self.0.release(r, l).await
    }
    async fn current_leader(&self) -> leader_election::Result<Option<LeaderInfo>> {
        self.0.current_leader().await
    }
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
async fn a_contender_whose_replies_stay_lost_does_not_lock_the_others_out() {
    let memory = MemoryLeaseStore::new();
    let a_store = FaultyStore::new(memory.clone());
    let a_faults = a_store.control();
    let mut o = options("a");
    // Retries come faster than the lease expires, so each one would keep the lease alive.
    o.retry_interval = secs(1.0);
    o.max_retry_interval = secs(4.0);
    let a = LeaderElection::new(a_store, o.clone()).unwrap();
    // a's requests land, its replies never come back: it holds a lease it cannot know of, and
    // every retry with the same lease id would extend it.
    a_faults.set_drop_replies(true);
    let started = Instant::now();
    a.start().await.unwrap();
    tokio::time::sleep(secs(1.0)).await;
    assert_eq!(
        memory.current_leader().await.unwrap().unwrap().instance_id,
        "a"
    );
    let b = LeaderElection::new(memory.clone(), options("b")).unwrap();
    b.start().await.unwrap();
    let b_led = wait_for_role(&b, Role::Leader).await;
    assert!(!a.is_leader());
    // a gives its lease id up after one lease of unknown outcomes (plus at most one backoff),
    // and that lease then expires.
    let took = b_led - started;
    let bound = o.lease_duration * 2 + o.max_retry_interval + o.operation_timeout() * 2;
    assert!(took <= bound, "b waited {took:?}");
}

/// A store whose renewals block their thread for 3 s: the election loop is stuck, as in a
/// starved runtime, and cannot notice its deadline.
#[derive(Clone, Default)]
struct StuckLoop(MemoryLeaseStore);

impl LeaseStore for StuckLoop {
    async fn try_acquire(&self, r: &LeaseRequest) -> leader_election::Result<AcquireOutcome> {
        self.0.try_acquire(r).await
    }
    async fn renew(&self, _: &LeaseRequest, _: &Lease) -> leader_election::Result<RenewOutcome> {
        std::thread::sleep(Duration::from_secs(3));
        Ok(RenewOutcome::Lost)
    }
    async fn release(&self, r: &LeaseRequest, l: &Lease) -> leader_election::Result<bool> {
        self.0.release(r, l).await
    }
    async fn current_leader(&self) -> leader_election::Result<Option<LeaderInfo>> {
        self.0.current_leader().await
    }
}

#[test]
fn leader_work_stops_at_the_deadline_even_when_the_loop_is_stuck() {
    let mut o = options("a");
    o.lease_duration = Duration::from_secs(1);
    o.renew_interval = Duration::from_millis(300);
    o.operation_timeout = Some(Duration::from_millis(200));
    let a = LeaderElection::new(StuckLoop::default(), o.clone()).unwrap();
    // The election loop runs on a runtime of its own, which its renewal will block; leader
    // work runs on another one, as it would on a healthy part of a program.
    let loop_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let work_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    loop_runtime.block_on(async {
        a.start().await.unwrap();
        wait_for_role(&a, Role::Leader).await;
    });
    let deadline = a.leadership().unwrap().deadline();
    let outcome = work_runtime.block_on(a.run_task_if_leader(|_| std::future::pending::<()>()));
    assert_eq!(outcome, TaskOutcome::LeadershipLost(None));
    // The loop is blocked in its renewal until 3.3 s after the acquisition; the work stopped
    // at its own deadline, under a second after the acquisition.
    let late = Instant::now().saturating_duration_since(deadline);
    assert!(
        late < Duration::from_millis(500),
        "work stopped {late:?} after the deadline"
    );
    drop(a);
    loop_runtime.shutdown_background();
}

// === issue: safety holes in the core ===

#[tokio::test(start_paused = true)]
async fn stepping_down_after_failed_renewals_releases_the_ended_terms_lease() {
    // The backend is reachable but refuses three renewals in a row: the leader steps down and
    // must release the lease of the term that ended, so that a new term begins at once instead
    // of a whole lease later.
    let store = FaultyStore::new(MemoryLeaseStore::new());
    let control = store.control();
    let o = options("a");
    let election = LeaderElection::new(store, o.clone()).unwrap();
    let recorder = Recorder::attach(&election);
    election.start().await.unwrap();
    wait_for_role(&election, Role::Leader).await;
    control.fail_next(o.max_retry_attempts);
    let changes = tokio::time::timeout(secs(3600.0), async {
        loop {
            let changes = recorder.changes();
            if changes.len() >= 3 {
                return changes;
            }
            tokio::time::sleep(secs(0.01)).await;
        }
    })
    .await
    .expect("a new term never began");
    assert_eq!(changes[1].reason, ChangeReason::RenewFailed);
    let gap = changes[2].at - changes[1].at;
    assert!(
        gap < secs(1.0),
        "the lease was not released: a new term began {gap:?} after stepping down"
    );
    assert!(changes[2].token > changes[0].token);
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
    fn release_notifications(&self) -> Option<leader_election::ReleaseReceiver> {
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

/// Withholds the free lease until `until`, as a backend that restarted does.
#[derive(Clone)]
struct WithholdsUntil {
    inner: MemoryLeaseStore,
    until: Instant,
}

impl LeaseStore for WithholdsUntil {
    async fn try_acquire(&self, r: &LeaseRequest) -> leader_election::Result<AcquireOutcome> {
        let now = Instant::now();
        if now < self.until {
            return Ok(AcquireOutcome::Withheld {
                wait: self.until - now,
                reason: leader_election::WithholdReason::BackendRestarted,
            });
        }
        self.inner.try_acquire(r).await
    }
    async fn renew(&self, r: &LeaseRequest, l: &Lease) -> leader_election::Result<RenewOutcome> {
        self.inner.renew(r, l).await
    }
    async fn release(&self, r: &LeaseRequest, l: &Lease) -> leader_election::Result<bool> {
        self.inner.release(r, l).await
    }
    async fn current_leader(&self) -> leader_election::Result<Option<LeaderInfo>> {
        self.inner.current_leader().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_withheld_lease_is_surfaced_once_and_taken_when_the_wait_ends() {
    let start = Instant::now();
    let store = WithholdsUntil {
        inner: MemoryLeaseStore::new(),
        until: start + secs(15.0),
    };
    let election = LeaderElection::new(store, options("a")).unwrap();
    let mut events = election.subscribe();
    election.start().await.unwrap();
    let led = wait_for_role(&election, Role::Leader).await;
    assert!(
        led >= start + secs(15.0),
        "led while the lease was withheld"
    );
    assert!(led <= start + secs(17.0), "took {:?} to lead", led - start);
    let mut withheld = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let ElectionEvent::LeaseWithheld { reason, wait } = event {
            withheld.push((reason, wait));
        }
    }
    assert_eq!(
        withheld,
        vec![(
            leader_election::WithholdReason::BackendRestarted,
            secs(15.0)
        )],
        "the wait must be said once, with its reason and length"
    );
}

// === election controls: resign, work per term ===

#[tokio::test(start_paused = true)]
async fn resign_hands_over_at_once_and_stays_out_for_the_cool_down() {
    let memory = MemoryLeaseStore::new();
    let a = LeaderElection::new(memory.clone(), options("a")).unwrap();
    let b = LeaderElection::new(memory.clone(), options("b")).unwrap();
    let terms = TermRecorder::new();
    terms.attach(&a).attach(&b);
    let a_rec = Recorder::attach(&a);
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    b.start().await.unwrap();
    settle().await;
    let term = a.leadership().unwrap();
    let resigned_at = Instant::now();
    assert!(a.resign(secs(60.0)).await.unwrap());
    assert!(!term.is_current());
    assert_eq!(term.end_reason(), Some(ChangeReason::Resigned));
    let b_led = wait_for_role(&b, Role::Leader).await;
    assert!(
        b_led - resigned_at < secs(0.1),
        "handover took {:?}",
        b_led - resigned_at
    );
    assert_eq!(a.state().role, Role::Follower);
    // b stops: a, cooling down, does not take over until the cool-down ends.
    b.stop().await.unwrap();
    let a_led = wait_for_role(&a, Role::Leader).await;
    assert!(
        a_led >= resigned_at + secs(60.0),
        "led {:?} after resigning",
        a_led - resigned_at
    );
    assert!(a_led <= resigned_at + secs(61.0));
    assert_eq!(a_rec.changes()[1].reason, ChangeReason::Resigned);
    terms.assert_safe();
    // Resigning as a follower ends no term; resigning when stopped is an error.
    a.stop().await.unwrap();
    assert!(matches!(a.resign(secs(1.0)).await, Err(Error::NotRunning)));
}

#[tokio::test(start_paused = true)]
async fn an_explicit_attempt_during_the_cool_down_may_lead() {
    let a = LeaderElection::new(MemoryLeaseStore::new(), options("a")).unwrap();
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    assert!(a.resign(secs(600.0)).await.unwrap());
    assert!(!a.resign(secs(600.0)).await.unwrap(), "no term to end");
    tokio::time::sleep(secs(5.0)).await;
    assert!(!a.is_leader());
    assert!(a.try_acquire_leadership().await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn resign_waits_for_leader_work_before_releasing() {
    let store = ReleaseOrderCheck {
        inner: MemoryLeaseStore::new(),
        work_running: Arc::new(AtomicBool::new(false)),
        released_while_working: Arc::new(AtomicBool::new(false)),
    };
    let a = LeaderElection::new(store.clone(), options("a")).unwrap();
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    let running = Arc::clone(&store.work_running);
    let worker = a.clone();
    let work = tokio::spawn(async move {
        worker
            .run_task_if_leader(|_| async move {
                running.store(true, Ordering::SeqCst);
                let _flag = SetOnDrop(running);
                std::future::pending::<()>().await;
            })
            .await
    });
    settle().await;
    assert!(a.resign(secs(1.0)).await.unwrap());
    assert!(!store.released_while_working.load(Ordering::SeqCst));
    assert!(matches!(
        work.await.unwrap(),
        TaskOutcome::LeadershipLost(None)
    ));
}

#[tokio::test(start_paused = true)]
async fn run_while_leader_runs_work_for_every_term_until_the_election_stops() {
    let memory = MemoryLeaseStore::new();
    let a = LeaderElection::new(memory.clone(), options("a")).unwrap();
    let b = LeaderElection::new(memory.clone(), options("b")).unwrap();
    let started = Arc::new(std::sync::Mutex::new(Vec::new()));
    let cancelled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    let worker = a.clone();
    let (s, c) = (Arc::clone(&started), Arc::clone(&cancelled));
    let runner = tokio::spawn(async move {
        worker
            .run_while_leader(move |term| {
                let (s, c) = (Arc::clone(&s), Arc::clone(&c));
                async move {
                    s.lock().unwrap().push(term.token());
                    struct Count(Arc<std::sync::atomic::AtomicUsize>);
                    impl Drop for Count {
                        fn drop(&mut self) {
                            self.0.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    let _count = Count(c);
                    std::future::pending::<()>().await;
                }
            })
            .await
    });
    settle().await;
    b.start().await.unwrap();
    // Three terms of a, each ended by a resignation; b takes each over, then stops, and a
    // leads again once its cool-down is over.
    for _ in 0..3 {
        a.resign(secs(1.0)).await.unwrap();
        wait_for_role(&b, Role::Leader).await;
        b.stop().await.unwrap();
        wait_for_role(&a, Role::Leader).await;
        b.start().await.unwrap();
        settle().await;
    }
    assert_eq!(
        started.lock().unwrap().len(),
        4,
        "work starts with every term"
    );
    assert_eq!(
        cancelled.load(Ordering::SeqCst),
        3,
        "and is cancelled when it ends"
    );
    a.stop().await.unwrap();
    let last = runner.await.unwrap();
    assert_eq!(last, Some(ChangeReason::Stopped));
    assert_eq!(cancelled.load(Ordering::SeqCst), 4);
    let tokens = started.lock().unwrap().clone();
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
}

#[tokio::test(start_paused = true)]
async fn run_while_leader_returns_at_once_when_not_running() {
    let a = LeaderElection::new(MemoryLeaseStore::new(), options("a")).unwrap();
    assert_eq!(a.run_while_leader(|_| async {}).await, None);
}
