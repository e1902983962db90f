//! What an election costs in requests, against a real S3 emulator (moto): a follower's
//! polls and reads.

use leader_election_test_support::{follower_requests, unique_name};

mod common;
use common::emulator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_counts_show_what_a_follower_pays() {
    let emulator = emulator().await;
    let key = unique_name("cost");
    let (a, b) = (emulator.election(&key, "a"), emulator.election(&key, "b"));
    // A follower's requests over two leases, in which it follows and writes nothing.
    let (before, spent) = follower_requests(&a, &b, |s| s.request_counts(), |c| c.put).await;
    let lease = b.options().lease_duration;
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
