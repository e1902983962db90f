//! What an election costs in requests, against a real S3 emulator (moto): a follower's
//! polls and reads.

use std::time::Duration;

use leader_election_test_support::{lead_then_follow, throughout, unique_name};

mod common;
use common::emulator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_counts_show_what_a_follower_pays() {
    let emulator = emulator().await;
    let key = unique_name("cost");
    let a = emulator.election(&key, "a");
    let b = emulator.election(&key, "b");
    lead_then_follow(&a, &b, Duration::from_secs(5)).await;
    let before = b.store().request_counts();
    let lease = b.options().lease_duration;
    // The window is what is measured (a follower's requests over two leases); throughout it, b
    // follows and writes nothing.
    throughout(lease * 2, "b follows and writes nothing", || {
        !b.is_leader() && b.store().request_counts().put == before.put
    })
    .await;
    let spent = b.store().request_counts();
    let (heads, gets) = (spent.head - before.head, spent.get - before.get);
    // One HEAD per poll (every 250 ms, ±10 %) and one GET per renewal seen (every second).
    let polls = (lease * 2).as_millis() as u64 / 250;
    // At most one per poll; at least half as many on a loaded machine (each poll waits for its
    // reply before sleeping again).
    assert!(
        heads >= polls / 2 && heads <= polls * 12 / 10 + 2,
        "{heads} HEADs"
    );
    assert!(gets <= 2 * 2 * lease.as_secs() + 2, "{gets} GETs");
    assert_eq!(spent.put, before.put, "a follower wrote");
    eprintln!(
        "s3 follower per lease: {} HEAD, {} GET",
        heads / 2,
        gets / 2
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
