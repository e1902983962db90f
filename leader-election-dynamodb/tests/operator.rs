//! What an operator does to a running election with DynamoDB's own tools, against moto's
//! DynamoDB: delete the lease item, overwrite it with garbage, overwrite it with a copy of an
//! old record (the shared checks of `leader_election_test_support::conditional`, the tokens'
//! survival of deletions included), and the election record's own item.

use std::time::Duration;

use leader_election::LeaseStore;
use leader_election::store::{AcquireOutcome, LeaseRequest};
use leader_election_dynamodb::MAX_RECORD_LEN;
use leader_election_dynamodb::aws::aws_sdk_dynamodb::types::AttributeValue;
use leader_election_test_support::unique_name;

use leader_election_test_support::acquire;

mod common;
use common::{Item, delete, emulator, item, operator, overwrite, s};

leader_election_test_support::operator_checks!(operator().await);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_election_record_is_its_own_item_and_outlives_deletion_and_release() {
    // The election record lives in `<key>.record`, beside the lease item: a release, an
    // operator deleting the lease item and the placeholder written after it leave it alone.
    let emulator = emulator().await;
    let key = unique_name("op-record");
    let client = emulator.operator().await;
    let store = emulator.store(&key);
    store.connect().await.expect("connect");
    assert_eq!(store.record_key(), format!("{key}.record"));
    let data = b"ran: 2024-01-01T00:00".to_vec();
    let v1 = store
        .write_record(None, &data)
        .await
        .expect("write")
        .expect("a new election has no record");
    // An operator finds it at the documented name: its bytes as written, `v` the version.
    let found = item(&client, store.record_key())
        .await
        .expect("the record item");
    assert_eq!(found.get("v"), Some(&s(v1.as_str())));
    assert_eq!(
        found.get("data"),
        Some(&AttributeValue::B(data.clone().into()))
    );

    let a = LeaseRequest::new("a", Duration::from_secs(4));
    let lease = acquire(&store, &a).await;
    assert!(store.release(&a, &lease).await.unwrap());
    let b = LeaseRequest::new("b", Duration::from_secs(4));
    acquire(&store, &b).await;
    delete(&client, &key).await;
    // The lease logic sees the deletion (a placeholder, withheld for a lease) ...
    assert!(matches!(
        store.try_acquire(&a).await.unwrap(),
        AcquireOutcome::Withheld { .. }
    ));
    // ... and the record, read by this store and by a brand-new one, is untouched.
    for reader in [&store, &emulator.store(&key)] {
        let record = reader.read_record().await.unwrap().expect("the record");
        assert_eq!((&record.version, &record.data), (&v1, &data));
    }

    // Every write has a version of its own, the same bytes included; a stale one is refused.
    let v2 = store
        .write_record(Some(&v1), &data)
        .await
        .unwrap()
        .expect("written at the current version");
    assert_ne!(v2, v1);
    assert_eq!(store.write_record(Some(&v1), b"stale").await.unwrap(), None);
    // An empty record is kept too (DynamoDB refuses empty binary values: no `data` then).
    let v3 = store
        .write_record(Some(&v2), b"")
        .await
        .unwrap()
        .expect("written");
    let record = store.read_record().await.unwrap().expect("the record");
    assert_eq!((&record.version, record.data.len()), (&v3, 0));

    // An operator deleting the record item: no record, a write expecting the old version is
    // refused (nothing written), and a write expecting none creates it again.
    delete(&client, store.record_key()).await;
    assert_eq!(store.read_record().await.unwrap(), None);
    assert_eq!(store.write_record(Some(&v3), b"late").await.unwrap(), None);
    assert_eq!(store.read_record().await.unwrap(), None);
    assert!(store.write_record(None, b"anew").await.unwrap().is_some());
    // An operator writing something else there: an error naming what is wrong, no panic.
    overwrite(
        &client,
        store.record_key(),
        Item::from([("v".to_owned(), s("x")), ("extra".to_owned(), s("y"))]),
    )
    .await;
    let err = store.read_record().await.unwrap_err();
    assert!(err.to_string().contains("`extra`"), "{err}");
    // Oversized: refused before anything is sent.
    let puts = store.request_counts().put_item;
    let err = store
        .write_record(None, &vec![0; MAX_RECORD_LEN + 1])
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(store.request_counts().put_item, puts);
}
