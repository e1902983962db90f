//! Faults against one real etcd member: a leader that vanishes without releasing, and a leader
//! cut off from etcd (through the shared fault proxy).

use std::time::Duration;

use tokio::time::Instant;

use leader_election::testing::TermRecorder;
use leader_election_test_support::etcd::{election, one_leader, token};
use leader_election_test_support::{EtcdCluster, FaultProxy, eventually, unique_name};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_gone_without_release_is_replaced_after_its_lease() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("crash");
    let a = election(&etcd.endpoints(), &key, "a");
    let b = election(&etcd.endpoints(), &key, "b");
    let recorder = TermRecorder::new();
    recorder.attach(&a);
    recorder.attach(&b);
    a.start().await.unwrap();
    eventually(Duration::from_secs(3), "a.is_leader()", || a.is_leader()).await;
    let first_token = token(&a);
    b.start().await.unwrap();
    let lease = a.options().lease_duration;
    let renew = a.options().renew_interval;
    // b settles as a follower, and stays one while a renews.
    eventually(Duration::from_secs(3), "b follows a", || {
        b.state().leader.is_some_and(|l| l.instance_id == "a")
    })
    .await;
    assert!(a.is_leader() && !b.is_leader());

    // The last handle goes: the loop ends without releasing, as when a process dies. etcd
    // revokes the lease once its TTL passes (its expiry checker runs every 500 ms), the key
    // goes with it, and b's watch wakes b at once.
    drop(a);
    let gone_at = Instant::now();
    eventually(
        lease + Duration::from_millis(1200),
        "no takeover within lease + 1.2 s",
        || b.is_leader(),
    )
    .await;
    let took = gone_at.elapsed();
    // The lease was left to expire (its last renewal was at most one interval before).
    assert!(
        took >= lease - renew - Duration::from_millis(50),
        "{took:?}"
    );
    assert!(token(&b) > first_token);
    eprintln!("crash failover: {took:?} for a {lease:?} lease");
    b.stop().await.unwrap();
    recorder.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_etcd_steps_down_before_a_follower_takes_over() {
    let etcd = EtcdCluster::single().await;
    let proxy = FaultProxy::to_port(etcd.client_port(0)).await;
    let through_proxy = vec![format!("http://127.0.0.1:{}", proxy.port())];
    let key = unique_name("partition");
    let a = election(&through_proxy, &key, "a");
    let b = election(&etcd.endpoints(), &key, "b");
    let recorder = TermRecorder::new();
    recorder.attach(&a);
    recorder.attach(&b);
    a.start().await.unwrap();
    eventually(Duration::from_secs(3), "a.is_leader()", || a.is_leader()).await;
    let first_token = token(&a);
    b.start().await.unwrap();
    eventually(Duration::from_secs(3), "b follows a", || {
        b.state().leader.is_some_and(|l| l.instance_id == "a")
    })
    .await;

    proxy.hang();
    let cut_at = Instant::now();
    let lease = a.options().lease_duration;
    // Fail closed: a gives up by its local deadline although nothing answers.
    eventually(
        lease + Duration::from_millis(300),
        "the cut-off leader still leads",
        || !a.is_leader(),
    )
    .await;
    // b, still reaching etcd, takes over once etcd expires a's lease.
    eventually(
        lease + Duration::from_secs(2),
        "the follower did not take over",
        || b.is_leader(),
    )
    .await;
    let renew = a.options().renew_interval;
    assert!(
        cut_at.elapsed() >= lease - renew - Duration::from_millis(100),
        "taken over after {:?}, before the lease could expire",
        cut_at.elapsed()
    );
    assert!(token(&b) > first_token);
    recorder.assert_safe();

    // Healed: the old leader comes back as a follower.
    proxy.heal();
    eventually(Duration::from_secs(5), "a follows b again", || {
        a.state().leader.is_some_and(|l| l.instance_id == "b")
    })
    .await;
    assert_eq!(one_leader(&[&a, &b], Duration::from_secs(1)).await, 1);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    recorder.assert_safe();
}
