//! What the store keeps on the lease blob, read back against a real Azurite: the fencing
//! token and the holder's identity (durable across stores), and the leader's metadata (base64
//! in the blob's metadata, written with the holder).

use leader_election::LeaseStore;
use leader_election::store::{AcquireOutcome, LeaseRequest, RenewOutcome};
use leader_election_test_support::unique_container;

use leader_election_test_support::acquire;

mod common;
use common::{Azurite, AzuriteExt, TTL, acquire_fresh, break_lease_now};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_durable_across_stores_and_identity_is_recorded() {
    let azurite = Azurite::start().await;
    let container = unique_container("durable");
    let first = azurite.store(&container);
    let a = LeaseRequest::new("node-ä 1", TTL);
    let lease = acquire_fresh(&first, &a).await;
    let leader = first.current_leader().await.unwrap().expect("a leader");
    assert_eq!(leader.instance_id, "node-ä 1");
    assert_eq!(leader.token, Some(lease.token));
    assert!(first.release(&a, &lease).await.unwrap());
    drop(first);

    // A store that has seen nothing (a restart of everything) continues from the blob.
    let second = azurite.store(&container);
    let b = LeaseRequest::new("node-2", TTL);
    let next = acquire(&second, &b).await;
    // Above the stored token (+ 1 within the same second of the service's clock, its time in
    // µs after that).
    assert!(
        next.token > lease.token,
        "{} after {}",
        next.token,
        lease.token
    );
    // Held: the follower learns who leads.
    let third = azurite.store(&container);
    match third
        .try_acquire(&LeaseRequest::new("node-3", TTL))
        .await
        .unwrap()
    {
        AcquireOutcome::Held { leader, expires_in } => {
            let leader = leader.expect("leader reported");
            assert_eq!(leader.instance_id, "node-2");
            assert_eq!(leader.token, Some(next.token));
            assert_eq!(expires_in, None);
        }
        other => panic!("expected Held, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_metadata_is_a_base64_blob_metadata_value_written_with_the_holder() {
    let azurite = Azurite::start().await;
    let container = unique_container("metadatalayout");
    let store = azurite.store(&container);
    let request = LeaseRequest::new("a", TTL).with_metadata(Some(vec![0, 1, 2, 255]));
    let lease = acquire_fresh(&store, &request).await;
    let stored = blob_metadata(&store).await;
    assert_eq!(
        stored.get("leader_metadata").map(String::as_str),
        Some("AAEC/w==")
    );
    assert_eq!(
        stored.get("leader_instance_id").map(String::as_str),
        Some("a")
    );
    // A renewal with the same metadata writes nothing; with other metadata, writes it with the
    // holder's instance id and token.
    assert_eq!(
        store.renew(&request, &lease).await.unwrap(),
        RenewOutcome::Renewed
    );
    let changed = request.clone().with_metadata(Some(b"addr".to_vec()));
    assert_eq!(
        store.renew(&changed, &lease).await.unwrap(),
        RenewOutcome::Renewed
    );
    let stored = blob_metadata(&store).await;
    assert_eq!(
        stored.get("leader_metadata").map(String::as_str),
        Some("YWRkcg==")
    );
    assert_eq!(stored.get("leader_token"), Some(&lease.token.to_string()));
    // Over the 4 KiB limit: refused before any request.
    let too_big =
        request.with_metadata(Some(vec![b'x'; leader_election_blob::MAX_METADATA_LEN + 1]));
    assert!(matches!(
        store.renew(&too_big, &lease).await,
        Err(leader_election::Error::MetadataTooLarge { limit: 4096, .. })
    ));
    // A broken lease is lost for a renewal that would write new metadata too.
    break_lease_now(store.blob_client()).await;
    let other = changed.with_metadata(Some(b"other".to_vec()));
    assert_eq!(
        store.renew(&other, &lease).await.unwrap(),
        RenewOutcome::Lost
    );
}

/// The lease blob's metadata, as an operator reads it.
async fn blob_metadata(
    store: &leader_election_blob::BlobLeaseStore,
) -> std::collections::HashMap<String, String> {
    use leader_election_blob::azure::azure_storage_blob::models::BlobClientGetPropertiesResultHeaders;
    let properties = store.blob_client().get_properties(None).await.unwrap();
    properties.metadata().unwrap()
}
