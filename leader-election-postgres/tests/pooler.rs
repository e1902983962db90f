//! Through PgBouncer in transaction mode (one PostgreSQL server and one pooler for the whole
//! binary): every statement is one unnamed statement in its own transaction, so elections pass
//! the conformance suite and hand over; `LISTEN` through the pooler hears nothing, so followers
//! take over when the lease can expire, or at once with a listener on the server itself.

mod common;

use leader_election::ElectionBuilder;
use std::time::Duration;

use common::{LEASE, builder, release_heard};
use leader_election::testing::{ConformanceOptions, TermRecorder, run_conformance};
use leader_election::{LeaderElection, LeaseStore};
use leader_election_fixtures::{PgBouncer, Postgres};
use leader_election_postgres::PostgresLeaseStore;
use leader_election_test_support::bench::next_leader;
use leader_election_test_support::{ErrorCount, eventually, unique_table};
use tokio::time::Instant;

/// How long a new leader may take to show.
const WITHIN: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elections_through_pgbouncer_in_transaction_mode() {
    let pg = Postgres::start().await;
    let bouncer = PgBouncer::start(&pg).await;
    passes_the_conformance_suite(&pg, &bouncer).await;
    listen_through_the_pooler_hears_nothing(&bouncer).await;
    followers_take_over_at_expiry_without_notices(&bouncer).await;
    a_direct_listener_hands_over_at_once(&pg, &bouncer).await;
}

/// Statements through the pooler, the listener on the server itself (through the pooler it
/// would hear nothing, and the suite checks that a release wakes waiters).
async fn passes_the_conformance_suite(pg: &Postgres, bouncer: &PgBouncer) {
    let url = bouncer.url();
    let direct = pg.url();
    let options = ConformanceOptions::new(Duration::from_secs(1), Duration::from_secs(2));
    run_conformance(options, || {
        let store = builder(&url, &unique_table("conformance"), "conformance")
            .listen_connection_string(direct.clone())
            .build_store()
            .unwrap();
        async move { store }
    })
    .await;
}

/// `LISTEN` through the pooler appears to work (the statement succeeds), but the pooler hands
/// the server connection that listens to other clients: a release notice never arrives.
async fn listen_through_the_pooler_hears_nothing(bouncer: &PgBouncer) {
    let election = unique_table("unheard");
    let store = |id: &str| {
        builder(&bouncer.url(), &election, id)
            .build_store()
            .unwrap()
    };
    let (sa, sb) = (store("a"), store("b"));
    sa.connect().await.unwrap();
    sb.connect().await.unwrap();
    eventually(Duration::from_secs(10), "LISTEN succeeds", || {
        sb.is_listening()
    })
    .await;
    assert!(
        !release_heard(&sa, &sb, LEASE / 2).await,
        "a release notice came through the pooler"
    );
}

/// Three contenders whose pool and listener go through the pooler: a graceful stop still hands
/// over, within a lease, without overlap or errors.
async fn followers_take_over_at_expiry_without_notices(bouncer: &PgBouncer) {
    let election = unique_table("expiry");
    let contenders: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|id| builder(&bouncer.url(), &election, id).build().unwrap())
        .collect();
    let handover = handovers(&contenders, 3).await;
    // Without notices a follower wakes when the lease it saw can expire, plus jitter.
    assert!(handover < LEASE * 2, "a handover took {handover:?}");
}

/// The same, with each listener connected to the server itself
/// (`listen_connection_string`): the release notice wakes a follower at once.
async fn a_direct_listener_hands_over_at_once(pg: &Postgres, bouncer: &PgBouncer) {
    let election = unique_table("direct");
    let contenders: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|id| {
            builder(&bouncer.url(), &election, id)
                .listen_connection_string(pg.url())
                .build()
                .unwrap()
        })
        .collect();
    for c in &contenders {
        c.store().connect().await.unwrap();
    }
    eventually(Duration::from_secs(10), "every listener listens", || {
        contenders.iter().all(|c| c.store().is_listening())
    })
    .await;
    let handover = handovers(&contenders, 3).await;
    assert!(
        handover < LEASE / 2,
        "a handover took {handover:?}: no release notice"
    );
}

/// Starts `contenders`, then `rounds` times stops the leader, waits for another to lead and
/// starts the stopped one again; checks the terms with the one checker and that no contender
/// saw an error. Answers the longest handover.
async fn handovers(contenders: &[LeaderElection<PostgresLeaseStore>], rounds: usize) -> Duration {
    let recorder = TermRecorder::new();
    let errors: Vec<ErrorCount> = contenders.iter().map(ErrorCount::attach).collect();
    for c in contenders {
        recorder.attach(c);
        c.start().await.unwrap();
    }
    let mut leader = next_leader(contenders, None, WITHIN).await;
    let mut longest = Duration::ZERO;
    for _ in 0..rounds {
        // Let the followers see the leader and settle into their wait.
        eventually(Duration::from_secs(10), "followers see the leader", || {
            contenders.iter().all(|c| c.state().leader.is_some())
        })
        .await;
        let stopped = Instant::now();
        contenders[leader].stop().await.unwrap();
        let next = next_leader(contenders, Some(leader), WITHIN).await;
        longest = longest.max(stopped.elapsed());
        contenders[leader].start().await.unwrap();
        leader = next;
    }
    for c in contenders {
        c.stop().await.unwrap();
    }
    recorder.assert_safe();
    assert!(recorder.terms().len() > rounds, "{:?}", recorder.terms());
    let total: usize = errors.iter().map(ErrorCount::get).sum();
    assert_eq!(total, 0, "errors through the pooler");
    longest
}
