//! Watches that must hold against what an operator does, against a real S3 emulator (moto): a
//! restored copy of a watched version restarts the watch. (That tokens minted from the
//! service's clock keep increasing when the object is deleted is a shared check, run by
//! `operator.rs`.)

use std::time::Duration;

use leader_election::LeaseStore;
use leader_election::store::{AcquireOutcome, LeaseRequest, RenewOutcome};
use leader_election_s3::aws::aws_sdk_s3::primitives::ByteStream;
use leader_election_test_support::unique_name;
use tokio::time::Instant;

use leader_election_test_support::acquire;

mod common;
use common::{BUCKET, emulator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_copy_of_a_watched_version_restarts_the_watch() {
    // A follower watches version 1, misses a renewal, then sees an exact copy of version 1
    // restored by an operator (the same bytes, so the same ETag): it must not count the lease
    // as unrenewed since it first saw version 1.
    let emulator = emulator().await;
    let client = emulator.operator().await;
    let key = unique_name("restored");
    let ttl = Duration::from_secs(2);
    let leader = emulator.store(&key);
    let a = LeaseRequest::new("a", ttl);
    let lease = acquire(&leader, &a).await;
    let version1 = client
        .get_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let follower = emulator.store(&key);
    let b = LeaseRequest::new("b", ttl);
    assert!(matches!(
        follower.try_acquire(&b).await.unwrap(),
        AcquireOutcome::Held { .. }
    ));
    let watched = Instant::now();
    // In a later second than version 1 was written: renewed, then version 1 restored. The
    // wait is the scenario (the renewal's `Date` must be a later second, and the copy must be
    // seen well after version 1 was first watched, see below), not a wait for a state.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        leader.renew(&a, &lease).await.unwrap(),
        RenewOutcome::Renewed
    );
    client
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(ByteStream::from(version1.to_vec()))
        .send()
        .await
        .unwrap();
    assert!(matches!(
        follower.try_acquire(&b).await.unwrap(),
        AcquireOutcome::Held { .. }
    ));
    let restarted = Instant::now();
    // Past the watch of version 1 (2 s, 1 %, 100 ms) from when it was first seen, but not
    // from when the copy was seen: the instant is what is checked.
    tokio::time::sleep_until(watched + Duration::from_millis(2_300)).await;
    assert!(restarted + Duration::from_millis(2_120) > Instant::now());
    match follower.try_acquire(&b).await.unwrap() {
        AcquireOutcome::Held { .. } => {}
        other => panic!("took over the restored copy at once: {other:?}"),
    }
}
