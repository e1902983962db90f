//! What an operator may do to an election's znodes while it runs, against a real ZooKeeper
//! server, through a ZooKeeper session of the operator's own (as `zkCli.sh` would).
//!
//! Every test runs three contenders with a 2 s lease, lets one lead, and acts on the znodes.
//! Touching the leader's znode (deleting it, overwriting it, deleting the whole election) must
//! never let anyone lead while the old holder may still trust its lease (design rule 9); only
//! the holder's release, or its session's end, hands over. The verdict is always the one shared
//! checker, [`leader_election::testing::assert_safe`], on the terms a
//! [`TermRecorder`](leader_election::testing::TermRecorder) recorded.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{LEASE, builder};
use leader_election::store::{AcquireOutcome, LeaseRequest, WithholdReason};
use leader_election::testing::assert_safe;
use leader_election::{ElectionBuilder, LeaderElection, LeaseStore};
use leader_election_fixtures::{ZooKeeper, zookeeper};
use leader_election_test_support::operator::Contenders;
use leader_election_test_support::unique_name;
use leader_election_zookeeper::ZooKeeperLeaseStore;
use leader_election_zookeeper::zookeeper_client::{
    Acls, Client, CreateMode, CreateOptions, Error as ZkError,
};
use tokio::time::Instant;

/// What a takeover may take beyond the lease: a watch, a few round trips, the event reaching
/// the recorder, on a loaded two-core machine.
const SLACK: Duration = Duration::from_millis(1500);

/// Three contenders of a new election on `zk`; returns them and the election's path.
async fn election(zk: &ZooKeeper, prefix: &str) -> (Contenders<ZooKeeperLeaseStore>, String) {
    let name = unique_name(prefix);
    let (connect, election) = (zk.connect_string(), name.clone());
    let contenders = Contenders::start(
        3,
        Box::new(move |id| {
            builder(&connect, &election, id)
                .build()
                .expect("valid configuration")
        }),
    )
    .await;
    (contenders, format!("/leader-election/{name}"))
}

/// Persistent znodes readable and writable by anyone, as the store makes them.
fn persistent() -> CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

/// An operator's session.
async fn operator(zk: &ZooKeeper) -> Client {
    Client::connect(&zk.connect_string())
        .await
        .expect("an operator's session")
}

/// The contenders' znodes of the election at `path`, first in line first.
async fn queue(client: &Client, path: &str) -> Vec<String> {
    let mut names: Vec<String> = client
        .list_children(path)
        .await
        .expect("list the election")
        .into_iter()
        .filter(|n| n.starts_with("c-"))
        .collect();
    names.sort_by_key(|n| n.rsplit('-').next().unwrap_or_default().to_owned());
    names
}

/// Runs `act` (on the operator's session, with the leader's znode) while three contenders run:
/// the shared rules of a touched lease (see [`Contenders::touched`]), with the contender next
/// in line told the lease is withheld because the znode was touched.
async fn touched<F, Fut>(prefix: &str, act: F)
where
    F: FnOnce(Client, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let zk = common::server().await;
    let (mut election, path) = election(&zk, prefix).await;
    let client = operator(&zk).await;
    let leader_znode = format!("{path}/{}", queue(&client, &path).await[0]);
    let act = act(client, leader_znode);
    let touched = election.touched(prefix, false, LEASE + SLACK, act).await;
    touched.assert_withheld(LEASE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_leaders_znode_waits_out_the_lease() {
    touched("delete", |client, znode| async move {
        client.delete(&znode, None).await.expect("delete");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwriting_the_leaders_znode_waits_out_the_lease() {
    touched("overwrite", |client, znode| async move {
        client
            .set_data(&znode, b"\xffgarbage", None)
            .await
            .expect("set data");
    })
    .await;
}

/// `deleteall` on the election's path, the blanket clean-up, removes the guard, the release
/// marker and the session markers with the contenders' znodes. A follower that asks the moment
/// after must not take it: the holder renewed less than a lease ago and trusts it until its
/// next renewal fails. The election goes on with a greater token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_whole_election_keeps_followers_out_and_tokens_grow() {
    let zk = common::server().await;
    let (election, path) = election(&zk, "deleteall").await;
    let client = operator(&zk).await;
    let act = || delete_all(&client, &path);
    election
        .cleaned_up(2, 2 * LEASE + SLACK, 2 * LEASE + SLACK, act)
        .await;
}

/// Two `deleteall`s, a new holder in between: a follower that waited out the first deletion
/// must wait out the second one too, not count it from the first (the missing guard looks
/// the same both times).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_deleteall_is_waited_out_like_the_first() {
    let zk = common::server().await;
    let name = unique_name("second-deleteall");
    let path = format!("/leader-election/{name}");
    let client = operator(&zk).await;
    let (first, second, follower) = (
        common::store(&zk, &name),
        common::store(&zk, &name),
        common::store(&zk, &name),
    );
    let (a, b, f) = (
        LeaseRequest::new("a", LEASE),
        LeaseRequest::new("b", LEASE),
        LeaseRequest::new("f", LEASE),
    );
    let acquired = first.try_acquire(&a).await.expect("an answer");
    assert!(
        matches!(acquired, AcquireOutcome::Acquired(_)),
        "{acquired:?}"
    );
    let held = follower.try_acquire(&f).await.expect("an answer");
    assert!(matches!(held, AcquireOutcome::Held { .. }), "{held:?}");
    let f = f.expecting_record(true);
    // The first deleteall: the follower waits a lease, then may lead (it lets `second` in).
    delete_all(&client, &path).await;
    let deleted = Instant::now();
    match settled(&follower, &f).await {
        AcquireOutcome::Withheld { .. } => {}
        other => panic!("the first deleteall was not withheld: {other:?}"),
    }
    let lease = loop {
        match second.try_acquire(&b).await.expect("an answer") {
            AcquireOutcome::Acquired(lease) => break lease,
            AcquireOutcome::Withheld { wait, .. }
            | AcquireOutcome::Held {
                expires_in: Some(wait),
                ..
            } => {
                tokio::time::sleep(wait.min(Duration::from_millis(200))).await;
            }
            other => {
                assert!(
                    deleted.elapsed() < 3 * LEASE,
                    "nobody leads again: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(
        deleted.elapsed() >= LEASE,
        "led again {:?} after the deleteall",
        deleted.elapsed()
    );
    // The follower sees the new holder.
    match follower.try_acquire(&f).await.expect("an answer") {
        AcquireOutcome::Held {
            leader: Some(leader),
            ..
        } => assert_eq!(leader.instance_id, "b"),
        other => panic!("the new holder was not seen: {other:?}"),
    }
    // The second deleteall, under the new holder, more than a lease after the first.
    assert!(second.renew(&b, &lease).await.is_ok());
    delete_all(&client, &path).await;
    match settled(&follower, &f).await {
        AcquireOutcome::Withheld { .. } => {}
        other => {
            panic!("the second deleteall was not withheld (b still trusts its lease): {other:?}")
        }
    }
}

/// `store`'s answer to `request` once it has queued again: a store whose own znode went
/// answers "held by nobody known, ask again" while it makes a new one.
async fn settled(store: &ZooKeeperLeaseStore, request: &LeaseRequest) -> AcquireOutcome {
    for _ in 0..10 {
        match store.try_acquire(request).await.expect("an answer") {
            AcquireOutcome::Held { leader: None, .. } => {}
            outcome => return outcome,
        }
    }
    panic!("no settled answer in ten calls")
}

/// Deletes `path` and everything under it, as `deleteall` does: again while contenders create
/// znodes in it meanwhile (`deleteall` is not atomic either).
async fn delete_all(client: &Client, path: &str) {
    for _ in 0..50 {
        for child in client.list_children(path).await.unwrap_or_default() {
            let _ = client.delete(&format!("{path}/{child}"), None).await;
        }
        match client.delete(path, None).await {
            Ok(()) | Err(ZkError::NoNode) => return,
            Err(ZkError::NotEmpty) => continue,
            Err(e) => panic!("delete {path}: {e}"),
        }
    }
    panic!("{path} kept filling up");
}

/// A stopped follower keeps its znode (its store lives on) but must not stall the queue when
/// its turn comes: its store takes it out of line within a lease, and the next contender leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_follower_does_not_stall_the_queue() {
    let zk = common::server().await;
    let (election, path) = election(&zk, "stopped-follower").await;
    let client = operator(&zk).await;
    let line = queue(&client, &path).await;
    let instance = |name: &str| {
        let client = &client;
        let znode = format!("{path}/{name}");
        async move {
            let (data, _) = client.get_data(&znode).await.expect("get data");
            // The format byte, the instance id's length (two bytes), the instance id.
            String::from_utf8_lossy(&data[3..3 + usize::from(data[2])]).into_owned()
        }
    };
    let second = instance(&line[1]).await;
    let third = instance(&line[2]).await;
    let next_in_line = election
        .contenders
        .iter()
        .find(|c| c.instance_id() == second)
        .expect("the contender next in line");
    next_in_line.stop().await.expect("stop a follower");
    let old = election.leader().leadership().expect("a term");
    election.leader().stop().await.expect("stop the leader");
    let stopped = Instant::now();
    let what = "stopped follower: the leader stopped";
    let (next, _) = election
        .next_term_since(&old, stopped, LEASE + SLACK, what)
        .await;
    assert_eq!(
        next.contender, third,
        "the next in line after the stopped one"
    );
    election.stop_and_check().await;
}

/// A graceful stop hands over through the successor's watch, without waiting for the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_hands_over_at_once() {
    let zk = common::server().await;
    let (election, _) = election(&zk, "graceful").await;
    let old = election.leader().leadership().expect("a term");
    election.leader().stop().await.expect("stop the leader");
    let stopped = Instant::now();
    let what = "graceful: the leader stopped";
    election
        .next_term_since(&old, stopped, LEASE / 2, what)
        .await;
    election.stop_and_check().await;
}

/// Znodes an operator wrote by hand, with nonsense in them, are an error, a held lease or a
/// wait, never a panic and never a lease for two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_written_znodes_are_answered_never_a_panic() {
    let zk = common::server().await;
    let name = unique_name("hand-written");
    let store = common::store(&zk, &name);
    store.connect().await.expect("connect");
    let path = store.path().to_owned();
    let client = operator(&zk).await;
    let request = LeaseRequest::new("a", LEASE);
    // A guard that does not parse (the election has none yet): withheld for a lease, then
    // taken.
    client
        .create(&format!("{path}/guard"), b"\x00nonsense", &persistent())
        .await
        .expect("write a broken guard");
    let started = Instant::now();
    let lease = loop {
        match store.try_acquire(&request).await.expect("an answer") {
            AcquireOutcome::Acquired(lease) => break lease,
            AcquireOutcome::Withheld { wait, reason } => {
                assert_eq!(reason, WithholdReason::RecordTouched);
                tokio::time::sleep(wait.min(Duration::from_millis(200))).await;
            }
            other => panic!("a broken guard answered {other:?}"),
        }
    };
    assert!(
        started.elapsed() >= LEASE,
        "a broken guard was taken after {:?}",
        started.elapsed()
    );
    // Garbage in a release marker, and names in the queue that are not contenders'.
    client
        .set_data(&format!("{path}/released"), b"\xff\xfe", None)
        .await
        .expect("write the release marker");
    for junk in ["c-", "c-x-1", "c-zz"] {
        let _ = client
            .create(&format!("{path}/{junk}"), b"\x01\xff", &persistent())
            .await;
    }
    let again = store.try_acquire(&request).await.expect("re-acquire");
    assert_eq!(again, AcquireOutcome::Acquired(lease.clone()));
    let leader = store.current_leader().await.expect("current leader");
    assert_eq!(leader.map(|l| l.instance_id).as_deref(), Some("a"));
    assert!(store.release(&request, &lease).await.expect("release"));
}

/// A leader whose session the ensemble expired (its server unreachable past the session
/// timeout) is told it lost the lease; another contender leads with a greater token, and the
/// old leader comes back as a follower on a new session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_session_expired_steps_down_and_rejoins() {
    let zk = common::server().await;
    let name = unique_name("expired");
    let (store, cut) = {
        let proxy = leader_election_test_support::FaultProxy::to_port(zk.port(0)).await;
        let store = builder(&format!("127.0.0.1:{}", proxy.port()), &name, "store")
            .build_store()
            .expect("valid configuration");
        (store, proxy)
    };
    let first_session = {
        store.connect().await.expect("connect");
        store.session_id().await.expect("a session")
    };
    let a =
        leader_election::LeaderElection::new(store, common::options("expired-a")).expect("options");
    let b = common::election(&zk, &name, "expired-b");
    let recorder = leader_election::testing::TermRecorder::new();
    recorder.attach(&a);
    recorder.attach(&b);
    a.start().await.expect("start");
    leader_election_test_support::eventually(Duration::from_secs(10), "a to lead", || {
        a.is_leader()
    })
    .await;
    b.start().await.expect("start");
    let old = a.leadership().expect("a term");
    cut.hang();
    leader_election_test_support::eventually(LEASE + SLACK, "a to step down", || !a.is_leader())
        .await;
    leader_election_test_support::eventually(LEASE + SLACK, "b to lead", || b.is_leader()).await;
    assert!(b.leadership().expect("a term").token() > old.token());
    cut.heal();
    leader_election_test_support::eventually_async(
        3 * LEASE,
        "a to follow b on a new session",
        || async {
            a.state()
                .leader
                .is_some_and(|l| l.instance_id == "expired-b")
                && a.store().session_id().await != Some(first_session)
        },
    )
    .await;
    a.stop().await.expect("stop");
    b.stop().await.expect("stop");
    recorder.assert_safe();
}

/// The session timeout the ensemble grants is checked: a server whose `maxSessionTimeout` is
/// below the lease is refused at connect, naming both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_shorter_than_the_lease_is_refused() {
    let zk = common::server().await;
    let mut options = common::options("long");
    // The fixture's servers grant at most 60 s.
    options.lease_duration = Duration::from_secs(120);
    options.renew_interval = Duration::from_secs(30);
    let store = leader_election_zookeeper::ZooKeeperLeaderElection::builder()
        .connect_string(zk.connect_string())
        .election(&unique_name("too-long"))
        .options(options)
        .build_store()
        .expect("valid configuration");
    let err = store
        .connect()
        .await
        .expect_err("a session shorter than the lease");
    let message = err.to_string();
    assert!(!err.is_retryable(), "{message}");
    assert!(
        message.contains("60s") && message.contains("120s"),
        "{message}"
    );
    // A request for a lease longer than the session the store has is refused too.
    let store = common::store(&zk, &unique_name("long-request"));
    store.connect().await.expect("connect");
    let err = store
        .try_acquire(&LeaseRequest::new("a", 2 * LEASE))
        .await
        .expect_err("a lease longer than the session");
    assert!(!err.is_retryable(), "{err}");
}

/// Five contenders whose stores outlive their elections, as in a process that starts its
/// election again after a stop or a crash: contender `c3-g1` runs on `c3`'s store (and
/// session). Returns them and the election's path.
async fn restartable(zk: &ZooKeeper, prefix: &str) -> (Contenders<ZooKeeperLeaseStore>, String) {
    let name = unique_name(prefix);
    let (connect, election) = (zk.connect_string(), name.clone());
    let stores = std::sync::Mutex::new(HashMap::<String, ZooKeeperLeaseStore>::new());
    let contenders = Contenders::start(
        5,
        Box::new(move |id| {
            let slot = id.split('-').next().unwrap_or(id).to_owned();
            let store = stores
                .lock()
                .expect("the stores")
                .entry(slot)
                .or_insert_with(|| {
                    builder(&connect, &election, id)
                        .build_store()
                        .expect("valid configuration")
                })
                .clone();
            LeaderElection::new(store, common::options(id)).expect("options")
        }),
    )
    .await;
    (contenders, format!("/leader-election/{name}"))
}

/// `deleteall` while contenders run, and the election's path made again before any contender
/// remade its release marker: the state a contender leaves when its acquisition is cut off (an
/// outcome unknown) between making the path and making the marker, or an operator's `create`
/// of the path. Once a new leader leads, a graceful stop still hands over at once (the
/// release is recorded, the marker made again), and a crash (the store left to give the lease
/// up) within about one lease, not two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_deleteall_handovers_are_as_fast_as_before() {
    let zk = common::server().await;
    let (mut election, path) = restartable(&zk, "deleteall-handover").await;
    let client = operator(&zk).await;
    let old = election.leader().leadership().expect("a term");
    zookeeper::delete_all(&client, &path)
        .await
        .expect("deleteall");
    client.mkdir(&path, &persistent()).await.expect("mkdir");
    let acted = Instant::now();
    let what = "deleteall: the operator";
    election
        .next_term_since(&old, acted, 2 * LEASE + SLACK, what)
        .await;
    assert_safe(&election.terms_trusting(&old));
    election.one_leader(LEASE + SLACK).await;
    election.followers_see_the_leader(LEASE + SLACK).await;

    // A graceful stop: the successor's watch, then the recorded release.
    let old = election.leader().leadership().expect("a term");
    let stopped_id = election.leader().instance_id().to_owned();
    election.leader().stop().await.expect("stop the leader");
    let stopped = Instant::now();
    let what = "graceful after deleteall";
    let (_, handover) = election
        .next_term_since(&old, stopped, 3 * LEASE, what)
        .await;
    assert!(
        handover <= Duration::from_millis(500),
        "a graceful stop after a deleteall handed over in {handover:?}"
    );
    // Started again, on the same store, as a new election.
    election
        .contenders
        .retain(|c| c.instance_id() != stopped_id);
    election.add(&format!("{stopped_id}-g1")).await;
    election.one_leader(LEASE + SLACK).await;
    election.followers_see_the_leader(LEASE + SLACK).await;

    // A crash: the store gives the lease up a lease after the last renewal, and records it.
    let old = election.drop_the_leader();
    let crashed = Instant::now();
    let what = "crash after deleteall";
    let (_, failover) = election
        .next_term_since(&old, crashed, 3 * LEASE, what)
        .await;
    assert!(
        failover <= LEASE + LEASE / 2,
        "a crash after a deleteall failed over in {failover:?} (lease {LEASE:?})"
    );
    election.stop_and_check().await;
}
