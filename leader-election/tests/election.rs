//! Behaviour of the election driver — acquiring, renewing, deadlines, followers, leader work —
//! on tokio's paused clock: deterministic and instant.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Recorder, options, secs, settle, wait_for_role};
use leader_election::store::{AcquireOutcome, Capabilities, Lease, LeaseRequest, RenewOutcome};
use leader_election::testing::{FaultyStore, TermRecorder, assert_safe};
use leader_election::{
    ChangeReason, ElectionEvent, FencingToken, LeaderElection, LeaderInfo, LeaseStore,
    MemoryLeaseStore, Role, TaskOutcome,
};
use tokio::time::Instant;

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
async fn a_term_the_loop_sees_run_out_late_ends_at_its_deadline_in_its_event() {
    // A starved process: the loop wakes long after the deadline. The term stopped being
    // current at the deadline (`Leadership::is_current` reads the clock), so its event must
    // say so, not when the loop got round to it.
    let store = FaultyStore::new(MemoryLeaseStore::new());
    let control = store.control();
    let mut o = options("a");
    o.max_retry_attempts = 1000;
    let election = LeaderElection::new(store, o.clone()).unwrap();
    let mut events = election.subscribe();
    election.start().await.unwrap();
    let t0 = wait_for_role(&election, Role::Leader).await;
    control.set_partitioned(true);
    let term = election.leadership().unwrap();
    let deadline = t0 + o.lease_duration - o.deadline_margin();
    assert_eq!(term.deadline(), deadline);
    // Every timer fires at once, two leases late.
    tokio::time::advance(o.lease_duration * 2).await;
    assert!(!term.is_current());
    wait_for_role(&election, Role::Follower).await;
    let mut ended = None;
    while let Ok(event) = events.try_recv() {
        if let ElectionEvent::LeadershipChanged {
            is_leader: false,
            reason,
            at,
            ..
        } = event
        {
            ended = Some((reason, at));
        }
    }
    assert_eq!(ended, Some((ChangeReason::DeadlinePassed, deadline)));
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
    // a resigns; b asks again at once, long before its own wake-up is due.
    tokio::time::sleep(secs(1.0)).await;
    a.resign(secs(60.0)).await.unwrap();
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

/// A contender whose requests land but whose replies never come back holds leases it cannot
/// know of, and every retry with the same lease id would extend them. Run under many seeds of
/// the retry jitter (the election's randomness is thread-local, and the loop runs on this
/// thread): the others must get the lease within the bound under every one of them, not only
/// when the jitter favours them.
#[tokio::test(start_paused = true)]
async fn a_contender_whose_replies_stay_lost_does_not_lock_the_others_out() {
    for seed in 0..40 {
        fastrand::seed(seed);
        replies_stay_lost(seed).await;
    }
}

async fn replies_stay_lost(seed: u64) {
    let memory = MemoryLeaseStore::new();
    let a_store = FaultyStore::new(memory.clone());
    let a_faults = a_store.control();
    let mut o = options("a");
    // Retries come faster than the lease expires, so each one would keep the lease alive.
    o.retry_interval = secs(1.0);
    o.max_retry_interval = secs(4.0);
    let a = LeaderElection::new(a_store, o.clone()).unwrap();
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
    assert!(took <= bound, "seed {seed}: b waited {took:?}");
    // Still b's, a lease later: a, still in the dark, does not take it back.
    tokio::time::sleep(o.lease_duration).await;
    assert!(b.is_leader(), "seed {seed}: b lost the lease");
    a_faults.set_drop_replies(false);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// A store whose renewals block their thread for 3 s: the election loop is stuck, as in a
/// starved runtime, and cannot notice its deadline.
#[derive(Clone, Default)]
struct StuckLoop(MemoryLeaseStore);

impl LeaseStore for StuckLoop {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }
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

/// Withholds the free lease until `until`, as a backend that restarted does.
#[derive(Clone)]
struct WithholdsUntil {
    inner: MemoryLeaseStore,
    until: Instant,
}

impl LeaseStore for WithholdsUntil {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }
    async fn try_acquire(&self, r: &LeaseRequest) -> leader_election::Result<AcquireOutcome> {
        let now = Instant::now();
        if now < self.until {
            return Ok(AcquireOutcome::Withheld {
                wait: self.until - now,
                reason: leader_election::store::WithholdReason::BackendRestarted,
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
            leader_election::store::WithholdReason::BackendRestarted,
            secs(15.0)
        )],
        "the wait must be said once, with its reason and length"
    );
}

/// Design rule 13: after `max_retry_attempts` failed renewals the leader steps down ahead of
/// its deadline, but work that outlives the term keeps the lease from being released: a
/// release would wake a follower within milliseconds while the old work still runs.
#[tokio::test(start_paused = true)]
async fn a_leader_stepping_down_after_failed_renewals_releases_only_after_its_work_ends() {
    let mut o = options("a");
    o.shutdown_timeout = secs(2.0);
    let FaultyPair {
        control,
        a,
        b,
        terms,
        ..
    } = FaultyPair::start(o.clone()).await;
    let a_rec = Recorder::attach(&a);
    tokio::time::sleep(secs(1.0)).await;
    assert!(!b.is_leader());

    // Leader work that ignores cancellation until the test lets it go. While it runs on the
    // blocking pool, tokio does not auto-advance the paused clock: the test advances it.
    let (finish, finish_rx) = std::sync::mpsc::channel::<()>();
    let finished = Arc::new(AtomicBool::new(false));
    let task_finished = Arc::clone(&finished);
    let worker = a.clone();
    let task = tokio::spawn(async move {
        worker
            .run_blocking_task_if_leader(move |_| {
                let _ = finish_rx.recv();
                task_finished.store(true, Ordering::SeqCst);
            })
            .await
    });
    tokio::task::yield_now().await;
    // Every renewal fails (as behind a latency above `operation_timeout`) until a steps
    // down; the release after that would reach the backend.
    control.fail_next(o.max_retry_attempts);
    let started = Instant::now();
    while a.is_leader() {
        assert!(started.elapsed() < o.lease_duration, "a never stepped down");
        tokio::time::advance(Duration::from_millis(100)).await;
        tokio::task::yield_now().await;
    }
    assert_eq!(
        a_rec.changes().pop().unwrap().reason,
        ChangeReason::RenewFailed
    );
    // The work runs one more second, well inside a's lease as the backend keeps it: b must
    // not lead meanwhile.
    let stepped_down = Instant::now();
    while stepped_down.elapsed() < secs(1.0) {
        assert!(
            !b.is_leader(),
            "b leads {:?} after a stepped down, while a's work still runs",
            stepped_down.elapsed()
        );
        tokio::time::advance(Duration::from_millis(100)).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }
    finish.send(()).unwrap();
    let _ = task.await.unwrap();
    assert!(finished.load(Ordering::SeqCst));
    // Once the work ended inside a's grace, the lease is released: the next term (a's again,
    // or b's, woken by the release) begins at once, not a lease later.
    let ended = Instant::now();
    let next = terms.term_after(1, o.lease_duration).await;
    assert!(next.start >= ended);
    assert!(next.start - ended < secs(1.0), "{next:?}");
    terms.assert_safe();
}

/// Design rule 9 in the core: a follower that saw the lease held and then finds the record
/// gone without a release (an operator deleted it, perhaps with every other record of the
/// election) does not take it at once: the holder may have renewed just before the deletion.
#[tokio::test(start_paused = true)]
async fn a_record_deleted_under_its_holder_keeps_followers_out() {
    let memory = MemoryLeaseStore::new();
    let a = LeaderElection::new(memory.clone(), options("a")).unwrap();
    let b = LeaderElection::new(memory.clone(), options("b")).unwrap();
    let terms = TermRecorder::new();
    terms.attach(&a).attach(&b);
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    b.start().await.unwrap();
    tokio::time::sleep(secs(1.0)).await;
    // a renews at 10 s; the record is deleted at 14 s; b asks at once.
    tokio::time::sleep(secs(13.0)).await;
    memory.clear();
    assert!(
        !b.try_acquire_leadership().await.unwrap(),
        "b took a deleted lease whose holder still trusts it"
    );
    assert!(a.is_leader());
    // a finds out at its next renewal and, never having seen another holder, takes the lease
    // again; b follows it.
    tokio::time::sleep(secs(60.0)).await;
    assert!(a.is_leader());
    assert!(!b.is_leader());
    let a_terms = terms.terms_of("a");
    assert_eq!(a_terms.len(), 2, "{a_terms:?}");
    terms.assert_safe();
}

/// A former leader expects the record as much as a follower that saw it held: after it
/// resigned (or its term ran out, cut off), another contender may have taken the lease, and an
/// operator may delete the record under that holder before the former leader asks again.
/// Found by the tester (an operator's `DELETE` of every row on PostgreSQL during a resigned
/// leader's cool-down: the former leader took the lease at once, 497 ms before the holder
/// found out at its next renewal).
#[tokio::test(start_paused = true)]
async fn a_former_leader_does_not_take_a_record_deleted_under_its_successor() {
    let memory = MemoryLeaseStore::new();
    let a = LeaderElection::new(memory.clone(), options("a")).unwrap();
    let b = LeaderElection::new(memory.clone(), options("b")).unwrap();
    let terms = TermRecorder::new();
    terms.attach(&a).attach(&b);
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    b.start().await.unwrap();
    tokio::time::sleep(secs(1.0)).await;
    // a resigns for 12 s; b takes over at once and renews every 10 s.
    assert!(a.resign(secs(12.0)).await.unwrap());
    wait_for_role(&b, Role::Leader).await;
    // The record is deleted under b at 11 s: b finds out at its renewal at 20 s; a's
    // cool-down ends at 12 s.
    tokio::time::sleep(secs(11.0)).await;
    memory.clear();
    tokio::time::sleep(secs(60.0)).await;
    terms.assert_safe();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// The same for a leader cut off: its term runs out, a follower takes over, and the record is
/// deleted under the new holder before the old leader, healed, asks again.
#[tokio::test(start_paused = true)]
async fn a_leader_cut_off_does_not_take_a_record_deleted_under_its_successor_once_healed() {
    let FaultyPair {
        memory,
        control,
        a,
        b,
        terms,
    } = FaultyPair::start(options("a")).await;
    control.set_partitioned(true);
    wait_for_role(&b, Role::Leader).await;
    // b renews every 10 s from its acquisition; the record goes 1 s after it, and a is healed
    // then.
    tokio::time::sleep(secs(1.0)).await;
    memory.clear();
    control.heal();
    tokio::time::sleep(secs(60.0)).await;
    terms.assert_safe();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// The same with the holder cut off: the follower that found the record gone acquires one
/// lease after it found it gone, after the holder's deadline, and the election goes on.
#[tokio::test(start_paused = true)]
async fn a_follower_takes_a_deleted_lease_one_lease_after_finding_it_gone() {
    let o = options("a");
    let FaultyPair {
        memory,
        control,
        a,
        b,
        terms,
    } = FaultyPair::start(o.clone()).await;
    let b_rec = Recorder::attach(&b);
    tokio::time::sleep(secs(14.0)).await;
    // a renewed at 10 s and trusts its lease until about 40 s; then it is cut off, and the
    // record deleted.
    control.set_partitioned(true);
    memory.clear();
    let found_gone = Instant::now();
    assert!(!b.try_acquire_leadership().await.unwrap());
    let led = wait_for_role(&b, Role::Leader).await;
    assert!(
        led >= found_gone + o.lease_duration,
        "b led {:?} after finding the record gone",
        led - found_gone
    );
    assert!(
        led <= found_gone + o.lease_duration + secs(5.0),
        "b waited {:?}",
        led - found_gone
    );
    assert!(!a.is_leader());
    assert!(b_rec.changes().len() == 1);
    terms.assert_safe();
}

/// Two contenders on one memory store: `a`, with `options`, through a [`FaultyStore`], leads;
/// `b` follows on the plain store. Both are recorded from before they start.
struct FaultyPair {
    memory: MemoryLeaseStore,
    control: leader_election::testing::FaultControl,
    a: LeaderElection<FaultyStore<MemoryLeaseStore>>,
    b: LeaderElection<MemoryLeaseStore>,
    terms: TermRecorder,
}

impl FaultyPair {
    async fn start(options_a: leader_election::LeaderElectionOptions) -> Self {
        let memory = MemoryLeaseStore::new();
        let faulty = FaultyStore::new(memory.clone());
        let control = faulty.control();
        let a = LeaderElection::new(faulty, options_a).unwrap();
        let b = LeaderElection::new(memory.clone(), options("b")).unwrap();
        let terms = TermRecorder::new();
        terms.attach(&a).attach(&b);
        a.start().await.unwrap();
        wait_for_role(&a, Role::Leader).await;
        b.start().await.unwrap();
        Self {
            memory,
            control,
            a,
            b,
            terms,
        }
    }
}

/// Answers every acquisition as extended `before` the call (a store that kept the lease alive
/// beforehand, like one handed over to a claim).
struct ExtendedBefore(Duration);

impl leader_election::store::StoreHooks for ExtendedBefore {
    fn acquired(
        &self,
        sent: Instant,
        outcome: leader_election::Result<AcquireOutcome>,
    ) -> leader_election::Result<AcquireOutcome> {
        match outcome {
            Ok(AcquireOutcome::Acquired(lease)) => Ok(AcquireOutcome::Acquired(
                lease.with_extended_at(sent - self.0),
            )),
            other => other,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_lease_extended_before_the_acquisition_counts_from_then() {
    let o = options("a");
    let before = secs(3.0);
    assert!(o.renew_interval > before, "no renewal before the check");
    let store = leader_election::store::Forward::with_hooks(
        MemoryLeaseStore::new(),
        ExtendedBefore(before),
    );
    let election = LeaderElection::new(store, o.clone()).unwrap();
    let started = Instant::now();
    election.start().await.unwrap();
    let led = wait_for_role(&election, Role::Leader).await;
    assert_eq!(led, started);
    let valid_for = o.lease_duration.saturating_sub(o.deadline_margin());
    // The deadline counts from 3 s before the call, not from the call.
    let term = election.leadership().expect("a term");
    assert_eq!(term.deadline(), started - before + valid_for);
    election.stop().await.unwrap();
    // A lease last extended longer ago than it lasts is not trusted at all.
    let stale = leader_election::store::Forward::with_hooks(
        MemoryLeaseStore::new(),
        ExtendedBefore(o.lease_duration),
    );
    let late = LeaderElection::new(stale, options("b")).unwrap();
    late.start().await.unwrap();
    settle().await;
    assert!(!late.is_leader());
    late.stop().await.unwrap();
}
