//! The Redis deployment started by the tester (`--spawn-redis [TOPOLOGY]`), so that the server
//! itself can be a fault: a standalone `redis-server` restarted (losing every key, as a server
//! without persistence does) or paused, a Sentinel deployment failed over. Each topology is
//! the workspace's fixture for it ([`RedisServer`], [`RedisSentinel`]), with the tester's error
//! type.
//!
//! A topology says which server faults it offers ([`Topology::server_faults`]) and whether a
//! contender's connection can be cut by the partition proxy ([`Topology::proxies`]). A Cluster
//! deployment plugs in as one more variant of [`SpawnedRedis`]: its fixture's `url()`, and
//! `failover_owner_of(key)` (fail over the primary holding the election's slot) for
//! [`SpawnedRedis::failover`].

use clap::ValueEnum;
use leader_election_test_support::{RedisOptions, RedisSentinel, RedisServer};
use tokio::time::Instant;

use crate::report::FaultKind;

/// Which Redis deployment `--spawn-redis` starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Topology {
    /// One `redis-server` without persistence.
    Standalone,
    /// One primary, two replicas and three sentinels; the election goes through the sentinels.
    Sentinel,
    /// A Redis Cluster (not yet supported).
    Cluster,
}

impl Topology {
    /// The server faults a deployment of this topology offers, in the order `mixed` injects
    /// them.
    pub(crate) fn server_faults(self) -> &'static [FaultKind] {
        match self {
            Self::Standalone => &[FaultKind::ServerRestart, FaultKind::ServerPause],
            Self::Sentinel | Self::Cluster => &[FaultKind::ServerFailover],
        }
    }

    /// Whether the partition proxy can cut a contender off: only when the client connects to
    /// the address in its URL. Through Sentinel (or a cluster) it connects to the addresses the
    /// deployment gives it, around the proxy.
    pub(crate) fn proxies(self) -> bool {
        self == Self::Standalone
    }

    /// The name used on the command line.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Standalone => "standalone",
            Self::Sentinel => "sentinel",
            Self::Cluster => "cluster",
        }
    }
}

/// A deployment the tester started; every process is killed (by PID) when dropped.
#[derive(Debug)]
pub(crate) enum SpawnedRedis {
    /// `--spawn-redis standalone`.
    Standalone(RedisServer),
    /// `--spawn-redis sentinel`.
    Sentinel(RedisSentinel),
}

/// When a failover was complete: the old primary could no longer be written.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FailoverDone {
    /// When the promoted replica answered as the primary.
    pub(crate) promoted: Instant,
    /// When the old primary followed the new one.
    pub(crate) completed: Instant,
    /// What happened, for the live output.
    pub(crate) old_primary: u16,
    /// The promoted server's port.
    pub(crate) new_primary: u16,
}

impl SpawnedRedis {
    /// Starts a deployment of `topology` from the binaries on `PATH`, on free ports of
    /// 127.0.0.1.
    ///
    /// # Errors
    /// When a process cannot be started, the deployment is not ready in time, or the topology
    /// is not supported yet.
    pub(crate) async fn start(topology: Topology) -> Result<Self, String> {
        match topology {
            Topology::Standalone => RedisServer::try_start(RedisOptions::default())
                .await
                .map(Self::Standalone),
            Topology::Sentinel => RedisSentinel::try_start().await.map(Self::Sentinel),
            Topology::Cluster => Err("--spawn-redis cluster is not yet supported".into()),
        }
    }

    /// The URL the contenders elect through.
    pub(crate) fn url(&self) -> String {
        match self {
            Self::Standalone(server) => server.url(),
            Self::Sentinel(deployment) => deployment.url(),
        }
    }

    /// One line saying what runs where, for the live output.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Standalone(server) => format!(
                "started redis-server (pid {}) at {}",
                server.pid().unwrap_or(0),
                server.url()
            ),
            Self::Sentinel(deployment) => format!(
                "started a Sentinel deployment (servers {:?}, sentinels {:?}) at {}",
                deployment
                    .servers()
                    .iter()
                    .map(RedisServer::port)
                    .collect::<Vec<_>>(),
                deployment.sentinel_ports(),
                deployment.url()
            ),
        }
    }

    /// Kills the server (SIGKILL: every key is lost) and starts a new one on the same port.
    ///
    /// # Errors
    /// When the new server does not start, or the topology has no single server to restart.
    pub(crate) async fn restart(&self) -> Result<(), String> {
        match self {
            Self::Standalone(server) => server.try_restart().await,
            Self::Sentinel(_) => Err("a Sentinel deployment is failed over, not restarted".into()),
        }
    }

    /// Stops (`true`, SIGSTOP) or resumes (`false`, SIGCONT) the server process: connections
    /// stay open but nothing is answered, as with a frozen VM. Only a standalone server.
    pub(crate) async fn set_paused(&self, paused: bool) {
        if let Self::Standalone(server) = self {
            if paused {
                server.pause().await;
            } else {
                server.resume().await;
            }
        }
    }

    /// Fails over the primary holding the election (`SENTINEL FAILOVER`) and waits until the
    /// failover is complete (the old primary a replica of the new one, ~10 s with Sentinel).
    ///
    /// # Errors
    /// When the topology has no replicas, or the failover does not complete in time.
    pub(crate) async fn failover(&self) -> Result<FailoverDone, String> {
        match self {
            Self::Standalone(_) => Err("a standalone server has no replica to fail over to".into()),
            Self::Sentinel(deployment) => {
                deployment
                    .try_failover()
                    .await
                    .map(|failover| FailoverDone {
                        promoted: failover.promoted,
                        completed: failover.completed,
                        old_primary: failover.old_primary,
                        new_primary: failover.new_primary,
                    })
            }
        }
    }
}
