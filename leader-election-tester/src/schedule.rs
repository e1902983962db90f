//! What a run is asked to do, checked before anything starts, and the fault schedule's
//! arithmetic. Pure, and unit-tested here.

use std::time::Duration;

use clap::ValueEnum;

use crate::backend::{BackendKind, BackendSpec};
use crate::contender::Timing;
use crate::operator::OperatorAction;
use crate::report::FaultKind;

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
    /// Kill the Redis server and start it again, empty (needs `--spawn-redis`).
    ServerRestart,
    /// Freeze the Redis server (SIGSTOP), then resume it (needs `--spawn-redis`).
    ServerPause,
    /// The leader resigns: hands over at once, stays a follower for one lease.
    Resign,
    /// Act on the lease record as an operator would, through the tester's own connection:
    /// delete it, overwrite it with garbage, break a blob lease (redis, postgres and blob).
    Operator,
    /// Graceful, crash and partition in turn; with `--spawn-redis` also server restart and
    /// pause; on a backend with a lease record an operator's hands too.
    Mixed,
}

impl FaultMode {
    /// The fault kinds injected in turn; `server` when the tester started the server,
    /// `operator` when the backend has a lease record an operator can act on.
    pub(crate) fn kinds(self, server: bool, operator: bool) -> Vec<FaultKind> {
        match self {
            Self::None => vec![],
            Self::Graceful => vec![FaultKind::Graceful],
            Self::Crash => vec![FaultKind::Crash],
            Self::Partition => vec![FaultKind::Partition],
            Self::ServerRestart => vec![FaultKind::ServerRestart],
            Self::ServerPause => vec![FaultKind::ServerPause],
            Self::Operator => vec![FaultKind::Operator],
            Self::Resign => vec![FaultKind::Resign],
            Self::Mixed => {
                let mut kinds = vec![
                    FaultKind::Graceful,
                    FaultKind::Crash,
                    FaultKind::Partition,
                    FaultKind::Resign,
                ];
                if server {
                    kinds.extend([FaultKind::ServerRestart, FaultKind::ServerPause]);
                }
                if operator {
                    kinds.push(FaultKind::Operator);
                }
                kinds
            }
        }
    }
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
    /// One OS process per contender.
    pub(crate) processes: bool,
    /// Start a `redis-server` for the run (and allow server faults).
    pub(crate) spawn_redis: bool,
    /// No live output.
    pub(crate) quiet: bool,
    /// Each contender's priority for preferred leaders, by slot; empty: none.
    pub(crate) priorities: Vec<u32>,
}

impl RunConfig {
    /// Checks the combination of settings, before anything is started.
    ///
    /// # Errors
    /// A message naming the option at fault.
    pub(crate) fn check(&self) -> Result<(), String> {
        let server_faults = self.faults.kinds(true, false).iter().any(|k| k.is_server());
        if self.spawn_redis && self.backend.kind != BackendKind::Redis {
            return Err("--spawn-redis goes with --backend redis".into());
        }
        if server_faults && self.faults != FaultMode::Mixed && !self.spawn_redis {
            return Err("server faults need a server the tester started: add --spawn-redis".into());
        }
        if self.processes
            && matches!(
                self.backend.kind,
                BackendKind::Memory | BackendKind::BrokenMemory
            )
        {
            return Err(
                "--processes needs a backend shared between processes (redis or blob): \
                 the memory backend lives inside one process"
                    .into(),
            );
        }
        if self.faults == FaultMode::Operator
            && OperatorAction::for_backend(self.backend.kind).is_empty()
        {
            return Err(format!(
                "--faults operator needs a backend with a lease record the tester can act on \
                 (redis, postgres or blob), not {}",
                self.backend.kind.as_str()
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

/// How long a fault of `kind` needs to play out — the victim must hold the lease for `held`
/// first, then leadership must come back — for a schedule with `contenders` contenders on a
/// `lease`. A fault is injected only if the run lasts that long after it.
pub(crate) fn fault_budget(
    kind: FaultKind,
    lease: Duration,
    held: Duration,
    contenders: usize,
) -> Duration {
    // A released lease is taken at once; otherwise the lease must expire first.
    let needed = match kind {
        FaultKind::Graceful | FaultKind::Resign => lease / 2 + held,
        FaultKind::Crash | FaultKind::Partition => lease * 2 + held,
        // A restarted server grants no lease for one lease; a paused one is resumed after two.
        FaultKind::ServerRestart | FaultKind::ServerPause => lease * 3 + held,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kind: BackendKind, faults: FaultMode) -> RunConfig {
        RunConfig {
            backend: BackendSpec {
                kind,
                redis_url: "redis://127.0.0.1:6379".into(),
                connection_string: String::new(),
                postgres_url: String::new(),
                key: "k".into(),
                container: "c".into(),
                blob: "b".into(),
            },
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
            processes: false,
            spawn_redis: false,
            quiet: true,
            priorities: Vec::new(),
        }
    }

    #[test]
    fn a_sound_configuration_passes() {
        config(BackendKind::Redis, FaultMode::Mixed)
            .check()
            .unwrap();
        let mut spawned = config(BackendKind::Redis, FaultMode::ServerRestart);
        spawned.spawn_redis = true;
        spawned.check().unwrap();
    }

    #[test]
    fn each_bad_combination_names_its_option() {
        let mut c = config(BackendKind::Memory, FaultMode::None);
        c.spawn_redis = true;
        assert!(c.check().unwrap_err().contains("--spawn-redis"));
        let c = config(BackendKind::Redis, FaultMode::ServerPause);
        assert!(c.check().unwrap_err().contains("--spawn-redis"));
        let mut c = config(BackendKind::Memory, FaultMode::None);
        c.processes = true;
        assert!(c.check().unwrap_err().contains("--processes"));
        let c = config(BackendKind::Memory, FaultMode::Operator);
        assert!(c.check().unwrap_err().contains("--faults operator"));
        config(BackendKind::Postgres, FaultMode::Operator)
            .check()
            .unwrap();
        let mut c = config(BackendKind::Memory, FaultMode::None);
        c.contenders = 0;
        assert!(c.check().unwrap_err().contains("--contenders"));
        let mut c = config(BackendKind::Memory, FaultMode::None);
        c.timing.renew_ms = 5000;
        assert!(c.check().unwrap_err().contains("invalid timing"));
    }

    #[test]
    fn priorities_come_one_per_contender() {
        let mut c = config(BackendKind::Memory, FaultMode::Resign);
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
        assert_eq!(FaultMode::Mixed.kinds(false, false).len(), 4);
        assert_eq!(FaultMode::Mixed.kinds(true, false).len(), 6);
        assert_eq!(
            FaultMode::Mixed.kinds(false, true),
            [
                FaultKind::Graceful,
                FaultKind::Crash,
                FaultKind::Partition,
                FaultKind::Resign,
                FaultKind::Operator
            ]
        );
        assert!(FaultMode::None.kinds(true, true).is_empty());
    }

    #[test]
    fn fault_budgets_leave_room_for_recovery() {
        let lease = Duration::from_secs(2);
        let held = Duration::from_secs(1);
        assert_eq!(
            fault_budget(FaultKind::Graceful, lease, held, 3),
            Duration::from_secs(2)
        );
        assert_eq!(
            fault_budget(FaultKind::Crash, lease, held, 3),
            Duration::from_secs(5)
        );
        assert_eq!(
            fault_budget(FaultKind::ServerRestart, lease, held, 3),
            Duration::from_secs(7)
        );
        // Alone, the victim itself must come back.
        assert_eq!(
            fault_budget(FaultKind::Crash, lease, held, 1),
            Duration::from_secs(9)
        );
    }
}
