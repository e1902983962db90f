//! [`RedisLeaderElection::builder`]: an election on Redis in a few lines.

use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::types::config::ServerConfig;
use leader_election::{BuildError, ConfigError};

use crate::RedisConfig;
use crate::connection::client_for;
use crate::store::{DEFAULT_KEY, RedisLeaseStore, validate_key};
#[cfg(feature = "tls")]
use leader_election::TlsBuilder;
use leader_election::backend::Secret;
use leader_election::backend::tls::TlsSettings;

/// The entry point for an election on Redis: [`RedisLeaderElection::builder`].
///
/// It has no values; the builder makes a
/// [`LeaderElection<RedisLeaseStore>`](leader_election::LeaderElection)
/// ([`build`](leader_election::ElectionBuilder::build)) or the store alone
/// ([`build_store`](leader_election::ElectionBuilder::build_store)). From configuration files or
/// the environment, start from a [`RedisConfig`](crate::RedisConfig).
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

/// Configures an election on Redis; made by [`RedisLeaderElection::builder`] or from a
/// [`RedisConfig`], which it holds.
///
/// Setters never fail; [`build`](leader_election::ElectionBuilder::build) and
/// [`build_store`](leader_election::ElectionBuilder::build_store) check everything.
#[must_use]
#[derive(Debug, Default)]
pub struct RedisLeaderElectionBuilder {
    pub(crate) config: RedisConfig,
    /// A client configured by the caller, in place of the configuration's URL.
    pub(crate) client: Option<Client>,
    /// The TLS settings: the configuration's files, and what the TLS setters add.
    pub(crate) tls: TlsSettings,
}

impl RedisLeaderElectionBuilder {
    /// Connects with a Redis URL: `redis://[[user]:password@]host[:port][/db]`, `rediss://` for TLS
    /// (feature `tls`, on by default), `redis-cluster://host:port?node=host:port` for a cluster.
    /// For Sentinel, name one sentinel as the host, the others as `node` parameters, and the
    /// monitored service:
    /// `redis-sentinel://[:password@]s1:26379[/db]?sentinelServiceName=mymaster&node=s2:26379&node=s3:26379`
    /// (`rediss-sentinel://` for TLS); the client asks the sentinels for the primary, checks its
    /// role, and asks again whenever its connection breaks, as after a failover. Replaces a client
    /// set before. The password never appears in `Debug` output, errors or logs.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.config.url = Some(Secret::from(url.into()));
        self.client = None;
        self
    }

    /// Uses a fred client configured by the caller (Sentinel, Cluster, custom TLS, ...).
    /// Replaces a URL set before. The caller keeps the configuration: give it a reconnect
    /// policy. See [`RedisLeaseStore::new`].
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self.config.url = None;
        self
    }
}

leader_election::backend::config_setters! {
    RedisLeaderElectionBuilder { config }
    /// The election's name: contenders with the same key on the same Redis compete for one
    /// lease. Default: `leader-election-lock`.
    key: impl Into<String>;
    /// The longest lease any contender of this election may hold, on any version of the
    /// configuration: after a Redis restart or failover that may have lost a lease, no lease is
    /// granted for this long, since the lost lease's holder may still trust it. Set it to the
    /// longest `lease_duration` in use while a change of that setting rolls out. Default: this
    /// election's `lease_duration` (and, at run time, every longer lease the store sees). See
    /// [`RedisLeaseStore::with_max_lease_duration`].
    max_lease_duration: Duration;
    /// Believes an acquisition or a renewal only once at least `min_replica_acks` replicas
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
    min_replica_acks: u32;
}

/// The TLS settings of a `rediss://` URL (feature `tls`): the CAs to trust instead of the system's
/// root certificates, and a client certificate for mutual TLS; checked by
/// [`build_store`](leader_election::ElectionBuilder::build_store), which refuses them with a
/// `redis://` URL or with a [`client`](RedisLeaderElectionBuilder::client). Bring the setters into
/// scope with `use leader_election::TlsBuilder;`.
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
impl TlsBuilder for RedisLeaderElectionBuilder {
    fn tls_settings(&mut self) -> &mut TlsSettings {
        &mut self.tls
    }
}

/// The error of a builder given neither a URL nor a client.
fn missing_connection() -> BuildError {
    BuildError::MissingConnection {
        backend: "Redis",
        hint: "set `url(..)` or `client(..)`",
    }
}

leader_election::backend::election_builder! {
    /// The store alone, checked like [`build`](leader_election::ElectionBuilder::build) (see
    /// [`ElectionBuilder::build_store`](leader_election::ElectionBuilder::build_store)); its
    /// timeouts and guard come from the options. Needs no Redis.
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
    /// - [`BuildError::Options`]: the options fail
    ///   [`LeaderElectionOptions::validate`](leader_election::LeaderElectionOptions::validate), or
    ///   `max_lease_duration` is shorter than `lease_duration`.
    RedisLeaderElectionBuilder => RedisLeaseStore, store_from
}

/// The store of `builder`, whose options
/// [`election_builder!`](leader_election::backend::election_builder) has checked.
fn store_from(builder: RedisLeaderElectionBuilder) -> Result<RedisLeaseStore, BuildError> {
    let config = builder.config;
    let key = config.key.as_deref().unwrap_or(DEFAULT_KEY);
    validate_key(key)?;
    let lease_duration = config.options.lease_duration;
    let max_lease_duration = config.max_lease_duration.unwrap_or(lease_duration);
    if max_lease_duration < lease_duration {
        return Err(ConfigError::new(
            "max_lease_duration",
            format!(
                "must be at least lease_duration ({lease_duration:?}), got {max_lease_duration:?}"
            ),
        )
        .into());
    }
    let timeout = config.options.operation_timeout();
    let store = match (builder.client, config.url) {
        (Some(_), _) if !builder.tls.is_empty() => {
            return Err(BuildError::tls(
                "client",
                "TLS settings apply to a URL; a client configured by the caller brings its \
                 own TLS configuration",
            ));
        }
        (Some(client), _) => RedisLeaseStore::new(client, key)?,
        (None, Some(url)) => {
            let client = client_for(url.expose(), timeout, &builder.tls)?;
            let hub = crate::ReleaseHub::new(&client);
            RedisLeaseStore::with_ownership(client, key, true, hub)?
        }
        (None, None) => return Err(missing_connection()),
    };
    let through_sentinel = matches!(
        store.client().client_config().server,
        ServerConfig::Sentinel { .. }
    );
    let min_replica_acks = match config.min_replica_acks {
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

#[cfg(test)]
mod tests;
