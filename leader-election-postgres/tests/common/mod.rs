//! What the PostgreSQL tests share: the contenders' builder and timings, and the release and
//! handover checks. The servers are `leader_election_fixtures::{Postgres, PgBouncer}`.

#![allow(dead_code, unused_imports)] // Each test binary uses a part.

use std::time::Duration;

use leader_election::testing::TermRecorder;
use leader_election::{ElectionBuilder, LeaderElection, LeaderElectionOptions};
use leader_election_fixtures::Postgres;
use leader_election_postgres::{
    PostgresLeaderElection, PostgresLeaderElectionBuilder, PostgresLeaseStore,
};
use leader_election_test_support::eventually;
use tokio::time::Instant;

/// The lease of [`election`]'s contenders: the shared one.
pub(crate) use leader_election_test_support::operator::LEASE;

/// The options the PostgreSQL tests share, for contender `id`: the shared ones (a 2 s lease
/// renewed every 500 ms, a 500 ms operation timeout), with retries from 200 ms up to 1 s.
pub(crate) fn options(id: &str) -> LeaderElectionOptions {
    let mut options = leader_election_test_support::operator::options(id);
    options.max_retry_interval = Duration::from_secs(1);
    options
}

/// A builder for contender `id` of `election` on the server at `url`, with [`options`].
pub(crate) fn builder(url: &str, election: &str, id: &str) -> PostgresLeaderElectionBuilder {
    PostgresLeaderElection::builder()
        .connection_string(url)
        .election(election)
        .options(options(id))
}

/// [`builder`]'s contender in `table` instead of the default table.
pub(crate) fn contender_on(
    url: &str,
    table: &str,
    election: &str,
    id: &str,
) -> LeaderElection<PostgresLeaseStore> {
    builder(url, election, id)
        .table(table)
        .build()
        .expect("valid configuration")
}

/// A contender `id` of `election` on `pg`, from [`builder`].
///
/// # Panics
/// When the builder rejects the configuration.
pub(crate) fn election(
    pg: &Postgres,
    election: &str,
    id: &str,
) -> LeaderElection<PostgresLeaseStore> {
    builder(&pg.url(), election, id)
        .build()
        .expect("valid configuration")
}

/// Whether `listener` hears of a release by `releaser` within `within`: `releaser` acquires
/// the lease as instance `releaser` (it must be free), `listener`'s release receiver marks
/// what it saw so far, and `releaser` releases.
///
/// # Panics
/// When `listener` has no listener, or `releaser` cannot acquire or release.
pub(crate) async fn release_heard(
    releaser: &PostgresLeaseStore,
    listener: &PostgresLeaseStore,
    within: Duration,
) -> bool {
    use leader_election::LeaseStore;
    use leader_election::store::{AcquireOutcome, LeaseRequest};
    let mut released = listener
        .release_notifications()
        .expect("a store with a listener");
    let request = LeaseRequest::new("releaser", LEASE);
    let AcquireOutcome::Acquired(lease) = releaser.try_acquire(&request).await.expect("acquire")
    else {
        panic!("the releaser could not acquire");
    };
    released.mark_seen();
    assert!(
        releaser.release(&request, &lease).await.expect("release"),
        "not released"
    );
    tokio::time::timeout(within, released.released())
        .await
        .is_ok()
}

/// Starts `a` and waits until it leads, starts `b` and waits until it sees `a` lead, then
/// stops `a` and answers how long it took until `b` led; stops `b`. Attach a
/// `TermRecorder` first to check the terms.
///
/// # Panics
/// When an election cannot start or stop, or a step takes more than 10 s.
pub(crate) async fn graceful_handover(
    a: &LeaderElection<PostgresLeaseStore>,
    b: &LeaderElection<PostgresLeaseStore>,
) -> Duration {
    let within = Duration::from_secs(10);
    a.start().await.expect("start a");
    eventually(within, "a leads", || a.is_leader()).await;
    b.start().await.expect("start b");
    let id = a.options().instance_id.clone();
    eventually(within, "b sees a lead", || {
        b.state().leader.is_some_and(|l| l.instance_id == id)
    })
    .await;
    let stopped = Instant::now();
    a.stop().await.expect("stop a");
    eventually(within, "b leads", || b.is_leader()).await;
    let handover = stopped.elapsed();
    b.stop().await.expect("stop b");
    handover
}

/// How many of `contenders` lead now.
pub(crate) fn leaders(contenders: &[LeaderElection<PostgresLeaseStore>]) -> usize {
    contenders.iter().filter(|c| c.is_leader()).count()
}

/// Waits (at most three leases) until `election`'s term is renewed a whole lease after its
/// first deadline, checking every poll that it is the same term: renewals keep a term past
/// its first lease.
///
/// # Panics
/// When `election` does not lead, its term ends, or no such renewal comes in time.
pub(crate) async fn renewed_past_a_lease(election: &LeaderElection<PostgresLeaseStore>) {
    let term = election.leadership().expect("leading");
    let first = term.deadline();
    eventually(LEASE * 3, "a renewal a whole lease into the term", || {
        assert_eq!(
            election.leadership().map(|t| t.token()),
            Some(term.token()),
            "the term ended"
        );
        term.deadline() >= first + LEASE
    })
    .await;
}

/// Attaches a recorder to every one of `contenders`, then starts them.
///
/// # Panics
/// When one does not start.
pub(crate) async fn start_recorded(
    contenders: &[LeaderElection<PostgresLeaseStore>],
) -> TermRecorder {
    let recorder = TermRecorder::new();
    for c in contenders {
        recorder.attach(c);
    }
    for c in contenders {
        c.start().await.expect("start");
    }
    recorder
}
