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
use std::marker::PhantomData;
use std::time::Duration;

use leader_election::store::{AcquireOutcome, Lease, LeaseRequest, RecordVersion};
use leader_election::testing::suite::{Cut, Fixture};
use leader_election::testing::{
    ConformanceOptions, TakeoverOptions, Term, TermRecorder, token_regressions,
};
use leader_election::{
    BuildError, ElectionBuilder, LeaderElection, LeaderElectionOptions, LeaseStore,
};
use tokio::time::Instant;

use crate::faketime::SteppedClock;
use crate::{
    FaultProxy, ProxyCut, S3Emulator, eventually, eventually_async, lazy, throughout, unique_name,
};

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

// === The emulator: faults and the generic suite ===

/// A backend of the conditional engine on the [`S3Emulator`] (moto serves S3 and DynamoDB on
/// one endpoint): how its elections are built there. For the checks that need an emulator of
/// their own (restarts, a stepped clock) and for the generic suite ([`EmulatorFixture`]).
pub trait OnEmulator: Send + Sync + 'static {
    /// The backend's builder.
    type Builder: ElectionBuilder<Error = BuildError>;

    /// A builder of contender `id` of the election `key` on the service at `endpoint` (lease
    /// 4 s, renewals every second, polls every 250 ms, operations within 2 s).
    fn builder(endpoint: &str, key: &str, id: &str) -> Self::Builder;

    /// Makes the emulator ready for timed checks after it started or restarted (moto loads a
    /// service at its first request). Default: nothing.
    fn warm_up(emulator: &S3Emulator) -> impl Future<Output = ()> + Send {
        let _ = emulator;
        async {}
    }
}

type StoreOf<B> = <<B as OnEmulator>::Builder as ElectionBuilder>::Store;

fn election_on<B: OnEmulator>(
    emulator: &S3Emulator,
    key: &str,
    id: &str,
) -> LeaderElection<StoreOf<B>> {
    B::builder(&emulator.endpoint(), key, id)
        .build()
        .expect("build the election")
}

/// Three contenders of election `key`, started, once one leads and every follower has read the
/// record (and with it the leader's token).
async fn three_contenders<B: OnEmulator>(
    emulator: &S3Emulator,
    key: &str,
) -> (Vec<LeaderElection<StoreOf<B>>>, TermRecorder) {
    started((0..3).map(|i| election_on::<B>(emulator, key, &format!("c{i}")))).await
}

/// The emulator restarted empty (no object, bucket or table left): the election elects again
/// after a lease (followers had seen the object, so the missing object is withheld for a lease
/// from when they first saw it gone), with a greater token.
pub async fn an_emulator_restarted_empty_elects_again_after_a_lease_with_a_greater_token<
    B: OnEmulator,
>() {
    // Its own emulator: the restart empties it.
    let emulator = S3Emulator::start().await;
    B::warm_up(&emulator).await;
    let key = unique_name("restart");
    let (elections, recorder) = three_contenders::<B>(&emulator, &key).await;
    let first = recorder.current().expect("a term").token;

    // From before the restart: a follower may see the empty emulator before it returns here.
    let restarted = Instant::now();
    emulator.restart().await;
    B::warm_up(&emulator).await;
    let lease = elections[0].options().lease_duration;
    eventually(
        lease + Duration::from_secs(5),
        "a new term after the restart",
        || recorder.terms().iter().any(|t| t.token > first),
    )
    .await;
    let term = recorder
        .terms()
        .into_iter()
        .find(|t| t.token > first)
        .expect("a new term");
    assert!(
        term.start >= restarted + lease,
        "a new leader {:?} after the restart, within a lease",
        term.start - restarted
    );
    for election in &elections {
        election.stop().await.unwrap();
    }
    recorder.assert_safe();
}

/// How far the service's clock steps back.
const STEP_BACK: i64 = 20;

/// The service's clock really stepped back (libfaketime; an NTP step, a restored VM) and the
/// emulator restarted empty (nothing left to carry the last token): tokens come from the `Date`
/// of its responses, yet the election's next token is greater than the last. Every contender
/// that saw the election held carries the highest token it saw as a floor, and a takeover over a
/// missing record waits until the service's clock has passed the latest `Date` its store
/// received (about the step), so that it is also above tokens it never saw. A store that never
/// saw the election mints from the stepped clock alone, below it: the limit the READMEs state.
/// Skipped where libfaketime is missing.
pub async fn an_emulator_restarted_empty_on_a_clock_stepped_back_still_mints_a_greater_token<
    B: OnEmulator,
>() {
    let Some(clock) = SteppedClock::for_test() else {
        return;
    };
    let emulator = S3Emulator::start_with_clock(&clock).await;
    B::warm_up(&emulator).await;
    let key = unique_name("clock-step");
    let (elections, recorder) = three_contenders::<B>(&emulator, &key).await;
    let first = recorder.current().expect("a term").token;
    let before = recorder.terms().len();

    clock.step(-STEP_BACK).expect("step the service's clock");
    let restarted = Instant::now();
    emulator.restart().await;
    B::warm_up(&emulator).await;

    // The step took: a store that saw nothing of this election mints from `Date` alone.
    let fresh = B::builder(&emulator.endpoint(), &unique_name("fresh"), "store")
        .build_store()
        .expect("build the store");
    let request = LeaseRequest::new("fresh", Duration::from_secs(4));
    let mut withheld = 0;
    let fresh_token = loop {
        match fresh.try_acquire(&request).await {
            // A missing bucket or table, created by the first write, or the wait for a later
            // second.
            Ok(AcquireOutcome::Withheld { wait, .. }) if withheld < 5 => {
                withheld += 1;
                tokio::time::sleep(wait).await;
            }
            Err(e) if e.is_retryable() && withheld < 5 => {
                withheld += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Ok(AcquireOutcome::Acquired(lease)) => break lease.token,
            outcome => panic!("acquire on the fresh key: {outcome:?}"),
        }
    };
    assert!(
        fresh_token.get() + 10_000_000 < first.get(),
        "a fresh store minted {fresh_token} on a service clock {STEP_BACK} s behind, the \
         election held {first} before: the step did not take"
    );

    let lease = elections[0].options().lease_duration;
    eventually(
        2 * lease + Duration::from_secs(STEP_BACK as u64 + 10),
        lazy(|| {
            format!(
                "a new term after the restart; terms {:?}, states {:?}",
                recorder.terms(),
                elections.iter().map(|e| e.state()).collect::<Vec<_>>()
            )
        }),
        || recorder.terms().len() > before,
    )
    .await;
    let next = recorder.terms()[before].clone();
    eprintln!(
        "a new term {:?} after the restart onto a clock {STEP_BACK} s behind",
        next.start - restarted
    );
    assert!(
        next.token > first,
        "token {} after the service's clock stepped back and the emulator came back empty, {} \
         before",
        next.token,
        first
    );
    for election in &elections {
        election.stop().await.unwrap();
    }
    recorder.assert_safe();
}

/// The generic suite's fixture (`leader_election::store_suite!`) for a backend on the
/// emulator: one emulator, a key of its own per election, and a fault proxy in front of it for
/// the cut-off check.
#[derive(Debug)]
pub struct EmulatorFixture<B> {
    emulator: S3Emulator,
    backend: PhantomData<fn() -> B>,
}

impl<B: OnEmulator> EmulatorFixture<B> {
    /// Starts an emulator and makes it ready.
    pub async fn start() -> Self {
        let emulator = S3Emulator::start().await;
        B::warm_up(&emulator).await;
        Self {
            emulator,
            backend: PhantomData,
        }
    }
}

impl<B: OnEmulator> Fixture for EmulatorFixture<B> {
    type Store = StoreOf<B>;

    async fn store(&self, name: &str) -> StoreOf<B> {
        B::builder(&self.emulator.endpoint(), name, "store")
            .build_store()
            .expect("build the store")
    }

    async fn cut_off_store(&self, name: &str) -> (StoreOf<B>, Box<dyn Cut>) {
        let proxy = FaultProxy::to_port(self.emulator.port()).await;
        let store = B::builder(&format!("http://127.0.0.1:{}", proxy.port()), name, "store")
            .build_store()
            .expect("build the store");
        (store, Box::new(ProxyCut(proxy)))
    }

    /// Leases of 4 s, renewals every second, followers polling every 250 ms.
    fn options(&self) -> LeaderElectionOptions {
        B::builder(&self.emulator.endpoint(), "options", "suite")
            .election_options()
            .clone()
    }

    /// Leases of 2 s; expiry and takeover are seen within a follower's watch (a lease, 1 % and
    /// 100 ms) plus polling.
    fn conformance(&self) -> ConformanceOptions {
        ConformanceOptions::new(Duration::from_secs(2), Duration::from_secs(3))
    }

    /// No release notifications: followers see a release at their next poll (250 ms), a
    /// preferred candidate takes over at its next attempt (a renew interval, 1 s).
    fn handover_within(&self) -> Duration {
        Duration::from_secs(2)
    }

    /// The follower watches the leader renew for longer than a lease before the fault (it
    /// must stay out); after it, it watches the last version unchanged for a lease (and its
    /// drift allowance), then takes the lease at its next poll, within 3 s on a shared machine.
    fn takeover(&self) -> TakeoverOptions {
        let options = self.options();
        TakeoverOptions {
            hold: options.lease_duration + options.renew_interval,
            slack: Duration::from_secs(3),
            ..TakeoverOptions::default()
        }
    }
}

/// The checks on an emulator of their own (restarted empty, on a clock stepped back), one
/// `#[tokio::test]` each, for the backend `$backend` ([`OnEmulator`]).
#[macro_export]
macro_rules! emulator_faults {
    ($backend:ty) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn an_emulator_restarted_empty_elects_again_after_a_lease_with_a_greater_token() {
            $crate::conditional::an_emulator_restarted_empty_elects_again_after_a_lease_with_a_greater_token::<$backend>().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn an_emulator_restarted_empty_on_a_clock_stepped_back_still_mints_a_greater_token() {
            $crate::conditional::an_emulator_restarted_empty_on_a_clock_stepped_back_still_mints_a_greater_token::<$backend>().await;
        }
    };
}

/// The generic suite for the backend `$backend` ([`OnEmulator`]): `fixture()`, the
/// [`EmulatorFixture`] of the test binary (shared while any check holds it: the emulator starts
/// with the first check and stops with the last), and `leader_election::store_suite!` on it.
#[macro_export]
macro_rules! emulator_suite {
    ($backend:ty) => {
        /// The fixture of this test binary while any check holds it.
        async fn fixture() -> std::sync::Arc<$crate::conditional::EmulatorFixture<$backend>> {
            static FIXTURE: $crate::Shared<$crate::conditional::EmulatorFixture<$backend>> =
                $crate::Shared::new();
            FIXTURE
                .get($crate::conditional::EmulatorFixture::<$backend>::start)
                .await
        }

        leader_election::store_suite!(&*fixture().await);
    };
}
