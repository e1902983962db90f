//! Fencing tokens that must hold against what the service and an operator do, against moto's
//! DynamoDB: tokens minted from the service's clock keep increasing when the item is deleted,
//! each time by a brand-new store.

use std::time::Duration;

use leader_election::LeaseStore;
use leader_election::store::{AcquireOutcome, LeaseRequest};
use leader_election_test_support::unique_name;

mod common;
use common::{DynamoEmulatorExt, acquired, delete, emulator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_minted_from_the_service_clock_and_survive_deletion() {
    let emulator = emulator().await;
    let client = emulator.operator().await;
    let key = unique_name("clock-token");
    let mut last = None;
    // Each round a brand-new store (a new process) acquires right after the item was deleted,
    // several times within a second or two.
    for round in 0..4 {
        let store = emulator.store(&key);
        let request = LeaseRequest::new(format!("p{round}"), Duration::from_secs(2));
        let token = loop {
            match store.try_acquire(&request).await.unwrap() {
                AcquireOutcome::Withheld { wait, .. } => tokio::time::sleep(wait).await,
                outcome => break acquired(outcome).token,
            }
        };
        if let Some(last) = last {
            assert!(token > last, "round {round}: token {token} after {last}");
        }
        last = Some(token);
        delete(&client, &key).await;
    }
}
