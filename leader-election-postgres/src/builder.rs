//! [`PostgresLeaderElection::builder`]: an election on PostgreSQL in a few lines.

use std::fmt;
use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use leader_election::{LeaderElection, LeaderElectionOptions};
use tokio_postgres::NoTls;

use crate::error::BuildError;
use crate::names::{validate_election, validate_table};
use crate::store::{DEFAULT_ELECTION, DEFAULT_TABLE, PostgresLeaseStore};

/// The entry point for an election on PostgreSQL: [`PostgresLeaderElection::builder`].
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

/// An election on PostgreSQL as configuration, for loading from the application's config files
/// with serde. Missing fields take their defaults; unknown fields are errors.
///
/// ```
/// use leader_election_postgres::PostgresConfig;
///
/// let config: PostgresConfig = serde_json::from_str(r#"{
///     "connection_string": "postgres://app:secret@db:5432/app",
///     "election": "billing",
///     "options": { "lease_duration": "15s", "renew_interval": "5s" }
/// }"#).unwrap();
/// let election = config.into_builder().build().unwrap();
/// assert_eq!(election.store().election(), "billing");
/// assert!(!format!("{:?}", election.store()).contains("secret"));
/// ```
#[derive(Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PostgresConfig {
    /// See [`PostgresLeaderElectionBuilder::connection_string`]. Default: none (required).
    pub connection_string: Option<String>,
    /// See [`PostgresLeaderElectionBuilder::table`]. Default: `leader_election_leases`.
    pub table: String,
    /// See [`PostgresLeaderElectionBuilder::election`]. Default: `leader-election`.
    pub election: String,
    /// See [`PostgresLeaderElectionBuilder::pool_size`]. Default: 2.
    pub pool_size: usize,
    /// The election options. Default: [`LeaderElectionOptions::default`].
    pub options: LeaderElectionOptions,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            connection_string: None,
            table: DEFAULT_TABLE.to_owned(),
            election: DEFAULT_ELECTION.to_owned(),
            pool_size: 2,
            options: LeaderElectionOptions::default(),
        }
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field(
                "connection_string",
                &self.connection_string.as_ref().map(|_| "(redacted)"),
            )
            .field("table", &self.table)
            .field("election", &self.election)
            .field("pool_size", &self.pool_size)
            .field("options", &self.options)
            .finish()
    }
}

impl PostgresConfig {
    /// The configuration from environment variables: `LEADER_ELECTION_POSTGRES_URL` (a
    /// connection string), `LEADER_ELECTION_POSTGRES_TABLE`, `LEADER_ELECTION_POSTGRES_ELECTION`,
    /// `LEADER_ELECTION_POSTGRES_POOL_SIZE`, and every election option as
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
                "LEADER_ELECTION_POSTGRES_URL" => config.connection_string = Some(value),
                "LEADER_ELECTION_POSTGRES_TABLE" => config.table = value,
                "LEADER_ELECTION_POSTGRES_ELECTION" => config.election = value,
                "LEADER_ELECTION_POSTGRES_POOL_SIZE" => {
                    config.pool_size = value.trim().parse().map_err(|_| {
                        leader_election::ConfigError::new(
                            "pool_size",
                            format!("`{value}` is not a whole number"),
                        )
                    })?;
                }
                _ => rest.push((name, value)),
            }
        }
        config.options = config
            .options
            .with_vars(leader_election::ENV_PREFIX, rest)?;
        Ok(config)
    }

    /// A builder holding this configuration; [`build`](PostgresLeaderElectionBuilder::build)
    /// checks it.
    pub fn into_builder(self) -> PostgresLeaderElectionBuilder {
        PostgresLeaderElectionBuilder {
            connection: self.connection_string.map(Connection::String),
            table: self.table,
            election: self.election,
            pool_size: self.pool_size,
            options: self.options,
        }
    }
}

/// Configures an election on PostgreSQL; made by [`PostgresLeaderElection::builder`].
///
/// Setters never fail; [`build`](Self::build) checks everything.
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
            pool_size: 2,
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
    /// trusted network or a local socket.
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

    /// Connections in the pool the builder creates. Default: 2.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    leader_election::option_setters!();

    /// Builds the election. Connects to nothing: [`LeaderElection::start`] does, and keeps
    /// retrying (with error events) while the server is down.
    ///
    /// # Errors
    /// - [`BuildError::MissingConnection`]: neither a connection string nor a pool;
    /// - [`BuildError::InvalidConnectionString`]: it does not parse (the message never holds
    ///   the password);
    /// - [`BuildError::InvalidTable`], [`BuildError::InvalidElection`]: bad names;
    /// - [`BuildError::Pool`]: a pool size of zero;
    /// - [`BuildError::Options`]: options that fail [`LeaderElectionOptions::validate`].
    pub fn build(self) -> Result<LeaderElection<PostgresLeaseStore>, BuildError> {
        self.options.validate()?;
        validate_table(&self.table)?;
        validate_election(&self.election)?;
        let timeout = self.options.operation_timeout();
        let (pool, listen) = match self.connection {
            None => return Err(BuildError::MissingConnection),
            Some(Connection::Pool(pool, listen)) => (pool, listen.map(|c| *c)),
            Some(Connection::String(raw)) => {
                let mut config = tokio_postgres::Config::from_str(&raw).map_err(|e| {
                    // The cause says what is wrong ("unknown option `x`"); it may repeat a key of
                    // the input, never a value (so never the password).
                    let reason = std::error::Error::source(&e)
                        .map_or_else(|| e.to_string(), ToString::to_string);
                    BuildError::InvalidConnectionString(leader_election::quoted(&reason))
                })?;
                if config.get_application_name().is_none() {
                    config.application_name(&self.options.instance_id);
                }
                config.connect_timeout(timeout);
                // A statement the client gave up on stops on the server too.
                let statement_timeout = format!("-c statement_timeout={}", timeout.as_millis());
                let server_options = match config.get_options() {
                    Some(existing) => format!("{existing} {statement_timeout}"),
                    None => statement_timeout,
                };
                config.options(&server_options);
                if self.pool_size == 0 {
                    return Err(BuildError::Pool("the pool size must be at least 1".into()));
                }
                let manager = Manager::from_config(
                    config.clone(),
                    NoTls,
                    ManagerConfig {
                        recycling_method: RecyclingMethod::Fast,
                    },
                );
                let pool = Pool::builder(manager)
                    .max_size(self.pool_size)
                    .runtime(Runtime::Tokio1)
                    .wait_timeout(Some(timeout))
                    .create_timeout(Some(timeout))
                    .recycle_timeout(Some(timeout))
                    .build()
                    .map_err(|e| BuildError::Pool(e.to_string()))?;
                (pool, Some(config))
            }
        };
        let store = PostgresLeaseStore::new(pool, listen, &self.table, self.election)?;
        Ok(LeaderElection::new(store, self.options)?)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn config_loads_from_environment_variables() {
        let vars = [
            (
                "LEADER_ELECTION_POSTGRES_URL",
                "host=db user=app password=hunter2",
            ),
            ("LEADER_ELECTION_POSTGRES_ELECTION", "jobs"),
            ("LEADER_ELECTION_POSTGRES_POOL_SIZE", "3"),
            ("LEADER_ELECTION_RETRY_JITTER", "0.2"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = PostgresConfig::from_vars(vars).unwrap();
        assert_eq!(config.election, "jobs");
        assert_eq!(config.pool_size, 3);
        assert_eq!(config.options.retry_jitter, 0.2);
        assert!(!format!("{config:?}").contains("hunter2"));
        let err = PostgresConfig::from_vars([(
            "LEADER_ELECTION_POSTGRES_POOL_SIZE".to_owned(),
            "many".to_owned(),
        )])
        .unwrap_err();
        assert_eq!(err.field, "pool_size");
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = serde_json::from_str::<PostgresConfig>(r#"{"tabel": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("tabel"), "{err}");
        let err =
            serde_json::from_str::<PostgresConfig>(r#"{"options": {"lease_duration": "forever"}}"#)
                .unwrap_err();
        assert!(err.to_string().contains("duration"), "{err}");
        let config: PostgresConfig = serde_json::from_str("{}").unwrap();
        assert!(matches!(
            config.into_builder().build().unwrap_err(),
            BuildError::MissingConnection
        ));
    }

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
            BuildError::InvalidTable { .. }
        ));
        assert!(matches!(
            base().election("").build().unwrap_err(),
            BuildError::InvalidElection(_)
        ));
        assert!(matches!(
            base().pool_size(0).build().unwrap_err(),
            BuildError::Pool(_)
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
