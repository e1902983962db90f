//! What the store's operations cost in requests, counted on a client the caller built.

use leader_election::ElectionBuilder;
use leader_election::LeaseStore;
use leader_election::store::{AcquireOutcome, LeaseRequest, RenewOutcome};
use leader_election_blob::BlobLeaderElection;
use leader_election_blob::azure::azure_core;
use leader_election_test_support::unique_container;

use leader_election_test_support::acquire;

mod common;
use common::{Azurite, AzuriteExt, TTL};

/// Counts the requests sent through a client.
#[derive(Debug, Default)]
struct Counter(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl azure_core::http::policies::Policy for Counter {
    #[allow(elided_lifetimes_in_paths)]
    async fn send(
        &self,
        ctx: &azure_core::http::Context,
        request: &mut azure_core::http::Request,
        next: &[std::sync::Arc<dyn azure_core::http::policies::Policy>],
    ) -> azure_core::http::policies::PolicyResult {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        next[0].send(ctx, request, &next[1..]).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_cost_few_requests_with_a_caller_built_client() {
    let azurite = Azurite::start().await;
    let counter = std::sync::Arc::new(Counter::default());
    let client = azurite.sas_client(&unique_container("cost"), counter.clone());
    let store = BlobLeaderElection::builder()
        .container_client(client)
        .build_store()
        .unwrap();
    let count = || counter.0.swap(0, std::sync::atomic::Ordering::SeqCst);
    let a = LeaseRequest::new("a", TTL);
    let b = LeaseRequest::new("b", TTL);
    // First acquisition ever: read, acquire (404), create container and blob, acquire, write.
    let lease = acquire(&store, &a).await;
    let first = count();
    assert!(first <= 7, "{first} requests");
    let lease_b = {
        assert!(store.release(&a, &lease).await.unwrap());
        count();
        let lease = acquire(&store, &b).await;
        let cost = count();
        assert!(cost <= 3, "acquiring a free lease took {cost} requests");
        lease
    };
    assert!(matches!(
        store.try_acquire(&a).await.unwrap(),
        AcquireOutcome::Held { .. }
    ));
    assert_eq!(count(), 1, "a follower's attempt costs one request");
    assert_eq!(
        store.renew(&b, &lease_b).await.unwrap(),
        RenewOutcome::Renewed
    );
    assert_eq!(count(), 1, "a renewal costs one request");
    acquire(&store, &b).await;
    assert!(count() <= 2, "re-acquiring by the owner");
}
