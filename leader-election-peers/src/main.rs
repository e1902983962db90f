//! The peers benchmark: this project's elections side by side with the alternatives their
//! users run, on the same server, with the same timing, in one run (see `BENCHMARKS.md`).
//!
//! ```text
//! cargo run --release -p leader-election-peers -- etcd [handovers]
//! cargo run --release -p leader-election-peers -- redis [handovers]
//! ```
//!
//! `etcd`: three etcd members on loopback (the `etcd` binary, as the tests use it); etcd's own
//! election recipe (Go's `concurrency.Election`: `Campaign`/`Resign`) next to this project's
//! etcd backend. `redis`: one redis-server on loopback; a Redlock loop on `rslock` next to this project's Redis backend.
//! Each prints one Markdown table: handover p50/p99, crash failover ÷ lease, follower requests
//! per lease. Every side runs the same schedule (`side::measure`) with the same lease.

mod etcd;
mod ours;
mod redis;
mod side;
mod stats;

use std::process::ExitCode;
use std::time::Duration;

use stats::Stats;

/// The timing and the counts of a run, the same for every side.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Contenders of each side.
    pub(crate) contenders: usize,
    /// Handovers measured for each way of handing over.
    pub(crate) handovers: usize,
    /// Crashes measured for each side.
    pub(crate) crashes: usize,
    /// The lease (etcd: the session's TTL).
    pub(crate) lease: Duration,
    /// How long each leader holds before the next handover or crash.
    pub(crate) hold: Duration,
    /// How long the followers are watched idle.
    pub(crate) idle: Duration,
}

/// One line of the table.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) backend: &'static str,
    pub(crate) what: String,
    pub(crate) handover: Stats,
    /// Crash failover, in milliseconds (divided by the lease when printed).
    pub(crate) crash_failover: Stats,
    pub(crate) lease: Duration,
    pub(crate) follower_requests_per_lease: f64,
}

fn print(rows: &[Row]) {
    println!();
    println!(
        "| backend | contender | graceful handover p50 / p99 | crash failover ÷ lease p50 / p99 | follower requests per lease |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for row in rows {
        let lease_ms = row.lease.as_secs_f64() * 1000.0;
        let crash = &row.crash_failover;
        let crash = if crash.count == 0 {
            "-".to_owned()
        } else {
            format!(
                "{:.2} / {:.2} (n={})",
                crash.p50 / lease_ms,
                crash.p99 / lease_ms,
                crash.count
            )
        };
        println!(
            "| {} | {} | {} | {} | {:.2} |",
            row.backend,
            row.what,
            row.handover.cell(),
            crash,
            row.follower_requests_per_lease
        );
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let handovers = match args.get(1).map(|n| n.parse::<usize>()) {
        None => 40,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: leader-election-peers etcd|redis [handovers, at least 1]");
            return ExitCode::from(2);
        }
    };
    let settings = Settings {
        contenders: 5,
        handovers,
        crashes: 5,
        lease: Duration::from_secs(2),
        hold: Duration::from_millis(1500),
        idle: Duration::from_secs(10),
    };
    let rows = match args.first().map(String::as_str) {
        Some("etcd") => etcd::run(&settings).await,
        Some("redis") => redis::run(&settings).await,
        _ => {
            eprintln!("usage: leader-election-peers etcd|redis [handovers]");
            return ExitCode::from(2);
        }
    };
    print(&rows);
    ExitCode::SUCCESS
}
