//! The store's own behaviour against a real redis-server: scripts, garbage, notifications,
//! connecting while Redis is down.

use leader_election_test_support::acquire;

mod common;

use leader_election::ElectionBuilder;
use std::time::{Duration, Instant};

use common::{self as support, RedisServerExt, command, fast_options, store};
use leader_election::store::{AcquireOutcome, LeaseRequest, RenewOutcome};
use leader_election::{ElectionEvent, Error, LeaseStore, Operation};
use leader_election_redis::RedisLeaderElection;
use leader_election_test_support::{acquired, closed_port, eventually, lazy, unique_name};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_share_one_hash_tag_and_tokens_come_from_server_time() {
    let server = support::server().await;
    let key = unique_name("layout");
    let store = support::primed_store(&server.url(), &key).await;
    store.connect().await.unwrap();
    store.connect().await.expect("connect is idempotent");
    assert_eq!(store.lease_key(), format!("{{{key}}}:lease"));
    assert_eq!(store.token_key(), format!("{{{key}}}:token"));
    assert_eq!(store.release_channel(), format!("{{{key}}}:released"));

    let request = LeaseRequest::new("a", Duration::from_secs(2));
    let lease = acquire(&store, &request).await;
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    // Minted from the server's clock (the same machine's here), in microseconds.
    assert!(lease.token.get() > micros - 10_000_000, "{}", lease.token);
    assert!(lease.token.get() <= micros + 10_000_000, "{}", lease.token);
    let client = server.client().await;
    let stored = command(&client, &["GET", store.token_key()]).await;
    assert_eq!(stored.as_string(), Some(lease.token.to_string()));
    let pttl = command(&client, &["PTTL", store.lease_key()]).await;
    let pttl = pttl.as_i64().unwrap();
    assert!(pttl > 1000 && pttl <= 2000, "{pttl}");

    // A follower learns the remaining time, for sleeping until the lease can expire.
    let other = LeaseRequest::new("b", Duration::from_secs(2));
    match store.try_acquire(&other).await.unwrap() {
        AcquireOutcome::Held { leader, expires_in } => {
            assert_eq!(leader.unwrap().instance_id, "a");
            let expires_in = expires_in.expect("PTTL");
            assert!(expires_in > Duration::from_secs(1), "{expires_in:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_are_reloaded_after_noscript() {
    let server = support::server().await;
    let store = support::primed_store(&server.url(), &unique_name("noscript")).await;
    store.connect().await.unwrap();
    let request = LeaseRequest::new("a", Duration::from_secs(2));
    let lease = acquire(&store, &request).await;
    let client = server.client().await;
    command(&client, &["SCRIPT", "FLUSH"]).await;
    assert_eq!(
        store.renew(&request, &lease).await.unwrap(),
        RenewOutcome::Renewed
    );
    command(&client, &["SCRIPT", "FLUSH"]).await;
    let again = acquire(&store, &request).await;
    assert_eq!(again.token, lease.token);
    command(&client, &["SCRIPT", "FLUSH"]).await;
    assert!(store.release(&request, &lease).await.unwrap());
    command(&client, &["SCRIPT", "FLUSH"]).await;
    assert_eq!(store.current_leader().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_the_lease_key_is_reported_never_trusted() {
    let server = support::server().await;
    let client = server.client().await;
    let garbage: &[&[&str]] = &[
        &["SET", "{K}:lease", "not json at all"],
        &["SET", "{K}:lease", "42"],
        &["SET", "{K}:lease", "[1,2,3]"],
        &["SET", "{K}:lease", r#"{"instance":"a","lease":"b"}"#],
        &[
            "SET",
            "{K}:lease",
            r#"{"instance":"a","lease":"b","token":"-1"}"#,
        ],
        &[
            "SET",
            "{K}:lease",
            r#"{"instance":"a","lease":"b","token":7}"#,
        ],
        &["SET", "{K}:lease", "\u{0}\u{1}\u{ff}"],
        &["HSET", "{K}:lease", "instance", "a"],
        &["LPUSH", "{K}:lease", "a"],
        &["SADD", "{K}:lease", "a"],
    ];
    for (n, write) in garbage.iter().enumerate() {
        let key = format!("garbage-{n}");
        let write: Vec<String> = write
            .iter()
            .map(|a| a.replace("{K}", &format!("{{{key}}}")))
            .collect();
        let write: Vec<&str> = write.iter().map(String::as_str).collect();
        command(&client, &write).await;
        let store = store(&server.url(), &key).await;
        let request = LeaseRequest::new("a", Duration::from_secs(2)).with_lease_id("b");
        let err = store.try_acquire(&request).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidData {
                    operation: Operation::Acquire,
                    ..
                }
            ),
            "{write:?}: {err}"
        );
        let lease = leader_election::store::Lease::new(7.into());
        assert_eq!(
            store.renew(&request, &lease).await.unwrap(),
            RenewOutcome::Lost,
            "{write:?}"
        );
        assert!(!store.release(&request, &lease).await.unwrap(), "{write:?}");
        let err = store.current_leader().await.unwrap_err();
        assert!(matches!(err, Error::InvalidData { .. }), "{write:?}: {err}");
        // The garbage is left for the operator, never overwritten.
        let kind = command(&client, &["TYPE", store.lease_key()]).await;
        assert_ne!(kind.as_string().as_deref(), Some("none"), "{write:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_the_token_counter_blocks_minting() {
    let server = support::server().await;
    let client = server.client().await;
    for (n, value) in ["abc", "-5", "1.5", "99999999999999999999"]
        .iter()
        .enumerate()
    {
        let store = store(&server.url(), &format!("counter-{n}")).await;
        command(&client, &["SET", store.token_key(), value]).await;
        let request = LeaseRequest::new("a", Duration::from_secs(2));
        let err = store.try_acquire(&request).await.unwrap_err();
        assert!(matches!(err, Error::InvalidData { .. }), "{value}: {err}");
        assert_eq!(store.current_leader().await.unwrap(), None);
    }
    // A counter above the clock (but within range) is honoured: tokens never go back.
    let store = support::primed_store(&server.url(), "counter-high").await;
    command(&client, &["SET", store.token_key(), "8000000000000000"]).await;
    let lease = acquired(
        store
            .try_acquire(&LeaseRequest::new("a", Duration::from_secs(2)))
            .await
            .unwrap(),
    );
    assert_eq!(lease.token.get(), 8_000_000_000_000_001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_wakes_followers_on_other_clients() {
    let server = support::server().await;
    let key = unique_name("wake");
    let leader = support::primed_store(&server.url(), &key).await;
    let follower = store(&server.url(), &key).await;
    leader.connect().await.unwrap();
    follower.connect().await.unwrap();
    let mut releases = follower.release_notifications().expect("notifications");
    let request = LeaseRequest::new("a", Duration::from_secs(2));
    let lease = acquire(&leader, &request).await;
    releases.mark_seen();
    let started = Instant::now();
    assert!(leader.release(&request, &lease).await.unwrap());
    tokio::time::timeout(Duration::from_secs(1), releases.released())
        .await
        .expect("the follower's subscription saw the release");
    assert!(started.elapsed() < Duration::from_millis(500));
    // A release by a non-owner announces nothing.
    releases.mark_seen();
    assert!(!leader.release(&request, &lease).await.unwrap());
    assert!(
        tokio::time::timeout(Duration::from_millis(200), releases.released())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_needs_no_redis_and_start_retries_until_it_is_up() {
    let server = support::server().await;
    server.kill().await;
    let election = RedisLeaderElection::builder()
        .url(server.url())
        .key(unique_name("down"))
        .options(fast_options("a"))
        .build()
        .expect("build without Redis");
    let mut events = election.subscribe();
    election.start().await.expect("start");
    let error = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            if let Ok(ElectionEvent::Error(err)) = events.recv().await {
                break err;
            }
        }
    })
    .await
    .expect("an error event while Redis is down");
    assert_eq!(error.operation(), Some(Operation::Connect), "{error}");
    assert!(!election.is_leader());

    server.restart().await;
    eventually(Duration::from_secs(6), "leads once Redis is up", || {
        election.is_leader()
    })
    .await;
    election.stop().await.expect("stop");
    let client = server.client().await;
    let leader = command(&client, &["EXISTS", election.store().lease_key()]).await;
    assert_eq!(leader.as_i64(), Some(0), "released on stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_client_works_and_is_left_connected() {
    let server = support::server().await;
    let client = server.client().await;
    let election = RedisLeaderElection::builder()
        .client(client.clone())
        .key(unique_name("own-client"))
        .options(fast_options("a"))
        .build()
        .expect("build");
    election.start().await.unwrap();
    eventually(Duration::from_secs(3), "election.is_leader()", || {
        election.is_leader()
    })
    .await;
    election.stop().await.unwrap();
    drop(election);
    // The dropped election's tasks end in the background: give them 100 ms to (wrongly) quit
    // the caller's client (the wait is the observation), then the client must still answer.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pong = command(&client, &["PING"]).await;
    assert_eq!(pong.as_string().as_deref(), Some("PONG"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_grants_no_new_lease_within_one_lease_duration() {
    let server = support::server().await;
    let key = unique_name("young");
    let store = support::primed_store(&server.url(), &key).await;
    let ttl = Duration::from_millis(1500);
    let request = LeaseRequest::new("a", ttl);
    let lease = acquire(&store, &request).await;
    server.restart().await;
    let restarted_at = Instant::now();
    // Lost with the data: the leader is told at its next renewal.
    let renewed = loop {
        match store.renew(&request, &lease).await {
            Ok(outcome) => break outcome,
            Err(err) => {
                assert!(err.is_retryable(), "{err}");
                assert!(restarted_at.elapsed() < Duration::from_secs(3), "{err}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert_eq!(renewed, RenewOutcome::Lost);
    let other = LeaseRequest::new("b", ttl);
    let taken = loop {
        match store.try_acquire(&other).await.unwrap() {
            AcquireOutcome::Acquired(lease) => break lease,
            AcquireOutcome::Withheld { wait, reason } => {
                assert_eq!(
                    reason,
                    leader_election::store::WithholdReason::BackendRestarted
                );
                assert!(wait <= ttl, "{wait:?}");
                tokio::time::sleep(wait.min(Duration::from_millis(100))).await;
            }
            other => panic!("{other:?}"),
        }
    };
    assert!(
        restarted_at.elapsed() >= ttl,
        "{:?}",
        restarted_at.elapsed()
    );
    assert!(
        taken.token > lease.token,
        "tokens still increase after losing the counter"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_never_show_in_debug_output_or_errors() {
    const PASSWORD: &str = "s3cret-Pa55";
    let server = support::server_with_password(Some(PASSWORD)).await;
    assert!(server.url().contains(PASSWORD));
    let key = unique_name("password");
    let good = RedisLeaderElection::builder()
        .url(server.url())
        .key(&key)
        .options(fast_options("good"))
        .build()
        .unwrap();
    good.start().await.unwrap();
    eventually(Duration::from_secs(3), "good.is_leader()", || {
        good.is_leader()
    })
    .await;
    assert!(!format!("{good:?} {:?}", good.store()).contains(PASSWORD));

    let wrong_url = server.url().replace(PASSWORD, "wrong-Pa55");
    let bad = RedisLeaderElection::builder()
        .url(&wrong_url)
        .key(&key)
        .options(fast_options("bad"))
        .build()
        .unwrap();
    let mut events = bad.subscribe();
    bad.start().await.unwrap();
    let error = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            if let Ok(ElectionEvent::Error(err)) = events.recv().await {
                break err;
            }
        }
    })
    .await
    .expect("an authentication error");
    let shown = format!("{error} {error:?} {bad:?} {:?}", bad.store());
    assert!(
        !shown.contains("wrong-Pa55") && !shown.contains(PASSWORD),
        "{shown}"
    );
    assert!(!bad.is_leader());
    bad.stop().await.unwrap();
    good.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_elections_share_one_client_and_one_subscriber_connection() {
    use leader_election_redis::{RedisLeaseStore, ReleaseHub};

    let server = support::server().await;
    let admin = server.client().await;
    let client = support::connect_client(&server.url()).await;
    let hub = ReleaseHub::new(&client);
    let prefix = unique_name("hub");
    support::prime(&server.url(), &format!("{prefix}-7")).await;
    let stores: Vec<RedisLeaseStore> = (0..50)
        .map(|i| {
            RedisLeaseStore::with_hub(client.clone(), format!("{prefix}-{i}"), hub.clone()).unwrap()
        })
        .collect();
    for store in &stores {
        store.connect().await.unwrap();
    }
    assert_eq!(hub.channels(), 50);
    // Two client connections (commands, subscriber) plus the admin's, whatever the count of
    // elections.
    let clients = command(&admin, &["CLIENT", "LIST"]).await;
    let clients = clients.as_string().expect("CLIENT LIST answers text");
    assert_eq!(clients.lines().count(), 3, "{clients}");

    // A release wakes the followers of that election only.
    let mut receivers: Vec<_> = stores
        .iter()
        .map(|s| s.release_notifications().unwrap())
        .collect();
    let request = LeaseRequest::new("a", Duration::from_secs(1));
    let lease = acquire(&stores[7], &request).await;
    for receiver in &mut receivers {
        receiver.mark_seen();
    }
    assert!(stores[7].release(&request, &lease).await.unwrap());
    tokio::time::timeout(Duration::from_secs(1), receivers[7].released())
        .await
        .expect("the released election's followers are woken");
    for (i, receiver) in receivers.iter_mut().enumerate().filter(|(i, _)| *i != 7) {
        let woken = tokio::time::timeout(Duration::from_millis(20), receiver.released()).await;
        assert!(
            woken.is_err(),
            "election {i} was woken by another's release"
        );
    }

    // A dropped store gives its channel up.
    drop(receivers);
    let mut stores = stores;
    stores.truncate(40);
    assert_eq!(hub.channels(), 40);
}

fn late(test: &str) -> String {
    format!("{test}: bounded wait elapsed")
}

/// A promoted replica without `{key}:epoch` (the election's first acquisition was not
/// replicated, or the key was evicted) cannot prove no lease is held: it withholds one lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_epoch_key_withholds_a_free_lease_for_one_lease() {
    use leader_election::store::WithholdReason;
    let server = support::server().await;
    let ttl = Duration::from_secs(1);
    // A brand-new election: nothing proves no lease was granted before.
    let fresh = store(&server.url(), &unique_name("fresh-epoch")).await;
    match fresh
        .try_acquire(&LeaseRequest::new("a", ttl))
        .await
        .unwrap()
    {
        AcquireOutcome::Withheld { wait, reason } => {
            assert_eq!(reason, WithholdReason::Failover);
            assert!(wait > ttl / 2 && wait <= ttl, "{wait:?}");
        }
        other => panic!("a fresh election granted at once: {other:?}"),
    }

    let key = unique_name("epoch");
    let store = support::primed_store(&server.url(), &key).await;
    let request = LeaseRequest::new("a", ttl);
    let lease = acquire(&store, &request).await;
    assert!(store.release(&request, &lease).await.unwrap());
    let client = server.client().await;
    command(&client, &["DEL", &format!("{{{key}}}:epoch")]).await;
    let deleted_at = Instant::now();
    let other = LeaseRequest::new("b", ttl);
    match store.try_acquire(&other).await.unwrap() {
        AcquireOutcome::Withheld { wait, reason } => {
            assert_eq!(reason, WithholdReason::Failover);
            assert!(wait > ttl / 2 && wait <= ttl, "{wait:?}");
        }
        other => panic!("granted without an epoch: {other:?}"),
    }
    // Once, not forever: granted after the wait.
    let taken = loop {
        match store.try_acquire(&other).await.unwrap() {
            AcquireOutcome::Acquired(lease) => break lease,
            AcquireOutcome::Withheld { wait, .. } => {
                assert!(deleted_at.elapsed() < ttl * 3, "{}", late("epoch"));
                tokio::time::sleep(wait.min(Duration::from_millis(50))).await;
            }
            other => panic!("{other:?}"),
        }
    };
    assert!(deleted_at.elapsed() >= ttl - Duration::from_millis(20));
    assert!(taken.token > lease.token);
}

/// An election started against a server that has just started learns why nobody may lead yet
/// and for how long, and then leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freshly_started_server_withholds_the_lease_and_says_so() {
    use leader_election::store::WithholdReason;
    let server = support::server().await;
    server.restart().await;
    let restarted_at = Instant::now();
    let election = support::election(&server.url(), &unique_name("withheld"), "a");
    let lease = election.options().lease_duration;
    let mut events = election.subscribe();
    election.start().await.unwrap();
    let (reason, wait) = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            if let Ok(ElectionEvent::LeaseWithheld { reason, wait }) = events.recv().await {
                break (reason, wait);
            }
        }
    })
    .await
    .expect("a LeaseWithheld event");
    assert_eq!(reason, WithholdReason::BackendRestarted);
    assert!(wait > Duration::ZERO && wait <= lease, "{wait:?}");
    eventually(
        lease * 2 + Duration::from_secs(1),
        "never led after the wait",
        || election.is_leader(),
    )
    .await;
    assert!(
        restarted_at.elapsed() >= lease - Duration::from_millis(100),
        "led {:?} after the server started",
        restarted_at.elapsed()
    );
    election.stop().await.unwrap();
}

/// A `connect()` cancelled by its caller's timeout while the subscriber connection hangs
/// leaves no reconnecting task behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_cancelled_by_its_timeout_leaves_no_task_behind() {
    use leader_election_redis::fred::prelude::{Config, ConnectionConfig, ReconnectPolicy};
    use leader_election_redis::{RedisLeaseStore, ReleaseHub};
    let server = support::server().await;
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = std::sync::Arc::clone(&held);
    let acceptor = tokio::spawn(async move {
        while let Ok((socket, _)) = silent.accept().await {
            keep.lock().unwrap().push(socket);
        }
    });
    let client = support::connect_client(&server.url()).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    for target in [silent_port, closed_port()] {
        let url = format!("redis://127.0.0.1:{target}");
        let hub_client = leader_election_redis::fred::clients::Client::new(
            Config::from_url(&url).unwrap(),
            None,
            Some(ConnectionConfig::default()),
            Some(ReconnectPolicy::new_constant(0, 20)),
        );
        let hub = ReleaseHub::new(&hub_client);
        let store =
            RedisLeaseStore::with_hub(client.clone(), unique_name("cancelled"), hub).unwrap();
        for _ in 0..3 {
            let _ = tokio::time::timeout(Duration::from_millis(300), store.connect()).await;
        }
        drop(store);
        drop(hub_client);
    }
    let left = || metrics.num_alive_tasks();
    eventually(
        Duration::from_secs(2),
        lazy(|| format!("{} tasks left behind", left() - before)),
        || left() <= before,
    )
    .await;
    acceptor.abort();
}

/// Two stores of one election on a shared hub are both woken by a release, also after a third
/// one on the same channel is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_sharing_a_channel_on_one_hub_are_all_woken() {
    use leader_election_redis::{RedisLeaseStore, ReleaseHub};
    let server = support::server().await;
    let client = support::connect_client(&server.url()).await;
    let hub = ReleaseHub::new(&client);
    let key = unique_name("shared-channel");
    let leader = support::primed_store(&server.url(), &key).await;
    let on_hub = || RedisLeaseStore::with_hub(client.clone(), &key, hub.clone()).unwrap();
    let (first, second, third) = (on_hub(), on_hub(), on_hub());
    for store in [&first, &second, &third] {
        store.connect().await.unwrap();
    }
    let mut one = first.release_notifications().unwrap();
    let mut two = second.release_notifications().unwrap();
    let request = LeaseRequest::new("leader", Duration::from_secs(2));
    let mut third = Some(third);
    for round in ["three stores", "the third dropped"] {
        if round == "the third dropped" {
            // Its last clone: the store unregisters from the hub.
            drop(third.take());
        }
        let lease = acquire(&leader, &request).await;
        one.mark_seen();
        two.mark_seen();
        assert!(leader.release(&request, &lease).await.unwrap());
        for (name, receiver) in [("first", &mut one), ("second", &mut two)] {
            tokio::time::timeout(Duration::from_secs(1), receiver.released())
                .await
                .unwrap_or_else(|_| panic!("{round}: the {name} store was not woken"));
        }
    }
    assert_eq!(hub.channels(), 1);
}

/// Tokens are minted from the server's clock as well as the counter: deleting the lease and
/// the counter never makes them go back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_go_back_when_the_lease_and_counter_are_deleted() {
    let server = support::server().await;
    let client = server.client().await;
    let key = unique_name("token-order");
    let store = support::primed_store(&server.url(), &key).await;
    let mut last = 0;
    for round in 0..5 {
        let request = LeaseRequest::new(format!("c{round}"), Duration::from_millis(300));
        // A lease deleted without a release is withheld until it could have expired.
        let asked_at = Instant::now();
        let lease = loop {
            match store.try_acquire(&request).await.unwrap() {
                AcquireOutcome::Acquired(lease) => break lease,
                AcquireOutcome::Withheld { wait, .. } => {
                    assert!(
                        asked_at.elapsed() < Duration::from_secs(2),
                        "{}",
                        late("tokens")
                    );
                    tokio::time::sleep(wait.min(Duration::from_millis(50))).await;
                }
                other => panic!("{other:?}"),
            }
        };
        assert!(
            lease.token.get() > last,
            "round {round}: {} after {last}",
            lease.token
        );
        last = lease.token.get();
        if round % 2 == 0 {
            assert!(store.release(&request, &lease).await.unwrap());
        }
        command(&client, &["DEL", store.lease_key(), store.token_key()]).await;
    }
}

/// A contender that never saw the election's long lease (a brand-new process after a restart)
/// relies on `max_lease_duration`; one contender configured with it makes the others guard it
/// too, through `{key}:maxttl`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_lease_duration_guards_a_restart_for_every_contender() {
    use leader_election::store::WithholdReason;
    let server = support::server().await;
    let key = unique_name("max-lease");
    server.restart().await;
    let short = Duration::from_millis(500);
    let max = Duration::from_secs(20);
    let careful = store(&server.url(), &key)
        .await
        .with_max_lease_duration(max);
    assert_eq!(careful.guard_duration(), max);
    let plain = store(&server.url(), &key).await;
    assert_eq!(plain.guard_duration(), Duration::ZERO);
    for contender in [&careful, &plain] {
        match contender
            .try_acquire(&LeaseRequest::new("c", short))
            .await
            .unwrap()
        {
            AcquireOutcome::Withheld { wait, reason } => {
                assert_eq!(reason, WithholdReason::BackendRestarted);
                assert!(
                    wait > max - Duration::from_secs(2) && wait <= max,
                    "{wait:?}"
                );
            }
            other => panic!("granted {other:?} within {max:?} of a restart"),
        }
    }
    // Remembered in process memory too, should the server forget it again.
    assert_eq!(plain.guard_duration(), max);
}

/// Rule 9: a lease record deleted by someone other than its holder (an operator, a script)
/// lets nobody in before the old term's lease could have expired; a release hands over at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_lease_record_is_withheld_until_the_lease_could_have_expired() {
    use leader_election::store::WithholdReason;
    let server = support::server().await;
    let client = server.client().await;
    let key = unique_name("touched");
    let store = support::primed_store(&server.url(), &key).await;
    let ttl = Duration::from_secs(1);
    let a = LeaseRequest::new("a", ttl);
    let b = LeaseRequest::new("b", ttl);
    let lease = acquire(&store, &a).await;
    command(&client, &["DEL", store.lease_key()]).await;
    let deleted_at = Instant::now();
    match store.try_acquire(&b).await.unwrap() {
        AcquireOutcome::Withheld { wait, reason } => {
            assert_eq!(reason, WithholdReason::RecordTouched);
            assert!(wait > ttl / 2 && wait <= ttl, "{wait:?}");
        }
        other => panic!("granted {other:?} while the deleted lease may still be trusted"),
    }
    // The holder learns it lost the lease; it cannot renew it back.
    assert_eq!(store.renew(&a, &lease).await.unwrap(), RenewOutcome::Lost);
    let taken = loop {
        match store.try_acquire(&b).await.unwrap() {
            AcquireOutcome::Acquired(lease) => break lease,
            AcquireOutcome::Withheld { wait, .. } => {
                assert!(deleted_at.elapsed() < ttl * 3, "{}", late("touched"));
                tokio::time::sleep(wait.min(Duration::from_millis(50))).await;
            }
            other => panic!("{other:?}"),
        }
    };
    assert!(deleted_at.elapsed() >= ttl - Duration::from_millis(50));
    assert!(taken.token > lease.token);
    // A release hands over at once.
    assert!(store.release(&b, &taken).await.unwrap());
    acquire(&store, &a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_lives_in_the_lease_value_in_hex_and_garbage_there_is_reported() {
    let server = support::server().await;
    let client = server.client().await;
    let key = unique_name("metadata-layout");
    let store = support::primed_store(&server.url(), &key).await;
    store.connect().await.unwrap();
    let value = |raw: leader_election_redis::fred::types::Value| -> serde_json::Value {
        serde_json::from_str(&raw.as_string().expect("a string")).expect("JSON")
    };
    let request = LeaseRequest::new("a", Duration::from_secs(2))
        .with_metadata(Some(b"\x00addr\xff".to_vec()));
    let lease = acquire(&store, &request).await;
    let stored = value(command(&client, &["GET", store.lease_key()]).await);
    assert_eq!(stored["meta"], "0061646472ff", "{stored}");
    // A renewal without metadata removes it, keeping the expiry it sets.
    let bare = request.clone().with_metadata(None);
    assert_eq!(
        store.renew(&bare, &lease).await.unwrap(),
        RenewOutcome::Renewed
    );
    let stored = value(command(&client, &["GET", store.lease_key()]).await);
    assert!(stored.get("meta").is_none(), "{stored}");
    assert_eq!(stored["token"], lease.token.to_string(), "{stored}");
    let pttl = command(&client, &["PTTL", store.lease_key()]).await;
    assert!(pttl.as_i64().unwrap() > 1000, "{pttl:?}");
    // Over the limit: refused before any command is sent.
    let too_big =
        request
            .clone()
            .with_metadata(Some(vec![0; leader_election_redis::MAX_METADATA_LEN + 1]));
    assert!(matches!(
        store.renew(&too_big, &lease).await,
        Err(Error::MetadataTooLarge { .. })
    ));
    // Metadata written by hand that is not hex is reported, never trusted.
    let mut garbage = stored.clone();
    garbage["meta"] = serde_json::Value::from("not hex");
    command(
        &client,
        &["SET", store.lease_key(), &garbage.to_string(), "PX", "2000"],
    )
    .await;
    let err = store.current_leader().await.unwrap_err();
    assert!(matches!(err, Error::InvalidData { .. }), "{err}");
}
