//! A three-member etcd cluster losing members under running elections: the member a leader
//! talks to, the Raft leader, a minority killed and restarted. Never two leaders (the one
//! shared checker), tokens strictly increase also across member crashes (the create revision
//! is replicated by Raft before it is answered), and leadership stays or comes back within
//! about one lease. A member that falls behind and delivers a watch event late never makes a
//! follower forget the holder it saw.

mod common;

use leader_election::ElectionBuilder;
use std::time::Duration;

use common::builder;
use leader_election::store::{AcquireOutcome, LeaseRequest, RenewOutcome, WithholdReason};
use leader_election::testing::TermRecorder;
use leader_election::{LeaderElection, LeaseStore};
use leader_election_etcd::EtcdLeaseStore;
use leader_election_etcd::etcd_client::{Client, DeleteOptions};
use leader_election_test_support::{EtcdCluster, eventually, eventually_async, lazy, unique_name};
use leader_election_test_support::{one_leader, token};
use tokio::time::Instant;

/// The lease of these tests: longer than etcd's slowest Raft leader election with its default
/// timing (an election timeout of 1 s, randomized up to 2 s), so that a term can survive the
/// loss of the Raft leader. With etcd's shortest lease (2 s) it may not: the term then ends at
/// its deadline, safely, and the next begins once the new Raft leader expires the old etcd
/// lease (its TTL plus an election timeout after it took over). The same happens when the
/// leader gives up after `max_retry_attempts` failed renewals: these tests allow ten.
const LEASE: Duration = Duration::from_secs(4);

/// How much longer than a lease an election may stay without a leader when the Raft leader
/// dies: a new Raft leader is elected within up to two election timeouts (1 s each with etcd's
/// defaults, randomized), and it extends every etcd lease by one more.
const RAFT_TAKEOVER: Duration = Duration::from_secs(3);

/// Three contenders of `key` on every member of `etcd`, started, recorded.
async fn contenders(
    etcd: &EtcdCluster,
    key: &str,
) -> (Vec<LeaderElection<EtcdLeaseStore>>, TermRecorder) {
    let recorder = TermRecorder::new();
    let elections: Vec<_> = (0..3)
        .map(|i| {
            builder(&etcd.endpoints(), key, &format!("c{i}"))
                .lease_duration(LEASE)
                .renew_interval(LEASE / 4)
                // A Raft leader election fails every request for up to about two election
                // timeouts: keep retrying until the deadline rather than give up after three.
                .max_retry_attempts(10)
                .build()
                .unwrap()
        })
        .collect();
    recorder.start_all(&elections).await.unwrap();
    (elections, recorder)
}

fn refs(elections: &[LeaderElection<EtcdLeaseStore>]) -> Vec<&LeaderElection<EtcdLeaseStore>> {
    elections.iter().collect()
}

/// Watches `elections` for `period`: panics if nobody leads for longer than `gap`. Returns
/// the longest time without a leader.
async fn leadership_holds(
    elections: &[LeaderElection<EtcdLeaseStore>],
    period: Duration,
    gap: Duration,
) -> Duration {
    let end = Instant::now() + period;
    let mut leaderless_since: Option<Instant> = None;
    let mut longest = Duration::ZERO;
    while Instant::now() < end {
        let leaders = elections.iter().filter(|e| e.is_leader()).count();
        assert!(leaders <= 1, "{leaders} leaders");
        match (leaders, leaderless_since) {
            (0, None) => leaderless_since = Some(Instant::now()),
            (0, Some(since)) => {
                assert!(
                    since.elapsed() <= gap,
                    "nobody led for {:?}",
                    since.elapsed()
                );
            }
            (_, Some(since)) => {
                longest = longest.max(since.elapsed());
                leaderless_since = None;
            }
            _ => {}
        }
        // The period watched is the observation: a sample every 10 ms.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    longest
}

async fn stop_all(elections: &[LeaderElection<EtcdLeaseStore>]) {
    for e in elections {
        e.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_the_leader_talks_to_dies_and_its_client_moves_on() {
    let etcd = EtcdCluster::start(3).await;
    let key = unique_name("member-killed");
    let (elections, recorder) = contenders(&etcd, &key).await;
    let leader = one_leader(&refs(&elections), Duration::from_secs(5)).await;
    let first_token = token(&elections[leader]);
    // A member that is not the Raft leader: only the clients lose their connection to it (the
    // leader's client balances its requests over all three, so it talks to this one too).
    let raft_leader = etcd.raft_leader().await.expect("a Raft leader");
    let victim = (0..3).find(|&m| m != raft_leader).unwrap_or_default();
    assert!(etcd.kill(victim));
    // The leader keeps leading: its renewals move to the two members left, within its lease.
    let longest = leadership_holds(&elections, LEASE * 2, Duration::ZERO).await;
    assert_eq!(longest, Duration::ZERO);
    assert!(elections[leader].is_leader(), "the leader lost its term");
    assert_eq!(token(&elections[leader]), first_token);
    assert_eq!(recorder.terms().len(), 1, "{:?}", recorder.terms());
    etcd.restart(victim).await;
    // A graceful handover on the healed cluster still works, with a greater token.
    elections[leader].stop().await.unwrap();
    let next = one_leader(&refs(&elections), Duration::from_secs(2)).await;
    assert!(token(&elections[next]) > first_token);
    stop_all(&elections).await;
    recorder.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raft_leader_killed_mid_run_never_makes_two_leaders() {
    let etcd = EtcdCluster::start(3).await;
    let key = unique_name("raft-leader-killed");
    let (elections, recorder) = contenders(&etcd, &key).await;
    let leader = one_leader(&refs(&elections), Duration::from_secs(5)).await;
    let first_token = token(&elections[leader]);
    for round in 0..2 {
        let raft_leader = etcd.raft_leader().await.expect("a Raft leader");
        let killed_at = Instant::now();
        assert!(etcd.kill(raft_leader));
        // The members left elect a new Raft leader within about an election timeout (1 s);
        // meanwhile writes wait. The election's leader keeps its term if a renewal gets
        // through before its deadline. Else its term ends at that deadline, but the etcd lease
        // lives on: a new Raft leader extends every lease to its TTL plus an election timeout
        // from when it took over, so a contender takes over up to that much after the kill.
        let longest = leadership_holds(&elections, LEASE * 2, LEASE + RAFT_TAKEOVER).await;
        let ends: Vec<_> = recorder.terms().iter().map(|t| t.end_reason).collect();
        eprintln!(
            "round {round}: Raft leader killed; longest leaderless gap {longest:?}, term ends {ends:?}"
        );
        recorder.assert_safe();
        one_leader(&refs(&elections), Duration::from_secs(1)).await;
        etcd.restart(raft_leader).await;
        eprintln!("round {round}: member back after {:?}", killed_at.elapsed());
    }
    let now = one_leader(&refs(&elections), Duration::from_secs(1)).await;
    assert!(token(&elections[now]) >= first_token);
    stop_all(&elections).await;
    recorder.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raft_leader_cut_off_its_peers_never_makes_two_leaders() {
    raft_leader_cut_off(EtcdCluster::start_partitionable(3).await).await;
}

/// The same with every member in a network namespace of its own, and every packet between
/// the Raft leader and the others dropped both ways by nftables (no reset, no error), as a real
/// partition does; its clients still reach it. Needs root, `ip` and `nft` (required by the
/// test command as root); elsewhere it says why and passes.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raft_leader_partitioned_from_its_peers_never_makes_two_leaders() {
    let Some(lab) = leader_election_test_support::netns::NetLab::for_test() else {
        return;
    };
    raft_leader_cut_off(EtcdCluster::start_in_lab(3, &lab).await).await;
}

/// Not a crash: the Raft leader runs on and its clients still reach it, but its peers no
/// longer hear it. The others elect another Raft leader; the cut member's writes wait or
/// fail, and the election keeps one leader throughout, then hands over with a greater token
/// once healed.
async fn raft_leader_cut_off(etcd: EtcdCluster) {
    let key = unique_name("raft-leader-cut");
    let (elections, recorder) = contenders(&etcd, &key).await;
    let leader = one_leader(&refs(&elections), Duration::from_secs(5)).await;
    let first_token = token(&elections[leader]);
    let cut = etcd.raft_leader().await.expect("a Raft leader");
    assert!(etcd.cut_from_peers(cut, true));
    eventually_async(Duration::from_secs(10), "another Raft leader", || async {
        etcd.raft_leader().await.is_some_and(|l| l != cut)
    })
    .await;
    let longest = leadership_holds(&elections, LEASE * 2, LEASE + RAFT_TAKEOVER).await;
    eprintln!("Raft leader cut off its peers: longest leaderless gap {longest:?}");
    recorder.assert_safe();
    assert!(etcd.cut_from_peers(cut, false));
    etcd.wait_ready().await;
    let now = one_leader(&refs(&elections), LEASE * 2).await;
    let now_token = token(&elections[now]);
    assert!(now_token >= first_token);
    // A graceful handover on the healed cluster still works, with a greater token.
    elections[now].stop().await.unwrap();
    let next = one_leader(&refs(&elections), Duration::from_secs(2)).await;
    assert!(token(&elections[next]) > now_token);
    stop_all(&elections).await;
    recorder.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_keep_increasing_while_a_minority_is_down_and_after_it_restarts() {
    let etcd = EtcdCluster::start(3).await;
    let key = unique_name("minority");
    let (elections, recorder) = contenders(&etcd, &key).await;
    one_leader(&refs(&elections), Duration::from_secs(5)).await;
    let mut handovers = Vec::new();
    let mut handover = async |elections: &[LeaderElection<EtcdLeaseStore>]| {
        let leader = one_leader(&refs(elections), Duration::from_secs(5)).await;
        let before = token(&elections[leader]);
        let terms = recorder.terms().len();
        let stopped = Instant::now();
        elections[leader].stop().await.unwrap();
        eventually(
            Duration::from_secs(3),
            lazy(|| format!("a successor: {:?}", recorder.terms())),
            || recorder.terms().len() > terms && recorder.current().is_some(),
        )
        .await;
        handovers.push(stopped.elapsed());
        let next = one_leader(&refs(elections), Duration::from_secs(1)).await;
        assert!(
            token(&elections[next]) > before,
            "the token did not increase"
        );
        elections[leader].start().await.unwrap();
    };
    handover(&elections).await;
    // A minority (one of three) crashes, the Raft leader among them for the second member.
    for member in [0, 1] {
        let victim = if member == 0 {
            let raft_leader = etcd.raft_leader().await.expect("a Raft leader");
            (0..3).find(|&m| m != raft_leader).unwrap_or_default()
        } else {
            etcd.raft_leader().await.expect("a Raft leader")
        };
        assert!(etcd.kill(victim));
        etcd.wait_ready().await;
        for _ in 0..3 {
            handover(&elections).await;
        }
        etcd.restart(victim).await;
        for _ in 0..2 {
            handover(&elections).await;
        }
    }
    stop_all(&elections).await;
    recorder.assert_safe();
    let slowest = handovers.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{} handovers across member crashes, slowest {slowest:?}",
        handovers.len()
    );
}

/// `call` until it answers, at most five times: what the core does with a retryable error.
async fn retried<T, F, Fut>(mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = leader_election::Result<T>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        match call().await {
            Ok(value) => return value,
            Err(err) if err.is_retryable() && attempts < 5 => {
                eprintln!("retrying after: {err}");
            }
            Err(err) => panic!("after {attempts} attempts: {err}"),
        }
    }
}

/// A follower's watch on a member that fell behind delivers the deletion of an earlier
/// holder's key after the follower read the current holder: the follower keeps remembering the
/// current holder's etcd lease (the one with the higher mod revision), so that a deletion of
/// every key (`del --prefix`) still withholds the lease from it while that holder's lease
/// lives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_watch_event_never_replaces_the_current_holder_a_follower_saw() {
    let etcd = EtcdCluster::start(3).await;
    let key = unique_name("late-watch");
    let raft_leader = etcd.raft_leader().await.expect("a Raft leader");
    let (slow, other) = match raft_leader {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    };
    let lease = Duration::from_secs(2);
    // The follower talks to `slow` (watch and requests): `other` is down while it connects.
    assert!(etcd.kill(other));
    let follower = builder(
        &[etcd.endpoint(slow), etcd.endpoint(other)],
        &key,
        "follower",
    )
    .build_store()
    .unwrap();
    follower.connect().await.unwrap();
    etcd.restart(other).await;

    // Holders on the Raft leader.
    let holders = builder(&[etcd.endpoint(raft_leader)], &key, "holders")
        .build_store()
        .unwrap();
    holders.connect().await.unwrap();
    let a = LeaseRequest::new("a", lease);
    let AcquireOutcome::Acquired(a_lease) = holders.try_acquire(&a).await.unwrap() else {
        panic!("a should acquire");
    };
    let f = LeaseRequest::new("f", lease);
    assert!(matches!(
        follower.try_acquire(&f).await.unwrap(),
        AcquireOutcome::Held { .. }
    ));

    // `slow` stalls: the follower's next request times out there and it moves to `other`;
    // its watch stays on `slow`, which delivers nothing.
    assert!(etcd.pause(slow));
    let _ = follower.current_leader().await;
    assert!(holders.release(&a, &a_lease).await.unwrap());
    let b = LeaseRequest::new("b", lease);
    let AcquireOutcome::Acquired(b_lease) = holders.try_acquire(&b).await.unwrap() else {
        panic!("b should acquire");
    };
    assert!(b_lease.token > a_lease.token);
    // The follower reads b's key on `other` (retried as the core would: under load, the read
    // may time out once while the follower's pool leaves `slow`, or while `other`, restarted,
    // catches up).
    match retried(|| follower.try_acquire(&f)).await {
        AcquireOutcome::Held { leader, .. } => {
            assert_eq!(leader.unwrap().token, Some(b_lease.token));
        }
        other => panic!("b holds the lease: {other:?}"),
    }
    // `slow` catches up: its watch now delivers the deletion of a's key, late.
    let mut released = follower.release_notifications().expect("notifications");
    released.mark_seen();
    assert!(etcd.resume(slow));
    tokio::time::timeout(Duration::from_secs(10), released.released())
        .await
        .expect("the late deletion within 10 s");

    // `slow` stalls again, so that the follower's watch does not deliver what follows before
    // its next read (on `other`). Every key deleted while b holds the lease, as
    // `etcdctl del --prefix` does: the follower must not take it.
    assert!(etcd.pause(slow));
    let mut client = Client::connect([etcd.endpoint(raft_leader)], None)
        .await
        .unwrap();
    let deleted = client
        .delete(key.as_str(), Some(DeleteOptions::new().with_prefix()))
        .await
        .unwrap();
    // The election key, its holder key, the released key a's release wrote and the
    // follower's claim of the succession.
    assert_eq!(deleted.deleted(), 4);
    match follower.try_acquire(&f).await.unwrap() {
        AcquireOutcome::Withheld { reason, .. } => {
            assert_eq!(reason, WithholdReason::RecordTouched);
        }
        other => panic!("the lease was granted while b's etcd lease lives: {other:?}"),
    }
    assert_eq!(
        holders.renew(&b, &b_lease).await.unwrap(),
        RenewOutcome::Lost
    );
    assert!(etcd.resume(slow));
}
