//! Measures graceful handover (leader `stop()` → follower leading) and crash failover (leader's
//! last renewal → new leader) against a blob service, Azurite by default.
//!
//! ```text
//! cargo run -p leader-election-blob --example failover -- [rounds] [retry_interval_ms]
//! ```
//!
//! The connection string comes from `AZURE_STORAGE_CONNECTION_STRING`; without it, the example
//! starts its own Azurite (from `.tools/azurite`, installed by `scripts/install-azurite.sh`)
//! with the test fixture of `leader-election-test-support`. Leases last 15 s and are renewed
//! every 5 s.

use leader_election::ElectionBuilder;
use std::time::{Duration, SystemTime};

use leader_election::LeaderElection;
use leader_election_blob::{BlobLeaderElection, BlobLeaseStore};
use leader_election_test_support::Azurite;
use tokio::time::Instant;

fn contender(
    connection: &str,
    blob: &str,
    id: &str,
    retry: Duration,
) -> LeaderElection<BlobLeaseStore> {
    BlobLeaderElection::builder()
        .connection_string(connection)
        .blob_name(blob)
        .instance_id(id.to_owned())
        .lease_duration(Duration::from_secs(15))
        .renew_interval(Duration::from_secs(5))
        .retry_interval(retry)
        .max_retry_interval(retry.max(Duration::from_secs(2)))
        .build()
        .expect("valid configuration")
}

async fn until_leader(election: &LeaderElection<BlobLeaseStore>) {
    let mut state = election.watch();
    while !state.borrow_and_update().is_leader() {
        state.changed().await.expect("election running");
    }
}

fn summary(name: &str, samples: &[Duration]) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let mean = sorted.iter().sum::<Duration>() / u32::try_from(sorted.len().max(1)).unwrap_or(1);
    println!(
        "{name}: n={} min={:?} mean={:?} max={:?}",
        sorted.len(),
        sorted.first().copied().unwrap_or_default(),
        mean,
        sorted.last().copied().unwrap_or_default()
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let retry = Duration::from_millis(args.next().and_then(|a| a.parse().ok()).unwrap_or(1000));
    let azurite;
    let connection = match std::env::var("AZURE_STORAGE_CONNECTION_STRING") {
        Ok(connection) => connection,
        Err(_) => {
            azurite = Azurite::start().await;
            azurite.connection_string()
        }
    };
    let blob = format!("failover-{}", std::process::id());
    println!("rounds={rounds} retry_interval={retry:?} lease=15s renew=5s");

    // Graceful handover: the leader stops (releasing the lease); a follower polling every
    // retry_interval takes over.
    let mut handovers = Vec::new();
    let mut leader = contender(&connection, &blob, "g-0", retry);
    leader.start().await.expect("start");
    until_leader(&leader).await;
    for round in 1..=rounds {
        let follower = contender(&connection, &blob, &format!("g-{round}"), retry);
        follower.start().await.expect("start");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let stopped = Instant::now();
        leader.stop().await.expect("graceful stop");
        until_leader(&follower).await;
        let took = stopped.elapsed();
        println!("handover {round}: {took:?}");
        handovers.push(took);
        leader = follower;
    }

    // Crash failover: the leader's loop ends without releasing (every handle dropped); the
    // lease has to expire. Measured from the leader's last confirmed renewal.
    let mut failovers = Vec::new();
    for round in 1..=rounds.min(3) {
        let follower = contender(&connection, &blob, &format!("c-{round}"), retry);
        follower.start().await.expect("start");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let last_renewal = leader
            .last_leadership_renewal()
            .expect("the leader has renewed");
        drop(leader);
        until_leader(&follower).await;
        let took = SystemTime::now()
            .duration_since(last_renewal)
            .unwrap_or_default();
        println!("failover {round}: {took:?} after the last renewal");
        failovers.push(took);
        leader = follower;
    }
    leader.stop().await.expect("stop");
    summary("graceful handover", &handovers);
    summary("crash failover (from last renewal)", &failovers);
}
