//! [`PostgresConfig`]: an election on PostgreSQL as configuration, from serde or the
//! environment.

use leader_election::LeaderElectionOptions;
use leader_election::backend::Secret;
#[cfg(feature = "tls")]
use leader_election::backend::tls::TlsFiles;

use crate::builder::PostgresLeaderElectionBuilder;

/// An election on PostgreSQL as configuration, for loading from the application's config files with
/// serde (durations written like `"30s"`) or from environment variables
/// ([`from_env`](leader_election::BackendConfig::from_env)). Missing fields take their defaults;
/// unknown fields are errors. [`into_builder`](leader_election::BackendConfig::into_builder) turns
/// it into a builder, whose `build()` or `build_store()` checks it.
///
/// ```
/// use leader_election_postgres::PostgresConfig;
/// use leader_election::{BackendConfig, ElectionBuilder};
///
/// let config: PostgresConfig = serde_json::from_str(r#"{
///     "connection_string": "postgres://app:secret@db:5432/app",
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
pub struct PostgresConfig {
    /// See [`PostgresLeaderElectionBuilder::connection_string`]. Default: none (required).
    pub connection_string: Option<Secret>,
    /// See [`PostgresLeaderElectionBuilder::listen_connection_string`]. Default: none (the
    /// listener uses `connection_string`).
    pub listen_connection_string: Option<Secret>,
    /// The CA and client certificate files ([`TlsFiles`]), read when the store is built.
    /// Default: none (the system's roots, no client certificate).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub tls: TlsFiles,
    /// See [`PostgresLeaderElectionBuilder::table`]. Default: `leader_election_leases`.
    pub table: Option<String>,
    /// See [`PostgresLeaderElectionBuilder::election`]. Default: `leader-election`.
    pub election: Option<String>,
    /// See [`PostgresLeaderElectionBuilder::pool_size`]. Default: 2.
    pub pool_size: Option<usize>,
    /// The election options. Default: [`LeaderElectionOptions::default`].
    pub options: LeaderElectionOptions,
}

leader_election::backend::backend_config! {
    /// Its environment variables ([`from_env`](leader_election::BackendConfig::from_env)):
    /// `LEADER_ELECTION_POSTGRES_URL` (a connection string), `LEADER_ELECTION_POSTGRES_LISTEN_URL`
    /// (one for the release listener), with feature `tls` the paths
    /// `LEADER_ELECTION_POSTGRES_TLS_CA_FILE`, `LEADER_ELECTION_POSTGRES_TLS_CERT_FILE` and
    /// `LEADER_ELECTION_POSTGRES_TLS_KEY_FILE`, `LEADER_ELECTION_POSTGRES_TABLE`,
    /// `LEADER_ELECTION_POSTGRES_ELECTION`, `LEADER_ELECTION_POSTGRES_POOL_SIZE`, and every
    /// election option as `LEADER_ELECTION_<FIELD>` (see
    /// [`LeaderElectionOptions::from_env`](leader_election::LeaderElectionOptions::from_env)).
    /// Values are read by [`leader_election::backend::env`].
    PostgresConfig: "POSTGRES",
        aliases [("url", "connection_string"), ("listen_url", "listen_connection_string")]
        => PostgresLeaderElectionBuilder with tls
}

#[cfg(test)]
mod tests {
    use leader_election::BackendConfig;
    use leader_election::testing::{ConfigCase, check_config};

    use leader_election::ElectionBuilder;

    use super::*;
    use crate::BuildError;

    #[test]
    fn config_passes_the_shared_check() {
        let config: PostgresConfig = check_config(ConfigCase {
            vars: &[
                ("LEADER_ELECTION_POSTGRES_URL", "host=db password=hunter2"),
                (
                    "LEADER_ELECTION_POSTGRES_LISTEN_URL",
                    "host=direct password=hunter2",
                ),
                ("LEADER_ELECTION_POSTGRES_ELECTION", "jobs"),
                ("LEADER_ELECTION_POSTGRES_POOL_SIZE", "3"),
            ],
            secret: Some("hunter2"),
            invalid: Some(("LEADER_ELECTION_POSTGRES_POOL_SIZE", "many", "pool_size")),
            tls: cfg!(feature = "tls"),
        });
        assert_eq!(config.election.as_deref(), Some("jobs"));
        assert_eq!(config.pool_size, Some(3));
        assert_eq!(
            config.listen_connection_string.as_ref().map(Secret::expose),
            Some("host=direct password=hunter2")
        );
    }

    #[test]
    fn a_pool_size_of_zero_is_refused() {
        let config: PostgresConfig =
            serde_json::from_str(r#"{"connection_string": "host=db", "pool_size": 0}"#).unwrap();
        assert!(matches!(
            config.into_builder().build_store().unwrap_err(),
            BuildError::Options(e) if e.field == "pool_size"
        ));
    }
}
