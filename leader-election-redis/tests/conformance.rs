//! The core's conformance suite against a real redis-server.

use std::time::Duration;

use leader_election::testing::{
    ConformanceOptions, election_controls, leader_metadata, run_conformance,
    tokens_increase_across_rebuilt_stores,
};
use leader_election_test_support::redis::{self as support, prime, primed_store, store};
use leader_election_test_support::unique_name;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_against_redis() {
    let server = support::server().await;
    let url = server.url();
    run_conformance(
        ConformanceOptions::new(Duration::from_secs(1), Duration::from_secs(1)),
        || {
            let url = url.clone();
            async move { primed_store(&url, &unique_name("conformance")).await }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_tokens_increase_across_rebuilt_stores() {
    let server = support::server().await;
    let url = server.url();
    let key = unique_name("rebuilt");
    prime(&url, &key).await;
    tokens_increase_across_rebuilt_stores(
        &ConformanceOptions::new(Duration::from_secs(1), Duration::from_secs(1)),
        || {
            let (url, key) = (url.clone(), key.clone());
            async move { store(&url, &key).await }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_controls_work_against_redis() {
    let server = support::server().await;
    let url = server.url();
    let key = unique_name("controls");
    prime(&url, &key).await;
    let report = election_controls(
        &support::fast_options("controls"),
        Duration::from_millis(500),
        || {
            let (url, key) = (url.clone(), key.clone());
            async move { store(&url, &key).await }
        },
    )
    .await;
    eprintln!("redis controls: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_metadata_works_against_redis() {
    let server = support::server().await;
    let url = server.url();
    let key = unique_name("metadata");
    prime(&url, &key).await;
    let report = leader_metadata(
        &support::fast_options("metadata"),
        Duration::from_millis(500),
        || {
            let (url, key) = (url.clone(), key.clone());
            async move { store(&url, &key).await }
        },
    )
    .await;
    eprintln!("redis metadata: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_leaders_hand_over_against_redis() {
    let server = support::server().await;
    let url = server.url();
    let key = unique_name("preferred");
    prime(&url, &key).await;
    let handover = leader_election::testing::preferred_leader_handover(
        &support::fast_options("preferred"),
        Duration::from_millis(500),
        || {
            let (url, key) = (url.clone(), key.clone());
            async move { store(&url, &key).await }
        },
    )
    .await;
    eprintln!("redis preferred-leader handover: {handover:?}");
}
