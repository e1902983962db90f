//! What an election costs in requests, against moto's DynamoDB: a follower's polls.

use leader_election_test_support::{follower_requests, unique_name};

mod common;
use common::emulator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_counts_show_what_a_follower_pays() {
    let emulator = emulator().await;
    let key = unique_name("cost");
    let (a, b) = (emulator.election(&key, "a"), emulator.election(&key, "b"));
    // A follower's requests over two leases, in which it follows and writes nothing.
    let (before, spent) = follower_requests(&a, &b, |s| s.request_counts(), |c| c.put_item).await;
    let lease = b.options().lease_duration;
    let gets = spent.get_item - before.get_item;
    // One GetItem per poll (every 250 ms, ±10 %), nothing else.
    let polls = (lease * 2).as_millis() as u64 / 250;
    // At most one per poll; at least half as many on a loaded machine (each poll waits for its
    // reply before sleeping again).
    assert!(
        gets >= polls / 2 && gets <= polls * 12 / 10 + 2,
        "{gets} GetItem"
    );
    assert_eq!(spent.put_item, before.put_item, "a follower wrote");
    assert_eq!(spent.other, before.other, "a follower sent {spent:?}");
    eprintln!("dynamodb follower per lease: {} GetItem", gets / 2);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
