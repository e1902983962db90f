//! [`MysqlConfig`]: an election on MySQL or MariaDB as configuration, from serde or the
//! environment.

use leader_election::LeaderElectionOptions;
use leader_election::backend::Secret;
#[cfg(feature = "tls")]
use leader_election::backend::tls::TlsFiles;

use crate::builder::MysqlLeaderElectionBuilder;

/// An election on MySQL or MariaDB as configuration, for loading from the application's config
/// files with serde (durations written like `"30s"`) or from environment variables
/// ([`from_env`](leader_election::BackendConfig::from_env)). Missing fields take their defaults;
/// unknown fields are errors. [`into_builder`](leader_election::BackendConfig::into_builder) turns
/// it into a builder, whose `build()` or `build_store()` checks it.
///
/// ```
/// use leader_election_mysql::MysqlConfig;
/// use leader_election::{BackendConfig, ElectionBuilder};
///
/// let config: MysqlConfig = serde_json::from_str(r#"{
///     "url": "mysql://app:secret@db:3306/app",
///     "election": "billing",
///     "options": { "lease_duration": "15s", "renew_interval": "5s" }
/// }"#).unwrap();
/// let election = config.into_builder().build().unwrap();
/// assert_eq!(election.store().election(), "billing");
/// assert!(!format!("{:?}", election.store()).contains("secret"));
/// ```
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MysqlConfig {
    /// See [`MysqlLeaderElectionBuilder::url`]. Default: none (required).
    pub url: Option<Secret>,
    /// The CA and client certificate files ([`TlsFiles`]), read when the store is built.
    /// Default: none (the system's roots, no client certificate).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub tls: TlsFiles,
    /// See [`MysqlLeaderElectionBuilder::table`]. Default: `leader_election_leases`.
    pub table: Option<String>,
    /// See [`MysqlLeaderElectionBuilder::election`]. Default: `leader-election`.
    pub election: Option<String>,
    /// See [`MysqlLeaderElectionBuilder::pool_size`]. Default: 2.
    pub pool_size: Option<usize>,
    /// The election options. Default: [`LeaderElectionOptions::default`].
    pub options: LeaderElectionOptions,
}

leader_election::backend::backend_config! {
    /// Its environment variables ([`from_env`](leader_election::BackendConfig::from_env)):
    /// `LEADER_ELECTION_MYSQL_URL`, with feature `tls` the paths
    /// `LEADER_ELECTION_MYSQL_TLS_CA_FILE`, `LEADER_ELECTION_MYSQL_TLS_CERT_FILE` and
    /// `LEADER_ELECTION_MYSQL_TLS_KEY_FILE`, `LEADER_ELECTION_MYSQL_TABLE`,
    /// `LEADER_ELECTION_MYSQL_ELECTION`, `LEADER_ELECTION_MYSQL_POOL_SIZE`, and every election
    /// option as `LEADER_ELECTION_<FIELD>` (see
    /// [`LeaderElectionOptions::from_env`](leader_election::LeaderElectionOptions::from_env)).
    /// Values are read by [`leader_election::backend::env`].
    MysqlConfig: "MYSQL" => MysqlLeaderElectionBuilder with tls
}

#[cfg(test)]
mod tests {
    use leader_election::BackendConfig;
    use leader_election::testing::{ConfigCase, check_config};
    use leader_election::{BuildError, ElectionBuilder};

    use super::*;

    #[test]
    fn config_passes_the_shared_check() {
        let config: MysqlConfig = check_config(ConfigCase {
            vars: &[
                ("LEADER_ELECTION_MYSQL_URL", "mysql://app:hunter2@db/app"),
                ("LEADER_ELECTION_MYSQL_ELECTION", "jobs"),
                ("LEADER_ELECTION_MYSQL_POOL_SIZE", "3"),
            ],
            secret: Some("hunter2"),
            invalid: Some(("LEADER_ELECTION_MYSQL_POOL_SIZE", "many", "pool_size")),
            tls: cfg!(feature = "tls"),
        });
        assert_eq!(config.election.as_deref(), Some("jobs"));
        assert_eq!(config.pool_size, Some(3));
    }

    #[test]
    fn a_pool_size_of_zero_and_a_url_of_another_scheme_are_refused() {
        let config: MysqlConfig =
            serde_json::from_str(r#"{"url": "mysql://db/app", "pool_size": 0}"#).unwrap();
        assert!(matches!(
            config.into_builder().build_store().unwrap_err(),
            BuildError::Options(e) if e.field == "pool_size"
        ));
        let config: MysqlConfig =
            serde_json::from_str(r#"{"url": "postgres://app:hunter2@db/app"}"#).unwrap();
        let err = config.into_builder().build_store().unwrap_err();
        assert!(matches!(err, BuildError::InvalidUrl { .. }), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
