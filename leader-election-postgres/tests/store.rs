//! The store's own behaviour on a real server: handovers on the release notice, names at
//! PostgreSQL's limits (and huge ones never echoed whole), and a lease never kept for less than
//! asked.

mod common;

use std::time::Duration;

use common::{
    LEASE, contender_on, election as contender, graceful_handover, leaders, release_heard,
    start_recorded,
};
use leader_election::store::{AcquireOutcome, LeaseRequest};
use leader_election::testing::TermRecorder;
use leader_election::{ElectionBuilder, LeaseStore};
use leader_election_fixtures::Postgres;
use leader_election_postgres::PostgresLeaderElection;
use leader_election_test_support::{ErrorCount, eventually, unique_table};
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_contenders_hand_over_many_times_without_overlap() {
    let pg = Postgres::start().await;
    let election = unique_table("race");
    let contenders: Vec<_> = (0..5)
        .map(|i| contender(&pg, &election, &format!("c{i}")))
        .collect();
    let recorder = start_recorded(&contenders).await;
    let mut handovers = Vec::new();
    for _ in 0..20 {
        eventually(Duration::from_secs(10), "a leader", || {
            leaders(&contenders) == 1
        })
        .await;
        let leader = contenders.iter().find(|c| c.is_leader()).unwrap();
        let stopped = Instant::now();
        leader.stop().await.unwrap();
        eventually(Duration::from_secs(10), "a new leader", || {
            leaders(&contenders) == 1
        })
        .await;
        handovers.push(stopped.elapsed());
        leader.start().await.unwrap();
    }
    for c in &contenders {
        c.stop().await.unwrap();
    }
    recorder.assert_safe();
    let terms = recorder.terms().len();
    assert!(terms >= 21, "{terms} terms");
    handovers.sort();
    // Released leases are taken on the release notice, not on expiry.
    let median = handovers[handovers.len() / 2];
    assert!(
        median < LEASE / 4,
        "median handover {median:?}: {handovers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maximal_names_release_and_wake_followers() {
    let pg = Postgres::start().await;
    // PostgreSQL's identifier limit is 63 bytes: the longest schema and table names.
    let schema = format!("s{}", "x".repeat(62));
    let table = format!("{schema}.t{}", "y".repeat(62));
    pg.admin()
        .await
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let a = contender_on(&pg.url(), &table, "jobs", "a");
    let b = contender_on(&pg.url(), &table, "jobs", "b");
    let (sa, sb) = (a.store(), b.store());
    sa.connect().await.unwrap();
    sb.connect().await.unwrap();
    assert!(
        release_heard(sa, sb, Duration::from_secs(5)).await,
        "the follower was not woken by the release"
    );
    // And through the election: a graceful stop hands over at once.
    let recorder = TermRecorder::new();
    recorder.attach(&a).attach(&b);
    let a_errors = ErrorCount::attach(&a);
    let handover = graceful_handover(&a, &b).await;
    assert!(
        handover < LEASE / 2,
        "handover took {handover:?}: no release notice"
    );
    assert_eq!(a_errors.get(), 0, "errors on a");
    recorder.assert_safe();
    assert_eq!(recorder.terms().len(), 2);
}

#[test]
fn a_huge_table_name_is_not_echoed_whole() {
    let huge = "x".repeat(100_000);
    for table in [huge.clone(), format!("Bad{huge}"), format!("a.b.{huge}")] {
        let err = PostgresLeaderElection::builder()
            .connection_string("host=localhost")
            .table(&table)
            .build()
            .unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(
            shown.len() < 1000,
            "{} bytes: {}",
            shown.len(),
            &shown[..200]
        );
    }
    let err = PostgresLeaderElection::builder()
        .connection_string(format!("host=localhost {huge}=1"))
        .build()
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.len() < 1000, "{} bytes", shown.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_never_keeps_a_lease_for_less_than_asked() {
    let pg = Postgres::start().await;
    let election = unique_table("rounding");
    let a = contender(&pg, &election, "a");
    let store = a.store();
    store.connect().await.unwrap();
    // Just under 2 s: truncated to whole milliseconds, the server would keep it 1 999 ms.
    let ttl = Duration::from_nanos(1_999_999_001);
    let request = LeaseRequest::new("a", ttl);
    let AcquireOutcome::Acquired(_) = store.try_acquire(&request).await.unwrap() else {
        panic!("not acquired");
    };
    // The first token of an election is the server's time of acquisition in µs. (Renew uses
    // the same conversion of the ttl.)
    let row = pg
        .admin()
        .await
        .query_one(
            &format!(
                "SELECT (extract(epoch FROM expires_at) * 1000000)::bigint - token \
                 FROM {} WHERE election = $1",
                leader_election_postgres::DEFAULT_TABLE
            ),
            &[&election],
        )
        .await
        .unwrap();
    let kept = Duration::from_micros(u64::try_from(row.get::<_, i64>(0)).unwrap());
    assert!(kept >= ttl, "acquired for {kept:?}, asked {ttl:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contenders_connecting_at_once_all_create_the_missing_table() {
    let pg = Postgres::start().await;
    // Several rounds: the catalog race between two `CREATE TABLE IF NOT EXISTS` is narrow.
    for round in 0..10 {
        let table = unique_table(&format!("fresh{round}"));
        let contenders: Vec<_> = (0..8)
            .map(|i| contender_on(&pg.url(), &table, "jobs", &format!("c{i}")))
            .collect();
        let connects = contenders.iter().map(|c| c.store().connect());
        for (i, result) in futures_util::future::join_all(connects)
            .await
            .into_iter()
            .enumerate()
        {
            if let Err(err) = result {
                panic!("round {round}: contender c{i} failed to connect: {err:?}");
            }
        }
    }
}
