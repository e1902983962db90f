//! The PostgreSQL backend against a real server.

use std::time::Duration;

use leader_election::testing::{
    ConformanceOptions, TakeoverOptions, TermRecorder, crashed_leader_is_replaced,
    election_controls, leader_metadata, run_conformance, tokens_increase_across_rebuilt_stores,
};
use leader_election::{AcquireOutcome, LeaderElection, LeaseRequest, LeaseStore, Role};
use leader_election_postgres::{PostgresLeaderElection, PostgresLeaseStore};
use leader_election_test_support::postgres::{
    LEASE, builder, election as contender, graceful_handover, release_heard,
};
use leader_election_test_support::{ErrorCount, Postgres, eventually, unique_table};
use tokio::time::Instant;

fn leaders(contenders: &[LeaderElection<PostgresLeaseStore>]) -> usize {
    contenders.iter().filter(|c| c.is_leader()).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite() {
    let pg = Postgres::start().await;
    let url = pg.url();
    let options = ConformanceOptions::new(Duration::from_secs(1), Duration::from_secs(2));
    run_conformance(options, || {
        let url = url.clone();
        async move {
            let election = PostgresLeaderElection::builder()
                .connection_string(url)
                .election(unique_table("conformance"))
                .lease_duration(Duration::from_secs(2))
                .renew_interval(Duration::from_millis(500))
                .operation_timeout(Duration::from_millis(500))
                .build()
                .unwrap();
            election.store().clone()
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_tokens_increase_across_rebuilt_stores() {
    let pg = Postgres::start().await;
    let url = pg.url();
    let election = unique_table("rebuilt");
    let options = ConformanceOptions::new(Duration::from_secs(1), Duration::from_secs(2));
    tokens_increase_across_rebuilt_stores(&options, || {
        let store = PostgresLeaderElection::builder()
            .connection_string(url.clone())
            .election(election.clone())
            .lease_duration(Duration::from_secs(2))
            .renew_interval(Duration::from_millis(500))
            .build()
            .unwrap()
            .store()
            .clone();
        async move { store }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_contenders_hand_over_many_times_without_overlap() {
    let pg = Postgres::start().await;
    let election = unique_table("race");
    let contenders: Vec<_> = (0..5)
        .map(|i| contender(&pg, &election, &format!("c{i}")))
        .collect();
    let recorder = TermRecorder::new();
    for c in &contenders {
        recorder.attach(c);
    }
    for c in &contenders {
        c.start().await.unwrap();
    }
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
async fn a_crashed_leader_is_replaced_within_a_lease() {
    let pg = Postgres::start().await;
    let election = unique_table("crash");
    let a = contender(&pg, &election, "a");
    let b = contender(&pg, &election, "b");
    // No release: the lease must expire on the server.
    let report = crashed_leader_is_replaced(a, b, &TakeoverOptions::default()).await;
    eprintln!("crash failover: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_never_gives_two_leaders() {
    let pg = Postgres::start().await;
    let election = unique_table("restart");
    let contenders: Vec<_> = (0..3)
        .map(|i| contender(&pg, &election, &format!("c{i}")))
        .collect();
    let recorder = TermRecorder::new();
    for c in &contenders {
        recorder.attach(c);
    }
    for c in &contenders {
        c.start().await.unwrap();
    }
    eventually(Duration::from_secs(10), "a leader", || {
        leaders(&contenders) == 1
    })
    .await;
    let before = contenders
        .iter()
        .find_map(|c| c.leadership())
        .unwrap()
        .token();
    pg.stop().await;
    // Nobody can renew: the leader steps down by its deadline.
    eventually(Duration::from_secs(5), "no leader", || {
        leaders(&contenders) == 0
    })
    .await;
    pg.restart().await;
    eventually(Duration::from_secs(15), "a leader again", || {
        leaders(&contenders) == 1
    })
    .await;
    let after = contenders
        .iter()
        .find_map(|c| c.leadership())
        .unwrap()
        .token();
    assert!(after > before, "token {after} after {before}");
    for c in &contenders {
        let _ = c.stop().await;
    }
    recorder.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leaders_connection_killed_by_the_server_is_survived_safely() {
    let pg = Postgres::start().await;
    let election = unique_table("terminate");
    let a = contender(&pg, &election, "victim");
    let b = contender(&pg, &election, "other");
    let recorder = TermRecorder::new();
    recorder.attach(&a).attach(&b);
    a.start().await.unwrap();
    eventually(Duration::from_secs(10), "a leads", || a.is_leader()).await;
    b.start().await.unwrap();
    let term = a.leadership().unwrap().token();
    let admin = pg.admin().await;
    for _ in 0..5 {
        let killed = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                &[&"victim"],
            )
            .await
            .unwrap();
        assert!(!killed.is_empty(), "the leader had no connection to kill");
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    // The pool replaces the dead connections: the leader keeps its term, and nobody else
    // ever leads meanwhile.
    assert_eq!(a.leadership().map(|t| t.token()), Some(term));
    assert!(!b.is_leader());
    b.stop().await.unwrap();
    a.stop().await.unwrap();
    recorder.assert_safe();
    assert_eq!(recorder.terms().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_deleted_by_an_operator_is_noticed_and_tokens_still_grow() {
    let pg = Postgres::start().await;
    let election = unique_table("deleted");
    let a = contender(&pg, &election, "a");
    let recorder = TermRecorder::new();
    recorder.attach(&a);
    a.start().await.unwrap();
    eventually(Duration::from_secs(10), "a leads", || a.is_leader()).await;
    let first = a.leadership().unwrap();
    let admin = pg.admin().await;
    admin
        .execute(
            &format!(
                "DELETE FROM {} WHERE election = $1",
                leader_election_postgres::DEFAULT_TABLE
            ),
            &[&election],
        )
        .await
        .unwrap();
    // The next renewal finds the row gone: the term ends, and a new one begins.
    eventually(Duration::from_secs(5), "the term to end", || {
        !first.is_current()
    })
    .await;
    eventually(Duration::from_secs(5), "a new term", || a.is_leader()).await;
    assert!(a.leadership().unwrap().token() > first.token());
    a.stop().await.unwrap();
    recorder.assert_safe();
    assert_eq!(recorder.terms().len(), 2);
    assert_eq!(a.state().role, Role::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_row_is_an_error_not_a_panic_and_never_a_lease() {
    let pg = Postgres::start().await;
    let election = unique_table("garbage");
    let a = contender(&pg, &election, "a");
    a.store().connect().await.unwrap();
    let admin = pg.admin().await;
    admin
        .execute(
            &format!(
                "INSERT INTO {} (election, holder, lease_id, token, expires_at) \
                 VALUES ($1, 'someone', NULL, -5, now() + interval '1 hour')",
                leader_election_postgres::DEFAULT_TABLE
            ),
            &[&election],
        )
        .await
        .unwrap();
    let leader = a.current_leader().await;
    assert!(leader.is_err(), "{leader:?}");
    let errors = ErrorCount::attach(&a);
    a.start().await.unwrap();
    // Every attempt reads the row and fails; a never leads meanwhile.
    eventually(Duration::from_secs(5), "two failed attempts", || {
        assert!(!a.is_leader(), "a leads over a garbage row");
        errors.get() >= 2
    })
    .await;
    assert!(!a.is_leader());
    a.stop().await.unwrap();
}

// === Setup: privileges, names, the listener ===

fn contender_on(
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

/// A contender whose listener connects with `listen`, and whose pool connects as `postgres`.
fn contender_with_listener(
    pg: &Postgres,
    election: &str,
    id: &str,
    listen: &str,
) -> LeaderElection<PostgresLeaseStore> {
    use leader_election_postgres::deadpool_postgres::{
        Manager, ManagerConfig, Pool, RecyclingMethod, Runtime,
    };
    let mut config: tokio_postgres::Config = pg.url().parse().unwrap();
    config.application_name(id);
    let manager = Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(2)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_millis(500)))
        .create_timeout(Some(Duration::from_millis(500)))
        .build()
        .unwrap();
    let mut listen: tokio_postgres::Config = listen.parse().unwrap();
    listen.connect_timeout(Duration::from_millis(500));
    PostgresLeaderElection::builder()
        .pool(pool, Some(listen))
        .election(election)
        .instance_id(id)
        .lease_duration(LEASE)
        .renew_interval(Duration::from_millis(500))
        .retry_interval(Duration::from_millis(200))
        .max_retry_interval(Duration::from_secs(1))
        .operation_timeout(Duration::from_millis(500))
        .build()
        .expect("valid configuration")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_listener_slows_handover_but_never_stops_the_election() {
    let pg = Postgres::start().await;
    let admin = pg.admin().await;
    // The listener's role may not connect at all (as when the server has no connection left
    // for it); the pool's may.
    admin
        .batch_execute("CREATE ROLE listener LOGIN CONNECTION LIMIT 0")
        .await
        .unwrap();
    let election = unique_table("unheard");
    let listen = pg.url_as("listener");
    let contenders: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|id| contender_with_listener(&pg, &election, id, &listen))
        .collect();
    let recorder = TermRecorder::new();
    for c in &contenders {
        recorder.attach(c);
    }
    let a = &contenders[0];
    a.start().await.unwrap();
    eventually(Duration::from_secs(10), "a leads", || a.is_leader()).await;
    for c in &contenders[1..] {
        c.start().await.unwrap();
        eventually(Duration::from_secs(10), "a follower sees a", || {
            c.state().leader.is_some_and(|l| l.instance_id == "a")
        })
        .await;
    }
    assert!(contenders.iter().all(|c| !c.store().is_listening()));
    // A crash: the lease expires on the server, and a follower takes over by expiry.
    let last_renewal = a.leadership().unwrap().deadline() - (LEASE - a.options().deadline_margin());
    let mut contenders = contenders.into_iter();
    drop(contenders.next());
    let rest: Vec<_> = contenders.collect();
    eventually(Duration::from_secs(10), "a new leader", || {
        leaders(&rest) == 1
    })
    .await;
    let failover = last_renewal.elapsed();
    assert!(
        failover >= LEASE - Duration::from_millis(50),
        "took a live lease: {failover:?}"
    );
    assert!(
        failover <= LEASE + Duration::from_secs(1),
        "failover {failover:?}"
    );
    // The listener may connect now: listening starts on its own, and handovers are fast again.
    admin
        .batch_execute("ALTER ROLE listener CONNECTION LIMIT -1")
        .await
        .unwrap();
    eventually(Duration::from_secs(20), "listening", || {
        rest.iter().all(|c| c.store().is_listening())
    })
    .await;
    let leader = rest.iter().find(|c| c.is_leader()).unwrap();
    let follower = rest.iter().find(|c| !c.is_leader()).unwrap();
    eventually(
        Duration::from_secs(10),
        "the follower sees the leader",
        || follower.state().leader.map(|l| l.instance_id) == Some(leader.instance_id().to_owned()),
    )
    .await;
    let stopped = Instant::now();
    leader.stop().await.unwrap();
    eventually(Duration::from_secs(10), "the follower leads", || {
        follower.is_leader()
    })
    .await;
    let handover = stopped.elapsed();
    assert!(
        handover < LEASE / 2,
        "handover took {handover:?}: no release notice"
    );
    for c in &rest {
        c.stop().await.unwrap();
    }
    recorder.assert_safe();
    // The listeners end with their stores.
    drop(rest);
    let mut gone = false;
    let give_up = Instant::now() + Duration::from_secs(10);
    while !gone {
        assert!(Instant::now() < give_up, "a listener outlived its store");
        let rows = admin
            .query(
                "SELECT 1 FROM pg_stat_activity WHERE usename = 'listener'",
                &[],
            )
            .await
            .unwrap();
        gone = rows.is_empty();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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
async fn tokens_grow_after_the_row_is_deleted_even_for_a_brand_new_store() {
    let pg = Postgres::start().await;
    let election = unique_table("forgotten");
    let admin = pg.admin().await;
    let mut last = None;
    for round in 0..4 {
        // A brand-new store each round: nothing remembered in the process, its own pool.
        let fresh = contender(&pg, &election, &format!("p{round}"));
        let store = fresh.store();
        store.connect().await.unwrap();
        let request = LeaseRequest::new(format!("p{round}"), LEASE);
        let AcquireOutcome::Acquired(lease) = store.try_acquire(&request).await.unwrap() else {
            panic!("round {round}: not acquired");
        };
        if let Some(last) = last {
            assert!(
                lease.token > last,
                "round {round}: token {} after {last}",
                lease.token
            );
        }
        last = Some(lease.token);
        if round % 2 == 0 {
            // An operator deletes the lease row and its guard: every stored token is gone.
            admin
                .execute(
                    &format!(
                        "DELETE FROM {} WHERE election IN ($1, $2)",
                        leader_election_postgres::DEFAULT_TABLE
                    ),
                    &[&election, &store.guard_key()],
                )
                .await
                .unwrap();
        } else {
            assert!(store.release(&request, &lease).await.unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_controls_work_against_postgres() {
    let pg = Postgres::start().await;
    let url = pg.url();
    let election = unique_table("controls");
    let options = contender(&pg, &election, "controls").options().clone();
    let report = election_controls(&options, Duration::from_millis(500), || {
        let store = builder(&url, &election, "controls")
            .build_store()
            .expect("store");
        async move { store }
    })
    .await;
    eprintln!("postgres controls: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_metadata_works_against_postgres() {
    let pg = Postgres::start().await;
    let url = pg.url();
    let election = unique_table("metadata");
    let options = contender(&pg, &election, "metadata").options().clone();
    let report = leader_metadata(&options, Duration::from_millis(500), || {
        let store = builder(&url, &election, "metadata")
            .build_store()
            .expect("store");
        async move { store }
    })
    .await;
    eprintln!("postgres metadata: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_leaders_hand_over_against_postgres() {
    let pg = Postgres::start().await;
    let url = pg.url();
    let election = unique_table("preferred");
    let options = contender(&pg, &election, "preferred").options().clone();
    let handover = leader_election::testing::preferred_leader_handover(
        &options,
        Duration::from_millis(500),
        || {
            let store = builder(&url, &election, "preferred")
                .build_store()
                .expect("store");
            async move { store }
        },
    )
    .await;
    eprintln!("postgres preferred-leader handover: {handover:?}");
}
