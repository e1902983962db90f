//! What an operator does to a running election with DynamoDB's own tools, against moto's
//! DynamoDB: delete the lease item, overwrite it with garbage, overwrite it with a copy of an
//! old record (the shared checks of `leader_election_test_support::conditional`, the tokens'
//! survival of deletions included), and the election record's own item.

use leader_election::LeaseStore;
use leader_election_dynamodb::MAX_RECORD_LEN;
use leader_election_dynamodb::aws::aws_sdk_dynamodb::types::AttributeValue;

use leader_election_test_support::conditional;

mod common;
use common::{Item, emulator, item, operator, overwrite, s};

leader_election_test_support::operator_checks!(operator().await);

/// What DynamoDB adds to the shared check of the election record
/// ([`the_election_record_outlives_the_lease_object`](leader_election_test_support::conditional::the_election_record_outlives_the_lease_object)):
/// an operator finds it as an item at the documented key with its bytes and version, every
/// write has a version of its own, an empty record is kept, an item of another shape is an
/// error naming what is wrong, and an oversized record is refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_election_record_is_an_item_with_a_version_of_its_own() {
    let operator = operator().await;
    let (key, store, data, v1) = conditional::a_written_record(&operator).await;
    assert_eq!(store.record_key(), format!("{key}.record"));
    let client = emulator().await.operator().await;
    let found = item(&client, store.record_key())
        .await
        .expect("the record item");
    assert_eq!(found.get("v"), Some(&s(v1.as_str())));
    assert_eq!(
        found.get("data"),
        Some(&AttributeValue::B(data.clone().into()))
    );
    // Every write has a version of its own, the same bytes included.
    let v2 = store
        .write_record(Some(&v1), &data)
        .await
        .unwrap()
        .expect("written at the current version");
    assert_ne!(v2, v1);
    // An empty record is kept too (DynamoDB refuses empty binary values: no `data` then).
    let v3 = store
        .write_record(Some(&v2), b"")
        .await
        .unwrap()
        .expect("written");
    let record = store.read_record().await.unwrap().expect("the record");
    assert_eq!((&record.version, record.data.len()), (&v3, 0));
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
