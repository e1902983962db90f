//! [`BlobConfig`]: an election on Azure Blob Storage as configuration, from serde or the
//! environment.

use std::fmt;

use leader_election::{BackendConfig, ElectionBuilder, LeaderElectionOptions};

use crate::builder::{
    BlobLeaderElection, BlobLeaderElectionBuilder, DEFAULT_BLOB_NAME, DEFAULT_CONTAINER_NAME,
};

/// An election on Azure Blob Storage as configuration, for loading from the application's
/// config files with serde (durations written like `"30s"`) or from environment variables
/// ([`from_env`](Self::from_env)). Set one of `connection_string`, `sas_url` or `endpoint` (the last
/// needs a credential, given to the builder from [`into_builder`](Self::into_builder)). Missing
/// fields take their defaults; unknown fields are errors.
///
/// ```
/// use leader_election_blob::BlobConfig;
/// use leader_election::{BackendConfig, ElectionBuilder};
///
/// let config: BlobConfig = serde_json::from_str(r#"{
///     "connection_string": "UseDevelopmentStorage=true",
///     "container_name": "elections",
///     "blob_name": "billing",
///     "options": { "lease_duration": "20s", "renew_interval": "5s" }
/// }"#).unwrap();
/// let election = config.into_builder().build().unwrap();
/// assert_eq!(election.store().blob_name(), "billing");
/// ```
#[derive(Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BlobConfig {
    /// See [`BlobLeaderElectionBuilder::connection_string`]. Default: none.
    pub connection_string: Option<String>,
    /// See [`BlobLeaderElectionBuilder::sas_url`]. Default: none.
    pub sas_url: Option<String>,
    /// See [`BlobLeaderElectionBuilder::endpoint`]. Default: none.
    pub endpoint: Option<String>,
    /// See [`BlobLeaderElectionBuilder::container_name`]. Default: `leader-election`.
    pub container_name: String,
    /// See [`BlobLeaderElectionBuilder::blob_name`]. Default: `leader-election-lock`.
    pub blob_name: String,
    /// See [`BlobLeaderElectionBuilder::create_container_if_not_exists`]. Default: true.
    pub create_container_if_not_exists: bool,
    /// The election options. Default: [`LeaderElectionOptions::default`].
    pub options: LeaderElectionOptions,
}

impl Default for BlobConfig {
    fn default() -> Self {
        Self {
            connection_string: None,
            sas_url: None,
            endpoint: None,
            container_name: DEFAULT_CONTAINER_NAME.to_owned(),
            blob_name: DEFAULT_BLOB_NAME.to_owned(),
            create_container_if_not_exists: true,
            options: LeaderElectionOptions::default(),
        }
    }
}

impl fmt::Debug for BlobConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "<redacted>" } else { "<unset>" };
        f.debug_struct("BlobConfig")
            .field("connection_string", &set(&self.connection_string))
            .field("sas_url", &set(&self.sas_url))
            .field("endpoint", &self.endpoint)
            .field("container_name", &self.container_name)
            .field("blob_name", &self.blob_name)
            .field(
                "create_container_if_not_exists",
                &self.create_container_if_not_exists,
            )
            .field("options", &self.options)
            .finish()
    }
}

/// Its environment variables ([`from_env`](BackendConfig::from_env)): `LEADER_ELECTION_BLOB_CONNECTION_STRING`,
/// `LEADER_ELECTION_BLOB_SAS_URL`, `LEADER_ELECTION_BLOB_ENDPOINT`,
/// `LEADER_ELECTION_BLOB_CONTAINER`, `LEADER_ELECTION_BLOB_NAME`,
/// `LEADER_ELECTION_BLOB_CREATE_CONTAINER` (`true`/`false`), and every election option as
/// `LEADER_ELECTION_<FIELD>` (see [`LeaderElectionOptions::from_env`]). Values are read by
/// [`leader_election::backend::env`].
impl BackendConfig for BlobConfig {
    const SECTION: &'static str = "BLOB";
    const ALIASES: &'static [(&'static str, &'static str)] = &[
        ("container", "container_name"),
        ("name", "blob_name"),
        ("create_container", "create_container_if_not_exists"),
    ];
    type Builder = BlobLeaderElectionBuilder;

    fn options(&self) -> &LeaderElectionOptions {
        &self.options
    }

    /// A builder holding this configuration; add a credential for `endpoint`, then
    /// [`build`](leader_election::ElectionBuilder::build), which checks everything.
    fn into_builder(self) -> BlobLeaderElectionBuilder {
        let mut builder = BlobLeaderElection::builder()
            .container_name(self.container_name)
            .blob_name(self.blob_name)
            .create_container_if_not_exists(self.create_container_if_not_exists)
            .options(self.options);
        if let Some(connection_string) = self.connection_string {
            builder = builder.connection_string(connection_string);
        }
        if let Some(sas_url) = self.sas_url {
            builder = builder.sas_url(sas_url);
        }
        if let Some(endpoint) = self.endpoint {
            builder = builder.endpoint(endpoint);
        }
        builder
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn config_loads_from_environment_variables() {
        let vars = [
            (
                "LEADER_ELECTION_BLOB_CONNECTION_STRING",
                "UseDevelopmentStorage=true",
            ),
            ("LEADER_ELECTION_BLOB_CONTAINER", "elections"),
            ("LEADER_ELECTION_BLOB_NAME", "jobs"),
            ("LEADER_ELECTION_BLOB_CREATE_CONTAINER", "false"),
            ("LEADER_ELECTION_LEASE_DURATION", "20s"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = BlobConfig::from_vars(vars).unwrap();
        assert_eq!(config.container_name, "elections");
        assert_eq!(config.blob_name, "jobs");
        assert!(!config.create_container_if_not_exists);
        assert_eq!(config.options.lease_duration, Duration::from_secs(20));
        config.into_builder().build().unwrap();
        let err = BlobConfig::from_vars([(
            "LEADER_ELECTION_BLOB_CREATE_CONTAINER".to_owned(),
            "maybe".to_owned(),
        )])
        .unwrap_err();
        assert_eq!(err.field, "create_container_if_not_exists");
        assert!(
            err.rule
                .contains("LEADER_ELECTION_BLOB_CREATE_CONTAINER=\"maybe\""),
            "{err}"
        );
    }

    #[test]
    fn config_errors_name_the_field_and_hide_secrets() {
        let err = serde_json::from_str::<BlobConfig>(r#"{"blob": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("blob"), "{err}");
        let config: BlobConfig = serde_json::from_str(
            r#"{"connection_string": "AccountName=a;AccountKey=c2VjcmV0LWtleQ==", "container_name": "UPPER"}"#,
        )
        .unwrap();
        assert!(!format!("{config:?}").contains("c2VjcmV0"));
        let err = config.into_builder().build().unwrap_err();
        assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
        let config: BlobConfig = serde_json::from_str("{}").unwrap();
        assert!(config.into_builder().build().is_err(), "no account source");
    }
}
