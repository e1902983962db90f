//! What an operator does to a running election with DynamoDB's own tools, against moto's
//! DynamoDB: delete the lease item, overwrite it with garbage, overwrite it with a copy of an
//! old record. Three contenders run each time (lease 4 s); the operator acts through a
//! client of its own. Each test asserts with the one safety checker (never two leaders, tokens
//! increasing), that no contender leads again within a lease of the action (the old leader may
//! still trust its term until then), and that leadership comes back within about a lease.

use std::time::Duration;

use leader_election::store::{AcquireOutcome, LeaseRequest};
use leader_election::testing::{Term, TermRecorder, token_regressions};
use leader_election::{LeaderElection, LeaseStore};
use leader_election_dynamodb::aws::aws_sdk_dynamodb;
use leader_election_dynamodb::aws::aws_sdk_dynamodb::types::AttributeValue;
use leader_election_dynamodb::{DynamoDbLeaseStore, MAX_RECORD_LEN};
use leader_election_test_support::{eventually, eventually_async, throughout, unique_name};
use tokio::time::Instant;

mod common;
use common::{DynamoEmulatorExt, Item, S3Emulator, delete, emulator, item, overwrite, s};

/// Beyond one lease after the action: a follower's poll (250 ms plus jitter), the `Date`
/// header's second and a slow request or two on a shared machine.
const SLACK: Duration = Duration::from_secs(4);

/// Three contenders of one election, every term recorded.
struct Contenders {
    elections: Vec<LeaderElection<DynamoDbLeaseStore>>,
    recorder: TermRecorder,
    lease: Duration,
}

impl Contenders {
    /// Starts three contenders and waits until one leads and the others have seen it lead.
    async fn start(emulator: &S3Emulator, key: &str) -> Self {
        let recorder = TermRecorder::new();
        let elections: Vec<_> = (0..3)
            .map(|i| emulator.election(key, &format!("c{i}")))
            .collect();
        recorder.start_all(&elections).await.expect("start");
        eventually(Duration::from_secs(10), "one leads, all see it", || {
            elections.iter().any(|e| e.is_leader())
                && elections
                    .iter()
                    .all(|e| e.is_leader() || e.state().leader.is_some())
        })
        .await;
        let lease = elections[0].options().lease_duration;
        Self {
            elections,
            recorder,
            lease,
        }
    }

    /// Waits for a term that began after `acted`; checks that it did not begin within a lease
    /// of it, and answers how long after `acted` it began.
    async fn leader_again_after(&self, acted: Instant, what: &str) -> Duration {
        eventually(self.lease * 2 + SLACK, what, || {
            self.recorder.terms().iter().any(|t| t.start > acted)
        })
        .await;
        let back = self
            .recorder
            .terms()
            .iter()
            .filter(|t| t.start > acted)
            .map(|t| t.start - acted)
            .min()
            .expect("a term after the action");
        assert!(
            back >= self.lease,
            "{what}: a new leader {back:?} after the action, within a lease"
        );
        back
    }

    async fn stop(self) {
        for election in &self.elections {
            election.stop().await.expect("stop");
        }
        self.recorder.assert_safe();
    }
}

async fn operator() -> aws_sdk_dynamodb::Client {
    emulator().await.operator().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_item_is_withheld_for_a_lease() {
    let key = unique_name("op-delete");
    let contenders = Contenders::start(emulator().await, &key).await;
    let first = contenders.recorder.current().expect("a term").token;
    let operator = operator().await;
    // From before the request: a follower may see its effect before the reply arrives here.
    let acted = Instant::now();
    delete(&operator, &key).await;
    let back = contenders
        .leader_again_after(acted, "after the deletion")
        .await;
    let token = contenders.recorder.current().expect("a term").token;
    assert!(token > first, "token {token} after {first}");
    eprintln!("dynamodb operator delete: leader again after {back:?}");
    contenders.stop().await;
}

/// Garbage an operator may write over the lease item: without a version attribute (taken over
/// on `attribute_exists(pk) AND NOT attribute_type(#v, S)`), with one of another type, and
/// with a string version but attributes this crate does not know (taken over on `#v = :v`).
fn garbage() -> Vec<(&'static str, Item)> {
    let no_version = Item::from([("not".to_owned(), s("a lease"))]);
    let numeric_version = Item::from([
        ("v".to_owned(), AttributeValue::N("7".to_owned())),
        ("token".to_owned(), AttributeValue::N("1".to_owned())),
    ]);
    let foreign_attribute = Item::from([
        ("v".to_owned(), s("hand-written")),
        ("owner".to_owned(), s("ops")),
    ]);
    vec![
        ("no version", no_version),
        ("a numeric version", numeric_version),
        ("an unknown attribute", foreign_attribute),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_overwritten_with_garbage_is_not_taken_within_a_lease() {
    for (what, garbage) in garbage() {
        let key = unique_name("op-garbage");
        let contenders = Contenders::start(emulator().await, &key).await;
        let first = contenders.recorder.current().expect("a term").token;
        let operator = operator().await;
        let acted = Instant::now();
        overwrite(&operator, &key, garbage).await;
        let back = contenders
            .leader_again_after(acted, format!("after an overwrite with {what}").as_str())
            .await;
        let token = contenders.recorder.current().expect("a term").token;
        assert!(token > first, "{what}: token {token} after {first}");
        eprintln!("dynamodb operator overwrite with {what}: leader again after {back:?}");
        contenders.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_overwritten_with_an_old_record_is_not_taken_within_a_lease() {
    // Restoring an older item (a backup) brings back a record of the same holder and term: a
    // new version for every watcher that saw the renewals in between, and the holder's renewal
    // is refused on its own last version, then made again on the restored one (it still shows
    // the holder's lease).
    let key = unique_name("op-restore");
    let client = operator().await;
    let contenders = Contenders::start(emulator().await, &key).await;
    let old = item(&client, &key).await.expect("read");
    // Restored once the holder has renewed since (the item read is then an older version).
    eventually_async(contenders.lease, "the holder renews", || async {
        item(&client, &key).await.is_some_and(|now| now != old)
    })
    .await;
    let terms_before = contenders.recorder.terms().len();
    overwrite(&client, &key, old).await;
    // The holder keeps leading through it: nobody else takes over within two leases.
    throughout(
        contenders.lease * 2,
        "one term, unchanged since the old record was restored",
        || contenders.recorder.terms().len() == terms_before,
    )
    .await;
    contenders.stop().await;
}

/// Acquires with `store` for `request`, sleeping through the waits it is told.
async fn acquire(
    store: &DynamoDbLeaseStore,
    request: &LeaseRequest,
) -> leader_election::store::Lease {
    loop {
        match store.try_acquire(request).await.unwrap() {
            AcquireOutcome::Withheld { wait, .. } => tokio::time::sleep(wait).await,
            AcquireOutcome::Acquired(lease) => break lease,
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_never_saw_the_record_cannot_know_it_was_deleted() {
    // The residual stated in the README: a process that starts after an operator deleted a
    // live record, before any contender that had seen it wrote its placeholder, finds nothing
    // to honour and acquires (after the Date second has passed); its token is still greater,
    // so a fenced downstream store rejects the old leader.
    let emulator = emulator().await;
    let key = unique_name("op-fresh");
    let first_store = emulator.store(&key);
    let a = LeaseRequest::new("a", Duration::from_secs(4));
    let AcquireOutcome::Acquired(first) = first_store.try_acquire(&a).await.unwrap() else {
        panic!("a fresh key is free")
    };
    delete(&operator().await, &key).await;
    let fresh = emulator.store(&key);
    let c = LeaseRequest::new("c", Duration::from_secs(4));
    let token = acquire(&fresh, &c).await.token;
    assert!(token > first.token, "token {token} after {}", first.token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_saw_the_record_leaves_a_placeholder_that_every_store_honours() {
    // A contender that had seen the record finds it deleted and writes a placeholder: a
    // brand-new store started after that waits for a lease too, and then takes over with a
    // greater token.
    let emulator = emulator().await;
    let key = unique_name("op-placeholder");
    let first_store = emulator.store(&key);
    let a = LeaseRequest::new("a", Duration::from_secs(4));
    let AcquireOutcome::Acquired(first) = first_store.try_acquire(&a).await.unwrap() else {
        panic!("a fresh key is free")
    };
    let client = operator().await;
    delete(&client, &key).await;
    assert!(matches!(
        first_store
            .try_acquire(&LeaseRequest::new("b", Duration::from_secs(4)))
            .await
            .unwrap(),
        AcquireOutcome::Withheld { .. }
    ));
    let placeholder_seen = Instant::now();
    // An operator finds the placeholder as documented: no holder, marked, a greater token.
    let placeholder = item(&client, &key).await.expect("the placeholder");
    assert_eq!(
        placeholder.get("placeholder"),
        Some(&AttributeValue::Bool(true))
    );
    assert!(!placeholder.contains_key("holder"));
    let fresh = emulator.store(&key);
    let c = LeaseRequest::new("c", Duration::from_secs(4));
    let token = acquire(&fresh, &c).await.token;
    assert!(
        placeholder_seen.elapsed() >= Duration::from_secs(4),
        "a brand-new store took the placeholder within a lease"
    );
    assert!(token > first.token, "token {token} after {}", first.token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_item_again_as_it_reappears_never_gives_two_leaders() {
    // An operator deletes the item, then deletes it again every time it reappears naming a
    // holder (three times). A follower that saw it missing the first time must not create it
    // at once when it finds it missing again: whoever wrote it in between leads, and may have
    // renewed just before the second deletion.
    let key = unique_name("op-redelete");
    let contenders = Contenders::start(emulator().await, &key).await;
    let client = operator().await;
    let acted = Instant::now();
    delete(&client, &key).await;
    let mut deletions = 0;
    let until = Instant::now() + contenders.lease * 6 + SLACK;
    while deletions < 3 && Instant::now() < until {
        let held = item(&client, &key)
            .await
            .is_some_and(|item| item.contains_key("holder"));
        if held {
            delete(&client, &key).await;
            deletions += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert_eq!(deletions, 3, "no holder wrote the item three times");
    let last = Instant::now();
    eventually(contenders.lease * 2 + SLACK, "a leader again", || {
        contenders.recorder.terms().iter().any(|t| t.start > last)
    })
    .await;
    let back = contenders
        .leader_again_after(acted, "after the deletions")
        .await;
    eprintln!("dynamodb operator deleting as it reappears: a first leader again after {back:?}");
    contenders.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_older_released_record_is_not_taken_within_a_lease() {
    // A backup of the item taken when it held a released record of an earlier term, restored
    // while a later term runs: it names no holder, but its token is below the one every
    // contender has seen, so it is a restore, not a release.
    let emulator = emulator().await;
    let key = unique_name("op-old-release");
    let client = operator().await;
    let store = emulator.store(&key);
    let request = LeaseRequest::new("earlier", Duration::from_secs(4));
    let AcquireOutcome::Acquired(earlier) = store.try_acquire(&request).await.unwrap() else {
        panic!("a fresh key is free")
    };
    assert!(store.release(&request, &earlier).await.unwrap());
    let old = item(&client, &key).await.expect("the released record");

    let contenders = Contenders::start(emulator, &key).await;
    let current = contenders.recorder.current().expect("a term").token;
    assert!(current > earlier.token);
    let acted = Instant::now();
    overwrite(&client, &key, old).await;
    let back = contenders
        .leader_again_after(acted, "after the old released record was restored")
        .await;
    let token = contenders.recorder.current().expect("a term").token;
    assert!(token > current, "token {token} after {current}");
    eprintln!("dynamodb operator restoring an old released record: leader again after {back:?}");
    contenders.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brand_new_store_mints_a_greater_token_within_the_same_second() {
    // A term whose token comes from the service's clock (second D), then a restored copy of
    // the released record before it, taken by a brand-new store that knows no higher token,
    // in the same second D: its token must still be greater (the restore is the residual
    // stated in the README; the tokens are what protect a downstream store then).
    let emulator = emulator().await;
    let client = operator().await;
    for round in 0..3 {
        let key = unique_name(&format!("op-same-second-{round}"));
        let first = emulator.store(&key);
        let a = LeaseRequest::new("a", Duration::from_secs(4));
        let AcquireOutcome::Acquired(lease_a) = first.try_acquire(&a).await.unwrap() else {
            panic!("a fresh key is free")
        };
        assert!(first.release(&a, &lease_a).await.unwrap());
        let old = item(&client, &key).await.expect("the released record");
        // The next term's token comes from the clock once a second has passed since the first.
        let second_of_a = lease_a.token.get() / 1_000_000;
        eventually(Duration::from_secs(3), "a later second", || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                > second_of_a
        })
        .await;
        let b = LeaseRequest::new("b", Duration::from_secs(4));
        let AcquireOutcome::Acquired(lease_b) = first.try_acquire(&b).await.unwrap() else {
            panic!("the released record is free")
        };
        overwrite(&client, &key, old).await;
        let fresh = emulator.store(&key);
        let c = LeaseRequest::new("c", Duration::from_secs(4));
        let lease_c = acquire(&fresh, &c).await;
        let now = Instant::now();
        let terms: Vec<Term> = [("b", lease_b), ("c", lease_c)]
            .into_iter()
            .map(|(contender, lease)| Term {
                contender: contender.to_owned(),
                token: lease.token,
                start: now,
                end: now,
                end_reason: None,
            })
            .collect();
        let regressions = token_regressions(&terms);
        assert!(
            regressions.is_empty(),
            "round {round}: a brand-new store's token did not grow: {regressions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_election_record_is_its_own_item_and_outlives_deletion_and_release() {
    // The election record lives in `<key>.record`, beside the lease item: a release, an
    // operator deleting the lease item and the placeholder written after it leave it alone.
    let emulator = emulator().await;
    let key = unique_name("op-record");
    let client = operator().await;
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
    let lease = common::acquired(store.try_acquire(&a).await.unwrap());
    assert!(store.release(&a, &lease).await.unwrap());
    let b = LeaseRequest::new("b", Duration::from_secs(4));
    common::acquired(store.try_acquire(&b).await.unwrap());
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
