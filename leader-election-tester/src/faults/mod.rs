//! The faults a run injects on the leader, one module per kind of target: [`contender`] (a
//! graceful stop, a crash, a resignation), [`network`] (the leader cut off the backend),
//! [`server`] (the deployment the tester started: restarted, frozen, failed over) and
//! [`operator`] (hands on the lease record). [`Targets`] is what they act on; the run decides
//! when.

mod clock;
mod contender;
mod network;
mod operator;
mod server;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::backends::{BackendSpec, FailoverDone, OperatorAction, Server};
use crate::contender::{Clock, Slot};
use crate::report::Fault;

pub(crate) use clock::{ChildClock, ClockMode, STEP_SECS, libfaketime};
pub(crate) use network::{LOSS_PERCENT, Proxies, latency_of};

/// What a fault did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FaultKind {
    /// The leader was stopped gracefully: it released the lease.
    Graceful,
    /// The leader was killed without releasing (SIGKILL with `--processes`).
    Crash,
    /// The leader's connection to the backend was cut while the others kept theirs (with
    /// `--network netns`: its packets dropped both ways, no reset).
    Partition,
    /// The backend's replies to the leader were dropped while its requests still landed: its
    /// renewals extend the lease on the server and it never hears that they did
    /// (`--network netns`).
    DropReplies,
    /// The leader's requests to the backend were dropped while what the backend sent still
    /// reached it (`--network netns`).
    DropRequests,
    /// A share of the leader's packets ([`LOSS_PERCENT`] each way) was dropped at random
    /// (`--network netns`). The leader may keep its term: recovered means a leader when the
    /// loss ends.
    Loss,
    /// The leader's traffic was delayed past its `operation_timeout`, with jitter (through
    /// its proxies).
    Latency,
    /// The leader's wall clock was stepped by [`STEP_SECS`] (forward and back in turn), its
    /// monotonic clock untouched, and stepped back after two leases (`--clock-faults step`).
    /// The leader keeps its term: recovered means a leader when the clock is back.
    ClockStep,
    /// The server (started by the tester) was killed and started again, empty.
    ServerRestart,
    /// The Redis server (started by the tester) was frozen (SIGSTOP), then resumed.
    ServerPause,
    /// The tester acted on the lease record as an operator would (deleted it, overwrote it).
    Operator,
    /// The leader resigned: released the lease and stayed a follower for a cool-down.
    Resign,
    /// The primary holding the election was failed over to a replica (`SENTINEL FAILOVER` on a
    /// Sentinel deployment started by the tester, or its primary killed in a cluster).
    ServerFailover,
    /// A member of the etcd cluster the tester started (the Raft leader) was cut off its
    /// peers while its clients still reached it, then healed after two leases. The leader may
    /// keep its term: recovered means a leader once healed.
    ServerPartition,
    /// The primary holding the election handed its slot over to its replica (`CLUSTER
    /// FAILOVER`, coordinated: the replica catches up first), or a member of an etcd cluster
    /// was killed and started again. The leader may keep its term: recovered means a leader
    /// when it is complete.
    ServerHandover,
}

impl FaultKind {
    /// The lower-case name used in the report and in live output.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Graceful => "graceful",
            Self::Crash => "crash",
            Self::Partition => "partition",
            Self::DropReplies => "drop_replies",
            Self::DropRequests => "drop_requests",
            Self::Loss => "loss",
            Self::Latency => "latency",
            Self::ClockStep => "clock_step",
            Self::ServerRestart => "server_restart",
            Self::ServerPause => "server_pause",
            Self::Operator => "operator",
            Self::Resign => "resign",
            Self::ServerFailover => "server_failover",
            Self::ServerHandover => "server_handover",
            Self::ServerPartition => "server_partition",
        }
    }

    /// Whether the fault hits the server rather than one contender.
    pub(crate) fn is_server(self) -> bool {
        matches!(
            self,
            Self::ServerRestart
                | Self::ServerPause
                | Self::ServerFailover
                | Self::ServerHandover
                | Self::ServerPartition
        )
    }

    /// Whether it acts on the leader's network: its connection cut, or its packets dropped.
    pub(crate) fn is_network(self) -> bool {
        matches!(
            self,
            Self::Partition | Self::DropReplies | Self::DropRequests | Self::Loss | Self::Latency
        )
    }

    /// Whether it needs `--network netns`: packets dropped by nftables, which a proxy cannot
    /// do.
    pub(crate) fn needs_netns(self) -> bool {
        matches!(self, Self::DropReplies | Self::DropRequests | Self::Loss)
    }

    /// Whether the leader may come through it keeping its term, so that the fault is over
    /// when it ends (a coordinated failover when it completes, packet loss when it is healed)
    /// and recovered if somebody leads then.
    pub(crate) fn may_keep_term(self) -> bool {
        matches!(
            self,
            Self::ServerHandover | Self::ServerPartition | Self::Loss | Self::ClockStep
        )
    }

    /// Whether it is a failover of the server, which completes in the background.
    pub(crate) fn is_failover(self) -> bool {
        matches!(self, Self::ServerFailover | Self::ServerHandover)
    }
}

/// What injecting a fault did, for the run to record.
#[derive(Debug, Default)]
pub(crate) struct Injected {
    /// For an operator fault: what the operator did.
    pub(crate) action: Option<OperatorAction>,
    /// The incarnation of the victim whose process was killed: its term ended when the kill
    /// returned.
    pub(crate) killed: Option<u32>,
    /// Lines for the live output: what failed, the run going on regardless.
    pub(crate) notes: Vec<String>,
    /// Why nothing was injected, when nothing was: the fault is not recorded.
    pub(crate) failed: Option<String>,
}

/// How a fault ended.
#[derive(Debug)]
pub(crate) enum Restored {
    /// Undone now; the line says how.
    Now(String),
    /// A failover completed at that instant; the line says what it did.
    Completed(Instant, String),
    /// The failover failed; the line says why.
    Failed(String),
}

/// What faults act on: the contenders, the deployment the tester started, the backend's lease
/// record.
#[derive(Debug)]
pub(crate) struct Targets {
    /// The contenders, by slot.
    pub(crate) slots: Vec<Slot>,
    /// The deployment the tester started, if any.
    pub(crate) server: Option<Arc<dyn Server>>,
    /// The backend, for the operator's hands.
    pub(crate) spec: BackendSpec,
    /// Whether each contender is its own OS process.
    pub(crate) processes: bool,
    /// The lease duration (a stopped leader's grace, a resignation's cool-down).
    pub(crate) lease: Duration,
    /// A server failover under way: it completes in the background while the run goes on.
    failover: Option<JoinHandle<Result<FailoverDone, String>>>,
    /// How many operator actions were taken (they are taken in turn).
    operator_actions: usize,
    /// How many clock steps were injected (forward and back in turn).
    clock_steps: usize,
}

impl Targets {
    /// Faults on these contenders, this backend and this deployment.
    pub(crate) fn new(
        slots: Vec<Slot>,
        server: Option<Arc<dyn Server>>,
        spec: BackendSpec,
        processes: bool,
        lease: Duration,
    ) -> Self {
        Self {
            slots,
            server,
            spec,
            processes,
            lease,
            failover: None,
            operator_actions: 0,
            clock_steps: 0,
        }
    }

    /// What a fault of `kind` does, for the live output.
    pub(crate) fn describe(&self, kind: FaultKind) -> String {
        match kind {
            FaultKind::Graceful | FaultKind::Crash | FaultKind::Resign => {
                contender::describe(kind, self.processes).to_owned()
            }
            kind if kind.is_network() => network::describe(kind),
            FaultKind::Operator => operator::DESCRIPTION.to_owned(),
            FaultKind::ClockStep => {
                format!("step the leader's wall clock by {STEP_SECS} s, forward or back")
            }
            _ => server::describe(self.server.as_deref(), kind),
        }
    }

    /// Injects a fault of `kind` on contender `slot` (the leader).
    pub(crate) async fn inject(&mut self, kind: FaultKind, slot: usize) -> Injected {
        match kind {
            FaultKind::Graceful | FaultKind::Crash | FaultKind::Resign => {
                let killed =
                    contender::inject(&mut self.slots[slot], kind, self.lease, self.processes)
                        .await;
                Injected {
                    killed,
                    ..Injected::default()
                }
            }
            kind if kind.is_network() => match network::inject(&self.slots[slot], Some(kind)) {
                Ok(()) => Injected::default(),
                Err(err) => Injected {
                    failed: Some(format!("c{slot}: {err}")),
                    ..Injected::default()
                },
            },
            FaultKind::Operator => {
                let n = self.operator_actions;
                self.operator_actions += 1;
                operator::act(&self.spec, n).await
            }
            FaultKind::ClockStep => {
                let secs = if self.clock_steps.is_multiple_of(2) {
                    STEP_SECS
                } else {
                    -STEP_SECS
                };
                self.clock_steps += 1;
                match self.slots[slot].set_clock_offset(secs) {
                    Ok(()) => Injected {
                        notes: vec![format!("c{slot}'s wall clock reads {secs:+} s")],
                        ..Injected::default()
                    },
                    Err(err) => {
                        // Heal whatever half took, so that nothing outlives the failed try.
                        let _ = self.slots[slot].set_clock_offset(0);
                        Injected {
                            failed: Some(format!("c{slot}: {err}")),
                            ..Injected::default()
                        }
                    }
                }
            }
            _ => {
                let Some(server) = &self.server else {
                    return Injected::default();
                };
                match server::inject(server, kind).await {
                    Ok(Some(task)) => {
                        self.failover = Some(task);
                        Injected::default()
                    }
                    Ok(None) => Injected::default(),
                    Err(err) => Injected {
                        notes: vec![format!("!! {err}")],
                        ..Injected::default()
                    },
                }
            }
        }
    }

    /// Whether the failover under way (if any) is over.
    pub(crate) fn failover_finished(&self) -> bool {
        self.failover.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Undoes `fault`: brings the victim back, heals its connection, resumes the server, waits
    /// for the failover to complete, or does the second half of the operator's action.
    ///
    /// # Errors
    /// When a contender cannot be started again, or the operator's follow-up fails.
    pub(crate) async fn restore(
        &mut self,
        fault: &Fault,
        clock: Clock,
    ) -> Result<Restored, String> {
        let slot = fault.contender;
        let text = match fault.kind {
            FaultKind::Graceful | FaultKind::Crash | FaultKind::Resign => {
                contender::restore(&mut self.slots[slot], fault.kind, slot).await?
            }
            kind if kind.is_network() => {
                network::inject(&self.slots[slot], None)?;
                format!("c{slot} reconnected")
            }
            FaultKind::Operator => operator::follow_up(&self.spec, fault.action).await?,
            FaultKind::ClockStep => {
                self.slots[slot].set_clock_offset(0)?;
                format!("c{slot}'s wall clock back")
            }
            kind if kind.is_failover() => {
                return server::complete(
                    self.server.as_deref(),
                    self.failover.take(),
                    fault,
                    clock,
                )
                .await;
            }
            kind => server::restore(self.server.as_deref(), kind).await,
        };
        Ok(Restored::Now(text))
    }

    /// Undoes what would outlast the run: heals every connection, resumes the server, and
    /// abandons a failover under way.
    pub(crate) async fn heal(&mut self) {
        for slot in &self.slots {
            if let Err(err) = network::inject(slot, None) {
                eprintln!("!! {err}");
            }
            let _ = slot.set_clock_offset(0);
        }
        if let Some(server) = &self.server {
            server.set_paused(false).await;
            let _ = server.set_peers_cut(false).await;
        }
        if let Some(task) = self.failover.take() {
            task.abort();
            let _ = task.await;
        }
    }
}
