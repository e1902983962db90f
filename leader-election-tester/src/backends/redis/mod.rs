//! The Redis backend (`leader-election-redis`): a server at `--redis-url`, or the deployment of
//! `--spawn-redis` ([`server`]); the operator's hands are `DEL` and `SET` on the lease key.

mod server;

use std::fmt;
use std::sync::Arc;

use clap::Args;
use leader_election::{BoxLeaseStore, ElectionBuilder, LeaderElectionOptions};
use leader_election_redis::fred::prelude::{Client, ClientLike, Config, KeysInterface};
use leader_election_redis::{RedisLeaderElection, RedisLeaseStore};
use serde::{Deserialize, Serialize};

use server::SpawnedRedis;
pub(crate) use server::Topology;
#[cfg(test)]
pub(crate) use server::sentinel_partitions;

use super::{Backend, BackendSpec, BoxFuture, OperatorAction, Server, redact_url};
use crate::faults::FaultKind;

/// The default URL: the docker-compose file's `redis` service.
const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// `DEL` the lease key.
const DELETE: OperatorAction = OperatorAction::new("redis_delete", "DEL the lease key");
/// `SET` the lease key to garbage; `DEL` it when the fault is restored.
const GARBAGE_THEN_DELETE: OperatorAction = OperatorAction::new(
    "redis_garbage_then_delete",
    "SET the lease key to garbage (DEL it later)",
)
.then(&DELETE);

/// How to reach Redis.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Args)]
#[group(skip)]
pub(crate) struct Settings {
    /// Redis server URL (`--backend redis`).
    #[arg(
        id = "redis_url",
        value_name = "URL",
        long = "redis-url",
        env = "REDIS_URL",
        default_value = DEFAULT_URL,
        hide_env_values = true
    )]
    pub(crate) url: String,
    /// Redis: how many replicas must acknowledge an acquisition or renewal (`WAIT`) before a
    /// contender believes it. Default: 2 with `--spawn-redis sentinel` (its two replicas),
    /// otherwise the Redis backend's default.
    #[arg(
        id = "redis_min_replica_acks",
        long = "redis-min-replica-acks",
        value_name = "N"
    )]
    #[serde(default)]
    pub(crate) min_replica_acks: Option<u32>,
    /// Start a Redis deployment from PATH for the run (127.0.0.1, free ports, no persistence)
    /// instead of using --redis-url, and add its server faults to `mixed`: `standalone` (the
    /// default when the flag has no value) one redis-server, restarted and paused;
    /// `sentinel` a primary, two replicas and three sentinels, failed over; `cluster` three
    /// primaries with a replica each, the election's primary killed and replaced.
    #[arg(
        id = "spawn_redis",
        long = "spawn-redis",
        value_enum,
        value_name = "TOPOLOGY",
        num_args = 0..=1,
        require_equals = false,
        default_missing_value = "standalone"
    )]
    #[serde(skip)]
    pub(crate) spawn: Option<Topology>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            min_replica_acks: None,
            spawn: None,
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("redis::Settings")
            .field("url", &redact_url(&self.url))
            .field("min_replica_acks", &self.min_replica_acks)
            .field("spawn", &self.spawn)
            .finish()
    }
}

/// `--backend redis`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Redis;

/// A Redis store with the client the Redis crate's builder configures for leader election
/// (command and connection timeouts of `operation_timeout`, reconnecting for ever), waiting for
/// `min_replica_acks` replicas when set.
fn store(spec: &BackendSpec, options: &LeaderElectionOptions) -> Result<RedisLeaseStore, String> {
    let mut builder = RedisLeaderElection::builder()
        .url(spec.redis.url.as_str())
        .key(spec.key.as_str())
        .options(options.clone());
    if let Some(replicas) = spec.redis.min_replica_acks {
        builder = builder.min_replica_acks(replicas);
    }
    builder.build_store().map_err(|e| format!("redis: {e}"))
}

/// Runs `command` (`DEL`, or `SET` to garbage) on the election's lease key, through a client
/// of its own.
async fn on_lease_key(spec: &BackendSpec, set_garbage: bool) -> Result<(), String> {
    let config = Config::from_url(&spec.redis.url).map_err(|e| format!("redis: {e}"))?;
    let client = Client::new(config, None, None, None);
    client.init().await.map_err(|e| format!("redis: {e}"))?;
    let key = format!("{{{}}}:lease", spec.key);
    let result = if set_garbage {
        client
            .set::<(), _, _>(&key, "garbage", None, None, false)
            .await
    } else {
        client.del::<i64, _>(&key).await.map(drop)
    };
    let _ = client.quit().await;
    result.map_err(|e| format!("redis: {e}"))
}

impl Backend for Redis {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn about(&self) -> &'static str {
        "A Redis server (crate `leader-election-redis`)"
    }

    /// Every fault some topology offers; [`server_faults`](Backend::server_faults) says which
    /// the one asked for does.
    fn spawn_option(&self) -> Option<(&'static str, &'static [FaultKind])> {
        Some((
            "--spawn-redis",
            &[
                FaultKind::ServerRestart,
                FaultKind::ServerPause,
                FaultKind::ServerFailover,
                FaultKind::ServerHandover,
            ],
        ))
    }

    fn spawn_requested(&self, spec: &BackendSpec) -> bool {
        spec.redis.spawn.is_some()
    }

    fn server_faults(&self, spec: &BackendSpec) -> &'static [FaultKind] {
        spec.redis.spawn.map_or(&[][..], Topology::server_faults)
    }

    fn offers(&self, kind: FaultKind) -> Option<&'static str> {
        match kind {
            FaultKind::ServerFailover => Some("--spawn-redis sentinel or cluster"),
            FaultKind::ServerHandover => Some("--spawn-redis cluster"),
            FaultKind::ServerPartition => Some("--spawn-redis sentinel, as root with nftables"),
            FaultKind::ServerRestart | FaultKind::ServerPause => Some("--spawn-redis (standalone)"),
            _ => None,
        }
    }

    fn partitions(&self, spec: &BackendSpec) -> bool {
        spec.redis.spawn.is_none_or(Topology::proxies)
    }

    /// A spawned Sentinel deployment announces the network lab's host address; a cluster's
    /// nodes name each other on 127.0.0.1.
    fn reachable_from_namespaces(&self, spec: &BackendSpec) -> bool {
        spec.redis.spawn != Some(Topology::Cluster)
    }

    fn spawn<'a>(
        &'a self,
        spec: &'a mut BackendSpec,
    ) -> BoxFuture<'a, Result<Arc<dyn Server>, String>> {
        Box::pin(async move {
            let topology = spec.redis.spawn.unwrap_or(Topology::Standalone);
            let server = SpawnedRedis::start(topology, &spec.key, spec.host).await?;
            spec.redis.url = server.url();
            if spec.redis.min_replica_acks.is_none() {
                spec.redis.min_replica_acks = topology.default_min_replica_acks();
            }
            Ok(Arc::new(server) as Arc<dyn Server>)
        })
    }

    fn urls<'s>(&self, spec: &'s mut BackendSpec) -> Vec<&'s mut String> {
        vec![&mut spec.redis.url]
    }

    fn default_port(&self) -> u16 {
        6379
    }

    fn open(
        &self,
        spec: &BackendSpec,
        options: &LeaderElectionOptions,
    ) -> Result<BoxLeaseStore, String> {
        store(spec, options).map(BoxLeaseStore::new)
    }

    fn reach(&self, spec: &BackendSpec) -> Option<(String, &'static str)> {
        Some((
            format!("Redis at {}", redact_url(&spec.redis.url)),
            "start it (`docker compose up -d redis`) or pass --redis-url / REDIS_URL",
        ))
    }

    fn operator_actions(&self) -> &'static [OperatorAction] {
        &[DELETE, GARBAGE_THEN_DELETE]
    }

    fn act<'a>(
        &'a self,
        spec: &'a BackendSpec,
        action: OperatorAction,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(on_lease_key(spec, action == GARBAGE_THEN_DELETE))
    }

    fn min_replica_acks(&self, spec: &BackendSpec, options: &LeaderElectionOptions) -> Option<u32> {
        store(spec, options)
            .ok()
            .map(|store| store.min_replica_acks())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_come_from_the_url() {
        let mut spec = BackendSpec::on("redis");
        spec.redis.url = "redis://:secret@127.0.0.1:6380/0".into();
        assert_eq!(
            Redis.upstreams(&spec),
            Ok(vec!["127.0.0.1:6380".parse().unwrap()])
        );
        let via = Redis.via(&spec, &["127.0.0.1:4242".parse().unwrap()]);
        assert_eq!(via.redis.url, "redis://:secret@127.0.0.1:4242/0");
        spec.redis.url = "redis://localhost".into();
        assert_eq!(
            Redis.upstreams(&spec),
            Ok(vec!["127.0.0.1:6379".parse().unwrap()])
        );
        // Through a spawned Sentinel deployment no proxy stands in front of the nodes the
        // sentinels name.
        spec.redis.spawn = Some(Topology::Sentinel);
        assert_eq!(Redis.upstreams(&spec), Ok(Vec::new()));
    }
}
