//! A whole etcd cluster's data lost under a running election: a single member killed, its data
//! directory wiped, and started again on the same port, so that revisions start again near 1.
//! The contenders recognise it (the revisions they are answered with went backwards), withhold
//! the lease for a lease (the old leader may still trust its term), and the next token is
//! greater than every earlier one: never two leaders, tokens keep increasing.

mod common;

use std::time::Duration;

use common::election;
use leader_election::store::WithholdReason;
use leader_election::testing::TermRecorder;
use leader_election::{ElectionEvent, LeaderElection};
use leader_election_etcd::EtcdLeaseStore;
use leader_election_test_support::{EtcdCluster, eventually, unique_name};
use tokio::time::Instant;

/// The lease of `fast_options`.
const LEASE: Duration = Duration::from_secs(2);

/// Waits for a term with a token above `token`, then hands the lease over `rounds` times (the
/// leader resigns and sits out a moment), and returns the token of the last term.
async fn handovers(
    elections: &[LeaderElection<EtcdLeaseStore>],
    recorder: &TermRecorder,
    mut token: u64,
    rounds: usize,
) -> u64 {
    for _ in 0..rounds {
        let term = recorder.term_after(token, LEASE * 3).await;
        token = term.token.get();
        // Every follower has read the key since the term began, so each remembers the holder.
        eventually(LEASE * 2, "every follower saw the leader", || {
            elections.iter().filter(|e| !e.is_leader()).all(|e| {
                e.state()
                    .leader
                    .and_then(|l| l.token)
                    .is_some_and(|t| t.get() == token)
            })
        })
        .await;
        let leader = elections
            .iter()
            .find(|e| e.instance_id() == term.contender)
            .expect("the leader is one of the contenders");
        let _ = leader.resign(Duration::from_millis(300)).await;
    }
    recorder.term_after(token, LEASE * 3).await.token.get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_member_never_gives_a_lower_token_or_a_second_leader() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("data-loss");
    let recorder = TermRecorder::new();
    let elections: Vec<LeaderElection<EtcdLeaseStore>> = (0..3)
        .map(|i| election(&etcd.endpoints(), &key, &format!("c{i}")))
        .collect();
    let mut events: Vec<_> = elections.iter().map(LeaderElection::subscribe).collect();
    recorder.start_all(&elections).await.unwrap();
    let before = handovers(&elections, &recorder, 0, 4).await;
    // Every follower remembers the last holder and its token.
    eventually(LEASE * 2, "every follower saw the last leader", || {
        elections.iter().filter(|e| !e.is_leader()).all(|e| {
            e.state()
                .leader
                .and_then(|l| l.token)
                .is_some_and(|t| t.get() == before)
        })
    })
    .await;

    let lost_at = Instant::now();
    assert!(etcd.kill(0));
    etcd.wipe(0);
    etcd.restart(0).await;
    eprintln!(
        "member wiped and back {:?} after the kill",
        lost_at.elapsed()
    );

    // The next term, whoever wins it: its token is above every earlier one.
    let terms_before = recorder.terms().len();
    eventually(LEASE * 4, "a leader after the data loss", || {
        recorder
            .terms()
            .iter()
            .skip(terms_before.saturating_sub(1))
            .any(|t| t.start > lost_at && t.end_reason.is_none())
    })
    .await;
    let after = recorder
        .terms()
        .into_iter()
        .find(|t| t.start > lost_at)
        .expect("a term after the data loss");
    eprintln!(
        "token {before} before the data loss, {} after; leader back {:?} after the kill",
        after.token,
        after.start.saturating_duration_since(lost_at)
    );
    assert!(
        after.token.get() > before,
        "token {} after the data loss, {before} before",
        after.token
    );
    // Later terms keep increasing too (the cluster's own revisions are still below `before`).
    handovers(&elections, &recorder, before, 2).await;
    for e in &elections {
        e.stop().await.unwrap();
    }
    recorder.assert_safe();
    // The contenders were told why they had to wait.
    let withheld = events.iter_mut().any(|events| {
        std::iter::from_fn(|| events.try_recv().ok()).any(|e| {
            matches!(
                e,
                ElectionEvent::LeaseWithheld {
                    reason: WithholdReason::BackendRestarted,
                    ..
                }
            )
        })
    });
    assert!(
        withheld,
        "no contender saw the lease withheld after the data loss"
    );
}
