//! Preferred leaders on virtual time, with the in-memory store.

mod common;

use std::time::Duration;

use common::{options, wait_for_role};
use leader_election::priority::Candidate;
use leader_election::store::{
    AcquireOutcome, Capabilities, Lease, LeaseRequest, ReleaseReceiver, RenewOutcome,
};
use leader_election::testing::{TermRecorder, preferred_leader_handover};
use leader_election::{
    ChangeReason, LeaderElection, LeaderElectionOptions, LeaderInfo, LeaseStore, MemoryLeaseStore,
    Role,
};

fn with_priority(id: &str, priority: u32) -> LeaderElectionOptions {
    let mut options = options(id);
    options.priority = Some(priority);
    options
}

#[tokio::test(start_paused = true)]
async fn the_memory_store_hands_over_to_a_preferred_contender() {
    let backend = MemoryLeaseStore::new();
    let handover = preferred_leader_handover(
        &LeaderElectionOptions::default(),
        Duration::from_millis(100),
        || {
            let store = backend.clone();
            async move { store }
        },
    )
    .await;
    assert!(handover < Duration::from_millis(100), "{handover:?}");
}

#[tokio::test(start_paused = true)]
async fn the_min_tenure_is_served_before_handing_over() {
    let store = MemoryLeaseStore::new();
    let mut low = with_priority("low", 0);
    low.min_tenure = Some(Duration::from_secs(95));
    let low = LeaderElection::new(store.clone(), low).unwrap();
    let high = LeaderElection::new(store.clone(), with_priority("high", 3)).unwrap();
    let recorder = TermRecorder::new();
    recorder.attach(&low).attach(&high);
    low.start().await.unwrap();
    let led_at = wait_for_role(&low, Role::Leader).await;
    high.start().await.unwrap();
    let high_led_at = wait_for_role(&high, Role::Leader).await;
    // The first renewal after the tenure: renewals come every 10 s.
    let waited = high_led_at - led_at;
    assert!(
        waited >= Duration::from_secs(95) && waited <= Duration::from_secs(101),
        "{waited:?}"
    );
    let terms = recorder.terms_of("low");
    assert_eq!(terms[0].end_reason, Some(ChangeReason::PreferredLeader));
    recorder.assert_safe();
}

#[tokio::test(start_paused = true)]
async fn an_equal_or_lower_priority_is_no_reason_to_hand_over() {
    let store = MemoryLeaseStore::new();
    let leader = LeaderElection::new(store.clone(), with_priority("leader", 4)).unwrap();
    let equal = LeaderElection::new(store.clone(), with_priority("equal", 4)).unwrap();
    let lower = LeaderElection::new(store.clone(), with_priority("lower", 2)).unwrap();
    let recorder = TermRecorder::new();
    recorder.attach(&leader).attach(&equal).attach(&lower);
    leader.start().await.unwrap();
    wait_for_role(&leader, Role::Leader).await;
    equal.start().await.unwrap();
    lower.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert!(leader.is_leader());
    assert_eq!(recorder.terms().len(), 1, "{:?}", recorder.terms());
    assert_eq!(
        store.strongest_candidate().await.unwrap(),
        Some(Candidate::new("equal", 4))
    );
}

#[tokio::test(start_paused = true)]
async fn a_candidate_that_vanished_is_not_handed_over_to() {
    let store = MemoryLeaseStore::new();
    let leader = LeaderElection::new(store.clone(), with_priority("leader", 0)).unwrap();
    let recorder = TermRecorder::new();
    recorder.attach(&leader);
    leader.start().await.unwrap();
    wait_for_role(&leader, Role::Leader).await;
    // A candidate announced once, then died: its record expires after a lease (30 s), before
    // the leader's tenure (one lease) is served at a renewal.
    store
        .announce_candidate(&Candidate::new("gone", 9), Duration::from_secs(25))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(leader.is_leader());
    assert_eq!(recorder.terms().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn contenders_without_a_priority_make_no_extra_calls() {
    let store = MemoryLeaseStore::new();
    let leader = LeaderElection::new(store.clone(), options("leader")).unwrap();
    let follower = LeaderElection::new(store.clone(), options("follower")).unwrap();
    leader.start().await.unwrap();
    wait_for_role(&leader, Role::Leader).await;
    follower.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(store.strongest_candidate().await.unwrap(), None);
}

/// A store that records no candidates: the trait's defaults.
#[derive(Clone, Debug, Default)]
struct NoCandidates(MemoryLeaseStore);

impl LeaseStore for NoCandidates {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_release_notifications()
    }
    async fn try_acquire(&self, request: &LeaseRequest) -> leader_election::Result<AcquireOutcome> {
        self.0.try_acquire(request).await
    }
    async fn renew(
        &self,
        request: &LeaseRequest,
        lease: &Lease,
    ) -> leader_election::Result<RenewOutcome> {
        self.0.renew(request, lease).await
    }
    async fn release(
        &self,
        request: &LeaseRequest,
        lease: &Lease,
    ) -> leader_election::Result<bool> {
        self.0.release(request, lease).await
    }
    async fn current_leader(&self) -> leader_election::Result<Option<LeaderInfo>> {
        self.0.current_leader().await
    }
    fn release_notifications(&self) -> Option<ReleaseReceiver> {
        self.0.release_notifications()
    }
}

#[tokio::test(start_paused = true)]
async fn a_priority_on_a_store_without_candidates_is_refused_when_built() {
    let store = NoCandidates::default();
    let err = store
        .announce_candidate(&Candidate::new("x", 1), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    let err = LeaderElection::new(store.clone(), with_priority("high", 9)).unwrap_err();
    assert_eq!(err.field, "priority");
    assert!(err.rule.contains("records no candidates"), "{err}");
    // Without a priority it elects as any store does.
    let leader = LeaderElection::new(store.clone(), options("leader")).unwrap();
    leader.start().await.unwrap();
    wait_for_role(&leader, Role::Leader).await;
}

#[tokio::test(start_paused = true)]
async fn after_a_handover_a_lower_follower_lets_the_preferred_one_take_over() {
    // Three contenders: the handover must go to the preferred one, never to the other low one
    // woken by the same release.
    for _ in 0..5 {
        let store = MemoryLeaseStore::new();
        let a = LeaderElection::new(store.clone(), with_priority("a", 0)).unwrap();
        let b = LeaderElection::new(store.clone(), with_priority("b", 0)).unwrap();
        let c = LeaderElection::new(store.clone(), with_priority("c", 7)).unwrap();
        let recorder = TermRecorder::new();
        recorder.attach(&a).attach(&b).attach(&c);
        a.start().await.unwrap();
        wait_for_role(&a, Role::Leader).await;
        b.start().await.unwrap();
        c.start().await.unwrap();
        wait_for_role(&c, Role::Leader).await;
        let terms = recorder.terms();
        assert_eq!(terms.len(), 2, "{terms:?}");
        assert_eq!(terms[1].contender, "c");
        recorder.assert_safe();
    }
}

#[test]
fn priority_and_min_tenure_come_from_the_environment() {
    let var = |name: &str, value: &str| (format!("LEADER_ELECTION_{name}"), value.to_owned());
    let o =
        LeaderElectionOptions::from_vars([var("PRIORITY", "5"), var("MIN_TENURE", "45s")]).unwrap();
    assert_eq!(o.priority, Some(5));
    assert_eq!(o.min_tenure(), Duration::from_secs(45));
    assert_eq!(options("x").min_tenure(), options("x").lease_duration);
    let err = LeaderElectionOptions::from_vars([var("MIN_TENURE", "25h")]).unwrap_err();
    assert_eq!(err.field, "min_tenure");
    let err = LeaderElectionOptions::from_vars([var("PRIORITY", "-1")]).unwrap_err();
    assert_eq!(err.field, "priority");
}

#[tokio::test(start_paused = true)]
async fn a_lower_follower_lets_an_announced_candidate_go_first_but_not_forever() {
    let store = MemoryLeaseStore::new();
    let a = LeaderElection::new(store.clone(), with_priority("a", 0)).unwrap();
    let b = LeaderElection::new(store.clone(), with_priority("b", 0)).unwrap();
    let recorder = TermRecorder::new();
    recorder.attach(&a).attach(&b);
    a.start().await.unwrap();
    wait_for_role(&a, Role::Leader).await;
    b.start().await.unwrap();
    // b learns who leads.
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A candidate that announces itself but never takes over (its record outlives the test).
    store
        .announce_candidate(&Candidate::new("ghost", 9), Duration::from_secs(3600))
        .await
        .unwrap();
    a.resign(Duration::from_secs(3600)).await.unwrap();
    let resigned = tokio::time::Instant::now();
    let led = wait_for_role(&b, Role::Leader).await;
    let waited = led - resigned;
    // Not at the release, but after waiting (renew intervals of 10 s) at most two leases.
    assert!(waited >= Duration::from_secs(9), "{waited:?}");
    assert!(waited <= Duration::from_secs(75), "{waited:?}");
    recorder.assert_safe();
}
