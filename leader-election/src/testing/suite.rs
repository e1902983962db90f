//! The generic suite: every shared check, run on any backend through a [`Fixture`], in the
//! manner of object_store's integration suite. A backend's `tests/suite.rs` is a fixture and
//! one line, [`store_suite!`](crate::store_suite), which expands to one test per check:
//!
//! ```text
//! leader_election::store_suite!(fixture().await);
//! ```
//!
//! Which checks run depends on nothing but the store's declared
//! [`Capabilities`](crate::store::Capabilities): a capability declared is checked, one not
//! declared is checked to be refused.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::election::LeaderElection;
use crate::options::LeaderElectionOptions;
use crate::store::LeaseStore;
use crate::testing::{
    ConformanceOptions, TakeoverOptions, crashed_leader_is_replaced, cut_off_leader_steps_down,
    election_controls, leader_metadata, preferred_leader_handover, racing_handovers,
    run_conformance, tokens_increase_across_rebuilt_stores,
};

/// What a backend's tests provide so that the generic suite runs on it: a running server (the
/// fixture starts it, once per test binary), stores on it, timings it supports, and a way to
/// cut one store off the server.
pub trait Fixture: Send + Sync {
    /// The backend's store.
    type Store: LeaseStore;

    /// A new store for the election `name` on the fixture's server, ready to grant a lease at
    /// once (any guard wait after a fresh start already over). Called several times with one
    /// name for stores of one election.
    fn store(&self, name: &str) -> impl Future<Output = Self::Store> + Send;

    /// A new store for the election `name` whose connection to the server goes through
    /// something [`Cut::cut`] can sever (a fault proxy), without touching other stores.
    fn cut_off_store(&self, name: &str)
    -> impl Future<Output = (Self::Store, Box<dyn Cut>)> + Send;

    /// Options for real elections on this backend: the shortest leases it handles well. The
    /// checks set `instance_id` and `priority`.
    fn options(&self) -> LeaderElectionOptions;

    /// The timings of the conformance checks.
    fn conformance(&self) -> ConformanceOptions;

    /// How long a graceful handover (a stop, a resign, a preferred leader) may take, and the
    /// bound on the median handover of a race. Default: 500 ms.
    fn handover_within(&self) -> Duration {
        Duration::from_millis(500)
    }

    /// The bounds of the crash and cut-off checks. Default: [`TakeoverOptions::default`].
    fn takeover(&self) -> TakeoverOptions {
        TakeoverOptions::default()
    }
}

/// Severs and restores one store's connection to the server, for
/// [`Fixture::cut_off_store`].
pub trait Cut: Send + Sync {
    /// Drops the connection's traffic: nothing reaches the server, nothing answers.
    fn cut(&self);
    /// Lets traffic through again.
    fn heal(&self);
}

/// A name no other check of this process uses: `check`, the process id and a counter.
#[must_use]
pub fn unique(check: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "suite-{check}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn named(options: &LeaderElectionOptions, id: &str) -> LeaderElectionOptions {
    LeaderElectionOptions {
        instance_id: id.to_owned(),
        ..options.clone()
    }
}

async fn election<F: Fixture>(fixture: &F, name: &str, id: &str) -> LeaderElection<F::Store> {
    LeaderElection::new(fixture.store(name).await, named(&fixture.options(), id))
        .unwrap_or_else(|e| panic!("[suite] options for {id}: {e}"))
}

/// [`run_conformance`]: every check on a store of its own.
pub async fn conformance<F: Fixture>(fixture: &F) {
    run_conformance(fixture.conformance(), || fixture.store_named("conformance")).await;
}

/// [`tokens_increase_across_rebuilt_stores`] on stores of one election.
pub async fn rebuilt_stores<F: Fixture>(fixture: &F) {
    let name = unique("rebuilt");
    tokens_increase_across_rebuilt_stores(&fixture.conformance(), || fixture.store(&name)).await;
}

/// [`election_controls`]: work per term, resign, observers.
pub async fn controls<F: Fixture>(fixture: &F) {
    let name = unique("controls");
    let report = election_controls(&fixture.options(), fixture.handover_within(), || {
        fixture.store(&name)
    })
    .await;
    eprintln!("controls: {report:?}");
}

/// [`leader_metadata`] when the store declares metadata; otherwise an election publishing
/// some is refused when built.
pub async fn metadata<F: Fixture>(fixture: &F) {
    let name = unique("metadata");
    let store = fixture.store(&name).await;
    if store.capabilities().max_metadata_len == 0 {
        let mut options = named(&fixture.options(), "metadata");
        options.metadata = Some(b"x".to_vec());
        assert!(
            LeaderElection::new(store, options).is_err(),
            "[metadata] a store declaring no metadata built an election publishing some"
        );
        return;
    }
    let report = leader_metadata(&fixture.options(), fixture.handover_within(), || {
        fixture.store(&name)
    })
    .await;
    eprintln!("metadata: {report:?}");
}

/// [`preferred_leader_handover`] when the store declares candidates; otherwise an election
/// with a priority is refused when built.
pub async fn preferred<F: Fixture>(fixture: &F) {
    let name = unique("preferred");
    let store = fixture.store(&name).await;
    if !store.capabilities().candidates {
        let mut options = named(&fixture.options(), "preferred");
        options.priority = Some(1);
        assert!(
            LeaderElection::new(store, options).is_err(),
            "[preferred] a store declaring no candidates built an election with a priority"
        );
        return;
    }
    let handover = preferred_leader_handover(&fixture.options(), fixture.handover_within(), || {
        fixture.store(&name)
    })
    .await;
    eprintln!("preferred-leader handover: {handover:?}");
}

/// [`racing_handovers`]: six contenders, thirty terms; with release notices declared, the
/// median handover stays within [`Fixture::handover_within`].
pub async fn race<F: Fixture>(fixture: &F) {
    const CONTENDERS: usize = 6;
    const TERMS: usize = 30;
    let name = unique("race");
    let mut elections = Vec::with_capacity(CONTENDERS);
    for i in 0..CONTENDERS {
        elections.push(election(fixture, &name, &format!("c{i}")).await);
    }
    let notices = elections[0].store().capabilities().release_notifications;
    let handovers = racing_handovers(&elections, TERMS).await;
    let p50 = handovers[handovers.len() / 2];
    let max = handovers[handovers.len() - 1];
    eprintln!("race: {CONTENDERS} contenders; stop() -> next term: p50 {p50:?}, max {max:?}");
    if notices {
        assert!(
            p50 <= fixture.handover_within(),
            "[race] median handover {p50:?} with release notices, over {:?}",
            fixture.handover_within()
        );
    }
}

/// [`crashed_leader_is_replaced`].
pub async fn crash<F: Fixture>(fixture: &F) {
    let name = unique("crash");
    let a = election(fixture, &name, "crash-a").await;
    let b = election(fixture, &name, "crash-b").await;
    let report = crashed_leader_is_replaced(a, b, &fixture.takeover()).await;
    eprintln!("crash: {report:?}");
}

/// [`cut_off_leader_steps_down`], the leader's store cut through [`Fixture::cut_off_store`].
pub async fn cut_off<F: Fixture>(fixture: &F) {
    let name = unique("cut-off");
    let (store, cut) = fixture.cut_off_store(&name).await;
    let a = LeaderElection::new(store, named(&fixture.options(), "cut-a"))
        .unwrap_or_else(|e| panic!("[suite] options: {e}"));
    let b = election(fixture, &name, "cut-b").await;
    let report =
        cut_off_leader_steps_down(a, b, || cut.cut(), || cut.heal(), &fixture.takeover()).await;
    eprintln!("cut off: {report:?}");
}

trait StoreNamed: Fixture {
    fn store_named(&self, check: &str) -> impl Future<Output = Self::Store> + Send {
        let name = unique(check);
        async move { self.store(&name).await }
    }
}

impl<F: Fixture> StoreNamed for F {}

/// Expands to one `#[tokio::test]` per check of the generic suite, each on the fixture that
/// `$fixture` evaluates to: a `&impl Fixture`, evaluated in each test's async body, so
/// `fixture().await` works (a `&'static` fixture that starts its server once per test binary).
/// The test crate needs `tokio` with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! store_suite {
    ($fixture:expr) => {
        $crate::store_suite!(@tests $fixture;
            conformance rebuilt_stores controls metadata preferred race crash cut_off);
    };
    (@tests $fixture:expr; $($check:ident)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                $crate::testing::suite::$check($fixture).await;
            }
        )*
    };
}
