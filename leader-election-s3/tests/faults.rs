//! Faults against a real S3 emulator (moto): the emulator restarted empty.

use std::time::Duration;

use leader_election::testing::TermRecorder;
use leader_election_test_support::{eventually, unique_name};
use tokio::time::Instant;

mod common;
use common::{S3Emulator, S3EmulatorExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emulator_restarted_empty_elects_again_after_a_lease_with_a_greater_token() {
    // Its own emulator: the restart empties it.
    let emulator = S3Emulator::start().await;
    let key = unique_name("restart");
    let recorder = TermRecorder::new();
    let elections: Vec<_> = (0..3)
        .map(|i| emulator.election(&key, &format!("c{i}")))
        .collect();
    recorder.start_all(&elections).await.unwrap();
    eventually(Duration::from_secs(10), "one leads, all see it", || {
        elections.iter().any(|e| e.is_leader())
            && elections
                .iter()
                .all(|e| e.is_leader() || e.state().leader.is_some())
    })
    .await;
    let first = recorder.current().expect("a term").token;

    // From before the restart: a follower may see the empty emulator before it returns here.
    let restarted = Instant::now();
    emulator.restart().await;
    let lease = elections[0].options().lease_duration;
    eventually(
        lease + Duration::from_secs(5),
        "a new term after the restart",
        || recorder.terms().iter().any(|t| t.token > first),
    )
    .await;
    let term = recorder
        .terms()
        .into_iter()
        .find(|t| t.token > first)
        .expect("a new term");
    // Followers had seen the object: the missing object is withheld for a lease from when they
    // first saw it gone (after the restart).
    assert!(
        term.start >= restarted + lease,
        "a new leader {:?} after the restart, within a lease",
        term.start - restarted
    );
    for election in &elections {
        election.stop().await.unwrap();
    }
    recorder.assert_safe();
}
