//! [`S3Config`]: an election on S3 as configuration, from serde or the environment.

use leader_election::LeaderElectionOptions;
use leader_election::backend::Secret;

use crate::builder::S3LeaderElectionBuilder;

/// An election on S3 as configuration, for loading from the application's config files with serde
/// (durations written like `"30s"`) or from environment variables
/// ([`from_env`](leader_election::BackendConfig::from_env)). Credentials come from the AWS chain
/// unless `access_key_id` and `secret_access_key` are both set. Missing fields take their defaults;
/// unknown fields are errors.
///
/// ```
/// use leader_election_s3::S3Config;
/// use leader_election::{BackendConfig, ElectionBuilder};
///
/// let config: S3Config = serde_json::from_str(r#"{
///     "bucket": "elections",
///     "key": "billing",
///     "endpoint": "http://127.0.0.1:9000",
///     "force_path_style": true,
///     "options": { "lease_duration": "20s", "renew_interval": "5s" }
/// }"#).unwrap();
/// let election = config.into_builder().build().unwrap();
/// assert_eq!(election.store().key(), "billing");
/// ```
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct S3Config {
    /// See [`S3LeaderElectionBuilder::bucket`]. Required.
    pub bucket: Option<String>,
    /// See [`S3LeaderElectionBuilder::key`]. Default: `leader-election-lock`.
    pub key: Option<String>,
    /// See [`S3LeaderElectionBuilder::endpoint`]. Default: none.
    pub endpoint: Option<String>,
    /// See [`S3LeaderElectionBuilder::region`]. Default: none (the AWS chain's, else
    /// `us-east-1`).
    pub region: Option<String>,
    /// See [`S3LeaderElectionBuilder::force_path_style`]. Default: false.
    pub force_path_style: bool,
    /// With `secret_access_key`, see [`S3LeaderElectionBuilder::static_credentials`].
    /// Default: none.
    pub access_key_id: Option<String>,
    /// With `access_key_id`, see [`S3LeaderElectionBuilder::static_credentials`]. Default:
    /// none.
    pub secret_access_key: Option<Secret>,
    /// See [`S3LeaderElectionBuilder::create_bucket_if_not_exists`]. Default: false.
    pub create_bucket_if_not_exists: bool,
    /// The election options. Default: [`LeaderElectionOptions::default`].
    pub options: LeaderElectionOptions,
}

leader_election::backend::backend_config! {
    /// Its environment variables ([`from_env`](leader_election::BackendConfig::from_env)):
    /// `LEADER_ELECTION_S3_BUCKET`, `LEADER_ELECTION_S3_KEY`, `LEADER_ELECTION_S3_ENDPOINT`,
    /// `LEADER_ELECTION_S3_REGION`, `LEADER_ELECTION_S3_FORCE_PATH_STYLE` (`true`/`false`),
    /// `LEADER_ELECTION_S3_CREATE_BUCKET` (`true`/`false`), and every election option as
    /// `LEADER_ELECTION_<FIELD>` (see
    /// [`LeaderElectionOptions::from_env`](leader_election::LeaderElectionOptions::from_env)).
    /// Static credentials may be given as `LEADER_ELECTION_S3_ACCESS_KEY_ID` and
    /// `LEADER_ELECTION_S3_SECRET_ACCESS_KEY` (the two together); without them, the AWS chain reads
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE` and the rest by itself.
    S3Config: "S3",
        aliases [("create_bucket", "create_bucket_if_not_exists")]
        => S3LeaderElectionBuilder
}

#[cfg(test)]
mod tests {
    use leader_election::BackendConfig;
    use leader_election::ElectionBuilder;
    use leader_election::testing::{ConfigCase, check_config};
    use leader_election_aws::testing::check_config_secret;

    use super::*;

    #[test]
    fn config_passes_the_shared_check() {
        let config: S3Config = check_config(ConfigCase {
            vars: &[
                ("LEADER_ELECTION_S3_BUCKET", "elections"),
                ("LEADER_ELECTION_S3_KEY", "jobs"),
                ("LEADER_ELECTION_S3_ENDPOINT", "http://127.0.0.1:9000"),
                ("LEADER_ELECTION_S3_REGION", "eu-west-1"),
                ("LEADER_ELECTION_S3_FORCE_PATH_STYLE", "true"),
                ("LEADER_ELECTION_S3_CREATE_BUCKET", "true"),
            ],
            secret: None,
            invalid: Some((
                "LEADER_ELECTION_S3_FORCE_PATH_STYLE",
                "maybe",
                "force_path_style",
            )),
            tls: false,
        });
        assert_eq!(config.bucket.as_deref(), Some("elections"));
        assert_eq!(config.key.as_deref(), Some("jobs"));
        assert_eq!(config.region.as_deref(), Some("eu-west-1"));
        assert!(config.force_path_style && config.create_bucket_if_not_exists);
        let store = config.into_builder().build_store().unwrap();
        assert_eq!(store.key(), "jobs");
    }

    #[test]
    fn the_secret_access_key_is_never_shown() {
        check_config_secret::<S3Config>("BUCKET");
    }
}
