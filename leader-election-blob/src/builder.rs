//! [`BlobLeaderElection::builder`]: configuration of an Azure Blob election.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_core::http::policies::Policy;
use azure_core::http::{ClientOptions, RetryOptions};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use leader_election::{LeaderElection, LeaderElectionOptions};

use crate::connection::{
    Auth, Target, container_url, host_of, parse_connection_string, parse_sas_url, service_url,
};
use crate::error::BuildError;
use crate::shared_key::SharedKeyPolicy;
use crate::store::{BlobLeaseStore, MAX_LEASE_SECS, MIN_LEASE_SECS};

/// The container used when none is set.
pub const DEFAULT_CONTAINER_NAME: &str = "leader-election";
/// The blob used when none is set.
pub const DEFAULT_BLOB_NAME: &str = "leader-election-lock";
/// The Azure Storage service version sent with every request unless
/// [`api_version`](BlobLeaderElectionBuilder::api_version) says otherwise: one that both Azure
/// and Azurite 3.35 accept (the SDK's own default is newer than Azurite accepts).
pub const DEFAULT_API_VERSION: &str = "2025-11-05";

/// Entry point of this crate: a leader election kept in an Azure blob lease.
///
/// See the [crate documentation](crate) for examples.
#[derive(Debug)]
#[non_exhaustive]
pub struct BlobLeaderElection;

impl BlobLeaderElection {
    /// A builder with every setting at its default; one way to reach the storage account must
    /// be set before [`build`](BlobLeaderElectionBuilder::build).
    pub fn builder() -> BlobLeaderElectionBuilder {
        BlobLeaderElectionBuilder::default()
    }
}

/// A secret string: `Debug` never shows it.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An election on Azure Blob Storage as configuration, for loading from the application's
/// config files with serde. Set one of `connection_string`, `sas_url` or `endpoint` (the last
/// needs a credential, given to the builder from [`into_builder`](Self::into_builder)). Missing
/// fields take their defaults; unknown fields are errors.
///
/// ```
/// use leader_election_blob::BlobConfig;
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

impl BlobConfig {
    /// The configuration from environment variables: `LEADER_ELECTION_BLOB_CONNECTION_STRING`,
    /// `LEADER_ELECTION_BLOB_SAS_URL`, `LEADER_ELECTION_BLOB_ENDPOINT`,
    /// `LEADER_ELECTION_BLOB_CONTAINER`, `LEADER_ELECTION_BLOB_NAME`,
    /// `LEADER_ELECTION_BLOB_CREATE_CONTAINER` (`true`/`false`), and every election option as
    /// `LEADER_ELECTION_<FIELD>` (see [`LeaderElectionOptions::from_env`]).
    ///
    /// # Errors
    /// A [`ConfigError`](leader_election::ConfigError) naming the variable that does not parse or
    /// names no option, or the first option rule broken.
    pub fn from_env() -> Result<Self, leader_election::ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// [`from_env`](Self::from_env) with the given `(name, value)` pairs instead of the
    /// process environment.
    ///
    /// # Errors
    /// As for [`from_env`](Self::from_env).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, leader_election::ConfigError> {
        let mut config = Self::default();
        let mut rest = Vec::new();
        for (name, value) in vars {
            match name.as_str() {
                "LEADER_ELECTION_BLOB_CONNECTION_STRING" => config.connection_string = Some(value),
                "LEADER_ELECTION_BLOB_SAS_URL" => config.sas_url = Some(value),
                "LEADER_ELECTION_BLOB_ENDPOINT" => config.endpoint = Some(value),
                "LEADER_ELECTION_BLOB_CONTAINER" => config.container_name = value,
                "LEADER_ELECTION_BLOB_NAME" => config.blob_name = value,
                "LEADER_ELECTION_BLOB_CREATE_CONTAINER" => {
                    config.create_container_if_not_exists =
                        match value.trim().to_ascii_lowercase().as_str() {
                            "true" | "1" | "yes" | "on" => true,
                            "false" | "0" | "no" | "off" => false,
                            _ => {
                                return Err(leader_election::ConfigError::new(
                                    "create_container_if_not_exists",
                                    format!("`{value}` is not true or false"),
                                ));
                            }
                        };
                }
                _ => rest.push((name, value)),
            }
        }
        config.options = config
            .options
            .with_vars(leader_election::ENV_PREFIX, rest)?;
        Ok(config)
    }

    /// A builder holding this configuration; add a credential for `endpoint`, then
    /// [`build`](BlobLeaderElectionBuilder::build), which checks everything.
    pub fn into_builder(self) -> BlobLeaderElectionBuilder {
        BlobLeaderElectionBuilder {
            connection_string: self.connection_string.map(Secret),
            sas_url: self.sas_url.map(Secret),
            endpoint: self.endpoint,
            container_name: Some(self.container_name),
            blob_name: self.blob_name,
            create_container: self.create_container_if_not_exists,
            options: self.options,
            ..BlobLeaderElectionBuilder::default()
        }
    }
}

/// Configures a [`LeaderElection`] over a [`BlobLeaseStore`]. Setters never fail; `build`
/// checks everything.
///
/// Of the election options, three matter in particular here: `lease_duration` must be 15–60 s
/// (Azure's rule); `retry_interval` is also how often followers poll the blob, since Azure tells
/// neither when a lease expires nor when it is released; and `operation_timeout` is the
/// client-side budget of each operation, shared by all its Azure requests (an acquisition makes
/// several).
#[must_use]
pub struct BlobLeaderElectionBuilder {
    connection_string: Option<Secret>,
    sas_url: Option<Secret>,
    endpoint: Option<String>,
    credential: Option<Arc<dyn TokenCredential>>,
    container_client: Option<BlobContainerClient>,
    container_name: Option<String>,
    blob_name: String,
    create_container: bool,
    api_version: String,
    options: LeaderElectionOptions,
}

impl Default for BlobLeaderElectionBuilder {
    fn default() -> Self {
        Self {
            connection_string: None,
            sas_url: None,
            endpoint: None,
            credential: None,
            container_client: None,
            container_name: None,
            blob_name: DEFAULT_BLOB_NAME.to_owned(),
            create_container: true,
            api_version: DEFAULT_API_VERSION.to_owned(),
            options: LeaderElectionOptions::default(),
        }
    }
}

impl fmt::Debug for BlobLeaderElectionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |is_set: bool| if is_set { "<set>" } else { "<unset>" };
        f.debug_struct("BlobLeaderElectionBuilder")
            .field("connection_string", &set(self.connection_string.is_some()))
            .field("sas_url", &set(self.sas_url.is_some()))
            .field("endpoint", &self.endpoint)
            .field("credential", &set(self.credential.is_some()))
            .field("container_client", &set(self.container_client.is_some()))
            .field("container_name", &self.container_name)
            .field("blob_name", &self.blob_name)
            .field("create_container_if_not_exists", &self.create_container)
            .field("api_version", &self.api_version)
            .field("options", &self.options)
            .finish()
    }
}

impl BlobLeaderElectionBuilder {
    /// Reach the account through an Azure Storage connection string: with `AccountName` and
    /// `AccountKey` (requests are signed with SharedKey), with `SharedAccessSignature`, or
    /// `UseDevelopmentStorage=true` for a local Azurite. `BlobEndpoint` overrides the endpoint
    /// built from `AccountName`, `DefaultEndpointsProtocol` and `EndpointSuffix`.
    pub fn connection_string(mut self, connection_string: impl Into<String>) -> Self {
        self.connection_string = Some(Secret(connection_string.into()));
        self
    }

    /// Reach the account through a blob service URL carrying a SAS token, such as
    /// `https://account.blob.core.windows.net/?sv=...&sig=...`. The token needs read, write
    /// and create permissions on the container (and on the service if the container is to be
    /// created).
    pub fn sas_url(mut self, sas_url: impl Into<String>) -> Self {
        self.sas_url = Some(Secret(sas_url.into()));
        self
    }

    /// Reach the account at this blob service URL (`https://account.blob.core.windows.net`),
    /// authorized by the [`credential`](Self::credential) (Entra ID).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

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

    /// The container holding the lease blob.
    ///
    /// Default: `leader-election`.
    pub fn container_name(mut self, name: impl Into<String>) -> Self {
        self.container_name = Some(name.into());
        self
    }

    /// The blob whose lease is the leadership. Every contender of one election uses the same
    /// container and blob.
    ///
    /// Default: `leader-election-lock`.
    pub fn blob_name(mut self, name: impl Into<String>) -> Self {
        self.blob_name = name.into();
        self
    }

    /// Whether a missing container is created on the first acquisition attempt. The blob is
    /// always created when missing.
    ///
    /// Default: true.
    pub fn create_container_if_not_exists(mut self, create: bool) -> Self {
        self.create_container = create;
        self
    }

    /// The Azure Storage service version sent with each request (not used with
    /// [`container_client`](Self::container_client), which has its own).
    ///
    /// Default: [`DEFAULT_API_VERSION`].
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = version.into();
        self
    }

    leader_election::option_setters!();

    /// Checks the configuration and builds the election (not started).
    ///
    /// # Errors
    /// A [`BuildError`] when:
    /// - no way to reach the account is set ([`BuildError::MissingAccount`]), or more than one
    ///   ([`BuildError::ConflictingAccount`]; `credential` goes with `endpoint` only, and
    ///   `container_name` not with `container_client`);
    /// - the connection string is malformed, lacks `AccountKey` or `SharedAccessSignature`, or
    ///   its key is not base64 ([`BuildError::ConnectionString`]);
    /// - a URL is not http(s), has a query where none belongs, or a SAS URL has no signature
    ///   ([`BuildError::Url`]); the SDK requires https with a credential ([`BuildError::Client`]);
    /// - the container name is not 3–63 lower-case letters, digits and single hyphens, starting
    ///   and ending with a letter or digit ([`BuildError::ContainerName`]);
    /// - the blob name is empty, longer than 1024 characters, has control characters or a
    ///   backslash, or ends with `.` or `/` ([`BuildError::BlobName`]);
    /// - `lease_duration` is outside 15–60 s ([`BuildError::LeaseDuration`]);
    /// - the options fail [`LeaderElectionOptions::validate`] ([`BuildError::Options`]).
    pub fn build(self) -> Result<LeaderElection<BlobLeaseStore>, BuildError> {
        let options = self.options.clone();
        let store = self.build_store()?;
        Ok(LeaderElection::new(store, options)?)
    }

    /// Checks the configuration like [`build`](Self::build) and returns only the store, for
    /// use with [`LeaderElection::new`] or directly.
    ///
    /// # Errors
    /// As for [`build`](Self::build).
    pub fn build_store(self) -> Result<BlobLeaseStore, BuildError> {
        let lease = self.options.lease_duration;
        if lease < Duration::from_secs(MIN_LEASE_SECS)
            || lease > Duration::from_secs(MAX_LEASE_SECS)
        {
            return Err(BuildError::LeaseDuration(lease));
        }
        self.options.validate()?;
        check_blob_name(&self.blob_name)?;
        let timeout = self.options.operation_timeout();

        if let Some(client) = self.container_client {
            if self.connection_string.is_some()
                || self.sas_url.is_some()
                || self.endpoint.is_some()
                || self.credential.is_some()
            {
                return Err(BuildError::ConflictingAccount(
                    "container_client cannot be combined with other account settings".into(),
                ));
            }
            if self.container_name.is_some() {
                return Err(BuildError::ConflictingAccount(
                    "container_client names its container; do not set container_name".into(),
                ));
            }
            let name = client
                .url()
                .path_segments()
                .and_then(|mut segments| segments.rfind(|s| !s.is_empty()))
                .unwrap_or_default()
                .to_owned();
            check_container_name(&name)?;
            let host = host_of(client.url());
            return Ok(BlobLeaseStore::new(
                client,
                name,
                self.blob_name,
                host,
                self.create_container,
                timeout,
            ));
        }

        let container_name = self
            .container_name
            .unwrap_or_else(|| DEFAULT_CONTAINER_NAME.to_owned());
        check_container_name(&container_name)?;
        let sources = [
            self.connection_string.is_some(),
            self.sas_url.is_some(),
            self.endpoint.is_some(),
        ];
        match sources.iter().filter(|set| **set).count() {
            0 if self.credential.is_some() => {
                return Err(BuildError::ConflictingAccount(
                    "credential needs endpoint".into(),
                ));
            }
            0 => return Err(BuildError::MissingAccount),
            1 => {}
            _ => {
                return Err(BuildError::ConflictingAccount(
                    "set only one of connection_string, sas_url and endpoint".into(),
                ));
            }
        }
        if self.credential.is_some() != self.endpoint.is_some() {
            return Err(BuildError::ConflictingAccount(
                "endpoint and credential go together".into(),
            ));
        }

        let (target, credential) = if let Some(text) = &self.connection_string {
            (parse_connection_string(&text.0)?, None)
        } else if let Some(text) = &self.sas_url {
            (parse_sas_url(&text.0)?, None)
        } else {
            let endpoint = self.endpoint.as_deref().unwrap_or_default();
            let service = service_url(endpoint, "endpoint")?;
            (
                Target {
                    service,
                    auth: Auth::Sas,
                },
                self.credential,
            )
        };

        let mut per_try: Vec<Arc<dyn Policy>> = Vec::new();
        if let Auth::SharedKey(key) = target.auth {
            per_try.push(Arc::new(SharedKeyPolicy::new(key)));
        }
        let client_options = BlobContainerClientOptions {
            client_options: ClientOptions {
                // The core retries, within the lease; the SDK's default retries take over a
                // minute when the service is down.
                retry: RetryOptions::none(),
                per_try_policies: per_try,
                ..ClientOptions::default()
            },
            version: self.api_version,
        };
        let url = container_url(&target.service, &container_name);
        let host = host_of(&url);
        let client = BlobContainerClient::new(url, credential, Some(client_options))
            .map_err(|e| BuildError::Client(crate::error::redact(&e.to_string())))?;
        Ok(BlobLeaseStore::new(
            client,
            container_name,
            self.blob_name,
            host,
            self.create_container,
            timeout,
        ))
    }
}

impl BlobLeaderElectionBuilder {
    /// Checks the configuration like [`build`](Self::build) and returns a client of the official
    /// SDK (`azure_storage_blob`, re-exported as [`crate::azure`]) for the election's blob,
    /// authorized exactly as the store's own requests are (SharedKey, SAS or Entra ID), with the
    /// same service version and no SDK retries. It is a connection of its own, apart from any
    /// election built from the same settings: for the caller's own operations on the blob, such
    /// as reading its properties, or an operator's Break Lease (see the crate README, "What an
    /// operator may do").
    ///
    /// # Errors
    /// As for [`build`](Self::build).
    pub fn build_blob_client(self) -> Result<azure_storage_blob::BlobClient, BuildError> {
        let store = self.build_store()?;
        Ok(store.container_client().blob_client(store.blob_name()))
    }
}

/// Azure's container naming rules.
fn check_container_name(name: &str) -> Result<(), BuildError> {
    let fail = |rule| {
        Err(BuildError::ContainerName {
            name: name.to_owned(),
            rule,
        })
    };
    if !(3..=63).contains(&name.len()) {
        return fail("must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return fail("may contain only lower-case letters, digits and hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return fail("must start and end with a letter or a digit");
    }
    if name.contains("--") {
        return fail("must not contain consecutive hyphens");
    }
    Ok(())
}

/// Azure's blob naming rules, plus what would not survive a URL path cleanly.
fn check_blob_name(name: &str) -> Result<(), BuildError> {
    let fail = |rule| Err(BuildError::BlobName(rule));
    if name.is_empty() {
        return fail("must not be empty");
    }
    if name.chars().count() > 1024 {
        return fail("must be at most 1024 characters long");
    }
    if name.chars().any(char::is_control) || name.contains('\\') {
        return fail("must not contain control characters or backslashes");
    }
    if name.ends_with('.') || name.ends_with('/') {
        return fail("must not end with a dot or a slash");
    }
    if name.split('/').count() > 254 {
        return fail("must have at most 254 path segments");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
            assert!(matches!(err, BuildError::LeaseDuration(_)), "{secs}: {err}");
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
    fn options_are_validated() {
        let err = dev()
            .renew_interval(Duration::from_secs(40))
            .build()
            .unwrap_err();
        assert!(
            matches!(err, BuildError::Options(ref e) if e.field == "renew_interval"),
            "{err}"
        );
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
                matches!(err, BuildError::ContainerName { .. }),
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
            assert!(matches!(err, BuildError::BlobName(_)), "{bad:?}: {err}");
        }
        dev()
            .blob_name("elections/orders lock")
            .build_store()
            .unwrap();
    }

    #[test]
    fn account_sources_must_be_exactly_one() {
        let err = BlobLeaderElection::builder().build().unwrap_err();
        assert_eq!(err, BuildError::MissingAccount);
        let err = dev()
            .sas_url("https://a.blob.core.windows.net/?sig=x")
            .build()
            .unwrap_err();
        assert!(matches!(err, BuildError::ConflictingAccount(_)), "{err}");
        let err = BlobLeaderElection::builder()
            .endpoint("https://a.blob.core.windows.net")
            .build()
            .unwrap_err();
        assert!(matches!(err, BuildError::ConflictingAccount(_)), "{err}");
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let connection = format!("AccountName=acct;AccountKey={KEY}");
        let builder = BlobLeaderElection::builder().connection_string(&connection);
        assert!(!format!("{builder:?}").contains(KEY));
        let store = builder.build_store().unwrap();
        assert!(!format!("{store:?}").contains(KEY));

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
    }
}
