//! Reaching the storage account against a real Azurite: SAS URLs and SAS connection strings,
//! a missing container, an unreachable service (fast, and no secret in the error).

use std::time::Duration;

use leader_election::ElectionBuilder;
use leader_election::LeaseStore;
use leader_election::store::{LeaseRequest, RenewOutcome};
use leader_election_blob::BlobLeaderElection;
use leader_election_test_support::azurite as support;
use leader_election_test_support::unique_container;
use tokio::time::Instant;

mod common;
use common::{Azurite, AzuriteExt, TTL, account_sas, acquire_fresh};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sas_url_and_sas_connection_strings_work() {
    let azurite = Azurite::start().await;
    let sas = account_sas();
    // A trailing slash on the service URL must not break Azurite's path-style URLs.
    let by_url = BlobLeaderElection::builder()
        .sas_url(format!("{}/?{sas}", azurite.blob_endpoint()))
        .container_name(unique_container("sas"))
        .build_store()
        .unwrap();
    assert!(!format!("{by_url:?}").contains("sig="));
    let a = LeaseRequest::new("a", TTL);
    let lease = acquire_fresh(&by_url, &a).await;
    assert_eq!(
        by_url.renew(&a, &lease).await.unwrap(),
        RenewOutcome::Renewed
    );
    assert!(by_url.release(&a, &lease).await.unwrap());

    let by_string = BlobLeaderElection::builder()
        .connection_string(format!(
            "BlobEndpoint={}/;SharedAccessSignature={sas}",
            azurite.blob_endpoint()
        ))
        .container_name(unique_container("sas"))
        .build_store()
        .unwrap();
    acquire_fresh(&by_string, &a).await;

    // A wrong signature is refused, and the error does not show it.
    let forged = sas.rsplit_once("sig=").unwrap().0.to_owned() + "sig=Zm9yZ2VkLXNpZw%3D%3D";
    let bad = BlobLeaderElection::builder()
        .sas_url(format!("{}?{forged}", azurite.blob_endpoint()))
        .container_name(unique_container("sas"))
        .build_store()
        .unwrap();
    let err = bad.try_acquire(&a).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    assert!(!format!("{err:?}").contains("Zm9yZ2Vk"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_container_is_an_error_when_creation_is_off() {
    let azurite = Azurite::start().await;
    let store = azurite
        .builder(&unique_container("nocreate"), "a")
        .create_container_if_not_exists(false)
        .build_store()
        .unwrap();
    let err = store
        .try_acquire(&LeaseRequest::new("a", TTL))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_service_fails_fast_without_leaking_secrets() {
    let azurite = Azurite::start().await;
    let port = azurite.port();
    drop(azurite);
    let store = BlobLeaderElection::builder()
        .sas_url(format!(
            "http://127.0.0.1:{port}/{}?sv=1&sig=TOPSECRET",
            support::ACCOUNT
        ))
        .container_name("unreachable")
        .build_store()
        .unwrap();
    let started = Instant::now();
    let err = store
        .try_acquire(&LeaseRequest::new("a", TTL))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(err.is_retryable(), "{err}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("TOPSECRET"), "{shown}");
}
