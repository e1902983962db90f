//! The conformance suite: what every backend must do, checked against a live store.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::LeaderInfo;
use crate::store::{AcquireOutcome, Lease, LeaseRequest, LeaseStore, RenewOutcome};
use crate::testing::candidates_are_announced_and_expire;

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

/// One check of the conformance suite; [`Check::ALL`] lists them all, and each is also a
/// public function of this module taking a fresh store.
///
/// The checks of optional capabilities (release notices, metadata, candidates) check what the
/// store declares in [`LeaseStore::capabilities`]: what it declares must work, and what it does
/// not declare must not be offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Check {
    /// [`exclusive_acquisition`]
    ExclusiveAcquisition,
    /// [`reacquire_by_owner_is_idempotent`]
    ReacquireByOwnerIsIdempotent,
    /// [`only_owner_renews`]
    OnlyOwnerRenews,
    /// [`only_owner_releases`]
    OnlyOwnerReleases,
    /// [`tokens_strictly_increase`]
    TokensStrictlyIncrease,
    /// [`renewal_extends_the_lease`]
    RenewalExtendsTheLease,
    /// [`expiry_frees_the_lease`]
    ExpiryFreesTheLease,
    /// [`no_takeover_before_a_renewed_lease_expires`]
    NoTakeoverBeforeARenewedLeaseExpires,
    /// [`release_wakes_waiters`]
    ReleaseWakesWaiters,
    /// [`current_leader_is_reported`]
    CurrentLeaderIsReported,
    /// [`metadata_is_published_with_the_lease`]
    MetadataIsPublishedWithTheLease,
    /// [`candidates_are_announced_and_expire`]
    CandidatesAreAnnouncedAndExpire,
    /// [`records_are_compare_and_set`]
    RecordsAreCompareAndSet,
}

impl Check {
    /// Every check (which [`run_conformance`] runs side by side).
    pub const ALL: [Self; 13] = [
        Self::ExclusiveAcquisition,
        Self::ReacquireByOwnerIsIdempotent,
        Self::OnlyOwnerRenews,
        Self::OnlyOwnerReleases,
        Self::TokensStrictlyIncrease,
        Self::RenewalExtendsTheLease,
        Self::ExpiryFreesTheLease,
        Self::NoTakeoverBeforeARenewedLeaseExpires,
        Self::ReleaseWakesWaiters,
        Self::CurrentLeaderIsReported,
        Self::MetadataIsPublishedWithTheLease,
        Self::CandidatesAreAnnouncedAndExpire,
        Self::RecordsAreCompareAndSet,
    ];

    /// Runs this check on `store`, which must serve an election no other check uses. Panics,
    /// naming the check, if the store fails it.
    pub async fn run<S: LeaseStore>(self, store: S, options: &ConformanceOptions) {
        match self {
            Self::ExclusiveAcquisition => exclusive_acquisition(store, options).await,
            Self::ReacquireByOwnerIsIdempotent => {
                reacquire_by_owner_is_idempotent(store, options).await;
            }
            Self::OnlyOwnerRenews => only_owner_renews(store, options).await,
            Self::OnlyOwnerReleases => only_owner_releases(store, options).await,
            Self::TokensStrictlyIncrease => tokens_strictly_increase(store, options).await,
            Self::RenewalExtendsTheLease => renewal_extends_the_lease(store, options).await,
            Self::ExpiryFreesTheLease => expiry_frees_the_lease(store, options).await,
            Self::NoTakeoverBeforeARenewedLeaseExpires => {
                no_takeover_before_a_renewed_lease_expires(store, options).await;
            }
            Self::ReleaseWakesWaiters => release_wakes_waiters(store, options).await,
            Self::CurrentLeaderIsReported => current_leader_is_reported(store, options).await,
            Self::MetadataIsPublishedWithTheLease => {
                metadata_is_published_with_the_lease(store, options).await;
            }
            Self::CandidatesAreAnnouncedAndExpire => {
                candidates_are_announced_and_expire(store, options).await;
            }
            Self::RecordsAreCompareAndSet => records_are_compare_and_set(store, options).await,
        }
    }
}

/// Runs every conformance check ([`Check::ALL`]) side by side, each on a fresh store made by
/// `new_store`, which must return a store for an election that no other check uses. Panics with
/// the name of the first check that fails.
///
/// Tokens across stores rebuilt from scratch need stores for one and the same election, so that
/// check is apart: [`tokens_increase_across_rebuilt_stores`].
pub async fn run_conformance<S, F, Fut>(options: ConformanceOptions, new_store: F)
where
    S: LeaseStore,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    run_checks(options, Check::ALL, new_store).await;
}

/// Runs the given checks, each on a fresh store made by `new_store` (as for
/// [`run_conformance`]). For a backend that cannot support some check: list the others, and
/// say in the test why the rest are left out.
pub async fn run_checks<S, F, Fut>(
    options: ConformanceOptions,
    checks: impl IntoIterator<Item = Check>,
    mut new_store: F,
) where
    S: LeaseStore,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    // Each check serves an election of its own, so they run side by side: a backend whose
    // leases last 15 s waits for them once, not once per check.
    let mut runs = Vec::new();
    for check in checks {
        let store = new_store().await;
        let options = &options;
        runs.push(Box::pin(async move { check.run(store, options).await }));
    }
    join_all(runs).await;
}

/// Polls every future in `futures` until all have finished (a panic in one propagates).
async fn join_all<F: Future<Output = ()> + Unpin>(mut futures: Vec<F>) {
    let mut done = vec![false; futures.len()];
    std::future::poll_fn(|cx| {
        for (future, done) in futures.iter_mut().zip(done.iter_mut()) {
            if !*done && std::pin::Pin::new(future).poll(cx).is_ready() {
                *done = true;
            }
        }
        if done.iter().all(|d| *d) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
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

/// Checks that a held lease is refused to every other owner, including the same instance id
/// with another lease id.
pub async fn exclusive_acquisition<S: LeaseStore>(store: S, o: &ConformanceOptions) {
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

/// Checks that the owner acquiring again (a retry after a lost reply) keeps its token.
pub async fn reacquire_by_owner_is_idempotent<S: LeaseStore>(store: S, o: &ConformanceOptions) {
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

/// Checks that only the owner, with its own lease id, can renew.
pub async fn only_owner_renews<S: LeaseStore>(store: S, o: &ConformanceOptions) {
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

/// Checks that only the owner can release, that a second release is a no-op, and that a
/// released lease is free and cannot be renewed.
pub async fn only_owner_releases<S: LeaseStore>(store: S, o: &ConformanceOptions) {
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

/// Checks that every acquisition of one store mints a token greater than the last.
pub async fn tokens_strictly_increase<S: LeaseStore>(store: S, o: &ConformanceOptions) {
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

/// Checks that a renewal extends the lease past its first expiry.
pub async fn renewal_extends_the_lease<S: LeaseStore>(store: S, o: &ConformanceOptions) {
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

/// The longest a backend may round a ttl down when it stores it.
const ROUNDING: Duration = Duration::from_millis(1);

/// Polls with `request` until it acquires; returns the lease and when its reply arrived. Panics
/// if that takes longer than `give_up`.
async fn acquire_when_free<S: LeaseStore>(
    store: &S,
    request: &LeaseRequest,
    give_up: Instant,
    o: &ConformanceOptions,
    check: &str,
) -> (Lease, Instant) {
    loop {
        match store.try_acquire(request).await.expect("acquire") {
            AcquireOutcome::Acquired(lease) => return (lease, Instant::now()),
            AcquireOutcome::Held { .. } | AcquireOutcome::Withheld { .. } => {
                assert!(
                    Instant::now() < give_up,
                    "[{check}] the lease did not expire within ttl + slack"
                );
                tokio::time::sleep(o.ttl / 50).await;
            }
        }
    }
}

/// Checks that an abandoned lease expires within `ttl + slack`, and that no other contender
/// gets it before `ttl` has passed since the request that set it was sent (allowing only
/// millisecond rounding): a backend lease shorter than its ttl would let a successor in while
/// the holder still trusts its term.
pub async fn expiry_frees_the_lease<S: LeaseStore>(store: S, o: &ConformanceOptions) {
    let check = "expiry_frees_the_lease";
    store.connect().await.expect("connect");
    let a = req("conformance-a", o);
    let b = req("conformance-b", o);
    let sent = Instant::now();
    let lease = acquire(&store, &a, check).await;
    let (taken, at) = acquire_when_free(&store, &b, sent + o.ttl + o.slack, o, check).await;
    assert!(
        at + ROUNDING >= sent + o.ttl,
        "[{check}] the lease was taken over {:?} after the request that set it was sent, before \
         its ttl {:?}",
        at - sent,
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

/// Checks that a renewed lease lasts its whole ttl from when the renewal was sent: no other
/// contender gets it earlier (allowing only millisecond rounding).
pub async fn no_takeover_before_a_renewed_lease_expires<S: LeaseStore>(
    store: S,
    o: &ConformanceOptions,
) {
    let check = "no_takeover_before_a_renewed_lease_expires";
    store.connect().await.expect("connect");
    let a = req("conformance-a", o);
    let b = req("conformance-b", o);
    let lease = acquire(&store, &a, check).await;
    tokio::time::sleep(o.ttl / 2).await;
    let sent = Instant::now();
    let renewed = store.renew(&a, &lease).await.expect("renew");
    assert_eq!(
        renewed,
        RenewOutcome::Renewed,
        "[{check}] the owner could not renew"
    );
    let (_, at) = acquire_when_free(&store, &b, sent + o.ttl + o.slack, o, check).await;
    assert!(
        at + ROUNDING >= sent + o.ttl,
        "[{check}] the renewed lease was taken over {:?} after the renewal was sent, before its \
         ttl {:?}",
        at - sent,
        o.ttl
    );
}

/// Checks release notices as the store declares them
/// ([`Capabilities::release_notifications`](crate::store::Capabilities::release_notifications)):
/// declared, releasing wakes a follower waiting on [`LeaseStore::release_notifications`] within
/// `slack`; not declared, the store offers no receiver.
pub async fn release_wakes_waiters<S: LeaseStore>(store: S, o: &ConformanceOptions) {
    let check = "release_wakes_waiters";
    store.connect().await.expect("connect");
    let declared = store.capabilities().release_notifications;
    let Some(mut waiter) = store.release_notifications() else {
        assert!(
            !declared,
            "[{check}] the store declares release notifications but offers none"
        );
        return;
    };
    assert!(
        declared,
        "[{check}] the store offers release notifications it does not declare in its capabilities"
    );
    let a = req("conformance-a", o);
    let lease = acquire(&store, &a, check).await;
    waiter.mark_seen();
    assert!(store.release(&a, &lease).await.expect("release"));
    tokio::time::timeout(o.slack, waiter.released())
        .await
        .unwrap_or_else(|_| panic!("[{check}] no release notification within {:?}", o.slack));
}

/// Checks that tokens keep increasing when the store is rebuilt from scratch, as a new process
/// would build it: `same_election` must return a new store for one and the same election
/// (and the same backend) at every call. Each round acquires with a new store (the lease
/// released by the round before, or expired after the first round's lease was abandoned) and
/// requires a token greater than every earlier one: tokens never depend on what a process
/// remembers.
pub async fn tokens_increase_across_rebuilt_stores<S, F, Fut>(
    o: &ConformanceOptions,
    mut same_election: F,
) where
    S: LeaseStore,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    let check = "tokens_increase_across_rebuilt_stores";
    let mut last = None;
    for round in 0..3 {
        let store = same_election().await;
        store.connect().await.expect("connect");
        let request = req(&format!("conformance-{round}"), o);
        let give_up = Instant::now() + o.ttl + o.slack;
        let (lease, _) = acquire_when_free(&store, &request, give_up, o, check).await;
        if let Some(last) = last {
            assert!(
                lease.token > last,
                "[{check}] token {} after {last}, from a rebuilt store",
                lease.token
            );
        }
        last = Some(lease.token);
        // The first lease is abandoned (left to expire), the others released.
        if round > 0 {
            assert!(store.release(&request, &lease).await.expect("release"));
        }
    }
}

/// Checks that `current_leader` reports nobody, then the holder with its token, then nobody
/// after a release.
pub async fn current_leader_is_reported<S: LeaseStore>(store: S, o: &ConformanceOptions) {
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

/// The leader metadata `current_leader` reports now.
async fn published<S: LeaseStore>(store: &S, check: &str) -> Option<Vec<u8>> {
    store
        .current_leader()
        .await
        .expect("current_leader")
        .unwrap_or_else(|| panic!("[{check}] no leader reported while one holds the lease"))
        .metadata
}

/// Checks leader metadata: published with the acquisition and shown by `current_leader` (and
/// by a follower's [`AcquireOutcome::Held`] where it names the leader), replaced by a renewal
/// carrying other metadata (binary, not only text) or none, and by the owner acquiring again;
/// metadata longer than [`LeaseStore::check_metadata`] accepts (1 MiB is tried) refused by a
/// renewal and an acquisition without changing the lease; and never shown for a later holder
/// that publishes none.
///
/// The limit is the one the store declares
/// ([`Capabilities::max_metadata_len`](crate::store::Capabilities::max_metadata_len)): metadata
/// of exactly that length is accepted, one byte more refused; a store that declares none
/// refuses all, and an acquisition carrying some.
pub async fn metadata_is_published_with_the_lease<S: LeaseStore>(store: S, o: &ConformanceOptions) {
    let check = "metadata_is_published_with_the_lease";
    store.connect().await.expect("connect");
    let limit = store.capabilities().max_metadata_len;
    if limit == 0 {
        assert!(
            store.check_metadata(b"x").is_err(),
            "[{check}] the store declares no metadata but accepts some"
        );
        let carrying = req("conformance-a", o).with_metadata(Some(b"x".to_vec()));
        assert!(
            store.try_acquire(&carrying).await.is_err(),
            "[{check}] the store declares no metadata but acquired with some"
        );
        return;
    }
    store
        .check_metadata(&vec![b'x'; limit])
        .unwrap_or_else(|e| {
            panic!("[{check}] metadata of the declared {limit} bytes refused: {e}")
        });
    assert!(
        store.check_metadata(&vec![b'x'; limit + 1]).is_err(),
        "[{check}] metadata over the declared {limit} bytes accepted"
    );
    let text = b"addr=10.0.0.7:8080".to_vec();
    let binary = vec![0, 255, b'"', b'\\', b'\n', 0x80, b'{', b'}', 1];
    let a = req("conformance-a", o).with_metadata(Some(text.clone()));
    let lease = acquire(&store, &a, check).await;
    assert_eq!(
        published(&store, check).await,
        Some(text.clone()),
        "[{check}] the metadata acquired with is not shown"
    );
    let b = req("conformance-b", o);
    if let Ok(AcquireOutcome::Held {
        leader: Some(leader),
        ..
    }) = store.try_acquire(&b).await
    {
        assert_eq!(
            leader.metadata,
            Some(text.clone()),
            "[{check}] a follower was shown other metadata"
        );
    }
    for metadata in [Some(binary.clone()), None, Some(text.clone())] {
        let renewing = a.clone().with_metadata(metadata.clone());
        let renewed = store.renew(&renewing, &lease).await.expect("renew");
        assert_eq!(renewed, RenewOutcome::Renewed, "[{check}] could not renew");
        assert_eq!(
            published(&store, check).await,
            metadata,
            "[{check}] a renewal did not replace the metadata"
        );
    }
    let again = acquire(
        &store,
        &a.clone().with_metadata(Some(binary.clone())),
        check,
    )
    .await;
    assert_eq!(
        again.token, lease.token,
        "[{check}] re-acquiring changed the token"
    );
    assert_eq!(
        published(&store, check).await,
        Some(binary.clone()),
        "[{check}] the owner acquiring again did not replace the metadata"
    );
    let huge = vec![b'x'; 1 << 20];
    if store.check_metadata(&huge).is_err() {
        let too_big = a.clone().with_metadata(Some(huge.clone()));
        assert!(
            store.renew(&too_big, &lease).await.is_err(),
            "[{check}] a renewal with metadata over the limit was not refused"
        );
        let leader = store
            .current_leader()
            .await
            .expect("current_leader")
            .unwrap_or_else(|| panic!("[{check}] a refused renewal ended the lease"));
        assert_eq!(
            (leader.instance_id.as_str(), leader.metadata),
            ("conformance-a", Some(binary.clone())),
            "[{check}] a refused renewal changed the lease"
        );
    }
    assert!(store.release(&a, &lease).await.expect("release"));
    if store.check_metadata(&huge).is_err() {
        let too_big = b.clone().with_metadata(Some(huge));
        assert!(
            store.try_acquire(&too_big).await.is_err(),
            "[{check}] an acquisition with metadata over the limit was not refused"
        );
        let leader = store.current_leader().await.expect("current_leader");
        // A store that hands over may have handed the lease to b's earlier candidacy, with
        // the metadata it was answered `Held` with (none).
        let handed = |l: &LeaderInfo| {
            store.capabilities().hands_over
                && l.instance_id == "conformance-b"
                && l.metadata.is_none()
        };
        assert!(
            leader.as_ref().is_none_or(handed),
            "[{check}] a refused acquisition took the lease: {leader:?}"
        );
    }
    let next = acquire(&store, &b, check).await;
    assert!(next.token > lease.token, "[{check}] token did not increase");
    assert_eq!(
        published(&store, check).await,
        None,
        "[{check}] a new holder publishing nothing shows its predecessor's metadata"
    );
}

/// Checks the election's record ([`LeaseStore::read_record`], [`LeaseStore::write_record`]):
/// absent at first; written only at the version expected (absent, or as read), each write
/// giving a new version; never two writers at one version; binary data kept byte for byte; a
/// record of the declared
/// [`max_record_len`](crate::store::Capabilities::max_record_len) kept and one byte more
/// refused; and the record outliving an acquisition, a release and the lease's expiry. A store
/// that declares no records must fail both calls.
pub async fn records_are_compare_and_set<S: LeaseStore>(store: S, o: &ConformanceOptions) {
    let check = "records_are_compare_and_set";
    store.connect().await.expect("connect");
    let limit = store.capabilities().max_record_len;
    if limit == 0 {
        assert!(
            store.read_record().await.is_err(),
            "[{check}] the store declares no records but reads one"
        );
        assert!(
            store.write_record(None, b"x").await.is_err(),
            "[{check}] the store declares no records but writes one"
        );
        return;
    }
    let read = || async {
        store
            .read_record()
            .await
            .unwrap_or_else(|e| panic!("[{check}] read_record: {e}"))
    };
    let write = |expected: Option<crate::store::RecordVersion>, data: Vec<u8>| {
        let store = &store;
        async move {
            store
                .write_record(expected.as_ref(), &data)
                .await
                .unwrap_or_else(|e| panic!("[{check}] write_record: {e}"))
        }
    };
    assert_eq!(read().await, None, "[{check}] a new election has a record");
    let binary = vec![0, 255, b'"', b'\\', b'\n', 0x80, b'{', b'}', 1];
    let v1 = write(None, binary.clone())
        .await
        .unwrap_or_else(|| panic!("[{check}] the first record was not written"));
    assert_eq!(
        write(None, b"other".to_vec()).await,
        None,
        "[{check}] a write expecting no record replaced one"
    );
    let first = read()
        .await
        .unwrap_or_else(|| panic!("[{check}] the record is gone"));
    assert_eq!(
        (&first.version, &first.data),
        (&v1, &binary),
        "[{check}] the record read is not the one written"
    );
    // A lease acquired, released and expired leaves the record alone.
    let a = req("conformance-a", o);
    let lease = acquire(&store, &a, check).await;
    assert!(store.release(&a, &lease).await.expect("release"));
    let b = req("conformance-b", o);
    acquire(&store, &b, check).await;
    tokio::time::sleep(o.ttl + o.slack).await;
    assert_eq!(
        read().await.map(|r| r.data),
        Some(binary.clone()),
        "[{check}] the record did not outlive the lease"
    );
    // Two writers expecting the same version: exactly one wins.
    let (x, y) = tokio::join!(
        write(Some(v1.clone()), b"x".to_vec()),
        write(Some(v1.clone()), b"y".to_vec())
    );
    let (v2, winner) = match (x, y) {
        (Some(v), None) => (v, b"x".to_vec()),
        (None, Some(v)) => (v, b"y".to_vec()),
        other => panic!("[{check}] two writers at one version: {other:?}"),
    };
    assert_ne!(v2, v1, "[{check}] a write kept the version");
    assert_eq!(
        write(Some(v1.clone()), b"stale".to_vec()).await,
        None,
        "[{check}] a write at a stale version succeeded"
    );
    assert_eq!(
        read().await.map(|r| (r.version, r.data)),
        Some((v2.clone(), winner)),
        "[{check}] the record is not the winner's"
    );
    let full = vec![b'r'; limit];
    let v3 = write(Some(v2.clone()), full.clone())
        .await
        .unwrap_or_else(|| panic!("[{check}] a record of the declared {limit} bytes refused"));
    assert!(
        store
            .write_record(Some(&v3), &vec![b'r'; limit + 1])
            .await
            .is_err(),
        "[{check}] a record over the declared {limit} bytes accepted"
    );
    assert_eq!(
        read().await.map(|r| (r.version, r.data)),
        Some((v3, full)),
        "[{check}] a refused write changed the record"
    );
}
