//! A contender in its own OS process: the tester re-invoking itself as
//! `leader-election-tester contender`, told what to do on its stdin and reporting records as
//! JSON lines on its stdout; and the child's side of it.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use leader_election::LeaderElection;
use leader_election::testing::FaultyStore;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::jobs::{Emit, Jobs, JobsSpec};
use super::{Clock, Event, Sink, Timing, forward_events, shared_clock_ms, store_record};
use crate::backends::BackendSpec;
use crate::faults::{ChildClock, FaultKind, Proxies};
use crate::instrument::{OnConfirmed, instrumented};
use crate::record::Record;

/// What a child process is told on the first line of its stdin.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ChildSpec {
    /// The contender slot.
    pub(crate) slot: usize,
    /// Its incarnation.
    pub(crate) generation: u32,
    /// How to reach the backend (through the slot's proxy).
    pub(crate) backend: BackendSpec,
    /// Lease timing.
    pub(crate) timing: Timing,
    /// The run's epoch on the clock every process reads alike ([`shared_clock_ms`]).
    pub(crate) epoch_ms: f64,
    /// The rate of this process's clocks under `--clock-faults rate` (1 otherwise).
    #[serde(default = "one")]
    pub(crate) clock_rate: f64,
    /// The scheduled jobs to run beside the election (`--jobs`).
    #[serde(default)]
    pub(crate) jobs: Option<JobsSpec>,
}

fn one() -> f64 {
    1.0
}

/// A contender in its own OS process.
#[derive(Debug)]
pub(crate) struct Process {
    slot: usize,
    generation: u32,
    spec: BackendSpec,
    timing: Timing,
    /// The scheduled jobs its processes run (`--jobs`).
    jobs: Option<JobsSpec>,
    epoch_ms: f64,
    proxy: Option<Proxies>,
    child: Option<(Child, ChildStdin)>,
    sink: Sink,
    /// With `--network netns`: the namespace its processes run in (dropped after its child).
    ns: Option<Namespace>,
    /// With `--clock-faults`: the clock its processes run with, under libfaketime.
    clock: Option<ChildClock>,
}

/// A network namespace of `--network netns` (Linux only).
#[cfg(target_os = "linux")]
pub(crate) type Namespace = leader_election_fixtures::netns::NetNamespace;

/// No network namespaces outside Linux: `--network netns` is refused before any is made.
#[cfg(not(target_os = "linux"))]
#[derive(Debug)]
pub(crate) enum Namespace {}

impl Process {
    /// A contender whose processes reach the backend through `proxy`, if any.
    pub(crate) fn new(
        slot: usize,
        spec: &BackendSpec,
        proxy: Option<Proxies>,
        (timing, jobs): (Timing, Option<JobsSpec>),
        epoch_ms: f64,
        sink: Sink,
    ) -> Self {
        Self {
            slot,
            jobs,
            generation: 0,
            spec: match &proxy {
                Some(proxy) => spec.backend.via(spec, &proxy.addrs()),
                None => spec.clone(),
            },
            timing,
            epoch_ms,
            proxy,
            child: None,
            sink,
            ns: None,
            clock: None,
        }
    }

    /// Runs this contender's processes in `ns`, where partitions drop its packets.
    pub(crate) fn in_namespace(mut self, ns: Namespace) -> Self {
        self.ns = Some(ns);
        self
    }

    /// Runs this contender's processes under libfaketime with `clock`.
    pub(crate) fn with_clock(mut self, clock: ChildClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The current incarnation.
    pub(crate) fn generation(&self) -> u32 {
        self.generation
    }

    /// Steps its processes' wall clock to `secs` seconds off the real one.
    ///
    /// # Errors
    /// Without a stepping clock, or when its offset file cannot be written.
    pub(crate) fn set_clock_offset(&self, secs: i64) -> Result<(), String> {
        match &self.clock {
            Some(clock) => clock.set_offset(secs),
            None if secs == 0 => Ok(()),
            None => Err("a clock step needs --clock-faults step".into()),
        }
    }

    /// Spawns the process of the current incarnation.
    pub(crate) async fn start(&mut self) -> Result<(), String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find the tester: {e}"))?;
        let mut command = match &self.ns {
            #[cfg(target_os = "linux")]
            Some(ns) => Command::from(ns.command(exe)),
            #[cfg(not(target_os = "linux"))]
            Some(ns) => match *ns {},
            None => Command::new(exe),
        };
        if let Some(clock) = &self.clock {
            command.envs(clock.env());
        }
        let mut child = command
            .arg("contender")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start a contender process: {e}"))?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let spec = ChildSpec {
            slot: self.slot,
            generation: self.generation,
            backend: self.spec.clone(),
            timing: self.timing,
            epoch_ms: self.epoch_ms,
            jobs: self.jobs,
            clock_rate: self.clock.as_ref().map_or(1.0, ChildClock::rate),
        };
        let mut line = serde_json::to_string(&spec).map_err(|e| e.to_string())?;
        line.push('\n');
        stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("cannot talk to a contender process: {e}"))?;
        let (slot, generation, sink) = (self.slot, self.generation, self.sink.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Record>(&line) {
                    Ok(record) => {
                        let _ = sink.send(Event {
                            slot,
                            generation,
                            record,
                        });
                    }
                    Err(_) => eprintln!("c{slot}: {line}"),
                }
            }
        });
        self.child = Some((child, stdin));
        Ok(())
    }

    /// Asks the process to stop gracefully (it releases the lease and exits), and waits for it
    /// up to `grace`, killing it after that.
    pub(crate) async fn stop(&mut self, grace: Duration) {
        if let Some((mut child, mut stdin)) = self.child.take() {
            let _ = stdin.write_all(b"stop\n").await;
            let _ = stdin.flush().await;
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
        }
    }

    /// Tells the process to resign for `cool_down` (it hands over at once and stays a
    /// follower).
    pub(crate) async fn resign(&mut self, cool_down: Duration) {
        if let Some((_, stdin)) = &mut self.child {
            let line = format!("resign {}\n", cool_down.as_millis());
            let _ = stdin.write_all(line.as_bytes()).await;
            let _ = stdin.flush().await;
        }
    }

    /// Kills the process with SIGKILL and waits until it is gone.
    pub(crate) async fn crash(&mut self) {
        if let Some((mut child, _stdin)) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the next incarnation.
    pub(crate) async fn restart(&mut self) -> Result<(), String> {
        self.generation += 1;
        self.start().await
    }

    /// Injects a network fault on this contender (`None`: heals it): in its network
    /// namespace, nftables rules dropping its packets as the kind says; through its proxies
    /// (without a namespace), a `partition` only.
    pub(crate) fn set_network_fault(&self, fault: Option<FaultKind>) -> Result<(), String> {
        // Latency is the relay's, with or without a namespace.
        let timeout = Duration::from_millis(self.timing.operation_timeout_ms);
        if let Some(proxy) = &self.proxy {
            proxy.set_latency(fault, timeout);
        }
        if fault == Some(FaultKind::Latency) {
            return match &self.proxy {
                Some(_) => Ok(()),
                None => Err("latency needs a backend reached through the tester's proxies".into()),
            };
        }
        match &self.ns {
            #[cfg(target_os = "linux")]
            Some(ns) => {
                use leader_election_fixtures::netns::PacketFault;
                let done = match fault {
                    None => ns.heal(),
                    Some(FaultKind::DropReplies) => ns.inject(PacketFault::DropReplies),
                    Some(FaultKind::DropRequests) => ns.inject(PacketFault::DropRequests),
                    Some(FaultKind::Loss) => ns.inject(PacketFault::Loss {
                        percent: crate::faults::LOSS_PERCENT,
                    }),
                    Some(_) => ns.inject(PacketFault::Partition),
                };
                done.map_err(|err| format!("c{}: {err}", self.slot))
            }
            #[cfg(not(target_os = "linux"))]
            Some(ns) => match *ns {},
            None => {
                let cut = match fault {
                    None => false,
                    Some(FaultKind::Partition) => true,
                    Some(kind) => {
                        return Err(format!("{} needs --network netns", kind.as_str()));
                    }
                };
                if let Some(proxy) = &self.proxy {
                    proxy.set_cut(cut);
                }
                Ok(())
            }
        }
    }
}

// === the child's side ===

/// Runs one contender in this process, as told by the first line of stdin, reporting records
/// as JSON lines on stdout, until stdin says `stop` or closes.
pub(crate) async fn child_main() -> Result<(), String> {
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let first = stdin
        .next_line()
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no contender spec on stdin")?;
    let spec: ChildSpec = serde_json::from_str(&first).map_err(|e| e.to_string())?;
    // One reading of the clock every process reads alike maps this process's monotonic clock
    // onto the parent's, exactly up to that reading; a clock running at another rate (under
    // `--clock-faults rate`) is mapped back by its rate.
    let clock = Clock {
        origin: Instant::now(),
        base_ms: shared_clock_ms() - spec.epoch_ms,
        rate: spec.clock_rate,
    };

    let (out, mut out_rx) = mpsc::unbounded_channel::<Record>();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(record) = out_rx.recv().await {
            let Ok(mut line) = serde_json::to_string(&record) else {
                continue;
            };
            line.push('\n');
            if stdout.write_all(line.as_bytes()).await.is_err() {
                break;
            }
            let _ = stdout.flush().await;
        }
    });

    let store = spec
        .backend
        .backend
        .open(&spec.backend, &spec.timing.options("child"))?;
    let on_confirmed: OnConfirmed = {
        let out = out.clone();
        Arc::new(move |event| {
            let _ = out.send(store_record(clock, event));
        })
    };
    let store = instrumented(FaultyStore::new(store), on_confirmed);
    let id = format!("c{}-g{}", spec.slot, spec.generation);
    let election = LeaderElection::new(store.clone(), spec.timing.options(&id))
        .map_err(|e| format!("invalid options: {e}"))?;
    {
        let out = out.clone();
        forward_events(election.subscribe(), clock, move |record| {
            let _ = out.send(record);
        });
    }
    election.start().await.map_err(|e| e.to_string())?;
    let mut jobs = match spec.jobs {
        Some(jobs) => Some(Jobs::open(jobs, &spec.backend, &spec.timing)?),
        None => None,
    };
    if let Some(jobs) = &mut jobs {
        let out = out.clone();
        let emit: Emit = Arc::new(move |record| {
            let _ = out.send(record);
        });
        jobs.start(&id, &spec.timing, clock, emit).await?;
    }

    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            line = stdin.next_line() => {
                match line {
                    Ok(Some(line)) if line.trim() == "stop" => break,
                    Ok(Some(line)) => {
                        if let Some(ms) = line.trim().strip_prefix("resign ") {
                            let cool_down = Duration::from_millis(ms.parse().unwrap_or(0));
                            let _ = election.resign(cool_down).await;
                        }
                    }
                    _ => break,
                }
            }
            _ = ticker.tick() => {
                let _ = out.send(Record::Ops { ops: store.hooks().ops() });
            }
        }
    }
    if let Some(jobs) = &mut jobs {
        jobs.stop().await;
    }
    let _ = election.stop().await;
    let _ = out.send(Record::Ops {
        ops: store.hooks().ops(),
    });
    let _ = out.send(Record::Exited {
        at_ms: clock.now_ms(),
    });
    drop(out);
    drop(election);
    drop(store);
    // Give the event forwarder a moment to flush the last events, then finish writing.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    Ok(())
}
