//! The core's conformance suite against a real redis-server.

mod support;

use std::time::Duration;

use leader_election::testing::{
    ConformanceOptions, run_conformance, tokens_increase_across_rebuilt_stores,
};
use support::{RedisServer, prime, primed_store, store, unique_key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_against_redis() {
    let server = RedisServer::start().await;
    let url = server.url();
    run_conformance(
        ConformanceOptions::new(Duration::from_secs(1), Duration::from_secs(1)),
        || {
            let url = url.clone();
            async move { primed_store(&url, &unique_key("conformance")).await }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_tokens_increase_across_rebuilt_stores() {
    let server = RedisServer::start().await;
    let url = server.url();
    let key = unique_key("rebuilt");
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
