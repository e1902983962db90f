//! [`RedisConfig`]: an election on Redis as configuration, from serde or the environment.

use std::time::Duration;

use leader_election::LeaderElectionOptions;
use leader_election::backend::Secret;
#[cfg(feature = "tls")]
use leader_election::backend::tls::TlsFiles;

use crate::builder::RedisLeaderElectionBuilder;

/// An election on Redis as configuration, for loading from the application's config files with
/// serde (durations written like `"30s"`) or from environment variables
/// ([`from_env`](leader_election::BackendConfig::from_env)). Missing fields take their defaults;
/// unknown fields are errors. [`into_builder`](leader_election::BackendConfig::into_builder) turns
/// it into a builder, whose `build()` or `build_store()` checks it.
///
/// ```
/// use leader_election_redis::RedisConfig;
/// use leader_election::{BackendConfig, ElectionBuilder};
///
/// let config: RedisConfig = serde_json::from_str(r#"{
///     "url": "redis://:secret@127.0.0.1:6379",
///     "key": "billing",
///     "max_lease_duration": "1m",
///     "options": { "lease_duration": "15s", "renew_interval": "5s" }
/// }"#).unwrap();
/// assert!(!format!("{config:?}").contains("secret"));
/// let election = config.into_builder().build().unwrap();
/// assert_eq!(election.store().key(), "billing");
/// assert_eq!(election.store().guard_duration().as_secs(), 60);
/// ```
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// See [`RedisLeaderElectionBuilder::url`]. Default: none (required).
    pub url: Option<Secret>,
    /// See [`RedisLeaderElectionBuilder::key`]. Default: `leader-election-lock`.
    pub key: Option<String>,
    /// See [`RedisLeaderElectionBuilder::max_lease_duration`]. Default: none, meaning the
    /// election's `lease_duration`.
    #[serde(with = "humantime_serde")]
    pub max_lease_duration: Option<Duration>,
    /// See [`RedisLeaderElectionBuilder::min_replica_acks`]. Default: none, meaning 0 (no
    /// wait), except through Sentinel, where it must be set.
    pub min_replica_acks: Option<u32>,
    /// The CA and client certificate files ([`TlsFiles`]) for a `rediss://` URL, read when
    /// the store is built. Default: none (the system's roots, no client certificate).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub tls: TlsFiles,
    /// The election options. Default: [`LeaderElectionOptions::default`].
    pub options: LeaderElectionOptions,
}

leader_election::backend::backend_config! {
    /// Its environment variables ([`from_env`](leader_election::BackendConfig::from_env)):
    /// `LEADER_ELECTION_REDIS_URL`, `LEADER_ELECTION_REDIS_KEY`,
    /// `LEADER_ELECTION_REDIS_MAX_LEASE_DURATION` (like `"60s"`),
    /// `LEADER_ELECTION_REDIS_MIN_REPLICA_ACKS` (a whole number), with feature `tls` the paths
    /// `LEADER_ELECTION_REDIS_TLS_CA_FILE`, `LEADER_ELECTION_REDIS_TLS_CERT_FILE` and
    /// `LEADER_ELECTION_REDIS_TLS_KEY_FILE`, and every election option as `LEADER_ELECTION_<FIELD>`
    /// (see [`LeaderElectionOptions::from_env`](leader_election::LeaderElectionOptions::from_env)).
    /// Values are read by [`leader_election::backend::env`].
    RedisConfig: "REDIS" => RedisLeaderElectionBuilder with tls
}

#[cfg(test)]
mod tests {
    use leader_election::BackendConfig;
    use leader_election::ElectionBuilder;
    use leader_election::testing::{ConfigCase, check_config};
    use leader_election_test_support::vars;

    use super::*;
    use crate::BuildError;

    #[test]
    fn config_passes_the_shared_check() {
        let config: RedisConfig = check_config(ConfigCase {
            vars: &[
                (
                    "LEADER_ELECTION_REDIS_URL",
                    "rediss://app:hunter2@127.0.0.1:6390",
                ),
                ("LEADER_ELECTION_REDIS_KEY", "jobs"),
            ],
            secret: Some("hunter2"),
            invalid: Some((
                "LEADER_ELECTION_REDIS_MIN_REPLICA_ACKS",
                "-1",
                "min_replica_acks",
            )),
            tls: cfg!(feature = "tls"),
        });
        assert_eq!(
            config.url.as_ref().map(Secret::expose),
            Some("rediss://app:hunter2@127.0.0.1:6390")
        );
        assert_eq!(config.key.as_deref(), Some("jobs"));
        assert_eq!(config.max_lease_duration, None);
    }

    #[test]
    fn max_lease_duration_loads_from_the_environment() {
        let config = RedisConfig::from_vars(vars(&[
            ("LEADER_ELECTION_REDIS_URL", "redis://127.0.0.1:6390"),
            ("LEADER_ELECTION_REDIS_MAX_LEASE_DURATION", "1m 30s"),
        ]))
        .unwrap();
        assert_eq!(config.max_lease_duration, Some(Duration::from_secs(90)));
        let store = config.into_builder().build_store().unwrap();
        assert_eq!(store.guard_duration(), Duration::from_secs(90));

        let err = RedisConfig::from_vars(vars(&[(
            "LEADER_ELECTION_REDIS_MAX_LEASE_DURATION",
            "long",
        )]))
        .unwrap_err();
        assert_eq!(err.field, "max_lease_duration");
        assert!(
            err.rule
                .contains("LEADER_ELECTION_REDIS_MAX_LEASE_DURATION=\"long\""),
            "{err}"
        );

        // Shorter than the lease: refused when built, naming the field.
        let config = RedisConfig::from_vars(vars(&[
            ("LEADER_ELECTION_REDIS_URL", "redis://127.0.0.1:6390"),
            ("LEADER_ELECTION_REDIS_MAX_LEASE_DURATION", "5s"),
        ]))
        .unwrap();
        let err = config.into_builder().build().unwrap_err();
        assert!(
            matches!(&err, BuildError::Options(e) if e.field == "max_lease_duration"),
            "{err}"
        );
    }

    #[test]
    fn min_replica_acks_loads_from_the_environment_and_serde() {
        let config = RedisConfig::from_vars(vars(&[
            ("LEADER_ELECTION_REDIS_URL", "redis://127.0.0.1:6390"),
            ("LEADER_ELECTION_REDIS_MIN_REPLICA_ACKS", "2"),
        ]))
        .unwrap();
        assert_eq!(config.min_replica_acks, Some(2));
        assert!(format!("{config:?}").contains("min_replica_acks: Some(2)"));
        let store = config.into_builder().build_store().unwrap();
        assert_eq!(store.min_replica_acks(), 2);
        let err = RedisConfig::from_vars(vars(&[("LEADER_ELECTION_REDIS_MIN_REPLICA_ACKS", "-1")]))
            .unwrap_err();
        assert_eq!(err.field, "min_replica_acks");
        let config: RedisConfig =
            serde_json::from_str(r#"{"url": "redis://h", "min_replica_acks": 1}"#).unwrap();
        assert_eq!(config.min_replica_acks, Some(1));
        let config: RedisConfig = serde_json::from_str(r#"{"url": "redis://h"}"#).unwrap();
        assert_eq!(config.min_replica_acks, None);
        let store = config.into_builder().build_store().unwrap();
        assert_eq!(store.min_replica_acks(), 0);
    }

    #[test]
    fn max_lease_duration_deserializes_as_a_human_duration() {
        let config: RedisConfig =
            serde_json::from_str(r#"{"url": "redis://h", "max_lease_duration": "2m"}"#).unwrap();
        assert_eq!(config.max_lease_duration, Some(Duration::from_secs(120)));
        let config: RedisConfig = serde_json::from_str(r#"{"url": "redis://h"}"#).unwrap();
        assert_eq!(config.max_lease_duration, None);
        let err =
            serde_json::from_str::<RedisConfig>(r#"{"max_lease_duration": "soon"}"#).unwrap_err();
        assert!(err.to_string().contains("duration"), "{err}");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_files_load_from_the_environment_and_serde() {
        let config = RedisConfig::from_vars(vars(&[
            ("LEADER_ELECTION_REDIS_URL", "rediss://127.0.0.1:6390"),
            ("LEADER_ELECTION_REDIS_TLS_CA_FILE", "/etc/redis/ca.pem"),
            (
                "LEADER_ELECTION_REDIS_TLS_CERT_FILE",
                "/etc/redis/client.pem",
            ),
            (
                "LEADER_ELECTION_REDIS_TLS_KEY_FILE",
                "/etc/redis/client.key",
            ),
        ]))
        .unwrap();
        assert_eq!(
            config.tls.cert_file.as_deref(),
            Some(std::path::Path::new("/etc/redis/client.pem"))
        );
        assert_eq!(
            config.tls.key_file.as_deref(),
            Some(std::path::Path::new("/etc/redis/client.key"))
        );
        let debug = format!("{config:?}");
        assert!(debug.contains("/etc/redis/client.key"), "{debug}");
        // The files are read when built: these do not exist.
        let err = config.into_builder().build_store().unwrap_err();
        assert!(err.to_string().contains("/etc/redis/ca.pem"), "{err}");

        let config: RedisConfig = serde_json::from_str(
            r#"{"url": "rediss://h", "tls": {"ca_file": "ca.pem", "key_file": "k.pem"}}"#,
        )
        .unwrap();
        assert_eq!(config.tls.key_file.as_deref(), Some("k.pem".as_ref()));
        // A key without its certificate is refused when built, before any file is read.
        let err = config.into_builder().build_store().unwrap_err();
        assert!(
            matches!(
                &err,
                BuildError::Tls {
                    setting: "tls_client_key",
                    ..
                }
            ),
            "{err}"
        );
        let config: RedisConfig =
            serde_json::from_str(r#"{"url": "redis://h", "tls": {"ca_file": "ca.pem"}}"#).unwrap();
        let err = config.into_builder().build_store().unwrap_err();
        assert!(
            matches!(&err, BuildError::Tls { setting: "url", .. }),
            "{err}"
        );
    }

    #[test]
    fn a_key_redis_cluster_cannot_route_is_refused() {
        let config: RedisConfig =
            serde_json::from_str(r#"{"url": "redis://127.0.0.1", "key": "a{b"}"#).unwrap();
        assert!(matches!(
            config.into_builder().build_store().unwrap_err(),
            BuildError::InvalidName { field: "key", .. }
        ));
    }
}
