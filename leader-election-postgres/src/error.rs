//! Configuration errors of the PostgreSQL backend.

use leader_election::ConfigError;

/// Why an election on PostgreSQL could not be built.
///
/// The variants are named alike in every backend crate (`MissingConnection`,
/// `InvalidConnectionString`, `InvalidName`, `TlsNotEnabled`, `Options`, `Client`). Never
/// contains a password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Neither a connection string nor a pool was given.
    #[error("no connection: set a connection string or a pool")]
    MissingConnection,
    /// The connection string could not be parsed. The message never repeats the password, and
    /// is cut short (see [`leader_election::quoted`]) if it repeats a huge part of the input.
    #[error("invalid connection string: {0}")]
    InvalidConnectionString(String),
    /// The table or election name breaks its rule.
    #[error("invalid {field} name {name}: {rule}")]
    InvalidName {
        /// The setting at fault: `table` or `election`.
        field: &'static str,
        /// The name given, quoted and cut to its first 64 characters by
        /// [`leader_election::quoted`], so that a huge name never floods a log.
        name: String,
        /// The rule it breaks.
        rule: String,
    },
    /// The connection string requires TLS, which this crate does not support yet: connect over
    /// a trusted network or a local socket, or pass a [`pool`](crate::PostgresLeaderElectionBuilder::pool)
    /// made with a TLS connector.
    #[error(
        "the connection string sets {setting}, but leader-election-postgres does not support TLS \
         yet: pass a pool made with a TLS connector"
    )]
    TlsNotEnabled {
        /// The setting that asks for TLS.
        setting: &'static str,
    },
    /// A setting breaks its rule: the election options fail
    /// [`LeaderElectionOptions::validate`](leader_election::LeaderElectionOptions::validate),
    /// or `pool_size` is zero. The error names the field.
    #[error(transparent)]
    Options(#[from] ConfigError),
    /// The connection pool could not be created.
    #[error("cannot create the connection pool: {0}")]
    Client(String),
}
