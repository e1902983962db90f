//! [`S3LeaderElection::builder`]: configuration of an election on S3.

use leader_election::BuildError;
use leader_election::store::conditional::ConditionalStore;
use leader_election_aws::{GivenClient, Target};

use crate::S3Config;
use crate::store::{S3LeaseStore, S3Objects};

/// The entry point for an election on Amazon S3 or an S3-compatible store:
/// [`S3LeaderElection::builder`].
///
/// It has no values; the builder makes a
/// [`LeaderElection<S3LeaseStore>`](leader_election::LeaderElection)
/// ([`build`](leader_election::ElectionBuilder::build)) or the store alone
/// ([`build_store`](leader_election::ElectionBuilder::build_store)). From configuration files or
/// the environment, start from an [`S3Config`](crate::S3Config).
#[derive(Debug)]
pub enum S3LeaderElection {}

impl S3LeaderElection {
    /// A builder with the default key (`leader-election-lock`), credentials and region from
    /// the usual AWS chain (environment, profile files, web identity, ECS/EC2 metadata), and
    /// default options; set at least the [`bucket`](S3LeaderElectionBuilder::bucket).
    pub fn builder() -> S3LeaderElectionBuilder {
        S3LeaderElectionBuilder::default()
    }
}

/// Configures an election on S3; made by [`S3LeaderElection::builder`] or from an
/// [`S3Config`], which it holds.
///
/// Setters never fail; [`build`](leader_election::ElectionBuilder::build) and
/// [`build_store`](leader_election::ElectionBuilder::build_store) check everything. Nothing is
/// contacted until the election starts: credentials are resolved by the store's first operation.
///
/// Of the election options, three matter in particular here: `retry_interval` is how often
/// followers poll the object (one `HEAD` each, plus a `GET` when it changed), since S3 tells
/// nothing by itself; `lease_duration` is how long a follower watches an unchanged object
/// before taking over a lease whose holder went silent; and `operation_timeout` is the budget
/// of each operation, shared by all its requests.
#[must_use]
#[derive(Debug, Default)]
pub struct S3LeaderElectionBuilder {
    pub(crate) config: S3Config,
    pub(crate) client: GivenClient<aws_sdk_s3::Client>,
}

leader_election::backend::config_setters! {
    S3LeaderElectionBuilder { config }
    /// The bucket holding the lease object. Required.
    bucket: impl Into<String>;
    /// The key of the lease object. Every contender of one election uses the same bucket and
    /// key; the key is the election.
    ///
    /// Default: `leader-election-lock`.
    key: impl Into<String>;
}

impl S3LeaderElectionBuilder {
    /// Address the bucket in the path (`https://host/bucket/key`) rather than in the host name
    /// (`https://bucket.host/key`), as most S3-compatible stores (MinIO, moto) need.
    ///
    /// Default: false.
    pub fn force_path_style(mut self, force: bool) -> Self {
        self.config.force_path_style = force;
        self
    }

    /// Whether a missing bucket is created when a write finds none (for tests and local
    /// emulators; on AWS create the bucket beforehand and leave this off).
    ///
    /// Default: false.
    pub fn create_bucket_if_not_exists(mut self, create: bool) -> Self {
        self.config.create_bucket_if_not_exists = create;
        self
    }
}

leader_election_aws::service_setters! {
    S3LeaderElectionBuilder { config, client: aws_sdk_s3::Client }
    /// The service's URL, for an S3-compatible store (`http://127.0.0.1:9000` for a local
    /// MinIO, `https://<account>.r2.cloudflarestorage.com` for R2), replacing the AWS endpoint
    /// of the region.
    ///
    /// Default: none (AWS, or `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` from the environment).
    endpoint;
    /// The region requests are signed for.
    ///
    /// Default: the AWS configuration's (`AWS_REGION`, the profile), else `us-east-1`.
    region;
    /// Sign requests with this access key instead of the AWS credential chain (for an
    /// S3-compatible store's own keys, or a local emulator). The secret never appears in
    /// `Debug` output or errors.
    static_credentials;
    /// Use a client built by the caller, for settings this builder does not offer (a custom
    /// HTTP client, a credentials provider). The store adds its own interceptor (it reads the
    /// service's `Date` header from every response) and turns the SDK's retries off: the
    /// election retries by itself, within the lease. `endpoint`, `region`,
    /// `force_path_style` and `static_credentials` must then not be set.
    client;
}

/// What S3's builder names in its checks.
const S3: Target = Target {
    service: "S3",
    missing: "set bucket",
    check_container: check_bucket,
    object: "object",
    max_key: 1024,
    client_settings: "endpoint, region, force_path_style and static_credentials",
};

/// S3's bucket naming rules (the general-purpose bucket rules, which every S3-compatible store
/// accepts).
fn check_bucket(bucket: &str) -> Result<(), BuildError> {
    let invalid = |rule: &str| BuildError::invalid_name("bucket", bucket, rule);
    if !(3..=63).contains(&bucket.len()) {
        return Err(invalid("must be 3 to 63 characters long"));
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err(invalid(
            "may hold only lower-case letters, digits, dots and hyphens",
        ));
    }
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !edge(bucket.bytes().next()) || !edge(bucket.bytes().last()) {
        return Err(invalid("must start and end with a letter or digit"));
    }
    if bucket.contains("..") {
        return Err(invalid("must not hold two dots in a row"));
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
    /// - [`BuildError::MissingConnection`]: no bucket is set;
    /// - [`BuildError::InvalidName`]: the bucket is not 3–63 lower-case letters, digits, dots
    ///   and hyphens, starting and ending with a letter or digit; or the key is empty, longer
    ///   than 1014 bytes (S3's 1024, less `.candidate` for the candidate record's sibling
    ///   object), or has control characters;
    /// - [`BuildError::InvalidUrl`]: the endpoint is not an `http://` or `https://` URL;
    /// - [`BuildError::ConflictingConnection`]: `endpoint`, `region`, `force_path_style` or
    ///   `static_credentials` is set together with `client`;
    /// - [`BuildError::Options`]: the options fail
    ///   [`LeaderElectionOptions::validate`](leader_election::LeaderElectionOptions::validate).
    S3LeaderElectionBuilder => S3LeaseStore, store_from
}

/// The store of `builder`, whose options
/// [`election_builder!`](leader_election::backend::election_builder) has checked.
fn store_from(builder: S3LeaderElectionBuilder) -> Result<S3LeaseStore, BuildError> {
    let service = builder.service_settings();
    let config = builder.config;
    let checked = S3.check(
        config.bucket,
        config.key,
        service,
        builder.client,
        config.force_path_style,
    )?;
    let objects = S3Objects::new(
        checked.connection,
        config.force_path_style,
        checked.container,
        config.create_bucket_if_not_exists,
    );
    Ok(ConditionalStore::new(objects, checked.key, &config.options))
}

#[cfg(test)]
mod tests {
    use leader_election::ElectionBuilder;
    use leader_election_aws::testing::check_builder;

    use super::*;

    fn local() -> S3LeaderElectionBuilder {
        S3LeaderElection::builder()
            .bucket("elections")
            .endpoint("http://127.0.0.1:5000")
            .force_path_style(true)
            .static_credentials("test", "SECRETKEY")
    }

    /// A client of the caller's (nothing is sent until the store's first operation).
    fn client() -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version_latest()
                .build(),
        )
    }

    #[test]
    fn builds_and_checks_like_every_aws_builder() {
        check_builder(
            &S3,
            local,
            S3LeaderElectionBuilder::key,
            |builder, endpoint| builder.endpoint(endpoint),
            |builder| builder.client(client()),
        );
        assert_eq!(local().build_store().unwrap().bucket(), "elections");
        // The service's longest key, less `.candidate`.
        local().key("k".repeat(1014)).build_store().unwrap();
        local().key("k".repeat(1015)).build_store().unwrap_err();
        let store = S3LeaderElection::builder()
            .bucket("elections")
            .client(client())
            .build_store()
            .unwrap();
        assert!(format!("{store:?}").contains("elections"));
        // force_path_style belongs to the client given too.
        let err = S3LeaderElection::builder()
            .bucket("elections")
            .force_path_style(true)
            .client(client())
            .build_store()
            .unwrap_err();
        assert!(matches!(err, BuildError::ConflictingConnection(_)), "{err}");
    }

    #[test]
    fn a_bucket_is_required() {
        let err = S3LeaderElection::builder().build().unwrap_err();
        assert!(
            matches!(err, BuildError::MissingConnection { backend: "S3", .. }),
            "{err}"
        );
        assert_eq!(err.to_string(), "no S3 connection configured: set bucket");
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for bad in [
            "ab",
            "Upper",
            "under_score",
            "-start",
            "end-",
            "dot..dot",
            &"a".repeat(64),
        ] {
            let err = local().bucket(bad).build_store().unwrap_err();
            assert!(
                matches!(
                    err,
                    BuildError::InvalidName {
                        field: "bucket",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
        for good in ["abc", "a.b-c", "0leader", &"a".repeat(63)] {
            local().bucket(good).build_store().unwrap();
        }
    }
}
