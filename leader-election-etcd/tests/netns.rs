//! Real network faults between contenders and a real three-member etcd cluster: each contender
//! in its own network namespace, its packets dropped by nftables (no reset, no error), both
//! ways, one way, or a share of them: the shared network checks of
//! `leader_election_test_support::netns`. Needs root, `ip` and `nft` (the test command
//! installs them and requires them as root); elsewhere each test says why and passes.
#![cfg(target_os = "linux")]

mod common;

use leader_election_etcd::EtcdLeaseStore;
use leader_election_test_support::etcd::EtcdCluster;
use leader_election_test_support::netns::{NetLab, NetworkChecks};
use leader_election_test_support::unique_name;

use common::election;

/// A cluster the lab's namespaces reach, and three contenders of one election on it.
async fn start(lab: &NetLab, name: &str) -> (EtcdCluster, NetworkChecks<EtcdLeaseStore>) {
    let cluster = EtcdCluster::start_on(3, lab.host_ip().into()).await;
    let endpoints = cluster.endpoints_on(lab.host_ip().into());
    let key = unique_name(name);
    let checks = NetworkChecks::start(lab, 3, move |i| {
        election(&endpoints, &key, ["a", "b", "c"][i])
    })
    .await;
    (cluster, checks)
}

leader_election_test_support::network_checks!(start);
