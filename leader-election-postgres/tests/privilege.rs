//! Least privilege: an owner runs the migration SQL the README shows
//! (`PostgresLeaseStore::setup_sql`, the one source of it), and a role with nothing else than
//! what it grants elects, renews, releases and hands over.

use std::time::Duration;

use leader_election::LeaderElection;
use leader_election::testing::TermRecorder;
use leader_election_postgres::PostgresLeaseStore;
use leader_election_test_support::bench::next_leader;
use leader_election_test_support::postgres::{LEASE, builder};
use leader_election_test_support::{ErrorCount, Postgres, unique_table};
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_with_only_the_migrations_grants_elects_and_hands_over() {
    let pg = Postgres::start().await;
    let admin = pg.admin().await;
    let table = format!("ops.{}", unique_table("leases"));
    let election = "billing";
    // The application's role: it may log in, nothing more (PostgreSQL 15+ gives PUBLIC no
    // CREATE on `public`; the schema `ops` is the owner's).
    admin
        .batch_execute(
            "CREATE ROLE app LOGIN; \
             REVOKE ALL ON SCHEMA public FROM PUBLIC; \
             CREATE SCHEMA ops;",
        )
        .await
        .unwrap();
    let contenders: Vec<LeaderElection<PostgresLeaseStore>> = ["a", "b", "c"]
        .iter()
        .map(|id| {
            builder(&pg.url_as("app"), election, id)
                .table(&table)
                .build()
                .unwrap()
        })
        .collect();
    // The migration, as the README gives it, run by the owner.
    let migration = contenders[0].store().setup_sql("app");
    assert!(
        migration.contains("GRANT USAGE ON SCHEMA \"ops\" TO \"app\""),
        "{migration}"
    );
    admin.batch_execute(&migration).await.unwrap();
    // The role has exactly what the migration grants.
    let row = admin
        .query_one(
            "SELECT has_table_privilege('app', $1, 'SELECT'), \
                    has_table_privilege('app', $1, 'INSERT'), \
                    has_table_privilege('app', $1, 'UPDATE'), \
                    has_table_privilege('app', $1, 'DELETE'), \
                    has_table_privilege('app', $1, 'TRUNCATE'), \
                    has_schema_privilege('app', 'ops', 'USAGE'), \
                    has_schema_privilege('app', 'ops', 'CREATE'), \
                    has_schema_privilege('app', 'public', 'CREATE')",
            &[&table],
        )
        .await
        .unwrap();
    let privileges: Vec<bool> = (0..8).map(|i| row.get(i)).collect();
    assert_eq!(
        privileges,
        [true, true, true, false, false, true, false, false]
    );

    let recorder = TermRecorder::new();
    let errors: Vec<ErrorCount> = contenders.iter().map(ErrorCount::attach).collect();
    for c in &contenders {
        recorder.attach(c);
        c.start().await.unwrap();
    }
    let leader = next_leader(&contenders, None, Duration::from_secs(10)).await;
    // The guard row records the same lease as the lease row.
    let guard_key = contenders[0].store().guard_key().to_owned();
    let holders: Vec<Option<String>> = admin
        .query(
            &format!("SELECT holder FROM {table} WHERE election = ANY($1) ORDER BY election"),
            &[&vec![election.to_owned(), guard_key]],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let id = contenders[leader].options().instance_id.clone();
    assert_eq!(holders, [Some(id.clone()), Some(id)]);
    // Renewals keep the term past a whole lease.
    let token = contenders[leader].leadership().expect("leading").token();
    tokio::time::sleep(LEASE + LEASE / 2).await;
    assert_eq!(
        contenders[leader].leadership().map(|t| t.token()),
        Some(token)
    );
    // Two graceful handovers: the release (and its notice) needs no more privilege.
    let mut leader = leader;
    for _ in 0..2 {
        let stopped = Instant::now();
        contenders[leader].stop().await.unwrap();
        let next = next_leader(&contenders, Some(leader), Duration::from_secs(10)).await;
        let handover = stopped.elapsed();
        assert!(
            handover < LEASE / 2,
            "handover took {handover:?}: no release notice"
        );
        contenders[leader].start().await.unwrap();
        leader = next;
    }
    for c in &contenders {
        c.stop().await.unwrap();
    }
    recorder.assert_safe();
    assert!(recorder.terms().len() >= 3, "{:?}", recorder.terms());
    let total: usize = errors.iter().map(ErrorCount::get).sum();
    assert_eq!(total, 0, "errors on a role with the migration's grants");
}
