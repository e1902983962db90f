//! What a backend's `tests/suite.rs` (the core's generic suite) and its other tests share,
//! whatever the backend: a server shared by the tests of one binary ([`Shared`]), a store's
//! connection cut through a [`FaultProxy`] ([`ProxyCut`]), waiting for one leader among
//! elections ([`one_leader`], [`token`]), and the start and end of a test of two contenders
//! ([`lead_then_follow`], [`stop_and_check`]).

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use leader_election::store::{AcquireOutcome, Lease, LeaseRequest};
use leader_election::testing::TermRecorder;
use leader_election::testing::suite::Cut;
use leader_election::{FencingToken, LeaderElection, LeaseStore};
use leader_election_fixtures::FaultProxy;
use tokio::time::Instant;

/// A server (or anything costly to start) that the tests of one binary share while any of
/// them holds it: started by the first caller of [`get`](Self::get), stopped when the last
/// holder drops it (a later caller starts a new one). A process-wide static holding the server
/// itself would never be dropped, and would leave the server running after the tests.
///
/// ```text
/// async fn shared() -> Arc<MyFixture> {
///     static SHARED: Shared<MyFixture> = Shared::new();
///     SHARED.get(MyFixture::start).await
/// }
/// leader_election::store_suite!(&*shared().await);
/// ```
#[derive(Debug)]
pub struct Shared<T> {
    current: Mutex<Weak<T>>,
    starting: tokio::sync::Mutex<()>,
}

impl<T> Shared<T> {
    /// Nothing started yet.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            current: Mutex::new(Weak::new()),
            starting: tokio::sync::Mutex::const_new(()),
        }
    }

    /// The value held now, or a new one from `start` (one caller at a time starts it).
    pub async fn get<F, Fut>(&self, start: F) -> Arc<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let _starting = self.starting.lock().await;
        if let Some(value) = self.lock().upgrade() {
            return value;
        }
        let value = Arc::new(start().await);
        *self.lock() = Arc::downgrade(&value);
        value
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Weak<T>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Cuts a store's connection for the generic suite's cut-off check: the [`FaultProxy`] between
/// the store and its server stops forwarding and answers nothing (as a network partition
/// would), and heals.
#[derive(Debug)]
pub struct ProxyCut(pub FaultProxy);

impl ProxyCut {
    /// The store of a fixture's [`cut_off_store`](leader_election::testing::suite::Fixture::cut_off_store): made by `store_at`
    /// on the port of a new fault proxy to the server's `port`, with the cut that hangs that
    /// proxy.
    pub async fn around<S>(port: u16, store_at: impl AsyncFnOnce(u16) -> S) -> (S, Box<dyn Cut>) {
        let proxy = FaultProxy::to_port(port).await;
        let store = store_at(proxy.port()).await;
        (store, Box::new(Self(proxy)))
    }
}

impl Cut for ProxyCut {
    fn cut(&self) {
        self.0.hang();
    }

    fn heal(&self) {
        self.0.heal();
    }
}

/// Waits until exactly one of `elections` leads (panicking if two ever do while it waits),
/// and returns its index.
///
/// # Panics
/// When two lead at once, or none within `within`.
pub async fn one_leader<S: LeaseStore>(
    elections: &[&LeaderElection<S>],
    within: Duration,
) -> usize {
    let mut found = None;
    crate::eventually(within, format!("a leader within {within:?}"), || {
        let leaders: Vec<usize> = (0..elections.len())
            .filter(|&i| elections[i].is_leader())
            .collect();
        assert!(leaders.len() <= 1, "two leaders: {leaders:?}");
        found = leaders.first().copied();
        found.is_some()
    })
    .await;
    found.unwrap_or_default()
}

/// The token of the term `election` leads now.
///
/// # Panics
/// When it does not lead.
#[must_use]
pub fn token<S: LeaseStore>(election: &LeaderElection<S>) -> FencingToken {
    election.leadership().expect("leading").token()
}

/// The lease of an acquisition that must have succeeded.
///
/// # Panics
/// When `outcome` is not [`AcquireOutcome::Acquired`].
#[must_use]
pub fn acquired(outcome: AcquireOutcome) -> Lease {
    match outcome {
        AcquireOutcome::Acquired(lease) => lease,
        other => panic!("expected to acquire, got {other:?}"),
    }
}

/// One [`try_acquire`](LeaseStore::try_acquire) of `request` on `store`, which must acquire.
///
/// # Panics
/// When it fails or does not acquire.
pub async fn acquire<S: LeaseStore>(store: &S, request: &LeaseRequest) -> Lease {
    let outcome = store.try_acquire(request).await;
    acquired(outcome.unwrap_or_else(|e| panic!("{} cannot acquire: {e}", request.instance_id)))
}

/// Starts `leader` and waits (at most `within`) until it leads, then starts `follower` and
/// waits (at most `within` again) until it follows `leader`: the usual start of a test of two
/// contenders (attach them to a recorder first).
///
/// # Panics
/// When either cannot start, or a wait times out.
pub async fn lead_then_follow<S: LeaseStore, T: LeaseStore>(
    leader: &LeaderElection<S>,
    follower: &LeaderElection<T>,
    within: Duration,
) {
    let id = leader.instance_id();
    leader.start().await.expect("start");
    crate::eventually(within, format!("{id} leads"), || leader.is_leader()).await;
    follower.start().await.expect("start");
    let what = format!("{} follows {id}", follower.instance_id());
    crate::eventually(within, what, || {
        !follower.is_leader() && follower.state().leader.is_some_and(|l| l.instance_id == id)
    })
    .await;
}

/// What follower `b` of `a`'s election sends in two leases: starts `a` leading and `b`
/// following ([`lead_then_follow`]), then reads `counts` of `b`'s store before and after a
/// window of two leases throughout which `b` follows and its count of writes (`writes`) does
/// not move. Returns the counts before and after.
///
/// # Panics
/// When either cannot start, `b` leads or writes in the window, or a wait times out.
pub async fn follower_requests<S: LeaseStore, C>(
    a: &LeaderElection<S>,
    b: &LeaderElection<S>,
    counts: impl Fn(&S) -> C,
    writes: impl Fn(&C) -> u64,
) -> (C, C) {
    lead_then_follow(a, b, Duration::from_secs(5)).await;
    let before = counts(b.store());
    let written = writes(&before);
    let window = b.options().lease_duration * 2;
    crate::throughout(window, "the follower follows and writes nothing", || {
        !b.is_leader() && writes(&counts(b.store())) == written
    })
    .await;
    (before, counts(b.store()))
}

/// Stops every one of `elections`, then checks every term `recorder` recorded with the one
/// shared checker: the usual end of a test.
///
/// # Panics
/// When an election cannot stop, or the terms are unsafe.
pub async fn stop_and_check<S: LeaseStore>(
    recorder: &TermRecorder,
    elections: &[&LeaderElection<S>],
) {
    for election in elections {
        election.stop().await.expect("stop");
    }
    recorder.assert_safe();
}

/// Waits (at most `within`) for a term `recorder` recorded as beginning after `acted` (what a
/// test did to the leader or its store), and answers how long after `acted` the first such
/// term began.
///
/// # Panics
/// When none began within `within`.
pub async fn leader_again_after(
    recorder: &TermRecorder,
    acted: Instant,
    within: Duration,
    what: &str,
) -> Duration {
    crate::eventually(within, what, || {
        recorder.terms().iter().any(|t| t.start > acted)
    })
    .await;
    recorder
        .terms()
        .iter()
        .filter(|t| t.start > acted)
        .map(|t| t.start - acted)
        .min()
        .expect("a term after the action")
}
