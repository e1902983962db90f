//! The ZooKeeper backend (`leader-election-zookeeper`): an ensemble at `--zookeeper-servers`, or
//! a three-server ensemble started by `--spawn-zookeeper`, whose server kills are server
//! faults; the election at `/leader-election/<key>`; the operator's hands are znode commands.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::Args;
use leader_election::{BoxLeaseStore, ElectionBuilder, LeaderElectionOptions};
use leader_election_fixtures::ZooKeeper;
use leader_election_fixtures::zookeeper;
use leader_election_zookeeper::ZooKeeperLeaderElection;
use leader_election_zookeeper::zookeeper_client::{self, Client};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{Backend, BackendSpec, BoxFuture, FailoverDone, OperatorAction, Server};
use crate::faults::FaultKind;

/// The default server: the docker-compose file's `zookeeper` service.
const DEFAULT_SERVER: &str = "127.0.0.1:2181";

/// The servers of `--spawn-zookeeper`.
const SERVERS: usize = 3;

/// Delete the leader's znode (the lowest of the queue), as `zkCli.sh delete` does.
const DELETE: OperatorAction = OperatorAction::new("zookeeper_delete", "delete the leader's znode");
/// Overwrite the leader's znode with garbage, as `zkCli.sh set` does.
const GARBAGE: OperatorAction = OperatorAction::new(
    "zookeeper_set_garbage",
    "set garbage as the leader's znode's data",
);
/// Delete the election's whole tree, as `zkCli.sh deleteall` does.
const DELETE_ALL: OperatorAction = OperatorAction::new(
    "zookeeper_deleteall",
    "deleteall the election's znodes, the guard too",
);

/// How to reach ZooKeeper.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Args)]
#[group(skip)]
pub(crate) struct Settings {
    /// ZooKeeper servers, comma-separated `host:port` (`--backend zookeeper`); the election's
    /// znodes are under `/leader-election/<key>`.
    #[arg(
        id = "zookeeper_servers",
        value_name = "HOST:PORT,HOST:PORT",
        long = "zookeeper-servers",
        env = "ZOOKEEPER_SERVERS",
        value_delimiter = ',',
        default_value = DEFAULT_SERVER
    )]
    pub(crate) servers: Vec<String>,
    /// Start a three-server ZooKeeper ensemble for the run (Debian's `zookeeper`, see
    /// `scripts/install-zookeeper.sh`; 127.0.0.1, free ports) instead of using
    /// --zookeeper-servers, and add its server kills to `mixed` (as `server-handover`: the
    /// ensemble's leader every other time, a follower otherwise, each started again).
    #[arg(id = "spawn_zookeeper", long = "spawn-zookeeper")]
    #[serde(skip)]
    pub(crate) spawn: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            servers: vec![DEFAULT_SERVER.to_owned()],
            spawn: false,
        }
    }
}

/// The election's path for `key`.
fn path(key: &str) -> String {
    format!("/leader-election/{key}")
}

/// A session of the operator's own, as `zkCli.sh` would open.
async fn operator(spec: &BackendSpec) -> Result<Client, String> {
    Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&spec.zookeeper.servers.join(","))
        .await
        .map_err(|e| format!("zookeeper: {e}"))
}

/// The queue's lowest znode under `path` (the leader's, or the next in line), if any: the
/// contenders' znodes are named `c-…-<sequence>`.
async fn lowest(client: &Client, path: &str) -> Result<Option<String>, String> {
    let children = match client.list_children(path).await {
        Ok(children) => children,
        Err(zookeeper_client::Error::NoNode) => return Ok(None),
        Err(e) => return Err(format!("zookeeper: list {path}: {e}")),
    };
    Ok(children
        .into_iter()
        .filter(|c| c.starts_with("c-"))
        .filter_map(|c| {
            let sequence = c.rsplit('-').next()?.parse::<u64>().ok()?;
            Some((sequence, c))
        })
        .min()
        .map(|(_, name)| format!("{path}/{name}")))
}

/// `--backend zookeeper`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ZooKeeperBackend;

impl Backend for ZooKeeperBackend {
    fn name(&self) -> &'static str {
        "zookeeper"
    }

    fn about(&self) -> &'static str {
        "An Apache ZooKeeper ensemble (crate `leader-election-zookeeper`)"
    }

    fn spawn_option(&self) -> Option<(&'static str, &'static [FaultKind])> {
        Some(("--spawn-zookeeper", &[FaultKind::ServerHandover]))
    }

    fn spawn_requested(&self, spec: &BackendSpec) -> bool {
        spec.zookeeper.spawn
    }

    fn spawn<'a>(
        &'a self,
        spec: &'a mut BackendSpec,
    ) -> BoxFuture<'a, Result<Arc<dyn Server>, String>> {
        Box::pin(async move {
            // The fixture panics when ZooKeeper is missing or does not start: report that.
            let ensemble = tokio::spawn(ZooKeeper::start_ensemble(SERVERS))
                .await
                .map_err(|e| format!("cannot start a ZooKeeper ensemble: {e}"))?;
            spec.zookeeper.servers = (0..ensemble.size())
                .map(|i| format!("127.0.0.1:{}", ensemble.port(i)))
                .collect();
            Ok(Arc::new(Spawned {
                ensemble,
                kills: AtomicUsize::new(0),
            }) as Arc<dyn Server>)
        })
    }

    /// One per server: a contender cut off from all of them is partitioned.
    fn urls<'s>(&self, spec: &'s mut BackendSpec) -> Vec<&'s mut String> {
        spec.zookeeper.servers.iter_mut().collect()
    }

    fn default_port(&self) -> u16 {
        2181
    }

    fn open(
        &self,
        spec: &BackendSpec,
        options: &LeaderElectionOptions,
    ) -> Result<BoxLeaseStore, String> {
        ZooKeeperLeaderElection::builder()
            .connect_string(spec.zookeeper.servers.join(","))
            .path(path(&spec.key))
            .options(options.clone())
            .build_store()
            .map(BoxLeaseStore::new)
            .map_err(|e| format!("zookeeper: {e}"))
    }

    fn reach(&self, spec: &BackendSpec) -> Option<(String, &'static str)> {
        Some((
            format!("ZooKeeper at {}", spec.zookeeper.servers.join(",")),
            "start it (`docker compose up -d zookeeper`), pass --zookeeper-servers / \
             ZOOKEEPER_SERVERS, or --spawn-zookeeper",
        ))
    }

    fn operator_actions(&self) -> &'static [OperatorAction] {
        &[DELETE, GARBAGE, DELETE_ALL]
    }

    fn act<'a>(
        &'a self,
        spec: &'a BackendSpec,
        action: OperatorAction,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let client = operator(spec).await?;
            let path = path(&spec.key);
            if action == DELETE_ALL {
                return zookeeper::delete_all(&client, &path).await;
            }
            let Some(leader) = lowest(&client, &path).await? else {
                return Err(format!("zookeeper: no contender's znode under {path}"));
            };
            let done = if action == GARBAGE {
                client
                    .set_data(&leader, b"operator's garbage", None)
                    .await
                    .map(|_| ())
            } else {
                client.delete(&leader, None).await
            };
            done.map_err(|e| format!("zookeeper: {leader}: {e}"))
        })
    }
}

/// The ensemble of `--spawn-zookeeper`.
#[derive(Debug)]
struct Spawned {
    ensemble: ZooKeeper,
    /// Server kills so far: the ensemble's leader is killed every other time.
    kills: AtomicUsize,
}

impl Spawned {
    /// Kills a server with SIGKILL (the ensemble's leader every other time, a follower
    /// otherwise), waits until the others have a leader, then starts it again and waits until
    /// it serves.
    async fn kill_server(&self) -> Result<FailoverDone, String> {
        let n = self.kills.fetch_add(1, Ordering::Relaxed);
        let leader = self.ensemble.leader().await;
        let victim = if n.is_multiple_of(2) {
            leader
        } else {
            (0..self.ensemble.size())
                .find(|&i| i != leader)
                .unwrap_or(leader)
        };
        self.ensemble.kill(victim).await;
        let new_leader = self.ensemble.leader().await;
        let promoted = Instant::now();
        self.ensemble.restart(victim).await;
        let rejoined = Instant::now();
        Ok(FailoverDone {
            promoted,
            completed: promoted,
            rejoined: Some(rejoined),
            old_primary: self.ensemble.port(victim),
            new_primary: self.ensemble.port(new_leader),
        })
    }
}

impl Server for Spawned {
    fn name(&self) -> String {
        "zookeeper-ensemble".to_owned()
    }

    fn describe(&self) -> String {
        format!(
            "started a ZooKeeper ensemble ({} servers) at {}",
            self.ensemble.size(),
            self.ensemble.connect_string()
        )
    }

    fn fault_text(&self, _kind: FaultKind) -> String {
        if self.kills.load(Ordering::Relaxed).is_multiple_of(2) {
            "kill the ZooKeeper ensemble's leader (SIGKILL), start it again once the others \
             elected another"
        } else {
            "kill a ZooKeeper follower server (SIGKILL), start it again"
        }
        .to_owned()
    }

    fn restored_text(&self, _kind: FaultKind) -> String {
        "the ZooKeeper server is back".to_owned()
    }

    fn handover(self: Arc<Self>) -> BoxFuture<'static, Result<FailoverDone, String>> {
        Box::pin(async move {
            // The fixture panics when a server does not come back: say so.
            tokio::spawn(async move { self.kill_server().await })
                .await
                .map_err(|e| format!("the ZooKeeper server did not come back: {e}"))?
        })
    }

    fn failover_text(
        &self,
        done: &FailoverDone,
        ms: &dyn Fn(Instant) -> f64,
        at_ms: f64,
    ) -> String {
        format!(
            "ZooKeeper server on port {} killed: the others had a leader after {:.0} ms \
             (on port {}); restarted, serving again after {:.0} ms",
            done.old_primary,
            ms(done.promoted) - at_ms,
            done.new_primary,
            done.rejoined.map_or(0.0, |r| ms(r) - at_ms),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_proxy_per_server_and_spawning_offers_the_server_kill() {
        let mut spec = BackendSpec::on("zookeeper");
        spec.zookeeper.servers = vec!["127.0.0.1:2182".into(), "localhost:2183".into()];
        assert_eq!(
            ZooKeeperBackend.upstreams(&spec),
            Ok(vec![
                "127.0.0.1:2182".parse().unwrap(),
                "127.0.0.1:2183".parse().unwrap()
            ])
        );
        let via = ZooKeeperBackend.via(
            &spec,
            &[
                "127.0.0.1:4242".parse().unwrap(),
                "127.0.0.1:4243".parse().unwrap(),
            ],
        );
        assert_eq!(via.zookeeper.servers, ["127.0.0.1:4242", "127.0.0.1:4243"]);
        assert!(ZooKeeperBackend.server_faults(&spec).is_empty());
        spec.zookeeper.spawn = true;
        assert_eq!(
            ZooKeeperBackend.spawn_flag(&spec),
            Some("--spawn-zookeeper")
        );
        assert_eq!(
            ZooKeeperBackend.server_faults(&spec),
            &[FaultKind::ServerHandover]
        );
        assert_eq!(path("k"), "/leader-election/k");
    }
}
