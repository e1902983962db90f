//! The election controls — resign, work per term — on tokio's paused clock.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{Recorder, ReleaseOrderCheck, SetOnDrop, options, secs, settle, wait_for_role};
use leader_election::testing::TermRecorder;
use leader_election::{
    ChangeReason, Error, LeaderElection, LeaseStore, MemoryLeaseStore, Role, TaskOutcome,
};
use tokio::time::Instant;

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
    let store = ReleaseOrderCheck::new();
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

#[tokio::test(start_paused = true)]
async fn metadata_over_the_store_limit_is_refused_before_anything_is_written() {
    let memory = MemoryLeaseStore::new();
    let mut too_big = options("a");
    too_big.metadata = Some(vec![b'x'; MemoryLeaseStore::MAX_METADATA_LEN + 1]);
    let err = LeaderElection::new(memory.clone(), too_big).unwrap_err();
    assert_eq!(err.field, "metadata");
    assert!(err.rule.contains("limit of 65536 bytes"), "{err}");

    let mut fits = options("a");
    fits.metadata = Some(vec![b'x'; MemoryLeaseStore::MAX_METADATA_LEN]);
    let a = LeaderElection::new(memory.clone(), fits).unwrap();
    // Kept for the next start while stopped.
    assert!(!a.proclaim("addr=a").await.unwrap());
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    let leader = memory.current_leader().await.unwrap().unwrap();
    assert_eq!(leader.metadata_str(), Some("addr=a"));
    let err = a
        .proclaim(vec![b'x'; MemoryLeaseStore::MAX_METADATA_LEN + 1])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::MetadataTooLarge {
                len: 65537,
                limit: 65536
            }
        ),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_eq!(
        memory
            .current_leader()
            .await
            .unwrap()
            .unwrap()
            .metadata_str(),
        Some("addr=a")
    );
    // An empty value withdraws it.
    assert!(a.proclaim("").await.unwrap());
    assert_eq!(
        memory.current_leader().await.unwrap().unwrap().metadata,
        None
    );
    assert_eq!(a.state().leader.unwrap().metadata, None);
    a.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_store_that_cannot_publish_metadata_refuses_it() {
    let mut with = options("a");
    with.metadata = Some(b"addr".to_vec());
    // A wrapper of the memory store that does not forward `check_metadata`.
    let err = LeaderElection::new(ReleaseOrderCheck::new(), with).unwrap_err();
    assert_eq!(err.field, "metadata");
    let a = LeaderElection::new(ReleaseOrderCheck::new(), options("a")).unwrap();
    assert!(matches!(
        a.proclaim("addr").await,
        Err(Error::MetadataTooLarge { limit: 0, .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_proclaim_whose_renewal_fails_is_published_by_the_next_one() {
    let memory = MemoryLeaseStore::new();
    let faulty = leader_election::testing::FaultyStore::new(memory.clone());
    let control = faulty.control();
    let a = LeaderElection::new(faulty, options("a")).unwrap();
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    let term = a.leadership().unwrap();
    control.fail_next(1);
    let err = a.proclaim("addr=a").await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    // Still leading, and the retried renewal carries the value.
    assert!(a.is_leader());
    assert_eq!(a.metadata().as_deref(), Some(&b"addr=a"[..]));
    let mut state = a.watch();
    state
        .wait_for(|s| {
            s.leader
                .as_ref()
                .is_some_and(|l| l.metadata_str() == Some("addr=a"))
        })
        .await
        .unwrap();
    assert!(term.is_current(), "the same term");
    assert_eq!(
        memory
            .current_leader()
            .await
            .unwrap()
            .unwrap()
            .metadata_str(),
        Some("addr=a")
    );
    // A proclaim from a follower is published with its next term.
    a.resign(secs(1.0)).await.unwrap();
    assert!(!a.proclaim("addr=a2").await.unwrap());
    wait_for_role(&a, Role::Leader).await;
    assert_eq!(
        memory
            .current_leader()
            .await
            .unwrap()
            .unwrap()
            .metadata_str(),
        Some("addr=a2")
    );
    a.stop().await.unwrap();
}
