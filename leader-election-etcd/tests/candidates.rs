//! The candidate record of preferred leaders on a real etcd member: a candidacy announced
//! again and again keeps one etcd lease, which keeps its record alive.

mod common;

use std::time::Duration;

use common::store;
use leader_election::LeaseStore;
use leader_election::priority::Candidate;
use leader_election_test_support::{EtcdCluster, unique_name};

const TTL: Duration = Duration::from_secs(2);

/// The ids of the etcd leases the member holds (`etcdctl lease list`).
async fn leases(etcd: &EtcdCluster) -> Vec<String> {
    let out = etcd.etcdctl(&["lease", "list"]).await.unwrap();
    // "found N leases" then one id a line.
    out.lines().skip(1).map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_of_one_candidacy_keep_one_etcd_lease() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("candidates");
    let store = store(&etcd.endpoints(), &key);
    store.connect().await.unwrap();
    let candidate = Candidate::new("a", 5);
    // As a follower does, once per renew interval: for longer than the record's ttl, so that
    // the record lives only because the announcements keep it alive.
    for _ in 0..8 {
        store.announce_candidate(&candidate, TTL).await.unwrap();
        // The follower's cadence is what the test runs: the record must live on through it.
        tokio::time::sleep(TTL / 4).await;
    }
    assert_eq!(
        store.strongest_candidate().await.unwrap(),
        Some(candidate.clone())
    );
    let granted = leases(&etcd).await;
    assert_eq!(
        granted.len(),
        1,
        "etcd leases after 8 announcements: {granted:?}"
    );

    // A weaker candidate changes nothing and grants nothing.
    store
        .announce_candidate(&Candidate::new("b", 1), TTL)
        .await
        .unwrap();
    assert_eq!(leases(&etcd).await, granted);
    // A stronger one replaces the record, with a lease of its own.
    let stronger = Candidate::new("c", 9);
    store.announce_candidate(&stronger, TTL).await.unwrap();
    assert_eq!(store.strongest_candidate().await.unwrap(), Some(stronger));
    assert_eq!(leases(&etcd).await.len(), 2);
}
