//! [`BlobLeaderElection::builder`]: configuration of an Azure Blob election.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_storage_blob::BlobContainerClient;
use leader_election::{BuildError, ConfigError, ElectionBuilder};

use crate::BlobConfig;
use crate::connection::{Account, host_of};
use crate::names::check_blob_name;
use crate::store::{BlobLeaseStore, MAX_LEASE_SECS, MIN_LEASE_SECS};

/// The container used when none is set.
pub const DEFAULT_CONTAINER_NAME: &str = "leader-election";
/// The blob used when none is set.
pub const DEFAULT_BLOB_NAME: &str = "leader-election-lock";
/// The Azure Storage service version sent with every request unless
/// [`api_version`](BlobLeaderElectionBuilder::api_version) says otherwise: one that both Azure
/// and Azurite 3.35 accept (the SDK's own default is newer than Azurite accepts).
pub const DEFAULT_API_VERSION: &str = "2025-11-05";

/// The entry point for an election on Azure Blob Storage: [`BlobLeaderElection::builder`].
///
/// It has no values; the builder makes a
/// [`LeaderElection<BlobLeaseStore>`](leader_election::LeaderElection)
/// ([`build`](leader_election::ElectionBuilder::build)) or the store alone
/// ([`build_store`](leader_election::ElectionBuilder::build_store)). From configuration files or
/// the environment, start from a [`BlobConfig`](crate::BlobConfig).
#[derive(Debug)]
pub enum BlobLeaderElection {}

impl BlobLeaderElection {
    /// A builder with the default container (`leader-election`), blob
    /// (`leader-election-lock`) and options, and no way to reach the storage account yet: set
    /// [`connection_string`](BlobLeaderElectionBuilder::connection_string),
    /// [`sas_url`](BlobLeaderElectionBuilder::sas_url),
    /// [`endpoint`](BlobLeaderElectionBuilder::endpoint) with
    /// [`credential`](BlobLeaderElectionBuilder::credential), or
    /// [`container_client`](BlobLeaderElectionBuilder::container_client).
    pub fn builder() -> BlobLeaderElectionBuilder {
        BlobLeaderElectionBuilder::default()
    }
}

/// Configures an election on Azure Blob Storage; made by [`BlobLeaderElection::builder`] or
/// from a [`BlobConfig`], which it holds.
///
/// Setters never fail; [`build`](leader_election::ElectionBuilder::build) and
/// [`build_store`](leader_election::ElectionBuilder::build_store) check everything.
///
/// Of the election options, three matter in particular here: `lease_duration` must be 15–60 s
/// (Azure's rule); `retry_interval` is also how often followers poll the blob, since Azure tells
/// neither when a lease expires nor when it is released; and `operation_timeout` is the
/// client-side budget of each operation, shared by all its Azure requests (an acquisition makes
/// several).
#[must_use]
#[derive(Default)]
pub struct BlobLeaderElectionBuilder {
    pub(crate) config: BlobConfig,
    /// The caller's objects, not configuration: the Entra ID credential for the endpoint, and
    /// a container client.
    pub(crate) credential: Option<Arc<dyn TokenCredential>>,
    pub(crate) container_client: Option<BlobContainerClient>,
    /// Not a field of [`BlobConfig`] (its format stays as it is); default:
    /// [`DEFAULT_API_VERSION`].
    pub(crate) api_version: Option<String>,
}

/// Shows whether each way to reach the account is set, never the connection string or SAS URL
/// (a connection string may hold a URL, which a [`Secret`](leader_election::backend::Secret)'s
/// own `Debug` would show).
impl fmt::Debug for BlobLeaderElectionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |is_set: bool| if is_set { "<set>" } else { "<unset>" };
        let config = &self.config;
        f.debug_struct("BlobLeaderElectionBuilder")
            .field(
                "connection_string",
                &set(config.connection_string.is_some()),
            )
            .field("sas_url", &set(config.sas_url.is_some()))
            .field("endpoint", &config.endpoint)
            .field("credential", &set(self.credential.is_some()))
            .field("container_client", &set(self.container_client.is_some()))
            .field("container_name", &config.container_name)
            .field("blob_name", &config.blob_name)
            .field(
                "create_container_if_not_exists",
                &config.create_container_if_not_exists,
            )
            .field("api_version", &self.api_version)
            .field("options", &config.options)
            .finish()
    }
}

leader_election::backend::config_setters! {
    BlobLeaderElectionBuilder { config }
    /// Reach the account through an Azure Storage connection string: with `AccountName` and
    /// `AccountKey` (requests are signed with SharedKey), with `SharedAccessSignature`, or
    /// `UseDevelopmentStorage=true` for a local Azurite. `BlobEndpoint` overrides the endpoint
    /// built from `AccountName`, `DefaultEndpointsProtocol` and `EndpointSuffix`.
    connection_string: impl Into<String>;
    /// Reach the account through a blob service URL carrying a SAS token, such as
    /// `https://account.blob.core.windows.net/?sv=...&sig=...`. The token needs read, write
    /// and create permissions on the container (and on the service if the container is to be
    /// created).
    sas_url: impl Into<String>;
    /// Reach the account at this blob service URL (`https://account.blob.core.windows.net`),
    /// authorized by the [`credential`](Self::credential) (Entra ID).
    endpoint: impl Into<String>;
    /// The container holding the lease blob.
    ///
    /// Default: `leader-election`.
    container_name: impl Into<String>;
    /// The blob whose lease is the leadership. Every contender of one election uses the same
    /// container and blob.
    ///
    /// Default: `leader-election-lock`.
    blob_name: impl Into<String>;
    /// Whether a missing container is created on the first acquisition attempt. The blob is
    /// always created when missing.
    ///
    /// Default: true.
    create_container_if_not_exists: bool;
}

impl BlobLeaderElectionBuilder {
    /// The Entra ID credential for [`endpoint`](Self::endpoint), for example from
    /// `azure_identity`. The identity needs the "Storage Blob Data Contributor" role.
    pub fn credential(mut self, credential: Arc<dyn TokenCredential>) -> Self {
        self.credential = Some(credential);
        self
    }

    /// Use a container client built by the caller (its URL names the container, so
    /// [`container_name`](Self::container_name) must not be set). The client's own retry
    /// settings apply: keep its retries short, well inside the lease duration.
    pub fn container_client(mut self, client: BlobContainerClient) -> Self {
        self.container_client = Some(client);
        self
    }

    /// The Azure Storage service version sent with each request (not used with
    /// [`container_client`](Self::container_client), which has its own).
    ///
    /// Default: [`DEFAULT_API_VERSION`].
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = Some(version.into());
        self
    }
}

impl BlobLeaderElectionBuilder {
    /// Checks the configuration like [`build`](leader_election::ElectionBuilder::build) and returns
    /// a client of the official SDK (`azure_storage_blob`, re-exported as [`crate::azure`]) for the
    /// election's blob, authorized exactly as the store's own requests are (SharedKey, SAS or Entra
    /// ID), with the same service version and no SDK retries. It is a connection of its own, apart
    /// from any election built from the same settings: for the caller's own operations on the blob,
    /// such as reading its properties, or an operator's Break Lease (see the crate README, "What an
    /// operator may do").
    ///
    /// # Errors
    /// As for [`build`](leader_election::ElectionBuilder::build).
    pub fn build_blob_client(self) -> Result<azure_storage_blob::BlobClient, BuildError> {
        let store = self.build_store()?;
        Ok(store.container_client().blob_client(store.blob_name()))
    }
}

leader_election::backend::election_builder! {
    /// The store alone, checked like [`build`](leader_election::ElectionBuilder::build) (see
    /// [`ElectionBuilder::build_store`](leader_election::ElectionBuilder::build_store)); its time
    /// budget comes from the options. Connects to nothing.
    ///
    /// # Errors
    /// - [`BuildError::MissingConnection`]: no way to reach the account is set;
    /// - [`BuildError::ConflictingConnection`]: more than one is set (`credential` goes with
    ///   `endpoint` only, and `container_name` not with `container_client`);
    /// - [`BuildError::InvalidConnectionString`]: the connection string is malformed, lacks
    ///   `AccountKey` or `SharedAccessSignature`, or its key is not base64;
    /// - [`BuildError::InvalidUrl`]: a URL is not http(s), has a query where none belongs, or
    ///   a SAS URL has no signature;
    /// - [`BuildError::InvalidName`]: the container name is not 3–63 lower-case letters,
    ///   digits and single hyphens, starting and ending with a letter or digit; or the blob
    ///   name is empty, longer than 1024 characters, has control characters or a backslash,
    ///   or ends with `.` or `/`;
    /// - [`BuildError::Options`]: `lease_duration` is outside 15–60 s (Azure's rule), or the
    ///   options fail
    ///   [`LeaderElectionOptions::validate`](leader_election::LeaderElectionOptions::validate);
    /// - [`BuildError::Client`]: the Azure SDK refuses the client (it requires https with a
    ///   credential).
    BlobLeaderElectionBuilder => BlobLeaseStore, store_from
}

/// The store of `builder`, whose options
/// [`election_builder!`](leader_election::backend::election_builder) has checked.
fn store_from(builder: BlobLeaderElectionBuilder) -> Result<BlobLeaseStore, BuildError> {
    let BlobConfig {
        connection_string,
        sas_url,
        endpoint,
        container_name,
        blob_name,
        create_container_if_not_exists,
        options,
    } = builder.config;
    let lease = options.lease_duration;
    if lease < Duration::from_secs(MIN_LEASE_SECS) || lease > Duration::from_secs(MAX_LEASE_SECS) {
        return Err(ConfigError::new(
            "lease_duration",
            format!(
                "must be between {MIN_LEASE_SECS} s and {MAX_LEASE_SECS} s for Azure Blob \
                 leases, got {lease:?}"
            ),
        )
        .into());
    }
    let blob_name = blob_name.unwrap_or_else(|| DEFAULT_BLOB_NAME.to_owned());
    check_blob_name(&blob_name)?;
    let timeout = options.operation_timeout();
    let account = Account {
        connection_string,
        sas_url,
        endpoint,
        credential: builder.credential,
        container_client: builder.container_client,
    };
    let api_version = builder
        .api_version
        .unwrap_or_else(|| DEFAULT_API_VERSION.to_owned());
    let (client, container_name) = account.container_client(container_name, api_version)?;
    let host = host_of(client.url());
    Ok(BlobLeaseStore::new(
        client,
        container_name,
        blob_name,
        host,
        create_container_if_not_exists.unwrap_or(true),
        timeout,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use leader_election::ElectionBuilder;

    const KEY: &str = "c2VjcmV0LWFjY291bnQta2V5LXZhbHVl";

    fn dev() -> BlobLeaderElectionBuilder {
        BlobLeaderElection::builder().connection_string("UseDevelopmentStorage=true")
    }

    #[test]
    fn defaults_build() {
        let store = dev().build_store().unwrap();
        assert_eq!(store.container_name(), DEFAULT_CONTAINER_NAME);
        assert_eq!(store.blob_name(), DEFAULT_BLOB_NAME);
        let election = dev().instance_id("me").build().unwrap();
        assert_eq!(election.instance_id(), "me");
        assert_eq!(election.options().lease_duration, Duration::from_secs(30));
    }

    #[test]
    fn lease_durations_outside_azure_limits_are_refused() {
        for secs in [1, 14, 61, 3600] {
            let err = dev()
                .lease_duration(Duration::from_secs(secs))
                .renew_interval(Duration::from_millis(500))
                .build()
                .unwrap_err();
            assert!(
                matches!(&err, BuildError::Options(e) if e.field == "lease_duration"),
                "{secs}: {err}"
            );
        }
        for secs in [15, 60] {
            dev()
                .lease_duration(Duration::from_secs(secs))
                .renew_interval(Duration::from_secs(5))
                .build()
                .unwrap();
        }
    }

    #[test]
    fn container_names_follow_azure_rules() {
        for bad in [
            "ab",
            "Upper",
            "has_underscore",
            "-start",
            "end-",
            "dou--ble",
            &"a".repeat(64),
        ] {
            let err = dev().container_name(bad).build_store().unwrap_err();
            assert!(
                matches!(
                    err,
                    BuildError::InvalidName {
                        field: "container_name",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
        for good in ["abc", "a-b-c", "0leader", &"a".repeat(63)] {
            dev().container_name(good).build_store().unwrap();
        }
    }

    #[test]
    fn blob_names_follow_azure_rules() {
        for bad in [
            "",
            "end.",
            "end/",
            "back\\slash",
            "ctl\u{1}",
            &"a".repeat(1025),
        ] {
            let err = dev().blob_name(bad).build_store().unwrap_err();
            assert!(
                matches!(
                    err,
                    BuildError::InvalidName {
                        field: "blob_name",
                        ..
                    }
                ),
                "{bad:?}: {err}"
            );
        }
        dev()
            .blob_name("elections/orders lock")
            .build_store()
            .unwrap();
    }

    #[test]
    fn account_sources_must_be_exactly_one() {
        let err = BlobLeaderElection::builder().build().unwrap_err();
        assert!(
            matches!(
                err,
                BuildError::MissingConnection {
                    backend: "Azure Blob",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("connection_string, sas_url"),
            "{err}"
        );
        let err = dev()
            .sas_url("https://a.blob.core.windows.net/?sig=x")
            .build()
            .unwrap_err();
        assert!(matches!(err, BuildError::ConflictingConnection(_)), "{err}");
        let err = BlobLeaderElection::builder()
            .endpoint("https://a.blob.core.windows.net")
            .build()
            .unwrap_err();
        assert!(matches!(err, BuildError::ConflictingConnection(_)), "{err}");
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let connection = format!("AccountName=acct;AccountKey={KEY}");
        let builder = BlobLeaderElection::builder().connection_string(&connection);
        assert!(!format!("{builder:?}").contains(KEY));
        let store = builder.build_store().unwrap();
        assert!(!format!("{store:?}").contains(KEY));
        // A connection string may hold a URL (`BlobEndpoint`): still nothing of it is shown.
        let builder = BlobLeaderElection::builder().connection_string(format!(
            "AccountName=acct;AccountKey={KEY};BlobEndpoint=http://127.0.0.1:10000/acct"
        ));
        assert!(!format!("{builder:?}").contains(KEY), "{builder:?}");

        let sas = "https://acct.blob.core.windows.net/?sv=2025-11-05&sig=SECRETSIG";
        let builder = BlobLeaderElection::builder().sas_url(sas);
        assert!(!format!("{builder:?}").contains("SECRETSIG"));
        let election = builder.build().unwrap();
        assert!(!format!("{election:?}").contains("SECRETSIG"));
        assert!(!format!("{:?}", election.store()).contains("SECRETSIG"));

        let err = BlobLeaderElection::builder()
            .connection_string(format!("AccountName=acct;AccountKey={KEY}%"))
            .build()
            .unwrap_err();
        assert!(!err.to_string().contains(KEY) && !format!("{err:?}").contains(KEY));

        for bad in [
            "ftp://acct.blob.core.windows.net/?sv=1&sig=SECRETSIG",
            "https://user:SECRETSIG@acct.blob.core.windows.net/?sv=1&sig=SECRETSIG",
            "not a URL ?sig=SECRETSIG",
        ] {
            let err = BlobLeaderElection::builder()
                .sas_url(bad)
                .build()
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    BuildError::InvalidUrl {
                        field: "sas_url",
                        ..
                    }
                ),
                "{err}"
            );
            assert!(
                !err.to_string().contains("SECRETSIG") && !format!("{err:?}").contains("SECRETSIG"),
                "{err}"
            );
        }
    }
}
