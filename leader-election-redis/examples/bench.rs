//! Measures the Redis backend on loopback, against a redis-server it starts itself, with this
//! library's followers (`smart`: sleep until the lease can expire, wake on release notices)
//! side by side with the approach most libraries use (`poll`: try to acquire every
//! `retry_interval`, as the C# library and client-go do):
//!
//! 1. graceful handover, `stop()` → a follower leads: 200 rounds, 5 contenders;
//! 2. crash failover, the dead leader's last renewal → a follower leads: 20 crashes, 2 s lease;
//! 3. follower load at steady state, counted by Redis itself (`INFO commandstats` deltas over
//!    the same window with the leader alone, then with 4 followers added).
//!
//! ```text
//! cargo run --release -p leader-election-redis --example bench
//! ```
//! Both strategies use a 2 s lease, renewal every 500 ms and `retry_interval` = lease / 6
//! (client-go's and the C# library's ratio); `poll` differs only in the follower: no expiry
//! hint, no release notice.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::{self as support, RedisServerExt, command, store};
use leader_election::store::layer::{Forward, StoreHooks};
use leader_election::store::{AcquireOutcome, ReleaseReceiver};
use leader_election::testing::{FaultControl, FaultyStore};
use leader_election::{LeaderElection, LeaderElectionOptions};
use leader_election_redis::RedisLeaseStore;
use leader_election_test_support::bench::{crash_failover, handovers, next_leader, percentile};
use leader_election_test_support::{RedisServer, unique_name};

const LEASE: Duration = Duration::from_secs(2);

/// How followers wait for the lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    /// This library: sleep until the lease can expire, wake on release notices.
    Smart,
    /// The usual approach: try again every `retry_interval`.
    Poll,
}

impl Strategy {
    fn name(self) -> &'static str {
        match self {
            Self::Smart => "smart",
            Self::Poll => "poll",
        }
    }
}

/// Hooks that, for `Strategy::Poll`, hide what lets followers avoid polling: the expiry hint
/// of a held lease and release notices.
#[derive(Clone, Copy, Debug)]
struct Follow(Strategy);

impl StoreHooks for Follow {
    fn acquired(
        &self,
        _sent: tokio::time::Instant,
        outcome: leader_election::Result<AcquireOutcome>,
    ) -> leader_election::Result<AcquireOutcome> {
        match outcome? {
            AcquireOutcome::Held { leader, .. } if self.0 == Strategy::Poll => {
                Ok(AcquireOutcome::Held {
                    leader,
                    expires_in: None,
                })
            }
            outcome => Ok(outcome),
        }
    }

    fn release_notifications(&self, inner: Option<ReleaseReceiver>) -> Option<ReleaseReceiver> {
        match self.0 {
            Strategy::Smart => inner,
            Strategy::Poll => None,
        }
    }
}

type Election = LeaderElection<FaultyStore<Forward<RedisLeaseStore, Follow>>>;

async fn contender(url: &str, key: &str, id: &str, strategy: Strategy) -> (Election, FaultControl) {
    let store = FaultyStore::new(Forward::with_hooks(store(url, key).await, Follow(strategy)));
    let control = store.control();
    let mut o: LeaderElectionOptions = support::fast_options(id);
    o.lease_duration = LEASE;
    o.renew_interval = LEASE / 4;
    o.retry_interval = LEASE / 6;
    o.max_retry_interval = LEASE;
    let election = LeaderElection::new(store, o).expect("options");
    (election, control)
}

/// Waits until one of `elections` (other than `skip`) leads and answers its index.
struct Figures {
    handover_ms: Vec<f64>,
    failover_ratio: Vec<f64>,
    commands_per_follower_per_lease: f64,
    evalsha_per_follower_per_lease: f64,
    store_calls_per_follower_per_lease: f64,
}

async fn handover(url: &str, strategy: Strategy) -> Vec<f64> {
    const ROUNDS: usize = 200;
    let key = unique_name("bench-handover");
    let mut elections = Vec::new();
    for i in 0..5 {
        elections.push(contender(url, &key, &format!("h{i}"), strategy).await.0);
    }
    // Let the followers settle into their wait, at a random point of it.
    handovers(&elections, ROUNDS, Duration::from_secs(60), |_| {
        Duration::from_millis(20 + fastrand::u64(0..300))
    })
    .await
}

async fn failover(url: &str, strategy: Strategy) -> Vec<f64> {
    const ROUNDS: usize = 20;
    let mut ratios = Vec::new();
    for round in 0..ROUNDS {
        let key = unique_name("bench-failover");
        let (a, _) = contender(url, &key, "crashing", strategy).await;
        let (b, _) = contender(url, &key, "survivor", strategy).await;
        // At various points of a renewal interval, the leader vanishes without releasing.
        let pause = Duration::from_millis(600 + 37 * round as u64);
        ratios.push(crash_failover(a, b, pause, LEASE).await);
    }
    ratios.sort_by(f64::total_cmp);
    ratios
}

/// Commands Redis has executed so far, but `INFO` itself: `(all, EVALSHA)`. "All" includes the
/// commands that scripts run inside the server; EVALSHA is what clients send.
async fn commands(server: &RedisServer) -> (u64, u64) {
    let client = server.client().await;
    let info = command(&client, &["INFO", "commandstats"]).await;
    let info = info.as_string().unwrap_or_default();
    let calls = |line: &str| -> u64 {
        line.split_once("calls=")
            .and_then(|(_, rest)| rest.split(',').next()?.parse().ok())
            .unwrap_or(0)
    };
    let all = info
        .lines()
        .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info:"))
        .map(calls)
        .sum();
    let evalsha = info
        .lines()
        .find(|l| l.starts_with("cmdstat_evalsha:"))
        .map_or(0, calls);
    (all, evalsha)
}

/// Redis's own count of what `window` costs, as `(all, EVALSHA)` commands.
async fn count_over(server: &RedisServer, window: Duration) -> (u64, u64) {
    let before = commands(server).await;
    tokio::time::sleep(window).await;
    let after = commands(server).await;
    (after.0 - before.0, after.1 - before.1)
}

/// Follower load at steady state, from Redis's own counters: the same window is counted with
/// the leader alone, then with the leader and 4 followers; the difference is the followers'.
/// Answers (all commands, EVALSHA, store calls) per follower per lease.
async fn follower_load(server: &RedisServer, strategy: Strategy) -> (f64, f64, f64) {
    const FOLLOWERS: usize = 4;
    let window = Duration::from_secs(20);
    let key = unique_name("bench-load");
    let url = server.url();
    let (leader, _) = contender(&url, &key, "leader", strategy).await;
    leader.start().await.expect("start");
    let _ = next_leader(std::slice::from_ref(&leader), None, Duration::from_secs(60)).await;
    tokio::time::sleep(LEASE).await;
    let alone = count_over(server, window).await;
    let mut followers = Vec::new();
    for i in 0..FOLLOWERS {
        let (f, ops) = contender(&url, &key, &format!("f{i}"), strategy).await;
        f.start().await.expect("start");
        followers.push((f, ops));
    }
    // Steady state: past the first wake-ups.
    tokio::time::sleep(LEASE * 2).await;
    let calls_before: u64 = followers.iter().map(|(_, c)| c.operations()).sum();
    let with_followers = count_over(server, window).await;
    let calls = followers.iter().map(|(_, c)| c.operations()).sum::<u64>() - calls_before;
    let per = |n: u64| n as f64 / FOLLOWERS as f64 / (window.as_secs_f64() / LEASE.as_secs_f64());
    for (f, _) in &followers {
        f.stop().await.expect("stop");
    }
    leader.stop().await.expect("stop");
    (
        per(with_followers.0.saturating_sub(alone.0)),
        per(with_followers.1.saturating_sub(alone.1)),
        per(calls),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = support::server().await;
    // A Redis server grants no lease during its first lease duration (it may have lost one in
    // a restart); let that pass before measuring.
    tokio::time::sleep(LEASE).await;
    let url = server.url();
    let mut results = Vec::new();
    for strategy in [Strategy::Smart, Strategy::Poll] {
        eprintln!("measuring {}...", strategy.name());
        let handover_ms = handover(&url, strategy).await;
        let failover_ratio = failover(&url, strategy).await;
        let (commands, evalsha, calls) = follower_load(&server, strategy).await;
        results.push((
            strategy,
            Figures {
                handover_ms,
                failover_ratio,
                commands_per_follower_per_lease: commands,
                evalsha_per_follower_per_lease: evalsha,
                store_calls_per_follower_per_lease: calls,
            },
        ));
    }
    println!(
        "| strategy | handover p50 / p99 / max (ms, 200 rounds, 5 contenders) | crash failover \
         ÷ lease p50 / max (20 crashes, 2 s lease) | requests (EVALSHA) per follower per lease \
         | Redis commands incl. inside scripts | store calls |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (strategy, f) in &results {
        println!(
            "| {} | {:.2} / {:.2} / {:.2} | {:.3} / {:.3} | {:.2} | {:.2} | {:.2} |",
            strategy.name(),
            percentile(&f.handover_ms, 0.5),
            percentile(&f.handover_ms, 0.99),
            f.handover_ms[f.handover_ms.len() - 1],
            percentile(&f.failover_ratio, 0.5),
            f.failover_ratio[f.failover_ratio.len() - 1],
            f.evalsha_per_follower_per_lease,
            f.commands_per_follower_per_lease,
            f.store_calls_per_follower_per_lease,
        );
    }
    if let [(_, smart), (_, poll)] = &results[..] {
        println!(
            "\nsmart vs poll: handover p99 {:.0}x faster, failover p50 {:.3} vs {:.3} x lease, \
             follower load {:.1}x lower",
            percentile(&poll.handover_ms, 0.99) / percentile(&smart.handover_ms, 0.99),
            percentile(&smart.failover_ratio, 0.5),
            percentile(&poll.failover_ratio, 0.5),
            poll.evalsha_per_follower_per_lease / smart.evalsha_per_follower_per_lease
        );
    }
}
