//! One run: start the backend's deployment and the contenders, inject faults on the leader on
//! a schedule (what each fault does is in [`crate::faults`]), collect every contender's
//! leadership intervals on one clock, and build the report.

mod events;
mod preflight;

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::contender::{Clock, Event, InProcess, Process, Slot, shared_clock_ms};
use crate::faults::{ChildClock, FaultKind, Injected, Proxies, Restored, Targets, libfaketime};
use crate::ledger::Ledger;
use crate::live::Live;
use crate::record::Record;
use crate::report::{Fault, JobReport, NotInjected, OpCounts, Report, RunData};
use crate::schedule::{FAILOVER_COMPLETES, Network, RunConfig, fault_budget, run_needs};

/// The result of a run: the report and what it was computed from.
#[derive(Debug)]
pub(crate) struct RunOutput {
    /// The report.
    pub(crate) report: Report,
    /// The recorded data (for the timeline).
    pub(crate) data: RunData,
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
    /// The contenders, the deployment and the lease record the faults act on.
    targets: Targets,
    events: mpsc::UnboundedReceiver<Event>,
    live: Live,
    ledger: Ledger,
    last_confirmed: Vec<Option<f64>>,
    /// When each contender last sent a renewal, answered or not.
    last_sent: Vec<Option<f64>>,
    last_error: Vec<Option<String>>,
    child_ops: HashMap<(usize, u32), OpCounts>,
    faults: Vec<Fault>,
    /// The kinds asked for and never injected, once the schedule has ended.
    not_injected: Vec<NotInjected>,
    errors: usize,
    /// What the report's `spawned` says.
    spawned: Option<String>,
    /// The `min_replica_acks` of the Redis contenders, for the report.
    min_replica_acks: Option<u32>,
    /// Ctrl-C, which ends the run as its time would.
    interrupt: Interrupt,
    /// Every run of a scheduled job (`--jobs`), and the notices of missed and interrupted
    /// occurrences by job.
    job_runs: leader_election_jobs::testing::RunLog,
    job_notices: HashMap<(String, String), u64>,
    /// When each occurrence of a job first started, by job and due time.
    job_started: HashMap<(String, u64), f64>,
    /// The occurrences found interrupted, by job and due time.
    job_interrupted: std::collections::HashSet<(String, u64)>,
}

/// Ctrl-C (SIGINT), watched from the start of the run, before anything is made: pressed while
/// servers, namespaces or contenders are being set up, it ends the run as soon as they are,
/// as its time would (every contender stopped, every fault healed, every namespace and link
/// removed, the report of what ran), instead of killing the tester half-way.
struct Interrupt(#[cfg(unix)] tokio::signal::unix::Signal);

impl Interrupt {
    /// Starts watching.
    ///
    /// # Errors
    /// When the signal handler cannot be installed.
    fn watch() -> Result<Self, String> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            signal(SignalKind::interrupt())
                .map(Self)
                .map_err(|e| format!("cannot watch for Ctrl-C: {e}"))
        }
        #[cfg(not(unix))]
        Ok(Self())
    }

    /// Waits for Ctrl-C (for ever, once it was pressed and seen).
    async fn recv(&mut self) {
        #[cfg(unix)]
        if self.0.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Runs the tester as configured and returns its report.
///
/// # Errors
/// When the backend cannot be opened or contenders cannot be started.
pub(crate) async fn run(mut cfg: RunConfig) -> Result<RunOutput, String> {
    cfg.check()?;
    let interrupt = Interrupt::watch()?;
    let backend = cfg.backend.backend;
    // With `--network netns` every contender process reaches the backend through a relay on
    // the lab's host address (the proxies, never cut), or at that address where a deployment
    // the tester starts announces it (Sentinel), and a partition drops its packets.
    let lab = lab(&cfg)?;
    #[cfg(target_os = "linux")]
    if let Some(lab) = &lab {
        cfg.backend.host = Some(lab.host_ip());
    }
    let server = match backend.spawn_flag(&cfg.backend) {
        Some(_) => Some(backend.spawn(&mut cfg.backend).await?),
        None => None,
    };
    preflight::preflight(&cfg).await?;
    // A backend reached over the network is cut off by a proxy per contender; the others (in
    // this process) by the contender's store.
    let faketime = cfg.clock_faults.map(|_| libfaketime()).transpose()?;
    let needs_proxy = lab.is_some()
        || cfg
            .faults
            .kinds(cfg.capabilities())
            .contains(&FaultKind::Partition);
    let upstreams = if needs_proxy {
        Some(backend.upstreams(&cfg.backend)?).filter(|u| !u.is_empty())
    } else {
        None
    };

    let epoch = Instant::now();
    let epoch_ms = shared_clock_ms();
    let clock = Clock {
        origin: epoch,
        base_ms: 0.0,
        rate: 1.0,
    };
    let (sink, events) = mpsc::unbounded_channel();
    let mut slots = Vec::with_capacity(cfg.contenders);
    for slot in 0..cfg.contenders {
        let bind = match &lab {
            #[cfg(target_os = "linux")]
            Some(lab) => lab.host_ip().into(),
            #[cfg(not(target_os = "linux"))]
            Some(lab) => match *lab {},
            None => std::net::Ipv4Addr::LOCALHOST.into(),
        };
        let proxy = match &upstreams {
            Some(upstreams) => Some(
                Proxies::start_on(bind, upstreams)
                    .await
                    .map_err(|e| format!("cannot start a proxy: {e}"))?,
            ),
            None => None,
        };
        slots.push(if cfg.processes {
            let mut process = Process::new(
                slot,
                &cfg.backend,
                proxy,
                (cfg.timing.for_slot(&cfg.priorities, slot), cfg.jobs),
                epoch_ms,
                sink.clone(),
            );
            if let (Some(library), Some(mode)) = (&faketime, cfg.clock_faults) {
                process = process.with_clock(ChildClock::new(library, mode, slot)?);
            }
            Slot::Process(Box::new(match &lab {
                #[cfg(target_os = "linux")]
                Some(lab) => process.in_namespace(
                    lab.namespace()
                        .map_err(|e| format!("cannot make a network namespace: {e}"))?,
                ),
                #[cfg(not(target_os = "linux"))]
                Some(lab) => match *lab {},
                None => process,
            }))
        } else {
            Slot::InProcess(Box::new(
                InProcess::new(
                    slot,
                    &cfg.backend,
                    proxy,
                    (cfg.timing.for_slot(&cfg.priorities, slot), cfg.jobs),
                    clock,
                    sink.clone(),
                )
                .await?,
            ))
        });
    }
    drop(sink);
    let n = cfg.contenders;
    let min_replica_acks = backend.min_replica_acks(&cfg.backend, &cfg.timing.options("report"));
    let lease = Duration::from_millis(cfg.timing.lease_ms);
    let run = Run {
        live: Live::new(cfg.quiet),
        spawned: server.as_ref().map(|s| s.name()),
        targets: Targets::new(slots, server, cfg.backend.clone(), cfg.processes, lease),
        cfg,
        clock,
        events,
        ledger: Ledger::new(n),
        last_confirmed: vec![None; n],
        last_sent: vec![None; n],
        last_error: vec![None; n],
        child_ops: HashMap::new(),
        faults: Vec::new(),
        not_injected: Vec::new(),
        errors: 0,
        min_replica_acks,
        interrupt,
        job_runs: leader_election_jobs::testing::RunLog::new(),
        job_notices: HashMap::new(),
        job_started: HashMap::new(),
        job_interrupted: std::collections::HashSet::new(),
    };
    run.go(epoch).await
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
                self.cfg.backend.backend.name(),
                humantime::format_duration(self.cfg.duration),
                self.cfg.timing.lease_ms,
                self.cfg.timing.renew_ms,
                self.cfg.faults
            ),
        );
        for slot in &mut self.targets.slots {
            slot.start().await?;
        }
        let end_at = epoch + self.cfg.duration;
        let mut phase = Phase::Settle {
            until: Instant::now() + self.quiet_time(),
        };
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let kinds = self.cfg.faults.kinds(self.cfg.capabilities());
        if let Some(server) = &self.targets.server {
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
                Some(event) = self.events.recv() => {
                    // A renewal being sent does not move the schedule on: a fault injected the
                    // moment one starts would find it in flight, maybe not yet on the wire, every
                    // time.
                    let sending = matches!(event.record, Record::Renewing { .. });
                    self.handle(event);
                    if sending {
                        continue;
                    }
                }
                () = sleep_until(wake) => {}
                _ = tick.tick() => self.progress(),
                () = self.interrupt.recv() => {
                    let text = "interrupted (Ctrl-C): ending the run";
                    self.live.line(self.clock.now_ms(), text);
                    eprintln!("{text}");
                    break;
                }
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
                return self.shutdown().await;
            }
        }
        self.not_injected = self.not_injected(&kinds);
        self.shutdown().await
    }

    /// How much longer than a lease leadership may take to come back after a healed
    /// `server_partition` on the deployment the tester started (none without one).
    fn partition_settles(&self) -> Duration {
        self.targets
            .server
            .as_ref()
            .map_or(Duration::ZERO, |server| server.partition_settles())
    }

    /// The quiet time before the next fault: `fault_interval`, plus a uniformly random part of
    /// `fault_jitter`, so that faults do not fall at a fixed phase of the followers' sleeps (a
    /// follower of a backend without release notices wakes when the lease it saw could
    /// expire: a graceful stop one lease after a term began would find it just waking).
    fn quiet_time(&self) -> Duration {
        self.cfg.fault_interval + self.cfg.fault_jitter.mul_f64(fastrand::f64())
    }

    /// The kinds of `kinds` that no fault of the run was, with how long the run would need.
    fn not_injected(&self, kinds: &[FaultKind]) -> Vec<NotInjected> {
        let held = Duration::from_millis(self.cfg.timing.renew_ms) * 2;
        let needs = run_needs(
            kinds,
            self.lease(),
            held,
            self.cfg.contenders,
            self.cfg.fault_interval + self.cfg.fault_jitter,
            self.partition_settles(),
        );
        let mut missing: Vec<FaultKind> = Vec::new();
        for &kind in kinds {
            if !missing.contains(&kind) && !self.faults.iter().any(|f| f.kind == kind) {
                missing.push(kind);
            }
        }
        missing
            .into_iter()
            .map(|kind| NotInjected {
                kind,
                run_needs_s: needs.as_secs_f64().ceil(),
            })
            .collect()
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
                let settles = self.partition_settles();
                if now + fault_budget(kind, lease, held, self.cfg.contenders, settles) > end_at {
                    return Ok(phase);
                }
                if !self.cluster_votes_again(kind) {
                    return Ok(phase);
                }
                let Some(index) = self.inject(kind, leader).await else {
                    return Ok(Phase::Settle {
                        until: Instant::now() + self.quiet_time(),
                    });
                };
                // A failover is over only once complete: wait for it before restoring.
                let extra = match kind {
                    FaultKind::ServerFailover => FAILOVER_COMPLETES,
                    FaultKind::ServerHandover => FAILOVER_COMPLETES / 3,
                    // The leader's renewals land until it steps down, within a lease.
                    FaultKind::DropReplies => lease,
                    _ => Duration::ZERO,
                };
                let restore_by = Instant::now() + lease * 2 + extra;
                let settles = if kind == FaultKind::ServerPartition {
                    settles
                } else {
                    Duration::ZERO
                };
                Ok(Phase::Faulted {
                    index,
                    restore_by,
                    give_up: restore_by + lease * 4 + settles,
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
                let kind = self.faults[index].kind;
                let handover = self.faults[index].may_keep_term;
                // A coordinated failover or packet loss need not end the term: it is over when
                // complete (the loss when its time is up), and recovered if somebody leads
                // then.
                let due = match kind {
                    FaultKind::ServerHandover => self.targets.failover_finished(),
                    // Over when its time is up.
                    FaultKind::Loss | FaultKind::ClockStep | FaultKind::ServerPartition => false,
                    _ => recovered,
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
                        until: Instant::now() + self.quiet_time(),
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
                        until: Instant::now() + self.quiet_time(),
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

    /// Whether a failover of `kind` can succeed now: in a Redis Cluster a primary votes for a
    /// replica of the same primary only once per two `cluster-node-timeout`s, so a failover that
    /// follows another too closely gets no votes (a coordinated one then pauses the primary's
    /// clients for its 5 s timeout, and fails). True for every other fault.
    fn cluster_votes_again(&self, kind: FaultKind) -> bool {
        let Some(server) = &self.targets.server else {
            return true;
        };
        if !kind.is_failover() {
            return true;
        }
        self.faults
            .iter()
            .rev()
            .find(|f| f.kind.is_failover())
            .is_none_or(|f| self.clock.now_ms() - f.at_ms >= server.failover_gap_ms())
    }

    /// The contender leading now, as far as the records say.
    fn leader(&self) -> Option<usize> {
        self.ledger.leader()
    }

    /// Injects a fault of `kind` on the leader, contender `slot`, and records it; `None` when
    /// nothing could be injected (said in the live output, and not recorded).
    async fn inject(&mut self, kind: FaultKind, slot: usize) -> Option<usize> {
        // Take in everything reported so far, so the victim's last renewal is up to date.
        self.drain();
        let token = self.ledger.open(slot).map(|o| o.token);
        let last_confirmed_ms = self.last_confirmed[slot];
        // The later of the last confirmed request and the last renewal sent: an answer still
        // in flight may have extended the lease on the server.
        let last_sent_ms = match (last_confirmed_ms, self.last_sent[slot]) {
            (Some(confirmed), Some(sent)) => Some(confirmed.max(sent)),
            (confirmed, sent) => confirmed.or(sent),
        };
        let at_ms = self.clock.now_ms();
        let token_text = token.map_or_else(String::new, |t| format!(" (token {t})"));
        let what = self.targets.describe(kind);
        self.live.line(
            at_ms,
            &format!("FAULT {}: {what}: c{slot}{token_text}", kind.as_str()),
        );
        let Injected {
            action,
            killed,
            notes,
            failed,
        } = self.targets.inject(kind, slot).await;
        for note in notes {
            self.live.line(self.clock.now_ms(), &note);
        }
        if let Some(why) = failed {
            let text = format!("!! the {} was not injected: {why}", kind.as_str());
            self.live.line(self.clock.now_ms(), &text);
            eprintln!("{text}");
            return None;
        }
        if let Some(generation) = killed {
            // The process is gone: whatever it led ended when it died.
            let dead_ms = self.clock.now_ms();
            self.ledger.killed(slot, generation, dead_ms);
            self.live.line(
                dead_ms,
                &format!("c{slot} is dead: its term{token_text} ended"),
            );
        }
        self.faults.push(Fault {
            kind,
            contender: slot,
            token,
            at_ms,
            last_confirmed_ms,
            last_sent_ms,
            restored_at_ms: None,
            action,
            term_confirmed_ms: None,
            may_keep_term: kind.may_keep_term()
                || (kind == FaultKind::ServerRestart
                    && self
                        .targets
                        .server
                        .as_ref()
                        .is_some_and(|s| s.restart_keeps_data())),
        });
        Some(self.faults.len() - 1)
    }

    /// Undoes fault `index` and records when.
    async fn restore(&mut self, index: usize) -> Result<(), String> {
        let restored = self
            .targets
            .restore(&self.faults[index], self.clock)
            .await?;
        let now_ms = self.clock.now_ms();
        match restored {
            Restored::Now(text) => {
                self.faults[index].restored_at_ms = Some(now_ms);
                self.live.line(now_ms, &text);
            }
            Restored::Completed(at, text) => {
                self.faults[index].restored_at_ms = Some(self.clock.ms(at));
                self.live.line(now_ms, &text);
            }
            Restored::Failed(text) => self.live.line(now_ms, &text),
        }
        Ok(())
    }

    async fn shutdown(mut self) -> Result<RunOutput, String> {
        self.drain();
        let run_end_ms = self.clock.now_ms();
        self.live.finish();
        self.live
            .line(run_end_ms, "time is up: stopping every contender");
        self.targets.heal().await;
        let grace = self.lease() * 2;
        // Followers first, so that stopping the leader hands over to nobody.
        let leader = self.leader();
        let mut order: Vec<usize> = (0..self.targets.slots.len())
            .filter(|s| Some(*s) != leader)
            .collect();
        order.extend(leader);
        for slot in order {
            self.targets.slots[slot].stop(grace).await;
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
        // Before the faults move into the data: a job's lost occurrences are judged by them.
        let jobs = self.job_reports();
        let data = RunData {
            backend: self.cfg.backend.backend.name().to_owned(),
            spawned: self.spawned.take(),
            redis_min_replica_acks: self.min_replica_acks,
            contenders: self.cfg.contenders,
            processes: self.cfg.processes,
            duration_ms: run_end_ms,
            lease_duration_ms: self.cfg.timing.lease_ms as f64,
            intervals,
            faults: std::mem::take(&mut self.faults),
            ops,
            follower_time_ms,
            priorities: std::mem::take(&mut self.cfg.priorities),
            not_injected: std::mem::take(&mut self.not_injected),
            clock_faults: self.cfg.clock_faults.map(|m| m.as_str().to_owned()),
            jobs,
        };
        // Dropping the deployment kills its processes.
        drop(self.targets.server.take());
        let report = Report::build(&data);
        Ok(RunOutput { report, data })
    }

    /// The report of each scheduled job, from its runs.
    fn job_reports(&self) -> Vec<JobReport> {
        let Some(jobs) = self.cfg.jobs else {
            return Vec::new();
        };
        let schedule = leader_election_jobs::Schedule::every(jobs.every);
        let runs = self.job_runs.runs();
        (0..jobs.count)
            .map(|i| {
                let job = crate::contender::JobsSpec::name(i);
                let verdict = self.job_runs.verdict(&job, &schedule);
                let of_job: Vec<_> = runs.iter().filter(|r| r.job == job).collect();
                let mut contenders: Vec<&str> = of_job.iter().map(|r| r.node.as_str()).collect();
                contenders.sort_unstable();
                contenders.dedup();
                // An occurrence lost while the backend restarted empty, or an operator deleted
                // the records, went with the job's record (see the jobs crate's README): told
                // apart from one lost otherwise.
                let started = |due: u64| self.job_started.get(&(job.clone(), due)).copied();
                let dues: Vec<u64> = {
                    let mut d: Vec<u64> = of_job.iter().map(|r| r.due).collect();
                    d.sort_unstable();
                    d
                };
                let with_data = |lost: u64| {
                    let before = dues
                        .iter()
                        .rev()
                        .find(|&&d| d < lost)
                        .and_then(|&d| started(d));
                    let after = dues.iter().find(|&&d| d > lost).and_then(|&d| started(d));
                    self.faults.iter().any(|f| {
                        (f.kind == FaultKind::ServerRestart
                            || f.action.is_some_and(|a| a.removes_records()))
                            && before.is_none_or(|b| f.at_ms >= b)
                            && after.is_none_or(|a| f.at_ms <= a)
                    })
                };
                // One found interrupted (its claim recorded, its run never seen: the claimant
                // lost its term before it knew) was given up by the job's policy, and said so.
                let (given_up, lost): (Vec<u64>, Vec<u64>) = verdict
                    .lost
                    .iter()
                    .partition(|&&d| self.job_interrupted.contains(&(job.clone(), d)));
                let (lost_with_data, lost): (Vec<u64>, Vec<u64>) =
                    lost.iter().partition(|&&d| with_data(d));
                let notice = |what: &str| {
                    self.job_notices
                        .get(&(job.clone(), what.to_owned()))
                        .copied()
                        .unwrap_or(0)
                };
                JobReport {
                    occurrences: verdict.occurrences,
                    runs: of_job.len(),
                    contenders: contenders.len(),
                    duplicates: verdict.duplicates.len(),
                    lost: lost.len(),
                    lost_with_data: lost_with_data.len(),
                    given_up_interrupted: given_up.len(),
                    lost_due_ms: lost.into_iter().take(20).collect(),
                    token_regressions: verdict.token_regressions.len(),
                    missed: notice("missed"),
                    interrupted: notice("interrupted"),
                    start_late_p50_ms: verdict.late_by_p50.as_secs_f64() * 1000.0,
                    start_late_p99_ms: verdict.late_by_p99.as_secs_f64() * 1000.0,
                    job,
                }
            })
            .collect()
    }

    fn ops(&self) -> OpCounts {
        let mut total = OpCounts::default();
        if self.cfg.processes {
            for ops in self.child_ops.values() {
                total.add(ops);
            }
        } else {
            for ops in self.targets.slots.iter().filter_map(Slot::ops) {
                total.add(&ops);
            }
        }
        total
    }
}

/// The network lab of `--network netns`.
#[cfg(target_os = "linux")]
type Lab = leader_election_fixtures::netns::NetLab;

/// No network lab outside Linux.
#[cfg(not(target_os = "linux"))]
#[derive(Debug)]
enum Lab {}

/// The run's network lab, with `--network netns`; why not, where one cannot be made.
fn lab(cfg: &RunConfig) -> Result<Option<Lab>, String> {
    if cfg.network != Network::Netns {
        return Ok(None);
    }
    #[cfg(target_os = "linux")]
    {
        Lab::check().map_err(|why| format!("--network netns cannot run here: {why}"))?;
        Lab::new()
            .map(Some)
            .map_err(|e| format!("cannot make the network lab: {e}"))
    }
    #[cfg(not(target_os = "linux"))]
    Err("--network netns needs Linux".into())
}
