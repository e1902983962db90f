//! Redis over TLS, on a real TLS-only `redis-server` (`--port 0 --tls-port ..`) with
//! certificates made at test time: an election and its handover, mutual TLS, a wrong CA, and
//! the settings loaded from configuration.
#![cfg(feature = "tls")]

mod common;

use leader_election::{ElectionBuilder, TlsBuilder};
use std::time::{Duration, Instant};

use common::{fast_options, tls_builder, tls_prime, tls_server};
use leader_election::testing::TermRecorder;
use leader_election::{BackendConfig, ElectionEvent, Error, LeaderElection, Operation};
use leader_election_redis::{RedisConfig, RedisLeaderElection, RedisLeaseStore};
use leader_election_test_support::redis::RedisTls;
use leader_election_test_support::{eventually, unique_name};

/// The first error event of `election`, within `within`.
async fn first_error(election: &LeaderElection<RedisLeaseStore>, within: Duration) -> Error {
    let mut events = election.subscribe();
    election.start().await.expect("start");
    tokio::time::timeout(within, async {
        loop {
            if let Ok(ElectionEvent::Error(err)) = events.recv().await {
                break err;
            }
        }
    })
    .await
    .expect("an error event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_election_over_tls_hands_over_gracefully() {
    let server = tls_server(false).await;
    let key = unique_name("tls");
    tls_prime(&server, &key).await;
    let ca = server.tls().unwrap().ca_pem.clone();
    // Server authentication only: the CA, no client certificate.
    let contender = |id: &str| {
        RedisLeaderElection::builder()
            .url(server.tls_url())
            .key(&key)
            .options(fast_options(id))
            .tls_ca_pem(ca.as_bytes())
            .build()
            .expect("build")
    };
    let (a, b) = (contender("a"), contender("b"));
    let recorder = TermRecorder::new();
    recorder.attach(&a).attach(&b);
    a.start().await.unwrap();
    eventually(Duration::from_secs(5), "a leads over TLS", || a.is_leader()).await;
    b.start().await.unwrap();
    let stopped_at = Instant::now();
    a.stop().await.unwrap();
    eventually(Duration::from_secs(3), "b takes over", || b.is_leader()).await;
    let handover = stopped_at.elapsed();
    b.stop().await.unwrap();
    let terms = recorder.terms();
    assert_eq!(terms.len(), 2, "{terms:#?}");
    recorder.assert_safe();
    // Through the release notification, not the lease's expiry (1.5 s).
    assert!(
        handover < Duration::from_millis(500),
        "handover {handover:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_leads_with_a_client_certificate_and_is_refused_without() {
    let server = tls_server(true).await;
    let key = unique_name("mtls");
    tls_prime(&server, &key).await;
    let (a, b) = (
        tls_builder(&server, &key, "a").build().unwrap(),
        tls_builder(&server, &key, "b").build().unwrap(),
    );
    let recorder = TermRecorder::new();
    recorder.attach(&a).attach(&b);
    a.start().await.unwrap();
    b.start().await.unwrap();
    eventually(Duration::from_secs(5), "a leader with mTLS", || {
        a.is_leader() || b.is_leader()
    })
    .await;
    let (leader, follower) = if a.is_leader() { (&a, &b) } else { (&b, &a) };
    leader.stop().await.unwrap();
    eventually(Duration::from_secs(3), "the other takes over", || {
        follower.is_leader()
    })
    .await;
    follower.stop().await.unwrap();
    recorder.assert_safe();

    // The right CA but no client certificate: the server ends the handshake.
    let anonymous = RedisLeaderElection::builder()
        .url(server.tls_url())
        .key(&key)
        .options(fast_options("anonymous"))
        .tls_ca_pem(server.tls().unwrap().ca_pem.as_bytes())
        .build()
        .unwrap();
    let err = first_error(&anonymous, Duration::from_secs(3)).await;
    eprintln!("error event: {err}");
    assert_eq!(err.operation(), Some(Operation::Connect), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "names the missing certificate: {err}"
    );
    assert!(!anonymous.is_leader());
    anonymous.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_is_a_certificate_error_within_the_timeout() {
    let server = tls_server(false).await;
    let other_ca = RedisTls::generate(false).ca_pem;
    let election = RedisLeaderElection::builder()
        .url(server.tls_url())
        .key(unique_name("wrongca"))
        .options(fast_options("a"))
        .tls_ca_pem(other_ca.as_bytes())
        .build()
        .unwrap();
    let timeout = election.options().operation_timeout();
    let started = Instant::now();
    let err = first_error(&election, timeout + Duration::from_secs(1)).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < timeout + Duration::from_millis(500),
        "{elapsed:?}"
    );
    eprintln!("error event: {err}");
    assert_eq!(err.operation(), Some(Operation::Connect), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "names the certificate problem: {err}"
    );
    assert!(!election.is_leader());
    election.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_settings_load_from_the_environment_and_lead() {
    let server = tls_server(true).await;
    let key = unique_name("tlsenv");
    tls_prime(&server, &key).await;
    let tls = server.tls().unwrap();
    let dir = std::env::temp_dir().join(unique_name("tls-env"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    };
    let vars = [
        ("LEADER_ELECTION_REDIS_URL", server.tls_url()),
        ("LEADER_ELECTION_REDIS_KEY", key.clone()),
        (
            "LEADER_ELECTION_REDIS_TLS_CA_FILE",
            path("ca.crt", &tls.ca_pem),
        ),
        (
            "LEADER_ELECTION_REDIS_TLS_CERT_FILE",
            path("client.crt", &tls.client_cert_pem),
        ),
        (
            "LEADER_ELECTION_REDIS_TLS_KEY_FILE",
            path("client.key", &tls.client_key_pem),
        ),
        ("LEADER_ELECTION_LEASE_DURATION", "1500ms".to_owned()),
        ("LEADER_ELECTION_RENEW_INTERVAL", "400ms".to_owned()),
        ("LEADER_ELECTION_OPERATION_TIMEOUT", "250ms".to_owned()),
    ];
    let config = RedisConfig::from_vars(vars.map(|(k, v)| (k.to_owned(), v))).unwrap();
    let debug = format!("{config:?}");
    assert!(debug.contains("client.key"), "{debug}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    let election = config.into_builder().build().expect("build from env");
    election.start().await.unwrap();
    eventually(
        Duration::from_secs(5),
        "leads with settings from env",
        || election.is_leader(),
    )
    .await;
    election.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
