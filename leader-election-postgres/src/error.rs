//! Configuration errors of the PostgreSQL backend.

use leader_election::ConfigError;

/// Why an election on PostgreSQL could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Neither a connection string nor a pool was given.
    #[error("no connection: set a connection string or a pool")]
    MissingConnection,
    /// The connection string could not be parsed. The message never repeats the password, and
    /// is cut short (see [`leader_election::quoted`]) if it repeats a huge part of the input.
    #[error("invalid connection string: {0}")]
    InvalidConnectionString(String),
    /// The table name is not a valid identifier.
    #[error("invalid table name {name}: {rule}")]
    InvalidTable {
        /// The name given, quoted and cut to its first 64 characters by
        /// [`leader_election::quoted`], so that a huge name never floods a log.
        name: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// The election name is empty, too long or has control characters.
    #[error("invalid election name: {0}")]
    InvalidElection(&'static str),
    /// The connection pool could not be created.
    #[error("cannot create the connection pool: {0}")]
    Pool(String),
    /// The election options are invalid.
    #[error(transparent)]
    Options(#[from] ConfigError),
}
