//! Measures the Redis backend on loopback against a redis-server it starts itself:
//! graceful handover latency, crash failover time, and follower load.
//!
//! ```text
//! cargo run -p leader-election-redis --example bench   # add --release for optimized figures
//! ```
#![allow(missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant, SystemTime};

use leader_election::testing::{FaultControl, FaultyStore};
use leader_election::{LeaderElection, LeaderElectionOptions};
use leader_election_redis::RedisLeaseStore;
use support::{RedisServer, command, store, unique_key};

type Election = LeaderElection<FaultyStore<RedisLeaseStore>>;

fn options(id: &str, lease: Duration, renew: Duration) -> LeaderElectionOptions {
    let mut o = support::fast_options(id);
    o.lease_duration = lease;
    o.renew_interval = renew;
    o
}

async fn contender(url: &str, key: &str, id: &str, lease: Duration) -> (Election, FaultControl) {
    let store = FaultyStore::new(store(url, key).await);
    let control = store.control();
    let election = LeaderElection::new(store, options(id, lease, lease / 4)).expect("options");
    (election, control)
}

/// Waits until one of `elections` leads and answers its index.
async fn next_leader(elections: &[Election], skip: Option<usize>) -> usize {
    let mut watches: Vec<_> = elections.iter().map(LeaderElection::watch).collect();
    loop {
        if let Some(i) = (0..elections.len())
            .filter(|&i| Some(i) != skip)
            .find(|&i| watches[i].borrow().is_leader())
        {
            return i;
        }
        let changes = watches
            .iter_mut()
            .map(|w| Box::pin(async move { w.changed().await.ok() }))
            .collect::<Vec<_>>();
        let _ = tokio::time::timeout(Duration::from_millis(50), futures_select_all(changes)).await;
    }
}

/// The first of several futures to complete (a tiny `select_all`).
async fn futures_select_all<F: std::future::Future + Unpin>(futures: Vec<F>) {
    let mut futures = futures;
    std::future::poll_fn(move |cx| {
        for f in &mut futures {
            if std::pin::Pin::new(&mut *f).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await;
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn handover(url: &str) {
    const ROUNDS: usize = 200;
    let key = unique_key("bench-handover");
    let lease = Duration::from_secs(2);
    let mut elections = Vec::new();
    for i in 0..3 {
        elections.push(contender(url, &key, &format!("h{i}"), lease).await.0);
    }
    for e in &elections {
        e.start().await.expect("start");
    }
    let mut leader = next_leader(&elections, None).await;
    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        // Let the followers settle into their wait.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = Instant::now();
        let stopping = elections[leader].clone();
        let stop = tokio::spawn(async move { stopping.stop().await });
        let next = next_leader(&elections, Some(leader)).await;
        samples.push(started.elapsed());
        stop.await.expect("join").expect("stop");
        elections[leader].start().await.expect("restart");
        leader = next;
    }
    for e in &elections {
        e.stop().await.expect("stop");
    }
    samples.sort();
    println!(
        "graceful handover (stop() -> follower leading), {ROUNDS} rounds, 3 contenders: \
         p50 {:?}, p99 {:?}, max {:?}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
}

async fn failover(url: &str) {
    const ROUNDS: usize = 5;
    let lease = Duration::from_secs(2);
    let mut ratios = Vec::new();
    for round in 0..ROUNDS {
        let key = unique_key("bench-failover");
        let (a, _) = contender(url, &key, "crashing", lease).await;
        let (b, _) = contender(url, &key, "survivor", lease).await;
        a.start().await.expect("start");
        let _ = next_leader(std::slice::from_ref(&a), None).await;
        b.start().await.expect("start");
        // A little into a renewal interval, the leader vanishes without releasing.
        tokio::time::sleep(Duration::from_millis(700 + 97 * round as u64)).await;
        let last_renewal = a.last_leadership_renewal().expect("renewed");
        drop(a);
        let mut watch = b.watch();
        watch.wait_for(|s| s.is_leader()).await.expect("b leads");
        let took = SystemTime::now()
            .duration_since(last_renewal)
            .unwrap_or_default();
        ratios.push(took.as_secs_f64() / lease.as_secs_f64());
        b.stop().await.expect("stop");
    }
    let max = ratios.iter().copied().fold(0.0, f64::max);
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    println!(
        "crash failover (leader's last renewal -> follower leading), lease {lease:?}, \
         {ROUNDS} rounds: mean {mean:.3} x lease, max {max:.3} x lease"
    );
}

async fn evalsha_calls(server: &RedisServer) -> u64 {
    let client = server.client().await;
    let info = command(&client, &["INFO", "commandstats"]).await;
    let info = info.as_string().unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn follower_load(server: &RedisServer) {
    const FOLLOWERS: usize = 4;
    let lease = Duration::from_secs(2);
    let window = Duration::from_secs(20);
    let key = unique_key("bench-load");
    let url = server.url();
    let (leader, leader_ops) = contender(&url, &key, "leader", lease).await;
    leader.start().await.expect("start");
    let _ = next_leader(std::slice::from_ref(&leader), None).await;
    let mut followers = Vec::new();
    for i in 0..FOLLOWERS {
        let (f, ops) = contender(&url, &key, &format!("f{i}"), lease).await;
        f.start().await.expect("start");
        followers.push((f, ops));
    }
    // Steady state: past the first wake-ups.
    tokio::time::sleep(lease * 2).await;
    let before = evalsha_calls(server).await;
    let leader_before = leader_ops.operations();
    let followers_before: u64 = followers.iter().map(|(_, c)| c.operations()).sum();
    tokio::time::sleep(window).await;
    let after = evalsha_calls(server).await;
    let leader_calls = leader_ops.operations() - leader_before;
    let follower_calls =
        followers.iter().map(|(_, c)| c.operations()).sum::<u64>() - followers_before;
    let leases = window.as_secs_f64() / lease.as_secs_f64();
    let per_follower = (after - before - leader_calls) as f64 / FOLLOWERS as f64 / leases;
    println!(
        "follower load, {FOLLOWERS} followers, lease {lease:?}, renew {:?}, {window:?}: \
         EVALSHA delta {} (leader {leader_calls}); {per_follower:.2} commands per follower \
         per lease (store counters: {:.2})",
        lease / 4,
        after - before,
        follower_calls as f64 / FOLLOWERS as f64 / leases
    );
    for (f, _) in &followers {
        f.stop().await.expect("stop");
    }
    leader.stop().await.expect("stop");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = RedisServer::start().await;
    let url = server.url();
    handover(&url).await;
    failover(&url).await;
    follower_load(&server).await;
}
