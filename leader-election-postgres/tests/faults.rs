//! Faults against a real PostgreSQL server: the server restarted, the leader's connection
//! killed by the server, the release listener refused. (A leader cut off from the server is the
//! generic suite's `cut_off`, in `suite.rs`.)

mod common;

use std::time::Duration;

use common::{LEASE, election as contender, leaders, start_recorded};
use leader_election::testing::TermRecorder;
use leader_election::{ElectionBuilder, LeaderElection};
use leader_election_fixtures::Postgres;
use leader_election_postgres::{PostgresLeaderElection, PostgresLeaseStore};
use leader_election_test_support::{eventually, eventually_async, stop_and_check, unique_table};
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_never_gives_two_leaders() {
    let pg = Postgres::start().await;
    let election = unique_table("restart");
    let contenders: Vec<_> = (0..3)
        .map(|i| contender(&pg, &election, &format!("c{i}")))
        .collect();
    let recorder = start_recorded(&contenders).await;
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
        let renewed = a.leadership().expect("leading").deadline();
        let killed = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                &[&"victim"],
            )
            .await
            .unwrap();
        assert!(!killed.is_empty(), "the leader had no connection to kill");
        // The pool opens a new connection, and the term is renewed on it, before the next kill.
        eventually(Duration::from_secs(5), "a renewal after the kill", || {
            a.leadership().is_some_and(|t| t.deadline() > renewed)
        })
        .await;
    }
    // The pool replaces the dead connections: the leader keeps its term, and nobody else
    // ever leads meanwhile.
    assert_eq!(a.leadership().map(|t| t.token()), Some(term));
    assert!(!b.is_leader());
    stop_and_check(&recorder, &[&b, &a]).await;
    assert_eq!(recorder.terms().len(), 1);
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
        .options(common::options(id))
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
    eventually_async(
        Duration::from_secs(10),
        "the listeners to end with their stores",
        || async {
            admin
                .query(
                    "SELECT 1 FROM pg_stat_activity WHERE usename = 'listener'",
                    &[],
                )
                .await
                .unwrap()
                .is_empty()
        },
    )
    .await;
}
