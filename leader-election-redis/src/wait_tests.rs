//! `WAIT` after the acquire or renew script, on a real primary with a real replica: a
//! reconnect between the script's reply and `WAIT` must not count as the replicas'
//! acknowledgement of the write (the new connection has written nothing, so `WAIT` there
//! answers at once with every connected replica).

use std::future::Future;
use std::time::Duration;

use fred::interfaces::ClientLike;
use fred::types::{ClusterHash, CustomCommand, Value};
use leader_election::LeaseStore;
use leader_election::store::{AcquireOutcome, LeaseRequest, RenewOutcome};
use leader_election_test_support::RedisServer;
use leader_election_test_support::{FaultProxy, eventually_async, eventually_some, unique_name};
use tokio::sync::oneshot;

use crate::RedisLeaseStore;
use crate::common::{connect_client, prime, server};

/// A raw command through one of this crate's fred clients.
async fn command(client: &fred::clients::Client, args: &[&str]) -> Value {
    let (name, rest) = args.split_first().expect("a command");
    let cmd = CustomCommand::new(name.to_string(), ClusterHash::FirstKey, false);
    let rest: Vec<Value> = rest.iter().map(|a| Value::from(*a)).collect();
    client.custom(cmd, rest).await.expect("command")
}

/// `replica` made a replica of `primary`, once its link is up.
async fn replicate(primary: &RedisServer, replica: &RedisServer) {
    let port = primary.port().to_string();
    replica
        .query(&["REPLICAOF", "127.0.0.1", &port])
        .await
        .expect("REPLICAOF");
    eventually_async(
        Duration::from_secs(10),
        "the replica did not sync",
        || async {
            replica
                .query(&["INFO", "replication"])
                .await
                .is_ok_and(|info| info.contains("master_link_status:up"))
        },
    )
    .await;
}

/// The id of the connection `client` sends its commands on (`CLIENT ID`), and the port of
/// the server that answered.
async fn connection(client: &fred::clients::Client) -> Option<(i64, u16)> {
    let id = CustomCommand::new_static("CLIENT", ClusterHash::FirstKey, false);
    let id = client
        .custom::<Value, _>(id, vec![Value::from("ID")])
        .await
        .ok()?
        .as_i64()?;
    let info = CustomCommand::new_static("INFO", ClusterHash::FirstKey, false);
    let info = client
        .custom::<Value, _>(info, vec![Value::from("server")])
        .await
        .ok()?
        .as_string()?;
    let port = info
        .lines()
        .find_map(|l| l.strip_prefix("tcp_port:"))?
        .trim()
        .parse()
        .ok()?;
    Some((id, port))
}

/// Runs a renewal of `lease` that stops between its script and its `WAIT`, runs `break_it`
/// there, waits until the store's client has a connection other than `before` (and answers
/// from `port`), and lets the renewal go on.
async fn renew_across<F>(
    store: &RedisLeaseStore,
    request: &LeaseRequest,
    lease: &leader_election::store::Lease,
    port: u16,
    break_it: F,
) -> leader_election::Result<RenewOutcome>
where
    F: Future<Output = ()>,
{
    let before = connection(store.client())
        .await
        .expect("the store's connection");
    let (arrived_tx, arrived) = oneshot::channel();
    let (go_on, go_on_rx) = oneshot::channel();
    store.set_pause_before_wait((arrived_tx, go_on_rx));
    let renewing = tokio::spawn({
        let (store, request, lease) = (store.clone(), request.clone(), lease.clone());
        async move { store.renew(&request, &lease).await }
    });
    arrived.await.expect("the renewal's script ran");
    break_it.await;
    eventually_some(
        Duration::from_secs(5),
        "the store's client did not connect again",
        || async {
            connection(store.client())
                .await
                .filter(|now| *now != before && now.1 == port)
        },
    )
    .await;
    go_on.send(()).expect("the renewal waits");
    renewing.await.expect("the renewal's task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_between_the_write_and_wait_is_not_an_acknowledgement() {
    let primary = server().await;
    let replica = server().await;
    replicate(&primary, &replica).await;
    // Another primary with a replica that acknowledges everything, where the address leads
    // after a switch (a virtual IP moved, a load balancer's failover).
    let other = RedisServer::start().await;
    let other_replica = RedisServer::start().await;
    replicate(&other, &other_replica).await;
    let proxy = FaultProxy::to_port(primary.port()).await;
    let key = unique_name("wait-reconnect");
    prime(&primary.url(), &key).await;
    let store = RedisLeaseStore::new(connect_client(&proxy.redis_url()).await, key.as_str())
        .expect("store")
        .with_operation_timeout(Duration::from_secs(1))
        .with_min_replica_acks(1);
    store.connect().await.expect("connect");
    // A short lease for the first grant (a server younger than the lease grants none), then
    // renewed for long enough that nothing below depends on timing.
    let mut request = LeaseRequest::new("a", Duration::from_secs(1));
    let lease = match store.try_acquire(&request).await.expect("acquire") {
        AcquireOutcome::Acquired(lease) => lease,
        other => panic!("acquire: {other:?}"),
    };
    request.ttl = Duration::from_secs(30);
    assert_eq!(
        store.renew(&request, &lease).await.expect("renew"),
        RenewOutcome::Renewed
    );

    // The replica stops acknowledging: a renewal is on the primary only, and must not be
    // believed.
    replica.pause().await;
    let unbroken = store.renew(&request, &lease).await;
    assert!(
        unbroken.as_ref().is_err_and(|e| e.is_outcome_unknown()),
        "a renewal the replica never acknowledged: {unbroken:?}"
    );

    // The store's connection killed between the script and WAIT: WAIT goes out on a new
    // connection to the same primary. (Redis 7.0 and older count every write made before a
    // connection's first command in its WAIT, so this one is caught there even without
    // looking; later versions count only the connection's own writes.)
    let admin = connect_client(&primary.url()).await;
    let (old_id, _) = connection(store.client()).await.expect("a connection");
    let killed = renew_across(&store, &request, &lease, primary.port(), async {
        command(&admin, &["CLIENT", "KILL", "ID", &old_id.to_string()]).await;
    })
    .await;
    assert!(
        killed.as_ref().is_err_and(|e| e.is_outcome_unknown()),
        "a renewal the replica never acknowledged, with a reconnect before WAIT: {killed:?}"
    );

    // The address switched to the other primary between the script and WAIT: WAIT there
    // says nothing about the write, which only the first primary has.
    let switched = renew_across(&store, &request, &lease, other.port(), async {
        proxy.switch_to_port(other.port());
    })
    .await;
    replica.resume().await;
    assert!(
        switched.as_ref().is_err_and(|e| e.is_outcome_unknown()),
        "a renewal on one primary, acknowledged by WAIT on another: {switched:?}"
    );
    let _ = admin.quit().await;
    let _ = store.client().quit().await;
}
