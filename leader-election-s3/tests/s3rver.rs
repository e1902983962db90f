//! The S3 backend against a store that ignores conditional writes (s3rver from the npm
//! registry, see `leader_election_test_support::S3rver`): `connect` proves the conditions are
//! enforced before anything else, so such a store is refused with an error naming it, and
//! contenders on it never elect (DESIGN.md, rule 12).

use leader_election::ElectionBuilder;
use std::time::Duration;

use leader_election::LeaseStore;
use leader_election::testing::TermRecorder;
use leader_election_test_support::{ErrorCount, eventually, unique_name};

mod common;
use common::{S3rver, S3rverExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_ignores_conditional_writes_is_refused() {
    let server = S3rver::start().await;
    let key = unique_name("unconditional");

    let store = server.builder(&key, "probe").build_store().unwrap();
    let err = store
        .connect()
        .await
        .expect_err("a store that ignores conditional writes was accepted");
    let message = err.to_string();
    assert!(!err.is_retryable(), "{message}");
    for part in [
        server.endpoint().as_str(),
        "If-None-Match: * on an existing object",
        "If-Match on a stale ETag",
    ] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }

    eprintln!("refused: {message}");

    // Contenders on it never elect: each keeps failing to connect.
    let recorder = TermRecorder::new();
    let elections: Vec<_> = (0..3)
        .map(|i| server.builder(&key, &format!("c{i}")).build().unwrap())
        .collect();
    let errors: Vec<_> = elections.iter().map(ErrorCount::attach).collect();
    recorder.start_all(&elections).await.unwrap();
    eventually(
        Duration::from_secs(20),
        "every contender refused the store three times",
        || errors.iter().all(|e| e.get() >= 3),
    )
    .await;
    for election in &elections {
        assert!(!election.is_leader());
        election.stop().await.unwrap();
    }
    assert!(
        recorder.terms().is_empty(),
        "elected on a store that ignores conditional writes: {:?}",
        recorder.terms()
    );
}
