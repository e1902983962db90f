//! Graceful handover over TLS next to plain TCP, on the same machine: `stop()` → another
//! contender leads, 200 rounds with 3 contenders, on a plain `redis-server`, a TLS-only one
//! (server certificate) and a TLS-only one requiring client certificates (mutual TLS). Each
//! server is started by this program, with certificates made at start (rcgen); contenders are
//! built with the crate's builder, so each owns its client and its release subscription.
//!
//! ```text
//! cargo run --release -p leader-election-redis --example tls_handover
//! ```
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use leader_election::ElectionBuilder;
use std::time::Duration;

use common::{self as support, fast_options, tls_builder, tls_prime, tls_server, with_lease};
use leader_election::LeaderElection;
use leader_election_redis::{RedisLeaderElection, RedisLeaderElectionBuilder, RedisLeaseStore};
use leader_election_test_support::bench::{self, percentile};
use leader_election_test_support::{RedisServer, unique_name};

const ROUNDS: usize = 200;
const CONTENDERS: usize = 3;
const LEASE: Duration = Duration::from_secs(2);

type Election = LeaderElection<RedisLeaseStore>;

fn with_timings(builder: RedisLeaderElectionBuilder) -> Election {
    with_lease(builder, LEASE).build().expect("build")
}

/// Waits until one of `elections` other than `skip` leads (at most 5 s) and answers its index.
async fn handovers(server: &RedisServer, mode: &str) -> Vec<f64> {
    let key = unique_name("tls-handover");
    let elections: Vec<Election> = if mode == "tcp" {
        support::prime(&server.url(), &key).await;
        (0..CONTENDERS)
            .map(|i| {
                with_timings(
                    RedisLeaderElection::builder()
                        .url(server.url())
                        .key(&key)
                        .options(fast_options(&format!("c{i}"))),
                )
            })
            .collect()
    } else {
        tls_prime(server, &key).await;
        (0..CONTENDERS)
            .map(|i| with_timings(tls_builder(server, &key, &format!("c{i}"))))
            .collect()
    };
    // Let the followers settle into their wait, at various points of it.
    bench::handovers(&elections, ROUNDS, Duration::from_secs(5), |round| {
        Duration::from_millis(20 + (round as u64 * 37) % 300)
    })
    .await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let plain = support::server().await;
    let tls = tls_server(false).await;
    let mtls = tls_server(true).await;
    println!(
        "| transport | handover p50 / p99 / max (ms, {ROUNDS} rounds, {CONTENDERS} contenders) |"
    );
    println!("| --- | --- |");
    for (name, server, mode) in [
        ("plain TCP", &plain, "tcp"),
        ("TLS (server certificate)", &tls, "tls"),
        ("mutual TLS (client certificate)", &mtls, "tls"),
    ] {
        eprintln!("measuring {name}...");
        let samples = handovers(server, mode).await;
        println!(
            "| {name} | {:.2} / {:.2} / {:.2} |",
            percentile(&samples, 0.5),
            percentile(&samples, 0.99),
            samples[samples.len() - 1]
        );
    }
}
