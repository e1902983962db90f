//! [`S3Config`]: an election on S3 as configuration, from serde or the environment.

use std::fmt;

use leader_election::store::conditional::ServiceSettings;
use leader_election::{BackendConfig, ElectionBuilder, LeaderElectionOptions};

use crate::builder::{DEFAULT_KEY, S3LeaderElection, S3LeaderElectionBuilder};

/// An election on S3 as configuration, for loading from the application's config files with
/// serde (durations written like `"30s"`) or from environment variables
/// ([`from_env`](Self::from_env)). Credentials come from the AWS chain unless
/// `access_key_id` and `secret_access_key` are both set. Missing fields take their defaults;
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
#[derive(Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct S3Config {
    /// See [`S3LeaderElectionBuilder::bucket`]. Required.
    pub bucket: Option<String>,
    /// See [`S3LeaderElectionBuilder::key`]. Default: `leader-election-lock`.
    pub key: String,
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
    pub secret_access_key: Option<String>,
    /// See [`S3LeaderElectionBuilder::create_bucket_if_not_exists`]. Default: false.
    pub create_bucket_if_not_exists: bool,
    /// The election options. Default: [`LeaderElectionOptions::default`].
    pub options: LeaderElectionOptions,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            bucket: None,
            key: DEFAULT_KEY.to_owned(),
            endpoint: None,
            region: None,
            force_path_style: false,
            access_key_id: None,
            secret_access_key: None,
            create_bucket_if_not_exists: false,
            options: LeaderElectionOptions::default(),
        }
    }
}

impl S3Config {
    fn service(&self) -> ServiceSettings {
        ServiceSettings::from_config(
            self.endpoint.clone(),
            self.region.clone(),
            self.access_key_id.clone(),
            self.secret_access_key.clone(),
        )
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .field("service", &self.service())
            .field("force_path_style", &self.force_path_style)
            .field(
                "create_bucket_if_not_exists",
                &self.create_bucket_if_not_exists,
            )
            .field("options", &self.options)
            .finish()
    }
}

/// Its environment variables ([`from_env`](BackendConfig::from_env)): `LEADER_ELECTION_S3_BUCKET`,
/// `LEADER_ELECTION_S3_KEY`, `LEADER_ELECTION_S3_ENDPOINT`, `LEADER_ELECTION_S3_REGION`,
/// `LEADER_ELECTION_S3_FORCE_PATH_STYLE` (`true`/`false`),
/// `LEADER_ELECTION_S3_CREATE_BUCKET` (`true`/`false`), and every election option as
/// `LEADER_ELECTION_<FIELD>` (see [`LeaderElectionOptions::from_env`]). Credentials are
/// not read here: the AWS chain reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_PROFILE` and the rest by itself.
impl BackendConfig for S3Config {
    const SECTION: &'static str = "S3";
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("create_bucket", "create_bucket_if_not_exists")];
    type Builder = S3LeaderElectionBuilder;

    fn options(&self) -> &LeaderElectionOptions {
        &self.options
    }

    /// A builder holding this configuration; [`build`](leader_election::ElectionBuilder::build)
    /// checks everything.
    fn into_builder(self) -> S3LeaderElectionBuilder {
        let mut builder = S3LeaderElection::builder()
            .key(self.key)
            .force_path_style(self.force_path_style)
            .create_bucket_if_not_exists(self.create_bucket_if_not_exists)
            .options(self.options);
        if let Some(bucket) = self.bucket {
            builder = builder.bucket(bucket);
        }
        builder.service = ServiceSettings::from_config(
            self.endpoint,
            self.region,
            self.access_key_id,
            self.secret_access_key,
        );
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
            ("LEADER_ELECTION_S3_BUCKET", "elections"),
            ("LEADER_ELECTION_S3_KEY", "jobs"),
            ("LEADER_ELECTION_S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("LEADER_ELECTION_S3_REGION", "eu-west-1"),
            ("LEADER_ELECTION_S3_FORCE_PATH_STYLE", "true"),
            ("LEADER_ELECTION_S3_CREATE_BUCKET", "true"),
            ("LEADER_ELECTION_LEASE_DURATION", "20s"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = S3Config::from_vars(vars).unwrap();
        assert_eq!(config.bucket.as_deref(), Some("elections"));
        assert_eq!(config.key, "jobs");
        assert_eq!(config.region.as_deref(), Some("eu-west-1"));
        assert!(config.force_path_style && config.create_bucket_if_not_exists);
        assert_eq!(config.options.lease_duration, Duration::from_secs(20));
        let store = config.into_builder().build_store().unwrap();
        assert_eq!(store.key(), "jobs");
        let err = S3Config::from_vars([(
            "LEADER_ELECTION_S3_FORCE_PATH_STYLE".to_owned(),
            "maybe".to_owned(),
        )])
        .unwrap_err();
        assert_eq!(err.field, "force_path_style");
    }

    #[test]
    fn config_errors_name_the_field_and_hide_secrets() {
        let err = serde_json::from_str::<S3Config>(r#"{"bukket": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("bukket"), "{err}");
        let config: S3Config = serde_json::from_str(
            r#"{"bucket": "b-1", "access_key_id": "id", "secret_access_key": "TOPSECRET"}"#,
        )
        .unwrap();
        assert!(!format!("{config:?}").contains("TOPSECRET"));
        let store = config.into_builder().build_store().unwrap();
        assert!(!format!("{store:?}").contains("TOPSECRET"));
        let config: S3Config = serde_json::from_str("{}").unwrap();
        assert!(config.into_builder().build().is_err(), "no bucket");
    }
}
