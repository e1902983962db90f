//! Faults against a real redis-server: restarts without persistence, a frozen server, and
//! operators touching the key. (A partitioned leader and one that vanishes: the generic suite,
//! `tests/suite.rs`.)

mod common;

use leader_election::ElectionBuilder;
use std::time::Duration;

use tokio::time::Instant;

use common::{self as support, RedisServerExt, command, election};
use leader_election::testing::TermRecorder;
use leader_election::{ChangeReason, Error, LeaderElection};
use leader_election_test_support::faketime::SteppedClock;
use leader_election_test_support::{FaultProxy, eventually, eventually_async, lazy, unique_name};
use leader_election_test_support::{
    RedisOptions, RedisServer, lead_then_follow, one_leader, stop_and_check, token,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_without_persistence_keeps_one_leader_and_increasing_tokens() {
    let server = support::server().await;
    let key = unique_name("restart");
    let a = election(&server.url(), &key, "a");
    let b = election(&server.url(), &key, "b");
    let recorder = TermRecorder::new();
    recorder.start_all(&[a.clone(), b.clone()]).await.unwrap();
    let first = one_leader(&[&a, &b], Duration::from_secs(3)).await;
    let first_token = token([&a, &b][first]);

    server.restart().await;
    let restarted_at = Instant::now();
    // The lease and the counter are gone; the leader learns it at its next renewal. The young
    // server grants no lease for one lease duration (the old leader may still trust its lease
    // until then), and the next term's token still comes out greater (minted from the
    // server's clock).
    eventually(
        Duration::from_secs(5),
        lazy(|| format!("no new term after the restart: {:?}", recorder.terms())),
        || recorder.terms().len() >= 2 && recorder.current().is_some(),
    )
    .await;
    let now = one_leader(&[&a, &b], Duration::from_secs(1)).await;
    assert!(token([&a, &b][now]) > first_token);
    let lease = a.options().lease_duration;
    let second = recorder.terms()[1].start;
    assert!(
        second.saturating_duration_since(restarted_at) >= lease - Duration::from_millis(100),
        "a new term {:?} after the restart, within the lost lease",
        second.saturating_duration_since(restarted_at)
    );
    recorder.assert_safe();
    stop_and_check(&recorder, &[&a, &b]).await;
}

/// Tokens come from the server's clock when a restart without persistence lost the counter:
/// a server whose clock stepped back (an NTP step, a host restored from a snapshot) would mint
/// a smaller one. Here the server's wall clock really steps back two minutes (the fixtures'
/// clock shim: libfaketime cannot be preloaded into Debian's redis-server), then it restarts
/// empty: the next token is still greater, because every contender that saw the last one
/// passes it as a floor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_onto_a_server_clock_stepped_back_still_mints_a_greater_token() {
    let clock = SteppedClock::shimmed().expect("the clock shim (compiled with rustc)");
    let server = RedisServer::start_with(RedisOptions {
        env: clock.env(),
        min_uptime: support::SETTLED,
        ..RedisOptions::default()
    })
    .await;
    let key = unique_name("clock-behind");
    let a = election(&server.url(), &key, "a");
    let b = election(&server.url(), &key, "b");
    let recorder = TermRecorder::new();
    recorder.start_all(&[a.clone(), b.clone()]).await.unwrap();
    let first = one_leader(&[&a, &b], Duration::from_secs(5)).await;
    let first_token = token([&a, &b][first]);
    // The floor a contender passes is the highest token it has seen: wait until the follower
    // has seen the leader's (a contender that never saw a token cannot carry it over a
    // restart onto a clock behind it; the README states that the clock does not step back).
    let follower = [&a, &b][1 - first];
    eventually(
        Duration::from_secs(5),
        "the follower saw the leader's token",
        || {
            follower
                .state()
                .leader
                .and_then(|l| l.token)
                .is_some_and(|t| t == first_token)
        },
    )
    .await;

    clock.step(-120).expect("step the server's clock");
    server.restart().await;
    let server_now: u64 = server
        .query(&["EVAL", "return redis.call('TIME')[1]", "0"])
        .await
        .expect("the server's TIME")
        .parse()
        .expect("seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        server_now + 100 < now && first_token.get() / 1_000_000 > server_now + 100,
        "the server's clock says {server_now}, this machine's {now}, the last token {first_token}: \
         the step did not take"
    );
    eventually(
        Duration::from_secs(15),
        lazy(|| format!("no new term after the restart: {:?}", recorder.terms())),
        || recorder.terms().len() >= 2 && recorder.current().is_some(),
    )
    .await;
    let now = one_leader(&[&a, &b], Duration::from_secs(1)).await;
    let second_token = token([&a, &b][now]);
    assert!(
        second_token > first_token,
        "token {second_token:?} after the restart onto a clock two minutes behind, \
         {first_token:?} before it"
    );
    stop_and_check(&recorder, &[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_longer_than_the_lease_then_resumed() {
    let server = support::server().await;
    let key = unique_name("sigstop");
    let a = election(&server.url(), &key, "a");
    let b = election(&server.url(), &key, "b");
    let recorder = TermRecorder::new();
    recorder.attach(&a);
    recorder.attach(&b);
    a.start().await.unwrap();
    b.start().await.unwrap();
    let first = one_leader(&[&a, &b], Duration::from_secs(3)).await;
    let leader = [&a, &b][first];
    let first_token = token(leader);
    let lease = leader.options().lease_duration;

    server.pause().await;
    let paused_at = Instant::now();
    // Fail closed: the leader gives up by its local deadline although nothing answers.
    eventually(
        lease + Duration::from_millis(300),
        lazy(|| {
            format!(
                "the leader still leads {:?} into the freeze",
                paused_at.elapsed()
            )
        }),
        || !leader.is_leader(),
    )
    .await;
    // Nobody leads while Redis is frozen: the freeze is held for two leases (the wait is the
    // observation), and the recorder, which saw every term, shows none after the first.
    tokio::time::sleep_until(paused_at + lease * 2).await;
    assert!(
        recorder.current().is_none() && recorder.terms().len() == 1,
        "a leader during the freeze: {:?}",
        recorder.terms()
    );
    server.resume().await;
    let now = one_leader(&[&a, &b], Duration::from_secs(5)).await;
    assert!(token([&a, &b][now]) > first_token);
    recorder.assert_safe();
    stop_and_check(&recorder, &[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_key_makes_the_leader_step_down_at_its_next_renewal() {
    let server = support::server().await;
    let client = server.client().await;
    let a = election(&server.url(), &unique_name("deleted"), "a");
    let mut events = a.subscribe();
    a.start().await.unwrap();
    eventually(Duration::from_secs(3), "a.is_leader()", || a.is_leader()).await;
    let first_token = token(&a);

    command(&client, &["DEL", a.store().lease_key()]).await;
    let deleted_at = Instant::now();
    let reason = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Ok(leader_election::ElectionEvent::LeadershipChanged {
                is_leader: false,
                reason,
                ..
            }) = events.recv().await
            {
                break reason;
            }
        }
    })
    .await
    .expect("stepped down");
    assert_eq!(reason, ChangeReason::LeaseLost);
    let renew = a.options().renew_interval;
    let timeout = a.options().operation_timeout();
    assert!(
        deleted_at.elapsed() <= renew + timeout + Duration::from_millis(500),
        "{:?}",
        deleted_at.elapsed()
    );
    // A new term, with a greater token.
    eventually(Duration::from_secs(3), "a.is_leader()", || a.is_leader()).await;
    assert!(token(&a) > first_token);
    a.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwritten_key_ends_the_term_and_never_panics() {
    let server = support::server().await;
    let client = server.client().await;
    let key = unique_name("overwritten");
    let a = election(&server.url(), &key, "a");
    let b = election(&server.url(), &key, "b");
    let recorder = TermRecorder::new();
    recorder.attach(&a);
    recorder.attach(&b);
    a.start().await.unwrap();
    eventually(Duration::from_secs(3), "a.is_leader()", || a.is_leader()).await;
    b.start().await.unwrap();
    let first_token = token(&a);
    let lease_key = a.store().lease_key().to_owned();

    // Garbage without expiry: the leader steps down, nobody can lead, errors say why.
    let mut events = b.subscribe();
    command(&client, &["SET", &lease_key, "operator was here"]).await;
    eventually(Duration::from_secs(2), "!a.is_leader()", || !a.is_leader()).await;
    let error = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            if let Ok(leader_election::ElectionEvent::Error(err)) = events.recv().await {
                break err;
            }
        }
    })
    .await
    .expect("an error event about the garbage");
    assert!(matches!(error, Error::InvalidData { .. }), "{error}");
    assert!(!a.is_leader() && !b.is_leader());
    assert!(a.current_leader().await.is_err());

    // Another owner's lease written by hand: respected until it expires, then taken over
    // with a token above both.
    let intruder = r#"{"instance":"intruder","lease":"x","token":"5"}"#;
    command(&client, &["SET", &lease_key, intruder, "PX", "1000"]).await;
    let seen = a
        .current_leader()
        .await
        .expect("readable")
        .expect("a leader");
    assert_eq!(seen.instance_id, "intruder");
    let now = one_leader(&[&a, &b], Duration::from_secs(5)).await;
    assert!(token([&a, &b][now]) > first_token);
    recorder.assert_safe();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_that_lost_the_lease_waits_it_out() {
    let primary = support::server().await;
    let replica = support::server().await;
    let replica_client = replica.client().await;
    command(
        &replica_client,
        &["CONFIG", "SET", "replica-read-only", "no"],
    )
    .await;
    let port = primary.port().to_string();
    command(&replica_client, &["REPLICAOF", "127.0.0.1", &port]).await;
    eventually_async(
        Duration::from_secs(10),
        "the replica did not sync",
        || async {
            let info = command(&replica_client, &["INFO", "replication"]).await;
            info.as_string()
                .is_some_and(|i| i.contains("master_link_status:up"))
        },
    )
    .await;
    // Every contender reaches "the primary" through one address, as behind a virtual IP.
    let proxy = FaultProxy::to_port(primary.port()).await;
    let key = unique_name("failover");
    let a = election(&proxy.redis_url(), &key, "a");
    let b = election(&proxy.redis_url(), &key, "b");
    let recorder = TermRecorder::new();
    recorder.attach(&a);
    recorder.attach(&b);
    a.start().await.unwrap();
    eventually(Duration::from_secs(3), "a.is_leader()", || a.is_leader()).await;
    b.start().await.unwrap();
    let first_token = token(&a);
    let lease_key = a.store().lease_key().to_owned();
    eventually_async(
        Duration::from_secs(5),
        "the lease was not replicated",
        || async {
            command(&replica_client, &["EXISTS", &lease_key])
                .await
                .as_i64()
                == Some(1)
        },
    )
    .await;

    // The primary dies; the replica is promoted without the latest lease (as if its
    // replication had lagged), and the address now leads to it.
    command(&replica_client, &["REPLICAOF", "NO", "ONE"]).await;
    command(&replica_client, &["DEL", &lease_key]).await;
    proxy.switch_to_port(replica.port());
    primary.kill().await;
    let failed_over_at = Instant::now();
    let lease = a.options().lease_duration;

    eventually(
        Duration::from_secs(8),
        lazy(|| format!("no new term after the failover: {:?}", recorder.terms())),
        || recorder.terms().len() >= 2 && recorder.current().is_some(),
    )
    .await;
    let second = recorder.terms()[1].clone();
    assert!(
        second.start.saturating_duration_since(failed_over_at)
            >= lease - Duration::from_millis(100),
        "a new term {:?} after the failover, within the lost lease",
        second.start.saturating_duration_since(failed_over_at)
    );
    assert!(second.token > first_token);
    recorder.assert_safe();
    stop_and_check(&recorder, &[&a, &b]).await;
}

/// The guards after a restart cover the longest lease the election holds, not the caller's own:
/// during a rolling change of `lease_duration`, a contender on a short lease must not lead while
/// a leader on a long lease, cut off from Redis, still trusts its term.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_a_short_lease_contender_out_while_a_long_lease_is_trusted() {
    let server = support::server().await;
    let proxy = FaultProxy::to_port(server.port()).await;
    let key = unique_name("mixed-leases");
    support::prime(&server.url(), &key).await;
    let mut long = support::fast_options("a");
    long.lease_duration = Duration::from_secs(6);
    long.renew_interval = Duration::from_millis(500);
    // Keeps retrying its renewals, so it trusts its term until its deadline (as a paused
    // process would).
    long.max_retry_attempts = 100;
    let a = leader_election_redis::RedisLeaderElection::builder()
        .url(proxy.redis_url())
        .key(&key)
        .options(long)
        .build()
        .unwrap();
    // B's lease is 1.5 s.
    let b = election(&server.url(), &key, "b");
    let recorder = TermRecorder::new();
    recorder.attach(&a);
    recorder.attach(&b);
    a.start().await.unwrap();
    // A server up for less than A's lease grants A nothing yet.
    let a_lease = a.options().lease_duration;
    eventually(a_lease + Duration::from_secs(2), "a.is_leader()", || {
        a.is_leader()
    })
    .await;
    b.start().await.unwrap();
    eventually(Duration::from_secs(3), "b never saw a lead", || {
        b.state().leader.is_some_and(|l| l.instance_id == "a")
    })
    .await;

    // A is cut off (it keeps trusting its term until its deadline) and Redis restarts
    // without persistence.
    proxy.hang();
    server.restart().await;
    // A steps down by its own deadline; b must not lead while a still trusts its 6 s lease
    // (the recorder's check below sees every term, so no overlap goes unseen).
    eventually(
        a_lease + Duration::from_secs(1),
        "a still leads past its lease",
        || !a.is_leader(),
    )
    .await;
    recorder.assert_safe();
    eventually(
        a_lease + Duration::from_secs(3),
        "b never took over",
        || b.is_leader(),
    )
    .await;
    recorder.assert_safe();
    proxy.heal();
    stop_and_check(&recorder, &[&a, &b]).await;
}

/// Design rule 13 on a real server: a leader whose renewals keep failing steps down before its
/// deadline, and then releases (the backend is reachable again) — but only once its work has
/// ended. Leader work that ignores cancellation keeps the lease, so the follower, woken by the
/// release, never starts while the old work runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stepping_down_after_failed_renewals_releases_after_its_work() {
    use leader_election::testing::FaultyStore;
    use std::sync::{Arc, Mutex};

    let server = support::server().await;
    let key = unique_name("work-outlives");
    let faulty = FaultyStore::new(support::store(&server.url(), &key).await);
    let control = faulty.control();
    let a = LeaderElection::new(faulty, support::fast_options("a")).unwrap();
    let b = election(&server.url(), &key, "b");
    let recorder = TermRecorder::new();
    recorder.attach(&a).attach(&b);
    lead_then_follow(&a, &b, Duration::from_secs(3)).await;

    // Leader work that ignores cancellation: it runs until a has stepped down, then 500 ms
    // more (inside a's `shutdown_timeout` of 1 s).
    let (stepped_down, stepped_down_rx) = std::sync::mpsc::channel::<()>();
    let ended = Arc::new(Mutex::new(None));
    let ended_at = Arc::clone(&ended);
    let worker = a.clone();
    let task = tokio::spawn(async move {
        worker
            .run_blocking_task_if_leader(move |_| {
                let _ = stepped_down_rx.recv();
                // The work's own length past the step-down: what the test measures.
                std::thread::sleep(Duration::from_millis(500));
                *ended_at.lock().unwrap() = Some(Instant::now());
            })
            .await
    });
    // The renewals fail (as behind a latency above `operation_timeout`); the release after
    // them reaches the server.
    let first = a.leadership().expect("a leads").token().get();
    control.fail_next(a.options().max_retry_attempts);
    eventually(Duration::from_secs(3), "a steps down", || !a.is_leader()).await;
    stepped_down.send(()).unwrap();
    let _ = task.await.unwrap();
    let ended = ended.lock().unwrap().expect("the work ended");
    // The first term after a's, even if it has ended already.
    let next = match recorder.terms().into_iter().find(|t| t.token.get() > first) {
        Some(term) => term,
        None => recorder.term_after(first, Duration::from_secs(5)).await,
    };
    assert!(
        next.start >= ended,
        "b led {:?} before a's work ended",
        ended.duration_since(next.start)
    );
    // Released, not expired: b took over well inside a lease of the work's end.
    assert!(
        next.start.duration_since(ended) < a.options().lease_duration,
        "b took over {:?} after the work ended",
        next.start.duration_since(ended)
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    recorder.assert_safe();
}
