//! Measures the PostgreSQL backend against a server it starts itself (initdb into a temporary
//! directory): graceful handover (`stop()` → a follower leads) over 100 rounds with 3
//! contenders, and crash failover (the dead leader's last renewal → a follower leads) over 10
//! crashes with a 2 s lease.
//!
//! ```text
//! cargo run --release -p leader-election-postgres --example postgres_bench
//! ```
#![allow(missing_docs)]

use leader_election::ElectionBuilder;
use std::time::Duration;

use leader_election::LeaderElection;
use leader_election_fixtures::Postgres;
use leader_election_postgres::{PostgresLeaderElection, PostgresLeaseStore};
use leader_election_test_support::bench::{crash_failover, handovers, percentile};
use leader_election_test_support::unique_table;

const LEASE: Duration = Duration::from_secs(2);

fn contender(pg: &Postgres, election: &str, id: &str) -> LeaderElection<PostgresLeaseStore> {
    PostgresLeaderElection::builder()
        .connection_string(pg.url())
        .election(election)
        .instance_id(id)
        .lease_duration(LEASE)
        .renew_interval(LEASE / 4)
        .retry_interval(LEASE / 6)
        .max_retry_interval(LEASE)
        .operation_timeout(Duration::from_millis(400))
        .build()
        .expect("valid configuration")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let pg = Postgres::start().await;

    let election = unique_table("bench_handover");
    let elections: Vec<_> = (0..3)
        .map(|i| contender(&pg, &election, &format!("h{i}")))
        .collect();
    let handover = handovers(&elections, 100, Duration::from_secs(60), |_| {
        Duration::from_millis(20 + fastrand::u64(0..200))
    })
    .await;

    let mut failover = Vec::new();
    for round in 0..10 {
        let election = unique_table("bench_failover");
        let a = contender(&pg, &election, "crashing");
        let b = contender(&pg, &election, "survivor");
        let pause = Duration::from_millis(600 + 41 * round);
        failover.push(crash_failover(a, b, pause, LEASE).await);
    }
    failover.sort_by(f64::total_cmp);

    println!(
        "graceful handover, 100 rounds, 3 contenders: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&handover, 0.5),
        percentile(&handover, 0.99),
        handover[handover.len() - 1]
    );
    println!(
        "crash failover, 10 crashes, lease {LEASE:?}: p50 {:.3} x lease, max {:.3} x lease",
        percentile(&failover, 0.5),
        failover[failover.len() - 1]
    );
}
