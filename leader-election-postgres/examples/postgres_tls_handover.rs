//! Graceful handover over TLS next to plain TCP and through PgBouncer, on the same machine:
//! `stop()` → another contender leads, 100 rounds with 3 contenders, on a plain PostgreSQL
//! server, on a TLS-only one (`hostssl` only, certificates made at start with rcgen) with
//! `sslmode=verify-full` and with `sslmode=require`, and through PgBouncer in transaction mode
//! (the listener on the server itself). Every server is started by this program.
//!
//! ```text
//! cargo run --release -p leader-election-postgres --example postgres_tls_handover
//! ```
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use leader_election::{ElectionBuilder, TlsBuilder};
use std::time::Duration;

use common::builder;
use leader_election::LeaderElection;
use leader_election_fixtures::{PgBouncer, Postgres};
use leader_election_postgres::{PostgresLeaderElectionBuilder, PostgresLeaseStore};
use leader_election_test_support::bench::{handovers, percentile};
use leader_election_test_support::unique_table;

/// Makes the builder of contender `id` of an election.
type Contender<'a> = Box<dyn Fn(&str, &str) -> PostgresLeaderElectionBuilder + 'a>;

const ROUNDS: usize = 100;
const CONTENDERS: usize = 3;

/// Measures `ROUNDS` handovers among contenders made by `contender(election, id)`.
async fn measure(contender: impl Fn(&str, &str) -> PostgresLeaderElectionBuilder) -> Vec<f64> {
    let election = unique_table("tls_handover");
    let elections: Vec<LeaderElection<PostgresLeaseStore>> = (0..CONTENDERS)
        .map(|i| {
            contender(&election, &format!("c{i}"))
                .build()
                .expect("build")
        })
        .collect();
    // Let the followers settle into their wait, at various points of it.
    handovers(&elections, ROUNDS, Duration::from_secs(10), |round| {
        Duration::from_millis(20 + (round as u64 * 37) % 300)
    })
    .await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let plain = Postgres::start().await;
    let tls = Postgres::start_tls().await;
    let bouncer = PgBouncer::start(&plain).await;
    let ca = tls.tls().expect("a TLS server").ca_pem.clone();
    println!(
        "| connection | handover p50 / p99 / max (ms, {ROUNDS} rounds, {CONTENDERS} contenders, 2 s lease) |"
    );
    println!("| --- | --- |");
    let rows: [(&str, Contender<'_>); 4] = [
        ("plain TCP", Box::new(|e, id| builder(&plain.url(), e, id))),
        (
            "TLS, sslmode=verify-full (CA given)",
            Box::new(|e, id| {
                builder(&format!("{} sslmode=verify-full", tls.url()), e, id)
                    .tls_ca_pem(ca.as_bytes())
            }),
        ),
        (
            "TLS, sslmode=require",
            Box::new(|e, id| builder(&format!("{} sslmode=require", tls.url()), e, id)),
        ),
        (
            "PgBouncer (transaction mode), listener direct",
            Box::new(|e, id| builder(&bouncer.url(), e, id).listen_connection_string(plain.url())),
        ),
    ];
    for (name, contender) in rows {
        eprintln!("measuring {name}...");
        let samples = measure(contender).await;
        println!(
            "| {name} | {:.2} / {:.2} / {:.2} |",
            percentile(&samples, 0.5),
            percentile(&samples, 0.99),
            samples[samples.len() - 1]
        );
    }
}
