//! Everything the tester does with etcd (`--backend etcd`), kept in one place: the store of a
//! contender, the operator's hands on the election key (as `etcdctl` would), and the
//! three-member cluster of `--spawn-etcd`, whose members are killed and restarted as server
//! faults.

use std::sync::atomic::{AtomicUsize, Ordering};

use leader_election::{BoxLeaseStore, LeaderElectionOptions};
#[cfg(feature = "etcd")]
use leader_election_etcd::EtcdLeaderElection;
#[cfg(feature = "etcd")]
use leader_election_etcd::etcd_client::{Client, ConnectOptions, PutOptions};
use leader_election_fixtures::EtcdCluster;
use tokio::time::Instant;

use crate::backend::BackendSpec;
use crate::redis_server::FailoverDone;

/// The default endpoint: the docker-compose file's `etcd` service.
pub(crate) const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:2379";

/// How many members `--spawn-etcd` starts.
pub(crate) const MEMBERS: usize = 3;

/// Why `--backend etcd` cannot run in a tester built without the `etcd` feature.
#[cfg(not(feature = "etcd"))]
const NOT_BUILT: &str = "this tester was built without the etcd backend, whose client \
     (etcd-client) generates its gRPC code with `protoc` at build time; install protoc \
     (Debian: `apt-get install protobuf-compiler`) and rebuild with `--features etcd` \
     (`cargo install leader-election-tester --features etcd`, or \
     `cargo run -p leader-election-tester --features etcd -- --backend etcd ...`)";

/// An etcd store: not in this build.
#[cfg(not(feature = "etcd"))]
pub(crate) fn open_etcd(
    _spec: &BackendSpec,
    _options: &LeaderElectionOptions,
) -> Result<BoxLeaseStore, String> {
    Err(NOT_BUILT.to_owned())
}

/// An etcd store for the spec's endpoints and key, with the election's options.
#[cfg(feature = "etcd")]
pub(crate) fn open_etcd(
    spec: &BackendSpec,
    options: &LeaderElectionOptions,
) -> Result<BoxLeaseStore, String> {
    EtcdLeaderElection::builder()
        .endpoints(spec.etcd_endpoints.iter().cloned())
        .key(spec.key.as_str())
        .options(options.clone())
        .build_store()
        .map(BoxLeaseStore::new)
        .map_err(|e| format!("etcd: {e}"))
}

/// What an operator does to the election key with `etcdctl`, through a client of its own.
#[derive(Clone, Copy, Debug)]
pub(crate) enum KeyAction {
    /// `etcdctl del <key>`.
    Delete,
    /// `etcdctl put <key> garbage`: the key loses its lease and names nobody.
    Garbage,
}

/// The operator's hands: not in this build.
#[cfg(not(feature = "etcd"))]
pub(crate) async fn act_on_key(_spec: &BackendSpec, _action: KeyAction) -> Result<(), String> {
    Err(NOT_BUILT.to_owned())
}

/// Does `action` to the election key of `spec`.
///
/// # Errors
/// When etcd cannot be reached or refuses.
#[cfg(feature = "etcd")]
pub(crate) async fn act_on_key(spec: &BackendSpec, action: KeyAction) -> Result<(), String> {
    let options = ConnectOptions::new().with_timeout(std::time::Duration::from_secs(3));
    let mut client = Client::connect(&spec.etcd_endpoints, Some(options))
        .await
        .map_err(|e| format!("etcd: {e}"))?;
    let key = spec.key.as_str();
    let result = match action {
        KeyAction::Delete => client.delete(key, None).await.map(drop),
        KeyAction::Garbage => client
            .put(key, "operator was here", Some(PutOptions::new()))
            .await
            .map(drop),
    };
    result.map_err(|e| format!("etcd: {e}"))
}

/// The three-member cluster of `--spawn-etcd`; every member is killed (by PID) when dropped.
#[derive(Debug)]
pub(crate) struct SpawnedEtcd {
    cluster: EtcdCluster,
    /// How many member faults were injected: every other one kills the Raft leader, the others
    /// a follower member, in turn.
    faults: AtomicUsize,
}

impl SpawnedEtcd {
    /// Starts three members on free ports of 127.0.0.1, from the `etcd` on `PATH`.
    ///
    /// # Errors
    /// When `etcd` or `etcdctl` is missing (the fixture panics; the panic is reported).
    pub(crate) async fn start() -> Result<Self, String> {
        let started = tokio::spawn(EtcdCluster::start(MEMBERS))
            .await
            .map_err(|e| format!("cannot start an etcd cluster: {e}"))?;
        Ok(Self {
            cluster: started,
            faults: AtomicUsize::new(0),
        })
    }

    /// The client URLs of the members.
    pub(crate) fn endpoints(&self) -> Vec<String> {
        self.cluster.endpoints()
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
    pub(crate) async fn kill_member(&self) -> Result<FailoverDone, String> {
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

    /// What the next [`kill_member`](Self::kill_member) does, for the live output.
    pub(crate) fn describe_next(&self) -> &'static str {
        if self.faults.load(Ordering::Relaxed).is_multiple_of(2) {
            "kill the etcd Raft leader (SIGKILL), start it again once the others elected another"
        } else {
            "kill an etcd follower member (SIGKILL), start it again"
        }
    }
}
