//! What replica acknowledgements cost: graceful handover (`stop()` → another contender leads),
//! 200 rounds with 3 contenders, through Sentinel (one primary, two replicas, three
//! sentinels, all started by this program on free loopback ports), without `WAIT` and with
//! `min_replica_acks` 1 and 2. Contenders are built with the crate's builder and a
//! `redis-sentinel://` URL, so each owns its client and its release subscription.
//!
//! ```text
//! cargo run --release -p leader-election-redis --example sentinel_handover
//! ```
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use leader_election::ElectionBuilder;
use std::time::Duration;

use common::{fast_options, prime};
use leader_election::LeaderElection;
use leader_election_redis::{RedisLeaderElection, RedisLeaseStore};
use leader_election_test_support::bench::{self, percentile};
use leader_election_test_support::{RedisSentinel, unique_name};

const ROUNDS: usize = 200;
const CONTENDERS: usize = 3;
const LEASE: Duration = Duration::from_secs(2);

async fn handovers(url: &str, acks: u32) -> Vec<f64> {
    let key = unique_name("sentinel-handover");
    prime(url, &key).await;
    let elections: Vec<LeaderElection<RedisLeaseStore>> = (0..CONTENDERS)
        .map(|i| {
            RedisLeaderElection::builder()
                .url(url)
                .key(&key)
                .options(fast_options(&format!("c{i}")))
                .lease_duration(LEASE)
                .renew_interval(LEASE / 4)
                .retry_interval(LEASE / 6)
                .max_retry_interval(LEASE)
                .min_replica_acks(acks)
                .build()
                .expect("build")
        })
        .collect();
    // Let the followers settle into their wait, at various points of it.
    bench::handovers(&elections, ROUNDS, Duration::from_secs(5), |round| {
        Duration::from_millis(20 + (round as u64 * 37) % 300)
    })
    .await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let deployment = RedisSentinel::start().await;
    let url = deployment.url();
    println!(
        "| through Sentinel | handover p50 / p99 / max (ms, {ROUNDS} rounds, {CONTENDERS} contenders) |"
    );
    println!("| --- | --- |");
    for (name, acks) in [
        ("no `WAIT` (default)", 0),
        ("`min_replica_acks(1)`", 1),
        ("`min_replica_acks(2)` (every replica)", 2),
    ] {
        eprintln!("measuring {name}...");
        let samples = handovers(&url, acks).await;
        println!(
            "| {name} | {:.2} / {:.2} / {:.2} |",
            percentile(&samples, 0.5),
            percentile(&samples, 0.99),
            samples[samples.len() - 1]
        );
    }
}
