//! The Azure Blob backend against a real Azurite: the core's conformance suite, authentication
//! forms, durable tokens, and faults (lease broken, blob deleted, Azurite restarted, leader gone
//! without release, contenders racing).

use std::time::Duration;

use leader_election::testing::{
    Check, ConformanceOptions, FaultControl, FaultyStore, TakeoverOptions, TermRecorder,
    crashed_leader_is_replaced, cut_off_leader_steps_down, election_controls, leader_metadata,
    racing_handovers, run_checks, tokens_increase_across_rebuilt_stores,
};
use leader_election::{
    AcquireOutcome, ChangeReason, ElectionEvent, LeaderElection, LeaseRequest, LeaseStore,
    RenewOutcome,
};
use leader_election_blob::{BlobLeaderElection, BlobLeaseStore};
use leader_election_test_support::azurite::{self as support, account_sas, break_lease_now};
use leader_election_test_support::{Azurite, eventually, unique_container};
use tokio::time::Instant;

const TTL: Duration = Duration::from_secs(15);

type Election = LeaderElection<BlobLeaseStore>;

/// Whether `follower` sees `leader` (an instance id) lead, and does not lead itself.
fn follows(follower: &Election, leader: &str) -> bool {
    !follower.is_leader()
        && follower
            .state()
            .leader
            .is_some_and(|l| l.instance_id == leader)
}

fn acquired(outcome: AcquireOutcome) -> leader_election::Lease {
    match outcome {
        AcquireOutcome::Acquired(lease) => lease,
        other => panic!("expected to acquire, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes() {
    let azurite = Azurite::start().await;
    let mut n = 0;
    // Azure tells nobody when a lease is released: blob followers poll, so the release
    // notification check is left out, and only it.
    let checks = Check::ALL
        .into_iter()
        .filter(|check| *check != Check::ReleaseWakesWaiters);
    run_checks(
        ConformanceOptions::new(TTL, Duration::from_secs(5)),
        checks,
        || {
            n += 1;
            let store = azurite.store(&unique_container(&format!("conformance{n}")));
            async move { store }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_tokens_increase_across_rebuilt_stores() {
    let azurite = Azurite::start().await;
    let container = unique_container("rebuilt");
    tokens_increase_across_rebuilt_stores(
        &ConformanceOptions::new(TTL, Duration::from_secs(5)),
        || {
            let store = azurite.store(&container);
            async move { store }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_durable_across_stores_and_identity_is_recorded() {
    let azurite = Azurite::start().await;
    let container = unique_container("durable");
    let first = azurite.store(&container);
    let a = LeaseRequest::new("node-ä 1", TTL);
    let lease = acquired(first.try_acquire(&a).await.unwrap());
    let leader = first.current_leader().await.unwrap().expect("a leader");
    assert_eq!(leader.instance_id, "node-ä 1");
    assert_eq!(leader.token, Some(lease.token));
    assert!(first.release(&a, &lease).await.unwrap());
    drop(first);

    // A store that has seen nothing (a restart of everything) continues from the blob.
    let second = azurite.store(&container);
    let b = LeaseRequest::new("node-2", TTL);
    let next = acquired(second.try_acquire(&b).await.unwrap());
    // Above the stored token (+ 1 within the same second of the service's clock, its time in
    // µs after that).
    assert!(
        next.token > lease.token,
        "{} after {}",
        next.token,
        lease.token
    );
    // Held: the follower learns who leads.
    let third = azurite.store(&container);
    match third
        .try_acquire(&LeaseRequest::new("node-3", TTL))
        .await
        .unwrap()
    {
        AcquireOutcome::Held { leader, expires_in } => {
            let leader = leader.expect("leader reported");
            assert_eq!(leader.instance_id, "node-2");
            assert_eq!(leader.token, Some(next.token));
            assert_eq!(expires_in, None);
        }
        other => panic!("expected Held, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_container_is_an_error_when_creation_is_off() {
    let azurite = Azurite::start().await;
    let store = azurite
        .builder(&unique_container("nocreate"), "a")
        .create_container_if_not_exists(false)
        .build_store()
        .unwrap();
    let err = store
        .try_acquire(&LeaseRequest::new("a", TTL))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sas_url_and_sas_connection_strings_work() {
    let azurite = Azurite::start().await;
    let sas = account_sas();
    // A trailing slash on the service URL must not break Azurite's path-style URLs.
    let by_url = BlobLeaderElection::builder()
        .sas_url(format!("{}/?{sas}", azurite.blob_endpoint()))
        .container_name(unique_container("sas"))
        .build_store()
        .unwrap();
    assert!(!format!("{by_url:?}").contains("sig="));
    let a = LeaseRequest::new("a", TTL);
    let lease = acquired(by_url.try_acquire(&a).await.unwrap());
    assert_eq!(
        by_url.renew(&a, &lease).await.unwrap(),
        RenewOutcome::Renewed
    );
    assert!(by_url.release(&a, &lease).await.unwrap());

    let by_string = BlobLeaderElection::builder()
        .connection_string(format!(
            "BlobEndpoint={}/;SharedAccessSignature={sas}",
            azurite.blob_endpoint()
        ))
        .container_name(unique_container("sas"))
        .build_store()
        .unwrap();
    acquired(by_string.try_acquire(&a).await.unwrap());

    // A wrong signature is refused, and the error does not show it.
    let forged = sas.rsplit_once("sig=").unwrap().0.to_owned() + "sig=Zm9yZ2VkLXNpZw%3D%3D";
    let bad = BlobLeaderElection::builder()
        .sas_url(format!("{}?{forged}", azurite.blob_endpoint()))
        .container_name(unique_container("sas"))
        .build_store()
        .unwrap();
    let err = bad.try_acquire(&a).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    assert!(!format!("{err:?}").contains("Zm9yZ2Vk"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_service_fails_fast_without_leaking_secrets() {
    let azurite = Azurite::start().await;
    let port = azurite.port();
    drop(azurite);
    let store = BlobLeaderElection::builder()
        .sas_url(format!(
            "http://127.0.0.1:{port}/{}?sv=1&sig=TOPSECRET",
            support::ACCOUNT
        ))
        .container_name("unreachable")
        .build_store()
        .unwrap();
    let started = Instant::now();
    let err = store
        .try_acquire(&LeaseRequest::new("a", TTL))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(err.is_retryable(), "{err}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("TOPSECRET"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_broken_by_an_operator_ends_the_term() {
    let azurite = Azurite::start().await;
    let container = unique_container("broken");
    let recorder = TermRecorder::new();
    let a = azurite.election(&container, "a");
    let b = azurite.election(&container, "b");
    let mut events = a.subscribe();
    recorder.attach(&a);
    recorder.attach(&b);
    a.start().await.unwrap();
    eventually(Duration::from_secs(10), "a leads", || a.is_leader()).await;
    b.start().await.unwrap();
    let first = a.leadership().unwrap().token();

    // Break Lease with the default break period: the lease ends when its current period does,
    // and nobody can acquire it meanwhile.
    azurite
        .operator(&container)
        .break_lease(None)
        .await
        .unwrap();
    let broken_at = Instant::now();
    // The next renewal (every 3 s) finds the lease breaking.
    let renew = a.options().renew_interval + a.options().operation_timeout();
    eventually(renew + Duration::from_secs(1), "a steps down", || {
        recorder
            .terms_of("a")
            .first()
            .is_some_and(|t| t.end_reason.is_some())
    })
    .await;
    assert!(broken_at.elapsed() <= renew + Duration::from_secs(1));
    let reason = loop {
        match events.recv().await.unwrap() {
            ElectionEvent::LeadershipChanged {
                is_leader: false,
                reason,
                ..
            } => break reason,
            _ => continue,
        }
    };
    assert_eq!(reason, ChangeReason::LeaseLost);
    // Once the break period is over, somebody leads again, in a new term.
    eventually(TTL + Duration::from_secs(2), "a new leader", || {
        a.is_leader() || b.is_leader()
    })
    .await;
    let leader = if a.is_leader() { &a } else { &b };
    assert!(leader.leadership().unwrap().token() > first);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    recorder.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_blob_ends_the_term_and_tokens_keep_increasing() {
    let azurite = Azurite::start().await;
    let container = unique_container("deleted");
    let recorder = TermRecorder::new();
    let a = azurite.election(&container, "a");
    let b = azurite.election(&container, "b");
    recorder.attach(&a);
    recorder.attach(&b);
    a.start().await.unwrap();
    eventually(Duration::from_secs(10), "a leads", || a.is_leader()).await;
    b.start().await.unwrap();
    eventually(Duration::from_secs(10), "b follows a", || follows(&b, "a")).await;
    let first = a.leadership().unwrap().token();

    // An operator forces the lease off at once and deletes the blob. a leads until its next
    // renewal; b, which saw the lease held, withholds it for a lease (rule 9), and the new
    // term's token is greater.
    let operator = azurite.operator(&container);
    break_lease_now(&operator).await;
    operator.delete(None).await.unwrap();
    let renew = a.options().renew_interval + a.options().operation_timeout();
    eventually(renew + Duration::from_secs(1), "a steps down", || {
        recorder
            .terms_of("a")
            .first()
            .is_some_and(|t| t.end_reason.is_some())
    })
    .await;
    eventually(TTL + Duration::from_secs(5), "a new leader", || {
        a.is_leader() || b.is_leader()
    })
    .await;
    let leader = if a.is_leader() { &a } else { &b };
    let token = leader.leadership().unwrap().token();
    assert!(
        token > first,
        "token {token} after {first}: the history must not restart"
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    // Touching the record is not releasing it: no overlap at all, one checker.
    recorder.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azurite_restart_keeps_one_leader() {
    let azurite = Azurite::start().await;
    let container = unique_container("restart");
    let recorder = TermRecorder::new();
    let a = azurite.election(&container, "a");
    let b = azurite.election(&container, "b");
    recorder.attach(&a);
    recorder.attach(&b);
    a.start().await.unwrap();
    eventually(Duration::from_secs(10), "a leads", || a.is_leader()).await;
    b.start().await.unwrap();
    eventually(Duration::from_secs(10), "b follows a", || follows(&b, "a")).await;

    azurite.stop().await;
    // The outage itself: the server stays down for longer than a renew interval.
    tokio::time::sleep(Duration::from_secs(4)).await;
    azurite.restart().await;
    let restarted = Instant::now();
    // Whoever leads now, somebody leads within a lease and a few retries of the restart (never
    // both), and then the other follows it.
    eventually(
        TTL + Duration::from_secs(5),
        "a leader after the restart",
        || {
            assert!(!(a.is_leader() && b.is_leader()), "two leaders");
            a.is_leader() || b.is_leader()
        },
    )
    .await;
    tracing_free_log(&format!(
        "leader again {:?} after restart",
        restarted.elapsed()
    ));
    let settled = |leader: &Election, follower: &Election| {
        leader.is_leader() && follows(follower, leader.instance_id())
    };
    eventually(
        Duration::from_secs(10),
        "one leader, followed by the other, after the restart",
        || {
            assert!(!(a.is_leader() && b.is_leader()), "two leaders");
            settled(&a, &b) || settled(&b, &a)
        },
    )
    .await;
    // It keeps leading: the same term renews (its deadline moves on) while the other stays a
    // follower.
    let (leader, follower) = if a.is_leader() { (&a, &b) } else { (&b, &a) };
    let term = leader.leadership().expect("leading");
    let (token, deadline) = (term.token(), term.deadline());
    let renew = leader.options().renew_interval + leader.options().operation_timeout();
    eventually(
        renew + Duration::from_secs(2),
        "the leader renews its term after the restart",
        || {
            let now = leader.leadership().expect("the leader keeps leading");
            assert_eq!(now.token(), token, "the same term");
            assert!(!follower.is_leader(), "two leaders");
            now.deadline() > deadline
        },
    )
    .await;
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    recorder.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_gone_without_release_is_replaced_within_lease_plus_retry() {
    let azurite = Azurite::start().await;
    let container = unique_container("crash");
    let a = azurite.election(&container, "a");
    let b = azurite.election(&container, "b");
    // Dropping every handle stops the loop without releasing: the lease must expire, then the
    // follower's next poll takes it.
    let retry = b
        .options()
        .retry_interval
        .mul_f64(1.0 + b.options().retry_jitter);
    let options = TakeoverOptions {
        hold: Duration::from_secs(2),
        slack: retry + Duration::from_secs(1),
        ..TakeoverOptions::default()
    };
    let report = crashed_leader_is_replaced(a, b, &options).await;
    tracing_free_log(&format!("crash failover: {report:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_contenders_never_overlap() {
    let azurite = Azurite::start().await;
    let container = unique_container("race");
    let elections: Vec<_> = (0..4)
        .map(|i| azurite.election(&container, &format!("c{i}")))
        .collect();
    // The shared race: leaders hand over again and again while followers grab by hand; a
    // released lease is taken at a follower's next poll. Each successor is another contender
    // (the old leader is stopped until then).
    let handovers = racing_handovers(&elections, 6).await;
    tracing_free_log(&format!("race handovers: {handovers:?}"));
}

/// Prints a measurement so that `--nocapture` shows it.
fn tracing_free_log(line: &str) {
    println!("[leader-election-blob] {line}");
}

/// Counts the requests sent through a client.
#[derive(Debug, Default)]
struct Counter(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl azure_core::http::policies::Policy for Counter {
    #[allow(elided_lifetimes_in_paths)]
    async fn send(
        &self,
        ctx: &azure_core::http::Context,
        request: &mut azure_core::http::Request,
        next: &[std::sync::Arc<dyn azure_core::http::policies::Policy>],
    ) -> azure_core::http::policies::PolicyResult {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        next[0].send(ctx, request, &next[1..]).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_cost_few_requests_with_a_caller_built_client() {
    let azurite = Azurite::start().await;
    let counter = std::sync::Arc::new(Counter::default());
    let url = format!(
        "{}/{}?{}",
        azurite.blob_endpoint(),
        unique_container("cost"),
        account_sas()
    );
    let client = azure_storage_blob::BlobContainerClient::new(
        url.parse().unwrap(),
        None,
        Some(azure_storage_blob::BlobContainerClientOptions {
            client_options: azure_core::http::ClientOptions {
                retry: azure_core::http::RetryOptions::none(),
                per_try_policies: vec![counter.clone()],
                ..Default::default()
            },
            version: leader_election_blob::DEFAULT_API_VERSION.into(),
        }),
    )
    .unwrap();
    let store = BlobLeaderElection::builder()
        .container_client(client)
        .build_store()
        .unwrap();
    let count = || counter.0.swap(0, std::sync::atomic::Ordering::SeqCst);
    let a = LeaseRequest::new("a", TTL);
    let b = LeaseRequest::new("b", TTL);
    // First acquisition ever: read, acquire (404), create container and blob, acquire, write.
    let lease = acquired(store.try_acquire(&a).await.unwrap());
    let first = count();
    assert!(first <= 7, "{first} requests");
    let lease_b = {
        assert!(store.release(&a, &lease).await.unwrap());
        count();
        let lease = acquired(store.try_acquire(&b).await.unwrap());
        let cost = count();
        assert!(cost <= 3, "acquiring a free lease took {cost} requests");
        lease
    };
    assert!(matches!(
        store.try_acquire(&a).await.unwrap(),
        AcquireOutcome::Held { .. }
    ));
    assert_eq!(count(), 1, "a follower's attempt costs one request");
    assert_eq!(
        store.renew(&b, &lease_b).await.unwrap(),
        RenewOutcome::Renewed
    );
    assert_eq!(count(), 1, "a renewal costs one request");
    acquired(store.try_acquire(&b).await.unwrap());
    assert!(count() <= 2, "re-acquiring by the owner");
}

/// Forwards requests, and loses the reply of the next one that matches: the service acts, the
/// client sees a broken connection.
#[derive(Debug, Default)]
struct LoseReply(std::sync::Mutex<Option<&'static str>>);

impl LoseReply {
    fn next(&self, what: &'static str) {
        *self.0.lock().unwrap() = Some(what);
    }
}

#[async_trait::async_trait]
impl azure_core::http::policies::Policy for LoseReply {
    #[allow(elided_lifetimes_in_paths)]
    async fn send(
        &self,
        ctx: &azure_core::http::Context,
        request: &mut azure_core::http::Request,
        next: &[std::sync::Arc<dyn azure_core::http::policies::Policy>],
    ) -> azure_core::http::policies::PolicyResult {
        let action = request
            .headers()
            .iter()
            .find(|(name, _)| name.as_str() == "x-ms-lease-action")
            .map(|(_, value)| value.as_str().to_owned());
        let query = request.url().query().unwrap_or_default().to_owned();
        let response = next[0].send(ctx, request, &next[1..]).await?;
        let mut armed = self.0.lock().unwrap();
        let hit = match *armed {
            Some("acquire") => action.as_deref() == Some("acquire"),
            Some("metadata") => query.contains("comp=metadata"),
            _ => false,
        };
        if hit && response.status().is_success() {
            *armed = None;
            return Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Io,
                "connection reset after the request was sent",
            ));
        }
        Ok(response)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_replies_are_recovered_by_acquiring_again() {
    let azurite = Azurite::start().await;
    let faults = std::sync::Arc::new(LoseReply::default());
    let container = unique_container("lost");
    let url = format!("{}/{container}?{}", azurite.blob_endpoint(), account_sas());
    let client = azure_storage_blob::BlobContainerClient::new(
        url.parse().unwrap(),
        None,
        Some(azure_storage_blob::BlobContainerClientOptions {
            client_options: azure_core::http::ClientOptions {
                retry: azure_core::http::RetryOptions::none(),
                per_try_policies: vec![faults.clone()],
                ..Default::default()
            },
            version: leader_election_blob::DEFAULT_API_VERSION.into(),
        }),
    )
    .unwrap();
    let store = BlobLeaderElection::builder()
        .container_client(client)
        .blob_name("lock")
        .build_store()
        .unwrap();
    let other = azurite.store(&container);

    for lost in ["acquire", "metadata"] {
        let a = LeaseRequest::new("a", TTL);
        faults.next(lost);
        let err = store.try_acquire(&a).await.unwrap_err();
        assert!(err.is_outcome_unknown(), "{lost}: {err}");
        // The lease is in fact taken: nobody else gets it...
        let b = LeaseRequest::new("b", TTL);
        let outcome = other.try_acquire(&b).await.unwrap();
        assert!(
            matches!(outcome, AcquireOutcome::Held { .. }),
            "{lost}: {outcome:?}"
        );
        // ...and asking again with the same lease id gives it to its owner, with one token.
        let lease = acquired(store.try_acquire(&a).await.unwrap());
        let again = acquired(store.try_acquire(&a).await.unwrap());
        assert_eq!(lease.token, again.token, "{lost}");
        let leader = other.current_leader().await.unwrap().unwrap();
        assert_eq!(leader.instance_id, "a");
        assert_eq!(leader.token, Some(lease.token));
        assert!(store.release(&a, &lease).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_leader_steps_down_before_a_successor_leads() {
    let azurite = Azurite::start().await;
    let container = unique_container("cutoff");
    let (a, control) = faulty_election(&azurite, &container, "a");
    let b = azurite.election(&container, "b");
    let heal = control.clone();
    let options = TakeoverOptions {
        slack: Duration::from_secs(3),
        ..TakeoverOptions::default()
    };
    let report = cut_off_leader_steps_down(
        a,
        b,
        move || control.set_partitioned(true),
        move || heal.heal(),
        &options,
    )
    .await;
    tracing_free_log(&format!("partition: {report:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_replies_are_lost_steps_down_and_never_overlaps() {
    let azurite = Azurite::start().await;
    let recorder = TermRecorder::new();
    let container = unique_container("lost-replies");
    let (a, control) = faulty_election(&azurite, &container, "a");
    let b = azurite.election(&container, "b");
    recorder.attach(&a);
    recorder.attach(&b);
    a.start().await.unwrap();
    eventually(Duration::from_secs(10), "a leads", || a.is_leader()).await;
    b.start().await.unwrap();
    eventually(Duration::from_secs(10), "b follows a", || {
        b.state().leader.is_some_and(|l| l.instance_id == "a")
    })
    .await;
    control.set_drop_replies(true);
    let cut = Instant::now();
    // a's requests still take effect: its renewals keep the lease, but unconfirmed, so a
    // steps down at its deadline at the latest. Its retries may keep taking the lease without
    // knowing it (the outcome stays unknown), so b may not lead until the replies come back;
    // either way, never two at once.
    eventually(TTL, "a steps down", || !a.is_leader()).await;
    let quiet_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < quiet_until {
        recorder.assert_safe();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    control.heal();
    eventually(
        TTL + Duration::from_secs(5),
        "a leader after healing",
        || a.is_leader() || b.is_leader(),
    )
    .await;
    tracing_free_log(&format!(
        "lost replies: a leader again {:?} after the cut",
        cut.elapsed()
    ));
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    recorder.assert_safe();
}

/// A contender whose store is wrapped in a [`FaultyStore`], and the wrapper's switches.
fn faulty_election(
    azurite: &Azurite,
    container: &str,
    id: &str,
) -> (LeaderElection<FaultyStore<BlobLeaseStore>>, FaultControl) {
    let options = azurite.election(container, id).options().clone();
    let faulty = FaultyStore::new(azurite.builder(container, id).build_store().unwrap());
    let control = faulty.control();
    (LeaderElection::new(faulty, options).unwrap(), control)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_controls_work_against_azurite() {
    let azurite = Azurite::start().await;
    let container = unique_container("controls");
    let options = azurite.election(&container, "controls").options().clone();
    // Followers poll every retry_interval (500 ms): a resignation is seen within one poll.
    let report = election_controls(&options, Duration::from_secs(3), || {
        let store = azurite.store(&container);
        async move { store }
    })
    .await;
    eprintln!("blob controls: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_metadata_works_against_azurite() {
    let azurite = Azurite::start().await;
    let container = unique_container("metadata");
    let options = azurite.election(&container, "metadata").options().clone();
    // Followers poll every retry_interval (500 ms): a stop is seen within one poll.
    let report = leader_metadata(&options, Duration::from_secs(3), || {
        let store = azurite.store(&container);
        async move { store }
    })
    .await;
    eprintln!("blob metadata: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_metadata_is_a_base64_blob_metadata_value_written_with_the_holder() {
    let azurite = Azurite::start().await;
    let container = unique_container("metadatalayout");
    let store = azurite.store(&container);
    let request = LeaseRequest::new("a", TTL).with_metadata(Some(vec![0, 1, 2, 255]));
    let lease = acquired(store.try_acquire(&request).await.unwrap());
    let stored = blob_metadata(&store).await;
    assert_eq!(
        stored.get("leader_metadata").map(String::as_str),
        Some("AAEC/w==")
    );
    assert_eq!(
        stored.get("leader_instance_id").map(String::as_str),
        Some("a")
    );
    // A renewal with the same metadata writes nothing; with other metadata, writes it with the
    // holder's instance id and token.
    assert_eq!(
        store.renew(&request, &lease).await.unwrap(),
        RenewOutcome::Renewed
    );
    let changed = request.clone().with_metadata(Some(b"addr".to_vec()));
    assert_eq!(
        store.renew(&changed, &lease).await.unwrap(),
        RenewOutcome::Renewed
    );
    let stored = blob_metadata(&store).await;
    assert_eq!(
        stored.get("leader_metadata").map(String::as_str),
        Some("YWRkcg==")
    );
    assert_eq!(stored.get("leader_token"), Some(&lease.token.to_string()));
    // Over the 4 KiB limit: refused before any request.
    let too_big =
        request.with_metadata(Some(vec![b'x'; leader_election_blob::MAX_METADATA_LEN + 1]));
    assert!(matches!(
        store.renew(&too_big, &lease).await,
        Err(leader_election::Error::MetadataTooLarge { limit: 4096, .. })
    ));
    // A broken lease is lost for a renewal that would write new metadata too.
    break_lease_now(store.blob_client()).await;
    let other = changed.with_metadata(Some(b"other".to_vec()));
    assert_eq!(
        store.renew(&other, &lease).await.unwrap(),
        RenewOutcome::Lost
    );
}

/// The lease blob's metadata, as an operator reads it.
async fn blob_metadata(
    store: &leader_election_blob::BlobLeaseStore,
) -> std::collections::HashMap<String, String> {
    use leader_election_blob::azure::azure_storage_blob::models::BlobClientGetPropertiesResultHeaders;
    let properties = store.blob_client().get_properties(None).await.unwrap();
    properties.metadata().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_leaders_hand_over_against_azurite() {
    let azurite = Azurite::start().await;
    let container = unique_container("preferred");
    let mut options = azurite.election(&container, "preferred").options().clone();
    // A short tenure keeps the test short; the candidate record lives for a lease.
    options.min_tenure = Some(Duration::from_secs(3));
    // Followers poll every retry_interval (500 ms): the released lease is seen within a poll.
    let handover = leader_election::testing::preferred_leader_handover(
        &options,
        Duration::from_secs(3),
        || {
            let store = azurite.store(&container);
            async move { store }
        },
    )
    .await;
    eprintln!("blob preferred-leader handover: {handover:?}");
}
