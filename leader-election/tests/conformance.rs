//! The in-memory store is the reference implementation of the conformance suite.

use std::time::Duration;

use leader_election::MemoryLeaseStore;
use leader_election::testing::{ConformanceOptions, FaultyStore, run_conformance};

#[tokio::test(start_paused = true)]
async fn memory_store_passes_the_conformance_suite() {
    let options = ConformanceOptions::new(Duration::from_secs(5), Duration::from_millis(500));
    run_conformance(options, || async { MemoryLeaseStore::new() }).await;
}

#[tokio::test(start_paused = true)]
async fn a_fault_free_wrapper_passes_too() {
    let options = ConformanceOptions::new(Duration::from_secs(5), Duration::from_millis(500));
    run_conformance(options, || async {
        FaultyStore::new(MemoryLeaseStore::new())
    })
    .await;
}
