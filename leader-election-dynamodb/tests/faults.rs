//! Faults against moto's DynamoDB: the emulator restarted empty (its tables gone), and on a
//! clock stepped back.

use std::time::Duration;

use leader_election::LeaderElection;
use leader_election::store::{AcquireOutcome, LeaseRequest, LeaseStore as _};
use leader_election::testing::TermRecorder;
use leader_election_dynamodb::DynamoDbLeaseStore;
use leader_election_test_support::faketime::SteppedClock;
use leader_election_test_support::{eventually, lazy, unique_name};
use tokio::time::Instant;

mod common;
use common::{DynamoEmulatorExt, S3Emulator, acquired, warm_up};

/// Three contenders of election `key`, started, once one leads and every follower has read the
/// record (and with it the leader's token).
async fn three_contenders(
    emulator: &S3Emulator,
    key: &str,
) -> (Vec<LeaderElection<DynamoDbLeaseStore>>, TermRecorder) {
    let recorder = TermRecorder::new();
    let elections: Vec<_> = (0..3)
        .map(|i| emulator.election(key, &format!("c{i}")))
        .collect();
    recorder.start_all(&elections).await.unwrap();
    eventually(Duration::from_secs(15), "one leads, all see it", || {
        elections.iter().any(|e| e.is_leader())
            && elections
                .iter()
                .all(|e| e.is_leader() || e.state().leader.is_some())
    })
    .await;
    (elections, recorder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emulator_restarted_empty_elects_again_after_a_lease_with_a_greater_token() {
    // Its own emulator: the restart empties it.
    let emulator = S3Emulator::start().await;
    warm_up(&emulator).await;
    let key = unique_name("restart");
    let (elections, recorder) = three_contenders(&emulator, &key).await;
    let first = recorder.current().expect("a term").token;

    // From before the restart: a follower may see the empty emulator before it returns here.
    let restarted = Instant::now();
    emulator.restart().await;
    // moto loads its DynamoDB service again at the first request: ready before the timings
    // below are measured (the table is created again by the first request that finds it
    // missing).
    warm_up(&emulator).await;
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
    // Followers had seen the item: the missing item is withheld for a lease from when they
    // first saw it gone (after the restart).
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

/// The service's clock really stepped back (libfaketime; an NTP step, a restored VM) and the
/// emulator restarted empty (no item, no table left to carry the last token): tokens come from the
/// `Date` of its responses, yet the election's next token is greater than the last. Every
/// contender that saw the election held carries the highest token it saw as a floor, and a
/// takeover over a missing record waits until the service's clock has passed the latest `Date`
/// its store received (about the step), so that it is also above tokens it never saw. A store
/// that never saw the election mints from the stepped clock alone, below it: the limit the
/// README states.
/// How far the service's clock steps back.
const STEP_BACK: i64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emulator_restarted_empty_on_a_clock_stepped_back_still_mints_a_greater_token() {
    let Some(clock) = SteppedClock::for_test() else {
        return;
    };
    let emulator = S3Emulator::start_with_clock(&clock).await;
    warm_up(&emulator).await;
    let key = unique_name("clock-step");
    let (elections, recorder) = three_contenders(&emulator, &key).await;
    let first = recorder.current().expect("a term").token;
    let before = recorder.terms().len();

    clock.step(-STEP_BACK).expect("step the service's clock");
    let restarted = Instant::now();
    emulator.restart().await;
    warm_up(&emulator).await;

    // The step took: a store that saw nothing of this election mints from `Date` alone.
    let fresh = emulator.store(&unique_name("fresh"));
    let request = LeaseRequest::new("fresh", Duration::from_secs(4));
    let mut withheld = 0;
    let fresh_token = loop {
        match fresh.try_acquire(&request).await {
            // The wait for a later second.
            Ok(AcquireOutcome::Withheld { wait, .. }) if withheld < 5 => {
                withheld += 1;
                tokio::time::sleep(wait).await;
            }
            Err(e) if e.is_retryable() && withheld < 5 => {
                withheld += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            outcome => break acquired(outcome.expect("acquire on the fresh key")).token,
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
