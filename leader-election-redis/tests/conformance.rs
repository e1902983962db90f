//! The core's conformance suite against a real redis-server.

mod support;

use std::time::Duration;

use leader_election::testing::{ConformanceOptions, run_conformance};
use support::{RedisServer, primed_store, unique_key};

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
