//! Elections on a Redis Cluster (6 local nodes: 3 primaries, 3 replicas, started by this
//! program): graceful handover (`stop()` → another contender leads, 200 rounds, 3 contenders)
//! next to a standalone server on the same machine, then the cost of a `CLUSTER FAILOVER` of
//! the election's primary, of its crash (SIGKILL: the cluster promotes its replica; the killed
//! node rejoins as a replica before the handovers) and of moving its slot to another primary
//! while contenders run (5 rounds each): how long the fault took, whether the
//! leader kept its lease through it, and the first handover after it (withheld for one lease:
//! the keys are now on a primary with another replication history).
//!
//! ```text
//! cargo run -p leader-election-redis --example cluster_handover
//! ```
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use leader_election::ElectionBuilder;
use std::time::Duration;

use common::{fast_options, prime, with_lease};
use leader_election::LeaderElection;
use leader_election::testing::TermRecorder;
use leader_election_redis::{RedisLeaderElection, RedisLeaseStore};
use leader_election_test_support::bench::{self, next_leader, percentile};
use leader_election_test_support::redis::RedisCluster;
use leader_election_test_support::unique_name;
use tokio::time::Instant;

const ROUNDS: usize = 200;
const FAULT_ROUNDS: usize = 5;
const CONTENDERS: usize = 3;
const LEASE: Duration = Duration::from_secs(2);

type Election = LeaderElection<RedisLeaseStore>;

fn contenders(url: &str, key: &str) -> Vec<Election> {
    (0..CONTENDERS)
        .map(|i| {
            let builder = RedisLeaderElection::builder()
                .url(url)
                .key(key)
                .options(fast_options(&format!("c{i}")));
            with_lease(builder, LEASE).build().expect("build")
        })
        .collect()
}

/// Stops the leader `from`, answers who took over and after how many ms, starts `from` again.
async fn hand_over(elections: &[Election], from: usize) -> (usize, f64) {
    let (next, took) = bench::hand_over(elections, from, LEASE * 4).await;
    (next, took.as_secs_f64() * 1000.0)
}

/// One fault round: contenders on a fresh key, the fault, then two handovers. Prints a row.
async fn fault_round(cluster: &RedisCluster, fault: &str) {
    let key = unique_name("cluster-bench");
    let lease_key = format!("{{{key}}}:lease");
    prime(&cluster.url(), &key).await;
    let elections = contenders(&cluster.url(), &key);
    let recorder = TermRecorder::new();
    for e in &elections {
        recorder.attach(e);
        e.start().await.expect("start");
    }
    let leader = next_leader(&elections, None, LEASE * 4).await;
    let before = elections[leader].leadership().expect("leading").token();
    let started = Instant::now();
    let mut killed = None;
    let what = if fault == "failover" {
        let (old, new) = cluster
            .failover_owner_of(&lease_key)
            .await
            .expect("failover");
        format!("{old} → {new}")
    } else if fault == "crash" {
        let (old, promoted) = cluster.kill_owner_of(&lease_key).await.expect("kill");
        killed = Some(old.clone());
        format!("{old} → {promoted}")
    } else {
        let (owner, to) = cluster
            .migrate_slot_elsewhere(&lease_key)
            .await
            .expect("migrate");
        format!("{owner} → {to}")
    };
    let fault_ms = started.elapsed().as_secs_f64() * 1000.0;
    // A leader again: how long nobody led, from the fault's start.
    let leader = next_leader(&elections, None, LEASE * 8).await;
    let kept = elections[leader].leadership().map(|l| l.token()) == Some(before);
    let leaderless = if kept {
        0.0
    } else {
        let terms = recorder.terms();
        let ended = terms[0].end;
        let resumed = terms[1].start;
        resumed.saturating_duration_since(ended).as_secs_f64() * 1000.0
    };
    if let Some(node) = killed {
        // Back as a replica of the promoted node, so that the next round finds one.
        cluster.restart_node(&node).await.expect("restart");
    }
    // After a crash, fred reconnects: wait until every contender reaches the new primary.
    for e in &elections {
        while e.current_leader().await.is_err() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let leader = next_leader(&elections, None, LEASE * 4).await;
    let (next, fenced) = hand_over(&elections, leader).await;
    let (_, after) = hand_over(&elections, next).await;
    for e in &elections {
        e.stop().await.expect("stop");
    }
    recorder.assert_safe();
    println!(
        "| {fault} {what} | {fault_ms:.0} | {} | {leaderless:.0} | {fenced:.0} | {after:.2} |",
        if kept { "yes" } else { "no" }
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cluster = RedisCluster::start().await;
    // A standalone server on the same machine, measured the same way, for comparison.
    let standalone = common::server().await;
    println!(
        "| deployment | handover p50 / p99 / max (ms, {ROUNDS} rounds, {CONTENDERS} contenders) |"
    );
    println!("| --- | --- |");
    for (name, url) in [
        ("standalone", standalone.url()),
        ("cluster (3 primaries, 3 replicas)", cluster.url()),
    ] {
        eprintln!("measuring graceful handover on {name}...");
        let key = unique_name("cluster-handover");
        prime(&url, &key).await;
        let elections = contenders(&url, &key);
        let samples = bench::handovers(&elections, ROUNDS, LEASE * 4, |round| {
            Duration::from_millis(20 + (round as u64 * 37) % 300)
        })
        .await;
        println!(
            "| {name} | {:.2} / {:.2} / {:.2} |",
            percentile(&samples, 0.5),
            percentile(&samples, 0.99),
            samples[samples.len() - 1]
        );
    }
    println!();
    println!(
        "| fault (lease {LEASE:?}) | fault done (ms) | leader kept its lease | no leader (ms) \
         | first handover after (ms) | next handover (ms) |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for fault in ["failover", "crash", "migration"] {
        for _ in 0..FAULT_ROUNDS {
            fault_round(&cluster, fault).await;
        }
    }
}
