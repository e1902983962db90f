//! What an operator does to a running election with S3's own tools, against a real S3
//! emulator: delete the lease object, overwrite it with garbage, overwrite it with a copy of
//! an old record (the shared checks of `leader_election_test_support::conditional`, the
//! tokens' survival of deletions included), and the election record's own object.

use std::time::Duration;

use leader_election::LeaseStore;
use leader_election::store::{AcquireOutcome, LeaseRequest};
use leader_election_test_support::unique_name;

use leader_election_test_support::acquire;

mod common;
use common::{BUCKET, emulator, operator};

leader_election_test_support::operator_checks!(operator().await);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_election_record_is_its_own_object_and_outlives_deletion_and_release() {
    // The election record lives in `<key>.record`, beside the lease object: a release, an
    // operator deleting the lease object and the placeholder written after it leave it alone.
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
    // An operator finds it at the documented name: its bytes as written, its ETag the version.
    let object = client
        .get_object()
        .bucket(BUCKET)
        .key(format!("{key}.record"))
        .send()
        .await
        .expect("the record object");
    assert_eq!(object.e_tag(), Some(v1.as_str()));
    assert_eq!(
        object.body.collect().await.unwrap().into_bytes().to_vec(),
        data
    );

    let a = LeaseRequest::new("a", Duration::from_secs(4));
    let lease = acquire(&store, &a).await;
    assert!(store.release(&a, &lease).await.unwrap());
    let b = LeaseRequest::new("b", Duration::from_secs(4));
    acquire(&store, &b).await;
    client
        .delete_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .expect("delete the lease object");
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

    // The same bytes written again keep the ETag (the MD5 of the body); other bytes move it.
    let same = store.write_record(Some(&v1), &data).await.unwrap();
    assert_eq!(same.as_ref(), Some(&v1));
    let v2 = store
        .write_record(Some(&v1), b"ran: 2024-01-02T00:00")
        .await
        .unwrap()
        .expect("written at the current version");
    assert_ne!(v2, v1);
    assert_eq!(store.write_record(Some(&v1), b"stale").await.unwrap(), None);

    // An operator deleting the record object: no record, a write expecting the old version is
    // refused (nothing written), and a write expecting none creates it again.
    client
        .delete_object()
        .bucket(BUCKET)
        .key(store.record_key())
        .send()
        .await
        .expect("delete the record object");
    assert_eq!(store.read_record().await.unwrap(), None);
    assert_eq!(store.write_record(Some(&v2), b"late").await.unwrap(), None);
    assert_eq!(store.read_record().await.unwrap(), None);
    assert!(store.write_record(None, b"anew").await.unwrap().is_some());
    // Oversized: refused before anything is sent.
    let puts = store.request_counts().put;
    let err = store
        .write_record(None, &vec![0; leader_election_s3::MAX_RECORD_LEN + 1])
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(store.request_counts().put, puts);
}
