//! The Redis deployment started by the tester (`--spawn-redis [TOPOLOGY]`), so that the server
//! itself can be a fault: a standalone `redis-server` restarted (losing every key, as a server
//! without persistence does) or paused, a Sentinel deployment or a Redis Cluster failed over.
//! Each topology is the workspace's fixture for it ([`RedisServer`], [`RedisSentinel`],
//! [`RedisCluster`]), with the tester's error type.
//!
//! A topology says which server faults it offers ([`Topology::server_faults`]) and whether a
//! contender's connection can be cut by the partition proxy ([`Topology::proxies`]). A Redis
//! Cluster is failed over by a crash: the primary serving the election's slot is killed, the
//! cluster promotes its replica by itself, and the killed node is started again, so that it
//! rejoins as a replica and the next failover finds the topology whole. (A coordinated
//! `CLUSTER FAILOVER` lets the replica catch up first, so the leader keeps its lease and no
//! new term begins: nothing for the tester's recovery measure to see.)

use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use leader_election_fixtures::redis::{ClusterOptions, RedisCluster};
use leader_election_fixtures::{RedisOptions, RedisSentinel, RedisServer};
use tokio::time::Instant;

use crate::backends::{BoxFuture, FailoverDone, Server};
use crate::faults::FaultKind;
use crate::schedule::FAILOVER_COMPLETES;

/// How long after a failover in the spawned cluster another one can get the primaries' votes:
/// two `cluster-node-timeout`s (1 s each), and a margin.
const CLUSTER_VOTES_AGAIN_MS: f64 = 3000.0;

/// Which Redis deployment `--spawn-redis` starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Topology {
    /// One `redis-server` without persistence.
    Standalone,
    /// One primary, two replicas and three sentinels; the election goes through the sentinels.
    Sentinel,
    /// Three primaries with a replica each; the election's slot lives on one primary.
    Cluster,
}

impl Topology {
    /// The server faults a deployment of this topology offers, in the order `mixed` injects
    /// them.
    pub(crate) fn server_faults(self) -> &'static [FaultKind] {
        match self {
            Self::Standalone => &[FaultKind::ServerRestart, FaultKind::ServerPause],
            Self::Sentinel if sentinel_partitions().is_ok() => {
                &[FaultKind::ServerFailover, FaultKind::ServerPartition]
            }
            Self::Sentinel => &[FaultKind::ServerFailover],
            Self::Cluster => &[FaultKind::ServerFailover, FaultKind::ServerHandover],
        }
    }

    /// Whether the partition proxy can cut a contender off: only when the client connects to
    /// the address in its URL. Through Sentinel (or a cluster) it connects to the addresses the
    /// deployment gives it, around the proxy.
    pub(crate) fn proxies(self) -> bool {
        self == Self::Standalone
    }

    /// The `min_replica_acks` the contenders use unless `--redis-min-replica-acks` says
    /// otherwise: both replicas behind Sentinel, so that a failover cannot leave the old
    /// primary granting a lease the new one grants too; `None` (the Redis backend's default)
    /// elsewhere.
    pub(crate) fn default_min_replica_acks(self) -> Option<u32> {
        match self {
            Self::Sentinel => Some(2),
            Self::Standalone | Self::Cluster => None,
        }
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
    /// `--spawn-redis cluster`, failed over for the election `key`.
    Cluster {
        /// The six nodes.
        cluster: RedisCluster,
        /// The election key: its slot's primary is the one failed over.
        key: String,
    },
}

impl SpawnedRedis {
    /// Starts a deployment of `topology` from the binaries on `PATH`, on free ports of
    /// 127.0.0.1.
    ///
    /// # Errors
    /// When a process cannot be started, the deployment is not ready in time, or the topology
    /// is not supported yet.
    ///
    /// A Sentinel deployment is partitionable where this machine can cut it (root, nftables),
    /// and listens on and announces `host` too when given (the network lab's host address).
    pub(crate) async fn start(
        topology: Topology,
        key: &str,
        host: Option<std::net::Ipv4Addr>,
    ) -> Result<Self, String> {
        match topology {
            Topology::Standalone => RedisServer::try_start(RedisOptions::default())
                .await
                .map(Self::Standalone),
            Topology::Sentinel if sentinel_partitions().is_ok() => match host {
                Some(host) => RedisSentinel::start_partitionable_at(host).await,
                None => RedisSentinel::start_partitionable().await,
            }
            .map(Self::Sentinel),
            Topology::Sentinel => RedisSentinel::try_start().await.map(Self::Sentinel),
            Topology::Cluster => RedisCluster::try_start(ClusterOptions::default())
                .await
                .map(|cluster| Self::Cluster {
                    cluster,
                    key: key.to_owned(),
                }),
        }
    }

    /// Its topology.
    fn topology(&self) -> Topology {
        match self {
            Self::Standalone(_) => Topology::Standalone,
            Self::Sentinel(_) => Topology::Sentinel,
            Self::Cluster { .. } => Topology::Cluster,
        }
    }

    /// The URL the contenders elect through.
    pub(crate) fn url(&self) -> String {
        match self {
            Self::Standalone(server) => server.url(),
            Self::Sentinel(deployment) => deployment.url(),
            Self::Cluster { cluster, .. } => cluster.url(),
        }
    }

    /// One line saying what runs where, for the live output.
    fn started(&self) -> String {
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
            Self::Cluster { cluster, .. } => format!(
                "started a Redis Cluster (3 primaries, 3 replicas; pids {:?}) at {}",
                cluster.pids().into_iter().flatten().collect::<Vec<_>>(),
                cluster.url()
            ),
        }
    }

    /// Kills the server (SIGKILL: every key is lost) and starts a new one on the same port.
    ///
    /// # Errors
    /// When the new server does not start, or the topology has no single server to restart.
    async fn restart_server(&self) -> Result<(), String> {
        match self {
            Self::Standalone(server) => server.try_restart().await,
            Self::Sentinel(_) => Err("a Sentinel deployment is failed over, not restarted".into()),
            Self::Cluster { .. } => Err("a Redis Cluster is failed over, not restarted".into()),
        }
    }

    /// Stops (`true`, SIGSTOP) or resumes (`false`, SIGCONT) the server process: connections
    /// stay open but nothing is answered, as with a frozen VM. Only a standalone server.
    async fn pause(&self, paused: bool) {
        if let Self::Standalone(server) = self {
            if paused {
                server.pause().await;
            } else {
                server.resume().await;
            }
        }
    }

    /// Fails over the primary holding the election and waits until the failover is complete.
    /// Sentinel: `SENTINEL FAILOVER`, complete when the old primary is a replica of the new one
    /// (~11 s). Cluster: the primary serving the election's slot is killed (SIGKILL), the
    /// cluster promotes its replica (after `cluster-node-timeout`, 1 s), then the killed node
    /// is started again and rejoins as a replica.
    ///
    /// # Errors
    /// When the topology has no replicas, or the failover does not complete in time.
    async fn fail_over(&self) -> Result<FailoverDone, String> {
        match self {
            Self::Standalone(_) => Err("a standalone server has no replica to fail over to".into()),
            Self::Sentinel(deployment) => {
                deployment
                    .try_failover()
                    .await
                    .map(|failover| FailoverDone {
                        promoted: failover.promoted,
                        completed: failover.completed,
                        rejoined: None,
                        old_primary: failover.old_primary,
                        new_primary: failover.new_primary,
                    })
            }
            Self::Cluster { cluster, key } => {
                let (killed, promoted) = cluster.kill_owner_of(key).await?;
                let completed = Instant::now();
                cluster.restart_node(&killed).await?;
                Ok(FailoverDone {
                    promoted: completed,
                    completed,
                    rejoined: Some(Instant::now()),
                    old_primary: port_of(&killed),
                    new_primary: port_of(&promoted),
                })
            }
        }
    }
}

impl SpawnedRedis {
    /// Hands the election's slot over from its primary to a replica with a coordinated
    /// `CLUSTER FAILOVER` (the replica catches up first, then takes over), and waits until every
    /// node agrees. Only a cluster.
    ///
    /// # Errors
    /// When the topology is not a cluster, or the cluster does not agree in time.
    async fn hand_over(&self) -> Result<FailoverDone, String> {
        let Self::Cluster { cluster, key } = self else {
            return Err("only a Redis Cluster hands a slot over (CLUSTER FAILOVER)".into());
        };
        let (old, new) = cluster.failover_owner_of(key).await?;
        let completed = Instant::now();
        Ok(FailoverDone {
            promoted: completed,
            completed,
            rejoined: None,
            old_primary: port_of(&old),
            new_primary: port_of(&new),
        })
    }
}

impl Server for SpawnedRedis {
    fn name(&self) -> String {
        self.topology().as_str().to_owned()
    }

    fn describe(&self) -> String {
        self.started()
    }

    fn fault_text(&self, kind: FaultKind) -> String {
        match kind {
            FaultKind::ServerRestart => "restart the Redis server (SIGKILL, empty on restart)",
            FaultKind::ServerPause => "pause the Redis server (SIGSTOP)",
            FaultKind::ServerFailover => "fail the Redis primary over to a replica",
            FaultKind::ServerPartition => {
                "cut the Redis primary off its replicas and sentinels (its clients still reach it)"
            }
            _ => "hand the Redis primary's slot over to its replica (CLUSTER FAILOVER)",
        }
        .to_owned()
    }

    fn restored_text(&self, kind: FaultKind) -> String {
        match kind {
            FaultKind::ServerPause => "redis-server resumed (SIGCONT)",
            FaultKind::ServerPartition => {
                "the Redis primary hears its replicas and sentinels again"
            }
            _ => "redis-server is back",
        }
        .to_owned()
    }

    fn failover_gap_ms(&self) -> f64 {
        if matches!(self, Self::Cluster { .. }) {
            CLUSTER_VOTES_AGAIN_MS
        } else {
            0.0
        }
    }

    fn partition_settles(&self) -> Duration {
        if matches!(self, Self::Sentinel(_)) {
            FAILOVER_COMPLETES
        } else {
            Duration::ZERO
        }
    }

    fn restart(self: Arc<Self>) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async move { self.restart_server().await })
    }

    fn set_peers_cut(&self, cut: bool) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let Self::Sentinel(deployment) = self else {
                return Err("only a Sentinel deployment's primary is cut off its peers".into());
            };
            if cut {
                deployment.cut_primary_from_peers().await.map(drop)
            } else {
                deployment.heal_peers()
            }
        })
    }

    fn set_paused(&self, paused: bool) -> BoxFuture<'_, ()> {
        Box::pin(self.pause(paused))
    }

    fn failover(self: Arc<Self>) -> BoxFuture<'static, Result<FailoverDone, String>> {
        Box::pin(async move { self.fail_over().await })
    }

    fn handover(self: Arc<Self>) -> BoxFuture<'static, Result<FailoverDone, String>> {
        Box::pin(async move { self.hand_over().await })
    }
}

/// Whether a spawned Sentinel deployment's primary can be cut off its peers here (root, and
/// nftables), and if not why; probed once.
pub(crate) fn sentinel_partitions() -> Result<(), String> {
    static PROBED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    PROBED.get_or_init(RedisSentinel::can_partition).clone()
}

/// The port of `127.0.0.1:port` (0 when there is none).
fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or(0)
}
