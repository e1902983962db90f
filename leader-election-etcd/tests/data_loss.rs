//! A whole etcd cluster's data lost under a running election: a single member killed, its data
//! directory wiped, and started again on the same port, so that revisions start again near 1.
//! The contenders recognise it (the revisions they are answered with went backwards), withhold
//! the lease for a lease (the old leader may still trust its term), and the next token is
//! greater than every earlier one: never two leaders, tokens keep increasing. A version of the
//! election's record read before the loss writes nothing after it, even where the new
//! cluster's record reaches the same mod revision.

mod common;

use std::time::Duration;

use common::election;
use leader_election::store::{RecordVersion, WithholdReason};
use leader_election::testing::TermRecorder;
use leader_election::{ElectionEvent, LeaderElection, LeaseStore};
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

/// The mod revision a record version of this store names: its form is
/// `<cluster id>:<mod revision>:<write id>` (see the README).
fn mod_revision(version: &RecordVersion) -> i64 {
    version
        .as_str()
        .split(':')
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("a version of this store: {version}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_version_read_before_a_data_loss_writes_nothing_after_it() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("data-loss-record");
    let store = common::store(&etcd.endpoints(), &key);
    store.connect().await.unwrap();
    // Several writes, so that the record's mod revision is above a fresh cluster's first ones.
    let mut version = None;
    for i in 0..8 {
        let data = format!("old {i}");
        version = Some(
            store
                .write_record(version.as_ref(), data.as_bytes())
                .await
                .unwrap()
                .expect("written at the version it wrote"),
        );
    }
    let old = store.read_record().await.unwrap().expect("the old record");
    let old_revision = mod_revision(&old.version);

    assert!(etcd.kill(0));
    etcd.wipe(0);
    etcd.restart(0).await;

    // The new cluster's record, written until it reaches the old version's mod revision (each
    // write is the cluster's only one, so it gets there exactly), with other content.
    let deadline = Instant::now() + LEASE * 5;
    let mut version: Option<RecordVersion> = None;
    while version
        .as_ref()
        .is_none_or(|v| mod_revision(v) < old_revision)
    {
        assert!(
            Instant::now() < deadline,
            "no record written after the data loss"
        );
        match store.write_record(version.as_ref(), b"new").await {
            Ok(Some(written)) => version = Some(written),
            Ok(None) => panic!("the new cluster's record changed under its only writer"),
            // The member coming back: the store's connection may need another attempt.
            Err(err) => {
                eprintln!("writing the record after the data loss: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let new = version.expect("the new record");
    assert_eq!(
        mod_revision(&new),
        old_revision,
        "the new record passed the old one's mod revision"
    );
    eprintln!("old version {}, new version {new}", old.version);
    assert_ne!(new, old.version);
    // Expecting the old version: refused, with or without the store having seen the old
    // cluster.
    let newcomer = common::store(&etcd.endpoints(), &key);
    newcomer.connect().await.unwrap();
    for s in [&store, &newcomer] {
        assert_eq!(
            s.write_record(Some(&old.version), b"stale").await.unwrap(),
            None,
            "a version read before the data loss wrote after it"
        );
        let read = s.read_record().await.unwrap().expect("the new record");
        assert_eq!((read.version, read.data), (new.clone(), b"new".to_vec()));
    }
}
