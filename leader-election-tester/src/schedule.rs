//! What a run is asked to do, checked before anything starts, and the fault schedule's
//! arithmetic. Pure, and unit-tested here.

use std::time::Duration;

use clap::ValueEnum;

use crate::backends::{BackendRef, BackendSpec};
use crate::contender::Timing;
use crate::faults::{ClockMode, FaultKind};

/// Which faults the schedule injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum FaultMode {
    /// None: contenders run undisturbed.
    None,
    /// Stop the leader gracefully (it releases the lease), then restart it.
    Graceful,
    /// Kill the leader without release (SIGKILL with `--processes`), then start a new one.
    Crash,
    /// Cut the leader's connection to the backend, then heal it.
    Partition,
    /// Drop the backend's replies to the leader while its requests still land, then heal
    /// (needs `--network netns`).
    DropReplies,
    /// Drop the leader's requests to the backend while the backend's packets still reach
    /// it, then heal (needs `--network netns`).
    DropRequests,
    /// Drop a share of the leader's packets each way at random for two leases, then heal
    /// (needs `--network netns`).
    Loss,
    /// Delay the leader's traffic past its `operation_timeout`, with jitter, through its
    /// proxies, then heal.
    Latency,
    /// Partition, drop-replies, drop-requests, loss and latency in turn (needs `--network
    /// netns`).
    Network,
    /// Step the leader's wall clock by 30 s, forward and back in turn, its monotonic clock
    /// untouched, then step it back after two leases (needs `--clock-faults step`).
    ClockStep,
    /// Kill the Redis server and start it again, empty (needs `--spawn-redis [standalone]`),
    /// or the S3 emulator, which comes back without the bucket (needs `--spawn-s3`).
    ServerRestart,
    /// Freeze the Redis server (SIGSTOP), then resume it (needs `--spawn-redis [standalone]`).
    ServerPause,
    /// Fail the primary over to a replica (needs `--spawn-redis sentinel` or `cluster`).
    ServerFailover,
    /// Hand the election's slot over to a replica with a coordinated `CLUSTER FAILOVER`; the
    /// leader may keep its term (needs `--spawn-redis cluster`).
    ServerHandover,
    /// Cut the etcd Raft leader off its peers (its clients still reach it), then heal it
    /// after two leases (needs `--spawn-etcd`).
    ServerPartition,
    /// The leader resigns: hands over at once, stays a follower for one lease.
    Resign,
    /// Act on the lease record as an operator would, through the tester's own connection:
    /// delete it, overwrite it with garbage, break a blob lease (redis, postgres and blob).
    Operator,
    /// Graceful, crash, partition and resign in turn; with `--spawn-redis` also the server
    /// faults of its topology (restart and pause; failover for sentinel; failover and handover
    /// for cluster), with `--spawn-etcd` member kills, with `--spawn-s3` the emulator's
    /// restarts; on a backend with a lease record an operator's hands too. Through Sentinel or
    /// a cluster no partition: the proxy cannot stand between a contender and the nodes the
    /// deployment names.
    Mixed,
}

/// What the run's backend allows beyond faults on a contender.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Capabilities {
    /// The server faults of the deployment the tester starts (none without a `--spawn-*`).
    pub(crate) server: &'static [FaultKind],
    /// Whether a contender's connection can be cut (the partition proxy).
    pub(crate) partition: bool,
    /// Whether the backend has a lease record an operator can act on.
    pub(crate) operator: bool,
    /// Whether a contender's packets can be dropped one way or at random (`--network
    /// netns`).
    pub(crate) packets: bool,
    /// Whether a contender's wall clock can be stepped (`--clock-faults step`).
    pub(crate) clock_steps: bool,
    /// Whether a contender's traffic can be delayed (its relay: the partition proxy).
    pub(crate) latency: bool,
}

/// The faults on the leader's network, in the order [`FaultMode::Network`] injects them.
const NETWORK_KINDS: [FaultKind; 5] = [
    FaultKind::Partition,
    FaultKind::DropReplies,
    FaultKind::DropRequests,
    FaultKind::Loss,
    FaultKind::Latency,
];

impl FaultMode {
    /// The fault kinds injected in turn, as far as the backend allows them.
    pub(crate) fn kinds(self, can: Capabilities) -> Vec<FaultKind> {
        match self {
            Self::None => vec![],
            Self::Graceful => vec![FaultKind::Graceful],
            Self::Crash => vec![FaultKind::Crash],
            Self::Partition => vec![FaultKind::Partition],
            Self::DropReplies => vec![FaultKind::DropReplies],
            Self::DropRequests => vec![FaultKind::DropRequests],
            Self::Loss => vec![FaultKind::Loss],
            Self::Latency => vec![FaultKind::Latency],
            Self::Network => network_kinds(can),
            Self::ClockStep => vec![FaultKind::ClockStep],
            Self::ServerRestart => vec![FaultKind::ServerRestart],
            Self::ServerPause => vec![FaultKind::ServerPause],
            Self::ServerFailover => vec![FaultKind::ServerFailover],
            Self::ServerHandover => vec![FaultKind::ServerHandover],
            Self::ServerPartition => vec![FaultKind::ServerPartition],
            Self::Operator => vec![FaultKind::Operator],
            Self::Resign => vec![FaultKind::Resign],
            Self::Mixed => {
                let mut kinds = vec![FaultKind::Graceful, FaultKind::Crash];
                if can.packets {
                    kinds.extend(network_kinds(can));
                } else if can.partition {
                    kinds.push(FaultKind::Partition);
                }
                kinds.push(FaultKind::Resign);
                if can.clock_steps {
                    kinds.push(FaultKind::ClockStep);
                }
                kinds.extend(can.server);
                if can.operator {
                    kinds.push(FaultKind::Operator);
                }
                kinds
            }
        }
    }
}

/// The network faults `can` allows, in [`NETWORK_KINDS`]' order: all of them, but latency
/// only through a relay.
fn network_kinds(can: Capabilities) -> Vec<FaultKind> {
    NETWORK_KINDS
        .into_iter()
        .filter(|&kind| kind != FaultKind::Latency || can.latency)
        .collect()
}

/// How a partition cuts a contender off the backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Network {
    /// Each contender reaches the backend through TCP proxies of this process, which close
    /// its connections and refuse new ones.
    #[default]
    Proxy,
    /// Each contender process runs in a network namespace of its own (Linux, root, `ip` and
    /// `nft`), and a partition drops its packets both ways with nftables: no reset, a
    /// connection looks alive until a timeout.
    Netns,
}

/// What a run does.
#[derive(Clone, Debug)]
pub(crate) struct RunConfig {
    /// The backend and how to reach it.
    pub(crate) backend: BackendSpec,
    /// Number of contenders.
    pub(crate) contenders: usize,
    /// How long to run before shutting down.
    pub(crate) duration: Duration,
    /// Lease timing.
    pub(crate) timing: Timing,
    /// Faults to inject.
    pub(crate) faults: FaultMode,
    /// Quiet time with a leader before each fault.
    pub(crate) fault_interval: Duration,
    /// Up to this much more quiet time, at random, before each fault.
    pub(crate) fault_jitter: Duration,
    /// End the run once this many faults have played out, before `duration` if need be.
    pub(crate) stop_after_faults: Option<usize>,
    /// One OS process per contender.
    pub(crate) processes: bool,
    /// How partitions cut contenders off.
    pub(crate) network: Network,
    /// What libfaketime does to the contender processes' clocks, if anything.
    pub(crate) clock_faults: Option<ClockMode>,
    /// No live output.
    pub(crate) quiet: bool,
    /// Each contender's priority for preferred leaders, by slot; empty: none.
    pub(crate) priorities: Vec<u32>,
    /// Scheduled jobs on every contender (`--jobs`, `--every`), if any.
    pub(crate) jobs: Option<crate::contender::JobsSpec>,
}

impl RunConfig {
    /// Checks the combination of settings, before anything is started.
    ///
    /// # Errors
    /// A message naming the option at fault.
    pub(crate) fn check(&self) -> Result<(), String> {
        let backend = self.backend.backend;
        for other in BackendRef::all().filter(|&b| b != backend) {
            if let Some(flag) = other.spawn_flag(&self.backend) {
                return Err(format!("{flag} goes with --backend {}", other.name()));
            }
        }
        if self.faults != FaultMode::Mixed {
            let wanted = self.faults.kinds(Capabilities::default());
            let offered = self.server_faults();
            if let Some(&kind) = wanted
                .iter()
                .find(|k| k.is_server() && !offered.contains(k))
            {
                let needs: Vec<&str> = BackendRef::all().filter_map(|b| b.offers(kind)).collect();
                return Err(format!(
                    "--faults {} needs a deployment the tester started that offers it: {}",
                    kind.as_str().replace('_', "-"),
                    needs.join(", or ")
                ));
            }
            if self.network != Network::Netns
                && let Some(kind) = wanted.iter().find(|k| k.needs_netns())
            {
                return Err(format!(
                    "--faults {} needs --processes --network netns: only nftables in a \
                     contender's network namespace drop its packets one way or at random",
                    kind.as_str().replace('_', "-")
                ));
            }
            if wanted.contains(&FaultKind::Latency) && !self.partitions() {
                return Err(
                    "--faults latency cannot delay a contender through Sentinel or a cluster: \
                     the client connects to the nodes the deployment names, around the relay"
                        .into(),
                );
            }
            if wanted.contains(&FaultKind::Partition)
                && !self.partitions()
                && self.network != Network::Netns
            {
                return Err(
                    "--faults partition cannot cut a contender off through Sentinel or a \
                     cluster: the client connects to the nodes the deployment names, around \
                     the proxy (with --processes --network netns, a spawned Sentinel \
                     deployment's contenders are cut off by nftables)"
                        .into(),
                );
            }
        }
        if self.faults == FaultMode::ClockStep && self.clock_faults != Some(ClockMode::Step) {
            return Err(
                "--faults clock-step needs --processes --clock-faults step: the wall clock of a \
                 contender process is stepped by libfaketime"
                    .into(),
            );
        }
        if self.clock_faults.is_some() && !self.processes {
            return Err(
                "--clock-faults needs --processes: each contender process runs under libfaketime"
                    .into(),
            );
        }
        if self.network == Network::Netns {
            if !self.processes {
                return Err(
                    "--network netns needs --processes: each contender process runs \
                            in a network namespace of its own"
                        .into(),
                );
            }
            if !cfg!(target_os = "linux") {
                return Err("--network netns needs Linux (network namespaces, nftables)".into());
            }
            if !backend.reachable_from_namespaces(&self.backend) {
                return Err(
                    "--network netns cannot reach a Redis Cluster: the client connects to \
                     the nodes the cluster names, on 127.0.0.1"
                        .into(),
                );
            }
        }
        if self.processes && !backend.shared() {
            return Err(format!(
                "--processes needs a backend shared between processes ({}): the {} backend \
                 lives inside one process",
                BackendRef::listed(|b| b.shared()),
                backend.name()
            ));
        }
        if self.faults == FaultMode::Operator && backend.operator_actions().is_empty() {
            return Err(format!(
                "--faults operator needs a backend with a lease record the tester can act on \
                 ({}), not {}",
                BackendRef::listed(|b| !b.operator_actions().is_empty()),
                backend.name()
            ));
        }
        if self.contenders == 0 {
            return Err("--contenders must be at least 1".into());
        }
        if !self.priorities.is_empty() && self.priorities.len() != self.contenders {
            return Err(format!(
                "--priorities gives {} priorities for {} contenders: give one per contender",
                self.priorities.len(),
                self.contenders
            ));
        }
        self.timing
            .options("check")
            .validate()
            .map_err(|e| format!("invalid timing: {e}"))?;
        Ok(())
    }
}

impl RunConfig {
    /// Whether a contender can be cut off the backend: in process for the memory backend,
    /// by its partition proxies otherwise (one per etcd member), which cannot stand between a
    /// contender and the primary the sentinels name.
    pub(crate) fn partitions(&self) -> bool {
        self.backend.backend.partitions(&self.backend)
    }

    /// The server faults of the deployment the tester starts.
    fn server_faults(&self) -> &'static [FaultKind] {
        self.backend.backend.server_faults(&self.backend)
    }

    /// What the backend allows, for [`FaultMode::kinds`].
    pub(crate) fn capabilities(&self) -> Capabilities {
        Capabilities {
            server: self.server_faults(),
            partition: self.partitions(),
            packets: self.network == Network::Netns,
            clock_steps: self.clock_faults == Some(ClockMode::Step),
            latency: self.partitions(),
            operator: !self.backend.backend.operator_actions().is_empty(),
        }
    }
}

/// How long a Sentinel failover takes to complete: a replica is promoted within about 2 s, but
/// Sentinel turns the old primary into a replica (and so moves its clients) only about 10 s
/// later.
pub(crate) const FAILOVER_COMPLETES: Duration = Duration::from_secs(15);

/// How long a fault of `kind` needs to play out — the victim must hold the lease for `held`
/// first, then leadership must come back — for a schedule with `contenders` contenders on a
/// `lease`, on a deployment whose healed `server_partition` settles `settles` later (see
/// [`Server::partition_settles`](crate::backends::Server::partition_settles)). A fault is
/// injected only if the run lasts that long after it.
pub(crate) fn fault_budget(
    kind: FaultKind,
    lease: Duration,
    held: Duration,
    contenders: usize,
    settles: Duration,
) -> Duration {
    // A released lease is taken at once; otherwise the lease must expire first.
    let needed = match kind {
        FaultKind::Graceful | FaultKind::Resign => lease / 2 + held,
        FaultKind::Crash | FaultKind::Partition | FaultKind::DropRequests | FaultKind::Latency => {
            lease * 2 + held
        }
        // The leader's renewals keep landing until it steps down (within a lease), and the
        // last one holds the lease on the server for one more.
        FaultKind::DropReplies => lease * 3 + held,
        // The loss (the clock step) lasts two leases; a leader that came through it keeps its
        // term.
        FaultKind::Loss | FaultKind::ClockStep => lease * 2 + held,
        // A restarted server grants no lease for one lease; a paused one is resumed after two.
        FaultKind::ServerRestart | FaultKind::ServerPause => lease * 3 + held,
        // The failover completes, then the new primary grants nothing for one lease.
        FaultKind::ServerFailover => FAILOVER_COMPLETES + lease * 3 + held,
        // The cut lasts two leases; the others elect a Raft leader within about two election
        // timeouts, and a term it ends comes back within a lease of that (a Sentinel primary
        // failed over while cut off keeps its clients until it is turned into a replica).
        FaultKind::ServerPartition => settles + lease * 3 + held,
        // A coordinated failover takes a second or two; a term it ends comes back after the
        // fence, one lease.
        FaultKind::ServerHandover => FAILOVER_COMPLETES / 3 + lease * 3 + held,
        // Garbage stays until the fault is restored after two leases; a deleted record is
        // withheld for up to a lease after that.
        FaultKind::Operator => lease * 4 + held,
    };
    if contenders == 1 {
        // Nobody else can take over: leadership comes back with the victim only.
        needed + lease * 2
    } else {
        needed
    }
}

/// How long a run needs to inject each of `kinds` once, in turn, as its schedule does: a first
/// leader (within a lease), then for each kind the quiet time before it (`fault_interval`) and
/// its [`fault_budget`].
pub(crate) fn run_needs(
    kinds: &[FaultKind],
    lease: Duration,
    held: Duration,
    contenders: usize,
    fault_interval: Duration,
    settles: Duration,
) -> Duration {
    kinds.iter().fold(lease, |total, &kind| {
        total + fault_interval + fault_budget(kind, lease, held, contenders, settles)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::redis::Topology;

    fn config(backend: &str, faults: FaultMode) -> RunConfig {
        RunConfig {
            backend: BackendSpec::on(backend),
            contenders: 3,
            duration: Duration::from_secs(30),
            timing: Timing {
                lease_ms: 2000,
                renew_ms: 500,
                retry_ms: 250,
                operation_timeout_ms: 400,
                priority: None,
                min_tenure_ms: None,
            },
            faults,
            fault_interval: Duration::from_secs(1),
            fault_jitter: Duration::ZERO,
            stop_after_faults: None,
            processes: false,
            network: Network::Proxy,
            clock_faults: None,
            quiet: true,
            priorities: Vec::new(),
            jobs: None,
        }
    }

    #[test]
    fn a_run_needs_room_for_each_kind_in_turn() {
        let lease = Duration::from_secs(2);
        let held = Duration::from_secs(1);
        let interval = Duration::from_secs(1);
        let one = run_needs(
            &[FaultKind::Graceful],
            lease,
            held,
            3,
            interval,
            Duration::ZERO,
        );
        // A first leader, the quiet time, the leader's hold and half a lease.
        assert_eq!(one, Duration::from_secs(5));
        // A Sentinel failover: a first leader, the quiet time, then the failover's completion
        // (15 s), three leases and the hold.
        let failover = run_needs(
            &[FaultKind::ServerFailover],
            lease,
            held,
            3,
            interval,
            Duration::ZERO,
        );
        assert_eq!(failover, Duration::from_secs(2 + 1 + 15 + 6 + 1));
        let both = run_needs(
            &[FaultKind::Graceful, FaultKind::ServerFailover],
            lease,
            held,
            3,
            interval,
            Duration::ZERO,
        );
        assert_eq!(both, one + failover - lease);
        // A Sentinel primary cut off its peers: its cut (two leases) is healed, then the
        // sentinels turn it into a replica up to 15 s later.
        let settles = Duration::from_secs(15);
        let cut = run_needs(
            &[FaultKind::ServerPartition],
            lease,
            held,
            3,
            interval,
            settles,
        );
        assert_eq!(cut, Duration::from_secs(2 + 1 + 15 + 6 + 1));
    }

    #[test]
    fn a_sound_configuration_passes() {
        config("redis", FaultMode::Mixed).check().unwrap();
        let mut spawned = config("redis", FaultMode::ServerRestart);
        spawned.backend.redis.spawn = Some(Topology::Standalone);
        spawned.check().unwrap();
        let mut sentinel = config("redis", FaultMode::ServerFailover);
        sentinel.backend.redis.spawn = Some(Topology::Sentinel);
        sentinel.check().unwrap();
        let mut cluster = config("redis", FaultMode::ServerFailover);
        cluster.backend.redis.spawn = Some(Topology::Cluster);
        cluster.check().unwrap();
        cluster.faults = FaultMode::ServerHandover;
        cluster.check().unwrap();
        cluster.backend.redis.spawn = Some(Topology::Sentinel);
        assert!(
            cluster
                .check()
                .unwrap_err()
                .contains("--spawn-redis cluster")
        );
    }

    #[test]
    fn each_bad_combination_names_its_option() {
        let mut c = config("redis", FaultMode::None);
        c.backend.s3.spawn = true;
        assert!(c.check().unwrap_err().contains("--spawn-s3"));
        // A spawned S3 emulator offers restarts, and nothing else of a server.
        let mut c = config("s3", FaultMode::ServerRestart);
        assert!(c.check().unwrap_err().contains("--spawn-s3"));
        c.backend.s3.spawn = true;
        c.check().unwrap();
        c.faults = FaultMode::ServerPause;
        assert!(c.check().unwrap_err().contains("--faults server-pause"));
        let mut c = config("memory", FaultMode::None);
        c.backend.redis.spawn = Some(Topology::Standalone);
        assert!(c.check().unwrap_err().contains("--spawn-redis"));
        let c = config("redis", FaultMode::ServerPause);
        assert!(c.check().unwrap_err().contains("--spawn-redis"));
        // Each server fault needs a topology that offers it.
        let mut c = config("redis", FaultMode::ServerFailover);
        assert!(c.check().unwrap_err().contains("--spawn-redis sentinel"));
        c.backend.redis.spawn = Some(Topology::Standalone);
        assert!(c.check().unwrap_err().contains("--spawn-redis sentinel"));
        let mut c = config("redis", FaultMode::ServerRestart);
        c.backend.redis.spawn = Some(Topology::Sentinel);
        assert!(c.check().unwrap_err().contains("--faults server-restart"));
        let mut c = config("redis", FaultMode::Partition);
        c.backend.redis.spawn = Some(Topology::Sentinel);
        assert!(c.check().unwrap_err().contains("Sentinel"));
        c.backend.redis.spawn = Some(Topology::Cluster);
        assert!(c.check().unwrap_err().contains("cluster"));
        let mut c = config("redis", FaultMode::ServerPause);
        c.backend.redis.spawn = Some(Topology::Cluster);
        assert!(c.check().unwrap_err().contains("--faults server-pause"));
        let mut c = config("redis", FaultMode::None);
        c.backend.etcd.spawn = true;
        assert!(c.check().unwrap_err().contains("--spawn-etcd"));
        let mut c = config("etcd", FaultMode::ServerHandover);
        assert!(c.check().unwrap_err().contains("--spawn-etcd"));
        c.backend.etcd.spawn = true;
        c.check().unwrap();
        c.faults = FaultMode::Partition;
        c.check().unwrap();
        // Packets are dropped one way or at random only in network namespaces.
        for faults in [
            FaultMode::DropReplies,
            FaultMode::DropRequests,
            FaultMode::Loss,
            FaultMode::Network,
        ] {
            let mut c = config("redis", faults);
            let err = c.check().unwrap_err();
            assert!(err.contains("needs --processes --network netns"), "{err}");
            c.processes = true;
            c.network = Network::Netns;
            if cfg!(target_os = "linux") {
                c.check().unwrap();
            }
        }
        // Clocks are faked only in processes of their own, and stepped only in `step` mode.
        let mut c = config("redis", FaultMode::ClockStep);
        assert!(c.check().unwrap_err().contains("--clock-faults step"));
        c.clock_faults = Some(ClockMode::Rate);
        assert!(c.check().unwrap_err().contains("--clock-faults step"));
        c.clock_faults = Some(ClockMode::Step);
        assert!(c.check().unwrap_err().contains("needs --processes"));
        c.processes = true;
        c.check().unwrap();
        c.faults = FaultMode::Mixed;
        assert!(
            c.faults
                .kinds(c.capabilities())
                .contains(&FaultKind::ClockStep)
        );
        let mut c = config("memory", FaultMode::None);
        c.processes = true;
        assert!(c.check().unwrap_err().contains("--processes"));
        let c = config("memory", FaultMode::Operator);
        assert!(c.check().unwrap_err().contains("--faults operator"));
        config("postgres", FaultMode::Operator).check().unwrap();
        let mut c = config("memory", FaultMode::None);
        c.contenders = 0;
        assert!(c.check().unwrap_err().contains("--contenders"));
        let mut c = config("memory", FaultMode::None);
        c.timing.renew_ms = 5000;
        assert!(c.check().unwrap_err().contains("invalid timing"));
    }

    #[test]
    fn priorities_come_one_per_contender() {
        let mut c = config("memory", FaultMode::Resign);
        c.priorities = vec![0, 5];
        assert!(c.check().unwrap_err().contains("--priorities"));
        c.priorities = vec![0; c.contenders];
        c.check().unwrap();
        let slot = c.timing.for_slot(&[0, 0, 5], 2);
        assert_eq!(slot.options("c2").priority, Some(5));
        assert_eq!(c.timing.for_slot(&[], 2).options("c2").priority, None);
    }

    #[test]
    fn mixed_adds_server_faults_only_for_a_spawned_server() {
        let mixed = |spawn_redis, backend| {
            let mut c = config(backend, FaultMode::Mixed);
            c.backend.redis.spawn = spawn_redis;
            c.faults.kinds(c.capabilities())
        };
        assert_eq!(mixed(None, "memory").len(), 4);
        assert_eq!(
            mixed(None, "redis"),
            [
                FaultKind::Graceful,
                FaultKind::Crash,
                FaultKind::Partition,
                FaultKind::Resign,
                FaultKind::Operator
            ]
        );
        assert_eq!(mixed(Some(Topology::Standalone), "redis").len(), 7);
        // Through Sentinel: the failover, the primary cut off its peers where this machine can
        // cut it (root, nftables), and no partition (the proxy cannot cut a contender off).
        let mut sentinel = vec![
            FaultKind::Graceful,
            FaultKind::Crash,
            FaultKind::Resign,
            FaultKind::ServerFailover,
        ];
        if crate::backends::redis::sentinel_partitions().is_ok() {
            sentinel.push(FaultKind::ServerPartition);
        }
        sentinel.push(FaultKind::Operator);
        assert_eq!(mixed(Some(Topology::Sentinel), "redis"), sentinel);
        // In a cluster: no partition either (the proxy cannot stand between a contender and
        // its nodes); both kinds of failover.
        assert_eq!(
            mixed(Some(Topology::Cluster), "redis"),
            [
                FaultKind::Graceful,
                FaultKind::Crash,
                FaultKind::Resign,
                FaultKind::ServerFailover,
                FaultKind::ServerHandover,
                FaultKind::Operator
            ]
        );
        // A spawned etcd cluster: member kills and the Raft leader cut off its peers, and
        // partitions by a proxy per member.
        let mut etcd = config("etcd", FaultMode::Mixed);
        etcd.backend.etcd.spawn = true;
        assert_eq!(
            etcd.faults.kinds(etcd.capabilities()),
            [
                FaultKind::Graceful,
                FaultKind::Crash,
                FaultKind::Partition,
                FaultKind::Resign,
                FaultKind::ServerHandover,
                FaultKind::ServerPartition,
                FaultKind::Operator
            ]
        );
        // A spawned S3 emulator: its restarts, with partitions and the operator's hands.
        let mut s3 = config("s3", FaultMode::Mixed);
        s3.backend.s3.spawn = true;
        assert_eq!(
            s3.faults.kinds(s3.capabilities()),
            [
                FaultKind::Graceful,
                FaultKind::Crash,
                FaultKind::Partition,
                FaultKind::Resign,
                FaultKind::ServerRestart,
                FaultKind::Operator
            ]
        );
        let everything = Capabilities {
            server: Topology::Standalone.server_faults(),
            partition: true,
            operator: true,
            packets: false,
            clock_steps: false,
            latency: true,
        };
        assert!(FaultMode::None.kinds(everything).is_empty());
        // A spawned Sentinel deployment in network namespaces: every packet fault, but no
        // latency (no relay stands between a contender and the nodes the sentinels name).
        let mut sentinel = config("redis", FaultMode::Network);
        sentinel.processes = true;
        sentinel.network = Network::Netns;
        sentinel.backend.redis.spawn = Some(Topology::Sentinel);
        sentinel.check().unwrap();
        assert_eq!(
            sentinel.faults.kinds(sentinel.capabilities()),
            [
                FaultKind::Partition,
                FaultKind::DropReplies,
                FaultKind::DropRequests,
                FaultKind::Loss
            ]
        );
        sentinel.faults = FaultMode::Latency;
        assert!(sentinel.check().unwrap_err().contains("--faults latency"));
        sentinel.faults = FaultMode::Partition;
        sentinel.check().unwrap();
        sentinel.network = Network::Proxy;
        assert!(sentinel.check().unwrap_err().contains("--network netns"));
        let mut cluster = config("redis", FaultMode::Graceful);
        cluster.processes = true;
        cluster.network = Network::Netns;
        cluster.backend.redis.spawn = Some(Topology::Cluster);
        assert!(cluster.check().unwrap_err().contains("Redis Cluster"));
        // In network namespaces, every network fault takes the partition's place in `mixed`.
        let mut netns = config("redis", FaultMode::Mixed);
        netns.processes = true;
        netns.network = Network::Netns;
        assert_eq!(
            netns.faults.kinds(netns.capabilities()),
            [
                FaultKind::Graceful,
                FaultKind::Crash,
                FaultKind::Partition,
                FaultKind::DropReplies,
                FaultKind::DropRequests,
                FaultKind::Loss,
                FaultKind::Latency,
                FaultKind::Resign,
                FaultKind::Operator
            ]
        );
        netns.faults = FaultMode::Network;
        assert_eq!(netns.faults.kinds(netns.capabilities()), NETWORK_KINDS);
    }

    #[test]
    fn fault_budgets_leave_room_for_recovery() {
        let lease = Duration::from_secs(2);
        let held = Duration::from_secs(1);
        assert_eq!(
            fault_budget(FaultKind::Graceful, lease, held, 3, Duration::ZERO),
            Duration::from_secs(2)
        );
        assert_eq!(
            fault_budget(FaultKind::Crash, lease, held, 3, Duration::ZERO),
            Duration::from_secs(5)
        );
        assert_eq!(
            fault_budget(FaultKind::ServerRestart, lease, held, 3, Duration::ZERO),
            Duration::from_secs(7)
        );
        // A failover completes first (~11 s with Sentinel), then the fence.
        assert_eq!(
            fault_budget(FaultKind::ServerFailover, lease, held, 3, Duration::ZERO),
            FAILOVER_COMPLETES + Duration::from_secs(7)
        );
        // Alone, the victim itself must come back.
        assert_eq!(
            fault_budget(FaultKind::Crash, lease, held, 1, Duration::ZERO),
            Duration::from_secs(9)
        );
    }
}
