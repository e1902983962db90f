//! [`BlobConfig`]: an election on Azure Blob Storage as configuration, from serde or the
//! environment.

use leader_election::LeaderElectionOptions;
use leader_election::backend::Secret;

use crate::builder::BlobLeaderElectionBuilder;

/// An election on Azure Blob Storage as configuration, for loading from the application's config
/// files with serde (durations written like `"30s"`) or from environment variables
/// ([`from_env`](leader_election::BackendConfig::from_env)). Set one of `connection_string`,
/// `sas_url` or `endpoint` (the last needs a credential, given to the builder from
/// [`into_builder`](leader_election::BackendConfig::into_builder)). Missing fields take their
/// defaults; unknown fields are errors.
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
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BlobConfig {
    /// See [`BlobLeaderElectionBuilder::connection_string`]. Default: none.
    pub connection_string: Option<Secret>,
    /// See [`BlobLeaderElectionBuilder::sas_url`]. Default: none.
    pub sas_url: Option<Secret>,
    /// See [`BlobLeaderElectionBuilder::endpoint`]. Default: none.
    pub endpoint: Option<String>,
    /// See [`BlobLeaderElectionBuilder::container_name`]. Default: `leader-election`.
    pub container_name: Option<String>,
    /// See [`BlobLeaderElectionBuilder::blob_name`]. Default: `leader-election-lock`.
    pub blob_name: Option<String>,
    /// See [`BlobLeaderElectionBuilder::create_container_if_not_exists`]. Default: true.
    pub create_container_if_not_exists: Option<bool>,
    /// The election options. Default: [`LeaderElectionOptions::default`].
    pub options: LeaderElectionOptions,
}

leader_election::backend::backend_config! {
    /// Its environment variables ([`from_env`](leader_election::BackendConfig::from_env)):
    /// `LEADER_ELECTION_BLOB_CONNECTION_STRING`, `LEADER_ELECTION_BLOB_SAS_URL`,
    /// `LEADER_ELECTION_BLOB_ENDPOINT`, `LEADER_ELECTION_BLOB_CONTAINER`,
    /// `LEADER_ELECTION_BLOB_NAME`, `LEADER_ELECTION_BLOB_CREATE_CONTAINER` (`true`/`false`), and
    /// every election option as `LEADER_ELECTION_<FIELD>` (see
    /// [`LeaderElectionOptions::from_env`](leader_election::LeaderElectionOptions::from_env)).
    /// Values are read by [`leader_election::backend::env`].
    BlobConfig: "BLOB",
        aliases [
            ("container", "container_name"),
            ("name", "blob_name"),
            ("create_container", "create_container_if_not_exists"),
        ]
        => BlobLeaderElectionBuilder
}

#[cfg(test)]
mod tests {
    use leader_election::BackendConfig;
    use leader_election::ElectionBuilder;
    use leader_election::testing::{ConfigCase, check_config};

    use super::*;

    #[test]
    fn config_passes_the_shared_check() {
        let config: BlobConfig = check_config(ConfigCase {
            vars: &[
                (
                    "LEADER_ELECTION_BLOB_CONNECTION_STRING",
                    "AccountName=a;AccountKey=c2VjcmV0LWtleQ==",
                ),
                ("LEADER_ELECTION_BLOB_CONTAINER", "elections"),
                ("LEADER_ELECTION_BLOB_NAME", "jobs"),
                ("LEADER_ELECTION_BLOB_CREATE_CONTAINER", "false"),
                ("LEADER_ELECTION_LEASE_DURATION", "20s"),
            ],
            secret: Some("c2VjcmV0"),
            invalid: Some((
                "LEADER_ELECTION_BLOB_CREATE_CONTAINER",
                "maybe",
                "create_container_if_not_exists",
            )),
            tls: false,
        });
        assert_eq!(config.container_name.as_deref(), Some("elections"));
        assert_eq!(config.blob_name.as_deref(), Some("jobs"));
        assert_eq!(config.create_container_if_not_exists, Some(false));
        config.into_builder().build().unwrap();
    }

    #[test]
    fn secrets_stay_hidden_when_a_setting_is_refused() {
        let config: BlobConfig = serde_json::from_str(
            r#"{"connection_string": "AccountName=a;AccountKey=c2VjcmV0LWtleQ==", "container_name": "UPPER"}"#,
        )
        .unwrap();
        let err = config.into_builder().build().unwrap_err();
        assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
        let config: BlobConfig = serde_json::from_str(
            r#"{"sas_url": "https://a.blob.core.windows.net/c?sv=2022&sig=c2VjcmV0"}"#,
        )
        .unwrap();
        assert!(!format!("{config:?}").contains("c2VjcmV0"), "{config:?}");
    }
}
