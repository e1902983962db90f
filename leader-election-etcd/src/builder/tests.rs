//! The builder's checks: connection, names, options, TLS settings, and what `Debug` and
//! errors never show.

use leader_election::ElectionBuilder;

use super::*;

#[test]
fn keys_are_checked() {
    for key in [
        "",
        " ",
        "a\nb",
        "jobs/holder",
        "jobs/candidate",
        "jobs/token-base",
        "jobs/released",
        "jobs/record",
    ] {
        assert!(validate_key(key).is_err(), "{key:?}");
    }
    assert!(validate_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
    for key in ["jobs", "/services/billing/leader", "ünï"] {
        assert!(validate_key(key).is_ok(), "{key:?}");
    }
}

fn build_error(builder: EtcdLeaderElectionBuilder) -> BuildError {
    builder.build_store().unwrap_err()
}

#[test]
fn build_checks_connection_endpoints_key_and_options() {
    assert_eq!(
        build_error(EtcdLeaderElection::builder()),
        missing_connection()
    );
    for endpoint in [
        "127.0.0.1:2379",
        "tcp://x:1",
        "http://",
        "http://:2379",
        "http://h:port",
        "http://u:p@h:1",
    ] {
        let err = build_error(EtcdLeaderElection::builder().endpoints([endpoint]));
        assert!(
            matches!(err, BuildError::InvalidUrl { .. }),
            "{endpoint}: {err}"
        );
    }
    let err = build_error(
        EtcdLeaderElection::builder()
            .endpoints(["http://h:1"])
            .key("jobs/holder"),
    );
    assert!(
        matches!(err, BuildError::InvalidName { field: "key", .. }),
        "{err}"
    );
    let err = build_error(
        EtcdLeaderElection::builder()
            .endpoints(["http://h:1"])
            .lease_duration(Duration::from_millis(900))
            .renew_interval(Duration::from_millis(300)),
    );
    assert!(
        matches!(&err, BuildError::Options(e) if e.field == "lease_duration"),
        "{err}"
    );
    let store = EtcdLeaderElection::builder()
        .endpoints([
            "http://127.0.0.1:2379",
            "http://[::1]:2379",
            "http://etcd-2",
        ])
        .key("jobs")
        .lease_duration(Duration::from_secs(2))
        .renew_interval(Duration::from_millis(600))
        .build_store()
        .unwrap();
    assert_eq!(store.key(), "jobs");
    assert_eq!(store.holder_key(), "jobs/holder");
    assert_eq!(store.candidate_key(), "jobs/candidate");
}

#[test]
fn debug_never_shows_the_password() {
    let builder = EtcdLeaderElection::builder()
        .endpoints(["http://127.0.0.1:2379"])
        .user("root", "hunter2");
    let debug = format!("{builder:?}");
    assert!(
        !debug.contains("hunter2") && debug.contains("root"),
        "{debug}"
    );
    let election = builder.build().unwrap();
    let debug = format!("{:?}", election.store());
    assert!(
        !debug.contains("hunter2") && debug.contains("root"),
        "{debug}"
    );
}

#[cfg(feature = "tls")]
#[test]
fn tls_settings_are_checked_when_built() {
    let https = || EtcdLeaderElection::builder().endpoints(["https://127.0.0.1:2379"]);
    https()
        .build_store()
        .expect("https with the system's roots");
    let err = build_error(https().tls_ca_file("/nonexistent/ca.pem"));
    assert!(
        matches!(
            err,
            BuildError::Tls {
                setting: "tls_ca",
                ..
            }
        ),
        "{err}"
    );
    let err = build_error(https().tls_ca_pem("just text"));
    assert!(
        matches!(
            err,
            BuildError::Tls {
                setting: "tls_ca",
                ..
            }
        ),
        "{err}"
    );
    let err = build_error(https().tls_client_key_file("/k.pem"));
    assert!(
        matches!(
            err,
            BuildError::Tls {
                setting: "tls_client_key",
                ..
            }
        ),
        "{err}"
    );
    let err =
        build_error(https().tls_client_cert_pem("-----BEGIN CERTIFICATE-----", "secret-key-bytes"));
    assert!(
        matches!(
            err,
            BuildError::Tls {
                setting: "tls_client_key",
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.to_string().contains("secret-key-bytes"));
    let err = build_error(
        EtcdLeaderElection::builder()
            .endpoints(["http://127.0.0.1:2379"])
            .tls_ca_pem("-----BEGIN CERTIFICATE-----"),
    );
    assert!(
        matches!(
            err,
            BuildError::Tls {
                setting: "endpoints",
                ..
            }
        ),
        "{err}"
    );
    let err = build_error(EtcdLeaderElection::builder().endpoints(["http://a:1", "https://b:1"]));
    assert!(
        matches!(
            err,
            BuildError::Tls {
                setting: "endpoints",
                ..
            }
        ),
        "{err}"
    );
}

#[cfg(not(feature = "tls"))]
#[test]
fn https_needs_the_feature() {
    let err = build_error(EtcdLeaderElection::builder().endpoints(["https://127.0.0.1:2379"]));
    assert!(matches!(err, BuildError::TlsNotEnabled { .. }), "{err}");
}
