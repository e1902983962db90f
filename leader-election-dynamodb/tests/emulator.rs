//! What the DynamoDB backend relies on from the service, against moto's DynamoDB: condition
//! expressions enforced atomically under racing writers, a new version for every write,
//! `connect`'s proof that conditions are enforced (leaving no probe item), and a missing table.
//! That tokens are minted from the service's `Date` is the shared operator check's
//! (`tokens_are_minted_from_the_service_clock_and_survive_deletion`, in `operator.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use leader_election::LeaseStore;
use leader_election::store::{AcquireOutcome, LeaseRequest, RenewOutcome};
use leader_election::{ElectionBuilder, Error};
use leader_election_dynamodb::aws::aws_sdk_dynamodb;
use leader_election_dynamodb::aws::aws_sdk_dynamodb::error::ProvideErrorMetadata;
use leader_election_test_support::unique_name;

use leader_election_test_support::{acquire, acquired};

mod common;
use common::{TABLE, emulator, s, version};

/// The error code of a failed request, or `None` when it succeeded.
fn code<T, E: ProvideErrorMetadata>(
    result: &Result<T, aws_sdk_dynamodb::error::SdkError<E>>,
) -> Option<String> {
    match result {
        Ok(_) => None,
        Err(err) => Some(
            err.as_service_error()
                .and_then(|e| e.code())
                .unwrap_or("(no code)")
                .to_owned(),
        ),
    }
}

const FAILED: &str = "ConditionalCheckFailedException";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_enforces_conditional_writes_atomically() {
    let client = emulator().await.operator().await;
    let key = unique_name("conditions");
    let put = |v: &str| {
        client
            .put_item()
            .table_name(TABLE)
            .item("pk", s(&key))
            .item("v", s(v))
    };
    let create = |put: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder| {
        put.condition_expression("attribute_not_exists(pk)")
    };
    let on = |put: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
              v: &str| {
        put.condition_expression("#v = :v")
            .expression_attribute_names("#v", "v")
            .expression_attribute_values(":v", s(v))
    };
    create(put("one")).send().await.expect("create");
    assert_eq!(
        code(&create(put("two")).send().await).as_deref(),
        Some(FAILED),
        "attribute_not_exists(pk) on an existing item"
    );
    on(put("two"), "one")
        .send()
        .await
        .expect("a condition on the current version");
    assert_eq!(
        code(&on(put("three"), "one").send().await).as_deref(),
        Some(FAILED),
        "a condition on a stale version"
    );
    // A condition on a missing item's attribute fails too.
    assert_eq!(
        code(&on(put("x"), "one").send().await).as_deref(),
        Some(FAILED)
    );

    // Racing conditional writes from many clients on one item: exactly one wins each round.
    let emulator = emulator().await;
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(Arc::new(emulator.operator().await));
    }
    for round in 0..15 {
        let key = format!("{key}-race{round}");
        let wins = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for (i, client) in clients.iter().enumerate() {
            let (client, key, wins) = (Arc::clone(client), key.clone(), Arc::clone(&wins));
            tasks.push(tokio::spawn(async move {
                let created = client
                    .put_item()
                    .table_name(TABLE)
                    .item("pk", s(&key))
                    .item("v", s(&format!("create {i}")))
                    .condition_expression("attribute_not_exists(pk)")
                    .send()
                    .await;
                match code(&created).as_deref() {
                    None => {
                        wins.fetch_add(1, Ordering::SeqCst);
                    }
                    Some(FAILED) => {}
                    Some(other) => panic!("an unexpected error {other}"),
                }
            }));
        }
        for task in tasks.drain(..) {
            task.await.unwrap();
        }
        assert_eq!(
            wins.load(Ordering::SeqCst),
            1,
            "round {round}: attribute_not_exists winners"
        );
        let current = version(&client, &key).await.expect("created");
        let wins = Arc::new(AtomicUsize::new(0));
        for (i, client) in clients.iter().enumerate() {
            let (client, key, wins, current) = (
                Arc::clone(client),
                key.clone(),
                Arc::clone(&wins),
                current.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let updated = client
                    .put_item()
                    .table_name(TABLE)
                    .item("pk", s(&key))
                    .item("v", s(&format!("update {i}")))
                    .condition_expression("#v = :v")
                    .expression_attribute_names("#v", "v")
                    .expression_attribute_values(":v", s(&current))
                    .send()
                    .await;
                match code(&updated).as_deref() {
                    None => {
                        wins.fetch_add(1, Ordering::SeqCst);
                    }
                    Some(FAILED) => {}
                    Some(other) => panic!("an unexpected error {other}"),
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            wins.load(Ordering::SeqCst),
            1,
            "round {round}: winners on one version"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_changes_the_version_so_renewals_are_seen() {
    let emulator = emulator().await;
    let client = emulator.operator().await;
    let key = unique_name("version");
    let store = emulator.store(&key);
    let request = LeaseRequest::new("a", Duration::from_secs(2)).with_metadata(Some(b"m".to_vec()));
    let lease = acquire(&store, &request).await;
    let mut seen = vec![version(&client, &key).await.expect("written")];
    // Renewals carry the same holder, token and metadata: only the version differs.
    for _ in 0..3 {
        assert_eq!(
            store.renew(&request, &lease).await.unwrap(),
            RenewOutcome::Renewed
        );
        let current = version(&client, &key).await.expect("written");
        assert!(
            !seen.contains(&current),
            "a renewal kept an earlier version {current}"
        );
        seen.push(current);
    }
    // The owner acquiring again rewrites too.
    assert_eq!(acquire(&store, &request).await.token, lease.token);
    let current = version(&client, &key).await.expect("written");
    assert!(!seen.contains(&current));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_proves_the_emulator_enforces_conditions_and_leaves_no_probe() {
    let emulator = emulator().await;
    let client = emulator.operator().await;
    let key = unique_name("probe");
    let store = emulator.store(&key);
    store
        .connect()
        .await
        .expect("moto enforces condition expressions");
    let before = store.request_counts();
    assert_eq!(before.put_item, 4, "{before:?}");
    // Proven once per store: connecting again costs nothing.
    store.connect().await.unwrap();
    assert_eq!(store.request_counts(), before);
    let left = client
        .scan()
        .table_name(TABLE)
        .filter_expression("begins_with(pk, :p)")
        .expression_attribute_values(":p", s(&key))
        .consistent_read(true)
        .send()
        .await
        .expect("scan");
    assert_eq!(left.count(), 0, "{:?}", left.items());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_an_error_unless_it_may_be_created() {
    let emulator = emulator().await;
    let absent = unique_name("absent");
    let store = emulator
        .builder(&unique_name("notable"), "a")
        .table(&absent)
        .create_table_if_not_exists(false)
        .build_store()
        .unwrap();
    let request = LeaseRequest::new("a", Duration::from_secs(2));
    let err = store.try_acquire(&request).await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    let err = store.connect().await.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");

    // Created by the first request that finds it missing when allowed.
    let key = unique_name("created");
    let store = emulator
        .builder(&key, "a")
        .table(&absent)
        .build_store()
        .unwrap();
    store.connect().await.expect("the table created");
    let lease = loop {
        match store.try_acquire(&request).await.unwrap() {
            AcquireOutcome::Withheld { wait, .. } => tokio::time::sleep(wait).await,
            outcome => break acquired(outcome),
        }
    };
    assert!(store.release(&request, &lease).await.unwrap());
    let table = emulator
        .operator()
        .await
        .describe_table()
        .table_name(&absent)
        .send()
        .await
        .expect("the table exists")
        .table
        .unwrap();
    assert_eq!(
        table.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
    );
}
