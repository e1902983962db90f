//! Contenders: in this process (sharing its runtime), or each in its own OS process (the tester
//! re-invoking itself), behind one interface the fault schedule drives.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use leader_election::testing::{FaultControl, FaultyStore};
use leader_election::{
    BoxLeaseStore, ElectionEvent, LeaderElection, LeaderElectionOptions, MemoryLeaseStore,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::backend::BackendSpec;
use crate::instrument::{Instrumented, OnConfirmed, StoreEvent, instrumented};
use crate::proxy::Proxies;
use crate::record::Record;
use crate::report::OpCounts;

/// A record from contender `slot`, incarnation `generation`.
#[derive(Debug)]
pub(crate) struct Event {
    /// The contender slot.
    pub(crate) slot: usize,
    /// Its incarnation.
    pub(crate) generation: u32,
    /// What happened.
    pub(crate) record: Record,
}

/// Where contenders send their records.
pub(crate) type Sink = mpsc::UnboundedSender<Event>;

/// The lease timing every contender uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Timing {
    /// Lease duration.
    pub(crate) lease_ms: u64,
    /// Renew interval.
    pub(crate) renew_ms: u64,
    /// First retry delay.
    pub(crate) retry_ms: u64,
    /// Timeout of each backend call.
    pub(crate) operation_timeout_ms: u64,
    /// This contender's priority for preferred leaders (`--priorities`); `None` takes no part.
    #[serde(default)]
    pub(crate) priority: Option<u32>,
    /// Minimum tenure before a leader hands over to a preferred contender (`--min-tenure`);
    /// `None`: one lease.
    #[serde(default)]
    pub(crate) min_tenure_ms: Option<u64>,
}

impl Timing {
    /// Election options for contender `instance_id` with this timing.
    pub(crate) fn options(&self, instance_id: &str) -> LeaderElectionOptions {
        let lease = Duration::from_millis(self.lease_ms);
        let retry = Duration::from_millis(self.retry_ms);
        let mut options = LeaderElectionOptions::default();
        options.instance_id = instance_id.to_owned();
        options.lease_duration = lease;
        options.renew_interval = Duration::from_millis(self.renew_ms);
        options.retry_interval = retry;
        options.max_retry_interval = retry.max(lease / 2);
        options.operation_timeout = Some(Duration::from_millis(self.operation_timeout_ms));
        options.shutdown_timeout = (lease / 2).max(Duration::from_millis(100));
        options.priority = self.priority;
        options.min_tenure = self.min_tenure_ms.map(Duration::from_millis);
        options
    }

    /// This timing for contender `slot`, with its priority from `priorities` (none when the
    /// list is empty).
    pub(crate) fn for_slot(self, priorities: &[u32], slot: usize) -> Self {
        Self {
            priority: priorities.get(slot).copied(),
            ..self
        }
    }
}

/// Milliseconds since `epoch` on this process's monotonic clock, shifted by `base_ms` (zero
/// in the parent; the child's offset to the parent's epoch in a child process).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    /// This process's instant for `base_ms`.
    pub(crate) origin: Instant,
    /// The run time at `origin`, in ms.
    pub(crate) base_ms: f64,
}

impl Clock {
    /// Run time of `at`.
    pub(crate) fn ms(&self, at: Instant) -> f64 {
        let delta = if at >= self.origin {
            at.duration_since(self.origin).as_secs_f64()
        } else {
            -self.origin.duration_since(at).as_secs_f64()
        };
        self.base_ms + delta * 1000.0
    }

    /// Run time now.
    pub(crate) fn now_ms(&self) -> f64 {
        self.ms(Instant::now())
    }
}

/// The store stack of one contender: counting, then fault injection, then the backend.
type Stack = Instrumented<FaultyStore<BoxLeaseStore>>;

/// The record of what the store saw.
fn store_record(clock: Clock, event: StoreEvent) -> Record {
    match event {
        StoreEvent::Confirmed {
            sent,
            returned,
            acquired,
        } => Record::Confirmed {
            at_ms: clock.ms(sent),
            returned_ms: clock.ms(returned),
            acquired,
        },
        StoreEvent::Releasing(at) => Record::Releasing {
            at_ms: clock.ms(at),
        },
    }
}

/// Forwards an election's events as records until the election is gone.
fn forward_events(
    mut events: broadcast::Receiver<ElectionEvent>,
    clock: Clock,
    mut emit: impl FnMut(Record) + Send + 'static,
) {
    tokio::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            };
            let at_ms = clock.now_ms();
            let record = match event {
                ElectionEvent::LeadershipChanged {
                    is_leader: true,
                    token,
                    ..
                } => Record::Acquired {
                    at_ms,
                    token: token.get(),
                },
                ElectionEvent::LeadershipChanged {
                    is_leader: false,
                    token,
                    reason,
                } => Record::Lost {
                    at_ms,
                    token: token.get(),
                    reason: reason.as_str().to_owned(),
                },
                ElectionEvent::Error(err) => Record::Error {
                    at_ms,
                    message: err.to_string(),
                },
                _ => continue,
            };
            emit(record);
        }
    });
}

// === impl InProcess ===

/// A contender sharing the tester's process and runtime.
#[derive(Debug)]
pub(crate) struct InProcess {
    slot: usize,
    generation: Arc<AtomicU32>,
    timing: Timing,
    store: Stack,
    faults: FaultControl,
    proxy: Option<Proxies>,
    election: Option<LeaderElection<Stack>>,
    clock: Clock,
    sink: Sink,
}

impl InProcess {
    /// Opens the contender's store (through `proxy` if any); nothing runs until `start`.
    pub(crate) async fn new(
        slot: usize,
        spec: &BackendSpec,
        memory: &MemoryLeaseStore,
        proxy: Option<Proxies>,
        timing: Timing,
        clock: Clock,
        sink: Sink,
    ) -> Result<Self, String> {
        let spec = match &proxy {
            Some(proxy) => spec.via(&proxy.addrs()),
            None => spec.clone(),
        };
        let options = timing.options(&format!("c{slot}"));
        let faulty = FaultyStore::new(spec.open(memory, &options).await?);
        let faults = faulty.control();
        let generation = Arc::new(AtomicU32::new(0));
        let on_confirmed: OnConfirmed = {
            let generation = Arc::clone(&generation);
            let sink = sink.clone();
            Arc::new(move |event| {
                let _ = sink.send(Event {
                    slot,
                    generation: generation.load(Ordering::Relaxed),
                    record: store_record(clock, event),
                });
            })
        };
        Ok(Self {
            slot,
            generation,
            timing,
            store: instrumented(faulty, on_confirmed),
            faults,
            proxy,
            election: None,
            clock,
            sink,
        })
    }

    /// The current incarnation.
    pub(crate) fn generation(&self) -> u32 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Starts (or restarts, as a new incarnation) the election.
    pub(crate) async fn start(&mut self) -> Result<(), String> {
        if self.election.is_none() {
            let id = format!("c{}-g{}", self.slot, self.generation());
            let election = LeaderElection::new(self.store.clone(), self.timing.options(&id))
                .map_err(|e| format!("invalid options: {e}"))?;
            let (slot, generation, sink) = (self.slot, self.generation(), self.sink.clone());
            forward_events(election.subscribe(), self.clock, move |record| {
                let _ = sink.send(Event {
                    slot,
                    generation,
                    record,
                });
            });
            self.election = Some(election);
        }
        if let Some(election) = &self.election {
            election.start().await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Stops gracefully: cancels, releases the lease, ends the loop.
    pub(crate) async fn stop(&mut self) {
        if let Some(election) = &self.election {
            let _ = election.stop().await;
        }
    }

    /// Resigns: hands over at once, and stays out of the election for `cool_down`.
    pub(crate) async fn resign(&self, cool_down: Duration) {
        if let Some(election) = &self.election {
            let _ = election.resign(cool_down).await;
        }
    }

    /// Dies without releasing: drops every handle, so the loop ends and the lease is left to
    /// expire on the backend.
    pub(crate) fn crash(&mut self) {
        self.election = None;
    }

    /// Starts the next incarnation after a graceful stop or a crash.
    pub(crate) async fn restart(&mut self) -> Result<(), String> {
        self.election = None;
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.start().await
    }

    /// Cuts or heals this contender's connection to the backend.
    pub(crate) fn set_partitioned(&self, cut: bool) {
        match &self.proxy {
            Some(proxy) => proxy.set_cut(cut),
            None => self.faults.set_partitioned(cut),
        }
    }

    /// Backend calls so far, over every incarnation.
    pub(crate) fn ops(&self) -> OpCounts {
        self.store.hooks().ops()
    }
}

// === impl Process ===

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
    /// The run's epoch as wall-clock time, ms since the Unix epoch.
    pub(crate) epoch_unix_ms: f64,
}

/// A contender in its own OS process.
#[derive(Debug)]
pub(crate) struct Process {
    slot: usize,
    generation: u32,
    spec: BackendSpec,
    timing: Timing,
    epoch_unix_ms: f64,
    proxy: Option<Proxies>,
    child: Option<(Child, ChildStdin)>,
    sink: Sink,
}

impl Process {
    /// A contender whose processes reach the backend through `proxy`, if any.
    pub(crate) fn new(
        slot: usize,
        spec: &BackendSpec,
        proxy: Option<Proxies>,
        timing: Timing,
        epoch_unix_ms: f64,
        sink: Sink,
    ) -> Self {
        Self {
            slot,
            generation: 0,
            spec: match &proxy {
                Some(proxy) => spec.via(&proxy.addrs()),
                None => spec.clone(),
            },
            timing,
            epoch_unix_ms,
            proxy,
            child: None,
            sink,
        }
    }

    /// The current incarnation.
    pub(crate) fn generation(&self) -> u32 {
        self.generation
    }

    /// Spawns the process of the current incarnation.
    pub(crate) async fn start(&mut self) -> Result<(), String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find the tester: {e}"))?;
        let mut child = Command::new(exe)
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
            epoch_unix_ms: self.epoch_unix_ms,
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

    /// Cuts or heals this contender's connection to the backend.
    pub(crate) fn set_partitioned(&self, cut: bool) {
        if let Some(proxy) = &self.proxy {
            proxy.set_cut(cut);
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
    // One wall-clock reading maps this process's monotonic clock onto the parent's: both
    // processes read the same system clock, so the offset is exact up to that reading (and to a
    // wall-clock step between the parent's start and this one).
    let now_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs_f64()
        * 1000.0;
    let clock = Clock {
        origin: Instant::now(),
        base_ms: now_unix_ms - spec.epoch_unix_ms,
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

    let memory = MemoryLeaseStore::new();
    let store = spec
        .backend
        .open(&memory, &spec.timing.options("child"))
        .await?;
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
