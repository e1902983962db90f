//! An operator's hands on the election's keys, on a real etcd member: a deleted election key
//! withholds the lease while its holder's etcd lease lives (its holder key says so, even to a
//! process that never saw the key), the holder steps down at its next renewal and revokes its
//! lease, and a follower takes over at once. A deletion of every key (`del --prefix`) withholds
//! the lease from a contender that saw the holder while its etcd lease lives; only a process
//! that never saw it gets in at once. A graceful stop still hands over at once. Never two
//! leaders, tokens keep increasing. The election's record, attached to no lease, outlives the
//! deleted keys and every release; only `del --prefix` takes it too.

mod common;

use std::time::Duration;

use common::{election, store};
use leader_election::store::{AcquireOutcome, LeaseRequest, RenewOutcome, WithholdReason};
use leader_election::testing::TermRecorder;
use leader_election::{ElectionEvent, LeaderElection, LeaseStore};
use leader_election_etcd::EtcdLeaseStore;
use leader_election_test_support::one_leader;
use leader_election_test_support::{EtcdCluster, acquire, eventually, unique_name};
use tokio::time::Instant;

/// The lease of `fast_options`.
const LEASE: Duration = Duration::from_secs(2);

/// Waits until every follower among `elections` reports the term with `token` as its leader:
/// its store has read the key while that term's holder held it (a follower reads at least
/// once a lease).
async fn followers_saw<'a>(
    elections: impl Iterator<Item = &'a LeaderElection<EtcdLeaseStore>> + Clone,
    token: u64,
) {
    eventually(LEASE * 2, "every follower saw the leader", || {
        elections.clone().filter(|e| !e.is_leader()).all(|e| {
            e.state()
                .leader
                .and_then(|l| l.token)
                .is_some_and(|t| t.get() == token)
        })
    })
    .await;
}

/// After an operator deleted the keys: `b` on `contender` is withheld (the record was touched)
/// while `a`'s etcd lease lives; `a`'s holder learns at its next renewal, steps down and
/// revokes its lease; then `b` gets the lease at once, with a greater token.
async fn withheld_until_the_holder_steps_down(
    holder: &EtcdLeaseStore,
    a: &LeaseRequest,
    lease: &leader_election::store::Lease,
    contender: &EtcdLeaseStore,
    b: &LeaseRequest,
) {
    match contender.try_acquire(b).await.unwrap() {
        AcquireOutcome::Withheld { wait, reason } => {
            assert_eq!(reason, WithholdReason::RecordTouched);
            assert!(wait <= LEASE && wait > Duration::ZERO, "{wait:?}");
        }
        other => panic!("a deleted key was granted while its holder's lease lives: {other:?}"),
    }
    assert_eq!(holder.renew(a, lease).await.unwrap(), RenewOutcome::Lost);
    let next = acquire(contender, b).await;
    assert!(next.token > lease.token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_election_key_never_lets_a_second_leader_in() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("operator-del");
    let recorder = TermRecorder::new();
    let elections: Vec<LeaderElection<EtcdLeaseStore>> = (0..3)
        .map(|i| election(&etcd.endpoints(), &key, &format!("c{i}")))
        .collect();
    let mut events: Vec<_> = elections.iter().map(LeaderElection::subscribe).collect();
    recorder.start_all(&elections).await.unwrap();
    let renew = elections[0].options().renew_interval;
    let timeout = elections[0].options().operation_timeout();
    let mut token = 0;
    for round in 0..3 {
        recorder.term_after(token, LEASE * 2).await;
        token = recorder.current().expect("a leader").token.get();
        let deleted_at = Instant::now();
        assert_eq!(etcd.delete(&key).await.unwrap(), 1);
        let next = recorder.term_after(token, LEASE * 2).await.start;
        let took = next.saturating_duration_since(deleted_at);
        eprintln!("round {round}: new leader {took:?} after `etcdctl del` (lease {LEASE:?})");
        // Back as soon as the holder saw the deletion at its next renewal and revoked its
        // lease: well within a lease.
        assert!(
            took <= renew + timeout + Duration::from_millis(500),
            "leadership took {took:?} to come back"
        );
    }
    for e in &elections {
        e.stop().await.unwrap();
    }
    recorder.assert_safe();
    // The followers woke at the deletion and were told why they had to wait.
    let withheld = events.iter_mut().any(|events| {
        std::iter::from_fn(|| events.try_recv().ok()).any(|e| {
            matches!(
                e,
                ElectionEvent::LeaseWithheld {
                    reason: WithholdReason::RecordTouched,
                    ..
                }
            )
        })
    });
    assert!(withheld, "no follower saw the lease withheld");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_respects_a_deleted_key_until_its_holder_steps_down() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("operator-new");
    let holder = store(&etcd.endpoints(), &key);
    holder.connect().await.unwrap();
    let a = LeaseRequest::new("a", LEASE);
    let lease = acquire(&holder, &a).await;
    assert_eq!(etcd.delete(&key).await.unwrap(), 1);

    // A store that never saw the key: its holder key tells it the lease lives.
    let newcomer = store(&etcd.endpoints(), &key);
    newcomer.connect().await.unwrap();
    let b = LeaseRequest::new("b", LEASE);
    withheld_until_the_holder_steps_down(&holder, &a, &lease, &newcomer, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_saw_the_holder_waits_after_every_key_is_deleted() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("operator-prefix-seen");
    let holder = store(&etcd.endpoints(), &key);
    holder.connect().await.unwrap();
    let a = LeaseRequest::new("a", LEASE);
    let lease = acquire(&holder, &a).await;
    // A follower in another process reads the key while `a` holds it.
    let follower = store(&etcd.endpoints(), &key);
    follower.connect().await.unwrap();
    let b = LeaseRequest::new("b", LEASE);
    assert!(matches!(
        follower.try_acquire(&b).await.unwrap(),
        AcquireOutcome::Held { .. }
    ));
    // `del --prefix` takes the holder key too, but the follower remembers the holder's etcd
    // lease, which still lives: withheld.
    etcdctl_del_prefix(&etcd, &key).await;
    withheld_until_the_holder_steps_down(&holder, &a, &lease, &follower, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_every_key_never_lets_a_follower_that_saw_the_holder_in() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("operator-prefix");
    let recorder = TermRecorder::new();
    let elections: Vec<LeaderElection<EtcdLeaseStore>> = (0..3)
        .map(|i| election(&etcd.endpoints(), &key, &format!("c{i}")))
        .collect();
    recorder.start_all(&elections).await.unwrap();
    let renew = elections[0].options().renew_interval;
    let timeout = elections[0].options().operation_timeout();
    let mut token = 0;
    for round in 0..3 {
        recorder.term_after(token, LEASE * 2).await;
        token = recorder.current().expect("a leader").token.get();
        // Every follower has read the key since the term began.
        followers_saw(elections.iter(), token).await;
        let deleted_at = Instant::now();
        etcdctl_del_prefix(&etcd, &key).await;
        let next = recorder.term_after(token, LEASE * 3).await.start;
        let took = next.saturating_duration_since(deleted_at);
        eprintln!(
            "round {round}: new leader {took:?} after `etcdctl del --prefix` (lease {LEASE:?})"
        );
        // The followers wait for the old holder's etcd lease, which it revokes at its next
        // renewal: back within about a lease.
        assert!(
            took <= LEASE + renew + timeout,
            "leadership took {took:?} to come back"
        );
    }
    for e in &elections {
        e.stop().await.unwrap();
    }
    recorder.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_never_saw_the_holder_is_what_remains_after_every_key_is_deleted() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("operator-prefix-new");
    let holder = store(&etcd.endpoints(), &key);
    holder.connect().await.unwrap();
    let a = LeaseRequest::new("a", LEASE);
    let lease = acquire(&holder, &a).await;
    // `del --prefix` takes the holder key too: nothing in etcd says the lease was held, so a
    // process that never read the key while `a` held it gets the lease at once (the README
    // says so). The old holder steps down at its next renewal, and the token has moved on for
    // downstream stores.
    etcdctl_del_prefix(&etcd, &key).await;
    let newcomer = store(&etcd.endpoints(), &key);
    newcomer.connect().await.unwrap();
    let next = acquire(&newcomer, &LeaseRequest::new("b", LEASE)).await;
    assert!(next.token > lease.token);
    assert_eq!(holder.renew(&a, &lease).await.unwrap(), RenewOutcome::Lost);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwritten_key_ends_the_term_and_blocks_until_removed() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("operator-put");
    let holder = store(&etcd.endpoints(), &key);
    holder.connect().await.unwrap();
    let a = LeaseRequest::new("a", LEASE);
    let lease = acquire(&holder, &a).await;
    etcd.etcdctl(&["put", &key, "operator was here"])
        .await
        .unwrap();
    // Same create revision, but attached to no lease: no longer the holder's key.
    assert_eq!(holder.renew(&a, &lease).await.unwrap(), RenewOutcome::Lost);
    // A value this store did not write, attached to no lease: nobody takes it.
    let b = LeaseRequest::new("b", LEASE);
    assert!(matches!(
        holder.try_acquire(&b).await.unwrap(),
        AcquireOutcome::Held { leader: None, .. }
    ));
    assert!(holder.current_leader().await.is_err());
    assert_eq!(etcd.delete(&key).await.unwrap(), 1);
    let next = acquire(&holder, &b).await;
    assert!(next.token > lease.token);
}

async fn etcdctl_del_prefix(etcd: &EtcdCluster, key: &str) {
    let deleted = etcd.etcdctl(&["del", "--prefix", key]).await.unwrap();
    assert!(
        ["2", "3", "4"].contains(&deleted.trim()),
        "the election key and its holder key (and the released key, once written, and a \
         follower's claim of the succession): {deleted}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_names_its_lease_and_lets_in_only_its_own_followers() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("operator-released");
    let [first, second, third] = std::array::from_fn(|_| store(&etcd.endpoints(), &key));
    for s in [&first, &second, &third] {
        s.connect().await.unwrap();
    }
    let a = LeaseRequest::new("a", LEASE);
    let b = LeaseRequest::new("b", LEASE);
    let c = LeaseRequest::new("c", LEASE);
    let lease_a = acquire(&first, &a).await;
    // `b` reads the key while `a` holds it, so it remembers `a`'s etcd lease.
    assert!(matches!(
        second.try_acquire(&b).await.unwrap(),
        AcquireOutcome::Held { .. }
    ));
    let a_etcd_lease = lease_of(&etcd, &key).await.expect("a's key");
    // `a` releases before any renewal read `b`'s claim: one transaction deletes both keys and
    // names its etcd lease in the released key, so `b` takes the lease at once.
    assert!(first.release(&a, &lease_a).await.unwrap());
    let named = etcd
        .etcdctl(&["get", "--print-value-only", first.released_key()])
        .await
        .unwrap();
    assert_eq!(
        named.trim().parse::<i64>().ok(),
        Some(a_etcd_lease),
        "{named:?}"
    );
    let lease_b = acquire(&second, &b).await;
    assert!(lease_b.token > lease_a.token);
    assert!(matches!(
        third.try_acquire(&c).await.unwrap(),
        AcquireOutcome::Held { .. }
    ));
    // An operator deletes `b`'s two keys but leaves the released key, which names `a`'s lease,
    // not `b`'s: `c` is withheld while `b`'s etcd lease lives.
    for k in [second.key(), second.holder_key()] {
        etcd.etcdctl(&["del", k]).await.unwrap();
    }
    withheld_until_the_holder_steps_down(&second, &b, &lease_b, &third, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contender_sharing_the_holders_store_respects_a_deleted_key() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("operator-shared");
    let shared = store(&etcd.endpoints(), &key);
    shared.connect().await.unwrap();
    let a = LeaseRequest::new("a", LEASE);
    let lease = acquire(&shared, &a).await;
    assert_eq!(etcd.delete(&key).await.unwrap(), 1);
    // The holder's etcd lease was granted by this very store, but for a's candidacy: b must
    // not take it for its own and give it up.
    let b = LeaseRequest::new("b", LEASE);
    assert!(matches!(
        shared.try_acquire(&b).await.unwrap(),
        AcquireOutcome::Withheld {
            reason: WithholdReason::RecordTouched,
            ..
        }
    ));
    assert_eq!(shared.renew(&a, &lease).await.unwrap(), RenewOutcome::Lost);
    let next = acquire(&shared, &b).await;
    assert!(next.token > lease.token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_still_hands_over_at_once() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("operator-stop");
    let recorder = TermRecorder::new();
    let elections: Vec<LeaderElection<EtcdLeaseStore>> = (0..4)
        .map(|i| election(&etcd.endpoints(), &key, &format!("c{i}")))
        .collect();
    recorder.start_all(&elections).await.unwrap();
    let mut running: Vec<&LeaderElection<EtcdLeaseStore>> = elections.iter().collect();
    let mut token = 0;
    for round in 0..3 {
        recorder.term_after(token, LEASE * 2).await;
        token = recorder.current().expect("a leader").token.get();
        // The followers have read the key, and remember the holder's etcd lease: its release
        // must not make them wait for it.
        followers_saw(running.iter().copied(), token).await;
        let leader = one_leader(&running, LEASE).await;
        let stopped_at = Instant::now();
        running.remove(leader).stop().await.unwrap();
        let next = recorder.term_after(token, LEASE).await.start;
        let took = next.saturating_duration_since(stopped_at);
        eprintln!("round {round}: new leader {took:?} after a graceful stop (lease {LEASE:?})");
        assert!(took < LEASE / 2, "a graceful handover took {took:?}");
    }
    for e in running {
        e.stop().await.unwrap();
    }
    recorder.assert_safe();
}

/// The etcd lease the key `key` is attached to (0 for none), or `None` when it does not exist.
async fn lease_of(etcd: &EtcdCluster, key: &str) -> Option<i64> {
    let out = etcd.etcdctl(&["get", key, "-w", "json"]).await.unwrap();
    let json: serde_json::Value = serde_json::from_str(&out).expect("etcdctl's json");
    let kv = json["kvs"].as_array()?.first()?.clone();
    Some(
        kv.get("lease")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_outlives_deleted_keys_and_releases() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("operator-record");
    let holder = store(&etcd.endpoints(), &key);
    holder.connect().await.unwrap();
    assert_eq!(holder.record_key(), format!("{key}/record"));
    let v1 = holder
        .write_record(None, b"ran: 1")
        .await
        .unwrap()
        .expect("the first record");
    let a = LeaseRequest::new("a", LEASE);
    let lease_a = acquire(&holder, &a).await;
    // At `<key>/record`, readable with etcdctl, attached to no lease (the election key is).
    let value = etcd
        .get(holder.record_key())
        .await
        .unwrap()
        .expect("the record key");
    assert!(
        value.starts_with("le1 ") && value.ends_with("\nran: 1"),
        "{value:?}"
    );
    assert_eq!(lease_of(&etcd, holder.record_key()).await, Some(0));
    assert_ne!(lease_of(&etcd, holder.key()).await, Some(0));

    // An operator deletes the election key and its holder key: the holder steps down, the
    // record stays as it was.
    for k in [holder.key(), holder.holder_key()] {
        assert_eq!(etcd.delete(k).await.unwrap(), 1, "{k}");
    }
    assert_eq!(
        holder.renew(&a, &lease_a).await.unwrap(),
        RenewOutcome::Lost
    );
    let read = holder.read_record().await.unwrap().expect("the record");
    assert_eq!((&read.version, read.data.as_slice()), (&v1, &b"ran: 1"[..]));

    // Another process takes the lease, writes the record and releases: the record stays, for
    // everybody, at the version its write answered.
    let other = store(&etcd.endpoints(), &key);
    other.connect().await.unwrap();
    let b = LeaseRequest::new("b", LEASE);
    let lease_b = acquire(&other, &b).await;
    assert!(lease_b.token > lease_a.token);
    let v2 = other
        .write_record(Some(&v1), b"ran: 2")
        .await
        .unwrap()
        .expect("written at the version read");
    assert!(other.release(&b, &lease_b).await.unwrap());
    for s in [&holder, &other] {
        let read = s.read_record().await.unwrap().expect("the record");
        assert_eq!((&read.version, read.data.as_slice()), (&v2, &b"ran: 2"[..]));
    }
    assert_eq!(
        holder.write_record(Some(&v1), b"stale").await.unwrap(),
        None
    );
    // The lease is free and anybody takes it at once: the record is no part of its state.
    let lease_a = acquire(&holder, &a).await;
    assert!(lease_a.token > lease_b.token);
    assert_eq!(lease_of(&etcd, holder.record_key()).await, Some(0));

    // `del --prefix <key>` takes the record too (the README says so): it is gone, and a write
    // expecting the version read is refused.
    etcd.etcdctl(&["del", "--prefix", &key]).await.unwrap();
    assert_eq!(holder.read_record().await.unwrap(), None);
    assert_eq!(
        holder.write_record(Some(&v2), b"after").await.unwrap(),
        None
    );
}
