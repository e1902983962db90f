//! Faults against a real PostgreSQL server: a leader cut off from it (through the shared fault
//! proxy).

use std::time::Duration;

use leader_election::testing::{TakeoverOptions, cut_off_leader_steps_down};
use leader_election_test_support::postgres::{builder, election};
use leader_election_test_support::{FaultProxy, Postgres, unique_table};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_postgres_steps_down_before_a_follower_takes_over() {
    let pg = Postgres::start().await;
    let proxy = FaultProxy::to_port(pg.port()).await;
    let table = unique_table("partition");
    let through_proxy = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        proxy.port()
    );
    let a = builder(&through_proxy, &table, "a")
        .build()
        .expect("valid configuration");
    let b = election(&pg, &table, "b");
    // b, still reaching the server, takes over once the lease expires there (by the server's
    // clock), at its next retry (at most 1 s apart).
    let options = TakeoverOptions {
        slack: Duration::from_secs(2),
        ..TakeoverOptions::default()
    };
    let report = cut_off_leader_steps_down(a, b, || proxy.hang(), || proxy.heal(), &options).await;
    eprintln!("partition: {report:?}");
}
