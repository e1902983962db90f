//! The S3 backend against a real S3 emulator (moto's server, see
//! `leader_election_test_support::S3Emulator`): first what the backend relies on from the
//! emulator, then the core's conformance suite, the shared election checks, and faults
//! (contenders racing, a leader gone without release, a leader cut off by the fault proxy, the
//! emulator restarted empty). One emulator serves the whole binary, each test on its own key;
//! the restart test has its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use leader_election::testing::{
    Check, ConformanceOptions, TakeoverOptions, TermRecorder, crashed_leader_is_replaced,
    cut_off_leader_steps_down, election_controls, leader_metadata, preferred_leader_handover,
    racing_handovers, run_checks, tokens_increase_across_rebuilt_stores,
};
use leader_election::{AcquireOutcome, Lease, LeaseRequest, LeaseStore, RenewOutcome};
use leader_election_s3::aws::aws_sdk_s3;
use leader_election_s3::aws::aws_sdk_s3::primitives::ByteStream;
use leader_election_test_support::s3::BUCKET;
use leader_election_test_support::{
    FaultProxy, S3Emulator, S3EmulatorExt, eventually, unique_name,
};
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// The emulator of this test binary, started by the first test that needs it.
async fn emulator() -> &'static S3Emulator {
    static EMULATOR: OnceCell<S3Emulator> = OnceCell::const_new();
    EMULATOR.get_or_init(S3Emulator::start).await
}

fn acquired(outcome: AcquireOutcome) -> Lease {
    match outcome {
        AcquireOutcome::Acquired(lease) => lease,
        other => panic!("expected to acquire, got {other:?}"),
    }
}

/// The ETag of `key`, or `None` when it is missing.
async fn etag(client: &aws_sdk_s3::Client, key: &str) -> Option<String> {
    client
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .ok()
        .and_then(|head| head.e_tag().map(str::to_owned))
}

/// The HTTP status of a failed request, or 200.
fn status<E, T>(
    result: &Result<T, aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
) -> u16 {
    match result {
        Ok(_) => 200,
        Err(err) => err.raw_response().map_or(0, |r| r.status().as_u16()),
    }
}

/// A store that has written the bucket once (so that raw SDK calls find it).
async fn bucket_ready(emulator: &S3Emulator) -> aws_sdk_s3::Client {
    let store = emulator.store(&unique_name("bucket"));
    let request = LeaseRequest::new("setup", Duration::from_secs(1));
    let lease = acquired(store.try_acquire(&request).await.expect("acquire"));
    assert!(store.release(&request, &lease).await.expect("release"));
    emulator.operator().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_enforces_conditional_writes_atomically() {
    let client = bucket_ready(emulator().await).await;
    let key = unique_name("conditions");
    let put = |body: &'static str| {
        client
            .put_object()
            .bucket(BUCKET)
            .key(&key)
            .body(ByteStream::from_static(body.as_bytes()))
    };
    let first = put("one").if_none_match("*").send().await.expect("create");
    let first = first.e_tag().unwrap().to_owned();
    assert_eq!(
        status(&put("two").if_none_match("*").send().await),
        412,
        "If-None-Match: * on an existing key"
    );
    let second = put("two")
        .if_match(&first)
        .send()
        .await
        .expect("If-Match on the current ETag");
    let second = second.e_tag().unwrap().to_owned();
    assert_eq!(
        status(&put("three").if_match(&first).send().await),
        412,
        "a stale If-Match"
    );
    // The same bytes again keep the ETag (the MD5 of the body): why every write of the backend
    // carries a nonce.
    let same = put("two")
        .if_match(&second)
        .send()
        .await
        .expect("same body");
    assert_eq!(same.e_tag(), Some(second.as_str()));

    // Racing conditional writes on one key: exactly one wins each round.
    let client = Arc::new(client.clone());
    for round in 0..15 {
        let key = format!("{key}-race{round}");
        let wins = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (client, key, wins) = (Arc::clone(&client), key.clone(), Arc::clone(&wins));
            tasks.push(tokio::spawn(async move {
                let created = client
                    .put_object()
                    .bucket(BUCKET)
                    .key(&key)
                    .body(ByteStream::from(format!("create {i}").into_bytes()))
                    .if_none_match("*")
                    .send()
                    .await;
                if created.is_ok() {
                    wins.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        for task in tasks.drain(..) {
            task.await.unwrap();
        }
        assert_eq!(
            wins.load(Ordering::SeqCst),
            1,
            "round {round}: If-None-Match winners"
        );
        let current = etag(&client, &key).await.expect("created");
        let wins = Arc::new(AtomicUsize::new(0));
        for i in 0..8 {
            let (client, key, wins, current) = (
                Arc::clone(&client),
                key.clone(),
                Arc::clone(&wins),
                current.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let updated = client
                    .put_object()
                    .bucket(BUCKET)
                    .key(&key)
                    .body(ByteStream::from(format!("update {i}").into_bytes()))
                    .if_match(current)
                    .send()
                    .await;
                if updated.is_ok() {
                    wins.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            wins.load(Ordering::SeqCst),
            1,
            "round {round}: If-Match winners"
        );
    }
}

/// Timings of the conformance checks: leases of 2 s; expiry and takeover are seen within a
/// follower's watch (a lease, 1 % and 100 ms) plus polling.
fn conformance() -> ConformanceOptions {
    ConformanceOptions::new(Duration::from_secs(2), Duration::from_secs(3))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes() {
    let emulator = emulator().await;
    // S3 tells nobody when an object changes: followers poll, so there are no release
    // notifications to check; that check is left out, and only it.
    let checks = Check::ALL
        .into_iter()
        .filter(|check| *check != Check::ReleaseWakesWaiters);
    run_checks(conformance(), checks, || {
        let store = emulator.store(&unique_name("conformance"));
        async move { store }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_tokens_increase_across_rebuilt_stores() {
    let emulator = emulator().await;
    let key = unique_name("rebuilt");
    tokens_increase_across_rebuilt_stores(&conformance(), || {
        let store = emulator.store(&key);
        async move { store }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_changes_the_etag_so_renewals_are_seen() {
    let emulator = emulator().await;
    let client = emulator.operator().await;
    let key = unique_name("etag");
    let store = emulator.store(&key);
    let request = LeaseRequest::new("a", Duration::from_secs(2)).with_metadata(Some(b"m".to_vec()));
    let lease = acquired(store.try_acquire(&request).await.unwrap());
    let mut seen = vec![etag(&client, &key).await.expect("written")];
    // Renewals carry the same holder, token and metadata: only the nonce differs.
    for _ in 0..3 {
        assert_eq!(
            store.renew(&request, &lease).await.unwrap(),
            RenewOutcome::Renewed
        );
        let current = etag(&client, &key).await.expect("written");
        assert!(
            !seen.contains(&current),
            "a renewal kept an earlier ETag {current}"
        );
        seen.push(current);
    }
    // The owner acquiring again rewrites too.
    assert_eq!(
        acquired(store.try_acquire(&request).await.unwrap()).token,
        lease.token
    );
    let current = etag(&client, &key).await.expect("written");
    assert!(!seen.contains(&current));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_minted_from_the_service_clock_and_survive_deletion() {
    let emulator = emulator().await;
    let client = emulator.operator().await;
    let key = unique_name("clock-token");
    let mut last = None;
    // Each round a brand-new store (a new process) acquires right after the object was
    // deleted, several times within a second or two.
    for round in 0..4 {
        let store = emulator.store(&key);
        let request = LeaseRequest::new(format!("p{round}"), Duration::from_secs(2));
        let token = loop {
            match store.try_acquire(&request).await.unwrap() {
                AcquireOutcome::Withheld { wait, .. } => tokio::time::sleep(wait).await,
                outcome => break acquired(outcome).token,
            }
        };
        if let Some(last) = last {
            assert!(token > last, "round {round}: token {token} after {last}");
        } else {
            let now_us = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros() as u64;
            // The emulator runs on this machine: its clock is ours, to the second.
            assert!(
                token.get().abs_diff(now_us) < 5_000_000,
                "token {token} is not server µs"
            );
        }
        last = Some(token);
        client
            .delete_object()
            .bucket(BUCKET)
            .key(&key)
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_controls_work_against_the_emulator() {
    let emulator = emulator().await;
    let key = unique_name("controls");
    let options = emulator.election(&key, "controls").options().clone();
    // Followers poll every retry_interval (250 ms) and see a release at their next poll.
    let report = election_controls(&options, Duration::from_secs(2), || {
        let store = emulator.store(&key);
        async move { store }
    })
    .await;
    eprintln!("s3 controls: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_metadata_works_against_the_emulator() {
    let emulator = emulator().await;
    let key = unique_name("metadata");
    let options = emulator.election(&key, "metadata").options().clone();
    let report = leader_metadata(&options, Duration::from_secs(2), || {
        let store = emulator.store(&key);
        async move { store }
    })
    .await;
    eprintln!("s3 metadata: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_leaders_take_over_against_the_emulator() {
    let emulator = emulator().await;
    let key = unique_name("preferred");
    let options = emulator.election(&key, "preferred").options().clone();
    // No release notifications: the preferred candidate takes over at its next attempt, at
    // most a renew interval (1 s) after the release.
    let handover = preferred_leader_handover(&options, Duration::from_millis(1_500), || {
        let store = emulator.store(&key);
        async move { store }
    })
    .await;
    eprintln!("s3 preferred-leader handover: {handover:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_contenders_never_overlap() {
    let emulator = emulator().await;
    let key = unique_name("race");
    let elections: Vec<_> = (0..5)
        .map(|i| emulator.election(&key, &format!("c{i}")))
        .collect();
    // The shared race: leaders hand over again and again while followers grab by hand; a
    // release is taken at the next poll.
    let handovers = racing_handovers(&elections, 8).await;
    eprintln!("s3 race handovers: {handovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_gone_without_release_is_replaced_after_about_one_lease() {
    let emulator = emulator().await;
    let key = unique_name("crash");
    let a = emulator.election(&key, "a");
    let b = emulator.election(&key, "b");
    let lease = a.options().lease_duration;
    let renew = a.options().renew_interval;
    let retry = b
        .options()
        .retry_interval
        .mul_f64(1.0 + b.options().retry_jitter);
    // Longer than a lease: renewals keep the follower out. After the crash, the follower
    // watches the last version unchanged for a lease (and its drift allowance), then polls.
    let options = TakeoverOptions {
        hold: lease + renew,
        slack: retry + Duration::from_secs(2),
        ..TakeoverOptions::default()
    };
    let report = crashed_leader_is_replaced(a, b, &options).await;
    eprintln!("s3 crash failover: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_steps_down_before_a_follower_takes_over() {
    let emulator = emulator().await;
    let proxy = FaultProxy::to_port(emulator.port()).await;
    let key = unique_name("partition");
    let a = emulator
        .builder_via(proxy.port(), &key, "a")
        .build()
        .unwrap();
    let b = emulator.election(&key, "b");
    let options = TakeoverOptions {
        slack: Duration::from_secs(3),
        ..TakeoverOptions::default()
    };
    let report = cut_off_leader_steps_down(a, b, || proxy.hang(), || proxy.heal(), &options).await;
    eprintln!("s3 partition: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emulator_restarted_empty_elects_again_after_a_lease_with_a_greater_token() {
    // Its own emulator: the restart empties it.
    let emulator = S3Emulator::start().await;
    let key = unique_name("restart");
    let recorder = TermRecorder::new();
    let elections: Vec<_> = (0..3)
        .map(|i| emulator.election(&key, &format!("c{i}")))
        .collect();
    recorder.start_all(&elections).await.unwrap();
    eventually(Duration::from_secs(10), "one leads, all see it", || {
        elections.iter().any(|e| e.is_leader())
            && elections
                .iter()
                .all(|e| e.is_leader() || e.state().leader.is_some())
    })
    .await;
    let first = recorder.current().expect("a term").token;

    // From before the restart: a follower may see the empty emulator before it returns here.
    let restarted = Instant::now();
    emulator.restart().await;
    let lease = elections[0].options().lease_duration;
    eventually(
        lease + Duration::from_secs(5),
        "a new term after the restart",
        || recorder.terms().iter().any(|t| t.token > first),
    )
    .await;
    let term = recorder
        .terms()
        .into_iter()
        .find(|t| t.token > first)
        .expect("a new term");
    // Followers had seen the object: the missing object is withheld for a lease from when they
    // first saw it gone (after the restart).
    assert!(
        term.start >= restarted + lease,
        "a new leader {:?} after the restart, within a lease",
        term.start - restarted
    );
    for election in &elections {
        election.stop().await.unwrap();
    }
    recorder.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_counts_show_what_a_follower_pays() {
    let emulator = emulator().await;
    let key = unique_name("cost");
    let a = emulator.election(&key, "a");
    let b = emulator.election(&key, "b");
    a.start().await.unwrap();
    eventually(Duration::from_secs(5), "a leads", || a.is_leader()).await;
    b.start().await.unwrap();
    eventually(Duration::from_secs(2), "b follows", || {
        b.state().leader.is_some()
    })
    .await;
    let before = b.store().request_counts();
    let lease = b.options().lease_duration;
    tokio::time::sleep(lease * 2).await;
    let spent = b.store().request_counts();
    let (heads, gets) = (spent.head - before.head, spent.get - before.get);
    // One HEAD per poll (every 250 ms, ±10 %) and one GET per renewal seen (every second).
    let polls = (lease * 2).as_millis() as u64 / 250;
    // At most one per poll; at least half as many on a loaded machine (each poll waits for its
    // reply before sleeping again).
    assert!(
        heads >= polls / 2 && heads <= polls * 12 / 10 + 2,
        "{heads} HEADs"
    );
    assert!(gets <= 2 * 2 * lease.as_secs() + 2, "{gets} GETs");
    assert_eq!(spent.put, before.put, "a follower wrote");
    eprintln!(
        "s3 follower per lease: {} HEAD, {} GET",
        heads / 2,
        gets / 2
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_copy_of_a_watched_version_restarts_the_watch() {
    // A follower watches version 1, misses a renewal, then sees an exact copy of version 1
    // restored by an operator (the same bytes, so the same ETag): it must not count the lease
    // as unrenewed since it first saw version 1.
    let emulator = emulator().await;
    let client = emulator.operator().await;
    let key = unique_name("restored");
    let ttl = Duration::from_secs(2);
    let leader = emulator.store(&key);
    let a = LeaseRequest::new("a", ttl);
    let lease = acquired(leader.try_acquire(&a).await.unwrap());
    let version1 = client
        .get_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let follower = emulator.store(&key);
    let b = LeaseRequest::new("b", ttl);
    assert!(matches!(
        follower.try_acquire(&b).await.unwrap(),
        AcquireOutcome::Held { .. }
    ));
    let watched = Instant::now();
    // In a later second than version 1 was written: renewed, then version 1 restored.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        leader.renew(&a, &lease).await.unwrap(),
        RenewOutcome::Renewed
    );
    client
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(ByteStream::from(version1.to_vec()))
        .send()
        .await
        .unwrap();
    assert!(matches!(
        follower.try_acquire(&b).await.unwrap(),
        AcquireOutcome::Held { .. }
    ));
    let restarted = Instant::now();
    // Past the watch of version 1 (2 s, 1 %, 100 ms) from when it was first seen, but not
    // from when the copy was seen.
    tokio::time::sleep_until(watched + Duration::from_millis(2_300)).await;
    assert!(restarted + Duration::from_millis(2_120) > Instant::now());
    match follower.try_acquire(&b).await.unwrap() {
        AcquireOutcome::Held { .. } => {}
        other => panic!("took over the restored copy at once: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_an_error_unless_it_may_be_created() {
    let emulator = emulator().await;
    let store = emulator
        .builder(&unique_name("nobucket"), "a")
        .bucket(unique_name("absent"))
        .create_bucket_if_not_exists(false)
        .build_store()
        .unwrap();
    let request = LeaseRequest::new("a", Duration::from_secs(2));
    let err = loop {
        match store.try_acquire(&request).await {
            Ok(AcquireOutcome::Withheld { wait, .. }) => tokio::time::sleep(wait).await,
            Ok(other) => panic!("acquired without a bucket: {other:?}"),
            Err(err) => break err,
        }
    };
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_proves_the_emulator_enforces_conditions_and_leaves_no_probe() {
    let emulator = emulator().await;
    let client = bucket_ready(emulator).await;
    let key = unique_name("probe");
    let store = emulator.store(&key);
    store
        .connect()
        .await
        .expect("moto enforces conditional writes");
    let before = store.request_counts();
    // Proven once per store: connecting again costs nothing.
    store.connect().await.unwrap();
    assert_eq!(store.request_counts(), before);
    let listed = client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(&key)
        .send()
        .await
        .expect("list");
    assert_eq!(listed.key_count(), Some(0), "{:?}", listed.contents());
}
