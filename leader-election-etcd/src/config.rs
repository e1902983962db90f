//! [`EtcdConfig`]: an election on etcd as configuration, from serde or the environment.

use leader_election::LeaderElectionOptions;
use leader_election::backend::Secret;
#[cfg(feature = "tls")]
use leader_election::backend::tls::TlsFiles;

use crate::builder::EtcdLeaderElectionBuilder;

/// An election on etcd as configuration, for loading from the application's config files with serde
/// (durations written like `"30s"`) or from environment variables
/// ([`from_env`](leader_election::BackendConfig::from_env)). Missing fields take their defaults;
/// unknown fields are errors. [`into_builder`](leader_election::BackendConfig::into_builder) turns
/// it into a builder, whose `build()` or `build_store()` checks it.
///
/// ```
/// use leader_election_etcd::EtcdConfig;
/// use leader_election::{BackendConfig, ElectionBuilder};
///
/// let config: EtcdConfig = serde_json::from_str(r#"{
///     "endpoints": ["http://etcd-0:2379", "http://etcd-1:2379", "http://etcd-2:2379"],
///     "key": "billing",
///     "user": "billing",
///     "password": "secret",
///     "options": { "lease_duration": "15s", "renew_interval": "5s" }
/// }"#).unwrap();
/// assert!(!format!("{config:?}").contains("secret"));
/// let election = config.into_builder().build().unwrap();
/// assert_eq!(election.store().key(), "billing");
/// ```
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct EtcdConfig {
    /// See [`EtcdLeaderElectionBuilder::endpoints`]. Default: none (required).
    pub endpoints: Vec<String>,
    /// See [`EtcdLeaderElectionBuilder::key`]. Default: `leader-election-lock`.
    pub key: Option<String>,
    /// The etcd user; see [`EtcdLeaderElectionBuilder::user`]. Default: none.
    pub user: Option<String>,
    /// The etcd user's password. Default: none (an empty password with a user).
    pub password: Option<Secret>,
    /// The CA and client certificate files ([`TlsFiles`]) for `https://` endpoints, read when
    /// the store is built. Default: none (the system's roots, no client certificate).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub tls: TlsFiles,
    /// The election options. Default: [`LeaderElectionOptions::default`].
    pub options: LeaderElectionOptions,
}

leader_election::backend::backend_config! {
    /// Its environment variables ([`from_env`](leader_election::BackendConfig::from_env)):
    /// `LEADER_ELECTION_ETCD_ENDPOINTS` (comma-separated URLs), `LEADER_ELECTION_ETCD_KEY`,
    /// `LEADER_ELECTION_ETCD_USER`, `LEADER_ELECTION_ETCD_PASSWORD`, with feature `tls` the paths
    /// `LEADER_ELECTION_ETCD_TLS_CA_FILE`, `LEADER_ELECTION_ETCD_TLS_CERT_FILE` and
    /// `LEADER_ELECTION_ETCD_TLS_KEY_FILE`, and every election option as `LEADER_ELECTION_<FIELD>`
    /// (see [`LeaderElectionOptions::from_env`](leader_election::LeaderElectionOptions::from_env)).
    /// Values are read by [`leader_election::backend::env`].
    EtcdConfig: "ETCD" => EtcdLeaderElectionBuilder with tls
}

#[cfg(test)]
mod tests {
    use leader_election::BackendConfig;
    use leader_election::ElectionBuilder;
    use leader_election::testing::{ConfigCase, check_config};

    use super::*;

    #[test]
    fn config_passes_the_shared_check() {
        let config: EtcdConfig = check_config(ConfigCase {
            vars: &[
                (
                    "LEADER_ELECTION_ETCD_ENDPOINTS",
                    "https://10.0.0.1:2379, https://10.0.0.2:2379,",
                ),
                ("LEADER_ELECTION_ETCD_KEY", "jobs"),
                ("LEADER_ELECTION_ETCD_USER", "jobs"),
                ("LEADER_ELECTION_ETCD_PASSWORD", "hunter2"),
            ],
            secret: Some("hunter2"),
            invalid: None,
            tls: cfg!(feature = "tls"),
        });
        assert_eq!(
            config.endpoints,
            ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]
        );
        assert_eq!(config.key.as_deref(), Some("jobs"));
        assert_eq!(config.user.as_deref(), Some("jobs"));
        let built = config.into_builder().build_store();
        #[cfg(feature = "tls")]
        assert!(!format!("{:?}", built.unwrap()).contains("hunter2"));
        // Without the feature, `https://` endpoints are refused.
        #[cfg(not(feature = "tls"))]
        assert!(matches!(
            built.unwrap_err(),
            leader_election::BuildError::TlsNotEnabled { .. }
        ));
    }

    #[test]
    fn a_password_counts_only_with_a_user() {
        let config: EtcdConfig =
            serde_json::from_str(r#"{"endpoints": ["http://h:2379"], "password": "hunter2"}"#)
                .unwrap();
        let store = config.into_builder().build_store().unwrap();
        let debug = format!("{store:?}");
        assert!(
            debug.contains("user: None") && !debug.contains("hunter2"),
            "{debug}"
        );
        // A user without a password: an empty one.
        let config: EtcdConfig =
            serde_json::from_str(r#"{"endpoints": ["http://h:2379"], "user": "jobs"}"#).unwrap();
        let store = config.into_builder().build_store().unwrap();
        assert!(format!("{store:?}").contains(r#"user: Some("jobs")"#));
    }
}
