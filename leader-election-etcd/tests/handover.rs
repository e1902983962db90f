//! Handovers in the release itself, on a real etcd member: a follower answered `Held` claims
//! the succession in `<key>/next`, on an etcd lease its store keeps alive; the leader's renewal
//! reads the claim and its release puts the election key naming the claimant on the claim's
//! lease. The claimant is woken and acquires with a greater token without a request (its term
//! counts from its store's last keep-alive), and nobody else gets in meanwhile. A claim from
//! before the term is never handed the lease; a claimant that stops asking lets its claim go.

mod common;

use std::time::Duration;

use common::store;
use etcd_client::Client;
use leader_election::LeaseStore;
use leader_election::store::{AcquireOutcome, LeaseRequest, RenewOutcome};
use leader_election_etcd::EtcdLeaseStore;
use leader_election_test_support::{EtcdCluster, acquire, eventually_async, unique_name};

const LEASE: Duration = Duration::from_secs(2);

async fn held_by(store: &EtcdLeaseStore, request: &LeaseRequest, leader: &str) {
    match store.try_acquire(request).await.expect("try_acquire") {
        AcquireOutcome::Held {
            leader: Some(info), ..
        } => assert_eq!(info.instance_id, leader),
        other => panic!("{leader} holds the lease: {other:?}"),
    }
}

/// `key`'s create revision, etcd lease and value, read with a client of its own; `None` when
/// absent.
async fn key_of(etcd: &EtcdCluster, key: &str) -> Option<(i64, i64, String)> {
    let mut client = Client::connect(etcd.endpoints(), None).await.unwrap();
    let response = client.get(key, None).await.unwrap();
    let kv = response.kvs().first()?;
    Some((
        kv.create_revision(),
        kv.lease(),
        String::from_utf8_lossy(kv.value()).into_owned(),
    ))
}

/// `N` stores of the election `key`, connected.
async fn connected<const N: usize>(etcd: &EtcdCluster, key: &str) -> [EtcdLeaseStore; N] {
    let stores = std::array::from_fn(|_| store(&etcd.endpoints(), key));
    for s in &stores {
        s.connect().await.unwrap();
    }
    stores
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_hands_the_lease_to_the_claimant_in_one_transaction() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("handover");
    let [leader_store, follower_store, other_store] = connected(&etcd, &key).await;
    let a = LeaseRequest::new("a", LEASE).with_metadata(Some(b"a's".to_vec()));
    let f = LeaseRequest::new("f", LEASE).with_metadata(Some(b"f's".to_vec()));
    let o = LeaseRequest::new("o", LEASE);
    let a_lease = acquire(&leader_store, &a).await;
    let (create, a_etcd_lease, _) = key_of(&etcd, &key).await.expect("a's key");

    // f is answered `Held` and claims the succession; o, answered `Held` after it, does not
    // replace the claim.
    held_by(&follower_store, &f, "a").await;
    held_by(&other_store, &o, "a").await;
    let claim = etcd
        .get(follower_store.next_key())
        .await
        .unwrap()
        .expect("f's claim");
    assert!(claim.contains(&f.lease_id), "the claim {claim:?} names f");
    let (_, claim_lease, _) = key_of(&etcd, follower_store.next_key())
        .await
        .expect("f's claim");
    assert_ne!(claim_lease, 0, "the claim is attached to f's etcd lease");
    // a's renewal reads the claim; its release hands the lease over.
    assert_eq!(
        leader_store.renew(&a, &a_lease).await.unwrap(),
        RenewOutcome::Renewed
    );
    let mut woken = follower_store.release_notifications().unwrap();
    woken.mark_seen();
    assert!(leader_store.release(&a, &a_lease).await.unwrap());
    tokio::time::timeout(Duration::from_secs(5), woken.released())
        .await
        .expect("the claimant woken by the handover");

    // The key was not deleted: same create revision, now on the claim's etcd lease, naming f.
    let (create_after, lease_after, value) = key_of(&etcd, &key).await.expect("f's key");
    assert_eq!((create_after, lease_after), (create, claim_lease));
    assert_ne!(lease_after, a_etcd_lease);
    assert!(value.contains(&f.lease_id), "the key {value:?} names f");
    assert_eq!(etcd.get(follower_store.next_key()).await.unwrap(), None);
    // Nobody but f gets in; f acquires with a greater token and its own metadata.
    held_by(&other_store, &o, "f").await;
    let f_lease = acquire(&follower_store, &f).await;
    assert!(f_lease.token > a_lease.token);
    // Without a request: the term counts from the store's last keep-alive of the claim.
    assert!(
        f_lease.extended_at.is_some(),
        "f's acquisition was not the handed-over key's"
    );
    let leader = other_store
        .current_leader()
        .await
        .unwrap()
        .expect("f leads");
    assert_eq!(
        (leader.instance_id.as_str(), leader.token, leader.metadata),
        ("f", Some(f_lease.token), Some(b"f's".to_vec()))
    );
    // a's term is over: its renewal and a second release change nothing.
    assert_eq!(
        leader_store.renew(&a, &a_lease).await.unwrap(),
        RenewOutcome::Lost
    );
    assert!(!leader_store.release(&a, &a_lease).await.unwrap());
    // f renews (keeping a's former etcd lease alive) and hands over in turn, to o.
    assert_eq!(
        follower_store.renew(&f, &f_lease).await.unwrap(),
        RenewOutcome::Renewed
    );
    held_by(&other_store, &o, "f").await;
    assert_eq!(
        follower_store.renew(&f, &f_lease).await.unwrap(),
        RenewOutcome::Renewed
    );
    assert!(follower_store.release(&f, &f_lease).await.unwrap());
    let o_lease = acquire(&other_store, &o).await;
    assert!(o_lease.token > f_lease.token);
    // o's release, with no claim, deletes the keys: the lease is free.
    assert!(other_store.release(&o, &o_lease).await.unwrap());
    assert_eq!(key_of(&etcd, &key).await, None);
    let a2 = LeaseRequest::new("a", LEASE);
    let a2_lease = acquire(&leader_store, &a2).await;
    assert!(a2_lease.token > o_lease.token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_from_an_earlier_term_is_never_handed_the_lease() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("handover-stale");
    let [first, second, third] = connected(&etcd, &key).await;
    // a leads and f claims; a's release, before any renewal read the claim, deletes the keys.
    let a = LeaseRequest::new("a", LEASE);
    let f = LeaseRequest::new("f", LEASE);
    let a_lease = acquire(&first, &a).await;
    held_by(&second, &f, "a").await;
    assert!(first.release(&a, &a_lease).await.unwrap());
    assert_eq!(key_of(&etcd, &key).await, None);
    // b leads a new term; f's claim, from a's term, is stale: b's release must not hand over
    // to it, even once its renewal read it.
    let b = LeaseRequest::new("b", LEASE);
    let b_lease = acquire(&third, &b).await;
    assert!(etcd.get(second.next_key()).await.unwrap().is_some());
    assert_eq!(
        third.renew(&b, &b_lease).await.unwrap(),
        RenewOutcome::Renewed
    );
    assert!(third.release(&b, &b_lease).await.unwrap());
    assert_eq!(key_of(&etcd, &key).await, None, "handed to a stale claim");
    // f, answered `Held` during c's term, claims again; c's release hands over to it.
    let c = LeaseRequest::new("c", LEASE);
    let c_lease = acquire(&first, &c).await;
    held_by(&second, &f, "c").await;
    assert_eq!(
        first.renew(&c, &c_lease).await.unwrap(),
        RenewOutcome::Renewed
    );
    assert!(first.release(&c, &c_lease).await.unwrap());
    let f_lease = acquire(&second, &f).await;
    assert!(f_lease.token > c_lease.token);
    assert!(
        key_of(&etcd, &key)
            .await
            .is_some_and(|(_, _, v)| v.starts_with("le3 "))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimant_that_stops_asking_lets_its_claim_go() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("handover-gone");
    let [holder, follower] = connected(&etcd, &key).await;
    let a = LeaseRequest::new("a", LEASE);
    let f = LeaseRequest::new("f", LEASE);
    let a_lease = acquire(&holder, &a).await;
    held_by(&follower, &f, "a").await;
    assert!(etcd.get(follower.next_key()).await.unwrap().is_some());
    // a keeps renewing. The store keeps the claim's lease alive for two leases after f last
    // asked, then lets it expire: the claim goes with it.
    let renewing = {
        let (holder, a, a_lease) = (holder.clone(), a.clone(), a_lease.clone());
        tokio::spawn(async move {
            loop {
                let renewed = holder.renew(&a, &a_lease).await.unwrap();
                assert_eq!(renewed, RenewOutcome::Renewed);
                tokio::time::sleep(LEASE / 4).await;
            }
        })
    };
    let client = Client::connect(etcd.endpoints(), None).await.unwrap();
    eventually_async(
        LEASE * 5,
        "the claim of a follower that stopped asking expires",
        || {
            let mut client = client.clone();
            let next = follower.next_key().to_owned();
            async move { client.get(next, None).await.unwrap().kvs().is_empty() }
        },
    )
    .await;
    assert!(follower.claim_keep_alives().get() >= 2);
    renewing.abort();
    // a's release finds no claim: it deletes the keys.
    assert_eq!(
        holder.renew(&a, &a_lease).await.unwrap(),
        RenewOutcome::Renewed
    );
    assert!(holder.release(&a, &a_lease).await.unwrap());
    assert_eq!(key_of(&etcd, &key).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_handed_to_a_claimant_that_stopped_asking_expires_like_a_crashed_leaders() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("handover-untaken");
    let [holder, follower, other] = connected(&etcd, &key).await;
    let a = LeaseRequest::new("a", LEASE);
    let f = LeaseRequest::new("f", LEASE);
    let o = LeaseRequest::new("o", LEASE);
    let a_lease = acquire(&holder, &a).await;
    held_by(&follower, &f, "a").await;
    assert_eq!(
        holder.renew(&a, &a_lease).await.unwrap(),
        RenewOutcome::Renewed
    );
    // a hands over to f, whose election never asks again (its store lives on).
    assert!(holder.release(&a, &a_lease).await.unwrap());
    let handed_at = tokio::time::Instant::now();
    held_by(&other, &o, "f").await;
    // f's store stops keeping the claim's lease alive a quarter lease after the untaken
    // handover; etcd then revokes it within a lease (and its 500 ms expiry check).
    let client = Client::connect(etcd.endpoints(), None).await.unwrap();
    eventually_async(LEASE * 3, "the untaken key expires", || {
        let mut client = client.clone();
        let key = key.clone();
        async move { client.get(key, None).await.unwrap().kvs().is_empty() }
    })
    .await;
    let took = handed_at.elapsed();
    assert!(
        took < LEASE + LEASE / 4 + Duration::from_millis(800),
        "the untaken key lived {took:?}"
    );
    let o_lease = acquire(&other, &o).await;
    assert!(o_lease.token > a_lease.token);
}
