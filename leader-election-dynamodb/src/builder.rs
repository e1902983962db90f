//! [`DynamoDbLeaderElection::builder`]: configuration of an election on DynamoDB.

use leader_election::BuildError;
use leader_election::store::conditional::ConditionalStore;
use leader_election_aws::{GivenClient, Target};

use crate::DynamoDbConfig;
use crate::store::{DynamoDbLeaseStore, DynamoDbObjects};

/// The entry point for an election on Amazon DynamoDB: [`DynamoDbLeaderElection::builder`].
///
/// It has no values; the builder makes a
/// [`LeaderElection<DynamoDbLeaseStore>`](leader_election::LeaderElection)
/// ([`build`](leader_election::ElectionBuilder::build)) or the store alone
/// ([`build_store`](leader_election::ElectionBuilder::build_store)). From configuration files or
/// the environment, start from a [`DynamoDbConfig`](crate::DynamoDbConfig).
#[derive(Debug)]
pub enum DynamoDbLeaderElection {}

impl DynamoDbLeaderElection {
    /// A builder with the default key (`leader-election-lock`), credentials and region from
    /// the usual AWS chain (environment, profile files, web identity, ECS/EC2 metadata), and
    /// default options; set at least the [`table`](DynamoDbLeaderElectionBuilder::table).
    pub fn builder() -> DynamoDbLeaderElectionBuilder {
        DynamoDbLeaderElectionBuilder::default()
    }
}

/// Configures an election on DynamoDB; made by [`DynamoDbLeaderElection::builder`] or from a
/// [`DynamoDbConfig`], which it holds.
///
/// Setters never fail; [`build`](leader_election::ElectionBuilder::build) and
/// [`build_store`](leader_election::ElectionBuilder::build_store) check everything. Nothing is
/// contacted until the election starts: credentials are resolved by the store's first operation.
///
/// Of the election options, three matter in particular here: `retry_interval` is how often
/// followers poll the item (one strongly consistent `GetItem` each), since DynamoDB tells
/// nothing by itself; `lease_duration` is how long a follower watches an unchanged item
/// before taking over a lease whose holder went silent; and `operation_timeout` is the budget
/// of each operation, shared by all its requests.
#[must_use]
#[derive(Debug, Default)]
pub struct DynamoDbLeaderElectionBuilder {
    pub(crate) config: DynamoDbConfig,
    pub(crate) client: GivenClient<aws_sdk_dynamodb::Client>,
}

leader_election::backend::config_setters! {
    DynamoDbLeaderElectionBuilder { config }
    /// The table holding the lease item; its partition key must be a string attribute named
    /// `pk` (no sort key). Several elections may share one table. Required.
    table: impl Into<String>;
    /// The key of the lease item (its `pk`). Every contender of one election uses the same
    /// table and key; the key is the election.
    ///
    /// Default: `leader-election-lock`.
    key: impl Into<String>;
}

impl DynamoDbLeaderElectionBuilder {
    /// Whether a missing table is created (a string partition key `pk`, on-demand billing)
    /// when a request finds none (for tests and local emulators; on AWS create the table
    /// beforehand and leave this off).
    ///
    /// Default: false.
    pub fn create_table_if_not_exists(mut self, create: bool) -> Self {
        self.config.create_table_if_not_exists = create;
        self
    }
}

leader_election_aws::service_setters! {
    DynamoDbLeaderElectionBuilder { config, client: aws_sdk_dynamodb::Client }
    /// The service's URL, for a local emulator (`http://127.0.0.1:8000`) or a VPC endpoint,
    /// replacing the AWS endpoint of the region.
    ///
    /// Default: none (AWS, or `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL` from the
    /// environment).
    endpoint;
    /// The region of the table (requests are signed for it).
    ///
    /// Default: the AWS configuration's (`AWS_REGION`, the profile), else `us-east-1`.
    region;
    /// Sign requests with this access key instead of the AWS credential chain (for a local
    /// emulator). The secret never appears in `Debug` output or errors.
    static_credentials;
    /// Use a client built by the caller, for settings this builder does not offer (a custom
    /// HTTP client, a credentials provider). The store adds its own interceptor (it reads the
    /// service's `Date` header from every response) and turns the SDK's retries off: the
    /// election retries by itself, within the lease. `endpoint`, `region` and
    /// `static_credentials` must then not be set.
    client;
}

/// What DynamoDB's builder names in its checks.
const DYNAMODB: Target = Target {
    service: "DynamoDB",
    missing: "set table",
    check_container: check_table,
    object: "item",
    max_key: 2048,
    client_settings: "endpoint, region and static_credentials",
};

/// DynamoDB's table naming rules.
fn check_table(table: &str) -> Result<(), BuildError> {
    let invalid = |rule: &str| BuildError::invalid_name("table", table, rule);
    if !(3..=255).contains(&table.len()) {
        return Err(invalid("must be 3 to 255 characters long"));
    }
    if !table
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(invalid(
            "may hold only letters, digits, underscores, hyphens and dots",
        ));
    }
    Ok(())
}

leader_election::backend::election_builder! {
    /// The store alone, checked like [`build`](leader_election::ElectionBuilder::build) (see
    /// [`ElectionBuilder::build_store`](leader_election::ElectionBuilder::build_store)); its
    /// timings come from the options (the follower's watch uses `clock_drift_rate`,
    /// `deadline_slack` and `retry_interval`). Contacts nothing.
    ///
    /// # Errors
    /// - [`BuildError::MissingConnection`]: no table is set;
    /// - [`BuildError::InvalidName`]: the table is not 3–255 letters, digits, underscores,
    ///   hyphens and dots; or the key is empty, longer than 2038 bytes (DynamoDB's 2048, less
    ///   `.candidate` for the candidate record's sibling item), or has control characters;
    /// - [`BuildError::InvalidUrl`]: the endpoint is not an `http://` or `https://` URL;
    /// - [`BuildError::ConflictingConnection`]: `endpoint`, `region` or `static_credentials`
    ///   is set together with `client`;
    /// - [`BuildError::Options`]: the options fail
    ///   [`LeaderElectionOptions::validate`](leader_election::LeaderElectionOptions::validate).
    DynamoDbLeaderElectionBuilder => DynamoDbLeaseStore, store_from
}

/// The store of `builder`, whose options
/// [`election_builder!`](leader_election::backend::election_builder) has checked.
fn store_from(builder: DynamoDbLeaderElectionBuilder) -> Result<DynamoDbLeaseStore, BuildError> {
    let service = builder.service_settings();
    let config = builder.config;
    let checked = DYNAMODB.check(config.table, config.key, service, builder.client, false)?;
    let objects = DynamoDbObjects::new(
        checked.connection,
        checked.container,
        config.create_table_if_not_exists,
    );
    Ok(ConditionalStore::new(objects, checked.key, &config.options))
}

#[cfg(test)]
mod tests {
    use leader_election::ElectionBuilder;
    use leader_election_aws::testing::check_builder;

    use super::*;

    fn local() -> DynamoDbLeaderElectionBuilder {
        DynamoDbLeaderElection::builder()
            .table("elections")
            .endpoint("http://127.0.0.1:8000")
            .static_credentials("test", "SECRETKEY")
    }

    /// A client of the caller's (nothing is sent until the store's first operation).
    fn client() -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version_latest()
                .build(),
        )
    }

    #[test]
    fn builds_and_checks_like_every_aws_builder() {
        check_builder(
            &DYNAMODB,
            local,
            DynamoDbLeaderElectionBuilder::key,
            |builder, endpoint| builder.endpoint(endpoint),
            |builder| builder.client(client()),
        );
        let store = local().build_store().unwrap();
        assert_eq!(store.table(), "elections");
        assert_eq!(store.record_key(), "leader-election-lock.record");
        assert_eq!(store.candidate_key(), "leader-election-lock.candidate");
        // The service's longest key, less `.candidate`.
        local().key("k".repeat(2038)).build_store().unwrap();
        local().key("k".repeat(2039)).build_store().unwrap_err();
        let store = DynamoDbLeaderElection::builder()
            .table("elections")
            .client(client())
            .build_store()
            .unwrap();
        assert!(format!("{store:?}").contains("elections"));
    }

    #[test]
    fn a_table_is_required() {
        let err = DynamoDbLeaderElection::builder().build().unwrap_err();
        assert!(
            matches!(
                err,
                BuildError::MissingConnection {
                    backend: "DynamoDB",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "no DynamoDB connection configured: set table"
        );
    }

    #[test]
    fn table_names_follow_dynamodb_rules() {
        for bad in ["ab", "sp ace", "slash/", "ü-table", &"a".repeat(256)] {
            let err = local().table(bad).build_store().unwrap_err();
            assert!(
                matches!(err, BuildError::InvalidName { field: "table", .. }),
                "{bad}: {err}"
            );
        }
        for good in ["abc", "Elections_2.0-x", &"a".repeat(255)] {
            local().table(good).build_store().unwrap();
        }
    }
}
