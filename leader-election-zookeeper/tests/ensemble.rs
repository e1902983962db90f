//! Elections on a real three-server ZooKeeper ensemble while its servers fail: the server
//! leading the ensemble (found with the `srvr` four-letter word) killed mid-run, and the quorum
//! lost and regained. At most one contender leads at a time (the shared checker), tokens grow,
//! and a leader that cannot renew steps down within its lease.
//!
//! Each test has an ensemble of its own; they run one at a time (three JVMs each).

mod common;

use std::time::Duration;

use leader_election::{ElectionBuilder, LeaderElectionOptions};
use leader_election_fixtures::ZooKeeper;
use leader_election_test_support::eventually;
use leader_election_test_support::operator::Contenders;
use leader_election_test_support::unique_name;
use leader_election_zookeeper::{ZooKeeperLeaderElection, ZooKeeperLeaseStore};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The lease here: an ensemble elects a new leader in a few hundred milliseconds on this
/// fixture's 100 ms tick, well within the sessions' timeout.
const LEASE: Duration = Duration::from_secs(4);

/// What a takeover may take beyond the lease on a loaded two-core machine running three JVMs.
const SLACK: Duration = Duration::from_secs(3);

/// One ensemble at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

fn options(id: &str) -> LeaderElectionOptions {
    let mut options = common::options(id);
    options.lease_duration = LEASE;
    options.renew_interval = Duration::from_secs(1);
    options.operation_timeout = Some(Duration::from_secs(1));
    options
}

/// Three contenders of a new election on every member of `zk`.
async fn election(zk: &ZooKeeper, prefix: &str) -> Contenders<ZooKeeperLeaseStore> {
    let (connect, name) = (zk.connect_string(), unique_name(prefix));
    Contenders::start(
        3,
        Box::new(move |id| {
            ZooKeeperLeaderElection::builder()
                .connect_string(&connect)
                .election(&name)
                .options(options(id))
                .build()
                .expect("valid configuration")
        }),
    )
    .await
}

/// The server leading the ensemble killed mid-run: the sessions move to the other servers and
/// the election goes on, never with two leaders; a later handover still gives a greater token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_ensembles_leader_keeps_one_leader_and_tokens_grow() {
    let _one = ONE_AT_A_TIME.lock().await;
    let zk = ZooKeeper::start_ensemble(3).await;
    let election = election(&zk, "ensemble-leader").await;
    let before = election.leader().leadership().expect("a term");
    let zk_leader = zk.leader().await;
    assert_eq!(zk.mode(zk_leader).await.as_deref(), Some("leader"));
    zk.kill(zk_leader).await;
    let killed = Instant::now();
    // A new ensemble leader, and one election leader (the same, if its session survived).
    let new_zk_leader = zk.leader().await;
    assert_ne!(new_zk_leader, zk_leader);
    election.one_leader(LEASE + SLACK).await;
    let now = election.leader().leadership().expect("a term");
    assert!(now.token() >= before.token());
    eprintln!(
        "ensemble leader killed: one election leader {:?} later (token {} -> {})",
        killed.elapsed(),
        before.token(),
        now.token()
    );
    // The contenders keep working on two servers: a graceful handover.
    election.leader().stop().await.expect("stop the leader");
    let next = election.next_term(&now, LEASE + SLACK).await;
    assert!(next.token > now.token());
    // The killed server comes back and catches up.
    zk.restart(zk_leader).await;
    election.one_leader(LEASE + SLACK).await;
    election.stop().await;
    election.recorder.assert_safe();
}

/// Two of three servers killed: no quorum, so no renewal succeeds, and the leader steps down
/// within its lease (failing closed: the servers left cannot even tell it its session is
/// gone). Once the quorum is back, one contender leads again with a greater token, never while
/// the old holder may still trust its lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_without_a_quorum_steps_down_and_the_election_resumes() {
    let _one = ONE_AT_A_TIME.lock().await;
    let zk = ZooKeeper::start_ensemble(3).await;
    let election = election(&zk, "ensemble-quorum").await;
    let leader = election.leader();
    let old = leader.leadership().expect("a term");
    let zk_leader = zk.leader().await;
    let other = (0..zk.size())
        .find(|i| *i != zk_leader)
        .expect("another member");
    zk.kill(zk_leader).await;
    zk.kill(other).await;
    let lost = Instant::now();
    eventually(LEASE + SLACK, "the leader to step down", || {
        !old.is_current()
    })
    .await;
    eventually(LEASE, "nobody to lead", || {
        election.contenders.iter().all(|c| !c.is_leader())
    })
    .await;
    eprintln!(
        "quorum lost: the leader stepped down after {:?}",
        lost.elapsed()
    );
    zk.restart(zk_leader).await;
    zk.restart(other).await;
    // The sessions survive (the ensemble back counts their timeouts afresh): the old holder's
    // store gives up the lease its election stopped renewing (a renewal whose reply was lost
    // moved its znode's version on, which the store finds its own), and the next in line
    // takes it. Had the sessions expired, the next in line would wait a lease more.
    let next = election.next_term(&old, 3 * LEASE + SLACK).await;
    eprintln!(
        "quorum back: a new term {:?} after the loss",
        next.start.duration_since(lost)
    );
    assert!(next.token > old.token());
    election.one_leader(LEASE + SLACK).await;
    election.stop().await;
    election.recorder.assert_safe();
    leader_election::testing::assert_safe(&election.terms_trusting(&old));
}
