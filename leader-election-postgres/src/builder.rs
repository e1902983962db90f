//! [`PostgresLeaderElection::builder`]: an election on PostgreSQL in a few lines.

use deadpool_postgres::Pool;
use leader_election::ConfigError;

use crate::PostgresConfig;
use crate::connection::{Target, connector_for, pool_for, resolve};
use crate::names::{validate_election, validate_table};
use crate::store::{DEFAULT_ELECTION, DEFAULT_TABLE, PostgresLeaseStore};
use leader_election::BuildError;
use leader_election::backend::Secret;
use leader_election::backend::tls::TlsSettings;

/// The connections in the pool the builder creates, unless
/// [`pool_size`](PostgresLeaderElectionBuilder::pool_size) says otherwise.
pub const DEFAULT_POOL_SIZE: usize = 2;

/// The entry point for an election on PostgreSQL: [`PostgresLeaderElection::builder`].
///
/// It has no values; the builder makes a
/// [`LeaderElection<PostgresLeaseStore>`](leader_election::LeaderElection)
/// ([`build`](leader_election::ElectionBuilder::build)) or the store alone
/// ([`build_store`](leader_election::ElectionBuilder::build_store)). From configuration files or
/// the environment, start from a [`PostgresConfig`](crate::PostgresConfig).
#[derive(Debug)]
pub enum PostgresLeaderElection {}

impl PostgresLeaderElection {
    /// A builder with the default table (`leader_election_leases`), election name
    /// (`leader-election`) and options, and no connection yet: set
    /// [`connection_string`](PostgresLeaderElectionBuilder::connection_string) or
    /// [`pool`](PostgresLeaderElectionBuilder::pool).
    pub fn builder() -> PostgresLeaderElectionBuilder {
        PostgresLeaderElectionBuilder::default()
    }
}

/// Configures an election on PostgreSQL; made by [`PostgresLeaderElection::builder`] or from a
/// [`PostgresConfig`], which it holds.
///
/// Setters never fail; [`build`](leader_election::ElectionBuilder::build) and
/// [`build_store`](leader_election::ElectionBuilder::build_store) check everything.
#[must_use]
#[derive(Debug, Default)]
pub struct PostgresLeaderElectionBuilder {
    pub(crate) config: PostgresConfig,
    /// A pool the caller manages, in place of `config.connection_string`: whichever was set
    /// last wins.
    pub(crate) pool: Option<CallersPool>,
    /// The `tls_*` setters', and the configuration's files (taken out of it by
    /// [`into_builder`](leader_election::BackendConfig::into_builder)).
    pub(crate) tls: TlsSettings,
}

/// A pool the caller manages, and the config of a connection to `LISTEN` on.
#[derive(Debug)]
pub(crate) struct CallersPool {
    pool: Pool,
    listen: Option<Box<tokio_postgres::Config>>,
}

impl PostgresLeaderElectionBuilder {
    /// Connects with a libpq-style connection string, as a URL
    /// (`postgres://user:password@host:5432/db?sslmode=verify-full&sslrootcert=/etc/ca.pem`) or
    /// as `key=value` pairs (`host=db user=app password=secret dbname=app sslmode=require`).
    /// `sslmode` means what libpq documents (`disable`, `prefer` (the default), `require`,
    /// `verify-ca`, `verify-full`; see the README's "TLS" section under "Deploying"), and
    /// `sslrootcert`,
    /// `sslcert` and `sslkey` name PEM files, as the `tls_*` setters do. TLS needs feature
    /// `tls` (on by default); without it, `prefer` connects without TLS and the other TLS
    /// settings are refused.
    pub fn connection_string(mut self, connection_string: impl Into<String>) -> Self {
        self.config.connection_string = Some(Secret::from(connection_string.into()));
        self.pool = None;
        self
    }

    /// Uses a pool the caller manages. With `listen` (a config for one more connection, used to
    /// `LISTEN` for releases), a graceful stop hands over at once; without it, or while that
    /// connection cannot be made (it is retried in the background), followers wake when the
    /// lease can expire. The pool brings its own TLS; the `listen` connection uses TLS as its
    /// `ssl_mode` says, verifying the server's certificate and host name (`verify-full`) when
    /// a CA is set ([`tls_ca_pem`](leader_election::TlsBuilder::tls_ca_pem), feature `tls`), and
    /// not verifying it
    /// otherwise. [`listen_connection_string`](Self::listen_connection_string) takes the place
    /// of `listen`.
    pub fn pool(mut self, pool: Pool, listen: Option<tokio_postgres::Config>) -> Self {
        self.pool = Some(CallersPool {
            pool,
            listen: listen.map(Box::new),
        });
        self.config.connection_string = None;
        self
    }
}

leader_election::backend::config_setters! {
    PostgresLeaderElectionBuilder { config }
    /// Listens for releases on a connection made from this connection string (with the same
    /// TLS settings) instead of the pool's: the server itself, when the pool goes through a
    /// transaction-mode pooler such as PgBouncer, where `LISTEN` hears nothing. Default: the
    /// pool's connection string, or the config given to [`pool`](Self::pool).
    listen_connection_string: impl Into<String>;
    /// The table holding the leases: a lower-case identifier of at most 63 bytes, optionally
    /// schema-qualified. Created on the first connection if missing, which needs `CREATE` on the
    /// schema; a role without it works on a table an owner made with
    /// [`PostgresLeaseStore::setup_sql`]. Default: `leader_election_leases`.
    table: impl Into<String>;
    /// The election's name (its row in the table). Default: `leader-election`.
    election: impl Into<String>;
    /// Connections in the pool the builder creates from a connection string; at least 1.
    /// Default: 2.
    pool_size: usize;
}

/// The `tls_*` setters (feature `tls`): CAs to trust instead of the system's root certificates (as
/// `sslrootcert` does; several may be given), and a client certificate for a server that asks for
/// one (`hostssl ... cert` in `pg_hba.conf`), which wins over `sslcert`/`sslkey`. With a CA, even
/// `sslmode=prefer` and `require` check that the server's certificate is signed by it (as libpq
/// does); `verify-full` checks the host name too. Files are read, and everything checked, by
/// [`build_store`](leader_election::ElectionBuilder::build_store).
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
impl leader_election::TlsBuilder for PostgresLeaderElectionBuilder {
    fn tls_settings(&mut self) -> &mut TlsSettings {
        &mut self.tls
    }
}

leader_election::backend::election_builder! {
    /// The store alone, checked like [`build`](leader_election::ElectionBuilder::build) (see
    /// [`ElectionBuilder::build_store`](leader_election::ElectionBuilder::build_store)); its pool's
    /// timeouts come from the options. Connects to nothing.
    ///
    /// A pool made from a connection string is configured for leader election: connecting,
    /// waiting for a connection and recycling one time out after `operation_timeout`, and so
    /// does every statement on the server (`statement_timeout`); the application name is the
    /// instance id unless the connection string sets one.
    ///
    /// # Errors
    /// - [`BuildError::MissingConnection`]: neither a connection string nor a pool;
    /// - [`BuildError::InvalidConnectionString`]: it does not parse (the message never holds
    ///   the password);
    /// - [`BuildError::TlsNotEnabled`]: without feature `tls`, it sets `sslmode=require`,
    ///   `verify-ca` or `verify-full`, or `sslrootcert`, `sslcert` or `sslkey`;
    /// - [`BuildError::Tls`]: a CA or client certificate cannot be read or used, a verifying
    ///   `sslmode` has no CA, TLS settings come with `sslmode=disable`, or TLS settings with a
    ///   [`pool`](Self::pool) and no connection to listen on (the pool brings its own TLS);
    /// - [`BuildError::InvalidName`]: a table name that is not one or two lower-case
    ///   identifiers of at most 63 bytes, or an election name that is blank, longer than
    ///   512 bytes or has control characters;
    /// - [`BuildError::Options`]: options that fail
    ///   [`LeaderElectionOptions::validate`](leader_election::LeaderElectionOptions::validate), or
    ///   a pool size of zero;
    /// - [`BuildError::Client`]: the pool cannot be created.
    PostgresLeaderElectionBuilder => PostgresLeaseStore, store_from
}

/// The store of `builder`, whose options
/// [`election_builder!`](leader_election::backend::election_builder) has checked.
fn store_from(builder: PostgresLeaderElectionBuilder) -> Result<PostgresLeaseStore, BuildError> {
    let PostgresLeaderElectionBuilder { config, pool, tls } = builder;
    let table = config.table.as_deref().unwrap_or(DEFAULT_TABLE);
    validate_table(table)?;
    let election = config
        .election
        .unwrap_or_else(|| DEFAULT_ELECTION.to_owned());
    validate_election(&election)?;
    let timeout = config.options.operation_timeout();
    let id = &config.options.instance_id;
    let listen_string = config
        .listen_connection_string
        .as_ref()
        .map(|raw| resolve(raw.expose(), id, timeout, &tls))
        .transpose()?;
    let (pool, listen) = match (pool, config.connection_string) {
        (None, None) => {
            return Err(BuildError::MissingConnection {
                backend: "PostgreSQL",
                hint: "set a connection string or a pool",
            });
        }
        (Some(CallersPool { pool, listen }), _) => {
            let listen = match (listen_string, listen) {
                (Some(target), _) => Some(target),
                (None, Some(config)) => Some(Target {
                    connector: connector_for(&config, &tls)?,
                    config: *config,
                }),
                (None, None) if !tls.is_empty() => {
                    return Err(BuildError::Tls {
                        setting: "pool",
                        reason: "TLS settings apply to the connections the builder makes; \
                                 a pool made by the caller brings its own TLS, and there is \
                                 no connection to listen on"
                            .to_owned(),
                    });
                }
                (None, None) => None,
            };
            (pool, listen)
        }
        (None, Some(raw)) => {
            let target = resolve(raw.expose(), id, timeout, &tls)?;
            let pool_size = config.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
            if pool_size == 0 {
                return Err(ConfigError::new("pool_size", "must be at least 1").into());
            }
            let listen = listen_string.unwrap_or_else(|| Target {
                config: target.config.clone(),
                connector: target.connector.clone(),
            });
            (pool_for(target, pool_size, timeout)?, Some(listen))
        }
    };
    let listen = listen.map(|target| (target.config, target.connector));
    PostgresLeaseStore::with_listener(pool, listen, table, election)
}

#[cfg(test)]
mod tests;
