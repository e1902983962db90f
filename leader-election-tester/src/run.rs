//! One run: start the contenders, inject faults on the leader on a schedule, collect every
//! contender's leadership intervals on one clock, and build the report.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use leader_election::{LeaseStore, MemoryLeaseStore};
use leader_election_fixtures::S3Emulator;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use crate::backend::{self, BackendKind, redact_url};
use crate::contender::{Clock, Event, InProcess, Process};
use crate::etcd::SpawnedEtcd;
use crate::ledger::Ledger;
use crate::live::Live;
use crate::operator::{Operator, OperatorAction};
use crate::proxy::Proxies;
use crate::record::Record;
use crate::redis_server::{CLUSTER_VOTES_AGAIN_MS, FailoverDone, SpawnedRedis, Topology};
use crate::report::{Fault, FaultKind, OpCounts, Report, RunData};
use crate::schedule::{FAILOVER_COMPLETES, RunConfig, fault_budget};

/// The result of a run: the report and what it was computed from.
#[derive(Debug)]
pub(crate) struct RunOutput {
    /// The report.
    pub(crate) report: Report,
    /// The recorded data (for the timeline).
    pub(crate) data: RunData,
}

/// A contender of either kind.
#[derive(Debug)]
enum Slot {
    InProcess(Box<InProcess>),
    Process(Box<Process>),
}

impl Slot {
    async fn start(&mut self) -> Result<(), String> {
        match self {
            Self::InProcess(c) => c.start().await,
            Self::Process(c) => c.start().await,
        }
    }

    async fn stop(&mut self, grace: Duration) {
        match self {
            Self::InProcess(c) => c.stop().await,
            Self::Process(c) => c.stop(grace).await,
        }
    }

    async fn crash(&mut self) {
        match self {
            Self::InProcess(c) => c.crash(),
            Self::Process(c) => c.crash().await,
        }
    }

    async fn restart(&mut self) -> Result<(), String> {
        match self {
            Self::InProcess(c) => c.restart().await,
            Self::Process(c) => c.restart().await,
        }
    }

    async fn resign(&mut self, cool_down: Duration) {
        match self {
            Self::InProcess(c) => c.resign(cool_down).await,
            Self::Process(c) => c.resign(cool_down).await,
        }
    }

    fn set_partitioned(&self, cut: bool) {
        match self {
            Self::InProcess(c) => c.set_partitioned(cut),
            Self::Process(c) => c.set_partitioned(cut),
        }
    }

    fn generation(&self) -> u32 {
        match self {
            Self::InProcess(c) => c.generation(),
            Self::Process(c) => c.generation(),
        }
    }
}

/// Where the fault schedule is.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Waiting for a leader and for the quiet time to pass.
    Settle { until: Instant },
    /// A fault is in effect; the victim is restored when a new leader appears or at
    /// `restore_by`; the fault counts as unrecovered after `give_up`.
    Faulted {
        index: usize,
        restore_by: Instant,
        give_up: Instant,
        restored: bool,
    },
}

struct Run {
    cfg: RunConfig,
    clock: Clock,
    slots: Vec<Slot>,
    events: mpsc::UnboundedReceiver<Event>,
    live: Live,
    ledger: Ledger,
    last_confirmed: Vec<Option<f64>>,
    last_error: Vec<Option<String>>,
    child_ops: HashMap<(usize, u32), OpCounts>,
    faults: Vec<Fault>,
    errors: usize,
    server: Option<Arc<SpawnedRedis>>,
    /// The etcd cluster of `--spawn-etcd`.
    etcd: Option<Arc<SpawnedEtcd>>,
    /// The S3 emulator of `--spawn-s3`.
    s3: Option<Arc<S3Emulator>>,
    /// A server failover under way: it completes in the background while the run goes on.
    failover: Option<JoinHandle<Result<FailoverDone, String>>>,
    operator: Operator,
    /// The `min_replica_acks` of the Redis contenders, for the report.
    min_replica_acks: Option<u32>,
}

/// Runs the tester as configured and returns its report.
///
/// # Errors
/// When the backend cannot be opened or contenders cannot be started.
pub(crate) async fn run(mut cfg: RunConfig) -> Result<RunOutput, String> {
    cfg.check()?;
    let server = match cfg.spawn_redis {
        Some(topology) => {
            let server = SpawnedRedis::start(topology, &cfg.backend.key).await?;
            cfg.backend.redis_url = server.url();
            if cfg.backend.redis_min_replica_acks.is_none() {
                cfg.backend.redis_min_replica_acks = topology.default_min_replica_acks();
            }
            Some(Arc::new(server))
        }
        None => None,
    };
    let etcd = if cfg.spawn_etcd {
        let etcd = SpawnedEtcd::start().await?;
        cfg.backend.etcd_endpoints = etcd.endpoints();
        Some(Arc::new(etcd))
    } else {
        None
    };
    let s3 = if cfg.spawn_s3 {
        // The fixture panics when moto is missing or does not start: report that.
        let emulator = tokio::spawn(S3Emulator::start())
            .await
            .map_err(|e| format!("cannot start the S3 emulator: {e}"))?;
        cfg.backend.s3.endpoint = emulator.endpoint();
        Some(Arc::new(emulator))
    } else {
        None
    };
    if !matches!(
        cfg.backend.kind,
        BackendKind::Memory | BackendKind::BrokenMemory
    ) {
        preflight(&cfg).await?;
    }
    let needs_proxy = cfg.backend.kind != BackendKind::Memory
        && cfg
            .faults
            .kinds(cfg.capabilities())
            .contains(&FaultKind::Partition);
    let upstreams = if needs_proxy {
        let upstreams = cfg.backend.upstreams()?;
        if upstreams.is_empty() {
            return Err("no upstream address for the proxy".into());
        }
        Some(upstreams)
    } else {
        None
    };

    let epoch = Instant::now();
    let epoch_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs_f64()
        * 1000.0;
    let clock = Clock {
        origin: epoch,
        base_ms: 0.0,
    };
    let (sink, events) = mpsc::unbounded_channel();
    let memory = MemoryLeaseStore::new();
    let mut slots = Vec::with_capacity(cfg.contenders);
    for slot in 0..cfg.contenders {
        let proxy = match &upstreams {
            Some(upstreams) => Some(
                Proxies::start(upstreams)
                    .await
                    .map_err(|e| format!("cannot start a proxy: {e}"))?,
            ),
            None => None,
        };
        slots.push(if cfg.processes {
            Slot::Process(Box::new(Process::new(
                slot,
                &cfg.backend,
                proxy,
                cfg.timing.for_slot(&cfg.priorities, slot),
                epoch_unix_ms,
                sink.clone(),
            )))
        } else {
            Slot::InProcess(Box::new(
                InProcess::new(
                    slot,
                    &cfg.backend,
                    &memory,
                    proxy,
                    cfg.timing.for_slot(&cfg.priorities, slot),
                    clock,
                    sink.clone(),
                )
                .await?,
            ))
        });
    }
    drop(sink);
    let n = cfg.contenders;
    let cfg_backend = cfg.backend.clone();
    let min_replica_acks = match cfg.backend.kind {
        BackendKind::Redis => backend::redis_store(&cfg.backend, &cfg.timing.options("report"))
            .ok()
            .map(|store| store.min_replica_acks()),
        _ => None,
    };
    let run = Run {
        live: Live::new(cfg.quiet),
        cfg,
        clock,
        slots,
        events,
        ledger: Ledger::new(n),
        last_confirmed: vec![None; n],
        last_error: vec![None; n],
        child_ops: HashMap::new(),
        faults: Vec::new(),
        errors: 0,
        server,
        etcd,
        s3,
        failover: None,
        operator: Operator::new(&cfg_backend),
        min_replica_acks,
    };
    run.go(epoch).await
}

/// Checks that the backend answers before any contender starts, so that a server that is not
/// running gives one clear error instead of a run without a leader.
async fn preflight(cfg: &RunConfig) -> Result<(), String> {
    let store = cfg
        .backend
        .open(&MemoryLeaseStore::new(), &cfg.timing.options("preflight"))
        .await?;
    let limit = Duration::from_millis(cfg.timing.operation_timeout_ms).max(Duration::from_secs(3));
    let probe = async {
        store.connect().await?;
        store.current_leader().await
    };
    // The hint to start the server or point elsewhere fits only when nothing answered.
    let (failure, nothing_answered) = match tokio::time::timeout(limit, probe).await {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(err)) => (err.to_string(), refused(&err)),
        Err(_) => (
            format!("no answer within {}", humantime::format_duration(limit)),
            true,
        ),
    };
    let (what, hint) = match cfg.backend.kind {
        BackendKind::Redis => (
            format!("Redis at {}", redact_url(&cfg.backend.redis_url)),
            "start it (`docker compose up -d redis`) or pass --redis-url / REDIS_URL",
        ),
        BackendKind::Postgres => (
            format!("PostgreSQL at {}", redact_url(&cfg.backend.postgres_url)),
            "start it (`docker compose up -d postgres`) or pass --postgres-url / DATABASE_URL",
        ),
        BackendKind::Etcd => (
            format!("etcd at {}", cfg.backend.etcd_endpoints.join(",")),
            "start it (`docker compose up -d etcd`), pass --etcd-endpoints / ETCD_ENDPOINTS, \
             or --spawn-etcd",
        ),
        _ => (
            "the blob service of the connection string".to_owned(),
            "start Azurite (`docker compose up -d azurite`) or pass --connection-string / \
             AZURE_STORAGE_CONNECTION_STRING",
        ),
    };
    Err(if nothing_answered {
        format!("cannot reach {what}: {failure}; {hint}")
    } else {
        format!("cannot use {what}: {failure}")
    })
}

/// Whether `err` says that nothing listens where the backend should be (connection refused):
/// the only case where "start it, or pass its URL" is the right hint. An error the server
/// answered with (TLS required, a password, `pg_hba.conf`) is shown alone.
fn refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        // Some clients (fred) keep only the text of the I/O error.
        if err
            .to_string()
            .to_lowercase()
            .contains("connection refused")
        {
            return true;
        }
        next = err.source();
    }
    false
}

impl Run {
    fn lease(&self) -> Duration {
        Duration::from_millis(self.cfg.timing.lease_ms)
    }

    async fn go(mut self, epoch: Instant) -> Result<RunOutput, String> {
        let mode = if self.cfg.processes {
            "one process each"
        } else {
            "in this process"
        };
        self.live.line(
            0.0,
            &format!(
                "starting {} contenders ({mode}) on {} for {}; lease {} ms, renew {} ms; faults: {:?}",
                self.cfg.contenders,
                self.cfg.backend.kind.as_str(),
                humantime::format_duration(self.cfg.duration),
                self.cfg.timing.lease_ms,
                self.cfg.timing.renew_ms,
                self.cfg.faults
            ),
        );
        for slot in &mut self.slots {
            slot.start().await?;
        }
        let end_at = epoch + self.cfg.duration;
        let mut phase = Phase::Settle {
            until: Instant::now() + self.cfg.fault_interval,
        };
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let kinds = self.cfg.faults.kinds(self.cfg.capabilities());
        if let Some(server) = &self.server {
            let text = server.describe();
            self.live.line(self.clock.now_ms(), &text);
        }
        loop {
            let now = Instant::now();
            if now >= end_at {
                break;
            }
            let wake = match phase {
                Phase::Settle { until } => until,
                Phase::Faulted {
                    restore_by,
                    give_up,
                    restored,
                    ..
                } => {
                    if restored {
                        give_up
                    } else {
                        restore_by
                    }
                }
            }
            .max(now + Duration::from_millis(20))
            .min(end_at);
            tokio::select! {
                Some(event) = self.events.recv() => self.handle(event),
                () = sleep_until(wake) => {}
                _ = tick.tick() => self.progress(),
            }
            phase = self.advance(phase, &kinds, end_at).await?;
            if matches!(phase, Phase::Settle { .. })
                && self
                    .cfg
                    .stop_after_faults
                    .is_some_and(|n| self.faults.len() >= n)
            {
                self.live.line(
                    self.clock.now_ms(),
                    &format!("{} faults played out: ending the run", self.faults.len()),
                );
                break;
            }
        }
        self.shutdown().await
    }

    /// Moves the fault schedule on.
    async fn advance(
        &mut self,
        phase: Phase,
        kinds: &[FaultKind],
        end_at: Instant,
    ) -> Result<Phase, String> {
        let now = Instant::now();
        let lease = self.lease();
        match phase {
            Phase::Settle { until } => {
                let Some(leader) = self.leader() else {
                    return Ok(phase);
                };
                // Let the leader renew a couple of times first, and leave room for the fault to
                // play out before the run ends.
                let held = Duration::from_millis(self.cfg.timing.renew_ms) * 2;
                let leader_since_ms = self.ledger.open(leader).map_or(0.0, |o| o.start_ms);
                if now < until
                    || self.clock.now_ms() - leader_since_ms < held.as_secs_f64() * 1000.0
                    || kinds.is_empty()
                {
                    return Ok(phase);
                }
                let kind = kinds[self.faults.len() % kinds.len()];
                if now + fault_budget(kind, lease, held, self.cfg.contenders) > end_at {
                    return Ok(phase);
                }
                if !self.cluster_votes_again(kind) {
                    return Ok(phase);
                }
                let index = self.inject(kind, leader).await;
                // A failover is over only once complete: wait for it before restoring.
                let extra = match kind {
                    FaultKind::ServerFailover => FAILOVER_COMPLETES,
                    FaultKind::ServerHandover => FAILOVER_COMPLETES / 3,
                    _ => Duration::ZERO,
                };
                let restore_by = Instant::now() + lease * 2 + extra;
                Ok(Phase::Faulted {
                    index,
                    restore_by,
                    give_up: restore_by + lease * 4,
                    restored: false,
                })
            }
            Phase::Faulted {
                index,
                restore_by,
                give_up,
                restored,
            } => {
                let at_ms = self.faults[index].at_ms;
                let mut recovered = self.ledger.began_after(at_ms);
                let handover = self.faults[index].kind == FaultKind::ServerHandover;
                // A coordinated failover need not end the term: it is over when complete, and
                // recovered if somebody leads then.
                let due = if handover {
                    self.failover.as_ref().is_none_or(JoinHandle::is_finished)
                } else {
                    recovered
                };
                let mut restored = restored;
                if !restored && (due || now >= restore_by) {
                    self.restore(index).await?;
                    restored = true;
                }
                if handover && restored {
                    recovered |= self.leader().is_some();
                }
                if restored && recovered {
                    return Ok(Phase::Settle {
                        until: Instant::now() + self.cfg.fault_interval,
                    });
                }
                if now >= give_up {
                    let fault = &self.faults[index];
                    let text = format!(
                        "!! no new leader {} after the {} of c{}",
                        humantime::format_duration(lease * 6),
                        fault.kind.as_str(),
                        fault.contender
                    );
                    self.live.line(self.clock.now_ms(), &text);
                    return Ok(Phase::Settle {
                        until: Instant::now() + self.cfg.fault_interval,
                    });
                }
                Ok(Phase::Faulted {
                    index,
                    restore_by,
                    give_up,
                    restored,
                })
            }
        }
    }

    /// Whether a cluster failover of `kind` can succeed now: a primary votes for a replica
    /// of the same primary only once per two `cluster-node-timeout`s, so a failover that
    /// follows another too closely gets no votes (a coordinated one then pauses the primary's
    /// clients for its 5 s timeout, and fails). True for every other fault.
    fn cluster_votes_again(&self, kind: FaultKind) -> bool {
        if !matches!(kind, FaultKind::ServerFailover | FaultKind::ServerHandover)
            || self.cfg.spawn_redis != Some(Topology::Cluster)
        {
            return true;
        }
        self.faults
            .iter()
            .rev()
            .find(|f| {
                matches!(
                    f.kind,
                    FaultKind::ServerFailover | FaultKind::ServerHandover
                )
            })
            .is_none_or(|f| self.clock.now_ms() - f.at_ms >= CLUSTER_VOTES_AGAIN_MS)
    }

    /// The contender leading now, as far as the records say.
    fn leader(&self) -> Option<usize> {
        self.ledger.leader()
    }

    fn drain(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.handle(event);
        }
    }

    async fn inject(&mut self, kind: FaultKind, slot: usize) -> usize {
        // Take in everything reported so far, so the victim's last renewal is up to date.
        self.drain();
        let token = self.ledger.open(slot).map(|o| o.token);
        let last_confirmed_ms = self.last_confirmed[slot];
        let at_ms = self.clock.now_ms();
        let token_text = token.map_or_else(String::new, |t| format!(" (token {t})"));
        let mut action = None;
        let what = match kind {
            FaultKind::Graceful => "stop the leader gracefully",
            FaultKind::Crash if self.cfg.processes => "kill the leader with SIGKILL",
            FaultKind::Crash => "crash the leader (no release)",
            FaultKind::Partition => "cut the leader off the backend",
            FaultKind::ServerRestart if self.s3.is_some() => {
                "restart the S3 emulator (it comes back empty, without the bucket)"
            }
            FaultKind::ServerRestart => "restart the Redis server (SIGKILL, empty on restart)",
            FaultKind::ServerPause => "pause the Redis server (SIGSTOP)",
            FaultKind::ServerFailover => "fail the Redis primary over to a replica",
            FaultKind::ServerHandover => match &self.etcd {
                Some(etcd) => etcd.describe_next(),
                None => "hand the Redis primary's slot over to its replica (CLUSTER FAILOVER)",
            },
            FaultKind::Operator => "act on the lease record as an operator",
            FaultKind::Resign => "the leader resigns (hands over, stays out for one lease)",
        };
        self.live.line(
            at_ms,
            &format!("FAULT {}: {what}: c{slot}{token_text}", kind.as_str()),
        );
        match kind {
            FaultKind::Graceful => {
                let grace = self.lease() * 2;
                self.slots[slot].stop(grace).await;
            }
            FaultKind::Crash => {
                let generation = self.slots[slot].generation();
                self.slots[slot].crash().await;
                if self.cfg.processes {
                    // The process is gone: whatever it led ended when it died.
                    let dead_ms = self.clock.now_ms();
                    self.ledger.killed(slot, generation, dead_ms);
                    self.live.line(
                        dead_ms,
                        &format!("c{slot} is dead: its term{token_text} ended"),
                    );
                }
            }
            FaultKind::Partition => self.slots[slot].set_partitioned(true),
            FaultKind::ServerRestart => {
                if let Some(server) = &self.server
                    && let Err(err) = server.restart().await
                {
                    self.live.line(self.clock.now_ms(), &format!("!! {err}"));
                }
                if let Some(s3) = &self.s3 {
                    let s3 = Arc::clone(s3);
                    // The fixture panics when the emulator does not come back: say so.
                    if let Err(err) = tokio::spawn(async move { s3.restart().await }).await {
                        self.live.line(
                            self.clock.now_ms(),
                            &format!("!! the S3 emulator did not come back: {err}"),
                        );
                    }
                }
            }
            FaultKind::ServerPause => {
                if let Some(server) = &self.server {
                    server.set_paused(true).await;
                }
            }
            FaultKind::ServerFailover => {
                if let Some(server) = &self.server {
                    let server = Arc::clone(server);
                    self.failover = Some(tokio::spawn(async move { server.failover().await }));
                }
            }
            FaultKind::ServerHandover => {
                if let Some(server) = &self.server {
                    let server = Arc::clone(server);
                    self.failover = Some(tokio::spawn(async move { server.handover().await }));
                } else if let Some(etcd) = &self.etcd {
                    let etcd = Arc::clone(etcd);
                    self.failover = Some(tokio::spawn(async move { etcd.kill_member().await }));
                }
            }
            FaultKind::Resign => {
                let cool_down = self.lease();
                self.slots[slot].resign(cool_down).await;
            }
            FaultKind::Operator => {
                let actions = OperatorAction::for_backend(self.cfg.backend.kind);
                let done = self.faults.iter().filter(|f| f.action.is_some()).count();
                let chosen = actions[done % actions.len()];
                self.live.line(
                    self.clock.now_ms(),
                    &format!("operator: {}", chosen.describe()),
                );
                if let Err(err) = self.operator.act(chosen).await {
                    self.live.line(self.clock.now_ms(), &format!("!! {err}"));
                }
                action = Some(chosen);
            }
        }
        self.faults.push(Fault {
            kind,
            contender: slot,
            token,
            at_ms,
            last_confirmed_ms,
            restored_at_ms: None,
            action,
        });
        self.faults.len() - 1
    }

    async fn restore(&mut self, index: usize) -> Result<(), String> {
        let (kind, slot) = (self.faults[index].kind, self.faults[index].contender);
        match kind {
            FaultKind::Graceful | FaultKind::Crash => self.slots[slot].restart().await?,
            FaultKind::Partition => self.slots[slot].set_partitioned(false),
            // Started again at once, when injected.
            FaultKind::ServerRestart => {}
            FaultKind::ServerPause => {
                if let Some(server) = &self.server {
                    server.set_paused(false).await;
                }
            }
            FaultKind::ServerFailover | FaultKind::ServerHandover => {
                let done = match self.failover.take() {
                    Some(task) => task.await.map_err(|e| e.to_string())?,
                    None => Err("no failover was started".to_owned()),
                };
                match done {
                    Ok(done) if self.etcd.is_some() => {
                        let at_ms = self.faults[index].at_ms;
                        let text = format!(
                            "etcd member {} killed: the others answered after {:.0} ms (Raft \
                             leader {}); restarted, back in the cluster after {:.0} ms",
                            done.old_primary,
                            self.clock.ms(done.promoted) - at_ms,
                            done.new_primary,
                            done.rejoined.map_or(0.0, |r| self.clock.ms(r) - at_ms),
                        );
                        self.live.line(self.clock.now_ms(), &text);
                        self.faults[index].restored_at_ms = Some(self.clock.ms(done.completed));
                    }
                    Ok(done) => {
                        let at_ms = self.faults[index].at_ms;
                        let mut text = format!(
                            "failover {} -> {}: promoted after {:.0} ms, complete after {:.0} ms",
                            done.old_primary,
                            done.new_primary,
                            self.clock.ms(done.promoted) - at_ms,
                            self.clock.ms(done.completed) - at_ms,
                        );
                        if let Some(rejoined) = done.rejoined {
                            text.push_str(&format!(
                                "; {} restarted, a replica again after {:.0} ms",
                                done.old_primary,
                                self.clock.ms(rejoined) - at_ms
                            ));
                        }
                        self.live.line(self.clock.now_ms(), &text);
                        self.faults[index].restored_at_ms = Some(self.clock.ms(done.completed));
                    }
                    Err(err) => self.live.line(self.clock.now_ms(), &format!("!! {err}")),
                }
                return Ok(());
            }
            // The cool-down ends by itself.
            FaultKind::Resign => {}
            FaultKind::Operator => {
                if let Some(action) = self.faults[index].action {
                    self.operator.follow_up(action).await?;
                }
            }
        }
        let at_ms = self.clock.now_ms();
        self.faults[index].restored_at_ms = Some(at_ms);
        let text = match kind {
            FaultKind::Partition => format!("c{slot} reconnected"),
            FaultKind::ServerRestart if self.s3.is_some() => "the S3 emulator is back".to_owned(),
            FaultKind::ServerRestart => "redis-server is back".to_owned(),
            FaultKind::ServerPause => "redis-server resumed (SIGCONT)".to_owned(),
            FaultKind::Operator => "operator done".to_owned(),
            FaultKind::Resign => format!("c{slot} back in the election"),
            _ => format!("c{slot} restarted"),
        };
        self.live.line(at_ms, &text);
        Ok(())
    }

    fn handle(&mut self, event: Event) {
        let Event {
            slot,
            generation,
            record,
        } = event;
        match record {
            Record::Acquired { at_ms, token } => {
                self.last_error[slot] = None;
                let at_ms = self.ledger.acquired(slot, generation, token, at_ms);
                let others: Vec<String> = self
                    .ledger
                    .other_leaders(slot)
                    .into_iter()
                    .map(|other| format!("c{other}"))
                    .collect();
                let mut text = format!("c{slot} leads, token {token}");
                if let Some(fault) = self.faults.last()
                    && fault.at_ms < at_ms
                    && self.ledger.count_began_after(fault.at_ms) == 1
                {
                    text.push_str(&format!(
                        "  (new leader {:.0} ms after the {})",
                        at_ms - fault.at_ms,
                        fault.kind.as_str()
                    ));
                }
                if !others.is_empty() {
                    text.push_str(&format!("  !! TWO LEADERS: also {}", others.join(", ")));
                }
                self.live.line(at_ms, &text);
            }
            Record::Lost {
                at_ms,
                token,
                reason,
            } => {
                self.last_error[slot] = None;
                self.ledger.lost(slot, generation, token, at_ms, &reason);
                self.live.line(
                    at_ms,
                    &format!("c{slot} stops leading, token {token} ({reason})"),
                );
            }
            Record::Confirmed {
                at_ms,
                returned_ms,
                acquired,
            } => {
                if generation == self.slots[slot].generation() {
                    self.last_confirmed[slot] = Some(at_ms);
                }
                if acquired {
                    self.ledger
                        .acquisition_confirmed(slot, generation, returned_ms);
                }
            }
            Record::Releasing { at_ms } => self.ledger.releasing(slot, generation, at_ms),
            Record::Error { at_ms, message } => {
                self.errors += 1;
                if self.last_error[slot].as_deref() != Some(message.as_str()) {
                    self.live
                        .line(at_ms, &format!("c{slot} backend error: {message}"));
                    self.last_error[slot] = Some(message);
                }
            }
            Record::Ops { ops } => {
                self.child_ops.insert((slot, generation), ops);
            }
            Record::Exited { .. } => {}
        }
    }

    fn progress(&mut self) {
        let now_ms = self.clock.now_ms();
        let leader = match self.leader() {
            Some(slot) => format!(
                "leader c{slot} (token {})",
                self.ledger.open(slot).map_or(0, |o| o.token)
            ),
            None => "no leader".to_owned(),
        };
        let terms = self.ledger.terms();
        let summary = format!(
            "{leader} | terms {terms} | faults {} | errors {}",
            self.faults.len(),
            self.errors
        );
        let total = self.cfg.duration.as_secs_f64() * 1000.0;
        self.live.progress(now_ms, total, &summary);
    }

    async fn shutdown(mut self) -> Result<RunOutput, String> {
        self.drain();
        let run_end_ms = self.clock.now_ms();
        self.live.finish();
        self.live
            .line(run_end_ms, "time is up: stopping every contender");
        for slot in &self.slots {
            slot.set_partitioned(false);
        }
        if let Some(server) = &mut self.server {
            server.set_paused(false).await;
        }
        let grace = self.lease() * 2;
        // Followers first, so that stopping the leader hands over to nobody.
        let leader = self.leader();
        let mut order: Vec<usize> = (0..self.slots.len())
            .filter(|s| Some(*s) != leader)
            .collect();
        order.extend(leader);
        for slot in order {
            self.slots[slot].stop(grace).await;
        }
        // Let the last events arrive.
        let quiet_until = Instant::now() + Duration::from_millis(300);
        while let Ok(Some(event)) = tokio::time::timeout_at(quiet_until, self.events.recv()).await {
            self.handle(event);
        }
        let end_ms = self.clock.now_ms();
        let intervals = std::mem::take(&mut self.ledger).finish(end_ms);
        let ops = self.ops();
        let leading: f64 = intervals
            .iter()
            .map(|i| (i.end_ms.min(run_end_ms) - i.start_ms.max(0.0)).max(0.0))
            .sum();
        let down: f64 = self
            .faults
            .iter()
            .filter(|f| matches!(f.kind, FaultKind::Graceful | FaultKind::Crash))
            .map(|f| (f.restored_at_ms.unwrap_or(run_end_ms).min(run_end_ms) - f.at_ms).max(0.0))
            .sum();
        let follower_time_ms = (self.cfg.contenders as f64 * run_end_ms - down - leading).max(0.0);
        let data = RunData {
            backend: self.cfg.backend.kind.as_str().to_owned(),
            spawned: self
                .cfg
                .spawn_redis
                .map(|t| t.as_str().to_owned())
                .or_else(|| self.cfg.spawn_etcd.then(|| "etcd-cluster".to_owned()))
                .or_else(|| self.cfg.spawn_s3.then(|| "s3-emulator".to_owned())),
            redis_min_replica_acks: self.min_replica_acks,
            contenders: self.cfg.contenders,
            processes: self.cfg.processes,
            duration_ms: run_end_ms,
            lease_duration_ms: self.cfg.timing.lease_ms as f64,
            intervals,
            faults: std::mem::take(&mut self.faults),
            ops,
            follower_time_ms,
        };
        if let Some(task) = self.failover.take() {
            task.abort();
            let _ = task.await;
        }
        // Dropping the deployment kills its processes.
        drop(self.server.take());
        let report = Report::build(&data);
        Ok(RunOutput { report, data })
    }

    fn ops(&self) -> OpCounts {
        let mut total = OpCounts::default();
        if self.cfg.processes {
            for ops in self.child_ops.values() {
                total.add(ops);
            }
        } else {
            for slot in &self.slots {
                if let Slot::InProcess(c) = slot {
                    total.add(&c.ops());
                }
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use leader_election::{Error, Operation};

    use super::refused;

    #[tokio::test]
    async fn only_a_refused_connection_gets_the_hint_to_start_the_server() {
        let closed = leader_election_fixtures::closed_port();
        let io = tokio::net::TcpStream::connect(("127.0.0.1", closed))
            .await
            .expect_err("nothing listens there");
        assert!(refused(&Error::backend(Operation::Connect, true, io)));
        // fred keeps the I/O error as text.
        let text = "IO Error: Connection refused (os error 111)";
        assert!(refused(&Error::backend(Operation::Connect, true, text)));
        // The server answered: its message is the whole story.
        let answered = "cannot open a connection: FATAL: pg_hba.conf rejects connection for \
                        host \"127.0.0.1\", user \"postgres\", database \"postgres\", no \
                        encryption (SQLSTATE 28000)";
        assert!(!refused(&Error::backend(
            Operation::Connect,
            true,
            answered
        )));
        assert!(!refused(&Error::backend(
            Operation::Connect,
            false,
            "WRONGPASS invalid username-password pair"
        )));
    }
}
