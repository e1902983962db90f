//! Elections on a real Redis Cluster (6 nodes: 3 primaries, 3 replicas, on loopback): keys on
//! different slots and primaries (and their election records), graceful handover woken by
//! release notices, and the faults
//! of a cluster deployment while contenders run: a `CLUSTER FAILOVER` of the primary owning the
//! election's slot, the crash of that primary, and the resharding of that slot to another
//! primary.
//!
//! The tests share one cluster and take turns on it (a failover, a crash or a migration would
//! disturb the others).

mod common;

use leader_election::ElectionBuilder;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use common::{fast_options, prime, with_lease};
use leader_election::LeaderElection;
use leader_election::testing::{ConformanceOptions, TermRecorder, records_are_compare_and_set};
use leader_election_redis::{RedisLeaderElection, RedisLeaseStore};
use leader_election_test_support::bench;
use leader_election_test_support::redis::RedisCluster;
use leader_election_test_support::{eventually_async, unique_name};

type Election = LeaderElection<RedisLeaseStore>;

/// One test at a time on the shared cluster.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Long enough that a follower woken by anything but a release notice could not take over
/// within [`NOTICE_BOUND`]: it sleeps until the lease could expire.
const LEASE: Duration = Duration::from_secs(4);

/// A takeover faster than this after a release was woken by the release notice.
const NOTICE_BOUND: Duration = Duration::from_millis(500);

/// `n` contenders on `key`, with a [`LEASE`]-long lease, recorded by one recorder.
fn contenders(url: &str, key: &str, n: usize) -> (Vec<Election>, TermRecorder) {
    let recorder = TermRecorder::new();
    let elections: Vec<Election> = (0..n)
        .map(|i| {
            let builder = RedisLeaderElection::builder()
                .url(url)
                .key(key)
                .options(fast_options(&format!("c{i}")));
            with_lease(builder, LEASE).build().expect("build")
        })
        .collect();
    for e in &elections {
        recorder.attach(e);
    }
    (elections, recorder)
}

/// A graceful handover woken by the release notice: far sooner than the lease could expire.
async fn hand_over_by_notice(elections: &[Election], from: usize, what: &str) -> usize {
    let (next, took) = bench::hand_over(elections, from, LEASE * 3).await;
    assert!(
        took < NOTICE_BOUND,
        "{what}: took over after {took:?}, not woken by the release notice (lease {LEASE:?})"
    );
    next
}

/// The fence of a new replication history: the first lease granted on the new primary after
/// `since` (a failover or a migration completed) comes no sooner than one lease after the term
/// before it ended, whether that term was lost in the fault or released after it (then the
/// leader `at` hands over here). Returns who leads then.
async fn fenced_grant_after(
    elections: &[Election],
    recorder: &TermRecorder,
    at: usize,
    since: Instant,
    what: &str,
) -> usize {
    let fresh = |recorder: &TermRecorder| recorder.terms().iter().any(|t| t.start >= since);
    let leader = if fresh(recorder) {
        at
    } else {
        bench::hand_over(elections, at, LEASE * 3).await.0
    };
    // The recorder takes the new term from the election's events, which may come a moment
    // after the election says it leads (the test command runs many binaries at once).
    leader_election_test_support::eventually(
        Duration::from_secs(5),
        "the new term recorded",
        || fresh(recorder),
    )
    .await;
    let terms = recorder.terms();
    let i = terms
        .iter()
        .position(|t| t.start >= since)
        .expect("a term after the fault");
    let before = &terms[i - 1];
    let gap = terms[i].start.saturating_duration_since(before.end);
    println!("no leader for {gap:?} after {what} (the fence of a new replication history)");
    assert!(
        gap >= LEASE - Duration::from_millis(200),
        "a lease granted {gap:?} after the last term ended, after {what}: before the fence ended"
    );
    leader
}

async fn start_all(elections: &[Election]) {
    for e in elections {
        e.start().await.expect("start");
    }
}

async fn stop_all(elections: &[Election]) {
    for e in elections {
        e.stop().await.expect("stop");
    }
}

/// A fresh election key whose slot a primary other than those in `avoid` owns.
async fn key_on_another_primary(
    cluster: &RedisCluster,
    prefix: &str,
    avoid: &[String],
) -> (String, String) {
    for _ in 0..200 {
        let key = unique_name(prefix);
        let owner = cluster.owner_of(&format!("{{{key}}}:lease")).await;
        if !avoid.contains(&owner) {
            return (key, owner);
        }
    }
    panic!("no key on a primary other than {avoid:?} in 200 tries");
}

async fn cluster() -> Arc<RedisCluster> {
    RedisCluster::shared().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elections_on_keys_of_different_primaries_each_hand_over_by_release_notice() {
    let cluster = cluster().await;
    let _turn = TURN.lock().await;
    let url = cluster.url();
    let mut owners = Vec::new();
    let mut keys = Vec::new();
    for _ in 0..3 {
        let (key, owner) = key_on_another_primary(&cluster, "cluster-keys", &owners).await;
        owners.push(owner);
        keys.push(key);
    }
    let slots: Vec<u16> = {
        let mut slots = Vec::new();
        for key in &keys {
            slots.push(cluster.slot_of(key).await);
        }
        slots
    };
    println!("keys {keys:?} on slots {slots:?}, owned by {owners:?}");
    owners.sort();
    owners.dedup();
    assert_eq!(owners.len(), 3, "three keys on three primaries");

    for key in &keys {
        prime(&url, key).await;
        let (elections, recorder) = contenders(&url, key, 3);
        start_all(&elections).await;
        let mut at = bench::next_leader(&elections, None, Duration::from_secs(5)).await;
        for round in 0..3 {
            at = hand_over_by_notice(&elections, at, &format!("{key}, round {round}")).await;
        }
        stop_all(&elections).await;
        recorder.assert_safe();
        // The first term and three handovers (stopping them all may add one more).
        assert!(recorder.terms().len() >= 4, "{:?}", recorder.terms());
    }
    // The election record, one key of the election's slot, on each of the three primaries.
    for key in &keys {
        records_are_compare_and_set(
            common::store(&url, key).await,
            &ConformanceOptions::new(Duration::from_secs(1), Duration::from_millis(500)),
        )
        .await;
    }
}

/// Three contenders on a fresh key, one leading; then `fault` runs on the election's lease key
/// and answers what it did and when the new owner of the slot took over. Checks no overlap
/// and increasing tokens, a leader again, every contender reaching the cluster, the fence of
/// the new replication history, and a handover by release notice. Answers the contenders,
/// their recorder, who leads and the election key.
async fn through_fault<F, Fut>(
    cluster: &RedisCluster,
    prefix: &str,
    fault: F,
) -> (Vec<Election>, TermRecorder, usize, String)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = (String, Instant)>,
{
    let url = cluster.url();
    let key = unique_name(prefix);
    prime(&url, &key).await;
    let (elections, recorder) = contenders(&url, &key, 3);
    start_all(&elections).await;
    let first = bench::next_leader(&elections, None, Duration::from_secs(5)).await;
    let first_token = elections[first].leadership().expect("leading").token();

    let started = Instant::now();
    let (what, taken_over) = fault(format!("{{{key}}}:lease")).await;
    let again = bench::next_leader(&elections, None, Duration::from_secs(20)).await;
    println!(
        "{what}: the new owner took over {:?} after the fault began; the leader kept its \
         lease through it: {}",
        taken_over.saturating_duration_since(started),
        recorder.terms().len() == 1
    );
    recorder.assert_safe();
    assert!(elections[again].leadership().expect("leading").token() >= first_token);
    // Every contender's client has found the new owner (after a crash, fred reconnects)
    // before the leader is asked to release.
    for e in &elections {
        eventually_async(
            Duration::from_secs(10),
            "a contender reaching the cluster",
            || {
                let e = e.clone();
                async move { e.current_leader().await.is_ok() }
            },
        )
        .await;
    }
    let next = fenced_grant_after(&elections, &recorder, again, taken_over, &what).await;
    // Release notices still reach the followers.
    let next = hand_over_by_notice(&elections, next, &format!("after {what}")).await;
    (elections, recorder, next, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_of_the_slot_owner_keeps_one_leader_and_release_notices() {
    let cluster = &*cluster().await;
    let _turn = TURN.lock().await;
    let (elections, recorder, next, key) =
        through_fault(cluster, "cluster-failover", |lease_key| async move {
            let (old, new) = cluster
                .failover_owner_of(&lease_key)
                .await
                .expect("failover");
            (format!("the failover {old} -> {new}"), Instant::now())
        })
        .await;

    // Every subscriber's connection is to some primary: fail the other primaries over too, so
    // that each one's node has been demoted, then check that both of two followers are woken.
    let mut done = vec![cluster.owner_of(&key).await];
    for _ in 0..2 {
        let (other, _) = key_on_another_primary(cluster, "cluster-other", &done).await;
        let (_, new) = cluster.failover_owner_of(&other).await.expect("failover");
        done.push(new);
    }
    recorder.assert_safe();
    let next = if next == 2 {
        bench::hand_over(&elections, 2, LEASE * 3).await.0
    } else {
        next
    };
    elections[2].stop().await.expect("stop");
    let two = &elections[..2];
    let next = hand_over_by_notice(two, next, "after failing over every primary").await;
    hand_over_by_notice(two, next, "after failing over every primary, again").await;
    stop_all(&elections).await;
    recorder.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_the_election_slot_keeps_one_leader_and_release_notices() {
    let cluster = &*cluster().await;
    let _turn = TURN.lock().await;
    let (elections, recorder, next, _) =
        through_fault(cluster, "cluster-reshard", |lease_key| async move {
            let (from, to) = cluster
                .migrate_slot_elsewhere(&lease_key)
                .await
                .expect("migrate");
            assert_eq!(cluster.owner_of(&lease_key).await, to);
            (format!("the migration {from} -> {to}"), Instant::now())
        })
        .await;
    hand_over_by_notice(&elections, next, "after the migration, again").await;
    stop_all(&elections).await;
    recorder.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_of_the_slot_owner_keeps_one_leader_and_release_notices() {
    let cluster = &*cluster().await;
    let _turn = TURN.lock().await;
    let (elections, recorder, next, _) =
        through_fault(cluster, "cluster-crash", |lease_key| async move {
            // SIGKILL: the cluster promotes the replica after `cluster-node-timeout`.
            let (killed, promoted) = cluster.kill_owner_of(&lease_key).await.expect("kill");
            let taken_over = Instant::now();
            // The killed node rejoins as a replica of the promoted one (the other tests need
            // every primary to have a replica); nothing changes for the election.
            cluster.restart_node(&killed).await.expect("restart");
            (
                format!("the crash of {killed}, {promoted} promoted"),
                taken_over,
            )
        })
        .await;
    hand_over_by_notice(&elections, next, "after the crash, again").await;
    stop_all(&elections).await;
    recorder.assert_safe();
}
