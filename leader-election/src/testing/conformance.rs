//! The conformance suite: what every backend must do, checked against a live store.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::store::{AcquireOutcome, Lease, LeaseRequest, LeaseStore, RenewOutcome};

/// Timings for [`run_conformance`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConformanceOptions {
    /// The lease duration used by the checks; the shortest the backend accepts keeps the run
    /// short.
    pub ttl: Duration,
    /// How long past `ttl` an expiry or a release notification may take to show.
    pub slack: Duration,
}

impl ConformanceOptions {
    /// Checks with leases of `ttl`, allowing `slack` for expiry and notifications to show.
    #[must_use]
    pub fn new(ttl: Duration, slack: Duration) -> Self {
        Self { ttl, slack }
    }
}

impl Default for ConformanceOptions {
    fn default() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(2))
    }
}

/// Runs every conformance check, each on a fresh store made by `new_store`, which must return a
/// store for an election that no other check uses. Panics with the name of the first check that
/// fails.
///
/// The checks: exclusive acquisition, idempotent re-acquisition by the same owner, only the
/// owner renews, only the owner releases, tokens strictly increase, renewal extends the lease,
/// expiry frees the lease, release wakes waiters, and the current leader is reported.
pub async fn run_conformance<S, F, Fut>(options: ConformanceOptions, mut new_store: F)
where
    S: LeaseStore,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    let o = &options;
    exclusive_acquisition(new_store().await, o).await;
    reacquire_by_owner_is_idempotent(new_store().await, o).await;
    only_owner_renews(new_store().await, o).await;
    only_owner_releases(new_store().await, o).await;
    tokens_strictly_increase(new_store().await, o).await;
    renewal_extends_the_lease(new_store().await, o).await;
    expiry_frees_the_lease(new_store().await, o).await;
    release_wakes_waiters(new_store().await, o).await;
    current_leader_is_reported(new_store().await, o).await;
}

fn req(id: &str, o: &ConformanceOptions) -> LeaseRequest {
    LeaseRequest::new(id, o.ttl)
}

async fn acquire<S: LeaseStore>(store: &S, request: &LeaseRequest, check: &str) -> Lease {
    match store.try_acquire(request).await {
        Ok(AcquireOutcome::Acquired(lease)) => lease,
        other => panic!(
            "[{check}] {} should acquire a free lease, got {other:?}",
            request.instance_id
        ),
    }
}

async fn assert_held<S: LeaseStore>(
    store: &S,
    request: &LeaseRequest,
    holder: &str,
    o: &ConformanceOptions,
    check: &str,
) {
    match store.try_acquire(request).await {
        Ok(AcquireOutcome::Held { leader, expires_in }) => {
            if let Some(leader) = leader {
                assert_eq!(
                    leader.instance_id, holder,
                    "[{check}] wrong holder reported"
                );
            }
            if let Some(expires_in) = expires_in {
                assert!(
                    expires_in <= o.ttl,
                    "[{check}] expires_in {expires_in:?} exceeds the ttl {:?}",
                    o.ttl
                );
            }
        }
        other => panic!(
            "[{check}] {} must not get a lease held by {holder}, got {other:?}",
            request.instance_id
        ),
    }
}

async fn exclusive_acquisition<S: LeaseStore>(store: S, o: &ConformanceOptions) {
    let check = "exclusive_acquisition";
    store.connect().await.expect("connect");
    let a = req("conformance-a", o);
    let b = req("conformance-b", o);
    acquire(&store, &a, check).await;
    assert_held(&store, &b, "conformance-a", o, check).await;
    // The same instance id with another lease id is another owner.
    let a2 = req("conformance-a", o);
    assert_held(&store, &a2, "conformance-a", o, check).await;
}

async fn reacquire_by_owner_is_idempotent<S: LeaseStore>(store: S, o: &ConformanceOptions) {
    let check = "reacquire_by_owner_is_idempotent";
    store.connect().await.expect("connect");
    let a = req("conformance-a", o);
    let first = acquire(&store, &a, check).await;
    let again = acquire(&store, &a, check).await;
    assert_eq!(
        first.token, again.token,
        "[{check}] re-acquiring must keep the token"
    );
}

async fn only_owner_renews<S: LeaseStore>(store: S, o: &ConformanceOptions) {
    let check = "only_owner_renews";
    store.connect().await.expect("connect");
    let a = req("conformance-a", o);
    let b = req("conformance-b", o);
    let lease = acquire(&store, &a, check).await;
    let renewed = store.renew(&b, &lease).await.expect("renew by another");
    assert_eq!(renewed, RenewOutcome::Lost, "[{check}] a non-owner renewed");
    let other_lease_id = req("conformance-a", o);
    let renewed = store.renew(&other_lease_id, &lease).await.expect("renew");
    assert_eq!(
        renewed,
        RenewOutcome::Lost,
        "[{check}] another lease id renewed"
    );
    let renewed = store.renew(&a, &lease).await.expect("renew by owner");
    assert_eq!(
        renewed,
        RenewOutcome::Renewed,
        "[{check}] the owner could not renew"
    );
    assert_held(&store, &b, "conformance-a", o, check).await;
}

async fn only_owner_releases<S: LeaseStore>(store: S, o: &ConformanceOptions) {
    let check = "only_owner_releases";
    store.connect().await.expect("connect");
    let a = req("conformance-a", o);
    let b = req("conformance-b", o);
    let lease = acquire(&store, &a, check).await;
    let released = store.release(&b, &lease).await.expect("release by another");
    assert!(!released, "[{check}] a non-owner released");
    assert_held(&store, &b, "conformance-a", o, check).await;
    let released = store.release(&a, &lease).await.expect("release by owner");
    assert!(released, "[{check}] the owner could not release");
    let again = store.release(&a, &lease).await.expect("second release");
    assert!(!again, "[{check}] a second release reported success");
    acquire(&store, &b, check).await;
    let renewed = store.renew(&a, &lease).await.expect("renew after release");
    assert_eq!(
        renewed,
        RenewOutcome::Lost,
        "[{check}] renewed a released lease"
    );
}

async fn tokens_strictly_increase<S: LeaseStore>(store: S, o: &ConformanceOptions) {
    let check = "tokens_strictly_increase";
    store.connect().await.expect("connect");
    let mut last = None;
    for round in 0..4 {
        let who = if round % 2 == 0 {
            "conformance-a"
        } else {
            "conformance-b"
        };
        let request = req(who, o);
        let lease = acquire(&store, &request, check).await;
        if let Some(last) = last {
            assert!(
                lease.token > last,
                "[{check}] token {} after {last}",
                lease.token
            );
        }
        last = Some(lease.token);
        assert!(store.release(&request, &lease).await.expect("release"));
    }
}

async fn renewal_extends_the_lease<S: LeaseStore>(store: S, o: &ConformanceOptions) {
    let check = "renewal_extends_the_lease";
    store.connect().await.expect("connect");
    let a = req("conformance-a", o);
    let b = req("conformance-b", o);
    let lease = acquire(&store, &a, check).await;
    tokio::time::sleep(o.ttl.mul_f64(0.6)).await;
    let renewed = store.renew(&a, &lease).await.expect("renew");
    assert_eq!(
        renewed,
        RenewOutcome::Renewed,
        "[{check}] the owner could not renew"
    );
    // 1.2 ttl after the acquisition, the renewed lease still stands.
    tokio::time::sleep(o.ttl.mul_f64(0.6)).await;
    assert_held(&store, &b, "conformance-a", o, check).await;
}

async fn expiry_frees_the_lease<S: LeaseStore>(store: S, o: &ConformanceOptions) {
    let check = "expiry_frees_the_lease";
    store.connect().await.expect("connect");
    let a = req("conformance-a", o);
    let b = req("conformance-b", o);
    let started = Instant::now();
    let lease = acquire(&store, &a, check).await;
    let give_up = started + o.ttl + o.slack;
    let taken = loop {
        match store.try_acquire(&b).await.expect("acquire") {
            AcquireOutcome::Acquired(lease) => break lease,
            AcquireOutcome::Held { .. } | AcquireOutcome::Withheld { .. } => {
                assert!(
                    Instant::now() < give_up,
                    "[{check}] the lease did not expire within ttl + slack"
                );
                tokio::time::sleep(o.ttl / 20).await;
            }
        }
    };
    assert!(
        started.elapsed() >= o.ttl.mul_f64(0.9),
        "[{check}] the lease was taken over after {:?}, before its ttl {:?}",
        started.elapsed(),
        o.ttl
    );
    assert!(
        taken.token > lease.token,
        "[{check}] token did not increase"
    );
    let renewed = store.renew(&a, &lease).await.expect("renew");
    assert_eq!(
        renewed,
        RenewOutcome::Lost,
        "[{check}] an expired owner renewed"
    );
}

async fn release_wakes_waiters<S: LeaseStore>(store: S, o: &ConformanceOptions) {
    let check = "release_wakes_waiters";
    store.connect().await.expect("connect");
    let Some(mut waiter) = store.release_notifications() else {
        return;
    };
    let a = req("conformance-a", o);
    let lease = acquire(&store, &a, check).await;
    waiter.mark_seen();
    assert!(store.release(&a, &lease).await.expect("release"));
    tokio::time::timeout(o.slack, waiter.released())
        .await
        .unwrap_or_else(|_| panic!("[{check}] no release notification within {:?}", o.slack));
}

async fn current_leader_is_reported<S: LeaseStore>(store: S, o: &ConformanceOptions) {
    let check = "current_leader_is_reported";
    store.connect().await.expect("connect");
    let leader = store.current_leader().await.expect("current_leader");
    assert_eq!(leader, None, "[{check}] a fresh election has a leader");
    let a = req("conformance-a", o);
    let lease = acquire(&store, &a, check).await;
    let leader = store
        .current_leader()
        .await
        .expect("current_leader")
        .unwrap_or_else(|| panic!("[{check}] no leader reported while one holds the lease"));
    assert_eq!(leader.instance_id, "conformance-a", "[{check}]");
    if let Some(token) = leader.token {
        assert_eq!(token, lease.token, "[{check}] wrong token reported");
    }
    assert!(store.release(&a, &lease).await.expect("release"));
    let leader = store.current_leader().await.expect("current_leader");
    assert_eq!(leader, None, "[{check}] a leader reported after release");
}
