//! The etcd backend (`leader-election-etcd`, behind the cargo feature `etcd`): members at
//! `--etcd-endpoints`, or the three-member cluster of `--spawn-etcd`, whose members are killed
//! and restarted as server faults; the operator's hands act on the election key as `etcdctl`
//! would. Without the feature the store and the operator's hands say how to get it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Args;
#[cfg(feature = "etcd")]
use leader_election::ElectionBuilder;
use leader_election::{BoxLeaseStore, LeaderElectionOptions};
#[cfg(feature = "etcd")]
use leader_election_etcd::EtcdLeaderElection;
#[cfg(feature = "etcd")]
use leader_election_etcd::etcd_client::{Client, ConnectOptions, PutOptions};
use leader_election_fixtures::EtcdCluster;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{Backend, BackendSpec, BoxFuture, FailoverDone, OperatorAction, Server};
use crate::faults::FaultKind;

/// The default endpoint: the docker-compose file's `etcd` service.
const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:2379";

/// How many members `--spawn-etcd` starts.
const MEMBERS: usize = 3;

/// Delete the election key (`etcdctl del <key>`).
const DELETE: OperatorAction = OperatorAction::new("etcd_delete", "etcdctl del the election key");
/// Put garbage in the election key (`etcdctl put`, no lease); delete it when the fault is
/// restored.
const GARBAGE_THEN_DELETE: OperatorAction = OperatorAction::new(
    "etcd_garbage_then_delete",
    "etcdctl put garbage in the election key (del it later)",
)
.then(&DELETE);

/// Why `--backend etcd` cannot run in a tester built without the `etcd` feature.
#[cfg(not(feature = "etcd"))]
const NOT_BUILT: &str = "this tester was built without the etcd backend, whose client \
     (etcd-client) generates its gRPC code with `protoc` at build time; install protoc \
     (Debian: `apt-get install protobuf-compiler`) and rebuild with `--features etcd` \
     (`cargo install leader-election-tester --features etcd`, or \
     `cargo run -p leader-election-tester --features etcd -- --backend etcd ...`)";

/// How to reach etcd.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Args)]
#[group(skip)]
pub(crate) struct Settings {
    /// etcd members' client URLs, comma-separated (`--backend etcd`).
    #[arg(
        id = "etcd_endpoints",
        value_name = "URL,URL",
        long = "etcd-endpoints",
        env = "ETCD_ENDPOINTS",
        value_delimiter = ',',
        default_value = DEFAULT_ENDPOINT
    )]
    pub(crate) endpoints: Vec<String>,
    /// Start a three-member etcd cluster from PATH for the run (127.0.0.1, free ports) instead
    /// of using --etcd-endpoints, and add its member kills to `mixed` (as `server-handover`:
    /// the Raft leader every other time, a follower member otherwise, each started again).
    #[arg(id = "spawn_etcd", long = "spawn-etcd")]
    #[serde(skip)]
    pub(crate) spawn: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            endpoints: vec![DEFAULT_ENDPOINT.to_owned()],
            spawn: false,
        }
    }
}

/// An etcd store: not in this build.
#[cfg(not(feature = "etcd"))]
fn store(_spec: &BackendSpec, _options: &LeaderElectionOptions) -> Result<BoxLeaseStore, String> {
    Err(NOT_BUILT.to_owned())
}

/// The keep-alive counters of every etcd store this process opened (counters only: a crashed
/// contender's store is still dropped).
#[cfg(feature = "etcd")]
static OPENED: std::sync::Mutex<Vec<leader_election_etcd::ClaimKeepAlives>> =
    std::sync::Mutex::new(Vec::new());

/// An etcd store for the spec's endpoints and key, with the election's options.
#[cfg(feature = "etcd")]
fn store(spec: &BackendSpec, options: &LeaderElectionOptions) -> Result<BoxLeaseStore, String> {
    let store = EtcdLeaderElection::builder()
        .endpoints(spec.etcd.endpoints.iter().cloned())
        .key(spec.key.as_str())
        .options(options.clone())
        .build_store()
        .map_err(|e| format!("etcd: {e}"))?;
    OPENED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(store.claim_keep_alives());
    Ok(BoxLeaseStore::new(store))
}

/// The keep-alives of followers' claims every store of this process sent, outside the
/// operations the report counts.
#[cfg(feature = "etcd")]
fn claim_keep_alives() -> Option<String> {
    let opened = OPENED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sent: u64 = opened
        .iter()
        .map(leader_election_etcd::ClaimKeepAlives::get)
        .sum();
    Some(format!(
        "etcd: {sent} keep-alives of followers' claims of the succession, sent by the stores \
         on their own (not among the operations counted per follower)"
    ))
}

#[cfg(not(feature = "etcd"))]
fn claim_keep_alives() -> Option<String> {
    None
}

/// The operator's hands: not in this build.
#[cfg(not(feature = "etcd"))]
async fn on_key(_spec: &BackendSpec, _garbage: bool) -> Result<(), String> {
    Err(NOT_BUILT.to_owned())
}

/// Deletes the election key, or (`garbage`) puts garbage in it without a lease, so that it
/// names nobody, through a client of its own.
#[cfg(feature = "etcd")]
async fn on_key(spec: &BackendSpec, garbage: bool) -> Result<(), String> {
    let options = ConnectOptions::new().with_timeout(std::time::Duration::from_secs(3));
    let mut client = Client::connect(&spec.etcd.endpoints, Some(options))
        .await
        .map_err(|e| format!("etcd: {e}"))?;
    let key = spec.key.as_str();
    let result = if garbage {
        client
            .put(key, "operator was here", Some(PutOptions::new()))
            .await
            .map(drop)
    } else {
        client.delete(key, None).await.map(drop)
    };
    result.map_err(|e| format!("etcd: {e}"))
}

/// `--backend etcd`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Etcd;

impl Backend for Etcd {
    fn name(&self) -> &'static str {
        "etcd"
    }

    fn about(&self) -> &'static str {
        "An etcd cluster (crate `leader-election-etcd`, cargo feature `etcd`)"
    }

    /// Member kills, injected as `server_handover` (a term may survive them).
    fn spawn_option(&self) -> Option<(&'static str, &'static [FaultKind])> {
        Some((
            "--spawn-etcd",
            &[FaultKind::ServerHandover, FaultKind::ServerPartition],
        ))
    }

    fn spawn_requested(&self, spec: &BackendSpec) -> bool {
        spec.etcd.spawn
    }

    fn spawn<'a>(
        &'a self,
        spec: &'a mut BackendSpec,
    ) -> BoxFuture<'a, Result<Arc<dyn Server>, String>> {
        Box::pin(async move {
            let etcd = SpawnedEtcd::start().await?;
            spec.etcd.endpoints = etcd.cluster.endpoints();
            Ok(Arc::new(etcd) as Arc<dyn Server>)
        })
    }

    /// One per member: a contender cut off from all of them is partitioned.
    fn urls<'s>(&self, spec: &'s mut BackendSpec) -> Vec<&'s mut String> {
        spec.etcd.endpoints.iter_mut().collect()
    }

    fn default_port(&self) -> u16 {
        2379
    }

    fn open(
        &self,
        spec: &BackendSpec,
        options: &LeaderElectionOptions,
    ) -> Result<BoxLeaseStore, String> {
        store(spec, options)
    }

    fn reach(&self, spec: &BackendSpec) -> Option<(String, &'static str)> {
        Some((
            format!("etcd at {}", spec.etcd.endpoints.join(",")),
            "start it (`docker compose up -d etcd`), pass --etcd-endpoints / ETCD_ENDPOINTS, \
             or --spawn-etcd",
        ))
    }

    fn requests(&self) -> Option<String> {
        claim_keep_alives()
    }

    fn operator_actions(&self) -> &'static [OperatorAction] {
        &[DELETE, GARBAGE_THEN_DELETE]
    }

    fn act<'a>(
        &'a self,
        spec: &'a BackendSpec,
        action: OperatorAction,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(on_key(spec, action == GARBAGE_THEN_DELETE))
    }
}

// === impl SpawnedEtcd ===

/// The three-member cluster of `--spawn-etcd`; every member is killed (by PID) when dropped.
#[derive(Debug)]
struct SpawnedEtcd {
    cluster: EtcdCluster,
    /// How many member faults were injected: every other one kills the Raft leader, the others
    /// a follower member, in turn.
    faults: AtomicUsize,
    /// The member cut off its peers, while it is.
    cut: std::sync::Mutex<Option<usize>>,
    /// The network lab whose namespaces hold the members, where this machine can make one
    /// (after `cluster`: removed once the members are gone).
    #[cfg(target_os = "linux")]
    lab: Option<leader_election_fixtures::netns::NetLab>,
}

impl SpawnedEtcd {
    /// Starts three members from the `etcd` on `PATH`: where this machine can make network
    /// namespaces (root, `ip`, `nft`), each in a namespace of its own, so that a cut drops
    /// every packet between a member and its peers; elsewhere on free ports of 127.0.0.1, their
    /// peers reaching each through a proxy of this process (to cut it off them).
    ///
    /// # Errors
    /// When `etcd` or `etcdctl` is missing (the fixture panics; the panic is reported), or
    /// the namespaces cannot be made.
    async fn start() -> Result<Self, String> {
        #[cfg(target_os = "linux")]
        {
            use leader_election_fixtures::netns::NetLab;
            if NetLab::check().is_ok() {
                let lab = NetLab::new()
                    .map_err(|e| format!("cannot make a network lab for etcd: {e}"))?;
                let lab = Arc::new(lab);
                let cluster = tokio::spawn({
                    let lab = Arc::clone(&lab);
                    async move { EtcdCluster::start_in_lab(MEMBERS, &lab).await }
                })
                .await
                .map_err(|e| format!("cannot start an etcd cluster: {e}"))?;
                let lab = Arc::into_inner(lab).ok_or("the etcd lab is still shared")?;
                return Ok(Self::with(cluster, Some(lab)));
            }
        }
        let started = tokio::spawn(EtcdCluster::start_partitionable(MEMBERS))
            .await
            .map_err(|e| format!("cannot start an etcd cluster: {e}"))?;
        #[cfg(target_os = "linux")]
        return Ok(Self::with(started, None));
        #[cfg(not(target_os = "linux"))]
        Ok(Self {
            cluster: started,
            faults: AtomicUsize::new(0),
            cut: std::sync::Mutex::new(None),
        })
    }

    #[cfg(target_os = "linux")]
    fn with(cluster: EtcdCluster, lab: Option<leader_election_fixtures::netns::NetLab>) -> Self {
        Self {
            cluster,
            faults: AtomicUsize::new(0),
            cut: std::sync::Mutex::new(None),
            lab,
        }
    }

    /// Whether a cut drops packets in network namespaces (else a proxy falls silent).
    fn in_namespaces(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.lab.is_some();
        #[cfg(not(target_os = "linux"))]
        false
    }

    /// Which member the next fault kills: the Raft leader every other time (starting with
    /// it), otherwise a follower member, in turn.
    async fn victim(&self) -> Result<usize, String> {
        let n = self.faults.fetch_add(1, Ordering::Relaxed);
        let leader = self
            .cluster
            .raft_leader()
            .await
            .ok_or("the etcd cluster has no Raft leader")?;
        if n.is_multiple_of(2) {
            return Ok(leader);
        }
        let followers: Vec<usize> = (0..MEMBERS).filter(|&m| m != leader).collect();
        Ok(followers[(n / 2) % followers.len()])
    }

    /// Kills a member with SIGKILL (the Raft leader every other time), waits until the others
    /// have a Raft leader and answer, then starts it again and waits until it rejoined.
    ///
    /// # Errors
    /// When the cluster has no Raft leader to begin with.
    async fn kill_member(&self) -> Result<FailoverDone, String> {
        let victim = self.victim().await?;
        self.cluster.kill(victim);
        self.cluster.wait_ready().await;
        let promoted = Instant::now();
        let leader = self.cluster.raft_leader().await.unwrap_or(victim);
        self.cluster.restart(victim).await;
        let rejoined = Instant::now();
        Ok(FailoverDone {
            promoted,
            completed: promoted,
            rejoined: Some(rejoined),
            old_primary: self.cluster.client_port(victim),
            new_primary: self.cluster.client_port(leader),
        })
    }
}

impl Server for SpawnedEtcd {
    fn name(&self) -> String {
        "etcd-cluster".to_owned()
    }

    fn describe(&self) -> String {
        format!(
            "started an etcd cluster ({MEMBERS} members) at {}",
            self.cluster.endpoints().join(",")
        )
    }

    /// What the next member kill, or cut, does.
    fn fault_text(&self, kind: FaultKind) -> String {
        if kind == FaultKind::ServerPartition {
            return if self.in_namespaces() {
                "cut the etcd Raft leader off its peers: every packet between them dropped \
                 (nftables), its clients still reaching it"
            } else {
                "cut the etcd Raft leader off its peers (their proxy falls silent; its clients \
                 still reach it)"
            }
            .to_owned();
        }
        if self.faults.load(Ordering::Relaxed).is_multiple_of(2) {
            "kill the etcd Raft leader (SIGKILL), start it again once the others elected another"
        } else {
            "kill an etcd follower member (SIGKILL), start it again"
        }
        .to_owned()
    }

    fn restored_text(&self, kind: FaultKind) -> String {
        if kind == FaultKind::ServerPartition {
            return "the etcd member hears its peers again".to_owned();
        }
        "the etcd member is back".to_owned()
    }

    fn set_peers_cut(&self, cut: bool) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let mut member = self.cut.lock().unwrap_or_else(|e| e.into_inner()).take();
            if cut {
                let leader = self
                    .cluster
                    .raft_leader()
                    .await
                    .ok_or("the etcd cluster has no Raft leader to cut off")?;
                if !self.cluster.cut_from_peers(leader, true) {
                    return Err(format!(
                        "etcd member {leader} could not be cut off its peers"
                    ));
                }
                member = Some(leader);
                *self.cut.lock().unwrap_or_else(|e| e.into_inner()) = member;
            } else if let Some(member) = member
                && !self.cluster.cut_from_peers(member, false)
            {
                return Err(format!("etcd member {member} could not be healed"));
            }
            Ok(())
        })
    }

    fn handover(self: Arc<Self>) -> BoxFuture<'static, Result<FailoverDone, String>> {
        Box::pin(async move { self.kill_member().await })
    }

    fn failover_text(
        &self,
        done: &FailoverDone,
        ms: &dyn Fn(Instant) -> f64,
        at_ms: f64,
    ) -> String {
        format!(
            "etcd member {} killed: the others answered after {:.0} ms (Raft leader {}); \
             restarted, back in the cluster after {:.0} ms",
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
    fn one_proxy_per_member() {
        let mut spec = BackendSpec::on("etcd");
        spec.etcd.endpoints = vec![
            "http://127.0.0.1:2381".into(),
            "http://127.0.0.1:2382".into(),
        ];
        assert_eq!(
            Etcd.upstreams(&spec),
            Ok(vec![
                "127.0.0.1:2381".parse().unwrap(),
                "127.0.0.1:2382".parse().unwrap()
            ])
        );
        let via = Etcd.via(
            &spec,
            &[
                "127.0.0.1:4242".parse().unwrap(),
                "127.0.0.1:4243".parse().unwrap(),
            ],
        );
        assert_eq!(
            via.etcd.endpoints,
            ["http://127.0.0.1:4242", "http://127.0.0.1:4243"]
        );
        spec.etcd.endpoints.clear();
        assert!(Etcd.upstreams(&spec).is_err());
    }
}
