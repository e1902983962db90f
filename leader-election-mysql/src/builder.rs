//! [`MysqlLeaderElection::builder`]: an election on MySQL or MariaDB in a few lines.

use leader_election::backend::tls::TlsSettings;
use leader_election::backend::{Secret, redact_url};
use leader_election::{BuildError, ConfigError};
use mysql_async::{Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};

use crate::MysqlConfig;
use crate::names::{validate_election, validate_table};
use crate::store::{DEFAULT_ELECTION, DEFAULT_TABLE, MysqlLeaseStore};

/// The connections in the pool the builder creates, unless
/// [`pool_size`](MysqlLeaderElectionBuilder::pool_size) says otherwise.
pub const DEFAULT_POOL_SIZE: usize = 2;

/// The entry point for an election on MySQL or MariaDB: [`MysqlLeaderElection::builder`].
///
/// It has no values; the builder makes a
/// [`LeaderElection<MysqlLeaseStore>`](leader_election::LeaderElection)
/// ([`build`](leader_election::ElectionBuilder::build)) or the store alone
/// ([`build_store`](leader_election::ElectionBuilder::build_store)). From configuration files or
/// the environment, start from a [`MysqlConfig`](crate::MysqlConfig).
#[derive(Debug)]
pub enum MysqlLeaderElection {}

impl MysqlLeaderElection {
    /// A builder with the default table (`leader_election_leases`), election name
    /// (`leader-election`) and options, and no connection yet: set
    /// [`url`](MysqlLeaderElectionBuilder::url) or [`pool`](MysqlLeaderElectionBuilder::pool).
    pub fn builder() -> MysqlLeaderElectionBuilder {
        MysqlLeaderElectionBuilder::default()
    }
}

/// Configures an election on MySQL or MariaDB; made by [`MysqlLeaderElection::builder`] or
/// from a [`MysqlConfig`], which it holds.
///
/// Setters never fail; [`build`](leader_election::ElectionBuilder::build) and
/// [`build_store`](leader_election::ElectionBuilder::build_store) check everything. Nothing is
/// contacted until the election starts.
#[must_use]
#[derive(Debug, Default)]
pub struct MysqlLeaderElectionBuilder {
    pub(crate) config: MysqlConfig,
    /// A pool the caller manages, in place of `config.url`: whichever was set last wins.
    pub(crate) pool: Option<CallersPool>,
    /// The `tls_*` setters', and the configuration's files (taken out of it by
    /// [`into_builder`](leader_election::BackendConfig::into_builder)).
    pub(crate) tls: TlsSettings,
}

/// A pool the caller manages.
pub(crate) struct CallersPool(Pool);

impl std::fmt::Debug for CallersPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A pool's own `Debug` shows its options, password included.
        f.write_str("pool")
    }
}

impl MysqlLeaderElectionBuilder {
    /// Connects with a URL: `mysql://user:password@host:3306/database`, with the query
    /// parameters of the `mysql_async` client (`require_ssl=true` for TLS, `verify_ca=false`,
    /// `socket=/run/mysqld/mysqld.sock` …). Connections go where the URL says: a TCP address
    /// stays TCP (the client's habit of moving connections to 127.0.0.1 onto the server's Unix
    /// socket is off unless the URL sets `prefer_socket=true`). The database is the one holding the
    /// table (unless
    /// [`table`](Self::table) names one). The password never appears in `Debug` output or
    /// errors.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.config.url = Some(Secret::from(url.into()));
        self.pool = None;
        self
    }

    /// Uses a pool the caller manages, with its own TLS. Its connections run this store's
    /// transactions; they must not be shared with code that leaves a transaction open.
    pub fn pool(mut self, pool: Pool) -> Self {
        self.pool = Some(CallersPool(pool));
        self.config.url = None;
        self
    }
}

leader_election::backend::config_setters! {
    MysqlLeaderElectionBuilder { config }
    /// The table holding the leases: ASCII letters, digits, `_` and `$`, at most 64 bytes,
    /// optionally database-qualified (`ops.leases`). Created on the first connection if
    /// missing, which needs `CREATE`; an account without it works on a table an owner made with
    /// [`MysqlLeaseStore::setup_sql`]. Default: `leader_election_leases`.
    table: impl Into<String>;
    /// The election's name (its row in the table). Default: `leader-election`.
    election: impl Into<String>;
    /// Connections in the pool the builder creates from a URL; at least 1. Default: 2.
    pool_size: usize;
}

impl MysqlLeaderElectionBuilder {
    /// The pool for `url`, configured for leader election.
    fn pool_for(&self, url: &str) -> Result<Pool, BuildError> {
        let opts = Opts::from_url(url).map_err(|e| BuildError::InvalidUrl {
            field: "url",
            url: leader_election::backend::quoted(&redact_url(url)),
            reason: e.to_string(),
        })?;
        let pool_size = self.config.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
        if pool_size == 0 {
            return Err(ConfigError::new("pool_size", "must be at least 1").into());
        }
        let constraints = PoolConstraints::new(0, pool_size)
            .ok_or_else(|| ConfigError::new("pool_size", "must be at least 1"))?;
        // A lock wait never outlasts the operation it serves (the server's smallest is 1 s).
        let lock_wait = self.config.options.operation_timeout().as_secs().max(1);
        let builder = OptsBuilder::from_opts(opts)
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    // The store resets a connection only when a batch did not finish (see
                    // `MysqlLeaseStore`): a reset after every batch would cost a round trip.
                    .with_reset_connection(false),
            )
            .init(vec![format!(
                "SET SESSION innodb_lock_wait_timeout = {lock_wait}"
            )]);
        // The client would otherwise move a connection to 127.0.0.1 onto the server's Unix
        // socket, past whatever the URL names (a proxy, a port with TLS): the URL decides.
        let builder = if url.contains("prefer_socket=") {
            builder
        } else {
            builder.prefer_socket(false)
        };
        let builder = tls::apply(builder, &self.tls)?;
        if Opts::from(builder.clone()).ssl_opts().is_some() {
            tls::provider();
        }
        Ok(Pool::new(builder))
    }
}

/// The `tls_*` setters (feature `tls`): CAs to trust instead of the built-in web roots (several may
/// be given), and a client certificate for an account that requires one (`REQUIRE X509`). Any of
/// them turns TLS on and makes it required, with the server's certificate and host name verified.
/// Files are read, and everything checked, by
/// [`build_store`](leader_election::ElectionBuilder::build_store).
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
impl leader_election::TlsBuilder for MysqlLeaderElectionBuilder {
    fn tls_settings(&mut self) -> &mut TlsSettings {
        &mut self.tls
    }
}

mod tls {
    use super::{BuildError, OptsBuilder, TlsSettings};

    /// Makes sure rustls has a process-wide default provider, which `mysql_async` builds its
    /// TLS configuration from (it takes none from its caller): ring, the provider of every
    /// backend here, unless the application installed one first. Without it, a program that
    /// links both of rustls's providers (the AWS SDK brings aws-lc-rs) panics at the first
    /// TLS connection.
    #[cfg(feature = "tls")]
    pub(super) fn provider() {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Another thread may have installed one meanwhile: either way there is one.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    }

    /// Without feature `tls` there is no TLS connection to make.
    #[cfg(not(feature = "tls"))]
    pub(super) fn provider() {}

    /// `builder` with TLS as `settings` say: nothing when they are empty.
    #[cfg(feature = "tls")]
    pub(super) fn apply(
        builder: OptsBuilder,
        settings: &TlsSettings,
    ) -> Result<OptsBuilder, BuildError> {
        use mysql_async::{ClientIdentity, SslOpts};
        if settings.is_empty() {
            return Ok(builder);
        }
        let roots = settings.ca_pems()?.into_iter().map(Into::into).collect();
        let identity = settings
            .identity_pems()?
            .map(|(cert, key)| ClientIdentity::new(cert.into(), key.into()));
        let ssl = SslOpts::default()
            .with_root_certs(roots)
            .with_disable_built_in_roots(!settings.trusts_system_roots())
            .with_client_identity(identity);
        Ok(builder.ssl_opts(ssl))
    }

    /// Without feature `tls`, any TLS setting is refused.
    #[cfg(not(feature = "tls"))]
    pub(super) fn apply(
        builder: OptsBuilder,
        settings: &TlsSettings,
    ) -> Result<OptsBuilder, BuildError> {
        if settings.is_empty() {
            Ok(builder)
        } else {
            Err(BuildError::TlsNotEnabled {
                krate: "leader-election-mysql",
                setting: "tls_*".to_owned(),
            })
        }
    }
}

leader_election::backend::election_builder! {
    /// The store alone, checked like [`build`](leader_election::ElectionBuilder::build) (see
    /// [`ElectionBuilder::build_store`](leader_election::ElectionBuilder::build_store)). Connects
    /// to nothing.
    ///
    /// A pool made from a URL holds up to [`pool_size`](Self::pool_size) connections, and each
    /// of them waits for a row lock at most `operation_timeout` (at least 1 s:
    /// `innodb_lock_wait_timeout`).
    ///
    /// # Errors
    /// - [`BuildError::MissingConnection`]: neither a URL nor a pool;
    /// - [`BuildError::InvalidUrl`]: the URL does not parse (shown without its password);
    /// - [`BuildError::Tls`]: a CA or client certificate cannot be read, or TLS settings come
    ///   with a [`pool`](Self::pool) (which brings its own TLS);
    /// - [`BuildError::TlsNotEnabled`]: TLS settings without feature `tls`;
    /// - [`BuildError::InvalidName`]: a bad table or election name;
    /// - [`BuildError::Options`]: options that fail
    ///   [`LeaderElectionOptions::validate`](leader_election::LeaderElectionOptions::validate), or
    ///   a pool size of zero.
    MysqlLeaderElectionBuilder => MysqlLeaseStore, store_from
}

/// The store of `builder`, whose options
/// [`election_builder!`](leader_election::backend::election_builder) has checked.
fn store_from(builder: MysqlLeaderElectionBuilder) -> Result<MysqlLeaseStore, BuildError> {
    let table = builder.config.table.as_deref().unwrap_or(DEFAULT_TABLE);
    validate_table(table)?;
    let election = builder
        .config
        .election
        .as_deref()
        .unwrap_or(DEFAULT_ELECTION);
    validate_election(election)?;
    let pool = match (&builder.pool, &builder.config.url) {
        (None, None) => {
            return Err(BuildError::MissingConnection {
                backend: "MySQL",
                hint: "set a URL or a pool",
            });
        }
        (Some(_), _) if !builder.tls.is_empty() => {
            return Err(BuildError::tls(
                "pool",
                "TLS settings apply to the connections the builder makes; a pool made by \
                 the caller brings its own TLS",
            ));
        }
        (Some(CallersPool(pool)), _) => pool.clone(),
        (None, Some(url)) => builder.pool_for(url.expose())?,
    };
    MysqlLeaseStore::new(pool, table, election)
}

#[cfg(test)]
mod tests {
    use super::*;
    use leader_election::ElectionBuilder;

    #[test]
    fn debug_never_shows_a_password_of_the_url_or_of_a_pool() {
        let url = MysqlLeaderElection::builder().url("mysql://app:hunter2@db/app");
        assert_eq!(
            format!("{url:?}").matches("mysql://app:***@db/app").count(),
            1,
            "{url:?}"
        );
        let pool = Pool::new("mysql://app:hunter2@db/app");
        let pooled = MysqlLeaderElection::builder().pool(pool);
        for shown in [format!("{url:?}"), format!("{pooled:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    #[test]
    fn the_last_of_a_url_and_a_pool_wins() {
        let pool = || Pool::new("mysql://app:hunter2@db/app");
        let bad = "postgres://app:hunter2@db/app";
        let err = MysqlLeaderElection::builder()
            .pool(pool())
            .url(bad)
            .build_store()
            .unwrap_err();
        assert!(matches!(err, BuildError::InvalidUrl { .. }), "{err}");
        MysqlLeaderElection::builder()
            .url(bad)
            .pool(pool())
            .build_store()
            .expect("the pool, not the URL");
    }
}
