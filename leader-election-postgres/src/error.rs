//! Configuration errors of the PostgreSQL backend.

use leader_election::ConfigError;

/// Why an election on PostgreSQL could not be built.
///
/// The variants are named alike in every backend crate (`MissingConnection`,
/// `InvalidConnectionString`, `InvalidName`, `TlsNotEnabled`, `Options`, `Client`; `Tls` for
/// the TLS settings). Never contains a password nor a private key.
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
    /// The connection string asks for TLS (`sslmode=require`, `verify-ca` or `verify-full`)
    /// or TLS settings are given, but the crate was built without its `tls` feature.
    #[error(
        "the connection string or the builder sets {setting}, but leader-election-postgres was \
         built without its `tls` feature"
    )]
    TlsNotEnabled {
        /// The setting that asks for TLS.
        setting: &'static str,
    },
    /// A TLS setting cannot be used: a CA or client certificate file is unreadable, PEM holds
    /// no certificate or no private key, a client key is set without its certificate (or the
    /// reverse), a verifying `sslmode` has no CA (none given, none in the system's store), or
    /// TLS settings come with `sslmode=disable`. Never contains a key's bytes.
    #[error("invalid TLS setting {setting}: {reason}")]
    Tls {
        /// The setting at fault: `tls_ca` (also for `sslrootcert`), `tls_client_cert`
        /// (`sslcert`), `tls_client_key` (`sslkey`), `sslmode`, or `pool` (TLS settings with a
        /// pool made by the caller and no connection to listen on).
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
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
