//! Scale: thousands of elections in one process over one fred client and one subscriber
//! connection (think per-shard leadership), against a redis-server it starts itself.
//!
//! ```text
//! cargo run --release -p leader-election-redis --example scale -- 10000 60
//! ```
//! Arguments: the number of elections (default 1000) and how long to hold them, in seconds
//! (default 60). Leases last 15 s and are renewed every 5 s. Prints: the time to elect all,
//! renewal latency percentiles, CPU time per second of wall time, resident memory per
//! election, and whether every election was renewed on time throughout (no leadership lost).
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{self as support, connect_client};
use leader_election::store::{Forward, RenewOutcome, StoreHooks};
use leader_election::{ElectionEvent, LeaderElection, LeaderElectionOptions};
use leader_election_redis::{RedisLeaseStore, ReleaseHub};
use leader_election_test_support::unique_name;

/// Times every renewal at the store boundary.
#[derive(Clone, Default)]
struct RenewTimes(Arc<Mutex<Vec<u32>>>);

impl StoreHooks for RenewTimes {
    fn renewed(
        &self,
        sent: tokio::time::Instant,
        outcome: leader_election::Result<RenewOutcome>,
    ) -> leader_election::Result<RenewOutcome> {
        let micros = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(micros);
        outcome
    }
}

/// A store whose renewals are timed.
type Timed = Forward<RedisLeaseStore, RenewTimes>;

/// CPU time (user + system) of this process so far, from /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Resident memory of this process, in bytes, from /proc.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[index]) / 1000.0
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let hold = Duration::from_secs(args.next().and_then(|a| a.parse().ok()).unwrap_or(60));
    let server = support::server().await;
    // A Redis server grants no lease during its first lease duration (it may have lost one in
    // a restart); start the clock once that is over. A new election also waits one lease from
    // its first attempt (nothing proves no lease was granted before): "elected in" includes it.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let client = connect_client(&server.url()).await;
    let hub = ReleaseHub::new(&client);
    let renewals = Arc::new(Mutex::new(Vec::new()));
    let lost = Arc::new(AtomicU64::new(0));
    let prefix = unique_name("scale");

    let rss_before = rss();
    let started = Instant::now();
    let mut elections = Vec::with_capacity(count);
    for i in 0..count {
        let store = RedisLeaseStore::with_hub(client.clone(), format!("{prefix}-{i}"), hub.clone())
            .expect("store")
            .with_operation_timeout(Duration::from_secs(2));
        let store = Timed::with_hooks(store, RenewTimes(Arc::clone(&renewals)));
        let mut options = LeaderElectionOptions::default();
        options.instance_id = format!("scale-{i}");
        options.lease_duration = Duration::from_secs(15);
        options.renew_interval = Duration::from_secs(5);
        let election = LeaderElection::new(store, options).expect("options");
        let mut events = election.subscribe();
        let lost = Arc::clone(&lost);
        tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                if let ElectionEvent::LeadershipChanged {
                    is_leader: false, ..
                } = event
                {
                    lost.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        election.start().await.expect("start");
        elections.push(election);
    }
    loop {
        let leading = elections.iter().filter(|e| e.is_leader()).count();
        if leading == count {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "only {leading} of {count} elected after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elected_in = started.elapsed();
    let rss_after = rss();
    renewals.lock().unwrap_or_else(|e| e.into_inner()).clear();

    let cpu_before = cpu_time();
    let wall = Instant::now();
    tokio::time::sleep(hold).await;
    let cpu = cpu_time() - cpu_before;
    let wall = wall.elapsed();
    let still_leading = elections.iter().filter(|e| e.is_leader()).count();

    let mut samples = renewals.lock().unwrap_or_else(|e| e.into_inner()).clone();
    samples.sort_unstable();
    println!("elections:                {count}");
    println!(
        "elected in:               {:.2} s",
        elected_in.as_secs_f64()
    );
    println!("held for:                 {:.0} s", wall.as_secs_f64());
    println!(
        "renewals:                 {} ({:.0}/s)",
        samples.len(),
        samples.len() as f64 / wall.as_secs_f64()
    );
    println!(
        "renew latency ms:         p50 {:.2}  p99 {:.2}  max {:.2}",
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        percentile(&samples, 1.0)
    );
    println!(
        "cpu per wall second:      {:.3} s ({:.1} % of one core)",
        cpu.as_secs_f64() / wall.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
    );
    println!(
        "resident memory:          {:.1} MiB total, {:.1} KiB per election",
        rss_after as f64 / 1048576.0,
        rss_after.saturating_sub(rss_before) as f64 / 1024.0 / count as f64
    );
    println!("leading at the end:       {still_leading} of {count}");
    println!("leaderships lost:         {}", lost.load(Ordering::Relaxed));
    println!(
        "subscriber channels:      {} on one connection",
        hub.channels()
    );
    for election in &elections {
        let _ = election.stop().await;
    }
    drop(server);
}
