//! [`EtcdLeaderElection::builder`]: an election on etcd in a few lines.

use std::fmt;
#[cfg(feature = "tls")]
use std::path::PathBuf;
use std::time::Duration;

use etcd_client::Client;
#[cfg(feature = "tls")]
use leader_election::pem::Pem;
use leader_election::{ConfigError, LeaderElection, LeaderElectionOptions, quoted};

use crate::connection::Connector;
use crate::error::BuildError;
use crate::store::{
    BASE_SUFFIX, CANDIDATE_SUFFIX, DEFAULT_KEY, EtcdLeaseStore, HOLDER_SUFFIX, MAX_KEY_LEN,
};

/// The shortest lease accepted: etcd counts leases in whole seconds.
pub const MIN_LEASE_DURATION: Duration = Duration::from_secs(1);

/// The entry point for an election on etcd: [`EtcdLeaderElection::builder`].
///
/// It has no values; the builder makes a [`LeaderElection<EtcdLeaseStore>`](LeaderElection)
/// ([`build`](EtcdLeaderElectionBuilder::build)) or the store alone
/// ([`build_store`](EtcdLeaderElectionBuilder::build_store)). From configuration files or the
/// environment, start from an [`EtcdConfig`](crate::EtcdConfig).
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

/// The PEM text of a TLS `setting`, or the error naming it.
#[cfg(feature = "tls")]
fn read_pem(pem: &Pem, setting: &'static str) -> Result<Vec<u8>, BuildError> {
    pem.read()
        .map_err(|reason| BuildError::Tls { setting, reason })
}

#[derive(Clone, Debug, Default)]
struct TlsSettings {
    #[cfg(feature = "tls")]
    ca: Vec<Pem>,
    #[cfg(feature = "tls")]
    client_cert: Option<Pem>,
    #[cfg(feature = "tls")]
    client_key: Option<Pem>,
}

impl TlsSettings {
    fn is_empty(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.ca.is_empty() && self.client_cert.is_none() && self.client_key.is_none();
        #[cfg(not(feature = "tls"))]
        true
    }
}

/// Configures an election on etcd; made by [`EtcdLeaderElection::builder`].
///
/// Setters never fail; [`build`](Self::build) and [`build_store`](Self::build_store) check
/// everything.
#[must_use]
pub struct EtcdLeaderElectionBuilder {
    endpoints: Vec<String>,
    client: Option<Client>,
    key: String,
    user: Option<(String, String)>,
    tls: TlsSettings,
    options: LeaderElectionOptions,
}

impl Default for EtcdLeaderElectionBuilder {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            client: None,
            key: DEFAULT_KEY.to_owned(),
            user: None,
            tls: TlsSettings::default(),
            options: LeaderElectionOptions::default(),
        }
    }
}

impl fmt::Debug for EtcdLeaderElectionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdLeaderElectionBuilder")
            .field("endpoints", &self.endpoints)
            .field("client", &self.client.as_ref().map(|_| "Client(..)"))
            .field("key", &self.key)
            .field("user", &self.user.as_ref().map(|(name, _)| name))
            .field("tls", &self.tls)
            .field("options", &self.options)
            .finish()
    }
}

impl EtcdLeaderElectionBuilder {
    /// The etcd members to talk to, as `http://host:port` (or `https://` for TLS, feature
    /// `tls`): give every member of the cluster, so that the client moves to another when the
    /// one it uses fails. Replaces endpoints and a client set before.
    pub fn endpoints<E: Into<String>>(mut self, endpoints: impl IntoIterator<Item = E>) -> Self {
        self.endpoints = endpoints.into_iter().map(Into::into).collect();
        self.client = None;
        self
    }

    /// Uses an etcd-client [`Client`] configured by the caller (its own balancing, TLS,
    /// authentication and timeouts). Replaces endpoints set before. Give it `require_leader`
    /// and a request timeout: see [`build_store`](Self::build_store) for what a client made
    /// from endpoints gets.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self.endpoints.clear();
        self
    }

    /// The election's name: contenders with the same key on the same etcd cluster compete for
    /// one lease. The store also writes `<key>/holder`, for preferred leaders
    /// `<key>/candidate`, and after the cluster lost its data `<key>/token-base`. Default:
    /// `leader-election-lock`.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// Authenticates as this etcd user (etcd's `--auth`); the password never appears in
    /// `Debug` output, errors or logs. The user needs read and write permission on the
    /// election key and the keys beside it (`<key>/holder`, `<key>/candidate`,
    /// `<key>/token-base`).
    pub fn user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((name.into(), password.into()));
        self
    }

    /// Trusts the CA certificate(s) in this PEM text for `https://` endpoints, instead of the
    /// system's root certificates (feature `tls`). May be called again, and with
    /// [`tls_ca_file`](Self::tls_ca_file), to trust several.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.ca.push(Pem::Bytes(pem.into()));
        self
    }

    /// [`tls_ca_pem`](Self::tls_ca_pem) with the PEM read from a file by
    /// [`build_store`](Self::build_store) (feature `tls`).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca.push(Pem::File(path.into()));
        self
    }

    /// For mutual TLS (etcd's `--client-cert-auth`): presents this client certificate (PEM)
    /// with its private key (PEM) (feature `tls`). The key never appears in `Debug` output or
    /// errors.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_client_cert_pem(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls.client_cert = Some(Pem::Bytes(cert_pem.into()));
        self.tls.client_key = Some(Pem::Bytes(key_pem.into()));
        self
    }

    /// The client certificate of [`tls_client_cert_pem`](Self::tls_client_cert_pem), read from
    /// a PEM file by [`build_store`](Self::build_store) (feature `tls`).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_client_cert_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.client_cert = Some(Pem::File(path.into()));
        self
    }

    /// The private key of [`tls_client_cert_pem`](Self::tls_client_cert_pem), read from a PEM
    /// file by [`build_store`](Self::build_store) (feature `tls`).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_client_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.client_key = Some(Pem::File(path.into()));
        self
    }

    leader_election::option_setters!();

    /// Builds the election: [`build_store`](Self::build_store), then [`LeaderElection::new`]
    /// with the options. Needs no etcd: the connection is made by [`LeaderElection::start`]
    /// and retried (with error events) while etcd is down.
    ///
    /// # Errors
    /// As for [`build_store`](Self::build_store).
    pub fn build(self) -> Result<LeaderElection<EtcdLeaseStore>, BuildError> {
        let options = self.options.clone();
        let store = self.build_store()?;
        Ok(LeaderElection::new(store, options)?)
    }

    /// Checks everything like [`build`](Self::build) and returns only the store. Needs no
    /// etcd.
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
    ///   bytes, control characters, or ending with `/holder`, `/candidate` or `/token-base`;
    /// - [`BuildError::Options`]: the options fail [`LeaderElectionOptions::validate`], the
    ///   lease is shorter than [`MIN_LEASE_DURATION`] (etcd counts leases in whole seconds),
    ///   or a user with an empty name.
    pub fn build_store(self) -> Result<EtcdLeaseStore, BuildError> {
        self.options.validate()?;
        if self.options.lease_duration < MIN_LEASE_DURATION {
            return Err(ConfigError::new(
                "lease_duration",
                format!(
                    "must be at least {MIN_LEASE_DURATION:?} on etcd, whose leases are whole \
                     seconds, got {:?}",
                    self.options.lease_duration
                ),
            )
            .into());
        }
        validate_key(&self.key)?;
        if self.user.as_ref().is_some_and(|(name, _)| name.is_empty()) {
            return Err(ConfigError::new("user", "the etcd user name must not be empty").into());
        }
        let timeout = self.options.operation_timeout();
        let connector = match self.client {
            Some(_) if !self.tls.is_empty() || self.user.is_some() => {
                return Err(BuildError::Tls {
                    setting: "client",
                    reason: "TLS settings and a user apply to endpoints; a client configured by \
                             the caller brings its own"
                        .to_owned(),
                });
            }
            Some(client) => Connector::Client(Box::new(client)),
            None if self.endpoints.is_empty() => return Err(BuildError::MissingConnection),
            None => self.endpoint_connector(timeout)?,
        };
        Ok(EtcdLeaseStore::new(&self.key, connector))
    }

    fn endpoint_connector(&self, timeout: Duration) -> Result<Connector, BuildError> {
        let mut tls = None;
        for endpoint in &self.endpoints {
            let secure = check_endpoint(endpoint)?;
            if tls.is_some_and(|t| t != secure) {
                return Err(BuildError::Tls {
                    setting: "endpoints",
                    reason: "endpoints mix http:// and https://".to_owned(),
                });
            }
            tls = Some(secure);
        }
        let tls = tls.unwrap_or(false);
        #[cfg(not(feature = "tls"))]
        if tls {
            return Err(BuildError::TlsNotEnabled {
                setting: quoted(&self.endpoints[0]),
            });
        }
        if !tls && !self.tls.is_empty() {
            return Err(BuildError::Tls {
                setting: "endpoints",
                reason: "TLS settings need https:// endpoints".to_owned(),
            });
        }
        let mut options = Connector::options(timeout);
        if let Some((name, password)) = &self.user {
            options = options.with_user(name.clone(), password.clone());
        }
        #[cfg(feature = "tls")]
        if tls {
            options = options.with_tls(self.tls_options()?);
        }
        Ok(Connector::Endpoints {
            endpoints: self.endpoints.clone(),
            options: Box::new(options),
            user: self.user.as_ref().map(|(name, _)| name.clone()),
            tls,
        })
    }

    #[cfg(feature = "tls")]
    fn tls_options(&self) -> Result<etcd_client::TlsOptions, BuildError> {
        use etcd_client::{Certificate, Identity, TlsOptions};
        let mut options = TlsOptions::new();
        if self.tls.ca.is_empty() {
            options = options.with_native_roots();
        }
        for pem in &self.tls.ca {
            let pem = read_pem(pem, "tls_ca")?;
            if !contains(&pem, b"-----BEGIN CERTIFICATE-----") {
                return Err(BuildError::Tls {
                    setting: "tls_ca",
                    reason: "the PEM holds no certificate".to_owned(),
                });
            }
            options = options.ca_certificate(Certificate::from_pem(pem));
        }
        match (&self.tls.client_cert, &self.tls.client_key) {
            (None, None) => {}
            (Some(_), None) => {
                return Err(BuildError::Tls {
                    setting: "tls_client_cert",
                    reason: "a client certificate without its private key".to_owned(),
                });
            }
            (None, Some(_)) => {
                return Err(BuildError::Tls {
                    setting: "tls_client_key",
                    reason: "a private key without a client certificate".to_owned(),
                });
            }
            (Some(cert), Some(key)) => {
                let cert = read_pem(cert, "tls_client_cert")?;
                let key = read_pem(key, "tls_client_key")?;
                if !contains(&cert, b"-----BEGIN CERTIFICATE-----") {
                    return Err(BuildError::Tls {
                        setting: "tls_client_cert",
                        reason: "the PEM holds no certificate".to_owned(),
                    });
                }
                if !contains(&key, b"PRIVATE KEY-----") {
                    return Err(BuildError::Tls {
                        setting: "tls_client_key",
                        reason: "the PEM holds no private key".to_owned(),
                    });
                }
                options = options.identity(Identity::from_pem(cert, key));
            }
        }
        Ok(options)
    }
}

#[cfg(feature = "tls")]
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Checks an endpoint URL; answers whether it uses TLS.
fn check_endpoint(endpoint: &str) -> Result<bool, BuildError> {
    let invalid = |reason: &str| BuildError::InvalidUrl {
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

/// Checks an election key: not empty or blank, at most [`MAX_KEY_LEN`] bytes, no control
/// characters, and not ending like the keys kept beside an election key.
fn validate_key(key: &str) -> Result<(), BuildError> {
    let rule = if key.trim().is_empty() {
        Some("must not be empty or blank".to_owned())
    } else if key.len() > MAX_KEY_LEN {
        Some(format!(
            "must be at most {MAX_KEY_LEN} bytes, got {} bytes",
            key.len()
        ))
    } else if key.chars().any(char::is_control) {
        Some("must not contain control characters".to_owned())
    } else if [HOLDER_SUFFIX, CANDIDATE_SUFFIX, BASE_SUFFIX]
        .iter()
        .any(|suffix| key.ends_with(suffix))
    {
        Some(format!(
            "must not end with {HOLDER_SUFFIX:?}, {CANDIDATE_SUFFIX:?} or {BASE_SUFFIX:?}: \
             those keys sit beside another election's key"
        ))
    } else {
        None
    };
    match rule {
        None => Ok(()),
        Some(rule) => Err(BuildError::InvalidName {
            field: "key",
            name: leader_election::quoted(key),
            rule,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        for key in [
            "",
            " ",
            "a\nb",
            "jobs/holder",
            "jobs/candidate",
            "jobs/token-base",
        ] {
            assert!(validate_key(key).is_err(), "{key:?}");
        }
        assert!(validate_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
        for key in ["jobs", "/services/billing/leader", "ünï"] {
            assert!(validate_key(key).is_ok(), "{key:?}");
        }
    }

    fn build_error(builder: EtcdLeaderElectionBuilder) -> BuildError {
        builder.build_store().unwrap_err()
    }

    #[test]
    fn build_checks_connection_endpoints_key_and_options() {
        assert_eq!(
            build_error(EtcdLeaderElection::builder()),
            BuildError::MissingConnection
        );
        for endpoint in [
            "127.0.0.1:2379",
            "tcp://x:1",
            "http://",
            "http://:2379",
            "http://h:port",
            "http://u:p@h:1",
        ] {
            let err = build_error(EtcdLeaderElection::builder().endpoints([endpoint]));
            assert!(
                matches!(err, BuildError::InvalidUrl { .. }),
                "{endpoint}: {err}"
            );
        }
        let err = build_error(
            EtcdLeaderElection::builder()
                .endpoints(["http://h:1"])
                .key("jobs/holder"),
        );
        assert!(
            matches!(err, BuildError::InvalidName { field: "key", .. }),
            "{err}"
        );
        let err = build_error(
            EtcdLeaderElection::builder()
                .endpoints(["http://h:1"])
                .lease_duration(Duration::from_millis(900))
                .renew_interval(Duration::from_millis(300)),
        );
        assert!(
            matches!(&err, BuildError::Options(e) if e.field == "lease_duration"),
            "{err}"
        );
        let store = EtcdLeaderElection::builder()
            .endpoints([
                "http://127.0.0.1:2379",
                "http://[::1]:2379",
                "http://etcd-2",
            ])
            .key("jobs")
            .lease_duration(Duration::from_secs(2))
            .renew_interval(Duration::from_millis(600))
            .build_store()
            .unwrap();
        assert_eq!(store.key(), "jobs");
        assert_eq!(store.holder_key(), "jobs/holder");
        assert_eq!(store.candidate_key(), "jobs/candidate");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let builder = EtcdLeaderElection::builder()
            .endpoints(["http://127.0.0.1:2379"])
            .user("root", "hunter2");
        let debug = format!("{builder:?}");
        assert!(
            !debug.contains("hunter2") && debug.contains("root"),
            "{debug}"
        );
        let election = builder.build().unwrap();
        let debug = format!("{:?}", election.store());
        assert!(
            !debug.contains("hunter2") && debug.contains("root"),
            "{debug}"
        );
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_settings_are_checked_when_built() {
        let https = || EtcdLeaderElection::builder().endpoints(["https://127.0.0.1:2379"]);
        https()
            .build_store()
            .expect("https with the system's roots");
        let err = build_error(https().tls_ca_file("/nonexistent/ca.pem"));
        assert!(
            matches!(
                err,
                BuildError::Tls {
                    setting: "tls_ca",
                    ..
                }
            ),
            "{err}"
        );
        let err = build_error(https().tls_ca_pem("just text"));
        assert!(
            matches!(
                err,
                BuildError::Tls {
                    setting: "tls_ca",
                    ..
                }
            ),
            "{err}"
        );
        let err = build_error(https().tls_client_key_file("/k.pem"));
        assert!(
            matches!(
                err,
                BuildError::Tls {
                    setting: "tls_client_key",
                    ..
                }
            ),
            "{err}"
        );
        let err = build_error(
            https().tls_client_cert_pem("-----BEGIN CERTIFICATE-----", "secret-key-bytes"),
        );
        assert!(
            matches!(
                err,
                BuildError::Tls {
                    setting: "tls_client_key",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("secret-key-bytes"));
        let err = build_error(
            EtcdLeaderElection::builder()
                .endpoints(["http://127.0.0.1:2379"])
                .tls_ca_pem("-----BEGIN CERTIFICATE-----"),
        );
        assert!(
            matches!(
                err,
                BuildError::Tls {
                    setting: "endpoints",
                    ..
                }
            ),
            "{err}"
        );
        let err =
            build_error(EtcdLeaderElection::builder().endpoints(["http://a:1", "https://b:1"]));
        assert!(
            matches!(
                err,
                BuildError::Tls {
                    setting: "endpoints",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn https_needs_the_feature() {
        let err = build_error(EtcdLeaderElection::builder().endpoints(["https://127.0.0.1:2379"]));
        assert!(matches!(err, BuildError::TlsNotEnabled { .. }), "{err}");
    }
}
