//! The core's conformance suite and shared checks against a real etcd member.

use std::time::Duration;

use leader_election::testing::{
    ConformanceOptions, election_controls, leader_metadata, preferred_leader_handover,
    run_conformance, tokens_increase_across_rebuilt_stores,
};
use leader_election_test_support::etcd::{fast_options, store};
use leader_election_test_support::{EtcdCluster, unique_name};

/// etcd's leases are whole seconds, at least 2 s with its default timing; its expiry checker
/// runs every 500 ms, so an expiry shows up to about half a second late.
fn conformance_options() -> ConformanceOptions {
    ConformanceOptions::new(Duration::from_secs(2), Duration::from_millis(1500))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_against_etcd() {
    let etcd = EtcdCluster::single().await;
    let endpoints = etcd.endpoints();
    run_conformance(conformance_options(), || {
        let endpoints = endpoints.clone();
        async move { store(&endpoints, &unique_name("conformance")) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_tokens_increase_across_rebuilt_stores() {
    let etcd = EtcdCluster::single().await;
    let endpoints = etcd.endpoints();
    let key = unique_name("rebuilt");
    tokens_increase_across_rebuilt_stores(&conformance_options(), || {
        let (endpoints, key) = (endpoints.clone(), key.clone());
        async move { store(&endpoints, &key) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_controls_work_against_etcd() {
    let etcd = EtcdCluster::single().await;
    let endpoints = etcd.endpoints();
    let key = unique_name("controls");
    let report = election_controls(
        &fast_options("controls"),
        Duration::from_millis(500),
        || {
            let (endpoints, key) = (endpoints.clone(), key.clone());
            async move { store(&endpoints, &key) }
        },
    )
    .await;
    eprintln!("etcd controls: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_metadata_works_against_etcd() {
    let etcd = EtcdCluster::single().await;
    let endpoints = etcd.endpoints();
    let key = unique_name("metadata");
    let report = leader_metadata(
        &fast_options("metadata"),
        Duration::from_millis(500),
        || {
            let (endpoints, key) = (endpoints.clone(), key.clone());
            async move { store(&endpoints, &key) }
        },
    )
    .await;
    eprintln!("etcd metadata: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_leaders_hand_over_against_etcd() {
    let etcd = EtcdCluster::single().await;
    let endpoints = etcd.endpoints();
    let key = unique_name("preferred");
    let handover = preferred_leader_handover(
        &fast_options("preferred"),
        Duration::from_millis(500),
        || {
            let (endpoints, key) = (endpoints.clone(), key.clone());
            async move { store(&endpoints, &key) }
        },
    )
    .await;
    eprintln!("etcd preferred-leader handover: {handover:?}");
}
