//! The safety holes closed by the "Close the safety holes" issue, each against a real Azurite:
//! fencing tokens that must keep increasing when the blob (and its counter) is lost, one time
//! budget per acquisition, definite failures that are not "unknown", and errors that never
//! echo a huge input whole.

use leader_election::ElectionBuilder;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use leader_election::store::{AcquireOutcome, LeaseRequest};
use leader_election::{FencingToken, LeaseStore};
use leader_election_blob::{BlobLeaderElection, BlobLeaseStore};
use leader_election_test_support::azurite as support;
use leader_election_test_support::{FaultProxy, unique_container};

use leader_election_test_support::{acquire, acquired};

mod common;
use common::{Azurite, AzuriteExt, TTL, break_lease_now};
use tokio::time::Instant;

/// What an operator does to get rid of an election's blob at once: break the lease with no
/// break period, then delete the blob.
async fn break_and_delete(azurite: &Azurite, container: &str) {
    let operator = azurite.operator(container);
    break_lease_now(&operator).await;
    operator.delete(None).await.expect("delete the blob");
}

/// Acquires with a store that has never seen this election (a brand-new process), waiting
/// out a lease withheld after an operator broke it.
async fn acquire_fresh(azurite: &Azurite, container: &str, who: &str) -> FencingToken {
    let store = azurite.store(container);
    let request = LeaseRequest::new(who, TTL);
    for _ in 0..3 {
        match store.try_acquire(&request).await.expect("acquire") {
            AcquireOutcome::Withheld { wait, .. } => tokio::time::sleep(wait).await,
            outcome => return acquired(outcome).token,
        }
    }
    panic!("still withheld after three waits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_after_the_blob_is_deleted_is_greater() {
    let azurite = Azurite::start().await;
    let container = unique_container("deleted-token");
    let first = acquire_fresh(&azurite, &container, "a").await;
    break_and_delete(&azurite, &container).await;
    let second = acquire_fresh(&azurite, &container, "b").await;
    assert!(
        second > first,
        "token {second} after the blob was deleted, not above {first}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_after_the_metadata_is_overwritten_with_garbage_is_greater() {
    let azurite = Azurite::start().await;
    let container = unique_container("garbage-token");
    let first = acquire_fresh(&azurite, &container, "a").await;
    let operator = azurite.operator(&container);
    break_lease_now(&operator).await;
    let garbage = HashMap::from([
        ("leader_token".to_owned(), "not-a-number".to_owned()),
        ("leader_instance_id".to_owned(), "%zz".to_owned()),
    ]);
    operator.set_metadata(&garbage, None).await.unwrap();
    let second = acquire_fresh(&azurite, &container, "b").await;
    assert!(
        second > first,
        "token {second} after the metadata was overwritten, not above {first}"
    );
    // And the counter is back: the next one continues from the blob.
    break_and_delete(&azurite, &container).await;
    let third = acquire_fresh(&azurite, &container, "c").await;
    assert!(third > second, "{third} after {second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_increase_across_quick_deletes() {
    let azurite = Azurite::start().await;
    let container = unique_container("quick-deletes");
    let mut last = None;
    // Each round is a brand-new process acquiring right after an operator deleted the blob,
    // several times within a second where Azurite is fast.
    for round in 0..4 {
        let token = acquire_fresh(&azurite, &container, &format!("p{round}")).await;
        if let Some(last) = last {
            assert!(token > last, "round {round}: token {token} after {last}");
        }
        last = Some(token);
        break_and_delete(&azurite, &container).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_minted_from_the_service_clock() {
    // Server time in µs, as the Redis and PostgreSQL backends do: a brand-new election's
    // first token is near the service's clock, not 1.
    let azurite = Azurite::start().await;
    let container = unique_container("clock-token");
    let token = acquire_fresh(&azurite, &container, "a").await.get();
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    // Azurite runs on this machine: its clock is ours, to the second.
    let diff = now_us.abs_diff(token);
    assert!(
        diff < 5_000_000,
        "token {token} is not the service time in µs (now {now_us})"
    );
}

/// Spoils the next Set Blob Metadata request (the token write): `forbid` breaks its SAS
/// signature (Azurite answers 403); `delete` has an operator break the lease and delete the
/// blob just before it is sent (the write, conditional on the blob's ETag, gets 412, and the
/// read that follows 404).
#[derive(Default)]
struct SpoilTokenWrite {
    forbid: AtomicBool,
    delete: std::sync::Mutex<Option<azure_storage_blob::BlobClient>>,
}

impl std::fmt::Debug for SpoilTokenWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpoilTokenWrite")
    }
}

#[async_trait::async_trait]
impl azure_core::http::policies::Policy for SpoilTokenWrite {
    #[allow(elided_lifetimes_in_paths)]
    async fn send(
        &self,
        ctx: &azure_core::http::Context,
        request: &mut azure_core::http::Request,
        next: &[Arc<dyn azure_core::http::policies::Policy>],
    ) -> azure_core::http::policies::PolicyResult {
        let query = request.url().query().unwrap_or_default().to_owned();
        if query.contains("comp=metadata") {
            if self.forbid.swap(false, Ordering::SeqCst) {
                let (kept, _) = query.split_once("sig=").expect("a SAS");
                let forged = format!("{kept}sig=Zm9yZ2VkLXNpZw%3D%3D");
                request.url_mut().set_query(Some(&forged));
            }
            let operator = self.delete.lock().unwrap().take();
            if let Some(operator) = operator {
                break_lease_now(&operator).await;
                operator.delete(None).await.expect("delete the blob");
            }
        }
        next[0].send(ctx, request, &next[1..]).await
    }
}

fn store_with(azurite: &Azurite, container: &str, policy: Arc<SpoilTokenWrite>) -> BlobLeaseStore {
    BlobLeaderElection::builder()
        .container_client(azurite.sas_client(container, policy))
        .blob_name("lock")
        .build_store()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_token_write_is_a_plain_error_not_unknown() {
    let azurite = Azurite::start().await;
    let container = unique_container("forbidden");
    let spoil = Arc::new(SpoilTokenWrite::default());
    let store = store_with(&azurite, &container, spoil.clone());
    let request = LeaseRequest::new("a", TTL);
    spoil.forbid.store(true, Ordering::SeqCst);
    let err = store.try_acquire(&request).await.unwrap_err();
    assert!(!err.is_outcome_unknown(), "403 reported as unknown: {err}");
    assert!(!err.is_retryable(), "403 reported as retryable: {err}");
    assert!(err.to_string().contains("403"), "{err}");
    assert!(!format!("{err:?}").contains("Zm9yZ2Vk"), "{err:?}");
    // The lease it took stays its own: asking again with the same lease id completes.
    acquire(&store, &request).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_deleted_before_the_token_write_is_a_plain_error_not_unknown() {
    let azurite = Azurite::start().await;
    let container = unique_container("missing");
    let spoil = Arc::new(SpoilTokenWrite::default());
    let store = store_with(&azurite, &container, spoil.clone());
    let request = LeaseRequest::new("a", TTL);
    *spoil.delete.lock().unwrap() = Some(azurite.operator(&container));
    let err = store.try_acquire(&request).await.unwrap_err();
    assert!(!err.is_outcome_unknown(), "404 reported as unknown: {err}");
    assert!(err.to_string().contains("404"), "{err}");
    acquire(&store, &request).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_account_key_is_a_plain_error() {
    let azurite = Azurite::start().await;
    let wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmc=";
    let store = BlobLeaderElection::builder()
        .connection_string(format!(
            "DefaultEndpointsProtocol=http;AccountName={};AccountKey={wrong};BlobEndpoint={};",
            support::ACCOUNT,
            azurite.blob_endpoint()
        ))
        .container_name(unique_container("wrong-key"))
        .build_store()
        .unwrap();
    let request = LeaseRequest::new("a", TTL);
    for _ in 0..2 {
        let err = store.try_acquire(&request).await.unwrap_err();
        assert!(!err.is_outcome_unknown(), "{err}");
        assert!(!err.is_retryable(), "{err}");
        assert!(err.to_string().contains("403"), "{err}");
        assert!(!format!("{err:?}").contains(wrong), "{err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_link_acquisition_stays_within_one_budget() {
    let azurite = Azurite::start().await;
    // Every request takes at least half a second: the first acquisition of an election (read,
    // create the container and the blob, acquire, write the token) cannot fit in 2 s.
    let proxy = FaultProxy::to_port(azurite.port()).await;
    proxy.set_latency(Duration::from_millis(250));
    let budget = Duration::from_secs(2);
    let store = azurite
        .builder_via(proxy.port(), &unique_container("slow"), "a")
        .operation_timeout(budget)
        .build_store()
        .unwrap();
    let request = LeaseRequest::new("a", TTL);
    let mut lease = None;
    for attempt in 0..10 {
        let began = Instant::now();
        let outcome = store.try_acquire(&request).await;
        let took = began.elapsed();
        println!("attempt {attempt}: {took:?} {outcome:?}");
        assert!(
            took <= budget + Duration::from_millis(200),
            "attempt {attempt} took {took:?}, beyond its budget of {budget:?}: {outcome:?}"
        );
        match outcome {
            Ok(AcquireOutcome::Acquired(acquired)) => {
                lease = Some(acquired);
                break;
            }
            Ok(other) => panic!("nobody else contends: {other:?}"),
            Err(err) => assert!(err.is_retryable(), "{err}"),
        }
    }
    let lease = lease.expect("acquired within ten attempts");
    // Once the election exists, one attempt (read, acquire, write) fits in the budget.
    assert!(store.release(&request, &lease).await.unwrap());
    let began = Instant::now();
    let again = store
        .try_acquire(&LeaseRequest::new("b", TTL))
        .await
        .unwrap();
    assert!(began.elapsed() <= budget, "{:?}", began.elapsed());
    assert!(acquired(again).token > lease.token);
}

#[test]
fn errors_never_echo_a_huge_input_whole() {
    let huge = "x".repeat(100_000);
    let dev = || BlobLeaderElection::builder().connection_string("UseDevelopmentStorage=true");
    let err = dev().container_name(&huge).build_store().unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.len() < 300,
        "{} bytes: {}",
        shown.len(),
        &shown[..300]
    );
    for connection in [
        format!("AccountName=a;{huge}="),
        format!("AccountName=a;{huge}=1"),
        format!("AccountName=a;{huge}"),
    ] {
        let err = BlobLeaderElection::builder()
            .connection_string(connection)
            .build_store()
            .unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.len() < 300,
            "{} bytes: {}",
            shown.len(),
            &shown[..300]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_acquires_before_sent_at_plus_ttl() {
    // A ttl that is not a whole number of seconds: Azure's lease must be rounded up, never
    // down, or a follower could take over before the holder's own deadline.
    let ttl = Duration::from_millis(15_400);
    let azurite = Azurite::start().await;
    let container = unique_container("no-early-takeover");
    let holder = azurite.store(&container);
    let follower = azurite.store(&container);
    let a = LeaseRequest::new("a", ttl);
    let b = LeaseRequest::new("b", ttl);
    let sent_at = Instant::now();
    let lease = acquire(&holder, &a).await;
    // The gap is the scenario: the renewal comes well after the acquisition, so that a takeover
    // bounded from the first sent_at would show. Throughout it, the follower is held off.
    let gap_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < gap_until {
        let outcome = follower.try_acquire(&b).await.unwrap();
        assert!(
            matches!(outcome, AcquireOutcome::Held { .. }),
            "{outcome:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A renewal moves the bound: no takeover before the renewal's sent_at + ttl.
    let renewed_at = Instant::now();
    assert_eq!(
        holder.renew(&a, &lease).await.unwrap(),
        leader_election::store::RenewOutcome::Renewed
    );
    assert!(renewed_at > sent_at);
    let limit = renewed_at + ttl + Duration::from_secs(5);
    loop {
        let outcome = follower.try_acquire(&b).await.unwrap();
        let replied = Instant::now();
        match outcome {
            AcquireOutcome::Acquired(next) => {
                assert!(
                    replied >= renewed_at + ttl,
                    "acquired {:?} before the renewal's sent_at + ttl",
                    renewed_at + ttl - replied
                );
                assert!(next.token > lease.token);
                break;
            }
            AcquireOutcome::Held { .. } => {}
            other => panic!("{other:?}"),
        }
        assert!(replied < limit, "the lease never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
