//! Faults against one real etcd member: a leader that vanishes without releasing, and a leader
//! cut off from etcd (through the shared fault proxy).

use std::time::Duration;

use leader_election::testing::{
    TakeoverOptions, crashed_leader_is_replaced, cut_off_leader_steps_down,
};
use leader_election_test_support::etcd::election;
use leader_election_test_support::{EtcdCluster, FaultProxy, unique_name};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_gone_without_release_is_replaced_after_its_lease() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("crash");
    let a = election(&etcd.endpoints(), &key, "a");
    let b = election(&etcd.endpoints(), &key, "b");
    // etcd revokes the lease once its TTL passes (its expiry checker runs every 500 ms), the
    // key goes with it, and b's watch wakes b at once.
    let options = TakeoverOptions {
        slack: Duration::from_millis(1200),
        ..TakeoverOptions::default()
    };
    let report = crashed_leader_is_replaced(a, b, &options).await;
    eprintln!("crash failover: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_etcd_steps_down_before_a_follower_takes_over() {
    let etcd = EtcdCluster::single().await;
    let proxy = FaultProxy::to_port(etcd.client_port(0)).await;
    let through_proxy = vec![format!("http://127.0.0.1:{}", proxy.port())];
    let key = unique_name("partition");
    let a = election(&through_proxy, &key, "a");
    let b = election(&etcd.endpoints(), &key, "b");
    // b, still reaching etcd, takes over once etcd expires a's lease.
    let options = TakeoverOptions {
        slack: Duration::from_secs(2),
        ..TakeoverOptions::default()
    };
    let report = cut_off_leader_steps_down(a, b, || proxy.hang(), || proxy.heal(), &options).await;
    eprintln!("partition: {report:?}");
}
