//! [`DynamoDbConfig`]: an election on DynamoDB as configuration, from serde or the
//! environment.

use leader_election::LeaderElectionOptions;
use leader_election::backend::Secret;

use crate::builder::DynamoDbLeaderElectionBuilder;

/// An election on DynamoDB as configuration, for loading from the application's config files with
/// serde (durations written like `"30s"`) or from environment variables
/// ([`from_env`](leader_election::BackendConfig::from_env)). Credentials come from the AWS chain
/// unless `access_key_id` and `secret_access_key` are both set. Missing fields take their defaults;
/// unknown fields are errors.
///
/// ```
/// use leader_election_dynamodb::DynamoDbConfig;
/// use leader_election::{BackendConfig, ElectionBuilder};
///
/// let config: DynamoDbConfig = serde_json::from_str(r#"{
///     "table": "elections",
///     "key": "billing",
///     "region": "eu-west-1",
///     "options": { "lease_duration": "20s", "renew_interval": "5s" }
/// }"#).unwrap();
/// let election = config.into_builder().build().unwrap();
/// assert_eq!(election.store().key(), "billing");
/// ```
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DynamoDbConfig {
    /// See [`DynamoDbLeaderElectionBuilder::table`]. Required.
    pub table: Option<String>,
    /// See [`DynamoDbLeaderElectionBuilder::key`]. Default: `leader-election-lock`.
    pub key: Option<String>,
    /// See [`DynamoDbLeaderElectionBuilder::endpoint`]. Default: none.
    pub endpoint: Option<String>,
    /// See [`DynamoDbLeaderElectionBuilder::region`]. Default: none (the AWS chain's, else
    /// `us-east-1`).
    pub region: Option<String>,
    /// With `secret_access_key`, see [`DynamoDbLeaderElectionBuilder::static_credentials`].
    /// Default: none.
    pub access_key_id: Option<String>,
    /// With `access_key_id`, see [`DynamoDbLeaderElectionBuilder::static_credentials`].
    /// Default: none.
    pub secret_access_key: Option<Secret>,
    /// See [`DynamoDbLeaderElectionBuilder::create_table_if_not_exists`]. Default: false.
    pub create_table_if_not_exists: bool,
    /// The election options. Default: [`LeaderElectionOptions::default`].
    pub options: LeaderElectionOptions,
}

leader_election::backend::backend_config! {
    /// Its environment variables ([`from_env`](leader_election::BackendConfig::from_env)):
    /// `LEADER_ELECTION_DYNAMODB_TABLE`, `LEADER_ELECTION_DYNAMODB_KEY`,
    /// `LEADER_ELECTION_DYNAMODB_ENDPOINT`, `LEADER_ELECTION_DYNAMODB_REGION`,
    /// `LEADER_ELECTION_DYNAMODB_CREATE_TABLE` (`true`/`false`), and every election option as
    /// `LEADER_ELECTION_<FIELD>` (see
    /// [`LeaderElectionOptions::from_env`](leader_election::LeaderElectionOptions::from_env)).
    /// Static credentials may be given as `LEADER_ELECTION_DYNAMODB_ACCESS_KEY_ID` and
    /// `LEADER_ELECTION_DYNAMODB_SECRET_ACCESS_KEY` (the two together); without them, the AWS chain
    /// reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE` and the rest by itself.
    DynamoDbConfig: "DYNAMODB",
        aliases [("create_table", "create_table_if_not_exists")]
        => DynamoDbLeaderElectionBuilder
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
        let config: DynamoDbConfig = check_config(ConfigCase {
            vars: &[
                ("LEADER_ELECTION_DYNAMODB_TABLE", "elections"),
                ("LEADER_ELECTION_DYNAMODB_KEY", "jobs"),
                ("LEADER_ELECTION_DYNAMODB_ENDPOINT", "http://127.0.0.1:8000"),
                ("LEADER_ELECTION_DYNAMODB_REGION", "eu-west-1"),
                ("LEADER_ELECTION_DYNAMODB_CREATE_TABLE", "true"),
            ],
            secret: None,
            invalid: Some((
                "LEADER_ELECTION_DYNAMODB_CREATE_TABLE",
                "maybe",
                "create_table_if_not_exists",
            )),
            tls: false,
        });
        assert_eq!(config.table.as_deref(), Some("elections"));
        assert_eq!(config.key.as_deref(), Some("jobs"));
        assert_eq!(config.region.as_deref(), Some("eu-west-1"));
        assert!(config.create_table_if_not_exists);
        let store = config.into_builder().build_store().unwrap();
        assert_eq!(store.key(), "jobs");
    }

    #[test]
    fn the_secret_access_key_is_never_shown() {
        check_config_secret::<DynamoDbConfig>("TABLE");
    }
}
