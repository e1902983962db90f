//! [`MysqlConfig`]: an election on MySQL or MariaDB as configuration, from serde or the
//! environment.

use std::fmt;
#[cfg(feature = "tls")]
use std::path::PathBuf;

use leader_election::backend::redact_url;
#[cfg(feature = "tls")]
use leader_election::backend::tls::TlsSettings;
use leader_election::{BackendConfig, ElectionBuilder, LeaderElectionOptions};

use crate::builder::{DEFAULT_POOL_SIZE, MysqlLeaderElection, MysqlLeaderElectionBuilder};
use crate::store::{DEFAULT_ELECTION, DEFAULT_TABLE};

/// An election on MySQL or MariaDB as configuration, for loading from the application's config
/// files with serde (durations written like `"30s"`) or from environment variables
/// ([`from_env`](BackendConfig::from_env)). Missing fields take their defaults; unknown fields
/// are errors. [`into_builder`](BackendConfig::into_builder) turns it into a builder, whose
/// `build()` or `build_store()` checks it.
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
#[derive(Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MysqlConfig {
    /// See [`MysqlLeaderElectionBuilder::url`]. Default: none (required).
    pub url: Option<String>,
    /// A PEM file with the CA certificates to verify the server with; see
    /// [`TlsBuilder::tls_ca_file`](leader_election::TlsBuilder::tls_ca_file). Default: none.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub tls_ca_file: Option<PathBuf>,
    /// A PEM file with the client certificate; needs [`tls_key_file`](Self::tls_key_file).
    /// Default: none.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub tls_cert_file: Option<PathBuf>,
    /// A PEM file with the client certificate's private key. Default: none.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub tls_key_file: Option<PathBuf>,
    /// See [`MysqlLeaderElectionBuilder::table`]. Default: `leader_election_leases`.
    pub table: String,
    /// See [`MysqlLeaderElectionBuilder::election`]. Default: `leader-election`.
    pub election: String,
    /// See [`MysqlLeaderElectionBuilder::pool_size`]. Default: 2.
    pub pool_size: usize,
    /// The election options. Default: [`LeaderElectionOptions::default`].
    pub options: LeaderElectionOptions,
}

impl Default for MysqlConfig {
    fn default() -> Self {
        Self {
            url: None,
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

impl fmt::Debug for MysqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("MysqlConfig");
        f.field("url", &self.url.as_deref().map(redact_url));
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

/// Its environment variables ([`from_env`](BackendConfig::from_env)): `LEADER_ELECTION_MYSQL_URL`,
/// with feature `tls` the paths `LEADER_ELECTION_MYSQL_TLS_CA_FILE`,
/// `LEADER_ELECTION_MYSQL_TLS_CERT_FILE` and `LEADER_ELECTION_MYSQL_TLS_KEY_FILE`,
/// `LEADER_ELECTION_MYSQL_TABLE`, `LEADER_ELECTION_MYSQL_ELECTION`,
/// `LEADER_ELECTION_MYSQL_POOL_SIZE`, and every election option as `LEADER_ELECTION_<FIELD>`
/// (see [`LeaderElectionOptions::from_env`]). Values are read by
/// [`leader_election::backend::env`].
impl BackendConfig for MysqlConfig {
    const SECTION: &'static str = "MYSQL";
    type Builder = MysqlLeaderElectionBuilder;

    fn options(&self) -> &LeaderElectionOptions {
        &self.options
    }

    fn into_builder(self) -> MysqlLeaderElectionBuilder {
        let mut builder = MysqlLeaderElection::builder()
            .table(self.table)
            .election(self.election)
            .pool_size(self.pool_size)
            .options(self.options);
        if let Some(url) = self.url {
            builder = builder.url(url);
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
    use leader_election::BuildError;

    #[test]
    fn config_loads_from_environment_variables() {
        let vars = [
            ("LEADER_ELECTION_MYSQL_URL", "mysql://app:hunter2@db/app"),
            ("LEADER_ELECTION_MYSQL_ELECTION", "jobs"),
            ("LEADER_ELECTION_MYSQL_POOL_SIZE", "3"),
            ("LEADER_ELECTION_RETRY_JITTER", "0.2"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = MysqlConfig::from_vars(vars).unwrap();
        assert_eq!(config.election, "jobs");
        assert_eq!(config.pool_size, 3);
        assert_eq!(config.options.retry_jitter, 0.2);
        assert!(!format!("{config:?}").contains("hunter2"));
        let err = MysqlConfig::from_vars([(
            "LEADER_ELECTION_MYSQL_POOL_SIZE".to_owned(),
            "many".to_owned(),
        )])
        .unwrap_err();
        assert_eq!(err.field, "pool_size");
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = serde_json::from_str::<MysqlConfig>(r#"{"tabel": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("tabel"), "{err}");
        let config: MysqlConfig = serde_json::from_str("{}").unwrap();
        assert!(matches!(
            config.into_builder().build().unwrap_err(),
            BuildError::MissingConnection { .. }
        ));
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

    #[cfg(feature = "tls")]
    #[test]
    fn tls_files_load_from_the_environment_and_are_read_by_build_store() {
        let vars = [
            ("LEADER_ELECTION_MYSQL_URL", "mysql://db/app"),
            ("LEADER_ELECTION_MYSQL_TLS_CA_FILE", "/nonexistent/ca.pem"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = MysqlConfig::from_vars(vars).unwrap();
        assert_eq!(
            config.tls_ca_file.as_deref(),
            Some("/nonexistent/ca.pem".as_ref())
        );
        assert!(matches!(
            config.into_builder().build_store().unwrap_err(),
            BuildError::Tls {
                setting: "tls_ca",
                ..
            }
        ));
    }
}
