//! What an election costs in requests, against moto's DynamoDB: a follower's polls.

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
        !b.is_leader() && b.store().request_counts().put_item == before.put_item
    })
    .await;
    let spent = b.store().request_counts();
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
