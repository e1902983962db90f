//! [`ZooKeeperConfig`]: an election on Apache ZooKeeper as configuration, from serde or the
//! environment.

use std::time::Duration;

use leader_election::LeaderElectionOptions;

use crate::builder::ZooKeeperLeaderElectionBuilder;

/// An election on Apache ZooKeeper as configuration, for loading from the application's config
/// files with serde (durations written like `"30s"`) or from environment variables
/// ([`from_env`](leader_election::BackendConfig::from_env)). Missing fields take their defaults;
/// unknown fields are errors. [`into_builder`](leader_election::BackendConfig::into_builder) turns
/// it into a builder, whose `build()` or `build_store()` checks it.
///
/// ```
/// use leader_election_zookeeper::ZooKeeperConfig;
/// use leader_election::{BackendConfig, ElectionBuilder};
///
/// let config: ZooKeeperConfig = serde_json::from_str(r#"{
///     "connect_string": "zk1:2181,zk2:2181,zk3:2181/apps",
///     "path": "/elections/billing",
///     "options": { "lease_duration": "15s", "renew_interval": "5s" }
/// }"#).unwrap();
/// let election = config.into_builder().build().unwrap();
/// assert_eq!(election.store().path(), "/elections/billing");
/// ```
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ZooKeeperConfig {
    /// See [`ZooKeeperLeaderElectionBuilder::connect_string`]. Default: none (required).
    pub connect_string: Option<String>,
    /// See [`ZooKeeperLeaderElectionBuilder::path`]. Default:
    /// `/leader-election/leader-election`.
    pub path: Option<String>,
    /// See [`ZooKeeperLeaderElectionBuilder::session_timeout`]. Default: the lease duration.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Option<Duration>,
    /// See [`ZooKeeperLeaderElectionBuilder::connection_timeout`]. Default: the client's.
    #[serde(with = "humantime_serde")]
    pub connection_timeout: Option<Duration>,
    /// The election options. Default: [`LeaderElectionOptions::default`].
    pub options: LeaderElectionOptions,
}

leader_election::backend::backend_config! {
    /// Its environment variables ([`from_env`](leader_election::BackendConfig::from_env)):
    /// `LEADER_ELECTION_ZOOKEEPER_CONNECT_STRING`, `LEADER_ELECTION_ZOOKEEPER_PATH`,
    /// `LEADER_ELECTION_ZOOKEEPER_SESSION_TIMEOUT`, `LEADER_ELECTION_ZOOKEEPER_CONNECTION_TIMEOUT`,
    /// and every election option as `LEADER_ELECTION_<FIELD>` (see
    /// [`LeaderElectionOptions::from_env`](leader_election::LeaderElectionOptions::from_env)).
    /// Values are read by [`leader_election::backend::env`].
    ZooKeeperConfig: "ZOOKEEPER" => ZooKeeperLeaderElectionBuilder
}

#[cfg(test)]
mod tests {
    use leader_election::testing::{ConfigCase, check_config};
    use leader_election::{BackendConfig, BuildError, ElectionBuilder};

    use super::*;

    #[test]
    fn config_passes_the_shared_check() {
        let config: ZooKeeperConfig = check_config(ConfigCase {
            vars: &[
                (
                    "LEADER_ELECTION_ZOOKEEPER_CONNECT_STRING",
                    "zk1:2181,zk2:2181/apps",
                ),
                ("LEADER_ELECTION_ZOOKEEPER_PATH", "/elections/jobs"),
                ("LEADER_ELECTION_ZOOKEEPER_SESSION_TIMEOUT", "40s"),
            ],
            secret: None,
            invalid: Some((
                "LEADER_ELECTION_ZOOKEEPER_SESSION_TIMEOUT",
                "soon",
                "session_timeout",
            )),
            tls: false,
        });
        assert_eq!(config.path.as_deref(), Some("/elections/jobs"));
        assert_eq!(config.session_timeout, Some(Duration::from_secs(40)));
        let store = config.into_builder().build_store().unwrap();
        assert_eq!(store.connect_string(), "zk1:2181,zk2:2181/apps");
    }

    #[test]
    fn a_path_ending_in_a_slash_is_refused() {
        let config: ZooKeeperConfig =
            serde_json::from_str(r#"{"connect_string": "zk:2181", "path": "/x/"}"#).unwrap();
        assert!(matches!(
            config.into_builder().build_store().unwrap_err(),
            BuildError::InvalidName { .. }
        ));
    }
}
