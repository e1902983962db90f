//! [`EtcdLeaderElection::builder`]: an election on etcd in a few lines.

use std::fmt;
use std::time::Duration;

use etcd_client::Client;
#[cfg(feature = "tls")]
use leader_election::TlsBuilder;
use leader_election::backend::tls::TlsSettings;
use leader_election::backend::{Secret, quoted};
use leader_election::{BuildError, ConfigError};

use crate::EtcdConfig;
use crate::connection::Connector;
use crate::store::{
    BASE_SUFFIX, CANDIDATE_SUFFIX, DEFAULT_KEY, EtcdLeaseStore, HOLDER_SUFFIX, MAX_KEY_LEN,
    NEXT_SUFFIX, RECORD_SUFFIX, RELEASED_SUFFIX,
};

/// The shortest lease accepted: etcd counts leases in whole seconds.
pub const MIN_LEASE_DURATION: Duration = Duration::from_secs(1);

/// The entry point for an election on etcd: [`EtcdLeaderElection::builder`].
///
/// It has no values; the builder makes a
/// [`LeaderElection<EtcdLeaseStore>`](leader_election::LeaderElection)
/// ([`build`](leader_election::ElectionBuilder::build)) or the store alone
/// ([`build_store`](leader_election::ElectionBuilder::build_store)). From configuration files or
/// the environment, start from an [`EtcdConfig`](crate::EtcdConfig).
#[derive(Debug)]
pub enum EtcdLeaderElection {}

impl EtcdLeaderElection {
    /// A builder with the default key (`leader-election-lock`) and default options, and no
    /// connection yet: set [`endpoints`](EtcdLeaderElectionBuilder::endpoints) or
    /// [`client`](EtcdLeaderElectionBuilder::client).
    pub fn builder() -> EtcdLeaderElectionBuilder {
        EtcdLeaderElectionBuilder::default()
    }
}

/// Configures an election on etcd; made by [`EtcdLeaderElection::builder`] or from an
/// [`EtcdConfig`], which it holds.
///
/// Setters never fail; [`build`](leader_election::ElectionBuilder::build) and
/// [`build_store`](leader_election::ElectionBuilder::build_store) check everything.
#[must_use]
#[derive(Default)]
pub struct EtcdLeaderElectionBuilder {
    pub(crate) config: EtcdConfig,
    /// A client configured by the caller, in place of the configuration's endpoints.
    pub(crate) client: Option<Client>,
    /// The TLS settings: the configuration's files, and what the TLS setters add.
    pub(crate) tls: TlsSettings,
}

/// The configuration (whose `Debug` never shows the password) and the TLS settings; of a
/// caller's client, which has no `Debug`, only whether there is one.
impl fmt::Debug for EtcdLeaderElectionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdLeaderElectionBuilder")
            .field("config", &self.config)
            .field("client", &self.client.as_ref().map(|_| "Client(..)"))
            .field("tls", &self.tls)
            .finish()
    }
}

leader_election::backend::config_setters! {
    EtcdLeaderElectionBuilder { config }
    /// The election's name: contenders with the same key on the same etcd cluster compete for
    /// one lease. The store also writes `<key>/holder`, `<key>/released`, `<key>/next`, for
    /// preferred leaders
    /// `<key>/candidate`, after the cluster lost its data `<key>/token-base`, and for the
    /// election's record (scheduled jobs) `<key>/record`. Default:
    /// `leader-election-lock`.
    key: impl Into<String>;
}

impl EtcdLeaderElectionBuilder {
    /// The etcd members to talk to, as `http://host:port` (or `https://` for TLS, feature
    /// `tls`): give every member of the cluster, so that the client moves to another when the
    /// one it uses fails. Replaces endpoints and a client set before.
    pub fn endpoints<E: Into<String>>(mut self, endpoints: impl IntoIterator<Item = E>) -> Self {
        self.config.endpoints = endpoints.into_iter().map(Into::into).collect();
        self.client = None;
        self
    }

    /// Uses an etcd-client [`Client`] configured by the caller (its own balancing, TLS,
    /// authentication and timeouts). Replaces endpoints set before. Give it `require_leader` and a
    /// request timeout: see [`build_store`](leader_election::ElectionBuilder::build_store) for what
    /// a client made from endpoints gets.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self.config.endpoints.clear();
        self
    }

    /// Authenticates as this etcd user (etcd's `--auth`); the password never appears in
    /// `Debug` output, errors or logs. The user needs read and write permission on the
    /// election key and the keys beside it (`<key>/holder`, `<key>/candidate`,
    /// `<key>/released`, `<key>/next`, `<key>/token-base`, `<key>/record`).
    pub fn user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.config.user = Some(name.into());
        self.config.password = Some(Secret::from(password.into()));
        self
    }

    fn endpoint_connector(&self, timeout: Duration) -> Result<Connector, BuildError> {
        let mut tls = None;
        let endpoints = &self.config.endpoints;
        for endpoint in endpoints {
            let secure = check_endpoint(endpoint)?;
            if tls.is_some_and(|t| t != secure) {
                return Err(BuildError::tls(
                    "endpoints",
                    "endpoints mix http:// and https://",
                ));
            }
            tls = Some(secure);
        }
        let tls = tls.unwrap_or(false);
        #[cfg(not(feature = "tls"))]
        if tls {
            return Err(BuildError::TlsNotEnabled {
                krate: "leader-election-etcd",
                setting: quoted(&endpoints[0]),
            });
        }
        if !tls && !self.tls.is_empty() {
            return Err(BuildError::tls(
                "endpoints",
                "TLS settings need https:// endpoints",
            ));
        }
        let mut options = Connector::options(timeout);
        let user = user_and_password(&self.config);
        if let Some((name, password)) = user {
            options = options.with_user(name, password);
        }
        #[cfg(feature = "tls")]
        if tls {
            options = options.with_tls(self.tls_options()?);
        }
        Ok(Connector::Endpoints {
            endpoints: endpoints.clone(),
            options: Box::new(options),
            user: user.map(|(name, _)| name.to_owned()),
            tls,
        })
    }

    /// etcd-client's TLS options from the core's [`TlsSettings`]: the CAs given (else the
    /// system's roots) and the client certificate, each checked to hold what it should.
    #[cfg(feature = "tls")]
    fn tls_options(&self) -> Result<etcd_client::TlsOptions, BuildError> {
        use etcd_client::{Certificate, Identity, TlsOptions};
        const CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";
        let mut options = TlsOptions::new();
        if self.tls.trusts_system_roots() {
            options = options.with_native_roots();
        }
        for pem in self.tls.ca_pems()? {
            if !contains(&pem, CERTIFICATE) {
                return Err(BuildError::tls("tls_ca", "the PEM holds no certificate"));
            }
            options = options.ca_certificate(Certificate::from_pem(pem));
        }
        if let Some((cert, key)) = self.tls.identity_pems()? {
            if !contains(&cert, CERTIFICATE) {
                return Err(BuildError::tls(
                    "tls_client_cert",
                    "the PEM holds no certificate",
                ));
            }
            if !contains(&key, b"PRIVATE KEY-----") {
                return Err(BuildError::tls(
                    "tls_client_key",
                    "the PEM holds no private key",
                ));
            }
            options = options.identity(Identity::from_pem(cert, key));
        }
        Ok(options)
    }
}

#[cfg(feature = "tls")]
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The user to authenticate as and the password: none without a user name, and an empty
/// password for a user without one.
fn user_and_password(config: &EtcdConfig) -> Option<(&str, &str)> {
    let password = config.password.as_ref().map_or("", Secret::expose);
    config.user.as_deref().map(|name| (name, password))
}

/// Checks an endpoint URL; answers whether it uses TLS.
fn check_endpoint(endpoint: &str) -> Result<bool, BuildError> {
    let invalid = |reason: &str| BuildError::InvalidUrl {
        field: "endpoints",
        url: quoted(endpoint),
        reason: reason.to_owned(),
    };
    let (secure, rest) = if let Some(rest) = endpoint.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = endpoint.strip_prefix("https://") {
        (true, rest)
    } else {
        return Err(invalid("must start with http:// or https://"));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.starts_with(':') {
        return Err(invalid("has no host"));
    }
    if authority.contains('@') {
        return Err(invalid(
            "must not hold credentials: set them with `user(name, password)`",
        ));
    }
    let port = match authority.strip_prefix('[') {
        // An IPv6 address: `[::1]:2379`.
        Some(v6) => v6
            .split_once(']')
            .and_then(|(_, rest)| rest.strip_prefix(':')),
        None => authority.rsplit_once(':').map(|(_, port)| port),
    };
    if port.is_some_and(|port| port.parse::<u16>().is_err()) {
        return Err(invalid("has an invalid port"));
    }
    Ok(secure)
}

/// Checks an election key: the rules every backend's names share
/// ([`check_name`](leader_election::backend::check_name): not empty or blank, at most
/// [`MAX_KEY_LEN`] bytes, no control characters), and not ending like the keys kept beside an
/// election key.
fn validate_key(key: &str) -> Result<(), BuildError> {
    leader_election::backend::check_name("key", key, MAX_KEY_LEN)?;
    if [
        HOLDER_SUFFIX,
        CANDIDATE_SUFFIX,
        BASE_SUFFIX,
        RELEASED_SUFFIX,
        NEXT_SUFFIX,
        RECORD_SUFFIX,
    ]
    .iter()
    .any(|suffix| key.ends_with(suffix))
    {
        return Err(BuildError::invalid_name(
            "key",
            key,
            format!(
                "must not end with {HOLDER_SUFFIX:?}, {CANDIDATE_SUFFIX:?}, {RELEASED_SUFFIX:?}, \
                 {NEXT_SUFFIX:?}, {BASE_SUFFIX:?} or {RECORD_SUFFIX:?}: \
                 those keys sit beside another election's key"
            ),
        ));
    }
    Ok(())
}

/// The error of a builder given neither endpoints nor a client.
fn missing_connection() -> BuildError {
    BuildError::MissingConnection {
        backend: "etcd",
        hint: "set `endpoints(..)` or `client(..)`",
    }
}

/// The TLS settings of `https://` endpoints (feature `tls`): the CAs to trust instead of the
/// system's root certificates, and a client certificate for mutual TLS (etcd's
/// `--client-cert-auth`); checked by
/// [`build_store`](leader_election::ElectionBuilder::build_store), which refuses them with
/// `http://` endpoints or with a [`client`](EtcdLeaderElectionBuilder::client). Bring the setters
/// into scope with `use leader_election::TlsBuilder;`.
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
impl TlsBuilder for EtcdLeaderElectionBuilder {
    fn tls_settings(&mut self) -> &mut TlsSettings {
        &mut self.tls
    }
}

leader_election::backend::election_builder! {
    /// Checks everything like [`build`](leader_election::ElectionBuilder::build) and returns only
    /// the store. Needs no etcd.
    ///
    /// A client made from endpoints bounds every request and connection attempt by the
    /// election's `operation_timeout`, pings idle connections (HTTP/2 keep-alive) to find dead
    /// members, and sets `require_leader`, so that a member cut off from its cluster's Raft
    /// leader refuses requests (and ends its watches) at once instead of holding them.
    ///
    /// # Errors
    /// - [`BuildError::MissingConnection`]: neither endpoints nor a client;
    /// - [`BuildError::InvalidUrl`]: an endpoint is not `http://host[:port]` or
    ///   `https://host[:port]`;
    /// - [`BuildError::TlsNotEnabled`]: an `https://` endpoint without the `tls` feature;
    /// - [`BuildError::Tls`]: a CA or client certificate file cannot be read or holds no PEM,
    ///   a client certificate without its key (or the reverse), TLS settings with `http://`
    ///   endpoints or with a client, or endpoints mixing `http://` and `https://`;
    /// - [`BuildError::InvalidName`]: see [`key`](Self::key): empty or blank, longer than 512
    ///   bytes, control characters, or ending with `/holder`, `/candidate`, `/released`,
    ///   `/next`, `/token-base` or `/record`;
    /// - [`BuildError::Options`]: the options fail
    ///   [`LeaderElectionOptions::validate`](leader_election::LeaderElectionOptions::validate), the
    ///   lease is shorter than [`MIN_LEASE_DURATION`] (etcd counts leases in whole seconds), or a
    ///   user with an empty name.
    EtcdLeaderElectionBuilder => EtcdLeaseStore, store_from
}

/// The store of `builder`, whose options
/// [`election_builder!`](leader_election::backend::election_builder) has checked.
fn store_from(builder: EtcdLeaderElectionBuilder) -> Result<EtcdLeaseStore, BuildError> {
    let options = &builder.config.options;
    if options.lease_duration < MIN_LEASE_DURATION {
        return Err(ConfigError::new(
            "lease_duration",
            format!(
                "must be at least {MIN_LEASE_DURATION:?} on etcd, whose leases are whole \
                 seconds, got {:?}",
                options.lease_duration
            ),
        )
        .into());
    }
    let key = builder.config.key.as_deref().unwrap_or(DEFAULT_KEY);
    validate_key(key)?;
    let user = user_and_password(&builder.config);
    if user.is_some_and(|(name, _)| name.is_empty()) {
        return Err(ConfigError::new("user", "the etcd user name must not be empty").into());
    }
    let timeout = options.operation_timeout();
    let connector = match builder.client {
        Some(_) if !builder.tls.is_empty() || user.is_some() => {
            return Err(BuildError::Tls {
                setting: "client",
                reason: "TLS settings and a user apply to endpoints; a client configured by \
                         the caller brings its own"
                    .to_owned(),
            });
        }
        Some(client) => Connector::Client(Box::new(client)),
        None if builder.config.endpoints.is_empty() => return Err(missing_connection()),
        None => builder.endpoint_connector(timeout)?,
    };
    Ok(EtcdLeaseStore::new(key, connector))
}

#[cfg(test)]
mod tests;
