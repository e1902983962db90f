//! [`ZooKeeperLeaderElection::builder`]: an election on Apache ZooKeeper in a few lines.

use std::time::Duration;

use leader_election::{BuildError, ConfigError};

use crate::ZooKeeperConfig;
use crate::store::{DEFAULT_PATH, Settings, ZooKeeperLeaseStore};

/// The longest election path, in bytes.
const MAX_PATH: usize = 1024;

/// The entry point for an election on Apache ZooKeeper: [`ZooKeeperLeaderElection::builder`].
///
/// It has no values; the builder makes a
/// [`LeaderElection<ZooKeeperLeaseStore>`](leader_election::LeaderElection)
/// ([`build`](leader_election::ElectionBuilder::build)) or the store alone
/// ([`build_store`](leader_election::ElectionBuilder::build_store)). From configuration files or
/// the environment, start from a [`ZooKeeperConfig`](crate::ZooKeeperConfig).
#[derive(Debug)]
pub enum ZooKeeperLeaderElection {}

impl ZooKeeperLeaderElection {
    /// A builder with the default path (`/leader-election/leader-election`) and options, and no
    /// connect string yet: set [`connect_string`](ZooKeeperLeaderElectionBuilder::connect_string).
    pub fn builder() -> ZooKeeperLeaderElectionBuilder {
        ZooKeeperLeaderElectionBuilder::default()
    }
}

/// Configures an election on Apache ZooKeeper; made by [`ZooKeeperLeaderElection::builder`]
/// or from a [`ZooKeeperConfig`], which it holds.
///
/// Setters never fail; [`build`](leader_election::ElectionBuilder::build) and
/// [`build_store`](leader_election::ElectionBuilder::build_store) check everything. Nothing is
/// contacted until the election starts.
#[must_use]
#[derive(Debug, Default)]
pub struct ZooKeeperLeaderElectionBuilder {
    pub(crate) config: ZooKeeperConfig,
}

leader_election::backend::config_setters! {
    ZooKeeperLeaderElectionBuilder { config }
    /// The ensemble's servers, as ZooKeeper's clients write them: `host:port` pairs separated
    /// by commas, optionally followed by a chroot (`zk1:2181,zk2:2181,zk3:2181/apps`).
    connect_string: impl Into<String>;
    /// The election's path: absolute, not ending in `/` (the store creates it, and its
    /// parents, as persistent znodes). Default: `/leader-election/leader-election`.
    path: impl Into<String>;
    /// The session timeout asked of the ensemble; at least the lease duration, which is the
    /// default. The ensemble grants one between its `minSessionTimeout` and
    /// `maxSessionTimeout` (by default 2 and 20 ticks): the store refuses to connect when it
    /// grants less than the lease.
    session_timeout: Duration;
    /// How long the client waits on a silent connection before it tries another server.
    /// Default: the client's, 2/5 of the session timeout.
    connection_timeout: Duration;
}

impl ZooKeeperLeaderElectionBuilder {
    /// The election's path as `/leader-election/<name>`: a shorthand for [`path`](Self::path).
    pub fn election(self, name: &str) -> Self {
        self.path(format!("/leader-election/{name}"))
    }
}

/// Checks an election path: absolute, not `/` itself, no trailing or doubled `/`, no `.` or
/// `..` segment, no control characters, at most 1024 bytes.
pub(crate) fn validate_path(path: &str) -> Result<(), BuildError> {
    let invalid = |rule: &str| BuildError::invalid_name("path", path, rule);
    if !path.starts_with('/') {
        return Err(invalid("must be absolute (start with `/`)"));
    }
    if path.ends_with('/') {
        return Err(invalid("must not end with `/`"));
    }
    if path.len() > MAX_PATH {
        return Err(invalid("must be at most 1024 bytes"));
    }
    if path
        .chars()
        .any(|c| c.is_control() || c == '\u{fff0}' || c == '\u{fffe}' || c == '\u{ffff}')
    {
        return Err(invalid("must not contain control characters"));
    }
    for segment in path[1..].split('/') {
        if segment.is_empty() {
            return Err(invalid("must not contain `//`"));
        }
        if segment == "." || segment == ".." {
            return Err(invalid("must not contain `.` or `..` segments"));
        }
        if segment == "zookeeper" && path.starts_with("/zookeeper") {
            return Err(invalid(
                "must not be under /zookeeper, which ZooKeeper reserves",
            ));
        }
    }
    Ok(())
}

leader_election::backend::election_builder! {
    /// The store alone, checked like [`build`](leader_election::ElectionBuilder::build) (see
    /// [`ElectionBuilder::build_store`](leader_election::ElectionBuilder::build_store)). Connects
    /// to nothing.
    ///
    /// # Errors
    /// - [`BuildError::MissingConnection`]: no connect string;
    /// - [`BuildError::InvalidConnectionString`]: an empty one;
    /// - [`BuildError::InvalidName`]: a bad path;
    /// - [`BuildError::Options`]: options that fail
    ///   [`LeaderElectionOptions::validate`](leader_election::LeaderElectionOptions::validate), or
    ///   a session timeout shorter than the lease.
    ZooKeeperLeaderElectionBuilder => ZooKeeperLeaseStore, store_from
}

/// The store of `builder`, whose options
/// [`election_builder!`](leader_election::backend::election_builder) has checked.
fn store_from(builder: ZooKeeperLeaderElectionBuilder) -> Result<ZooKeeperLeaseStore, BuildError> {
    let config = builder.config;
    let path = config.path.unwrap_or_else(|| DEFAULT_PATH.to_owned());
    validate_path(&path)?;
    let Some(connect_string) = config.connect_string else {
        return Err(BuildError::MissingConnection {
            backend: "ZooKeeper",
            hint: "set a connect string (host:port,host:port/chroot)",
        });
    };
    if connect_string.trim().is_empty() {
        return Err(BuildError::InvalidConnectionString(
            "the ZooKeeper connect string is empty".to_owned(),
        ));
    }
    let lease = config.options.lease_duration;
    let session_timeout = config.session_timeout.unwrap_or(lease);
    if session_timeout < lease {
        return Err(ConfigError::new(
            "session_timeout",
            format!(
                "must be at least the lease duration ({lease:?}), got {session_timeout:?}: a \
                 crashed leader's znode must outlive its lease"
            ),
        )
        .into());
    }
    Ok(ZooKeeperLeaseStore::new(Settings {
        connect_string,
        path,
        session_timeout,
        lease,
        connection_timeout: config.connection_timeout,
    }))
}

#[cfg(test)]
mod tests {
    use leader_election::{ElectionBuilder, LeaderElectionOptions};

    use super::*;

    #[test]
    fn paths_are_checked() {
        for good in ["/a", "/leader-election/jobs", "/a/b.c/d-e"] {
            assert!(validate_path(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "/",
            "/a/",
            "/a//b",
            "/a/./b",
            "/a/..",
            "/zookeeper/x",
            "/a\nb",
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_session_must_outlive_the_lease() {
        let mut options = LeaderElectionOptions::default();
        options.lease_duration = Duration::from_secs(20);
        let err = ZooKeeperLeaderElection::builder()
            .connect_string("127.0.0.1:2181")
            .options(options.clone())
            .session_timeout(Duration::from_secs(5))
            .build_store()
            .unwrap_err();
        assert!(
            matches!(err, BuildError::Options(ref e) if e.field == "session_timeout"),
            "{err}"
        );
        let store = ZooKeeperLeaderElection::builder()
            .connect_string("127.0.0.1:2181")
            .election("jobs")
            .options(options)
            .build_store()
            .unwrap();
        assert_eq!(store.session_timeout(), Duration::from_secs(20));
        assert_eq!(store.path(), "/leader-election/jobs");
        assert!(matches!(
            ZooKeeperLeaderElection::builder()
                .build_store()
                .unwrap_err(),
            BuildError::MissingConnection { .. }
        ));
        assert!(matches!(
            ZooKeeperLeaderElection::builder()
                .connect_string("127.0.0.1:2181")
                .path("relative")
                .build_store()
                .unwrap_err(),
            BuildError::InvalidName { .. }
        ));
    }
}
