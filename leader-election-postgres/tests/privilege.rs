//! Least privilege: an owner runs the migration SQL the README shows
//! (`PostgresLeaseStore::setup_sql`, the one source of it), and a role with nothing else than
//! what it grants elects, renews, releases, hands over and keeps the election record; a role without `CREATE` leads on a
//! table its owner made, and is told what to run when the table is missing.

mod common;

use leader_election::ElectionBuilder;
use std::time::Duration;

use common::{LEASE, builder, contender_on, renewed_past_a_lease};
use leader_election::testing::TermRecorder;
use leader_election::{LeaderElection, LeaseStore};
use leader_election_fixtures::Postgres;
use leader_election_postgres::PostgresLeaseStore;
use leader_election_test_support::bench::next_leader;
use leader_election_test_support::operator::assert_record;
use leader_election_test_support::{ErrorCount, eventually, unique_table};
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
    renewed_past_a_lease(&contenders[leader]).await;
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
    // The election record needs nothing more: a row of the same table.
    let store = contenders[0].store();
    let v1 = store
        .write_record(None, b"ran")
        .await
        .expect("a record written with the migration's grants")
        .expect("no record yet");
    let v2 = store
        .write_record(Some(&v1), b"ran again")
        .await
        .expect("a record rewritten with the migration's grants")
        .expect("at the version read");
    assert_record(store, &v2, b"ran again").await;
}

/// A role with CONNECT and USAGE only, as an application's role on PostgreSQL 15+ that does not
/// own the database: no CREATE on `public`.
async fn create_app_role(admin: &tokio_postgres::Client) {
    admin
        .batch_execute(
            "CREATE ROLE app LOGIN; \
             REVOKE ALL ON DATABASE postgres FROM PUBLIC; \
             REVOKE ALL ON SCHEMA public FROM PUBLIC; \
             GRANT CONNECT ON DATABASE postgres TO app; \
             GRANT USAGE ON SCHEMA public TO app;",
        )
        .await
        .unwrap();
    let can_create: bool = admin
        .query_one(
            "SELECT has_schema_privilege('app', 'public', 'CREATE')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!can_create, "the test role must not have CREATE on public");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_create_leads_on_an_existing_table() {
    let pg = Postgres::start().await;
    let table = unique_table("granted");
    let election = unique_table("granted");
    // The table exists, made by its owner.
    let owner = contender_on(&pg.url(), &table, &election, "owner");
    owner.store().connect().await.unwrap();
    let admin = pg.admin().await;
    create_app_role(&admin).await;
    // Before the grant, connecting says what is missing and what to run.
    let refused = contender_on(&pg.url_as("app"), &table, &election, "refused");
    let err = refused.store().connect().await.unwrap_err();
    let message = std::error::Error::source(&err).unwrap().to_string();
    for needed in [
        "lacks SELECT, INSERT, UPDATE",
        "GRANT SELECT, INSERT, UPDATE ON",
    ] {
        assert!(message.contains(needed), "missing {needed:?} in: {message}");
    }
    admin
        .batch_execute(&format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO app"
        ))
        .await
        .unwrap();
    let a = contender_on(&pg.url_as("app"), &table, &election, "a");
    let b = contender_on(&pg.url_as("app"), &table, &election, "b");
    let recorder = TermRecorder::new();
    recorder.attach(&a).attach(&b);
    let a_errors = ErrorCount::attach(&a);
    a.store()
        .connect()
        .await
        .expect("connect as a role without CREATE");
    a.start().await.unwrap();
    b.start().await.unwrap();
    eventually(Duration::from_secs(10), "a leader", || {
        a.is_leader() || b.is_leader()
    })
    .await;
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    assert_eq!(a_errors.get(), 0, "errors on the app role");
    recorder.assert_safe();
    assert!(!recorder.terms().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_that_cannot_be_created_says_what_to_run() {
    let pg = Postgres::start().await;
    let table = unique_table("missing");
    let admin = pg.admin().await;
    create_app_role(&admin).await;
    let a = contender_on(&pg.url_as("app"), &table, "jobs", "a");
    let err = a.store().connect().await.unwrap_err();
    let message = format!(
        "{err} {:?}",
        std::error::Error::source(&err).map(ToString::to_string)
    );
    for needed in [
        "CREATE TABLE",
        &table,
        "GRANT SELECT, INSERT, UPDATE ON",
        "app",
    ] {
        assert!(message.contains(needed), "missing {needed:?} in: {message}");
    }
    // Running the SQL it gives, as the owner, is all it takes.
    admin
        .batch_execute(&a.store().setup_sql("app"))
        .await
        .unwrap();
    a.store().connect().await.unwrap();
    a.start().await.unwrap();
    eventually(Duration::from_secs(10), "a leads", || a.is_leader()).await;
    a.stop().await.unwrap();
}
