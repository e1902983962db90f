//! Many contenders racing for many terms on etcd: never two leaders at once, tokens strictly
//! increasing, graceful handovers through the watch.

use std::time::Duration;

use leader_election::testing::racing_handovers;
use leader_election_test_support::etcd::election;
use leader_election_test_support::{EtcdCluster, unique_name};

const CONTENDERS: usize = 5;
const TERMS: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contenders_racing_for_many_terms_never_overlap() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("race");
    let elections: Vec<_> = (0..CONTENDERS)
        .map(|i| election(&etcd.endpoints(), &key, &format!("c{i}")))
        .collect();
    let handovers = racing_handovers(&elections, TERMS).await;
    let p50 = handovers[handovers.len() / 2];
    let max = handovers[handovers.len() - 1];
    eprintln!("{CONTENDERS} contenders; stop() -> next term: p50 {p50:?}, max {max:?}");
    // Graceful handovers go through the watch, not the lease expiry.
    assert!(p50 < Duration::from_millis(500), "p50 handover {p50:?}");
}
