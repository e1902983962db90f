//! What an operator does to a running election with S3's own tools, against a real S3
//! emulator: delete the lease object, overwrite it with garbage, overwrite it with a copy of
//! an old record (the shared checks of `leader_election_test_support::conditional`, the
//! tokens' survival of deletions included), and the election record's own object.

use leader_election::LeaseStore;

use leader_election_test_support::conditional;

mod common;
use common::{BUCKET, emulator, operator};

leader_election_test_support::operator_checks!(operator().await);

/// What S3 adds to the shared check of the election record
/// ([`the_election_record_outlives_the_lease_object`](leader_election_test_support::conditional::the_election_record_outlives_the_lease_object)):
/// an operator finds it at the documented name with its ETag as the version, the same bytes
/// written again keep the ETag, and an oversized record is refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_election_record_is_an_object_with_its_etag_as_the_version() {
    let operator = operator().await;
    let (key, store, data, v1) = conditional::a_written_record(&operator).await;
    let client = emulator().await.operator().await;
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
    // The same bytes written again keep the ETag (the MD5 of the body).
    let same = store.write_record(Some(&v1), &data).await.unwrap();
    assert_eq!(same.as_ref(), Some(&v1));
    // Oversized: refused before anything is sent.
    let puts = store.request_counts().put;
    let err = store
        .write_record(None, &vec![0; leader_election_s3::MAX_RECORD_LEN + 1])
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(store.request_counts().put, puts);
}
