//! A real Redis Cluster for one test binary: six `redis-server --cluster-enabled yes` nodes on
//! free ports of 127.0.0.1 (three primaries, three replicas), created with
//! `redis-cli --cluster create`, and the faults a deployment meets: a primary's failover
//! ([`RedisCluster::failover_owner_of`]) and the resharding of a slot
//! ([`RedisCluster::migrate_slot_of`]).
//!
//! Administration goes through `redis-cli` (installed with `redis-server`), so the fixture
//! needs no Redis client library.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::helpers::{free_port, program_available, temp_dir};
use crate::process::ServerProcess;

/// How long the cluster may take to agree on a change (creation, failover, migration).
const CONVERGE: Duration = Duration::from_secs(30);

/// How to run a [`RedisCluster`].
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Primaries (each serves a third of the slots with three). Default: 3.
    pub primaries: usize,
    /// Replicas per primary. Default: 1.
    pub replicas: usize,
    /// `cluster-node-timeout`: how long a node may be unreachable before it counts as failing.
    /// Default: 1 s.
    pub node_timeout: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            primaries: 3,
            replicas: 1,
            node_timeout: Duration::from_secs(1),
        }
    }
}

/// One node of a [`RedisCluster`]: its client port, its cluster bus port and its process.
#[derive(Debug)]
struct Node {
    port: u16,
    bus: u16,
    dir: PathBuf,
    node_timeout: Duration,
    process: Mutex<Option<ServerProcess>>,
}

impl Node {
    /// Spawns `redis-server` for this node (its `nodes.conf` in its folder: a node started
    /// again rejoins the cluster), and waits until it answers PING.
    async fn launch(&self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {:?}: {e}", self.dir))?;
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string()])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-port", &self.bus.to_string()])
            .args(["--cluster-config-file", "nodes.conf"])
            .args([
                "--cluster-node-timeout",
                &self.node_timeout.as_millis().to_string(),
            ])
            .args(["--bind", "127.0.0.1", "--protected-mode", "no"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let process =
            ServerProcess::spawn(command).map_err(|e| format!("cannot start redis-server: {e}"))?;
        *lock(&self.process) = Some(process);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if cli(self.port, &["PING"]).await.is_ok_and(|r| r == "PONG") {
                return Ok(());
            }
            if let Some(status) = lock(&self.process).as_mut().and_then(ServerProcess::exited) {
                *lock(&self.process) = None;
                return Err(format!(
                    "a cluster node exited with {status} on port {}",
                    self.port
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "a cluster node did not answer on 127.0.0.1:{} within 10 s",
                    self.port
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn running(&self) -> bool {
        lock(&self.process).is_some()
    }
}

/// A node as `CLUSTER NODES` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    /// The node id (40 hex digits).
    pub id: String,
    /// `127.0.0.1:port`.
    pub addr: String,
    /// Whether it is a primary (and not failed).
    pub primary: bool,
    /// The id of its primary, for a replica.
    pub primary_id: Option<String>,
    /// The slot ranges it serves, inclusive (empty for a replica).
    pub slots: Vec<(u16, u16)>,
    /// Whether it is flagged as failing (`fail` or `fail?`).
    pub failed: bool,
}

impl ClusterNode {
    /// Whether this node serves `slot`.
    pub fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot))
    }
}

/// A Redis Cluster of local `redis-server` processes; every node is stopped (by PID) and its
/// folder removed when dropped.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts a 6-node cluster (3 primaries, 3 replicas) and waits until it is ready.
    ///
    /// # Panics
    /// When `redis-server` or `redis-cli` is missing or the cluster does not form in time.
    pub async fn start() -> Self {
        Self::try_start(ClusterOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The cluster every test of this binary shares while any of them holds it: started by
    /// the first caller, stopped when the last holder drops it (a later caller starts a new
    /// one). Tests that fail nodes over or move slots should also take a lock of their own,
    /// so that they do not disturb each other.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub async fn shared() -> Arc<Self> {
        static SHARED: Mutex<Weak<RedisCluster>> = Mutex::new(Weak::new());
        static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _starting = STARTING.lock().await;
        if let Some(cluster) = lock(&SHARED).upgrade() {
            return cluster;
        }
        let cluster = Arc::new(Self::start().await);
        *lock(&SHARED) = Arc::downgrade(&cluster);
        cluster
    }

    /// Starts a cluster run as `options` say, and waits until every node reports
    /// `cluster_state:ok` and every primary has its replicas, in sync.
    ///
    /// # Errors
    /// When a program is missing, a node does not start, or the cluster does not form within
    /// 30 s; the error says which.
    pub async fn try_start(options: ClusterOptions) -> Result<Self, String> {
        for program in ["redis-server", "redis-cli"] {
            if !program_available(program) {
                return Err(format!(
                    "the Redis Cluster fixture needs `{program}`: install it \
                     (scripts/install-redis.sh, or `apt-get install redis-server`)"
                ));
            }
        }
        if options.primaries < 3 {
            return Err("redis-cli --cluster create needs at least 3 primaries".into());
        }
        let dir = temp_dir("redis-cluster");
        let mut cluster = Self {
            nodes: Vec::new(),
            dir,
        };
        for _ in 0..options.primaries * (1 + options.replicas) {
            let node = cluster.launch_node(&options).await?;
            cluster.nodes.push(node);
        }
        let mut create = tokio::process::Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        create.args(cluster.addrs());
        create.args([
            "--cluster-replicas",
            &options.replicas.to_string(),
            "--cluster-yes",
        ]);
        let out = create
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot run redis-cli --cluster create: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let expected = options.primaries * (1 + options.replicas);
        cluster
            .converge("the cluster to form", |views| {
                views.iter().all(|nodes| {
                    nodes.len() == expected
                        && nodes
                            .iter()
                            .filter(|n| n.primary)
                            .all(|p| replicas(nodes, &p.id) == options.replicas)
                })
            })
            .await?;
        Ok(cluster)
    }

    /// Spawns one node on free ports, and waits until it answers PING.
    async fn launch_node(&self, options: &ClusterOptions) -> Result<Node, String> {
        // A port can be taken between `free_port` and the server's bind: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            let (port, bus) = (free_port(), free_port());
            if port == bus {
                continue;
            }
            let node = Node {
                port,
                bus,
                dir: self.dir.join(port.to_string()),
                node_timeout: options.node_timeout,
                process: Mutex::new(None),
            };
            match node.launch().await {
                Ok(()) => return Ok(node),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The addresses of the nodes running now (all but those [killed](Self::kill_owner_of)).
    pub fn live(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.running())
            .map(|n| addr(n.port))
            .collect()
    }

    /// Every node's address, `127.0.0.1:port`.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| addr(n.port)).collect()
    }

    /// The seed nodes of the cluster URL: every node, `127.0.0.1:port`.
    pub fn seeds(&self) -> Vec<String> {
        self.addrs()
    }

    /// The cluster's URL for fred: `redis-cluster://127.0.0.1:p1?node=127.0.0.1:p2&...`, with
    /// every node as a seed.
    pub fn url(&self) -> String {
        let addrs = self.addrs();
        let (first, rest) = addrs.split_first().expect("a cluster has nodes");
        let mut url = format!("redis-cluster://{first}");
        for (i, node) in rest.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str("node=");
            url.push_str(node);
        }
        url
    }

    /// The PIDs of the nodes, in the order of [`addrs`](Self::addrs).
    pub fn pids(&self) -> Vec<Option<u32>> {
        self.nodes
            .iter()
            .map(|n| lock(&n.process).as_ref().map(ServerProcess::pid))
            .collect()
    }

    /// Sends one command to the node at `addr` through `redis-cli --raw`, and returns its
    /// reply as text (an array's items one per line).
    ///
    /// # Errors
    /// When `addr` is not a node of this cluster, `redis-cli` fails, or the reply is an error.
    pub async fn query(&self, addr: &str, args: &[&str]) -> Result<String, String> {
        let port = self.port_of(addr)?;
        cli(port, args).await
    }

    fn port_of(&self, addr: &str) -> Result<u16, String> {
        self.nodes
            .iter()
            .map(|n| n.port)
            .find(|&port| self::addr(port) == addr)
            .ok_or_else(|| format!("{addr} is not a node of this cluster"))
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`).
    ///
    /// # Panics
    /// When no node answers.
    pub async fn slot_of(&self, key: &str) -> u16 {
        let port = self
            .nodes
            .iter()
            .find(|n| n.running())
            .map_or(self.nodes[0].port, |n| n.port);
        let reply = cli(port, &["CLUSTER", "KEYSLOT", key])
            .await
            .unwrap_or_else(|e| panic!("CLUSTER KEYSLOT: {e}"));
        reply
            .parse()
            .unwrap_or_else(|_| panic!("CLUSTER KEYSLOT answered {reply:?}"))
    }

    /// The nodes as the node at `addr` sees them (`CLUSTER NODES`).
    ///
    /// # Errors
    /// When the node does not answer or its reply does not parse.
    pub async fn nodes_seen_by(&self, addr: &str) -> Result<Vec<ClusterNode>, String> {
        parse_nodes(&self.query(addr, &["CLUSTER", "NODES"]).await?)
    }

    /// The address of the primary serving `key`'s slot, as the first node that answers sees
    /// it. An election key serves as it is: the election's keys `{key}:…` hash like `key`
    /// (true of every `key` argument of this fixture).
    ///
    /// # Panics
    /// When no node answers or none serves the slot.
    pub async fn owner_of(&self, key: &str) -> String {
        let slot = self.slot_of(key).await;
        self.owner_of_slot(slot)
            .await
            .unwrap_or_else(|e| panic!("owner of slot {slot}: {e}"))
    }

    async fn owner_of_slot(&self, slot: u16) -> Result<String, String> {
        let mut last = String::new();
        for addr in self.live() {
            match self.nodes_seen_by(&addr).await {
                Ok(nodes) => {
                    return nodes
                        .into_iter()
                        .find(|n| n.primary && n.serves(slot))
                        .map(|n| n.addr)
                        .ok_or_else(|| format!("{addr} knows no primary serving slot {slot}"));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The primaries, by address.
    ///
    /// # Panics
    /// When no node answers.
    pub async fn primaries(&self) -> Vec<String> {
        let first = self.live().into_iter().next().unwrap_or_default();
        let nodes = self
            .nodes_seen_by(&first)
            .await
            .unwrap_or_else(|e| panic!("CLUSTER NODES: {e}"));
        nodes
            .into_iter()
            .filter(|n| n.primary)
            .map(|n| n.addr)
            .collect()
    }

    /// Fails over the primary serving `key`: sends `CLUSTER FAILOVER` (the coordinated manual
    /// failover: the replica catches up with its primary first, so no acknowledged write is
    /// lost) to one of its replicas, and waits until every node sees that replica as the
    /// slot's primary, the old primary as its replica, and reports `cluster_state:ok`. Returns
    /// `(old primary, new primary)`.
    ///
    /// # Errors
    /// When the primary has no replica, a command fails, or the cluster does not agree within
    /// 30 s.
    pub async fn failover_owner_of(&self, key: &str) -> Result<(String, String), String> {
        let slot = self.slot_of(key).await;
        let old = self.owner_of_slot(slot).await?;
        let nodes = self.nodes_seen_by(&old).await?;
        let old_id = id_of(&nodes, &old)?;
        let replica = nodes
            .iter()
            .find(|n| n.primary_id.as_deref() == Some(old_id.as_str()))
            .map(|n| n.addr.clone())
            .ok_or_else(|| format!("the primary {old} has no replica"))?;
        let reply = self.query(&replica, &["CLUSTER", "FAILOVER"]).await?;
        if reply != "OK" {
            return Err(format!("CLUSTER FAILOVER on {replica} answered {reply:?}"));
        }
        let (from, to) = (old.clone(), replica.clone());
        self.converge(
            &format!("{to} to take over slot {slot} from {from}"),
            |views| {
                views.iter().all(|nodes| {
                    let new_id = nodes.iter().find(|n| n.addr == to).map(|n| n.id.clone());
                    nodes
                        .iter()
                        .any(|n| n.addr == to && n.primary && n.serves(slot))
                        && nodes
                            .iter()
                            .any(|n| n.addr == from && !n.primary && n.primary_id == new_id)
                })
            },
        )
        .await?;
        Ok((old, replica))
    }

    /// Moves `key`'s slot, with every key in it, to the primary at `to` (resharding, as
    /// `redis-cli --cluster reshard` does it for one slot): `CLUSTER SETSLOT .. IMPORTING` on
    /// `to`, `.. MIGRATING` on the owner, `MIGRATE` of the slot's keys in batches (with their
    /// expiry), then `CLUSTER SETSLOT .. NODE` on both and on every other primary; waits until
    /// every node agrees and reports `cluster_state:ok`. Returns the old owner. Nothing to do
    /// when `to` owns the slot already.
    ///
    /// # Errors
    /// When `to` is not a primary, a command fails, or the cluster does not agree within 30 s.
    pub async fn migrate_slot_of(&self, key: &str, to: &str) -> Result<String, String> {
        let slot = self.slot_of(key).await;
        let from = self.owner_of_slot(slot).await?;
        if from == to {
            return Ok(from);
        }
        let nodes = self.nodes_seen_by(&from).await?;
        let (from_id, to_id) = (id_of(&nodes, &from)?, id_of(&nodes, to)?);
        if !nodes.iter().any(|n| n.addr == to && n.primary) {
            return Err(format!("{to} is not a primary"));
        }
        let slot_arg = slot.to_string();
        let to_port = self.port_of(to)?.to_string();
        let ok = |reply: String, what: &str| {
            if reply == "OK" || reply == "NOKEY" {
                Ok(())
            } else {
                Err(format!("{what} answered {reply:?}"))
            }
        };
        ok(
            self.query(
                to,
                &["CLUSTER", "SETSLOT", &slot_arg, "IMPORTING", &from_id],
            )
            .await?,
            "SETSLOT IMPORTING",
        )?;
        ok(
            self.query(
                &from,
                &["CLUSTER", "SETSLOT", &slot_arg, "MIGRATING", &to_id],
            )
            .await?,
            "SETSLOT MIGRATING",
        )?;
        loop {
            let keys = self
                .query(&from, &["CLUSTER", "GETKEYSINSLOT", &slot_arg, "100"])
                .await?;
            let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let mut migrate = vec!["MIGRATE", "127.0.0.1", &to_port, "", "0", "5000", "KEYS"];
            migrate.extend(keys);
            ok(self.query(&from, &migrate).await?, "MIGRATE")?;
        }
        // The target first, then the source, then everyone else, as redis-cli does.
        let mut order = vec![to.to_owned(), from.clone()];
        order.extend(
            self.primaries()
                .await
                .into_iter()
                .filter(|p| p != to && p != &from),
        );
        for node in &order {
            ok(
                self.query(node, &["CLUSTER", "SETSLOT", &slot_arg, "NODE", &to_id])
                    .await?,
                "SETSLOT NODE",
            )?;
        }
        let target = to.to_owned();
        self.converge(&format!("slot {slot} to move to {target}"), |views| {
            views.iter().all(|nodes| {
                nodes
                    .iter()
                    .any(|n| n.addr == target && n.primary && n.serves(slot))
            })
        })
        .await?;
        Ok(from)
    }

    /// Kills the primary serving `key` (SIGKILL: a crash) and waits until the cluster promotes
    /// one of its replicas by itself (after `cluster-node-timeout`), every running node sees
    /// it serve the slot and reports `cluster_state:ok`. Returns `(killed, promoted)`; start
    /// the killed node again with [`restart_node`](Self::restart_node).
    ///
    /// # Errors
    /// When the primary has no replica or the cluster does not promote one within 30 s.
    pub async fn kill_owner_of(&self, key: &str) -> Result<(String, String), String> {
        let slot = self.slot_of(key).await;
        let old = self.owner_of_slot(slot).await?;
        let nodes = self.nodes_seen_by(&old).await?;
        let old_id = id_of(&nodes, &old)?;
        let replicas: Vec<String> = nodes
            .iter()
            .filter(|n| n.primary_id.as_deref() == Some(old_id.as_str()))
            .map(|n| n.addr.clone())
            .collect();
        if replicas.is_empty() {
            return Err(format!("the primary {old} has no replica"));
        }
        let port = self.port_of(&old)?;
        if let Some(node) = self.nodes.iter().find(|n| n.port == port) {
            drop(ServerProcess::take(&node.process));
        }
        let promoted = Mutex::new(None);
        self.converge(
            &format!("a replica of {old} to take over slot {slot}"),
            |views| {
                let owners: Vec<&ClusterNode> = views
                    .iter()
                    .filter_map(|nodes| nodes.iter().find(|n| n.primary && n.serves(slot)))
                    .collect();
                let agreed = owners.len() == views.len()
                    && owners
                        .iter()
                        .all(|n| replicas.contains(&n.addr) && n.addr == owners[0].addr);
                if agreed {
                    *lock(&promoted) = Some(owners[0].addr.clone());
                }
                agreed
            },
        )
        .await?;
        let promoted = lock(&promoted).take().unwrap_or_default();
        Ok((old, promoted))
    }

    /// Starts a [killed](Self::kill_owner_of) node again on its ports, with its `nodes.conf`:
    /// it rejoins the cluster as a replica of the primary that replaced it. Waits until every
    /// node sees it as a replica in sync and reports `cluster_state:ok`.
    ///
    /// # Errors
    /// When `addr` is not a node of this cluster, it does not start, or it does not rejoin
    /// within 30 s.
    pub async fn restart_node(&self, addr: &str) -> Result<(), String> {
        let port = self.port_of(addr)?;
        let node = self
            .nodes
            .iter()
            .find(|n| n.port == port)
            .ok_or_else(|| format!("{addr} is not a node of this cluster"))?;
        if !node.running() {
            node.launch().await?;
        }
        let target = addr.to_owned();
        self.converge(&format!("{target} to rejoin as a replica"), |views| {
            views.iter().all(|nodes| {
                nodes
                    .iter()
                    .any(|n| n.addr == target && !n.primary && !n.failed && n.primary_id.is_some())
            })
        })
        .await
    }

    /// [`migrate_slot_of`](Self::migrate_slot_of) to a primary other than the slot's owner:
    /// the next one in the order of [`primaries`](Self::primaries). Returns `(old owner, new
    /// owner)`.
    ///
    /// # Errors
    /// As [`migrate_slot_of`](Self::migrate_slot_of), or when there is no other primary.
    pub async fn migrate_slot_elsewhere(&self, key: &str) -> Result<(String, String), String> {
        let owner = self.owner_of_slot(self.slot_of(key).await).await?;
        let primaries = self.primaries().await;
        let at = primaries.iter().position(|p| *p == owner).unwrap_or(0);
        let to = primaries
            .iter()
            .cycle()
            .skip(at + 1)
            .take(primaries.len())
            .find(|p| **p != owner)
            .cloned()
            .ok_or("no other primary to move the slot to")?;
        let from = self.migrate_slot_of(key, &to).await?;
        Ok((from, to))
    }

    /// Waits until every running node reports `cluster_state:ok`, every replica's link to its
    /// primary is up, and `agreed` holds for every running node's view of the cluster (its
    /// `CLUSTER NODES`).
    async fn converge(
        &self,
        what: &str,
        agreed: impl Fn(&[Vec<ClusterNode>]) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + CONVERGE;
        loop {
            let mut views: Result<Vec<Vec<ClusterNode>>, String> = Ok(Vec::new());
            for addr in self.live() {
                let view = async {
                    let info = self.query(&addr, &["CLUSTER", "INFO"]).await?;
                    if !info.lines().any(|l| l.trim() == "cluster_state:ok") {
                        return Err(format!("{addr}: not cluster_state:ok"));
                    }
                    // A replica still syncing could not take over (CLUSTER FAILOVER would wait).
                    let replication = self.query(&addr, &["INFO", "replication"]).await?;
                    let line = |l: &str| replication.lines().any(|x| x.trim() == l);
                    if line("role:slave") && !line("master_link_status:up") {
                        return Err(format!("{addr}: a replica not in sync with its primary"));
                    }
                    self.nodes_seen_by(&addr).await
                };
                match (view.await, &mut views) {
                    (Ok(view), Ok(views)) => views.push(view),
                    (Err(e), _) => {
                        views = Err(e);
                        break;
                    }
                    _ => {}
                }
            }
            let last = match views {
                Ok(views) if agreed(&views) => return Ok(()),
                Ok(views) => format!("{views:?}"),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "timed out after {CONVERGE:?} waiting for {what}; last: {last}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            drop(ServerProcess::take(&node.process));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

fn replicas(nodes: &[ClusterNode], primary: &str) -> usize {
    nodes
        .iter()
        .filter(|n| n.primary_id.as_deref() == Some(primary))
        .count()
}

fn id_of(nodes: &[ClusterNode], addr: &str) -> Result<String, String> {
    nodes
        .iter()
        .find(|n| n.addr == addr)
        .map(|n| n.id.clone())
        .ok_or_else(|| format!("{addr} is not in CLUSTER NODES"))
}

/// One command through `redis-cli --raw` to 127.0.0.1:`port`.
async fn cli(port: u16, args: &[&str]) -> Result<String, String> {
    let out = tokio::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--raw"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run redis-cli: {e}"))?;
    let reply = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    // redis-cli --raw prints an error reply as `ERR ...` (or `(error) ...` on a terminal) and
    // still exits 0 for most of them.
    let error = ["ERR", "MOVED", "ASK", "CLUSTERDOWN", "NOAUTH", "IOERR"]
        .iter()
        .any(|kind| reply.starts_with(kind));
    if !out.status.success() || error || reply.starts_with("Could not connect") {
        return Err(format!(
            "127.0.0.1:{port} {args:?}: {reply}{}",
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    Ok(reply)
}

/// Parses a `CLUSTER NODES` reply: `id ip:port@bus flags primary ping pong epoch link slots..`.
fn parse_nodes(text: &str) -> Result<Vec<ClusterNode>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                return Err(format!("a CLUSTER NODES line without 8 fields: {line:?}"));
            }
            let flags: Vec<&str> = fields[2].split(',').collect();
            let addr = fields[1].split('@').next().unwrap_or_default();
            let slots = fields[8..]
                .iter()
                // `[slot->-id]`, `[slot-<-id]`: a migration in progress, not ownership.
                .filter(|s| !s.starts_with('['))
                .map(|s| {
                    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
                    Ok((
                        lo.parse().map_err(|_| format!("slot {s:?}"))?,
                        hi.parse().map_err(|_| format!("slot {s:?}"))?,
                    ))
                })
                .collect::<Result<_, String>>()?;
            Ok(ClusterNode {
                id: fields[0].to_owned(),
                addr: addr.to_owned(),
                primary: flags.contains(&"master") && !flags.contains(&"fail"),
                failed: flags.contains(&"fail") || flags.contains(&"fail?"),
                primary_id: (fields[3] != "-").then(|| fields[3].to_owned()),
                slots,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_nodes() {
        let text = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 [5461->-b2]
b2 127.0.0.1:7001@17001 master - 0 1 2 connected 5461-10922 12000
c3 127.0.0.1:7002@17002 slave a1 0 1 1 connected
";
        let nodes = parse_nodes(text).unwrap();
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[0].slots, vec![(0, 5460)]);
        assert!(nodes[1].serves(12000) && nodes[1].serves(5461) && !nodes[1].serves(0));
        assert_eq!(nodes[2].primary_id.as_deref(), Some("a1"));
        assert!(!nodes[2].primary && nodes[2].slots.is_empty());
        assert!(parse_nodes("short line").is_err());
    }
}
