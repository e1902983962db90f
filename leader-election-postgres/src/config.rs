//! [`PostgresConfig`]: an election on PostgreSQL as configuration, from serde or the
//! environment.

use std::fmt;
#[cfg(feature = "tls")]
use std::path::PathBuf;

#[cfg(feature = "tls")]
use leader_election::backend::tls::TlsSettings;

use leader_election::{BackendConfig, ElectionBuilder, LeaderElectionOptions};

use crate::builder::{DEFAULT_POOL_SIZE, PostgresLeaderElection, PostgresLeaderElectionBuilder};
use crate::store::{DEFAULT_ELECTION, DEFAULT_TABLE};

/// An election on PostgreSQL as configuration, for loading from the application's config files
/// with serde (durations written like `"30s"`) or from environment variables
/// ([`from_env`](Self::from_env)). Missing fields take their defaults; unknown fields are
/// errors. [`into_builder`](Self::into_builder) turns it into a builder, whose `build()` or
/// `build_store()` checks it.
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
#[derive(Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PostgresConfig {
    /// See [`PostgresLeaderElectionBuilder::connection_string`]. Default: none (required).
    pub connection_string: Option<String>,
    /// See [`PostgresLeaderElectionBuilder::listen_connection_string`]. Default: none (the
    /// listener uses `connection_string`).
    pub listen_connection_string: Option<String>,
    /// A PEM file with the CA certificates to verify the server with, instead of the system's
    /// roots; see [`TlsBuilder::tls_ca_file`](leader_election::TlsBuilder::tls_ca_file). Default: none.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub tls_ca_file: Option<PathBuf>,
    /// A PEM file with the client certificate; needs [`tls_key_file`](Self::tls_key_file). See
    /// [`TlsBuilder::tls_client_cert_file`](leader_election::TlsBuilder::tls_client_cert_file). Default: none.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub tls_cert_file: Option<PathBuf>,
    /// A PEM file with the client certificate's private key. Default: none.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub tls_key_file: Option<PathBuf>,
    /// See [`PostgresLeaderElectionBuilder::table`]. Default: `leader_election_leases`.
    pub table: String,
    /// See [`PostgresLeaderElectionBuilder::election`]. Default: `leader-election`.
    pub election: String,
    /// See [`PostgresLeaderElectionBuilder::pool_size`]. Default: 2.
    pub pool_size: usize,
    /// The election options. Default: [`LeaderElectionOptions::default`].
    pub options: LeaderElectionOptions,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            connection_string: None,
            listen_connection_string: None,
            #[cfg(feature = "tls")]
            tls_ca_file: None,
            #[cfg(feature = "tls")]
            tls_cert_file: None,
            #[cfg(feature = "tls")]
            tls_key_file: None,
            table: DEFAULT_TABLE.to_owned(),
            election: DEFAULT_ELECTION.to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            options: LeaderElectionOptions::default(),
        }
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("PostgresConfig");
        for (name, value) in [
            ("connection_string", &self.connection_string),
            ("listen_connection_string", &self.listen_connection_string),
        ] {
            f.field(name, &value.as_ref().map(|_| "(redacted)"));
        }
        #[cfg(feature = "tls")]
        f.field("tls_ca_file", &self.tls_ca_file)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file);
        f.field("table", &self.table)
            .field("election", &self.election)
            .field("pool_size", &self.pool_size)
            .field("options", &self.options)
            .finish()
    }
}

/// Its environment variables ([`from_env`](BackendConfig::from_env)): `LEADER_ELECTION_POSTGRES_URL` (a
/// connection string), `LEADER_ELECTION_POSTGRES_LISTEN_URL` (one for the release
/// listener), with feature `tls` the paths `LEADER_ELECTION_POSTGRES_TLS_CA_FILE`,
/// `LEADER_ELECTION_POSTGRES_TLS_CERT_FILE` and `LEADER_ELECTION_POSTGRES_TLS_KEY_FILE`,
/// `LEADER_ELECTION_POSTGRES_TABLE`, `LEADER_ELECTION_POSTGRES_ELECTION`,
/// `LEADER_ELECTION_POSTGRES_POOL_SIZE`, and every election option as
/// `LEADER_ELECTION_<FIELD>` (see [`LeaderElectionOptions::from_env`]). Values are read by
/// [`leader_election::backend::env`].
impl BackendConfig for PostgresConfig {
    const SECTION: &'static str = "POSTGRES";
    const ALIASES: &'static [(&'static str, &'static str)] = &[
        ("url", "connection_string"),
        ("listen_url", "listen_connection_string"),
    ];
    type Builder = PostgresLeaderElectionBuilder;

    fn options(&self) -> &LeaderElectionOptions {
        &self.options
    }

    fn into_builder(self) -> PostgresLeaderElectionBuilder {
        let mut builder = PostgresLeaderElection::builder()
            .table(self.table)
            .election(self.election)
            .pool_size(self.pool_size)
            .options(self.options);
        if let Some(connection_string) = self.connection_string {
            builder = builder.connection_string(connection_string);
        }
        if let Some(connection_string) = self.listen_connection_string {
            builder = builder.listen_connection_string(connection_string);
        }
        #[cfg(feature = "tls")]
        leader_election::TlsBuilder::tls_settings(&mut builder).merge(TlsSettings::from_files(
            self.tls_ca_file,
            self.tls_cert_file,
            self.tls_key_file,
        ));
        builder
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BuildError;

    #[test]
    fn config_loads_from_environment_variables() {
        let vars = [
            (
                "LEADER_ELECTION_POSTGRES_URL",
                "host=db user=app password=hunter2",
            ),
            ("LEADER_ELECTION_POSTGRES_ELECTION", "jobs"),
            ("LEADER_ELECTION_POSTGRES_POOL_SIZE", "3"),
            ("LEADER_ELECTION_RETRY_JITTER", "0.2"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = PostgresConfig::from_vars(vars).unwrap();
        assert_eq!(config.election, "jobs");
        assert_eq!(config.pool_size, 3);
        assert_eq!(config.options.retry_jitter, 0.2);
        assert!(!format!("{config:?}").contains("hunter2"));
        let err = PostgresConfig::from_vars([(
            "LEADER_ELECTION_POSTGRES_POOL_SIZE".to_owned(),
            "many".to_owned(),
        )])
        .unwrap_err();
        assert_eq!(err.field, "pool_size");
        assert!(
            err.rule.contains("LEADER_ELECTION_POSTGRES_POOL_SIZE"),
            "{err}"
        );
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = serde_json::from_str::<PostgresConfig>(r#"{"tabel": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("tabel"), "{err}");
        let err =
            serde_json::from_str::<PostgresConfig>(r#"{"options": {"lease_duration": "forever"}}"#)
                .unwrap_err();
        assert!(err.to_string().contains("duration"), "{err}");
        let config: PostgresConfig = serde_json::from_str("{}").unwrap();
        assert!(matches!(
            config.into_builder().build().unwrap_err(),
            BuildError::MissingConnection { .. }
        ));
        let config: PostgresConfig =
            serde_json::from_str(r#"{"connection_string": "host=db", "pool_size": 0}"#).unwrap();
        assert!(matches!(
            config.into_builder().build_store().unwrap_err(),
            BuildError::Options(e) if e.field == "pool_size"
        ));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_files_and_the_listen_url_load_from_the_environment() {
        let vars = [
            (
                "LEADER_ELECTION_POSTGRES_URL",
                "host=db sslmode=verify-full",
            ),
            (
                "LEADER_ELECTION_POSTGRES_LISTEN_URL",
                "host=direct password=hunter2",
            ),
            (
                "LEADER_ELECTION_POSTGRES_TLS_CA_FILE",
                "/nonexistent/ca.pem",
            ),
            (
                "LEADER_ELECTION_POSTGRES_TLS_CERT_FILE",
                "/etc/pg/client.pem",
            ),
            (
                "LEADER_ELECTION_POSTGRES_TLS_KEY_FILE",
                "/etc/pg/client.key",
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = PostgresConfig::from_vars(vars).unwrap();
        assert_eq!(
            config.tls_ca_file.as_deref(),
            Some("/nonexistent/ca.pem".as_ref())
        );
        assert_eq!(
            config.listen_connection_string.as_deref(),
            Some("host=direct password=hunter2")
        );
        assert!(!format!("{config:?}").contains("hunter2"));
        // The files are read by build_store, which names the setting.
        assert!(matches!(
            config.into_builder().build_store().unwrap_err(),
            BuildError::Tls {
                setting: "tls_ca",
                ..
            }
        ));
    }
}
