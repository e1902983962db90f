//! [`PostgresLeaderElection::builder`]: an election on PostgreSQL in a few lines.

use std::fmt;

use deadpool_postgres::Pool;
use leader_election::{ConfigError, LeaderElection, LeaderElectionOptions};

use crate::connection::{parse_connection_string, pool_for};
use crate::error::BuildError;
use crate::names::{validate_election, validate_table};
use crate::store::{DEFAULT_ELECTION, DEFAULT_TABLE, PostgresLeaseStore};

/// The connections in the pool the builder creates, unless
/// [`pool_size`](PostgresLeaderElectionBuilder::pool_size) says otherwise.
pub const DEFAULT_POOL_SIZE: usize = 2;

/// The entry point for an election on PostgreSQL: [`PostgresLeaderElection::builder`].
///
/// It has no values; the builder makes a [`LeaderElection<PostgresLeaseStore>`](LeaderElection)
/// ([`build`](PostgresLeaderElectionBuilder::build)) or the store alone
/// ([`build_store`](PostgresLeaderElectionBuilder::build_store)). From configuration files or
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

enum Connection {
    String(String),
    Pool(Pool, Option<Box<tokio_postgres::Config>>),
}

/// Configures an election on PostgreSQL; made by [`PostgresLeaderElection::builder`].
///
/// Setters never fail; [`build`](Self::build) and [`build_store`](Self::build_store) check
/// everything.
#[must_use]
pub struct PostgresLeaderElectionBuilder {
    connection: Option<Connection>,
    table: String,
    election: String,
    pool_size: usize,
    options: LeaderElectionOptions,
}

impl Default for PostgresLeaderElectionBuilder {
    fn default() -> Self {
        Self {
            connection: None,
            table: DEFAULT_TABLE.to_owned(),
            election: DEFAULT_ELECTION.to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            options: LeaderElectionOptions::default(),
        }
    }
}

impl fmt::Debug for PostgresLeaderElectionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let connection = match &self.connection {
            None => "none",
            Some(Connection::String(_)) => "connection string (redacted)",
            Some(Connection::Pool(..)) => "pool",
        };
        f.debug_struct("PostgresLeaderElectionBuilder")
            .field("connection", &connection)
            .field("table", &self.table)
            .field("election", &self.election)
            .field("pool_size", &self.pool_size)
            .field("options", &self.options)
            .finish()
    }
}

impl PostgresLeaderElectionBuilder {
    /// Connects with a libpq-style connection string, as a URL
    /// (`postgres://user:password@host:5432/db`) or as `key=value` pairs
    /// (`host=localhost user=app password=secret dbname=app`). TLS is not supported yet: use a
    /// trusted network or a local socket (`sslmode=require` is refused by
    /// [`build_store`](Self::build_store); `sslmode=prefer` connects without TLS), or pass a
    /// [`pool`](Self::pool) made with a TLS connector.
    pub fn connection_string(mut self, connection_string: impl Into<String>) -> Self {
        self.connection = Some(Connection::String(connection_string.into()));
        self
    }

    /// Uses a pool the caller manages. With `listen` (a config for one more connection, used to
    /// `LISTEN` for releases), a graceful stop hands over at once; without it, or while that
    /// connection cannot be made (it is retried in the background), followers wake when the
    /// lease can expire.
    pub fn pool(mut self, pool: Pool, listen: Option<tokio_postgres::Config>) -> Self {
        self.connection = Some(Connection::Pool(pool, listen.map(Box::new)));
        self
    }

    /// The table holding the leases: a lower-case identifier of at most 63 bytes, optionally
    /// schema-qualified. Created on the first connection if missing, which needs `CREATE` on the
    /// schema; a role without it works on a table an owner made with
    /// [`PostgresLeaseStore::setup_sql`]. Default: `leader_election_leases`.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// The election's name (its row in the table). Default: `leader-election`.
    pub fn election(mut self, election: impl Into<String>) -> Self {
        self.election = election.into();
        self
    }

    /// Connections in the pool the builder creates from a connection string; at least 1.
    /// Default: 2.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    leader_election::option_setters!();

    /// Builds the election: [`build_store`](Self::build_store), then
    /// [`LeaderElection::new`] with the options. Connects to nothing:
    /// [`LeaderElection::start`] does, and keeps retrying (with error events) while the server
    /// is down.
    ///
    /// # Errors
    /// As for [`build_store`](Self::build_store).
    pub fn build(self) -> Result<LeaderElection<PostgresLeaseStore>, BuildError> {
        let options = self.options.clone();
        let store = self.build_store()?;
        Ok(LeaderElection::new(store, options)?)
    }

    /// Checks everything like [`build`](Self::build) and returns only the store, for sharing
    /// or wrapping it before [`LeaderElection::new`]; give that the same options, since the
    /// pool's timeouts come from them. Connects to nothing.
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
    /// - [`BuildError::TlsNotEnabled`]: it sets `sslmode=require`;
    /// - [`BuildError::InvalidName`]: a table name that is not one or two lower-case
    ///   identifiers of at most 63 bytes, or an election name that is blank, longer than
    ///   512 bytes or has control characters;
    /// - [`BuildError::Options`]: options that fail [`LeaderElectionOptions::validate`], or a
    ///   pool size of zero;
    /// - [`BuildError::Client`]: the pool cannot be created.
    pub fn build_store(self) -> Result<PostgresLeaseStore, BuildError> {
        self.options.validate()?;
        validate_table(&self.table)?;
        validate_election(&self.election)?;
        let timeout = self.options.operation_timeout();
        let (pool, listen) = match self.connection {
            None => return Err(BuildError::MissingConnection),
            Some(Connection::Pool(pool, listen)) => (pool, listen.map(|c| *c)),
            Some(Connection::String(raw)) => {
                let config = parse_connection_string(&raw, &self.options.instance_id, timeout)?;
                if self.pool_size == 0 {
                    return Err(ConfigError::new("pool_size", "must be at least 1").into());
                }
                (
                    pool_for(config.clone(), self.pool_size, timeout)?,
                    Some(config),
                )
            }
        };
        PostgresLeaseStore::new(pool, listen, &self.table, self.election)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_missing_connection_is_an_error() {
        let err = PostgresLeaderElection::builder().build().unwrap_err();
        assert!(matches!(err, BuildError::MissingConnection), "{err}");
    }

    #[test]
    fn a_bad_connection_string_does_not_echo_the_password() {
        let err = PostgresLeaderElection::builder()
            .connection_string("postgres://app:hunter2@localhost:notaport/db")
            .build()
            .unwrap_err();
        assert!(
            matches!(err, BuildError::InvalidConnectionString(_)),
            "{err}"
        );
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let builder =
            PostgresLeaderElection::builder().connection_string("host=localhost password=hunter2");
        assert!(!format!("{builder:?}").contains("hunter2"));
    }

    #[test]
    fn bad_names_and_options_are_errors() {
        let base = || PostgresLeaderElection::builder().connection_string("host=localhost");
        assert!(matches!(
            base().table("Bad-Name").build().unwrap_err(),
            BuildError::InvalidName { field: "table", .. }
        ));
        assert!(matches!(
            base().election("").build_store().unwrap_err(),
            BuildError::InvalidName {
                field: "election",
                ..
            }
        ));
        assert!(matches!(
            base().pool_size(0).build().unwrap_err(),
            BuildError::Options(e) if e.field == "pool_size"
        ));
        assert!(matches!(
            base()
                .connection_string("host=db sslmode=require")
                .build()
                .unwrap_err(),
            BuildError::TlsNotEnabled { .. }
        ));
        let err = base()
            .renew_interval(Duration::from_secs(60))
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, BuildError::Options(e) if e.field == "renew_interval"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn build_needs_no_server() {
        let election = PostgresLeaderElection::builder()
            .connection_string("host=127.0.0.1 port=1 user=nobody password=hunter2")
            .election("jobs")
            .build()
            .unwrap();
        assert!(!election.is_leader());
        assert!(!format!("{election:?} {:?}", election.store()).contains("hunter2"));
    }
}
