//! What the S3 backend relies on from the service, against a real S3 emulator (moto): atomic
//! conditional writes, a new ETag for every write, `connect`'s proof that conditions are
//! enforced (leaving no probe object), and a missing bucket.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use leader_election::ElectionBuilder;
use leader_election::LeaseStore;
use leader_election::store::{AcquireOutcome, LeaseRequest, RenewOutcome};
use leader_election_s3::aws::aws_sdk_s3;
use leader_election_s3::aws::aws_sdk_s3::primitives::ByteStream;
use leader_election_test_support::unique_name;

use leader_election_test_support::{acquire, acquired};

mod common;
use common::{BUCKET, OnS3, emulator};
use leader_election_aws::testing::Moto;

/// The ETag of `key`, or `None` when it is missing.
async fn etag(client: &aws_sdk_s3::Client, key: &str) -> Option<String> {
    client
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .ok()
        .and_then(|head| head.e_tag().map(str::to_owned))
}

/// The HTTP status of a failed request, or 200.
fn status<E, T>(
    result: &Result<T, aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
) -> u16 {
    match result {
        Ok(_) => 200,
        Err(err) => err.raw_response().map_or(0, |r| r.status().as_u16()),
    }
}

/// A store that has written the bucket once (so that raw SDK calls find it).
async fn bucket_ready(emulator: Moto<'_, OnS3>) -> aws_sdk_s3::Client {
    let store = emulator.store(&unique_name("bucket"));
    let request = LeaseRequest::new("setup", Duration::from_secs(1));
    // Another test of this binary may create the bucket at the same moment: a store that
    // found it missing withholds the lease for the wait it names (a lease), once.
    let mut attempts = 0;
    let lease = loop {
        match store.try_acquire(&request).await.expect("acquire") {
            AcquireOutcome::Withheld { wait, .. } if attempts < 3 => {
                attempts += 1;
                tokio::time::sleep(wait).await;
            }
            outcome => break acquired(outcome),
        }
    };
    assert!(store.release(&request, &lease).await.expect("release"));
    emulator.operator().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_enforces_conditional_writes_atomically() {
    let client = bucket_ready(emulator().await).await;
    let key = unique_name("conditions");
    let put = |body: &'static str| {
        client
            .put_object()
            .bucket(BUCKET)
            .key(&key)
            .body(ByteStream::from_static(body.as_bytes()))
    };
    let first = put("one").if_none_match("*").send().await.expect("create");
    let first = first.e_tag().unwrap().to_owned();
    assert_eq!(
        status(&put("two").if_none_match("*").send().await),
        412,
        "If-None-Match: * on an existing key"
    );
    let second = put("two")
        .if_match(&first)
        .send()
        .await
        .expect("If-Match on the current ETag");
    let second = second.e_tag().unwrap().to_owned();
    assert_eq!(
        status(&put("three").if_match(&first).send().await),
        412,
        "a stale If-Match"
    );
    // The same bytes again keep the ETag (the MD5 of the body): why every write of the backend
    // carries a nonce.
    let same = put("two")
        .if_match(&second)
        .send()
        .await
        .expect("same body");
    assert_eq!(same.e_tag(), Some(second.as_str()));

    // Racing conditional writes on one key: exactly one wins each round.
    let client = Arc::new(client.clone());
    for round in 0..15 {
        let key = format!("{key}-race{round}");
        let wins = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (client, key, wins) = (Arc::clone(&client), key.clone(), Arc::clone(&wins));
            tasks.push(tokio::spawn(async move {
                let created = client
                    .put_object()
                    .bucket(BUCKET)
                    .key(&key)
                    .body(ByteStream::from(format!("create {i}").into_bytes()))
                    .if_none_match("*")
                    .send()
                    .await;
                if created.is_ok() {
                    wins.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        for task in tasks.drain(..) {
            task.await.unwrap();
        }
        assert_eq!(
            wins.load(Ordering::SeqCst),
            1,
            "round {round}: If-None-Match winners"
        );
        let current = etag(&client, &key).await.expect("created");
        let wins = Arc::new(AtomicUsize::new(0));
        for i in 0..8 {
            let (client, key, wins, current) = (
                Arc::clone(&client),
                key.clone(),
                Arc::clone(&wins),
                current.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let updated = client
                    .put_object()
                    .bucket(BUCKET)
                    .key(&key)
                    .body(ByteStream::from(format!("update {i}").into_bytes()))
                    .if_match(current)
                    .send()
                    .await;
                if updated.is_ok() {
                    wins.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            wins.load(Ordering::SeqCst),
            1,
            "round {round}: If-Match winners"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_changes_the_etag_so_renewals_are_seen() {
    let emulator = emulator().await;
    let client = emulator.operator().await;
    let key = unique_name("etag");
    let store = emulator.store(&key);
    let request = LeaseRequest::new("a", Duration::from_secs(2)).with_metadata(Some(b"m".to_vec()));
    let lease = acquire(&store, &request).await;
    let mut seen = vec![etag(&client, &key).await.expect("written")];
    // Renewals carry the same holder, token and metadata: only the nonce differs.
    for _ in 0..3 {
        assert_eq!(
            store.renew(&request, &lease).await.unwrap(),
            RenewOutcome::Renewed
        );
        let current = etag(&client, &key).await.expect("written");
        assert!(
            !seen.contains(&current),
            "a renewal kept an earlier ETag {current}"
        );
        seen.push(current);
    }
    // The owner acquiring again rewrites too.
    assert_eq!(acquire(&store, &request).await.token, lease.token);
    let current = etag(&client, &key).await.expect("written");
    assert!(!seen.contains(&current));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_proves_the_emulator_enforces_conditions_and_leaves_no_probe() {
    let emulator = emulator().await;
    let client = bucket_ready(emulator).await;
    let key = unique_name("probe");
    let store = emulator.store(&key);
    store
        .connect()
        .await
        .expect("moto enforces conditional writes");
    let before = store.request_counts();
    // Proven once per store: connecting again costs nothing.
    store.connect().await.unwrap();
    assert_eq!(store.request_counts(), before);
    let listed = client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(&key)
        .send()
        .await
        .expect("list");
    assert_eq!(listed.key_count(), Some(0), "{:?}", listed.contents());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_an_error_unless_it_may_be_created() {
    let emulator = emulator().await;
    let store = emulator
        .builder(&unique_name("nobucket"), "a")
        .bucket(unique_name("absent"))
        .create_bucket_if_not_exists(false)
        .build_store()
        .unwrap();
    let request = LeaseRequest::new("a", Duration::from_secs(2));
    let err = loop {
        match store.try_acquire(&request).await {
            Ok(AcquireOutcome::Withheld { wait, .. }) => tokio::time::sleep(wait).await,
            Ok(other) => panic!("acquired without a bucket: {other:?}"),
            Err(err) => break err,
        }
    };
    assert!(err.to_string().contains("does not exist"), "{err}");
}
