//! [`RedisLeaderElection::builder`]: an election on Redis in a few lines.

use std::fmt;
#[cfg(feature = "tls")]
use std::path::PathBuf;
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::types::config::ServerConfig;
use leader_election::{ConfigError, LeaderElection, LeaderElectionOptions};

use crate::connection::{TlsSettings, client_for, redact_url};
use crate::error::BuildError;
use crate::store::{DEFAULT_KEY, RedisLeaseStore, validate_key};
#[cfg(feature = "tls")]
use leader_election::pem::Pem;

/// The entry point for an election on Redis: [`RedisLeaderElection::builder`].
///
/// It has no values; the builder makes a [`LeaderElection<RedisLeaseStore>`](LeaderElection)
/// ([`build`](RedisLeaderElectionBuilder::build)) or the store alone
/// ([`build_store`](RedisLeaderElectionBuilder::build_store)). From configuration files or the
/// environment, start from a [`RedisConfig`](crate::RedisConfig).
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

/// Configures an election on Redis; made by [`RedisLeaderElection::builder`].
///
/// Setters never fail; [`build`](Self::build) and [`build_store`](Self::build_store) check
/// everything.
#[must_use]
pub struct RedisLeaderElectionBuilder {
    connection: Option<Connection>,
    key: String,
    options: LeaderElectionOptions,
    max_lease_duration: Option<Duration>,
    min_replica_acks: Option<u32>,
    tls: TlsSettings,
}

impl Default for RedisLeaderElectionBuilder {
    fn default() -> Self {
        Self {
            connection: None,
            key: DEFAULT_KEY.to_owned(),
            options: LeaderElectionOptions::default(),
            max_lease_duration: None,
            min_replica_acks: None,
            tls: TlsSettings::default(),
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
            .field("min_replica_acks", &self.min_replica_acks)
            .field("tls", &self.tls)
            .finish()
    }
}

impl RedisLeaderElectionBuilder {
    /// Connects with a Redis URL: `redis://[[user]:password@]host[:port][/db]`, `rediss://`
    /// for TLS (feature `tls`, on by default), `redis-cluster://host:port?node=host:port` for a
    /// cluster. For Sentinel, name one sentinel as the host, the others as `node` parameters,
    /// and the monitored service:
    /// `redis-sentinel://[:password@]s1:26379[/db]?sentinelServiceName=mymaster&node=s2:26379&node=s3:26379`
    /// (`rediss-sentinel://` for TLS); the client asks the sentinels for the primary, checks its
    /// role, and asks again whenever its connection breaks, as after a failover. Replaces a
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

    /// Believes an acquisition or a renewal only once at least `replicas` replicas
    /// acknowledged it (Redis `WAIT`, bounded by half the `operation_timeout`); fewer is an
    /// unknown outcome, so nobody leads while the primary cannot reach that many replicas.
    /// See [`RedisLeaseStore::with_min_replica_acks`] for what it buys and costs.
    ///
    /// Default: 0 (no wait) for a standalone server or a cluster. **Through Sentinel it must be
    /// set**, or `build` fails: after a failover the old primary goes on serving the clients
    /// still connected to it until the sentinels reconfigure it (seconds), so its leader could
    /// renew there beside a new leader on the new primary. Set it to the number of replicas
    /// (every renewal then reached the replica that may be promoted, and a primary that lost
    /// one can confirm nothing), or to 0 to accept overlapping leaders during a failover.
    pub fn min_replica_acks(mut self, replicas: u32) -> Self {
        self.min_replica_acks = Some(replicas);
        self
    }

    /// Trusts the CA certificate(s) in this PEM text for a `rediss://` URL, instead of the
    /// system's root certificates (feature `tls`). May be called again, and with
    /// [`tls_ca_file`](Self::tls_ca_file), to trust several. Checked by
    /// [`build_store`](Self::build_store).
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

    /// For mutual TLS: presents this client certificate (PEM, the chain's leaf first) with its
    /// private key (PEM: PKCS#8, PKCS#1 or SEC1) to a server that asks for one (feature `tls`).
    /// The key never appears in `Debug` output or errors. Replaces a certificate set before.
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

    /// [`tls_client_cert_pem`](Self::tls_client_cert_pem)'s certificate, read from a PEM
    /// file by [`build_store`](Self::build_store); set the key with
    /// [`tls_client_key_file`](Self::tls_client_key_file) (feature `tls`).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_client_cert_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.client_cert = Some(Pem::File(path.into()));
        self
    }

    /// [`tls_client_cert_pem`](Self::tls_client_cert_pem)'s private key, read from a PEM
    /// file by [`build_store`](Self::build_store) (feature `tls`).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_client_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.client_key = Some(Pem::File(path.into()));
        self
    }

    leader_election::option_setters!();

    /// Builds the election: [`build_store`](Self::build_store), then
    /// [`LeaderElection::new`] with the options. Needs no Redis: the connection is made by
    /// [`LeaderElection::start`] and retried (with error events) while Redis is down.
    ///
    /// # Errors
    /// As for [`build_store`](Self::build_store).
    pub fn build(self) -> Result<LeaderElection<RedisLeaseStore>, BuildError> {
        let options = self.options.clone();
        let store = self.build_store()?;
        Ok(LeaderElection::new(store, options)?)
    }

    /// Checks everything like [`build`](Self::build) and returns only the store, for sharing
    /// or wrapping it before [`LeaderElection::new`]; give that the same options, since the
    /// store's timeouts and guard come from them. Needs no Redis.
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
    /// - [`BuildError::Tls`]: a CA or client certificate file cannot be read, PEM holds no
    ///   certificate or no private key, a client certificate without its key (or the
    ///   reverse), or TLS settings with a `redis://` URL or with [`client`](Self::client);
    /// - [`BuildError::InvalidName`]: the key is empty or blank, longer than 512 bytes, or
    ///   contains control characters, `{` or `}`;
    /// - [`BuildError::Options`]: the options fail [`LeaderElectionOptions::validate`], or
    ///   `max_lease_duration` is shorter than `lease_duration`.
    pub fn build_store(self) -> Result<RedisLeaseStore, BuildError> {
        self.options.validate()?;
        validate_key(&self.key)?;
        let max_lease_duration = self
            .max_lease_duration
            .unwrap_or(self.options.lease_duration);
        if max_lease_duration < self.options.lease_duration {
            return Err(ConfigError::new(
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
            Some(Connection::Client(_)) if !self.tls.is_empty() => {
                return Err(BuildError::Tls {
                    setting: "client",
                    reason: "TLS settings apply to a URL; a client configured by the caller \
                             brings its own TLS configuration"
                        .to_owned(),
                });
            }
            Some(Connection::Client(client)) => RedisLeaseStore::new(client, &self.key)?,
            Some(Connection::Url(url)) => {
                let client = client_for(&url, timeout, &self.tls)?;
                let hub = crate::ReleaseHub::new(&client);
                RedisLeaseStore::with_ownership(client, &self.key, true, hub)?
            }
        };
        let through_sentinel = matches!(
            store.client().client_config().server,
            ServerConfig::Sentinel { .. }
        );
        let min_replica_acks = match self.min_replica_acks {
            Some(replicas) => replicas,
            None if through_sentinel => {
                return Err(ConfigError::new(
                    "min_replica_acks",
                    "must be set through Sentinel: after a failover the old primary serves its \
                     clients until the sentinels reconfigure it, so its leader could renew there \
                     beside a new leader; set it to the number of replicas, or to 0 to accept \
                     overlapping leaders during a failover",
                )
                .into());
            }
            None => 0,
        };
        Ok(store
            .with_operation_timeout(timeout)
            .with_max_lease_duration(max_lease_duration)
            .with_min_replica_acks(min_replica_acks))
    }
}

#[cfg(test)]
mod tests {
    use fred::prelude::Config;

    use super::*;

    #[test]
    fn through_sentinel_min_replica_acks_must_be_chosen() {
        let sentinel = "redis-sentinel://127.0.0.1:26379?sentinelServiceName=leaders";
        let err = RedisLeaderElection::builder()
            .url(sentinel)
            .build_store()
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("min_replica_acks") && message.contains("Sentinel"),
            "{message}"
        );
        // A caller-configured client through Sentinel is held to the same rule.
        let client = Client::new(Config::from_url(sentinel).unwrap(), None, None, None);
        assert!(
            RedisLeaderElection::builder()
                .client(client)
                .build_store()
                .is_err()
        );
        // Chosen: every replica, or none on purpose.
        for acks in [2, 0] {
            let store = RedisLeaderElection::builder()
                .url(sentinel)
                .min_replica_acks(acks)
                .build_store()
                .unwrap();
            assert_eq!(store.min_replica_acks(), acks);
        }
        // Elsewhere the default is no wait.
        for url in ["redis://127.0.0.1:6379", "redis-cluster://127.0.0.1:7001"] {
            let store = RedisLeaderElection::builder()
                .url(url)
                .build_store()
                .unwrap();
            assert_eq!(store.min_replica_acks(), 0, "{url}");
        }
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
                matches!(err, BuildError::InvalidName { field: "key", .. }),
                "{key:?}: {err}"
            );
        }
        let err = RedisLeaderElection::builder()
            .url("redis://localhost")
            .key("x".repeat(513))
            .build()
            .unwrap_err();
        assert!(matches!(err, BuildError::InvalidName { field: "key", .. }));
        let err = RedisLeaderElection::builder()
            .url("redis://localhost")
            .renew_interval(Duration::from_secs(60))
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, BuildError::Options(e) if e.field == "renew_interval"),
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
        assert!(
            matches!(err, BuildError::InvalidName { field: "key", .. }),
            "{err}"
        );
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
            matches!(&err, BuildError::Options(e) if e.field == "max_lease_duration"),
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

    #[cfg(feature = "tls")]
    mod tls {
        use leader_election_test_support::redis::RedisTls;

        use super::*;

        const FAKE_KEY: &str =
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n";

        fn tls_error(builder: RedisLeaderElectionBuilder) -> (&'static str, String) {
            match builder.build_store() {
                Err(BuildError::Tls { setting, reason }) => (setting, reason),
                other => panic!("expected a TLS error, got {other:?}"),
            }
        }

        #[test]
        fn a_ca_and_a_client_certificate_build() {
            let pems = RedisTls::generate(true);
            let dir = std::env::temp_dir().join(format!("le-tls-build-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("ca.crt"), &pems.ca_pem).unwrap();
            std::fs::write(dir.join("c.crt"), &pems.client_cert_pem).unwrap();
            std::fs::write(dir.join("c.key"), &pems.client_key_pem).unwrap();
            RedisLeaderElection::builder()
                .url("rediss://127.0.0.1:6380")
                .tls_ca_pem(pems.ca_pem.as_bytes())
                .tls_client_cert_pem(pems.client_cert_pem.as_bytes(), pems.client_key_pem)
                .build_store()
                .expect("PEM in memory");
            RedisLeaderElection::builder()
                .url("rediss://127.0.0.1:6380")
                .tls_ca_file(dir.join("ca.crt"))
                .tls_client_cert_file(dir.join("c.crt"))
                .tls_client_key_file(dir.join("c.key"))
                .build_store()
                .expect("PEM files");
            let _ = std::fs::remove_dir_all(&dir);
        }

        #[test]
        fn tls_settings_are_checked_when_built() {
            let pems = RedisTls::generate(false);
            let tls = || RedisLeaderElection::builder().url("rediss://127.0.0.1:6380");

            let (setting, reason) = tls_error(tls().tls_ca_file("/nonexistent/ca.pem"));
            assert_eq!(setting, "tls_ca");
            assert!(
                reason.contains("cannot read /nonexistent/ca.pem"),
                "{reason}"
            );

            let (setting, reason) = tls_error(tls().tls_ca_pem("just text"));
            assert_eq!(setting, "tls_ca");
            assert!(reason.contains("no certificate"), "{reason}");
            // A key where the CA should be holds no certificate either.
            let (setting, _) = tls_error(tls().tls_ca_pem(pems.client_key_pem.as_bytes()));
            assert_eq!(setting, "tls_ca");

            let (setting, reason) = tls_error(tls().tls_client_key_file("/k.pem"));
            assert_eq!(setting, "tls_client_key");
            assert!(reason.contains("without a client certificate"), "{reason}");
            let (setting, _) = tls_error(tls().tls_client_cert_file("/c.pem"));
            assert_eq!(setting, "tls_client_cert");

            let (setting, reason) = tls_error(
                RedisLeaderElection::builder()
                    .url("redis://:hunter2@127.0.0.1:6379")
                    .tls_ca_pem(pems.ca_pem.as_bytes()),
            );
            assert_eq!(setting, "url");
            assert!(reason.contains("rediss://"), "{reason}");
            assert!(!reason.contains("hunter2"), "{reason}");

            let client = Client::new(Config::default(), None, None, None);
            let (setting, _) = tls_error(
                RedisLeaderElection::builder()
                    .client(client)
                    .tls_ca_pem(pems.ca_pem.as_bytes()),
            );
            assert_eq!(setting, "client");
        }

        #[test]
        fn keys_never_appear_in_debug_or_errors() {
            let pems = RedisTls::generate(false);
            let secret = pems.client_key_pem.lines().nth(1).unwrap().to_owned();
            let builder = RedisLeaderElection::builder()
                .url("rediss://127.0.0.1:6380")
                .tls_client_cert_pem(pems.client_cert_pem.as_bytes(), pems.client_key_pem);
            let debug = format!("{builder:?}");
            assert!(!debug.contains(&secret), "{debug}");
            assert!(!debug.contains("PRIVATE KEY"), "{debug}");
            assert!(debug.contains("PEM bytes"), "{debug}");

            // A key that does not parse, and a key that does not fit the certificate.
            for key in [FAKE_KEY.to_owned(), "no key".to_owned()] {
                let (setting, reason) = tls_error(
                    RedisLeaderElection::builder()
                        .url("rediss://127.0.0.1:6380")
                        .tls_client_cert_pem(pems.client_cert_pem.as_bytes(), key.as_bytes()),
                );
                assert_eq!(setting, "tls_client_key", "{reason}");
                assert!(!reason.contains("c2VjcmV0"), "{reason}");
                assert!(!reason.contains("secret"), "{reason}");
            }
            let other = RedisTls::generate(false);
            let (setting, reason) = tls_error(
                RedisLeaderElection::builder()
                    .url("rediss://127.0.0.1:6380")
                    .tls_client_cert_pem(
                        pems.client_cert_pem.as_bytes(),
                        other.client_key_pem.as_bytes(),
                    ),
            );
            assert_eq!(setting, "tls_client_key", "{reason}");
            let other_secret = other.client_key_pem.lines().nth(1).unwrap();
            assert!(!reason.contains(other_secret), "{reason}");
        }
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
