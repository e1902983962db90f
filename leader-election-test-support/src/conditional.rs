//! The operator checks of every backend of the core's conditional engine
//! (`leader_election::store::conditional`: S3, DynamoDB): what an operator does to a running
//! election with the service's own tools (delete the lease object, overwrite it with garbage,
//! with a copy of an old record, delete it again as it reappears), and what tokens must survive.
//!
//! A backend's test binary implements [`ObjectOperator`] on its fixture and calls each check
//! from a test of its own. Three contenders run in the checks that need them (lease 4 s); each
//! asserts with the one safety checker (never two leaders, tokens increasing), that no contender
//! leads again within a lease of the action (the old leader may still trust its term until
//! then), and that leadership comes back within about a lease.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use leader_election::store::{AcquireOutcome, Lease, LeaseRequest, RecordVersion};
use leader_election::testing::{Term, TermRecorder, token_regressions};
use leader_election::{LeaderElection, LeaseStore};
use tokio::time::Instant;

use crate::{eventually, eventually_async, throughout, unique_name};

/// Beyond one lease after the action: a follower's poll (250 ms plus jitter), the `Date`
/// header's second and a slow request or two on a shared machine.
const SLACK: Duration = Duration::from_secs(4);

/// A running service of a conditional backend, with an operator's hands on its objects.
pub trait ObjectOperator: Send + Sync {
    /// The backend's store.
    type Store: LeaseStore;
    /// An object's content as the operator reads and writes it (its bytes, its item).
    type Content: Clone + PartialEq + fmt::Debug + Send + Sync;

    /// The backend's name, for log lines ("s3", "dynamodb").
    fn name(&self) -> &'static str;
    /// A contender `id` of the election `key`, with lease 4 s, renewals every second and polls
    /// every 250 ms.
    fn election(&self, key: &str, id: &str) -> LeaderElection<Self::Store>;
    /// A brand-new store of the election `key` (a new process).
    fn store(&self, key: &str) -> Self::Store;
    /// Deletes the object `name`.
    fn delete(&self, name: &str) -> impl Future<Output = ()> + Send;
    /// Reads the object `name` (a backup); `None` when it is missing.
    fn backup(&self, name: &str) -> impl Future<Output = Option<Self::Content>> + Send;
    /// Writes `content` as the object `name` (a restore, or garbage), unconditionally.
    fn restore(&self, name: &str, content: Self::Content) -> impl Future<Output = ()> + Send;
    /// Whether `content` is a lease record naming a holder.
    fn names_holder(&self, content: &Self::Content) -> bool;
    /// Whether `content` is a placeholder as documented (no holder, marked as one).
    fn is_placeholder(&self, content: &Self::Content) -> bool;
    /// Garbage an operator may write over the lease object, each with what it is.
    fn garbage(&self) -> Vec<(&'static str, Self::Content)>;
}

/// Three contenders of one election, every term recorded.
struct Contenders<S: LeaseStore> {
    elections: Vec<LeaderElection<S>>,
    recorder: TermRecorder,
    lease: Duration,
}

impl<S: LeaseStore> Contenders<S> {
    /// Starts three contenders and waits until one leads and the others have seen it lead.
    async fn start<O: ObjectOperator<Store = S>>(operator: &O, key: &str) -> Self {
        let (elections, recorder) =
            started((0..3).map(|i| operator.election(key, &format!("c{i}")))).await;
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
        let within = self.lease * 2 + SLACK;
        let back = crate::leader_again_after(&self.recorder, acted, within, what).await;
        assert!(
            back >= self.lease,
            "{what}: a new leader {back:?} after the action, within a lease"
        );
        back
    }

    /// Waits for a leader again after `acted` (not within a lease), checks that its token is
    /// greater than `before`, says how long it took (`what` happened on `backend`), and stops.
    async fn back_with_a_greater_token(
        self,
        acted: Instant,
        before: leader_election::FencingToken,
        what: &str,
        backend: &str,
    ) {
        let back = self
            .leader_again_after(acted, &format!("after {what}"))
            .await;
        let token = self.token();
        assert!(token > before, "{what}: token {token} after {before}");
        eprintln!("{backend} operator, {what}: leader again after {back:?}");
        self.stop().await;
    }

    fn token(&self) -> leader_election::FencingToken {
        self.recorder.current().expect("a term").token
    }

    async fn stop(self) {
        for election in &self.elections {
            election.stop().await.expect("stop");
        }
        self.recorder.assert_safe();
    }
}

/// Starts `elections`, every term recorded, and waits until one leads and the others have
/// seen it lead (and with it the leader's token).
async fn started<S: LeaseStore>(
    elections: impl IntoIterator<Item = LeaderElection<S>>,
) -> (Vec<LeaderElection<S>>, TermRecorder) {
    let recorder = TermRecorder::new();
    let elections: Vec<_> = elections.into_iter().collect();
    recorder.start_all(&elections).await.expect("start");
    eventually(Duration::from_secs(15), "one leads, all see it", || {
        elections.iter().any(|e| e.is_leader())
            && elections
                .iter()
                .all(|e| e.is_leader() || e.state().leader.is_some())
    })
    .await;
    (elections, recorder)
}

/// Acquires with `store` for `request`, sleeping through the waits it is told.
async fn acquire<S: LeaseStore>(store: &S, request: &LeaseRequest) -> Lease {
    loop {
        match store.try_acquire(request).await.unwrap() {
            AcquireOutcome::Withheld { wait, .. } => tokio::time::sleep(wait).await,
            AcquireOutcome::Acquired(lease) => break lease,
            other => panic!("{other:?}"),
        }
    }
}

/// A deleted lease object is withheld for a lease; the next term's token is greater.
pub async fn a_deleted_object_is_withheld_for_a_lease<O: ObjectOperator>(operator: &O) {
    let key = unique_name("op-delete");
    let contenders = Contenders::start(operator, &key).await;
    let first = contenders.token();
    let acted = Instant::now();
    operator.delete(&key).await;
    contenders
        .back_with_a_greater_token(acted, first, "the deletion", operator.name())
        .await;
}

/// A new election's key and connected store, with its first election record written: the
/// record's bytes and version. The start of a backend's own checks of the record.
///
/// # Panics
/// When the store cannot connect or write.
pub async fn a_written_record<O: ObjectOperator>(
    operator: &O,
) -> (String, O::Store, Vec<u8>, RecordVersion) {
    let key = unique_name("op-record");
    let store = operator.store(&key);
    store.connect().await.expect("connect");
    let data = b"ran: 2024-01-01T00:00".to_vec();
    let version = store
        .write_record(None, &data)
        .await
        .expect("write")
        .expect("a new election has no record");
    (key, store, data, version)
}

/// The election record is an object of its own, `<key>.record`, beside the lease object: a
/// release, an operator deleting the lease object and the placeholder written after it leave
/// it alone (read by the store and by a brand-new one); a write at the current version makes a
/// new one, and one at a stale version is refused. An operator deleting the record object
/// leaves no record: a write expecting the old version is refused (nothing written), and one
/// expecting none creates it again.
pub async fn the_election_record_outlives_the_lease_object<O: ObjectOperator>(operator: &O) {
    let (key, store, data, v1) = a_written_record(operator).await;
    let a = LeaseRequest::new("a", Duration::from_secs(4));
    let lease = crate::acquire(&store, &a).await;
    assert!(store.release(&a, &lease).await.expect("release"));
    crate::acquire(&store, &LeaseRequest::new("b", Duration::from_secs(4))).await;
    operator.delete(&key).await;
    // The lease logic sees the deletion (a placeholder, withheld for a lease) ...
    let outcome = store.try_acquire(&a).await.expect("try_acquire");
    assert!(
        matches!(outcome, AcquireOutcome::Withheld { .. }),
        "{outcome:?}"
    );
    // ... and the record, read by this store and by a brand-new one, is untouched.
    for reader in [&store, &operator.store(&key)] {
        let record = reader
            .read_record()
            .await
            .expect("read")
            .expect("the record");
        assert_eq!((&record.version, &record.data), (&v1, &data));
    }
    let v2 = store
        .write_record(Some(&v1), b"ran: 2024-01-02T00:00")
        .await
        .expect("write")
        .expect("written at the current version");
    assert_ne!(v2, v1);
    let stale = store
        .write_record(Some(&v1), b"stale")
        .await
        .expect("write");
    assert_eq!(stale, None, "written on a stale version");

    operator.delete(&format!("{key}.record")).await;
    assert_eq!(store.read_record().await.expect("read"), None);
    let late = store.write_record(Some(&v2), b"late").await.expect("write");
    assert_eq!(late, None, "written on a deleted record's version");
    assert_eq!(store.read_record().await.expect("read"), None);
    let anew = store.write_record(None, b"anew").await.expect("write");
    assert!(anew.is_some(), "a deleted record is not written anew");
}

/// A lease object overwritten with each kind of [garbage](ObjectOperator::garbage) is not taken
/// within a lease; the next term's token is greater.
pub async fn an_object_overwritten_with_garbage_is_not_taken_within_a_lease<O: ObjectOperator>(
    operator: &O,
) {
    for (what, garbage) in operator.garbage() {
        let key = unique_name("op-garbage");
        let contenders = Contenders::start(operator, &key).await;
        let first = contenders.token();
        let acted = Instant::now();
        operator.restore(&key, garbage).await;
        let what = format!("an overwrite with {what}");
        contenders
            .back_with_a_greater_token(acted, first, &what, operator.name())
            .await;
    }
}

/// Restoring an older version (a backup) brings back a record of the same holder and term: a
/// new version for every watcher, and the holder's renewal is refused on its own last version,
/// then made again on the restored one (it still shows the holder's lease).
pub async fn an_object_overwritten_with_an_old_record_is_not_taken_within_a_lease<
    O: ObjectOperator,
>(
    operator: &O,
) {
    let key = unique_name("op-restore");
    let contenders = Contenders::start(operator, &key).await;
    let old = operator.backup(&key).await.expect("read");
    // Restored once the holder has renewed since (the record read is then an older version).
    eventually_async(contenders.lease, "the holder renews", || async {
        operator.backup(&key).await.is_some_and(|now| now != old)
    })
    .await;
    let terms_before = contenders.recorder.terms().len();
    operator.restore(&key, old).await;
    // The holder keeps leading through it: nobody else takes over within two leases.
    throughout(
        contenders.lease * 2,
        "one term, unchanged since the old record was restored",
        || contenders.recorder.terms().len() == terms_before,
    )
    .await;
    contenders.stop().await;
}

/// The residual stated in the READMEs: a process that starts after an operator deleted a live
/// record, before any contender that had seen it wrote its placeholder, finds nothing to honour
/// and acquires (after the Date second has passed); its token is still greater, so a fenced
/// downstream store rejects the old leader.
pub async fn a_store_that_never_saw_the_record_cannot_know_it_was_deleted<O: ObjectOperator>(
    operator: &O,
) {
    let key = unique_name("op-fresh");
    let first_store = operator.store(&key);
    let first = crate::acquire(
        &first_store,
        &LeaseRequest::new("a", Duration::from_secs(4)),
    )
    .await;
    operator.delete(&key).await;
    let fresh = operator.store(&key);
    let token = acquire(&fresh, &LeaseRequest::new("c", Duration::from_secs(4)))
        .await
        .token;
    assert!(token > first.token, "token {token} after {}", first.token);
}

/// A contender that had seen the record finds it deleted and writes a placeholder (as
/// documented: no holder, marked): a brand-new store started after that waits for a lease too,
/// and then takes over with a greater token.
pub async fn a_store_that_saw_the_record_leaves_a_placeholder_that_every_store_honours<
    O: ObjectOperator,
>(
    operator: &O,
) {
    let key = unique_name("op-placeholder");
    let first_store = operator.store(&key);
    let first = crate::acquire(
        &first_store,
        &LeaseRequest::new("a", Duration::from_secs(4)),
    )
    .await;
    operator.delete(&key).await;
    assert!(matches!(
        first_store
            .try_acquire(&LeaseRequest::new("b", Duration::from_secs(4)))
            .await
            .unwrap(),
        AcquireOutcome::Withheld { .. }
    ));
    let placeholder_seen = Instant::now();
    let placeholder = operator.backup(&key).await.expect("the placeholder");
    assert!(
        operator.is_placeholder(&placeholder),
        "not a placeholder: {placeholder:?}"
    );
    let fresh = operator.store(&key);
    let token = acquire(&fresh, &LeaseRequest::new("c", Duration::from_secs(4)))
        .await
        .token;
    assert!(
        placeholder_seen.elapsed() >= Duration::from_secs(4),
        "a brand-new store took the placeholder within a lease"
    );
    assert!(token > first.token, "token {token} after {}", first.token);
}

/// An operator deletes the object, then deletes it again every time it reappears naming a
/// holder (three times). A follower that saw it missing the first time must not create it at
/// once when it finds it missing again: whoever wrote it in between leads, and may have renewed
/// just before the second deletion.
pub async fn deleting_the_object_again_as_it_reappears_never_gives_two_leaders<
    O: ObjectOperator,
>(
    operator: &O,
) {
    let key = unique_name("op-redelete");
    let contenders = Contenders::start(operator, &key).await;
    let acted = Instant::now();
    operator.delete(&key).await;
    let mut deletions = 0;
    let until = Instant::now() + contenders.lease * 6 + SLACK;
    while deletions < 3 && Instant::now() < until {
        let held = operator
            .backup(&key)
            .await
            .is_some_and(|content| operator.names_holder(&content));
        if held {
            operator.delete(&key).await;
            deletions += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert_eq!(deletions, 3, "no holder wrote the object three times");
    let last = Instant::now();
    eventually(contenders.lease * 2 + SLACK, "a leader again", || {
        contenders.recorder.terms().iter().any(|t| t.start > last)
    })
    .await;
    let back = contenders
        .leader_again_after(acted, "after the deletions")
        .await;
    eprintln!(
        "{} operator deleting as it reappears: a first leader again after {back:?}",
        operator.name()
    );
    contenders.stop().await;
}

/// A backup of the object taken when it held a released record of an earlier term, restored
/// while a later term runs: it names no holder, but its token is below the one every contender
/// has seen, so it is a restore, not a release.
pub async fn a_restored_older_released_record_is_not_taken_within_a_lease<O: ObjectOperator>(
    operator: &O,
) {
    let key = unique_name("op-old-release");
    let store = operator.store(&key);
    let request = LeaseRequest::new("earlier", Duration::from_secs(4));
    let earlier = crate::acquire(&store, &request).await;
    assert!(store.release(&request, &earlier).await.unwrap());
    let old = operator.backup(&key).await.expect("the released record");

    let contenders = Contenders::start(operator, &key).await;
    let current = contenders.token();
    assert!(current > earlier.token);
    let acted = Instant::now();
    operator.restore(&key, old).await;
    let what = "the old released record was restored";
    contenders
        .back_with_a_greater_token(acted, current, what, operator.name())
        .await;
}

/// A term whose token comes from the service's clock (second D), then a restored copy of the
/// released record before it, taken by a brand-new store that knows no higher token, in the
/// same second D: its token must still be greater (the restore is the residual stated in the
/// READMEs; the tokens are what protect a downstream store then).
pub async fn a_brand_new_store_mints_a_greater_token_within_the_same_second<O: ObjectOperator>(
    operator: &O,
) {
    for round in 0..3 {
        let key = unique_name(&format!("op-same-second-{round}"));
        let first = operator.store(&key);
        let a = LeaseRequest::new("a", Duration::from_secs(4));
        let lease_a = crate::acquire(&first, &a).await;
        assert!(first.release(&a, &lease_a).await.unwrap());
        let old = operator.backup(&key).await.expect("the released record");
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
        operator.restore(&key, old).await;
        let fresh = operator.store(&key);
        let lease_c = acquire(&fresh, &LeaseRequest::new("c", Duration::from_secs(4))).await;
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

/// Tokens are minted from the service's clock (the emulator runs on this machine: its clock is
/// ours, to the second) and keep increasing when the object is deleted, each time acquired by a
/// brand-new store (a new process), several times within a second or two.
pub async fn tokens_are_minted_from_the_service_clock_and_survive_deletion<O: ObjectOperator>(
    operator: &O,
) {
    let key = unique_name("clock-token");
    let mut last = None;
    for round in 0..4 {
        let store = operator.store(&key);
        let request = LeaseRequest::new(format!("p{round}"), Duration::from_secs(2));
        let token = loop {
            match store.try_acquire(&request).await.unwrap() {
                AcquireOutcome::Withheld { wait, .. } => tokio::time::sleep(wait).await,
                AcquireOutcome::Acquired(lease) => break lease.token,
                other => panic!("{other:?}"),
            }
        };
        if let Some(last) = last {
            assert!(token > last, "round {round}: token {token} after {last}");
        } else {
            let now_us = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros() as u64;
            assert!(
                token.get().abs_diff(now_us) < 5_000_000,
                "token {token} is not server µs"
            );
        }
        last = Some(token);
        operator.delete(&key).await;
    }
}

/// One `#[tokio::test]` per operator check of [`conditional`](crate::conditional), each on the
/// operator that `$operator` (an expression, awaited in each test) makes:
/// `operator_checks!(operator().await);`. The test binary depends on `tokio` with the
/// multi-threaded runtime.
#[macro_export]
macro_rules! operator_checks {
    ($operator:expr) => {
        $crate::operator_checks!(@each $operator;
            a_deleted_object_is_withheld_for_a_lease,
            an_object_overwritten_with_garbage_is_not_taken_within_a_lease,
            an_object_overwritten_with_an_old_record_is_not_taken_within_a_lease,
            a_store_that_never_saw_the_record_cannot_know_it_was_deleted,
            a_store_that_saw_the_record_leaves_a_placeholder_that_every_store_honours,
            deleting_the_object_again_as_it_reappears_never_gives_two_leaders,
            a_restored_older_released_record_is_not_taken_within_a_lease,
            a_brand_new_store_mints_a_greater_token_within_the_same_second,
            tokens_are_minted_from_the_service_clock_and_survive_deletion,
            the_election_record_outlives_the_lease_object,
        );
    };
    (@each $operator:expr; $($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            $crate::conditional::$check(&$operator).await;
        }
    )*};
}

#[cfg(feature = "aws")]
mod emulator;
#[cfg(feature = "aws")]
pub use emulator::{
    EmulatorFixture, an_emulator_restarted_empty_elects_again_after_a_lease_with_a_greater_token,
    an_emulator_restarted_empty_on_a_clock_stepped_back_still_mints_a_greater_token,
};
