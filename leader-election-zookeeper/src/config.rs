//! [`ZooKeeperConfig`]: an election on Apache ZooKeeper as configuration, from serde or the
//! environment.

use std::time::Duration;

use leader_election::{BackendConfig, ElectionBuilder, LeaderElectionOptions};

use crate::builder::{ZooKeeperLeaderElection, ZooKeeperLeaderElectionBuilder};
use crate::store::DEFAULT_PATH;

/// An election on Apache ZooKeeper as configuration, for loading from the application's config
/// files with serde (durations written like `"30s"`) or from environment variables
/// ([`from_env`](BackendConfig::from_env)). Missing fields take their defaults; unknown fields
/// are errors. [`into_builder`](BackendConfig::into_builder) turns it into a builder, whose
/// `build()` or `build_store()` checks it.
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
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ZooKeeperConfig {
    /// See [`ZooKeeperLeaderElectionBuilder::connect_string`]. Default: none (required).
    pub connect_string: Option<String>,
    /// See [`ZooKeeperLeaderElectionBuilder::path`]. Default:
    /// `/leader-election/leader-election`.
    pub path: String,
    /// See [`ZooKeeperLeaderElectionBuilder::session_timeout`]. Default: the lease duration.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Option<Duration>,
    /// See [`ZooKeeperLeaderElectionBuilder::connection_timeout`]. Default: the client's.
    #[serde(with = "humantime_serde")]
    pub connection_timeout: Option<Duration>,
    /// The election options. Default: [`LeaderElectionOptions::default`].
    pub options: LeaderElectionOptions,
}

impl Default for ZooKeeperConfig {
    fn default() -> Self {
        Self {
            connect_string: None,
            path: DEFAULT_PATH.to_owned(),
            session_timeout: None,
            connection_timeout: None,
            options: LeaderElectionOptions::default(),
        }
    }
}

/// Its environment variables ([`from_env`](BackendConfig::from_env)):
/// `LEADER_ELECTION_ZOOKEEPER_CONNECT_STRING`, `LEADER_ELECTION_ZOOKEEPER_PATH`,
/// `LEADER_ELECTION_ZOOKEEPER_SESSION_TIMEOUT`, `LEADER_ELECTION_ZOOKEEPER_CONNECTION_TIMEOUT`,
/// and every election option as `LEADER_ELECTION_<FIELD>` (see
/// [`LeaderElectionOptions::from_env`]). Values are read by [`leader_election::backend::env`].
impl BackendConfig for ZooKeeperConfig {
    const SECTION: &'static str = "ZOOKEEPER";
    type Builder = ZooKeeperLeaderElectionBuilder;

    fn options(&self) -> &LeaderElectionOptions {
        &self.options
    }

    fn into_builder(self) -> ZooKeeperLeaderElectionBuilder {
        let mut builder = ZooKeeperLeaderElection::builder()
            .path(self.path)
            .options(self.options);
        if let Some(connect_string) = self.connect_string {
            builder = builder.connect_string(connect_string);
        }
        if let Some(timeout) = self.session_timeout {
            builder = builder.session_timeout(timeout);
        }
        if let Some(timeout) = self.connection_timeout {
            builder = builder.connection_timeout(timeout);
        }
        builder
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leader_election::BuildError;

    #[test]
    fn config_loads_from_environment_variables() {
        let vars = [
            (
                "LEADER_ELECTION_ZOOKEEPER_CONNECT_STRING",
                "zk1:2181,zk2:2181/apps",
            ),
            ("LEADER_ELECTION_ZOOKEEPER_PATH", "/elections/jobs"),
            ("LEADER_ELECTION_ZOOKEEPER_SESSION_TIMEOUT", "40s"),
            ("LEADER_ELECTION_RETRY_JITTER", "0.2"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = ZooKeeperConfig::from_vars(vars).unwrap();
        assert_eq!(config.path, "/elections/jobs");
        assert_eq!(config.session_timeout, Some(Duration::from_secs(40)));
        assert_eq!(config.options.retry_jitter, 0.2);
        let store = config.into_builder().build_store().unwrap();
        assert_eq!(store.connect_string(), "zk1:2181,zk2:2181/apps");
        let err = ZooKeeperConfig::from_vars([(
            "LEADER_ELECTION_ZOOKEEPER_SESSION_TIMEOUT".to_owned(),
            "soon".to_owned(),
        )])
        .unwrap_err();
        assert_eq!(err.field, "session_timeout");
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = serde_json::from_str::<ZooKeeperConfig>(r#"{"pth": "/x"}"#).unwrap_err();
        assert!(err.to_string().contains("pth"), "{err}");
        let config: ZooKeeperConfig = serde_json::from_str("{}").unwrap();
        assert!(matches!(
            config.into_builder().build().unwrap_err(),
            BuildError::MissingConnection { .. }
        ));
        let config: ZooKeeperConfig =
            serde_json::from_str(r#"{"connect_string": "zk:2181", "path": "/x/"}"#).unwrap();
        assert!(matches!(
            config.into_builder().build_store().unwrap_err(),
            BuildError::InvalidName { .. }
        ));
    }
}
