//! The builder's checks: connection, names, options, TLS settings, and what `Debug` and
//! errors never show.

use fred::prelude::Config;

use leader_election::ElectionBuilder;

use super::*;

#[test]
fn through_sentinel_min_replica_acks_must_be_chosen() {
    let sentinel = "redis-sentinel://127.0.0.1:26379?sentinelServiceName=leaders";
    let err = RedisLeaderElection::builder()
        .url(sentinel)
        .build_store()
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("min_replica_acks") && message.contains("Sentinel"),
        "{message}"
    );
    // A caller-configured client through Sentinel is held to the same rule.
    let client = Client::new(Config::from_url(sentinel).unwrap(), None, None, None);
    assert!(
        RedisLeaderElection::builder()
            .client(client)
            .build_store()
            .is_err()
    );
    // Chosen: every replica, or none on purpose.
    for acks in [2, 0] {
        let store = RedisLeaderElection::builder()
            .url(sentinel)
            .min_replica_acks(acks)
            .build_store()
            .unwrap();
        assert_eq!(store.min_replica_acks(), acks);
    }
    // Elsewhere the default is no wait.
    for url in ["redis://127.0.0.1:6379", "redis-cluster://127.0.0.1:7001"] {
        let store = RedisLeaderElection::builder()
            .url(url)
            .build_store()
            .unwrap();
        assert_eq!(store.min_replica_acks(), 0, "{url}");
    }
}

#[test]
fn the_last_of_url_and_client_wins() {
    let sentinel = || {
        Client::new(
            Config::from_url("redis-sentinel://127.0.0.1:26379?sentinelServiceName=leaders")
                .unwrap(),
            None,
            None,
            None,
        )
    };
    // The URL replaces the client: not through Sentinel, so no replica count is needed.
    let store = RedisLeaderElection::builder()
        .client(sentinel())
        .url("redis://127.0.0.1:6379")
        .build_store()
        .unwrap();
    assert_eq!(store.min_replica_acks(), 0);
    // The client replaces the URL: through Sentinel, it is.
    let err = RedisLeaderElection::builder()
        .url("redis://127.0.0.1:6379")
        .client(sentinel())
        .build_store()
        .unwrap_err();
    assert!(err.to_string().contains("min_replica_acks"), "{err}");
}

#[test]
fn debug_never_shows_the_password() {
    let builder = RedisLeaderElection::builder().url("redis://:hunter2@localhost:6379");
    let debug = format!("{builder:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    let election = builder.build().expect("build");
    let debug = format!("{:?}", election.store());
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[test]
fn build_checks_connection_url_key_and_options() {
    assert_eq!(
        RedisLeaderElection::builder().build().unwrap_err(),
        missing_connection()
    );
    let err = RedisLeaderElection::builder()
        .url("http://:hunter2@localhost")
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidUrl { .. }), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let err = RedisLeaderElection::builder()
        .url("redis://:hunter2@[::1")
        .build()
        .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    for key in ["", " ", "a{b", "a}", "a\nb"] {
        let err = RedisLeaderElection::builder()
            .url("redis://localhost")
            .key(key)
            .build()
            .unwrap_err();
        assert!(
            matches!(err, BuildError::InvalidName { field: "key", .. }),
            "{key:?}: {err}"
        );
    }
    let err = RedisLeaderElection::builder()
        .url("redis://localhost")
        .key("x".repeat(513))
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidName { field: "key", .. }));
    // The options are checked by the shared check of the configuration (config.rs).
}

#[test]
fn errors_never_echo_a_huge_input_whole() {
    let huge = "k".repeat(100_000);
    let err = RedisLeaderElection::builder()
        .url("redis://localhost")
        .key(&huge)
        .build()
        .unwrap_err();
    assert!(
        matches!(err, BuildError::InvalidName { field: "key", .. }),
        "{err}"
    );
    let shown = format!("{err} {err:?}");
    assert!(
        shown.len() < 600,
        "{} bytes: {}",
        shown.len(),
        &shown[..200]
    );
    assert!(shown.contains("100000 bytes"), "{shown}");
    let client = Client::new(Config::default(), None, None, None);
    let err = RedisLeaseStore::new(client, format!("{huge}{{")).unwrap_err();
    assert!(format!("{err} {err:?}").len() < 600);

    let huge_scheme = format!("{}://:hunter2@localhost", "h".repeat(100_000));
    let huge_path = format!("redis://:hunter2@[::1/{}", "p".repeat(100_000));
    for url in [huge_scheme, huge_path] {
        let err = RedisLeaderElection::builder().url(url).build().unwrap_err();
        assert!(matches!(err, BuildError::InvalidUrl { .. }), "{err}");
        let shown = format!("{err} {err:?}");
        assert!(
            shown.len() < 600,
            "{} bytes: {}",
            shown.len(),
            &shown[..200]
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}

#[test]
fn max_lease_duration_is_at_least_the_lease() {
    let err = RedisLeaderElection::builder()
        .url("redis://localhost")
        .lease_duration(Duration::from_secs(10))
        .renew_interval(Duration::from_secs(3))
        .max_lease_duration(Duration::from_secs(5))
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, BuildError::Options(e) if e.field == "max_lease_duration"),
        "{err}"
    );
    let election = RedisLeaderElection::builder()
        .url("redis://localhost")
        .lease_duration(Duration::from_secs(10))
        .renew_interval(Duration::from_secs(3))
        .max_lease_duration(Duration::from_secs(60))
        .build()
        .unwrap();
    assert_eq!(election.store().guard_duration(), Duration::from_secs(60));
    let election = RedisLeaderElection::builder()
        .url("redis://localhost")
        .lease_duration(Duration::from_secs(10))
        .renew_interval(Duration::from_secs(3))
        .build()
        .unwrap();
    assert_eq!(election.store().guard_duration(), Duration::from_secs(10));
}

/// The option setters are the core's (`ElectionBuilder`, where each is tested): the options
/// set reach the election, and the key its store.
#[test]
fn options_reach_the_election_and_the_key_its_store() {
    let election = RedisLeaderElection::builder()
        .url("redis://127.0.0.1:1")
        .key("jobs")
        .instance_id("node-1")
        .lease_duration(Duration::from_secs(10))
        .renew_interval(Duration::from_secs(3))
        .operation_timeout(Duration::from_millis(500))
        .build()
        .expect("valid");
    let o = election.options();
    assert_eq!(o.instance_id, "node-1");
    assert_eq!(o.lease_duration, Duration::from_secs(10));
    assert_eq!(o.renew_interval, Duration::from_secs(3));
    assert_eq!(o.operation_timeout(), Duration::from_millis(500));
    assert_eq!(election.store().key(), "jobs");
    assert_eq!(election.store().lease_key(), "{jobs}:lease");
}

#[cfg(feature = "tls")]
#[test]
fn tls_urls_build() {
    RedisLeaderElection::builder()
        .url("rediss://localhost:6380")
        .build()
        .expect("rediss with the tls feature");
}

#[cfg(feature = "tls")]
mod tls {
    use leader_election_test_support::redis::RedisTls;

    use super::*;

    const FAKE_KEY: &str =
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n";

    fn tls_error(builder: RedisLeaderElectionBuilder) -> (&'static str, String) {
        match builder.build_store() {
            Err(BuildError::Tls { setting, reason }) => (setting, reason),
            other => panic!("expected a TLS error, got {other:?}"),
        }
    }

    #[test]
    fn a_ca_and_a_client_certificate_build() {
        let pems = RedisTls::generate(true);
        let dir = std::env::temp_dir().join(format!("le-tls-build-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.crt"), &pems.ca_pem).unwrap();
        std::fs::write(dir.join("c.crt"), &pems.client_cert_pem).unwrap();
        std::fs::write(dir.join("c.key"), &pems.client_key_pem).unwrap();
        RedisLeaderElection::builder()
            .url("rediss://127.0.0.1:6380")
            .tls_ca_pem(pems.ca_pem.as_bytes())
            .tls_client_cert_pem(pems.client_cert_pem.as_bytes(), pems.client_key_pem)
            .build_store()
            .expect("PEM in memory");
        RedisLeaderElection::builder()
            .url("rediss://127.0.0.1:6380")
            .tls_ca_file(dir.join("ca.crt"))
            .tls_client_cert_file(dir.join("c.crt"))
            .tls_client_key_file(dir.join("c.key"))
            .build_store()
            .expect("PEM files");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tls_settings_are_checked_when_built() {
        let pems = RedisTls::generate(false);
        let tls = || RedisLeaderElection::builder().url("rediss://127.0.0.1:6380");

        let (setting, reason) = tls_error(tls().tls_ca_file("/nonexistent/ca.pem"));
        assert_eq!(setting, "tls_ca");
        assert!(
            reason.contains("cannot read /nonexistent/ca.pem"),
            "{reason}"
        );

        let (setting, reason) = tls_error(tls().tls_ca_pem("just text"));
        assert_eq!(setting, "tls_ca");
        assert!(reason.contains("no certificate"), "{reason}");
        // A key where the CA should be holds no certificate either.
        let (setting, _) = tls_error(tls().tls_ca_pem(pems.client_key_pem.as_bytes()));
        assert_eq!(setting, "tls_ca");

        let (setting, reason) = tls_error(tls().tls_client_key_file("/k.pem"));
        assert_eq!(setting, "tls_client_key");
        assert!(reason.contains("without a client certificate"), "{reason}");
        let (setting, _) = tls_error(tls().tls_client_cert_file("/c.pem"));
        assert_eq!(setting, "tls_client_cert");

        let (setting, reason) = tls_error(
            RedisLeaderElection::builder()
                .url("redis://:hunter2@127.0.0.1:6379")
                .tls_ca_pem(pems.ca_pem.as_bytes()),
        );
        assert_eq!(setting, "url");
        assert!(reason.contains("rediss://"), "{reason}");
        assert!(!reason.contains("hunter2"), "{reason}");

        let client = Client::new(Config::default(), None, None, None);
        let (setting, _) = tls_error(
            RedisLeaderElection::builder()
                .client(client)
                .tls_ca_pem(pems.ca_pem.as_bytes()),
        );
        assert_eq!(setting, "client");
    }

    #[test]
    fn keys_never_appear_in_debug_or_errors() {
        let pems = RedisTls::generate(false);
        let secret = pems.client_key_pem.lines().nth(1).unwrap().to_owned();
        let builder = RedisLeaderElection::builder()
            .url("rediss://127.0.0.1:6380")
            .tls_client_cert_pem(pems.client_cert_pem.as_bytes(), pems.client_key_pem);
        let debug = format!("{builder:?}");
        assert!(!debug.contains(&secret), "{debug}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
        assert!(debug.contains("PEM bytes"), "{debug}");

        // A key that does not parse, and a key that does not fit the certificate.
        for key in [FAKE_KEY.to_owned(), "no key".to_owned()] {
            let (setting, reason) = tls_error(
                RedisLeaderElection::builder()
                    .url("rediss://127.0.0.1:6380")
                    .tls_client_cert_pem(pems.client_cert_pem.as_bytes(), key.as_bytes()),
            );
            assert_eq!(setting, "tls_client_key", "{reason}");
            assert!(!reason.contains("c2VjcmV0"), "{reason}");
            assert!(!reason.contains("secret"), "{reason}");
        }
        let other = RedisTls::generate(false);
        let (setting, reason) = tls_error(
            RedisLeaderElection::builder()
                .url("rediss://127.0.0.1:6380")
                .tls_client_cert_pem(
                    pems.client_cert_pem.as_bytes(),
                    other.client_key_pem.as_bytes(),
                ),
        );
        assert_eq!(setting, "tls_client_key", "{reason}");
        let other_secret = other.client_key_pem.lines().nth(1).unwrap();
        assert!(!reason.contains(other_secret), "{reason}");
    }
}

#[cfg(not(feature = "tls"))]
#[test]
fn tls_urls_need_the_feature() {
    let err = RedisLeaderElection::builder()
        .url("rediss://localhost:6380")
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::TlsNotEnabled { .. }));
}
