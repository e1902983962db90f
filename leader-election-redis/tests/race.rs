//! Many contenders racing for many terms: never two leaders at once.

use std::time::Duration;

use leader_election::testing::racing_handovers;
use leader_election_test_support::redis::{self as support, election};
use leader_election_test_support::unique_name;

const CONTENDERS: usize = 6;
const TERMS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contenders_racing_for_many_terms_never_overlap() {
    let server = support::server().await;
    let key = unique_name("race");
    let elections: Vec<_> = (0..CONTENDERS)
        .map(|i| election(&server.url(), &key, &format!("c{i}")))
        .collect();
    let handovers = racing_handovers(&elections, TERMS).await;
    let p50 = handovers[handovers.len() / 2];
    let max = handovers[handovers.len() - 1];
    eprintln!("{CONTENDERS} contenders; stop() -> next term: p50 {p50:?}, max {max:?}");
    // Graceful handovers go through the release notification, not the lease expiry.
    assert!(p50 < Duration::from_millis(500), "p50 handover {p50:?}");
}
