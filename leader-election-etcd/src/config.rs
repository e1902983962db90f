//! [`EtcdConfig`]: an election on etcd as configuration, from serde or the environment.

use std::fmt;
#[cfg(feature = "tls")]
use std::path::PathBuf;

#[cfg(feature = "tls")]
use leader_election::backend::tls::TlsSettings;
use leader_election::{BackendConfig, ElectionBuilder, LeaderElectionOptions};

use crate::builder::{EtcdLeaderElection, EtcdLeaderElectionBuilder};
use crate::store::DEFAULT_KEY;

/// An election on etcd as configuration, for loading from the application's config files with
/// serde (durations written like `"30s"`) or from environment variables
/// ([`from_env`](Self::from_env)). Missing fields take their defaults; unknown fields are
/// errors. [`into_builder`](Self::into_builder) turns it into a builder, whose `build()` or
/// `build_store()` checks it.
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
#[derive(Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct EtcdConfig {
    /// See [`EtcdLeaderElectionBuilder::endpoints`]. Default: none (required).
    pub endpoints: Vec<String>,
    /// See [`EtcdLeaderElectionBuilder::key`]. Default: `leader-election-lock`.
    pub key: String,
    /// The etcd user; see [`EtcdLeaderElectionBuilder::user`]. Default: none.
    pub user: Option<String>,
    /// The etcd user's password. Default: none (an empty password with a user).
    pub password: Option<String>,
    /// A PEM file of CA certificates to trust for `https://` endpoints instead of the system's
    /// roots; see [`TlsBuilder::tls_ca_file`](leader_election::TlsBuilder::tls_ca_file).
    /// Default: none.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub tls_ca_file: Option<PathBuf>,
    /// A PEM file with the client certificate for mutual TLS; needs
    /// [`tls_key_file`](Self::tls_key_file). Default: none.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub tls_cert_file: Option<PathBuf>,
    /// A PEM file with the client certificate's private key. Default: none.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub tls_key_file: Option<PathBuf>,
    /// The election options. Default: [`LeaderElectionOptions::default`].
    pub options: LeaderElectionOptions,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            key: DEFAULT_KEY.to_owned(),
            user: None,
            password: None,
            #[cfg(feature = "tls")]
            tls_ca_file: None,
            #[cfg(feature = "tls")]
            tls_cert_file: None,
            #[cfg(feature = "tls")]
            tls_key_file: None,
            options: LeaderElectionOptions::default(),
        }
    }
}

impl fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("EtcdConfig");
        f.field("endpoints", &self.endpoints)
            .field("key", &self.key)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"));
        #[cfg(feature = "tls")]
        f.field("tls_ca_file", &self.tls_ca_file)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file);
        f.field("options", &self.options).finish()
    }
}

/// Its environment variables ([`from_env`](BackendConfig::from_env)): `LEADER_ELECTION_ETCD_ENDPOINTS`
/// (comma-separated URLs), `LEADER_ELECTION_ETCD_KEY`, `LEADER_ELECTION_ETCD_USER`,
/// `LEADER_ELECTION_ETCD_PASSWORD`, with feature `tls` the paths
/// `LEADER_ELECTION_ETCD_TLS_CA_FILE`, `LEADER_ELECTION_ETCD_TLS_CERT_FILE` and
/// `LEADER_ELECTION_ETCD_TLS_KEY_FILE`, and every election option as
/// `LEADER_ELECTION_<FIELD>` (see [`LeaderElectionOptions::from_env`]). Values are read
/// by [`leader_election::backend::env`].
impl BackendConfig for EtcdConfig {
    const SECTION: &'static str = "ETCD";
    type Builder = EtcdLeaderElectionBuilder;

    fn options(&self) -> &LeaderElectionOptions {
        &self.options
    }

    fn into_builder(self) -> EtcdLeaderElectionBuilder {
        let mut builder = EtcdLeaderElection::builder()
            .key(self.key)
            .options(self.options);
        if !self.endpoints.is_empty() {
            builder = builder.endpoints(self.endpoints);
        }
        if let Some(user) = self.user {
            builder = builder.user(user, self.password.unwrap_or_default());
        }
        #[cfg(feature = "tls")]
        builder.tls.merge(TlsSettings::from_files(
            self.tls_ca_file,
            self.tls_cert_file,
            self.tls_key_file,
        ));
        builder
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use leader_election_test_support::vars;

    use super::*;
    use crate::BuildError;

    #[test]
    fn config_loads_from_environment_variables() {
        let config = EtcdConfig::from_vars(vars(&[
            (
                "LEADER_ELECTION_ETCD_ENDPOINTS",
                "http://10.0.0.1:2379, http://10.0.0.2:2379,",
            ),
            ("LEADER_ELECTION_ETCD_KEY", "jobs"),
            ("LEADER_ELECTION_ETCD_USER", "jobs"),
            ("LEADER_ELECTION_ETCD_PASSWORD", "hunter2"),
            ("LEADER_ELECTION_LEASE_DURATION", "12s"),
            ("LEADER_ELECTION_RENEW_INTERVAL", "4s"),
            ("HOME", "/root"),
        ]))
        .unwrap();
        assert_eq!(
            config.endpoints,
            ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]
        );
        assert_eq!(config.key, "jobs");
        assert_eq!(config.user.as_deref(), Some("jobs"));
        assert_eq!(config.options.lease_duration, Duration::from_secs(12));
        assert!(!format!("{config:?}").contains("hunter2"));
        let store = config.into_builder().build_store().unwrap();
        assert!(!format!("{store:?}").contains("hunter2"));
        let err = EtcdConfig::from_vars(vars(&[("LEADER_ELECTION_ETCD_ENDPOINT", "http://x:1")]))
            .unwrap_err();
        assert!(
            err.to_string().contains("LEADER_ELECTION_ETCD_ENDPOINT"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_configuration_needs_endpoints() {
        let config = EtcdConfig::from_vars(Vec::new()).unwrap();
        assert!(matches!(
            config.into_builder().build_store().unwrap_err(),
            BuildError::MissingConnection {
                backend: "etcd",
                ..
            }
        ));
    }
}
