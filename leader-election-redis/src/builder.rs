//! [`RedisLeaderElection::builder`]: an election on Redis in a few lines.

use std::fmt;
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::prelude::{Config, ConnectionConfig, PerformanceConfig};
use leader_election::{LeaderElection, LeaderElectionOptions};

use crate::error::BuildError;
use crate::store::{DEFAULT_KEY, RedisLeaseStore, default_reconnect_policy, validate_key};

/// The entry point for an election on Redis: [`RedisLeaderElection::builder`].
///
/// It has no values; the election it builds is a
/// [`LeaderElection<RedisLeaseStore>`](LeaderElection).
#[derive(Debug)]
pub enum RedisLeaderElection {}

impl RedisLeaderElection {
    /// A builder with the default key (`leader-election-lock`) and default options, and no
    /// connection yet: set [`url`](RedisLeaderElectionBuilder::url) or
    /// [`client`](RedisLeaderElectionBuilder::client).
    pub fn builder() -> RedisLeaderElectionBuilder {
        RedisLeaderElectionBuilder::default()
    }
}

enum Connection {
    Url(String),
    Client(Client),
}

/// An election on Redis as configuration, for loading from the application's config files with
/// serde. Missing fields take their defaults; unknown fields are errors.
///
/// ```
/// use leader_election_redis::RedisConfig;
///
/// let config: RedisConfig = serde_json::from_str(r#"{
///     "url": "redis://:secret@127.0.0.1:6379",
///     "key": "billing",
///     "options": { "lease_duration": "15s", "renew_interval": "5s" }
/// }"#).unwrap();
/// assert!(!format!("{config:?}").contains("secret"));
/// let election = config.into_builder().build().unwrap();
/// assert_eq!(election.store().key(), "billing");
/// ```
#[derive(Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// See [`RedisLeaderElectionBuilder::url`]. Default: none (required).
    pub url: Option<String>,
    /// See [`RedisLeaderElectionBuilder::key`]. Default: `leader-election-lock`.
    pub key: String,
    /// The election options. Default: [`LeaderElectionOptions::default`].
    pub options: LeaderElectionOptions,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            key: DEFAULT_KEY.to_owned(),
            options: LeaderElectionOptions::default(),
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("key", &self.key)
            .field("options", &self.options)
            .finish()
    }
}

impl RedisConfig {
    /// The configuration from environment variables: `LEADER_ELECTION_REDIS_URL`,
    /// `LEADER_ELECTION_REDIS_KEY`, and every election option as `LEADER_ELECTION_<FIELD>`
    /// (see [`LeaderElectionOptions::from_env`]).
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
                "LEADER_ELECTION_REDIS_URL" => config.url = Some(value),
                "LEADER_ELECTION_REDIS_KEY" => config.key = value,
                _ => rest.push((name, value)),
            }
        }
        config.options = config
            .options
            .with_vars(leader_election::ENV_PREFIX, rest)?;
        Ok(config)
    }

    /// A builder holding this configuration; [`build`](RedisLeaderElectionBuilder::build)
    /// checks it.
    pub fn into_builder(self) -> RedisLeaderElectionBuilder {
        RedisLeaderElectionBuilder {
            connection: self.url.map(Connection::Url),
            key: self.key,
            options: self.options,
            max_lease_duration: None,
        }
    }
}

/// Configures an election on Redis; made by [`RedisLeaderElection::builder`].
///
/// Setters never fail; [`build`](Self::build) checks everything.
#[must_use]
pub struct RedisLeaderElectionBuilder {
    connection: Option<Connection>,
    key: String,
    options: LeaderElectionOptions,
    max_lease_duration: Option<Duration>,
}

impl Default for RedisLeaderElectionBuilder {
    fn default() -> Self {
        Self {
            connection: None,
            key: DEFAULT_KEY.to_owned(),
            options: LeaderElectionOptions::default(),
            max_lease_duration: None,
        }
    }
}

impl fmt::Debug for RedisLeaderElectionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let connection = match &self.connection {
            None => "none".to_owned(),
            Some(Connection::Url(url)) => redact_url(url),
            Some(Connection::Client(client)) => format!("client {}", client.id()),
        };
        f.debug_struct("RedisLeaderElectionBuilder")
            .field("connection", &connection)
            .field("key", &self.key)
            .field("options", &self.options)
            .field("max_lease_duration", &self.max_lease_duration)
            .finish()
    }
}

impl RedisLeaderElectionBuilder {
    /// Connects with a Redis URL: `redis://[[user]:password@]host[:port][/db]`, `rediss://`
    /// for TLS (feature `tls`, on by default), `redis-cluster://host:port?node=host:port` for a
    /// cluster, `redis-sentinel://host:port?sentinelServiceName=name` for Sentinel. Replaces a
    /// client set before. The password never appears in `Debug` output, errors or logs.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.connection = Some(Connection::Url(url.into()));
        self
    }

    /// Uses a fred client configured by the caller (Sentinel, Cluster, custom TLS, ...).
    /// Replaces a URL set before. The caller keeps the configuration: give it a reconnect
    /// policy. See [`RedisLeaseStore::new`].
    pub fn client(mut self, client: Client) -> Self {
        self.connection = Some(Connection::Client(client));
        self
    }

    /// The election's name: contenders with the same key on the same Redis compete for one
    /// lease. Default: `leader-election-lock`.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// The longest lease any contender of this election may hold, on any version of the
    /// configuration: after a Redis restart or failover that may have lost a lease, no lease is
    /// granted for this long, since the lost lease's holder may still trust it. Set it to the
    /// longest `lease_duration` in use while a change of that setting rolls out. Default: this
    /// election's `lease_duration` (and, at run time, every longer lease the store sees). See
    /// [`RedisLeaseStore::with_max_lease_duration`].
    pub fn max_lease_duration(mut self, max_lease_duration: Duration) -> Self {
        self.max_lease_duration = Some(max_lease_duration);
        self
    }

    leader_election::option_setters!();

    /// Builds the election. Needs no Redis: the connection is made by
    /// [`LeaderElection::start`] and retried (with error events) while Redis is down.
    ///
    /// A client made from a URL is configured for leader election: every command times out
    /// after `operation_timeout` (a timeout is an unknown outcome, never a failure), a
    /// connection attempt too, the client reconnects forever with a short exponential backoff,
    /// a connection silent for `operation_timeout` is replaced, and `TCP_NODELAY` is set.
    ///
    /// # Errors
    /// - [`BuildError::MissingConnection`]: neither `url` nor `client` was set;
    /// - [`BuildError::InvalidUrl`]: the URL does not parse as a Redis URL;
    /// - [`BuildError::TlsNotEnabled`]: a `rediss://` URL without the `tls` feature;
    /// - [`BuildError::InvalidKey`]: the key is empty or blank, longer than 512 bytes, or
    ///   contains control characters, `{` or `}`;
    /// - [`BuildError::InvalidOptions`]: the options fail [`LeaderElectionOptions::validate`],
    ///   or `max_lease_duration` is shorter than `lease_duration`.
    pub fn build(self) -> Result<LeaderElection<RedisLeaseStore>, BuildError> {
        self.options.validate()?;
        validate_key(&self.key)?;
        let max_lease_duration = self
            .max_lease_duration
            .unwrap_or(self.options.lease_duration);
        if max_lease_duration < self.options.lease_duration {
            return Err(leader_election::ConfigError::new(
                "max_lease_duration",
                format!(
                    "must be at least lease_duration ({:?}), got {max_lease_duration:?}",
                    self.options.lease_duration
                ),
            )
            .into());
        }
        let timeout = self.options.operation_timeout();
        let store = match self.connection {
            None => return Err(BuildError::MissingConnection),
            Some(Connection::Client(client)) => RedisLeaseStore::new(client, &self.key)?,
            Some(Connection::Url(url)) => {
                let client = client_for(&url, timeout)?;
                let hub = crate::ReleaseHub::new(&client);
                RedisLeaseStore::with_ownership(client, &self.key, true, hub)?
            }
        };
        let store = store
            .with_operation_timeout(timeout)
            .with_max_lease_duration(max_lease_duration);
        Ok(LeaderElection::new(store, self.options)?)
    }
}

/// A fred client for `url`, configured for leader election.
fn client_for(url: &str, timeout: Duration) -> Result<Client, BuildError> {
    let invalid = |reason: String| BuildError::InvalidUrl {
        url: leader_election::quoted(&redact_url(url)),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    let scheme = parsed.scheme();
    let known = [
        "redis",
        "rediss",
        "redis-cluster",
        "rediss-cluster",
        "redis-sentinel",
        "rediss-sentinel",
        "valkey",
        "valkeys",
        "valkey-cluster",
        "valkeys-cluster",
        "valkey-sentinel",
        "valkeys-sentinel",
    ];
    if !known.contains(&scheme) {
        return Err(invalid(format!(
            "unsupported scheme {}, expected redis://, rediss://, redis-cluster:// or redis-sentinel://",
            leader_election::quoted(scheme)
        )));
    }
    let tls = scheme.starts_with("rediss") || scheme.starts_with("valkeys");
    if tls && !cfg!(feature = "tls") {
        return Err(BuildError::TlsNotEnabled {
            url: leader_election::quoted(&redact_url(url)),
        });
    }
    #[cfg(feature = "tls")]
    let mut config = if tls {
        // fred would build its TLS connector from rustls's process-wide default provider,
        // which panics when a program links both rustls providers (ring and aws-lc-rs, as the
        // Azure SDK does): parse the URL without TLS and choose the provider explicitly.
        let plain = format!(
            "{}{}",
            scheme
                .replacen("rediss", "redis", 1)
                .replacen("valkeys", "valkey", 1),
            &url[scheme.len()..]
        );
        let mut config = Config::from_url(&plain).map_err(|e| invalid(e.details().to_owned()))?;
        config.tls = Some(tls_connector().map_err(invalid)?.into());
        config
    } else {
        Config::from_url(url).map_err(|e| invalid(e.details().to_owned()))?
    };
    #[cfg(not(feature = "tls"))]
    let mut config = Config::from_url(url).map_err(|e| invalid(e.details().to_owned()))?;
    config.fail_fast = true;
    let performance = PerformanceConfig {
        default_command_timeout: timeout,
        ..PerformanceConfig::default()
    };
    let mut connection = ConnectionConfig {
        connection_timeout: timeout,
        internal_command_timeout: timeout,
        max_command_attempts: 1,
        ..ConnectionConfig::default()
    };
    connection.tcp.nodelay = Some(true);
    connection.unresponsive.max_timeout = Some(timeout);
    connection.unresponsive.interval = (timeout / 4).max(Duration::from_millis(10));
    Ok(Client::new(
        config,
        Some(performance),
        Some(connection),
        Some(default_reconnect_policy()),
    ))
}

/// A rustls connector with the ring provider and the system's root certificates.
#[cfg(feature = "tls")]
fn tls_connector() -> Result<fred::types::config::TlsConnector, String> {
    use fred::rustls::{ClientConfig, RootCertStore};
    let certs = fred::rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    for cert in certs.certs {
        // A certificate the system store holds but rustls cannot parse is skipped, as browsers
        // do; the others still verify the server.
        let _ = roots.add(cert);
    }
    let provider = std::sync::Arc::new(fred::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config.into())
}

/// `url` with its password (and any `...password=` query value) replaced by `***`; a URL
/// that does not parse is not shown at all, since it may still hold a secret.
pub(crate) fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<unparsable URL>".to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    let secret = |name: &str| {
        let name = name.to_ascii_lowercase();
        name.contains("password") || name.contains("secret") || name.contains("token")
    };
    if parsed.query_pairs().any(|(name, _)| secret(&name)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let value = if secret(&name) {
                    "***".to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_loads_from_environment_variables() {
        let vars = [
            ("LEADER_ELECTION_REDIS_URL", "redis://127.0.0.1:6390"),
            ("LEADER_ELECTION_REDIS_KEY", "jobs"),
            ("LEADER_ELECTION_LEASE_DURATION", "12s"),
            ("LEADER_ELECTION_RENEW_INTERVAL", "4s"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = RedisConfig::from_vars(vars).unwrap();
        assert_eq!(config.url.as_deref(), Some("redis://127.0.0.1:6390"));
        assert_eq!(config.key, "jobs");
        assert_eq!(config.options.lease_duration, Duration::from_secs(12));
        let err = RedisConfig::from_vars([(
            "LEADER_ELECTION_REDIS_ULR".to_owned(),
            "redis://x".to_owned(),
        )])
        .unwrap_err();
        assert!(err.to_string().contains("redis_ulr"), "{err}");
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = serde_json::from_str::<RedisConfig>(r#"{"ky": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("ky"), "{err}");
        let err = serde_json::from_str::<RedisConfig>(r#"{"options": {"renew_interval": 5}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
        let config: RedisConfig = serde_json::from_str("{}").unwrap();
        assert!(matches!(
            config.into_builder().build().unwrap_err(),
            BuildError::MissingConnection
        ));
        let config: RedisConfig =
            serde_json::from_str(r#"{"url": "redis://127.0.0.1", "key": "a{b"}"#).unwrap();
        assert!(matches!(
            config.into_builder().build().unwrap_err(),
            BuildError::InvalidKey { .. }
        ));
    }

    #[test]
    fn passwords_are_redacted() {
        let url = redact_url("redis://user:hunter2@example.com:6380/1");
        assert_eq!(url, "redis://user:***@example.com:6380/1");
        let url = redact_url(
            "redis-sentinel://:hunter2@h:26379?sentinelServiceName=m&sentinelPassword=hunter3",
        );
        assert!(!url.contains("hunter"), "{url}");
        assert!(url.contains("sentinelServiceName=m"), "{url}");
        assert_eq!(redact_url("not a url hunter2"), "<unparsable URL>");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let builder = RedisLeaderElection::builder().url("redis://:hunter2@localhost:6379");
        let debug = format!("{builder:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        let election = builder.build().expect("build");
        let debug = format!("{:?}", election.store());
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn build_checks_connection_url_key_and_options() {
        assert_eq!(
            RedisLeaderElection::builder().build().unwrap_err(),
            BuildError::MissingConnection
        );
        let err = RedisLeaderElection::builder()
            .url("http://:hunter2@localhost")
            .build()
            .unwrap_err();
        assert!(matches!(err, BuildError::InvalidUrl { .. }), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = RedisLeaderElection::builder()
            .url("redis://:hunter2@[::1")
            .build()
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        for key in ["", " ", "a{b", "a}", "a\nb"] {
            let err = RedisLeaderElection::builder()
                .url("redis://localhost")
                .key(key)
                .build()
                .unwrap_err();
            assert!(
                matches!(err, BuildError::InvalidKey { .. }),
                "{key:?}: {err}"
            );
        }
        let err = RedisLeaderElection::builder()
            .url("redis://localhost")
            .key("x".repeat(513))
            .build()
            .unwrap_err();
        assert!(matches!(err, BuildError::InvalidKey { .. }));
        let err = RedisLeaderElection::builder()
            .url("redis://localhost")
            .renew_interval(Duration::from_secs(60))
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, BuildError::InvalidOptions(e) if e.field == "renew_interval"),
            "{err}"
        );
    }

    #[test]
    fn errors_never_echo_a_huge_input_whole() {
        let huge = "k".repeat(100_000);
        let err = RedisLeaderElection::builder()
            .url("redis://localhost")
            .key(&huge)
            .build()
            .unwrap_err();
        assert!(matches!(err, BuildError::InvalidKey { .. }), "{err}");
        let shown = format!("{err} {err:?}");
        assert!(
            shown.len() < 600,
            "{} bytes: {}",
            shown.len(),
            &shown[..200]
        );
        assert!(shown.contains("100000 bytes"), "{shown}");
        let client = Client::new(Config::default(), None, None, None);
        let err = RedisLeaseStore::new(client, format!("{huge}{{")).unwrap_err();
        assert!(format!("{err} {err:?}").len() < 600);

        let huge_scheme = format!("{}://:hunter2@localhost", "h".repeat(100_000));
        let huge_path = format!("redis://:hunter2@[::1/{}", "p".repeat(100_000));
        for url in [huge_scheme, huge_path] {
            let err = RedisLeaderElection::builder().url(url).build().unwrap_err();
            assert!(matches!(err, BuildError::InvalidUrl { .. }), "{err}");
            let shown = format!("{err} {err:?}");
            assert!(
                shown.len() < 600,
                "{} bytes: {}",
                shown.len(),
                &shown[..200]
            );
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    #[test]
    fn max_lease_duration_is_at_least_the_lease() {
        let err = RedisLeaderElection::builder()
            .url("redis://localhost")
            .lease_duration(Duration::from_secs(10))
            .renew_interval(Duration::from_secs(3))
            .max_lease_duration(Duration::from_secs(5))
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, BuildError::InvalidOptions(e) if e.field == "max_lease_duration"),
            "{err}"
        );
        let election = RedisLeaderElection::builder()
            .url("redis://localhost")
            .lease_duration(Duration::from_secs(10))
            .renew_interval(Duration::from_secs(3))
            .max_lease_duration(Duration::from_secs(60))
            .build()
            .unwrap();
        assert_eq!(election.store().guard_duration(), Duration::from_secs(60));
        let election = RedisLeaderElection::builder()
            .url("redis://localhost")
            .lease_duration(Duration::from_secs(10))
            .renew_interval(Duration::from_secs(3))
            .build()
            .unwrap();
        assert_eq!(election.store().guard_duration(), Duration::from_secs(10));
    }

    #[test]
    fn every_option_has_a_setter() {
        let election = RedisLeaderElection::builder()
            .url("redis://127.0.0.1:1")
            .key("jobs")
            .instance_id("node-1")
            .lease_duration(Duration::from_secs(10))
            .renew_interval(Duration::from_secs(3))
            .retry_interval(Duration::from_secs(1))
            .max_retry_interval(Duration::from_secs(8))
            .retry_backoff_factor(1.5)
            .retry_jitter(0.2)
            .max_retry_attempts(4)
            .enable_graceful_shutdown(false)
            .operation_timeout(Duration::from_millis(500))
            .clock_drift_rate(0.02)
            .deadline_slack(Duration::from_millis(50))
            .shutdown_timeout(Duration::from_secs(1))
            .build()
            .expect("valid");
        let o = election.options();
        assert_eq!(o.instance_id, "node-1");
        assert_eq!(o.lease_duration, Duration::from_secs(10));
        assert_eq!(o.renew_interval, Duration::from_secs(3));
        assert_eq!(o.retry_interval, Duration::from_secs(1));
        assert_eq!(o.max_retry_interval, Duration::from_secs(8));
        assert_eq!(o.retry_backoff_factor, 1.5);
        assert_eq!(o.retry_jitter, 0.2);
        assert_eq!(o.max_retry_attempts, 4);
        assert!(!o.enable_graceful_shutdown);
        assert_eq!(o.operation_timeout(), Duration::from_millis(500));
        assert_eq!(o.clock_drift_rate, 0.02);
        assert_eq!(o.deadline_slack, Duration::from_millis(50));
        assert_eq!(o.shutdown_timeout, Duration::from_secs(1));
        assert_eq!(election.store().key(), "jobs");
        assert_eq!(election.store().lease_key(), "{jobs}:lease");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_urls_build() {
        RedisLeaderElection::builder()
            .url("rediss://localhost:6380")
            .build()
            .expect("rediss with the tls feature");
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_urls_need_the_feature() {
        let err = RedisLeaderElection::builder()
            .url("rediss://localhost:6380")
            .build()
            .unwrap_err();
        assert!(matches!(err, BuildError::TlsNotEnabled { .. }));
    }
}
