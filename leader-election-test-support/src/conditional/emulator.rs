//! The checks of a backend of the conditional engine on an emulator of their own (restarted
//! empty, on a clock stepped back) and the generic suite's fixture on the emulator, for an AWS
//! backend as its tests use it on moto's server
//! ([`MotoBackend`](leader_election_aws::testing::MotoBackend)). Feature `aws`.

use std::marker::PhantomData;

use leader_election::testing::suite::{Cut, Fixture};
use leader_election::testing::{ConformanceOptions, TakeoverOptions};
use leader_election::{ElectionBuilder, LeaderElectionOptions};
use leader_election_aws::testing::{MotoBackend, StoreOf};

use super::*;
use crate::faketime::SteppedClock;
use crate::{ProxyCut, S3Emulator, lazy};

fn election_on<B: MotoBackend>(
    emulator: &S3Emulator,
    key: &str,
    id: &str,
) -> LeaderElection<StoreOf<B>> {
    B::builder_at(&emulator.endpoint(), key, id)
        .build()
        .expect("build the election")
}

/// Three contenders of election `key`, started, once one leads and every follower has read the
/// record (and with it the leader's token).
async fn three_contenders<B: MotoBackend>(
    emulator: &S3Emulator,
    key: &str,
) -> (Vec<LeaderElection<StoreOf<B>>>, TermRecorder) {
    started((0..3).map(|i| election_on::<B>(emulator, key, &format!("c{i}")))).await
}

/// The emulator restarted empty (no object, bucket or table left): the election elects again
/// after a lease (followers had seen the object, so the missing object is withheld for a lease
/// from when they first saw it gone), with a greater token.
pub async fn an_emulator_restarted_empty_elects_again_after_a_lease_with_a_greater_token<
    B: MotoBackend,
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
    B: MotoBackend,
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
    let fresh = B::builder_at(&emulator.endpoint(), &unique_name("fresh"), "store")
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

impl<B: MotoBackend> EmulatorFixture<B> {
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

impl<B: MotoBackend> Fixture for EmulatorFixture<B> {
    type Store = StoreOf<B>;

    async fn store(&self, name: &str) -> StoreOf<B> {
        B::builder_at(&self.emulator.endpoint(), name, "store")
            .build_store()
            .expect("build the store")
    }

    async fn cut_off_store(&self, name: &str) -> (StoreOf<B>, Box<dyn Cut>) {
        ProxyCut::around(self.emulator.port(), async |port| {
            B::builder_at(&format!("http://127.0.0.1:{port}"), name, "store")
                .build_store()
                .expect("build the store")
        })
        .await
    }

    /// Leases of 4 s, renewals every second, followers polling every 250 ms.
    fn options(&self) -> LeaderElectionOptions {
        B::builder_at(&self.emulator.endpoint(), "options", "suite")
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
/// `#[tokio::test]` each, for the backend `$backend` ([`MotoBackend`]).
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

/// The generic suite for the backend `$backend` ([`MotoBackend`]): `fixture()`, the
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
